"""Regressions from the APEL bug hunt: a branch waiting outside is not a deadlock, limits
still compensate, runs are resumed only by their own program, events are neither lost nor
used twice, budgets survive a resume, unstorable results and unloadable agents, unreadable
files and long expressions, run spans of failed runs, and ``apel send`` messages."""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import pytest

from geomir import driver
from geomir.apel import compile_file, state_codec
from geomir.apel.cli import main as apel_main
from geomir.apel.engine import Engine, Limits
from geomir.apel.store import open_store
from geomir.apel.tracing import Tracer, read_spans
from geomir.diagnostics import EncodingError, SourceError, UsageError

from .helpers import program


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "runs.sqlite") as s:
        yield s


def cli(capsys, *argv: str) -> tuple[int, list, str]:
    capsys.readouterr()
    code = apel_main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) if line.startswith("{") else line for line in out.splitlines()], err


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APEL_STORE", raising=False)
    monkeypatch.delenv("APEL_TRACE", raising=False)
    (tmp_path / "in.json").write_text('{"n": 1}')
    return tmp_path


# --- 1. a branch waiting for an outside event is not a deadlock ----------------------------------

HANDOFF = """
workflow W(n: int) -> str {
  parallel {
    branch a { let go = receive start: str   send ready(go) }
    branch b { let r = receive ready: str timeout 100 }
  }
  return r
}
"""


def test_a_branch_that_waits_outside_then_sends_is_not_a_deadlock(tmp_path, store):
    engine = Engine(program(tmp_path / "w.apel", HANDOFF), store, limits=Limits(internal_wait_s=5))
    run = engine.start({"n": 1}, run_id="a1")
    assert (run.status, run.waiting_for) == ("waiting", "start")
    [done] = engine.deliver("a1", "start", "hi")
    assert (done.status, done.output) == ("completed", "hi")


# --- 2. max_steps stops the run and still compensates it -----------------------------------------

STEPS = """
agent do(x: int) -> int
idempotent agent undo(x: int) -> bool
workflow M(n: int) -> int {
  let a = call do(1) compensate undo(a)
  let b = call do(2) compensate undo(b)
  let c = call do(3) compensate undo(c)
  let d = call do(4) compensate undo(d)
  return d
}
"""


def test_max_steps_stops_the_run_and_compensates_it(tmp_path, store):
    log = []
    agents = {"do": lambda x: log.append(("do", x)) or x, "undo": lambda x: log.append(("undo", x)) or True}
    trace = tmp_path / "t.jsonl"
    tracer = Tracer(trace)
    result = Engine(program(tmp_path / "m.apel", STEPS, agents), store, tracer=tracer,
                    limits=Limits(max_steps=3)).start({"n": 1}, run_id="m1")
    tracer.shutdown()
    assert result.status == "compensated"
    assert result.error == "step 'd' failed: the run took more than 3 steps (Limits.max_steps)"
    assert log == [("do", 1), ("do", 2), ("do", 3), ("undo", 3), ("undo", 2), ("undo", 1)]
    spans = {s.name: s for s in read_spans(trace, "m1")}
    assert spans["call d"].status == "ERROR" and "more than 3 steps" in spans["call d"].status_message
    assert {"compensation compensate:a", "compensation compensate:c"} <= set(spans)
    assert spans["run M"].attributes["apel.status"] == "compensated"


# --- 3. each run is resumed by its own program ------------------------------------------------------

VERSION = """
pure agent tag(x: str) -> str
workflow W(n: int) -> str {{
  {first}
  let v = receive go: str
  let out = call tag(v)
  return out
}}
"""


def versions(root: Path):
    v1 = VERSION.format(first="let p = call tag(\"p\")")
    v2 = VERSION.format(first="let q = call tag(\"q\")  let p = call tag(\"p\")")
    for name, text in (("v1", v1), ("v2", v2)):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "w.apel").write_text(text.replace("pure agent tag(x: str) -> str",
                                                         f"pure agent tag(x: str) -> str {{ impl \"tag_{name}:tag\" }}"))
        (root / name / f"tag_{name}.py").write_text(f"def tag(x):\n    return '{name} ' + x\n")


def test_deliver_resume_and_recover_leave_runs_of_other_programs_alone(tmp_path, store):
    agents = {"tag": lambda x: x}
    e1 = Engine(program(tmp_path / "v1" / "w.apel", VERSION.format(first="let p = call tag(\"p\")"), agents), store)
    e2 = Engine(program(tmp_path / "v2" / "w.apel", VERSION.format(first="let q = call tag(\"q\")"), agents), store)
    e1.start({"n": 1}, run_id="r1", correlation_id="c")
    e2.start({"n": 1}, run_id="r2", correlation_id="c")
    assert [(r.run_id, r.status) for r in e1.deliver("c", "go", "yes")] == [("r1", "completed")]
    assert store.get_run("r2").status == "waiting"
    with pytest.raises(UsageError, match="run r2 is a run of .*v2/w.apel, not of this program"):
        e1.resume("r2")
    [done] = e2.deliver("c", "go", "too")
    assert (done.run_id, done.status, done.output) == ("r2", "completed", "too")
    e2.submit({"n": 2}, run_id="q2")
    e1.submit({"n": 1}, run_id="q1")
    assert [(r.run_id, r.status) for r in e1.recover()] == [("q1", "waiting")]
    assert store.get_run("q2").status == "running" and store.holder("q2") is None  # not claimed


def test_apel_send_resumes_each_run_with_its_own_file(here, capsys, monkeypatch):
    versions(here)
    for name in ("tag_v1", "tag_v2"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for run_id, name in (("r1", "v1"), ("r2", "v2")):
        code, [line], _ = cli(capsys, "run", f"{name}/w.apel", "--input", "in.json", "--run-id", run_id,
                              "--correlation", "c")
        assert code == 0 and line["status"] == "waiting"
    code, lines, err = cli(capsys, "send", "c", "go", "--data", '"yes"')
    assert code == 0, err
    assert [(r["run_id"], r["status"], r.get("output")) for r in lines] == [
        ("r1", "completed", "v1 yes"), ("r2", "waiting", None)]  # one event, taken by one run; r2 not broken
    code, lines, err = cli(capsys, "send", "c", "go", "--data", '"no"')
    assert [(r["run_id"], r["status"], r.get("output")) for r in lines] == [("r2", "completed", "v2 no")]


# --- 4. an event that comes while the run is busy is not lost ---------------------------------------

BUSY = """
pure agent slow(s: str) -> str
workflow R(n: int) -> str {
  parallel {
    branch a { let x = receive e1: str  let y = call slow(x) }
    branch b { let z = receive e2: str }
  }
  return y + z
}
"""


def test_an_event_delivered_while_the_run_is_busy_is_taken(tmp_path, store):
    path = tmp_path / "r.apel"
    during: list = []

    def slow(s):
        deadline = time.time() + 5  # wait until branch b has found no e2 and stopped
        while "parallel@b/z" not in {st.step_id for st in store.journal("w1")} and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        during.extend(Engine(program(path, BUSY, {"slow": slow}), store, worker="other").deliver("w1", "e2", "two"))
        return s

    engine = Engine(program(path, BUSY, {"slow": slow}), store)
    assert engine.start({"n": 1}, run_id="w1").status == "waiting"
    [done] = engine.deliver("w1", "e1", "one")
    assert during == []  # the run was busy: the event was only stored
    assert (done.status, done.output) == ("completed", "onetwo")


# --- 5. after a crash, an event taken but not journaled goes to one receive only ---------------------

TWO_RECEIVES = """
workflow O(n: int) -> str {
  parallel {
    branch a { let x = receive ev: str }
    branch b { let y = receive ev: str }
  }
  return x + "," + y
}
"""


def test_an_orphan_event_is_used_by_one_receive_only(tmp_path, store):
    engine = Engine(program(tmp_path / "o.apel", TWO_RECEIVES), store)
    assert engine.start({"n": 1}, run_id="o1").status == "waiting"
    store.post_event("o1", "ev", state_codec.encode("first"))
    store.post_event("o1", "ev", state_codec.encode("second"))
    assert store.take_event("o1", "ev", "o1") is not None  # the worker took 'first' and died
    result = engine.resume("o1")
    assert result.status == "completed" and sorted(result.output.split(",")) == ["first", "second"]
    assert all(e.consumed_by == "o1" for e in store.events("o1"))


# --- 6. call budgets count the same after a resume --------------------------------------------------

FLAKY = """
pure agent flaky(x: int) -> int { budget calls = 3 retry 1 }
workflow B(n: int) -> int { let a = call flaky(n)  let e = receive go: str  let b = call flaky(a)  return b }
"""
DELEGATING = """
pure agent p(x: int) -> int { delegates q budget depth = 2 }
pure agent q(x: int) -> int { budget calls = 1 }
workflow D(n: int) -> int { let a = call p(n)  let e = receive go: str  let b = call q(a)  return b }
"""


def flaky(x, apel):
    if apel.attempt == 1:
        raise RuntimeError("first attempt fails")
    return x + 1


@pytest.mark.parametrize("text, agents, error", [
    (FLAKY, {"flaky": flaky}, "agent 'flaky' exceeded its budget of 3 calls"),
    (DELEGATING, {"p": lambda x: __import__("geomir.apel").apel.Delegate("q", {"x": x}), "q": lambda x: x + 1},
     "agent 'q' exceeded its budget of 1 calls"),
])
def test_call_budgets_are_the_same_with_and_without_a_resume(tmp_path, store, text, agents, error):
    engine = Engine(program(tmp_path / "b.apel", text, agents), store)
    store.post_event("straight", "go", state_codec.encode("x"))  # the event is there: no wait
    straight = engine.start({"n": 1}, run_id="straight")
    assert engine.start({"n": 1}, run_id="resumed").status == "waiting"
    [resumed] = engine.deliver("resumed", "go", "x")
    assert straight.status == resumed.status == "compensated"
    assert error in straight.error and error in resumed.error


# --- 7. a result the store cannot hold fails the attempt ---------------------------------------------

def test_an_unstorable_result_fails_the_step_and_compensates(tmp_path, store):
    calls = []
    agents = {"mark": lambda n: n, "unmark": lambda m: True,
              "weird": lambda x: calls.append(x) or {"when": datetime.datetime(2024, 1, 1)}}
    p = program(tmp_path / "j.apel", """
agent mark(n: int) -> int
idempotent agent unmark(m: int) -> bool
pure agent weird(x: int) -> json { retry 1 }
workflow J(n: int) -> json { let m = call mark(n) compensate unmark(m)  let w = call weird(n)  return w }
""", agents)
    result = Engine(p, store).start({"n": 1}, run_id="j1")
    assert result.status == "compensated"
    assert result.error == ("step 'w' failed: the result of agent 'weird' cannot be stored: "
                            "state['when']: cannot store a datetime")
    assert len(calls) == 2  # retried like any broken result contract
    assert [s.step_id for s in store.journal("j1") if s.status == "completed"] == ["m", "compensate:m"]


# --- 8. an agent that cannot be loaded leaves the run for a fix ---------------------------------------

UNLOADABLE = """agent do(x: int) -> int { impl "effects:do" }
idempotent agent undo(x: int) -> bool { impl "effects:undo" }
pure agent gone(x: int) -> int { impl "nosuchmodule:fn" }
workflow S(n: int) -> int {
  let s1 = call do(1) compensate undo(s1)
  let s2 = call gone(s1)
  return s2
}
"""
EFFECTS = """
def do(x, apel):
    open("effects.log", "a").write("do " + apel.idempotency_key + "\\n")
    return x

def undo(x, apel):
    open("effects.log", "a").write("undo " + apel.idempotency_key + "\\n")
    return True
"""


def test_an_unloadable_agent_is_reported_and_the_run_left_to_its_lease(here, capsys, monkeypatch):
    (here / "w.apel").write_text(UNLOADABLE)
    (here / "effects.py").write_text(EFFECTS)
    monkeypatch.delitem(sys.modules, "effects", raising=False)
    cli(capsys, "run", "w.apel", "--input", "in.json", "--run-id", "q1", "--queue")
    code, lines, err = cli(capsys, "worker", "--once")
    assert code == 1 and lines == []
    assert "run q1:" in err and "w.apel:3:12: error: agent 'gone' cannot be loaded: cannot import " \
                                "'nosuchmodule:fn'" in err
    assert (here / "effects.log").read_text().split() == ["do", "q1/s1"]  # nothing undone
    with open_store(here / ".apel" / "runs.sqlite") as s:
        assert s.get_run("q1").status == "running"


def test_an_unloadable_agent_raises_from_the_engine(tmp_path, store):
    from geomir.apel.engine import AgentUnavailable

    p = program(tmp_path / "w.apel", UNLOADABLE.replace('"effects:do"', '"nosuchmodule:do"'), {})
    with pytest.raises(AgentUnavailable, match="agent 'do' cannot be loaded") as err:
        Engine(p, store).start({"n": 1}, run_id="s1")
    assert err.value.span is not None and err.value.span.line == 1
    assert store.get_run("s1").status == "running"


# --- 9. a file that is not UTF-8 ---------------------------------------------------------------------

def test_a_file_that_is_not_utf8_is_a_clean_error(here, capsys):
    (here / "bin.apel").write_bytes(b"\xff\xfe\x00bin")
    with pytest.raises(EncodingError, match=r"bin.apel:1:1: the file is not UTF-8 \(byte 0xff at offset 0"):
        compile_file(here / "bin.apel")  # geomir.apel.load reads as the CLIs do
    capsys.readouterr()
    # the CLIs read files as every geomir tool does (docs/cli.md): an error at the byte, exit 1
    assert driver.main(["bin.apel", "--check"]) == 1
    assert "bin.apel:1:1: error: the file is not UTF-8 (byte 0xff at offset 0" in capsys.readouterr().err
    code, _, err = cli(capsys, "run", "bin.apel")
    assert code == 1 and "bin.apel:1:1: error: the file is not UTF-8" in err


# --- 10. long expressions ------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, result", [
    ("+".join(["1"] * 2000), 2000),
    ("0" + "".join(f" - {i}" for i in range(1000)), -sum(range(1000))),
    ("not " * 1001 + "true", False),
])
def test_long_operator_chains_compile_and_run(tmp_path, store, expr, result):
    kind = "bool" if isinstance(result, bool) else "int"
    p = program(tmp_path / "long.apel", f"workflow W() -> {kind} {{ return {expr} }}\n")
    assert Engine(p, store).start({}).output == result


def test_deep_nesting_is_a_located_error(tmp_path):
    path = tmp_path / "deep.apel"
    path.write_text("workflow W() -> int {\n  return " + "1 + (" * 400 + "1" + ")" * 400 + "\n}\n")
    with pytest.raises(SourceError, match="expression nested more than 200 levels deep") as err:
        compile_file(path)
    assert err.value.span.line == 2


# --- 11. run spans of failed and lost runs -------------------------------------------------------------

def test_a_failed_run_span_has_its_status_and_cause(tmp_path, store):
    text = """
pure agent one(n: int) -> int
workflow W(n: int) -> int { let a = call one(n)  let ok = receive go: bool  return a }
"""
    trace = tmp_path / "t.jsonl"
    tracer = Tracer(trace)
    first = Engine(program(tmp_path / "w.apel", text, {"one": lambda n: n}), store, tracer=tracer).start({"n": 1})
    changed = program(tmp_path / "w.apel", text.replace("let a = call one(n)", "let z = call one(n)  let a = z"),
                      {"one": lambda n: n})
    result = Engine(changed, store, tracer=tracer).deliver(first.run_id, "go", True)[0]
    tracer.shutdown()
    assert result.status == "failed"
    runs = [s for s in read_spans(trace, first.run_id) if s.kind == "run"]
    assert [s.attributes.get("apel.status") for s in runs] == ["waiting", "failed"]
    assert "not deterministic" in runs[-1].attributes["apel.cause"]


# --- 12. apel send says when no run waits for this event --------------------------------------------------

def test_send_says_which_events_the_waiting_runs_wait_for(here, capsys):
    (here / "w.apel").write_text("workflow A(n: int) -> str { let v = receive go: str  return v }\n")
    cli(capsys, "run", "w.apel", "--input", "in.json", "--run-id", "x1")
    code, lines, _ = cli(capsys, "send", "x1", "other", "--data", '"v"')
    assert code == 0
    assert lines == ["event 'other' stored for correlation id x1 (no run is waiting for it yet: "
                     "run x1 waits for 'go')"]
