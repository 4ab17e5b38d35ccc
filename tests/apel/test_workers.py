"""Several worker processes executing runs from one store at the same time (`apel worker`),
one of them SIGKILLed while it holds runs: every run ends completed or compensated, each
side effect happens exactly once, a run is executed by one worker at a time, and the
workers really ran side by side."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

from geomir.apel import load
from geomir.apel.engine import Engine
from geomir.apel.store import FINAL_STATUSES, open_store
from geomir.apel.tracing import read_spans

CRASH = Path(__file__).parent / "crash"
RUNS = 24
WORKERS = 3
LEASE = 1.0


def _expected(i: int) -> set[str]:
    base = {f"q{i}/r", f"q{i}/parallel@pay/c", f"q{i}/parallel@note/notify", f"q{i}/repeat[1]/notify#2",
            f"q{i}/repeat[2]/notify#2"}
    if i % 4 == 3:
        return base | {f"q{i}/compensate:parallel@pay/c", f"q{i}/compensate:r"}
    return base | {f"q{i}/s"}


def _worker(url: str, ledger: Path, trace: Path, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, LEDGER=str(ledger))
    code = "import sys; from geomir.apel.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "--store", url, "--trace", str(trace), "--lease", str(LEASE),
                             "worker", "--poll", "0.05"], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """In the worker: Ctrl-C acts even when the tests run as a background job (whose shell
    starts commands with SIGINT ignored, which Python then keeps and the worker inherits)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _holder(url: str, workers: list[subprocess.Popen]) -> subprocess.Popen | None:
    """A worker that holds a running run now (worker names are host:pid:random), or None."""
    with open_store(url) as store:
        owners = [r.owner or "" for r in store.list_runs(status="running")]
    return next((w for w in workers if any(f":{w.pid}:" in o for o in owners)), None)


def _finished(url: str) -> int:
    with open_store(url) as store:
        return sum(r.status in FINAL_STATUSES for r in store.list_runs())


def test_workers_share_a_store_and_take_over_a_killed_one(store_url, tmp_path):
    ledger, trace = tmp_path / "ledger.sqlite", tmp_path / "trace.jsonl"
    program = load(CRASH / "fulfil.apel")
    with open_store(store_url) as store:
        engine = Engine(program, store)
        for i in range(RUNS):
            engine.submit({"o": {"id": i, "amount": 10.0 + i}}, run_id=f"q{i}", correlation_id=f"order-{i}",
                          file=str(CRASH / "fulfil.apel"))
    workers = [_worker(store_url, ledger, trace, tmp_path) for _ in range(WORKERS)]
    try:
        victim, deadline = None, time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:  # a worker inside a run, once a
            time.sleep(0.01)                                    # quarter of the runs has finished
            if _finished(store_url) >= RUNS // 4:
                victim = _holder(store_url, workers)
                if victim is not None:  # frozen, then checked: it may have finished that run meanwhile
                    victim.send_signal(signal.SIGSTOP)
                    if _holder(store_url, [victim]) is None:
                        victim.send_signal(signal.SIGCONT)
                        victim = None
        assert victim is not None, "no worker held a run after a quarter of the runs had finished"
        assert victim.poll() is None, victim.communicate()[1]
        others = [w for w in workers if w is not victim]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        with open_store(store_url) as store:  # worker names are host:pid:random
            held = [r.run_id for r in store.list_runs(status="running") if f":{victim.pid}:" in (r.owner or "")]
        left_when_killed = RUNS - _finished(store_url)
        deadline = time.monotonic() + 120
        while _finished(store_url) < RUNS and time.monotonic() < deadline:
            assert all(w.poll() is None for w in others), [w.communicate()[1] for w in others]
            time.sleep(0.1)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
        errors = [w.communicate(timeout=30)[1] for w in workers]
    assert left_when_killed > WORKERS, "the kill came too late to leave the others work"
    assert held, "the killed worker held no run: the kill did not land inside a run"

    with open_store(store_url) as store:
        runs = {r.run_id: r for r in store.list_runs()}
    for i in range(RUNS):
        want = "compensated" if i % 4 == 3 else "completed"
        assert runs[f"q{i}"].status == want, (i, runs[f"q{i}"].error, errors)
    con = sqlite3.connect(ledger)
    effects = [k for (k,) in con.execute("SELECT key FROM effects")]
    con.close()
    assert len(effects) == len(set(effects))
    assert set(effects) == set().union(*(_expected(i) for i in range(RUNS)))

    executions = [s for s in read_spans(trace) if s.attributes.get("apel.kind") == "run"]
    by_worker: dict[str, list] = {}
    for s in executions:
        by_worker.setdefault(s.attributes["apel.worker"], []).append(s)
    assert len(by_worker) >= 2, "the surviving workers did not share the runs"
    for run_id in held:  # the dead worker's run was finished by a live one
        assert any(s.attributes["apel.run_id"] == run_id and f":{victim.pid}:" not in s.attributes["apel.worker"]
                   for s in executions)
    # One worker at a time per run: the executions of a run never overlap.
    by_run: dict[str, list] = {}
    for s in executions:
        by_run.setdefault(s.attributes["apel.run_id"], []).append(s)
    for run_id, spans in by_run.items():
        for a, b in combinations(sorted(spans, key=lambda s: s.start_ns), 2):
            assert a.end_ns <= b.start_ns, f"run {run_id} executed by two workers at once"
    # Side by side: runs of different workers overlapped in time.
    overlapping = any(a.start_ns < b.end_ns and b.start_ns < a.end_ns
                      for (wa, sa), (wb, sb) in combinations(by_worker.items(), 2) for a in sa for b in sb)
    assert overlapping, "the workers never ran at the same time"
