"""The APEL runtime: compensation, correlation and context, loop/budget/deadlock detection
(at their boundaries), non-determinism, run-time contracts (records, manifold values from a
geomir model), and traces that reconstruct a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geomir.apel import Delegate, compile_file
from geomir.apel.engine import Engine, Limits, Program
from geomir.apel.store import open_store
from geomir.apel.tracing import Tracer, correlation_ids, read_spans, step_order

EXAMPLES = Path(__file__).parents[2] / "examples"

HEADER = """
type Order = { id: int, amount: float }
type Receipt = { key: str, amount: float }
"""


def program(tmp_path: Path, text: str, agents: dict, name: str = "wf.apel") -> Program:
    path = tmp_path / name
    path.write_text(HEADER + text)
    module, source = compile_file(path)
    return Program(module, source, str(path), agents)


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "runs.sqlite") as s:
        yield s


class Ledger:
    """Agents that record what they did, in order."""

    def __init__(self, fail_on: str | None = None):
        self.log: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def agent(self, name: str, result=None):
        def fn(apel, **kwargs):
            self.log.append((name, apel.idempotency_key))
            if name == self.fail_on:
                raise RuntimeError(f"{name} is down")
            return result if result is not None else {"key": apel.idempotency_key, "amount": 1.0}
        return fn


SAGA = """
agent reserve(o: Order) -> Receipt
agent charge(o: Order) -> Receipt
agent ship(o: Order) -> Receipt
idempotent agent release(r: Receipt) -> bool
idempotent agent refund(r: Receipt) -> bool
idempotent agent unship(r: Receipt) -> bool
workflow Saga(o: Order) -> Receipt {
  let r = call reserve(o) compensate release(r)
  let c = call charge(o) compensate refund(c)
  let s = call ship(o) compensate unship(s)
  return s
}
"""


def saga_agents(ledger: Ledger) -> dict:
    names = ("reserve", "charge", "ship")
    undo = {"release": True, "refund": True, "unship": True}
    return {**{n: ledger.agent(n) for n in names}, **{n: ledger.agent(n, v) for n, v in undo.items()}}


@pytest.mark.parametrize("failing, undone, journaled", [
    ("reserve", [], []),
    ("charge", ["release"], ["compensate:r"]),
    ("ship", ["refund", "release"], ["compensate:c", "compensate:r"]),
])
def test_compensation_runs_in_reverse_order_exactly_once(tmp_path, store, failing, undone, journaled):
    ledger = Ledger(fail_on=failing)
    engine = Engine(program(tmp_path, SAGA, saga_agents(ledger)), store)
    result = engine.start({"o": {"id": 1, "amount": 5.0}})
    assert result.status == "compensated"
    assert f"agent '{failing}' raised RuntimeError: {failing} is down" in result.error
    compensations = [n for n, _ in ledger.log if n in ("release", "refund", "unship")]
    assert compensations == undone
    # A second resume of the finished run changes nothing.
    assert engine.resume(result.run_id).status == "compensated"
    assert [n for n, _ in ledger.log if n in ("release", "refund", "unship")] == undone
    steps = [s.step_id for s in store.journal(result.run_id)]
    assert [s for s in steps if s.startswith("compensate:")] == journaled


def test_retries_then_success_and_idempotency_key(tmp_path, store):
    calls = []

    def flaky(o, apel):
        calls.append((apel.attempt, apel.idempotency_key))
        if apel.attempt < 3:
            raise TimeoutError("try again")
        return "ok"

    p = program(tmp_path, """
idempotent agent flaky(o: Order) -> str
workflow W(o: Order) -> str { let x = call flaky(o) retry 2  return x }
""", {"flaky": flaky})
    result = Engine(p, store).start({"o": {"id": 1, "amount": 1.0}}, run_id="run1")
    assert result.status == "completed" and result.output == "ok"
    assert calls == [(1, "run1/x"), (2, "run1/x"), (3, "run1/x")]


def test_correlation_resumes_the_right_run_and_context_flows_into_subworkflows(tmp_path, store):
    seen = {}

    def label(o, apel):
        seen[apel.correlation_id] = dict(apel.context)
        seen[apel.correlation_id, "version"] = apel.context_version
        return f"order {o.id}"

    p = program(tmp_path, """
pure agent label(o: Order) -> str
workflow Inner(o: Order) -> str { let l = call label(o)  return l }
workflow Outer(o: Order) -> str {
  let note = "from outer"
  let ok = receive approved: bool
  let l = run Inner(o)
  return l + " " + note
}
""", {"label": label})
    engine = Engine(p, store)
    a = engine.start({"o": {"id": 1, "amount": 1.0}}, workflow="Outer", correlation_id="order-1")
    b = engine.start({"o": {"id": 2, "amount": 1.0}}, workflow="Outer", correlation_id="order-2")
    assert a.status == b.status == "waiting" and a.waiting_for == "approved"
    [done] = engine.deliver("order-2", "approved", True)
    assert done.run_id == b.run_id and done.output == "order 2 from outer"
    assert store.get_run(a.run_id).status == "waiting"
    # The sub-workflow's agent saw the caller's context (note) and its own parameter.
    assert seen["order-2"]["note"] == "from outer" and seen["order-2"]["o"]["id"] == 2
    # Its version counts the writes that made it: note, ok (the caller's), o (the parameter);
    # the replay after the event rebuilt the same version.
    assert seen["order-2", "version"] == 3
    [done] = engine.deliver("order-1", "approved", True)
    assert done.output == "order 1 from outer"


def test_an_event_with_the_wrong_type_is_a_contract_violation(tmp_path, store):
    p = program(tmp_path, "workflow W() -> int { let n = receive count: int  return n }", {})
    engine = Engine(p, store)
    engine.start({}, correlation_id="c1")
    [result] = engine.deliver("c1", "count", "seven")
    assert result.status == "compensated" and "event 'count' is not int" in result.error


TIMED = """
agent reserve(o: Order) -> Receipt
idempotent agent release(r: Receipt) -> bool
workflow W(o: Order) -> str {
  let r = call reserve(o) compensate release(r)
  let ok = receive confirm: bool timeout 0.4
  return "confirmed"
}
"""


def test_a_timed_out_receive_is_woken_by_a_worker_and_compensated(tmp_path, store):
    import time

    ledger = Ledger()
    p = program(tmp_path, TIMED, {"reserve": ledger.agent("reserve"), "release": ledger.agent("release", True)})
    engine = Engine(p, store)
    run = engine.start({"o": {"id": 1, "amount": 1.0}}, correlation_id="c1")
    assert run.status == "waiting"
    record = store.get_run(run.run_id)
    assert record.wake_at == pytest.approx(store.journal(run.run_id)[-1].started + 0.4)
    assert Engine(p, store, worker="other").recover() == []  # not due yet: nothing to do
    time.sleep(max(0.0, record.wake_at - time.time()) + 0.05)
    [woken] = Engine(p, store, worker="other").recover()  # no event, no resume call: the timer
    assert woken.status == "compensated" and "no event 'confirm' for correlation id c1 within 0.4 s" in woken.error
    assert [name for name, _ in ledger.log] == ["reserve", "release"]
    assert store.get_run(run.run_id).wake_at is None


def test_an_event_before_the_timeout_completes_and_clears_the_timer(tmp_path, store):
    ledger = Ledger()
    p = program(tmp_path, TIMED.replace("timeout 0.4", "timeout 30"),
                {"reserve": ledger.agent("reserve"), "release": ledger.agent("release", True)})
    engine = Engine(p, store)
    run = engine.start({"o": {"id": 1, "amount": 1.0}}, correlation_id="c1")
    [done] = engine.deliver("c1", "confirm", True)
    assert done.status == "completed" and done.output == "confirmed"
    assert store.get_run(run.run_id).wake_at is None and engine.recover() == []


def test_parallel_receives_wait_for_every_event_and_wake_at_the_earliest_timeout(tmp_path, store):
    p = program(tmp_path, """
workflow W() -> int {
  parallel {
    branch a { let x = receive left: int timeout 50 }
    branch b { let y = receive right: int timeout 20 }
  }
  return 1
}
""", {})
    engine = Engine(p, store)
    run = engine.start({}, correlation_id="c1")
    assert run.status == "waiting" and set(run.waiting_for.split(",")) == {"left", "right"}
    started = min(s.started for s in store.journal(run.run_id))
    assert store.get_run(run.run_id).wake_at == pytest.approx(started + 20, abs=0.5)
    [half] = engine.deliver("c1", "right", 2)  # the second branch's event resumes the run too
    assert half.status == "waiting" and half.waiting_for == "left"
    [done] = engine.deliver("c1", "left", 1)
    assert done.status == "completed"


def test_submitted_runs_wait_for_a_worker(tmp_path, store):
    ledger = Ledger()
    p = program(tmp_path, SAGA, saga_agents(ledger))
    engine = Engine(p, store)
    ids = [engine.submit({"o": {"id": i, "amount": 1.0}}) for i in range(3)]
    assert [store.get_run(i).status for i in ids] == ["running"] * 3 and ledger.log == []
    assert all(store.holder(i) is None for i in ids)
    with pytest.raises(Exception, match="missing o"):
        engine.submit({})
    results = Engine(p, store, worker="w2").recover()
    assert [r.run_id for r in results] == ids and {r.status for r in results} == {"completed"}


LOOPY = """
pure agent poll(o: Order) -> bool
workflow W(o: Order, n: int) -> int {
  let i = 0
  while i < n max 10 { let done = call poll(o)  let i = i + 1 }
  return i
}
"""


@pytest.mark.parametrize("n, status", [(3, "completed"), (4, "compensated")])
def test_repeated_identical_calls_stop_at_max_repeats(tmp_path, store, n, status):
    p = program(tmp_path, LOOPY, {"poll": lambda o: False})
    result = Engine(p, store, limits=Limits(max_repeats=3)).start({"o": {"id": 1, "amount": 1.0}, "n": n})
    assert result.status == status
    if status == "compensated":
        assert "loop detected: agent 'poll' called 4 times with the same input" in result.error
        assert "while[1]/done → while[2]/done → while[3]/done → while[4]/done" in result.error


def test_while_bound_is_enforced(tmp_path, store):
    p = program(tmp_path, LOOPY.replace("max 10", "max 2"), {"poll": lambda o: False})
    result = Engine(p, store).start({"o": {"id": 1, "amount": 1.0}, "n": 3})
    assert result.status == "compensated" and "still running after its bound of 2 iterations" in result.error


PING_PONG = """
pure agent billing(q: str) -> str { delegates support budget depth = 6 }
pure agent support(q: str) -> str { delegates billing budget depth = 6 }
workflow Ask(q: str) -> str { let a = call billing(q)  return a }
"""


def test_delegation_ping_pong_is_stopped_naming_the_cycle(tmp_path, store):
    calls = []

    def bounce(to):
        def fn(q):
            calls.append(to)
            return Delegate(to, {"q": q})
        return fn

    p = program(tmp_path, PING_PONG, {"billing": bounce("support"), "support": bounce("billing")})
    result = Engine(p, store).start({"q": "why was I charged twice?"})
    assert result.status == "compensated"
    assert "delegation loop detected: billing → support → billing" in result.error
    assert len(calls) == 2  # stopped at the first repetition, well within the depth budget


@pytest.mark.parametrize("depth, status", [(4, "completed"), (3, "compensated")])
def test_delegation_depth_budget_boundary(tmp_path, store, depth, status):
    def step(n):  # a chain of distinct questions: not a loop, but deep
        def fn(q):
            k = int(q)
            return f"answer {k}" if k >= 4 else Delegate("support" if n == "billing" else "billing", {"q": str(k + 1)})
        return fn

    p = program(tmp_path, PING_PONG.replace("depth = 6", f"depth = {depth}"),
                {"billing": step("billing"), "support": step("support")})
    result = Engine(p, store).start({"q": "0"})
    assert result.status == status, result.error
    if status == "compensated":
        assert "delegation depth 4 exceeds the budget of 3" in result.error


def test_undeclared_delegation_is_refused(tmp_path, store):
    p = program(tmp_path, """
pure agent a(q: str) -> str
pure agent b(q: str) -> str
workflow W(q: str) -> str { let x = call a(q)  return x }
""", {"a": lambda q: Delegate("b", {"q": q}), "b": lambda q: q})
    result = Engine(p, store).start({"q": "x"})
    assert "delegated to 'b', which its contract does not allow" in result.error


@pytest.mark.parametrize("calls, status", [(2, "completed"), (3, "compensated")])
def test_call_budget_boundary(tmp_path, store, calls, status):
    p = program(tmp_path, f"""
pure agent ask(i: int) -> int {{ budget calls = 2 }}
workflow W() -> int {{ let i = 0  repeat {calls} {{ let i = call ask(i) }}  return i }}
""", {"ask": lambda i: i + 1})
    result = Engine(p, store).start({})
    assert result.status == status
    if status == "compensated":
        assert "exceeded its budget of 2 calls" in result.error


def test_time_budget(tmp_path, store):
    import time

    p = program(tmp_path, """
pure agent slow(i: int) -> int { budget seconds = 0.05 }
workflow W() -> int { let x = call slow(1)  return x }
""", {"slow": lambda i: time.sleep(0.5) or i})
    result = Engine(p, store).start({})
    assert result.status == "compensated" and "took longer than its budget of 0.05 s" in result.error


def test_precondition(tmp_path, store):
    p = program(tmp_path, """
idempotent agent pay(o: Order) -> Receipt { requires o.amount > 0.0 and o.id >= 1 }
workflow W(o: Order) -> Receipt { let r = call pay(o)  return r }
""", {"pay": lambda o: {"key": "k", "amount": o.amount}})
    ok = Engine(p, store).start({"o": {"id": 1, "amount": 2.0}})
    assert ok.status == "completed" and ok.output == {"key": "k", "amount": 2.0}
    bad = Engine(p, store).start({"o": {"id": 1, "amount": -2.0}})
    assert "precondition of agent 'pay' does not hold: o.amount > 0.0 and o.id >= 1" in bad.error


def test_runtime_deadlock_is_detected(tmp_path, store):
    p = program(tmp_path, """
workflow W() -> int {
  parallel {
    branch a { let x = receive ping: int  send pong(x) }
    branch b { let y = receive pong: int  send ping(y) }
  }
  return 1
}
""", {})
    result = Engine(p, store, limits=Limits(internal_wait_s=5)).start({})
    assert result.status == "compensated"
    assert "deadlock: every running branch is waiting" in result.error
    assert "'a' waits for 'ping'" in result.error and "'b' waits for 'pong'" in result.error


def test_changed_workflow_on_resume_is_a_nondeterminism_error(tmp_path, store):
    text = """
idempotent agent one(o: Order) -> str
idempotent agent two(o: Order) -> str
workflow W(o: Order) -> str { let a = call one(o)  let ok = receive go: bool  let b = call two(o)  return b }
"""
    agents = {"one": lambda o: "1", "two": lambda o: "2"}
    first = Engine(program(tmp_path, text, agents), store).start({"o": {"id": 1, "amount": 1.0}})
    assert first.status == "waiting"
    changed = program(tmp_path, text.replace("let a = call one(o)", "let z = call two(o)  let a = call one(o)"), agents)
    result = Engine(changed, store).resume(first.run_id)
    assert result.status == "failed"
    assert "not deterministic: the recorded run went to step 'a' here, this replay reached step 'z'" in result.error


def test_geomir_model_agent_and_manifold_contracts(tmp_path, store):
    text = f"""
manifold H = poincare(c = 1.0)
pure agent embed(text: str) -> H[16]
pure agent encode(x: H[16]) -> H[8] {{ model "{EXAMPLES / 'hyperbolic_mlp.geo'}:HyperbolicMLP" }}
workflow W(text: str) -> H[8] {{ let x = call embed(text)  let y = call encode(x)  return y }}
"""

    def embed(text):
        rng = np.random.default_rng(len(text))
        v = rng.normal(size=(2, 16))
        return 0.5 * v / np.linalg.norm(v, axis=-1, keepdims=True)

    result = Engine(program(tmp_path, text, {"embed": embed}), store).start({"text": "hello"})
    assert result.status == "completed", result.error
    assert result.output.shape == (2, 8) and np.all(np.linalg.norm(result.output, axis=-1) < 1)
    outside = Engine(program(tmp_path, text, {"embed": lambda text: np.full((2, 16), 0.5)}), store).start({"text": "x"})
    assert "the result of agent 'embed' is not a point of dimension 16 on poincare(c=1): a point is not inside the ball" in outside.error
    wrong = Engine(program(tmp_path, text, {"embed": lambda text: np.zeros((2, 8))}), store).start({"text": "x"})
    assert "found shape (2, 8) (the last axis must have 16 coordinates)" in wrong.error


def test_trace_reconstructs_step_order_and_correlation(tmp_path, store):
    ledger = Ledger()
    path = tmp_path / "trace.jsonl"
    tracer = Tracer(path)
    result = Engine(program(tmp_path, SAGA, saga_agents(ledger)), store, tracer=tracer).start(
        {"o": {"id": 1, "amount": 5.0}}, correlation_id="order-77")
    tracer.shutdown()
    spans = read_spans(path, result.run_id)
    assert step_order(spans) == [s.step_id for s in store.journal(result.run_id)] == ["r", "c", "s"]
    assert correlation_ids(spans) == {"order-77"}
    assert {s.kind for s in spans} >= {"run", "step"}
    assert all(s.attributes.get("apel.input_hash") for s in spans if s.kind == "step")
