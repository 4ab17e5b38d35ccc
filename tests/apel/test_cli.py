"""The ``apel`` command: run, send, resume, runs, trace, a work queue for ``apel worker``,
a receive timeout enforced by the worker, and its errors (exit codes, file:line:col)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from geomir.apel.cli import main

WORKFLOW = """
type Order = { id: int, amount: float }
agent charge(o: Order) -> float { impl "cli_agents:charge" }
idempotent agent refund(paid: float) -> bool { impl "cli_agents:refund" }
workflow Pay(o: Order) -> str {
  let paid = call charge(o) compensate refund(paid)
  let ok = receive confirm: bool timeout TIMEOUT
  if ok { return "paid" } else { fail "not confirmed" }
}
"""

AGENTS = """
import os

def _log(line):
    with open(os.path.join(os.path.dirname(__file__), "effects.log"), "a") as f:
        f.write(line + "\\n")

def charge(o, apel):
    _log(f"charge {apel.idempotency_key}")
    return o.amount

def refund(paid, apel):
    _log(f"refund {apel.idempotency_key}")
    return True
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A workflow, its agents and an order in a fresh directory (the store is .apel/ there)."""
    def make(timeout: float = 30.0):
        (tmp_path / "pay.apel").write_text(WORKFLOW.replace("TIMEOUT", str(timeout)))
        (tmp_path / "cli_agents.py").write_text(AGENTS)
        (tmp_path / "in.json").write_text(json.dumps({"o": {"id": 7, "amount": 12.5}}))
        return tmp_path
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APEL_STORE", raising=False)
    monkeypatch.delenv("APEL_TRACE", raising=False)
    monkeypatch.delitem(sys.modules, "cli_agents", raising=False)
    return make


def apel(capsys, *argv: str) -> tuple[int, list, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    lines = [json.loads(line) if line.startswith("{") else line for line in out.splitlines()]
    return code, lines, err


def effects(path) -> list[str]:
    log = path / "effects.log"
    return log.read_text().split() if log.exists() else []


def test_run_send_runs_and_trace(project, capsys):
    root = project()
    code, [started], _ = apel(capsys, "run", "pay.apel", "--input", "in.json", "--run-id", "p1", "--correlation", "o-7")
    assert code == 0 and started == {"run_id": "p1", "status": "waiting", "correlation_id": "o-7",
                                     "waiting_for": "confirm"}
    code, [done], _ = apel(capsys, "send", "o-7", "confirm", "--data", "true")
    assert code == 0 and done["status"] == "completed" and done["output"] == "paid"
    code, lines, _ = apel(capsys, "runs")
    assert code == 0 and "p1" in lines[0] and "completed" in lines[0]
    code, lines, _ = apel(capsys, "trace", "p1")
    text = "\n".join(map(str, lines))
    assert code == 0 and "call paid" in text and "receive confirm" in text and "decision if" in text
    assert effects(root) == ["charge", "p1/paid"]


def test_a_no_compensates_and_exits_1(project, capsys):
    root = project()
    apel(capsys, "run", "pay.apel", "--input", "in.json", "--run-id", "p2")
    code, [done], _ = apel(capsys, "send", "p2", "confirm", "--data", "false")
    assert code == 1 and done["status"] == "compensated" and "not confirmed" in done["error"]
    assert effects(root) == ["charge", "p2/paid", "refund", "p2/compensate:paid"]


def test_queued_runs_are_run_by_a_worker(project, capsys):
    project()
    for i in range(2):
        code, [queued], _ = apel(capsys, "run", "pay.apel", "--input", "in.json", "--run-id", f"q{i}", "--queue")
        assert code == 0 and queued == {"run_id": f"q{i}", "status": "queued"}
    code, lines, _ = apel(capsys, "worker", "--once")
    assert code == 0 and [(r["run_id"], r["status"]) for r in lines] == [("q0", "waiting"), ("q1", "waiting")]


def test_the_worker_enforces_a_receive_timeout(project, capsys):
    root = project(timeout=0.3)
    code, [started], _ = apel(capsys, "run", "pay.apel", "--input", "in.json", "--run-id", "t1")
    assert started["status"] == "waiting"
    code, lines, _ = apel(capsys, "worker", "--once")
    assert code == 0 and lines == []  # not due yet
    time.sleep(0.4)
    code, [woken], _ = apel(capsys, "worker", "--once")
    assert woken["status"] == "compensated" and "no event 'confirm'" in woken["error"] and "0.3 s" in woken["error"]
    assert effects(root) == ["charge", "t1/paid", "refund", "t1/compensate:paid"]


def test_errors_are_reported_with_their_place_and_exit_code(project, capsys, tmp_path):
    project()
    code, _, err = apel(capsys, "resume", "ghost")
    assert code == 2 and "no run 'ghost' in the store" in err
    (tmp_path / "bad.json").write_text('{"o": {"id": 1,}}')
    code, _, err = apel(capsys, "run", "pay.apel", "--input", "bad.json")
    assert code == 2 and "bad.json:1:16: not JSON" in err
    code, _, err = apel(capsys, "run", "pay.apel", "--input", "in.json", "--workflow", "Nope")
    assert code != 0 and "Nope" in err
    (tmp_path / "broken.apel").write_text("workflow W() -> int {\n  return 1 +\n}\n")
    code, _, err = apel(capsys, "run", "broken.apel")
    assert code == 1 and "broken.apel:3:1" in err
    code, _, err = apel(capsys, "worker", "--poll", "0")
    assert code == 2 and "--poll must be a positive number of seconds" in err


def test_a_worker_reports_runs_it_cannot_load_and_exits_1_with_once(project, capsys, tmp_path):
    project()
    for run_id in ("gone", "also"):
        apel(capsys, "run", "pay.apel", "--input", "in.json", "--run-id", run_id, "--queue")
    (tmp_path / "pay.apel").rename(tmp_path / "elsewhere.apel")  # the runs' workflow file disappears
    code, lines, err = apel(capsys, "worker", "--once")
    assert code == 1 and lines == []
    assert "run gone:" in err and "run also:" in err and "pay.apel" in err
