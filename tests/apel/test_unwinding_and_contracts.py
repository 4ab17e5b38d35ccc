"""Regressions from the second APEL bug hunt: a run resumed while unwinding keeps unwinding,
idempotency keys and run ids, effects reached through delegation, non-determinism on
replay (order and arguments), expression errors, strict run-time types, sub-workflow
results, loop detection after type conversion, span parents, and worker options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geomir.apel import compile_file
from geomir.apel.agents import ContractViolation, check_point
from geomir.apel.checks import run_checks
from geomir.apel.cli import main as apel_main
from geomir.apel.engine import Engine, Limits
from geomir.apel.store import open_store
from geomir.apel.tracing import Tracer, read_spans
from geomir.diagnostics import UsageError


from .test_regressions import program  # noqa: E402


@pytest.fixture
def store(tmp_path):
    """A SQLite store (the tests read its file through the CLI too)."""
    with open_store(tmp_path / "runs.sqlite") as s:
        yield s


class Crash(BaseException):
    """The worker process dies (the engine does not catch it)."""


# --- 1. a run that crashed while unwinding keeps unwinding ---------------------------------------

TIMEOUT_WHILE_SENDING = """
agent eff(x: int) -> int
idempotent agent undo(x: int) -> bool
pure agent slow(x: int) -> int
workflow W(n: int) -> int {
  let e = call eff(n) compensate undo(e)
  parallel {
    branch a { let v = receive go: int timeout 0.1 }
    branch b { let s = call slow(n)  send go(s) }
  }
  return v
}
"""


def test_a_run_resumed_while_unwinding_keeps_unwinding(tmp_path, store):
    """The internal receive times out while branch b still runs; the worker dies inside
    the compensation. The resumed run must not replay past the failure (b's send would
    now reach the receive and the run complete): it finishes unwinding, once."""
    import time

    undone: list[tuple[str, int]] = []

    def undo(x, apel):
        undone.append((apel.idempotency_key, apel.attempt))
        if len(undone) == 1:
            raise Crash("worker killed inside the compensation")
        return True

    agents = {"eff": lambda x: x, "undo": undo, "slow": lambda x: time.sleep(0.4) or x}
    prog = program(tmp_path / "w.apel", TIMEOUT_WHILE_SENDING, agents)
    with pytest.raises(Crash):
        Engine(prog, store, worker="w1").start({"n": 7}, run_id="r1")
    result = Engine(prog, store, worker="w1").resume("r1")
    assert result.status == "compensated", result
    assert result.error == "step 'parallel@a/v' failed: no 'go' from another branch within 0.1 s"
    assert undone == [("r1/compensate:e", 1), ("r1/compensate:e", 2)]
    steps = {s.step_id: s for s in store.journal("r1")}
    assert steps["compensate:e"].status == "completed"
    assert steps["parallel@a/v"].status == "failed"
    assert Engine(prog, store, worker="w1").resume("r1").status == "compensated"
    assert len(undone) == 2


# --- 2. run ids and idempotency keys -------------------------------------------------------------

FLAT = """
agent pay(x: int) -> int
idempotent agent undo(x: int) -> bool
workflow Flat(n: int) -> int {
  let p = call pay(n) compensate undo(p)
  return p
}
"""


@pytest.mark.parametrize("run_id, message", [
    ("cust/order", "contains '/'"),
    ("", "must be a non-empty string"),
])
def test_run_ids_that_would_make_keys_ambiguous_are_refused(tmp_path, store, run_id, message):
    prog = program(tmp_path / "w.apel", FLAT, {"pay": lambda x: x, "undo": lambda x: True})
    with pytest.raises(UsageError, match=message):
        Engine(prog, store).start({"n": 1}, run_id=run_id)
    with pytest.raises(UsageError, match="correlation id must be a non-empty string"):
        Engine(prog, store).start({"n": 1}, run_id="ok", correlation_id="")
    assert store.list_runs() == []


def test_a_duplicate_run_id_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ag.py").write_text("def pay(x):\n    return x\n\ndef undo(x):\n    return True\n")
    (tmp_path / "w.apel").write_text(FLAT.replace("agent pay(x: int) -> int", 'agent pay(x: int) -> int { impl "ag:pay" }')
                                     .replace("-> bool", '-> bool { impl "ag:undo" }'))
    (tmp_path / "in.json").write_text('{"n": 1}')
    argv = ["--store", "s.sqlite", "--trace", "t.jsonl", "run", "w.apel", "--input", "in.json", "--run-id", "r1"]
    assert apel_main(argv) == 0
    capsys.readouterr()
    assert apel_main(argv) == 2
    assert "run 'r1' already exists" in capsys.readouterr().err


# --- 3. effects reached through delegation need a compensation -----------------------------------

DELEGATING = """
agent eff(x: int) -> int
pure agent middle(x: int) -> int { delegates eff }
pure agent front(x: int) -> int { delegates middle }
workflow D(n: int) -> int {
  let a = call front(n)
  return a
}
"""


def test_a_call_that_may_delegate_to_an_effect_needs_a_compensation(tmp_path):
    module, _ = compile_file(_write(tmp_path / "d.apel", DELEGATING))
    errors = run_checks(module, ["compensation"])
    assert len(errors) == 1
    assert "step 'a' calls agent 'front', which may delegate to 'eff' (front → middle → eff)" in errors[0].message
    assert errors[0].span.line == 6
    ok = DELEGATING.replace("call front(n)", "call front(n) compensate front(a)")
    assert run_checks(compile_file(_write(tmp_path / "ok.apel", ok))[0], ["compensation"]) == []


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- 4. non-determinism: order and arguments -----------------------------------------------------

ORDERED = """
agent eff(x: int) -> int
idempotent agent undo(x: int) -> bool
workflow N(n: int) -> int {
  STEPS
  let v = receive go: int
  return a + b + v
}
"""
A = "let a = call eff(n) compensate undo(a)"
B = "let b = call eff(n + 1) compensate undo(b)"


@pytest.mark.parametrize("steps, message", [
    (f"{B}\n  {A}", "the recorded run went to step 'a' here, this replay reached step 'b'"),
    (f"{A}\n  {B.replace('n + 1', 'n + 2')}", "step 'b' called agent 'eff' with other arguments when recorded"),
])
def test_steps_reordered_or_given_other_arguments_stop_the_replay(tmp_path, store, steps, message):
    agents = {"eff": lambda x: x, "undo": lambda x: True}
    path = tmp_path / "n.apel"
    first = Engine(program(path, ORDERED.replace("STEPS", f"{A}\n  {B}"), agents), store)
    assert first.start({"n": 7}, run_id="nd1").status == "waiting"
    edited = Engine(program(path, ORDERED.replace("STEPS", steps), agents), store)
    [result] = edited.deliver("nd1", "go", 1)
    assert result.status == "failed"
    assert f"run nd1 is not deterministic: {message}" in result.error


# --- 5. expression errors fail the step, located; a worker survives a bad run ------------------

@pytest.mark.parametrize("body, inputs, error", [
    ("let j = call asjson(n)\n  let k = -j\n  return 0", {"n": 1}, "w.apel:5:11: cannot evaluate -{'a': 1}"),
    ("let x = int(1e308 * 10.0)\n  return x", {"n": 1}, "w.apel:4:11: int(inf) failed"),
    ("let x = n / 0\n  return 0", {"n": 1}, "w.apel:4:11: cannot evaluate 1 / 0"),
])
def test_an_expression_error_fails_the_step_at_its_location(tmp_path, store, body, inputs, error):
    text = f"""
pure agent asjson(x: int) -> json
workflow W(n: int) -> int {{
  {body}
}}
"""
    prog = program(tmp_path / "w.apel", text, {"asjson": lambda x: {"a": 1}})
    result = Engine(prog, store).start(inputs)
    assert result.status == "compensated"
    assert result.error.startswith(str(tmp_path / error)), result.error


def test_points_of_different_batch_shapes_are_not_equal(tmp_path, store):
    text = """
manifold H = poincare(c = 1.0)
workflow W(p: H[2], q: H[2]) -> bool {
  return p == q
}
"""
    prog = program(tmp_path / "w.apel", text)
    result = Engine(prog, store).start({"p": [[0.1, 0.1]] * 3, "q": [[0.1, 0.1], [0.2, 0.2]]})
    assert (result.status, result.output) == ("completed", False)


def test_a_worker_survives_a_run_that_hits_an_internal_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.apel").write_text('workflow W(n: int) -> int {\n  return n\n}\n')
    (tmp_path / "in.json").write_text('{"n": 1}')
    base = ["--store", "s.sqlite", "--trace", "t.jsonl"]
    for run_id in ("bad", "good"):
        assert apel_main(base + ["run", "w.apel", "--input", "in.json", "--run-id", run_id, "--queue"]) == 0
    resume = Engine.resume

    def poisoned(self, run_id):
        if run_id == "bad":
            raise RuntimeError("a bug in the runtime")
        return resume(self, run_id)

    monkeypatch.setattr(Engine, "resume", poisoned)
    capsys.readouterr()
    assert apel_main(base + ["worker", "--once"]) == 3
    out, err = capsys.readouterr()
    assert "run bad: internal error: RuntimeError: a bug in the runtime" in err
    assert json.loads(out.splitlines()[-1])["run_id"] == "good"
    with open_store(tmp_path / "s.sqlite") as s:
        assert s.get_run("good").status == "completed"


# --- 6. run-time types are strict -----------------------------------------------------------------

TYPED = """
workflow E(n: int, x: float) -> json {
  let a = receive go: int
  let f = receive flag: bool
  return [a, n]
}
"""


@pytest.mark.parametrize("inputs", [{"n": "7", "x": 1.0}, {"n": True, "x": 1.0}, {"n": 7.0, "x": 1.0},
                                    {"n": 7, "x": "1.5"}])
def test_inputs_are_checked_strictly(tmp_path, store, inputs):
    prog = program(tmp_path / "e.apel", TYPED)
    with pytest.raises(UsageError, match="is not (int|float)"):
        Engine(prog, store).start(inputs)


@pytest.mark.parametrize("go, flag, error", [
    ("5", True, "event 'go' is not int"),
    (True, True, "event 'go' is not int"),
    (5, "yes", "event 'flag' is not bool"),
    (5, 1, "event 'flag' is not bool"),
])
def test_events_are_checked_strictly(tmp_path, store, go, flag, error):
    engine = Engine(program(tmp_path / "e.apel", TYPED), store)
    assert engine.start({"n": 7, "x": 2}, run_id="e").status == "waiting"  # an int fits a float
    store.post_event("e", "flag", _encoded(flag))
    [result] = engine.deliver("e", "go", go)
    assert result.status == "compensated" and error in result.error


def _encoded(value) -> bytes:
    from geomir.apel import state_codec

    return state_codec.encode(value)


def test_booleans_and_strings_are_not_coordinates():
    from geomir.dialects import geo

    t = geo.PointType(geo.EuclideanAttr(), 2)
    for bad in ([True, False], [1.0, True], np.array([True, False]), ["1", "2"]):
        with pytest.raises(ContractViolation, match="coordinates"):
            check_point(bad, t, "x")
    assert check_point([1, 2.5], t, "x").tolist() == [1.0, 2.5]


# --- 7. a sub-workflow's result is checked against its declared type ------------------------------

SUB = """
type Offer = { price: float, round: int }
pure agent asjson(x: int) -> json
workflow Inner(n: int) -> Offer {
  let j = call asjson(n)
  return j
}
workflow Outer(n: int) -> float {
  let o = run Inner(n)
  return o.price
}
"""


def test_a_sub_workflow_result_of_the_wrong_type_fails_at_its_return(tmp_path, store):
    prog = program(tmp_path / "s.apel", SUB, {"asjson": lambda x: {"not": "an offer"}})
    result = Engine(prog, store).start({"n": 7}, workflow="Outer")
    assert result.status == "compensated"
    assert result.error.startswith(f"{tmp_path / 's.apel'}:6:3: the result of workflow 'Inner' is not Offer")


# --- 8. loop detection compares the arguments the agent receives ---------------------------------

def test_identical_calls_are_a_loop_after_conversion_to_the_declared_types(tmp_path, store):
    text = """
pure agent fid(x: float) -> float
workflow L(n: int) -> float {
  let a = call fid(1)
  let b = call fid(1.0)
  let c = call fid(n)
  let d = call fid(1.0)
  return a
}
"""
    result = Engine(program(tmp_path / "l.apel", text, {"fid": lambda x: x}), store).start({"n": 1})
    assert result.status == "compensated"
    assert "agent 'fid' called 4 times with the same input" in result.error


# --- 9. span parents: branches under their sub-workflow or branch --------------------------------

NESTED = """
pure agent ident(x: int) -> int
workflow Sub(n: int) -> int {
  parallel {
    branch p { let a = call ident(n) }
    branch q {
      parallel {
        branch r { let b = call ident(n + 1) }
        branch s { let c = call ident(n + 2) }
      }
    }
  }
  return a
}
workflow Top(n: int) -> int {
  let x = run Sub(n)
  return x
}
"""


def test_branch_spans_are_children_of_their_enclosing_span(tmp_path, store):
    prog = program(tmp_path / "t.apel", NESTED, {"ident": lambda x: x})
    engine = Engine(prog, store, tracer=Tracer(tmp_path / "t.jsonl"))
    assert engine.start({"n": 1}, workflow="Top", run_id="t").status == "completed"
    spans = read_spans(tmp_path / "t.jsonl", "t")
    by_id = {s.span_id: s for s in spans}
    parent = {s.name: by_id[s.parent_id].name for s in spans if s.parent_id in by_id}
    branches = [s.name for s in spans if s.attributes["apel.kind"] == "branch"]
    assert len(branches) == 4
    for name in branches:
        inner = name.count("@") == 2
        outer = name.rsplit("/", 1)[0] if inner else None
        assert parent[name] == (f"branch {outer.removeprefix('branch ')}" if inner else "subworkflow Sub"), name


# --- 10. worker and limit options -----------------------------------------------------------------

@pytest.mark.parametrize("poll", ["nan", "inf", "-1"])
def test_a_poll_that_is_not_a_positive_number_is_a_usage_error(tmp_path, monkeypatch, capsys, poll):
    monkeypatch.chdir(tmp_path)
    assert apel_main(["--store", "s.sqlite", "worker", "--once", "--poll", poll]) == 2
    assert "--poll must be a positive number of seconds" in capsys.readouterr().err


def test_loops_count_against_max_iterations(tmp_path, store):
    text = "workflow W(n: int) -> int {\n  repeat 999999999999 { let b = 1 }\n  return n\n}\n"
    result = Engine(program(tmp_path / "w.apel", text), store, limits=Limits(max_iterations=50)).start({"n": 1})
    assert result.status == "compensated"
    assert result.error == f"{tmp_path / 'w.apel'}:2:3: the run made more than 50 loop iterations (Limits.max_iterations)"
    with pytest.raises(UsageError, match="max_iterations must be an integer >= 1"):
        Limits(max_iterations=0)
