"""Crash recovery: workflows run in a subprocess that is SIGKILLed at random points, many
times; then the runs are resumed. Every run must end completed or compensated, each side
effect must have happened exactly once (by its idempotency key), and nothing committed
may be lost (every journal entry seen after a kill is still there, unchanged, at the end)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from geomir.apel import state_codec
from geomir.apel.store import open_store
from geomir.apel.tracing import read_spans

HERE = Path(__file__).parent / "crash"
RUNS = 16
KILLS = 12
LEASE = 0.6


def _driver(url: str, ledger: Path, trace: Path) -> subprocess.Popen:
    env = dict(os.environ, LEDGER=str(ledger))
    return subprocess.Popen([sys.executable, str(HERE / "driver.py"), url, str(RUNS), str(LEASE), str(trace)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _snapshot(url: str) -> dict[tuple[str, str], tuple[str, bytes | None]]:
    with open_store(url) as store:
        return {(r.run_id, s.step_id): (s.status, s.result) for r in store.list_runs() for s in store.journal(r.run_id)
                if s.status == "completed"}


def _all_final(url: str) -> bool:
    with open_store(url) as store:
        runs = store.list_runs()
    return len(runs) == RUNS and all(r.status in ("completed", "compensated", "failed") for r in runs)


def _expected(i: int) -> set[str]:
    """The effects run r{i} must leave, by idempotency key."""
    base = {f"r{i}/r", f"r{i}/parallel@pay/c", f"r{i}/parallel@note/notify", f"r{i}/repeat[1]/notify#2",
            f"r{i}/repeat[2]/notify#2"}
    if i % 4 == 3:  # ship fails: the charge and the reservation are undone
        return base | {f"r{i}/compensate:parallel@pay/c", f"r{i}/compensate:r"}
    return base | {f"r{i}/s"}


def test_sigkill_many_times_then_resume(store_url, tmp_path):
    ledger, trace = tmp_path / "ledger.sqlite", tmp_path / "trace.jsonl"
    rng = random.Random(1234)
    committed: dict = {}
    kills = 0
    for _ in range(KILLS):
        if _all_final(store_url):
            break
        proc = _driver(store_url, ledger, trace)
        time.sleep(rng.uniform(0.3, 1.2))  # interpreter start-up is ~0.3-0.5 s: kills land in every phase
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        committed.update(_snapshot(store_url))
    assert kills >= 5, f"only {kills} kills landed before the work was done: the test would not test crashes"
    final = _driver(store_url, ledger, trace)
    out, err = final.communicate(timeout=240)
    assert final.returncode == 0, err
    assert "done" in out

    with open_store(store_url) as store:
        runs = {r.run_id: r for r in store.list_runs()}
        assert sorted(runs) == sorted(f"r{i}" for i in range(RUNS))
        for i in range(RUNS):
            r = runs[f"r{i}"]
            want = "compensated" if i % 4 == 3 else "completed"
            assert r.status == want, (r.run_id, r.status, r.error)
            if want == "completed":
                assert state_codec.decode(r.output) == f"order {i} shipped"
            else:
                assert "nothing left to ship" in r.error
    # Nothing committed was lost or changed.
    final_journal = _snapshot(store_url)
    for key, value in committed.items():
        assert final_journal.get(key) == value, key
    # Each side effect exactly once, and no effect that should not exist.
    con = sqlite3.connect(ledger)
    effects = [k for (k,) in con.execute("SELECT key FROM effects")]
    deliveries = con.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    con.close()
    assert len(effects) == len(set(effects))
    assert set(effects) == set().union(*(_expected(i) for i in range(RUNS)))
    assert deliveries >= len(effects)
    # The trace of a finished run names its correlation id on every span.
    spans = read_spans(trace, "r0")
    assert spans and {s.correlation_id for s in spans} == {"order-0"}
