"""The APEL checkpoint store (SQLite and PostgreSQL), the state codec and training checkpoints."""

from __future__ import annotations

import math
import multiprocessing
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from geomir.apel.state_codec import StateCodecError, decode, digest, encode
from geomir.apel.store import LeaseLost, StoreError, open_store
from geomir.apel.training import load_training, save_training

LONG = 60.0  # a lease that stays live for the whole test


def new_run(store, run_id, owner="w1", lease_s=LONG, **kw):
    return store.create_run(run_id, kw.get("workflow", "wf"), "hash", b"in", kw.get("correlation_id"), owner, lease_s)


# -- runs and leases ------------------------------------------------------------------------


def test_run_lifecycle(store):
    run = new_run(store, "r1", correlation_id="order-7")
    assert (run.status, run.owner, run.input, run.output) == ("running", "w1", b"in", None)
    assert store.get_run("r1") == run
    assert store.get_run("nope") is None
    with pytest.raises(StoreError, match="'r1' already exists"):
        new_run(store, "r1")
    new_run(store, "r2", workflow="other")
    new_run(store, "r3")
    assert [r.run_id for r in store.list_runs()] == ["r1", "r2", "r3"]
    assert [r.run_id for r in store.list_runs(workflow="wf")] == ["r1", "r3"]
    assert [r.run_id for r in store.list_runs(correlation_id="order-7")] == ["r1"]

    store.set_status("r1", "w1", "waiting", waiting_for="approve")
    run = store.get_run("r1")
    assert (run.status, run.owner, run.waiting_for) == ("waiting", None, "approve")
    assert store.acquire("r1", "w2", LONG)  # anyone may resume a waiting run
    store.set_status("r1", "w2", "running")
    assert store.holder("r1")[0] == "w2"
    store.set_status("r1", "w2", "completed", output=b"out")
    run = store.get_run("r1")
    assert (run.status, run.output, run.owner, run.lease_until) == ("completed", b"out", None, None)
    assert run.updated >= run.created
    assert not store.acquire("r1", "w2", LONG)  # a finished run is nobody's
    assert [r.run_id for r in store.list_runs(status="running")] == ["r2", "r3"]
    with pytest.raises(StoreError, match="unknown run status"):
        store.set_status("r2", "w1", "paused")


def test_lease_semantics(store):
    new_run(store, "r", owner="w1", lease_s=LONG)
    assert not store.acquire("r", "w2", LONG)
    assert store.acquire("r", "w1", LONG)  # the holder may re-acquire
    assert store.renew("r", "w1", LONG)
    owner, until = store.holder("r")
    assert owner == "w1" and until > store.get_run("r").created
    store.begin_step("r", "w1", 0, "s0", "call")

    store.renew("r", "w1", 0.0)  # w1 stalls: its lease runs out
    with pytest.raises(LeaseLost, match="expired"):
        store.complete_step("r", "w1", 0, "s0", "call", b"late")
    assert store.acquire("r", "w2", LONG)
    with pytest.raises(LeaseLost, match="'w2' holds it now"):
        store.complete_step("r", "w1", 0, "s0", "call", b"late")
    with pytest.raises(LeaseLost):
        store.begin_step("r", "w1", 1, "s1", "call")
    with pytest.raises(LeaseLost):
        store.set_status("r", "w1", "completed")
    assert not store.renew("r", "w1", LONG)
    assert [(s.step_id, s.status) for s in store.journal("r")] == [("s0", "started")]  # nothing late got in

    store.complete_step("r", "w2", 0, "s0", "call", b"ok")
    store.release("r", "w1")  # not the holder: no effect
    assert store.holder("r")[0] == "w2"
    store.release("r", "w2")
    assert store.holder("r") is None
    assert store.acquire("r", "w3", LONG)
    with pytest.raises(StoreError, match="no run 'ghost'"):
        store.begin_step("ghost", "w1", 0, "s", "call")


def expired_runs(store, n):
    """``n`` runs whose owner died, plus runs that must never be claimed."""
    ids = [f"dead{i:02d}" for i in range(n)]
    for i, run_id in enumerate(ids):
        new_run(store, run_id, owner=None if i % 5 == 0 else "dead", lease_s=0.0)
    new_run(store, "live", owner="w", lease_s=LONG)
    new_run(store, "done", owner="w", lease_s=LONG)
    store.set_status("done", "w", "completed")
    new_run(store, "waits", owner="w", lease_s=LONG)
    store.set_status("waits", "w", "waiting", waiting_for="e")
    return ids


def test_claim_expired_oldest_first(store):
    ids = expired_runs(store, 4)
    assert store.claim_expired("a", LONG, limit=3) == ids[:3]
    assert store.claim_expired("b", LONG, limit=3) == ids[3:]
    assert store.claim_expired("c", LONG) == []
    assert store.holder(ids[0])[0] == "a" and store.holder("live")[0] == "w"


def claim_all(store, owner, start=None, method="claim_expired"):
    if start is not None:
        start.wait()
    got = []
    while batch := getattr(store, method)(owner, LONG, limit=2):
        got += batch
    return got


def test_claim_expired_threads_never_share_a_run(store):
    ids = expired_runs(store, 40)
    start = threading.Barrier(6)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: claim_all(store, f"t{i}", start), range(6)))
    claimed = [run_id for r in results for run_id in r]
    assert sorted(claimed) == ids  # each expired run exactly once, nothing else
    for i, got in enumerate(results):
        assert all(store.holder(run_id)[0] == f"t{i}" for run_id in got)


def _claim_in_process(url, owner, start, out, method):
    with open_store(url) as store:
        out.put(claim_all(store, owner, start, method))


def claim_in_processes(url, n, method):
    """Every run ``n`` processes claimed with ``store.<method>``, started at once."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_claim_in_process, args=(url, f"p{i}", start, out, method)) for i in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return [run_id for r in results for run_id in r]


def test_claim_expired_processes_never_share_a_run(store, store_url):
    ids = expired_runs(store, 40)
    assert sorted(claim_in_processes(store_url, 4, "claim_expired")) == ids


def test_claim_due_wakes_timed_out_waiting_runs_earliest_first(store):
    now = time.time()
    for run_id, wake in [("late", now - 1.0), ("early", now - 5.0), ("future", now + LONG), ("never", None)]:
        new_run(store, run_id)
        store.set_status(run_id, "w1", "waiting", waiting_for="e", wake_at=wake)
    assert store.get_run("early").wake_at == pytest.approx(now - 5.0)
    assert store.claim_expired("a", LONG) == []  # waiting runs are not orphans
    assert store.claim_due("a", LONG, limit=1) == ["early"]
    assert store.claim_due("b", LONG) == ["late"]  # "early" is a's now
    assert store.claim_due("c", LONG) == []
    assert store.holder("early")[0] == "a" and store.holder("late")[0] == "b"
    store.set_status("early", "a", "running")
    assert store.get_run("early").wake_at is None  # only a waiting run has a wake-up time
    store.set_status("early", "a", "waiting", waiting_for="e", wake_at=now + LONG)
    assert store.claim_due("a", LONG) == []


def test_claim_due_processes_never_share_a_run(store, store_url):
    ids = [f"w{i:02d}" for i in range(30)]
    for run_id in ids:
        new_run(store, run_id)
        store.set_status(run_id, "w1", "waiting", waiting_for="e", wake_at=0.0)
    assert sorted(claim_in_processes(store_url, 3, "claim_due")) == ids


def test_a_store_made_before_wake_at_is_upgraded(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE apel_runs (ord INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, "
                "workflow TEXT NOT NULL, source_hash TEXT NOT NULL, status TEXT NOT NULL, input BLOB NOT NULL, "
                "output BLOB, error TEXT, correlation_id TEXT, owner TEXT, lease_until REAL, waiting_for TEXT, "
                "created REAL NOT NULL, updated REAL NOT NULL)")
    con.execute("INSERT INTO apel_runs (run_id, workflow, source_hash, status, input, created, updated) "
                "VALUES ('old', 'wf', 'h', 'waiting', x'00', 1.0, 1.0)")
    con.commit()
    con.close()
    with open_store(path) as store:
        assert store.get_run("old").wake_at is None
        assert store.claim_due("w", LONG) == []
    with open_store(path) as store:  # opening again does not add it twice
        assert store.get_run("old").status == "waiting"


# -- journal and events ---------------------------------------------------------------------


def test_journal_order_and_uniqueness(store):
    new_run(store, "r")
    store.begin_step("r", "w1", 2, "c", "decision")
    store.complete_step("r", "w1", 0, "a", "call", b"A")  # no begin: the row is created
    store.begin_step("r", "w1", 1, "b", "call")
    store.fail_step("r", "w1", 1, "b", "call", "boom")
    store.begin_step("r", "w1", 1, "b", "call", attempt=2)  # a retry restarts the step
    store.complete_step("r", "w1", 1, "b", "call", b"B")
    journal = store.journal("r")
    assert [(s.seq, s.step_id, s.kind, s.status, s.result, s.attempt) for s in journal] == [
        (0, "a", "call", "completed", b"A", 1),
        (1, "b", "call", "completed", b"B", 2),
        (2, "c", "decision", "started", None, 1),
    ]
    assert journal[1].error is None and journal[1].finished >= journal[1].started
    with pytest.raises(StoreError, match="'a' is already completed"):
        store.complete_step("r", "w1", 0, "a", "call", b"again")
    with pytest.raises(StoreError, match="'a' is already completed"):
        store.begin_step("r", "w1", 0, "a", "call", attempt=2)
    with pytest.raises(StoreError, match="seq 2 already holds a step other than 'd'"):
        store.begin_step("r", "w1", 2, "d", "call")
    assert store.journal("r") == journal
    assert store.journal("other") == []


def test_take_event_exactly_once(store):
    ids = [store.post_event("order-1", "approve", f"p{i}".encode()) for i in range(30)]
    assert ids == sorted(ids)
    store.post_event("order-1", "cancel", b"x")
    store.post_event("order-2", "approve", b"y")

    def take_all(i):
        got = []
        while event := store.take_event("order-1", "approve", f"run{i}"):
            got.append(event)
        return got

    with ThreadPoolExecutor(6) as pool:
        taken = [e for got in pool.map(take_all, range(6)) for e in got]
    assert sorted(e.event_id for e in taken) == ids
    assert store.take_event("order-1", "approve", "late") is None
    events = store.events("order-1")
    assert [e.name for e in events] == ["approve"] * 30 + ["cancel"]
    by_id = {e.event_id: e for e in events}
    assert all(by_id[e.event_id].consumed_by == e.consumed_by for e in taken)
    assert by_id[ids[0]].payload == b"p0" and events[-1].consumed_by is None
    first = store.take_event("order-2", "approve", "r9")
    assert (first.payload, first.consumed_by) == (b"y", "r9")


def test_named_state_latest(store):
    assert store.load_state("ns") is None
    store.save_state("ns", "a", b"1", {"step": 1})
    store.save_state("ns", "b", b"2", {"step": 2})
    store.save_state("other", "z", b"9", {})
    assert store.load_state("ns") == ("b", b"2", {"step": 2})
    assert store.load_state("ns", "a") == ("a", b"1", {"step": 1})
    store.save_state("ns", "a", b"1bis", {"step": 3, "note": ["x"]})  # overwriting makes it the latest
    assert store.load_state("ns") == ("a", b"1bis", {"step": 3, "note": ["x"]})
    assert store.state_keys("ns") == ["b", "a"]
    assert store.load_state("ns", "missing") is None
    with pytest.raises(StoreError, match="meta must be JSON"):
        store.save_state("ns", "c", b"", {"bad": object()})


def test_open_store(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/deep/er/s.db") as store:
        new_run(store, "r")
    with open_store(tmp_path / "deep" / "er" / "s.db") as again:  # a path, same file
        assert again.get_run("r").run_id == "r"
    with pytest.raises(StoreError, match="is closed"):
        again.get_run("r")
    with pytest.raises(StoreError, match="unknown scheme 'mysql'"):
        open_store("mysql://u:p@h/db")
    with pytest.raises(StoreError, match="write sqlite:///relative.db"):
        open_store("sqlite://x.db")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(tmp_path / "junk.db")


def test_postgres_connect_error_hides_password(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError) as e:
        open_store(f"postgresql://alice:s3cret@/db?host={tmp_path}&connect_timeout=2")
    assert "cannot open store 'postgresql://alice@" in str(e.value) and str(tmp_path) in str(e.value)
    assert "s3cret" not in str(e.value)


# -- state codec ------------------------------------------------------------------------------


def assert_same(a, b):
    """Equal values of the same types, bit for bit (nan included), dict order included."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    elif "torch" in sys.modules and isinstance(a, sys.modules["torch"].Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and sys.modules["torch"].equal(a, b)
    else:
        assert a == b


arrays = hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
                    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=5) | arrays
trees = st.recursive(leaves, lambda kids: (st.lists(kids, max_size=3) | st.lists(kids, max_size=3).map(tuple)
                                           | st.dictionaries(st.text(max_size=4) | st.integers(), kids, max_size=3)),
                     max_leaves=12)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_codec_round_trip(tree):
    data = encode(tree)
    assert data.startswith(b"APELSTATE1\n")
    back = decode(data)
    assert_same(tree, back)
    assert digest(back) == digest(tree)


def test_codec_scalars_and_pydantic():
    import pydantic

    class Point(pydantic.BaseModel):
        x: float
        tags: tuple[str, ...]

    value = {"np": np.float32(1.5), "i": np.int64(-3), "nan": float("nan"), "inf": -math.inf,
             "big": 10**40, "p": Point(x=1.0, tags=("a",)), "zero_d": np.array(7, dtype=np.int16)}
    back = decode(encode(value))
    assert_same({**value, "p": {"x": 1.0, "tags": ("a",)}}, back)


def test_codec_torch_tensors_and_adam_state():
    torch = pytest.importorskip("torch")
    tensors = {"f32": torch.randn(2, 3), "f64": torch.randn(4, dtype=torch.float64), "i64": torch.arange(5),
               "bool": torch.tensor([True, False]), "bf16": torch.randn(3, dtype=torch.bfloat16),
               "scalar": torch.tensor(2.5), "grad": torch.ones(2, requires_grad=True) * 3}
    back = decode(encode(tensors))
    assert_same({**tensors, "grad": tensors["grad"].detach()}, back)

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = opt.state_dict()
    back = decode(encode(state))
    assert_same(state, back)  # int keys of "state", tuple betas, 0-d float32 "step" tensors
    assert_same(dict(model.state_dict()), decode(encode(model.state_dict())))
    torch.optim.Adam(model.parameters(), lr=0.01).load_state_dict(back)


def test_digest_is_canonical():
    a = {"x": [1, 2.0, np.arange(3, dtype=np.float32)], "y": {"b": None, "a": (1,)}}
    b = {"y": {"a": (1,), "b": None}, "x": [1, 2.0, np.arange(3, dtype=np.float32)]}
    assert digest(a) == digest(b)
    assert digest(a) != digest({**a, "y": {"a": [1], "b": None}})  # a tuple is not a list
    assert digest(a) != digest({**a, "x": [1, 2.0, np.arange(3, dtype=np.float64)]})
    assert digest({1: "a"}) != digest({"1": "a"})
    assert len(digest(None)) == 64


def test_codec_errors_name_the_path():
    with pytest.raises(StateCodecError, match=r"^state\['opt'\]\['x'\]: cannot store a set$"):
        encode({"opt": {"x": {1, 2}}})
    with pytest.raises(StateCodecError, match=r"state\[0\]\[1\]: cannot store an object"):
        encode([(1, object())])
    with pytest.raises(StateCodecError, match=r"state: dict key \(1, 2\) is a tuple"):
        encode({(1, 2): 0})
    with pytest.raises(StateCodecError, match=r"state\['a'\]: cannot store a numpy array of dtype object"):
        encode({"a": np.array([None])})
    loop: list = []
    loop.append(loop)
    with pytest.raises(StateCodecError, match=r"state\[0\]: the value contains itself"):
        encode(loop)
    data = encode({"a": np.ones(3)})
    for corrupt in (b"pickle", data[:-20], data.replace(b'"a0"', b'"a9"'), b"APELSTATE1\n{\"what\": 1}\n"):
        with pytest.raises(StateCodecError, match="corrupt state"):
            decode(corrupt)


# -- training checkpoints ---------------------------------------------------------------------


def test_training_resume_is_bit_identical(store):
    torch = pytest.importorskip("torch")

    def make(seed):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
        return model, torch.optim.Adam(model.parameters(), lr=0.05)

    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 4, generator=gen, dtype=torch.float64),
                torch.randn(16, 1, generator=gen, dtype=torch.float64)) for _ in range(6)]

    def train(model, opt, steps):
        for x, y in steps:
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    reference, ref_opt = make(0)
    train(reference, ref_opt, batches)

    assert load_training(store, "job") is None
    model, opt = make(0)
    train(model, opt, batches[:2])
    save_training(store, "job", 2, model, opt)
    train(model, opt, batches[2:3])
    save_training(store, "job", 3, model, opt, extra={"seen": 3})
    del model, opt

    resumed, resumed_opt = make(123)  # a fresh process: other weights, empty optimizer
    state = load_training(store, "job", resumed, resumed_opt)
    assert (state.step, state.extra) == (3, {"seen": 3})
    assert store.state_keys("training/job") == ["000000000002", "000000000003"]
    assert store.load_state("training/job")[2] == {"step": 3}
    train(resumed, resumed_opt, batches[3:])
    for p, q in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


def test_training_plain_params_dict(store):
    params = {"w": np.arange(6, dtype=np.float64).reshape(2, 3), "b": np.zeros(2, dtype=np.float32)}
    save_training(store, "geo", 10, params, extra={"lr": 0.1})
    state = load_training(store, "geo")
    assert (state.step, state.optimizer_state, state.extra) == (10, None, {"lr": 0.1})
    assert_same(params, state.model_state)
    with pytest.raises(StoreError, match="holds no optimizer state"):
        load_training(store, "geo", optimizer=object())
    assert store.state_keys("training/geo") == ["000000000010"]
