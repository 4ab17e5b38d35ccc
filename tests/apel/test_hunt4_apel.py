"""Regressions from the fourth APEL bug hunt: delegated arguments by name, manifold values
inside records and lists, finite floats and JSON output, ``json`` results as plain data,
``==`` on values holding points, one engine in two threads, unwinding past a failed
compensation, internal events per workflow, attempts on failed spans, delegation loops
with converted arguments, and two messages."""

from __future__ import annotations

import json
import threading

import pydantic
import pytest

import geomir.apel as apel
from geomir.apel import compile_file
from geomir.apel.cli import main as apel_main
from geomir.apel.engine import Engine, Limits, RunError
from geomir.apel.store import open_store
from geomir.apel.tracing import Tracer, read_spans
from geomir.apel.types import JSON
from geomir.diagnostics import GeoSyntaxError, UsageError

from .helpers import program


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "runs.sqlite") as s:
        yield s


def engine(tmp_path, store, text, agents=None, **kw) -> Engine:
    return Engine(program(tmp_path / "w.apel", text, agents), store, **kw)


# --- 1. Delegate(...) arguments are bound by name ---------------------------------------------

DELEGATE = """
pure agent front(q: int) -> int { delegates back retry 2 }
pure agent back(a: int, b: int) -> int
workflow W(q: int) -> int {
  let r = call front(q)
  return r
}
"""


@pytest.mark.parametrize("args, status, out", [
    ({"b": 2, "a": 1}, "completed", 12),
    ({"a": 1, "zzz": 5}, "compensated",
     "step 'r' failed: agent 'front' delegated to 'back' with arguments that are not its parameters (a, b, by "
     "name): missing b; unknown 'zzz'"),
])
def test_delegate_arguments_are_bound_by_name(tmp_path, store, args, status, out):
    calls = []
    agents = {"front": lambda q: calls.append(q) or apel.Delegate("back", args), "back": lambda a, b: a * 10 + b}
    r = engine(tmp_path, store, DELEGATE, agents).start({"q": 0})
    assert (r.status, r.output if status == "completed" else r.error) == (status, out)
    assert calls == [0]  # a bad delegation is not retried


# --- 2. manifold values inside records and lists are checked ------------------------------------

POINTS = """
manifold H = poincare(c = 1.0)
type P = { loc: H[2], w: float }
pure agent make(n: int) -> P
pure agent many(n: int) -> list[H[2]]
workflow W(n: int) -> int {
  let p = call make(n)
  let ps = call many(n)
  return len(ps)
}
workflow X(p: P, xs: list[H[2]]) -> int { return len(xs) }
"""


@pytest.mark.parametrize("make, many, error", [
    ({"loc": [5.0, 7.0, 9.0], "w": 1.0}, [], "the result of agent 'make' is not P: loc: not a point of dimension "
     "2 on poincare(c=1): found shape (3,) (the last axis must have 2 coordinates)"),
    ({"loc": [0.1, 0.2], "w": 1.0}, [[0.3, 0.4], "x", [float("nan"), 0.0]], "the result of agent 'many' is not "
     "list[a point of dimension 2 on poincare(c=1)]: 1: not a point of dimension 2 on poincare(c=1): found str "
     "coordinates; 2: not a point of dimension 2 on poincare(c=1): it has NaN or infinite coordinates"),
    ({"loc": [0.1, 0.2], "w": 1.0}, [[0.3, 0.4], [0.9, 0.9]], "1: not a point of dimension 2 on poincare(c=1): "
     "a point is not inside the ball of radius 1"),
])
def test_manifold_values_in_records_and_lists_are_checked(tmp_path, store, make, many, error):
    r = engine(tmp_path, store, POINTS, {"make": lambda n: make, "many": lambda n: many}).start({"n": 1}, "W")
    assert r.status == "compensated" and error in r.error


def test_manifold_values_in_records_and_lists_pass_as_arrays(tmp_path, store):
    seen = []
    text = POINTS.replace("return len(ps)", "let q = call use(p, ps)\n  return q") + \
        "pure agent use(p: P, xs: list[H[2]]) -> int\n"
    agents = {"make": lambda n: {"loc": [0.1, 0.2], "w": 1.0}, "many": lambda n: [[0.3, 0.4]],
              "use": lambda p, xs: seen.append((p.loc.tolist(), [x.tolist() for x in xs])) or 7}
    eng = engine(tmp_path, store, text, agents)
    assert eng.start({"n": 1}, "W").output == 7
    assert seen == [([0.1, 0.2], [[0.3, 0.4]])]
    with pytest.raises(UsageError, match=r"input 'p' is not P: loc: not a point .*found str coordinates"):
        eng.start({"p": {"loc": "hello", "w": 1.0}, "xs": []}, "X")
    with pytest.raises(UsageError, match=r"input 'xs' is not list\[.*\]: 0: not a point .*not inside the ball"):
        eng.start({"p": {"loc": [0.1, 0.2], "w": 1.0}, "xs": [[9.0, 9.0]]}, "X")


# --- 3. floats are finite; `apel run` prints JSON --------------------------------------------------

def test_a_non_finite_float_breaks_the_float_contract(tmp_path, store):
    text = "pure agent m(x: float) -> float\nworkflow W(x: float) -> float {\n  let y = call m(x)\n  return y\n}\n"
    eng = engine(tmp_path, store, text, {"m": lambda x: float("nan") if x < 0 else x * x})
    r = eng.start({"x": -1.0})
    assert r.status == "compensated"
    assert r.error == "step 'y' failed: the result of agent 'm' is not float: value: Input should be a finite number"
    assert eng.start({"x": 1e300}).error.endswith("Input should be a finite number")  # 1e600 overflows to inf
    with pytest.raises(UsageError, match="input 'x' is not float: value: Input should be a finite number"):
        eng.start({"x": float("inf")})


def test_apel_run_prints_json_for_non_finite_json_values(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hunt4_nan_agents.py").write_text(
        "import numpy as np\n"
        "def m(x):\n    return {'v': float('nan'), 'w': [float('inf'), -float('inf')], 'a': np.array([1.5])}\n")
    (tmp_path / "w.apel").write_text('pure agent m(x: int) -> json { impl "hunt4_nan_agents:m" }\n'
                                     "workflow W(x: int) -> json {\n  let y = call m(x)\n  return y\n}\n")
    (tmp_path / "in.json").write_text('{"x": 1}')
    capsys.readouterr()
    code = apel_main(["--store", "s.sqlite", "--trace", "t.jsonl", "run", "w.apel", "--input", "in.json"])
    out = capsys.readouterr().out

    def not_json(constant):
        raise ValueError(f"{constant} is not JSON")

    line = json.loads(out, parse_constant=not_json)
    assert (code, line["status"]) == (0, "completed")
    assert line["output"] == {"v": "NaN", "w": ["Infinity", "-Infinity"], "a": [1.5]}


# --- 4. a json result is plain data, live and replayed ---------------------------------------------

class _M(pydantic.BaseModel):
    a: int


JSON_RESULT = """
pure agent get(n: int) -> json
workflow Live(n: int) -> int {
  let r = call get(n)
  return r.a
}
workflow Replayed(n: int) -> int {
  let r = call get(n)
  let z = receive go: int
  return r.a + z
}
"""


def test_a_json_result_given_as_a_pydantic_model_is_plain_data(tmp_path, store):
    eng = engine(tmp_path, store, JSON_RESULT, {"get": lambda n: _M(a=n)})
    live = eng.start({"n": 5}, "Live")
    assert (live.status, live.output) == ("completed", 5)
    assert eng.start({"n": 5}, "Replayed", run_id="rp").status == "waiting"
    [done] = eng.deliver("rp", "go", 1)
    assert (done.status, done.output) == ("completed", 6)
    assert eng.program.schemas.coerce({"m": (_M(a=2),), "n": [_M(a=1)]}, JSON, "x") == {"m": ({"a": 2},),
                                                                                         "n": [{"a": 1}]}


# --- 5. == on records and lists holding points ------------------------------------------------------

EQUAL = """
manifold H = poincare(c = 1.0)
type V = { p: H[2], tag: str }
pure agent pt(n: int) -> H[2]
workflow W(n: int, m: int) -> bool {
  let a = call pt(n)
  let b = call pt(m)
  return [a] == [b] and V(p = a, tag = "x") == V(p = b, tag = "x") and not ([a] != [b])
}
"""


@pytest.mark.parametrize("m, same", [(1, True), (2, False)])
def test_equality_of_records_and_lists_holding_points(tmp_path, store, m, same):
    r = engine(tmp_path, store, EQUAL, {"pt": lambda n: [0.1 * n, 0.2]}).start({"n": 1, "m": m})
    assert (r.status, r.output) == ("completed", same)


# --- 6. one engine in two threads executes a run once -------------------------------------------------

BUSY = """
agent charge(x: int) -> int
agent refund(x: int) -> int
workflow W(n: int) -> int {
  let v = receive go: int
  let a = call charge(v) compensate refund(a)
  let w = receive more: int
  return a + w
}
"""


def test_one_engine_in_two_threads_executes_a_run_once(tmp_path, store):
    calls, inside, release = [], threading.Event(), threading.Event()

    def charge(x, apel):
        calls.append(apel.attempt)
        inside.set()
        release.wait(5)
        return x

    eng = engine(tmp_path, store, BUSY, {"charge": charge, "refund": lambda x: x})
    assert eng.start({"n": 1}, run_id="r1").status == "waiting"
    store.post_event("r1", "go", apel.state_codec.encode(5))
    results = []
    worker = threading.Thread(target=lambda: results.append(eng.resume("r1")))
    worker.start()
    assert inside.wait(5)
    try:
        with pytest.raises(RunError, match="run r1 is being executed by this engine"):
            eng.resume("r1")
        assert eng.deliver("r1", "more", 2) == []  # stored: the busy execution takes it
    finally:
        release.set()
        worker.join(10)
    assert [(r.status, r.output) for r in results] == [("completed", 7)]
    assert calls == [1]


# --- 7. a failing compensation does not stop the unwinding ---------------------------------------------

UNDO = """
agent charge(x: int) -> int
agent undo(x: int) -> int
pure agent boom(x: int) -> int
workflow W(n: int) -> int {
  let a = call charge(1) compensate undo(a)
  let b = call charge(2) compensate undo(b)
  let c = call charge(3) compensate undo(c)
  let d = call boom(n)
  return d
}
"""


def test_a_failing_compensation_does_not_stop_the_unwinding(tmp_path, store):
    undone = []

    def undo(x):
        if x != 3:
            raise RuntimeError(f"refund {x} down")
        undone.append(x)
        return x

    def boom(x):
        raise RuntimeError("boom")

    r = engine(tmp_path, store, UNDO, {"charge": lambda x: x, "undo": undo, "boom": boom}).start({"n": 1})
    assert undone == [3]
    assert r.status == "failed"
    assert r.error == (
        "step 'd' failed: agent 'boom' raised RuntimeError: boom; 2 compensations failed, left undone: b, a "
        "(step 'compensate:b' failed: agent 'undo' raised RuntimeError: refund 2 down; step 'compensate:a' failed: "
        "agent 'undo' raised RuntimeError: refund 1 down)")
    assert [s.step_id for s in store.journal(r.run_id) if s.step_id.startswith("compensate:")] == \
        ["compensate:c", "compensate:b", "compensate:a"]


# --- 8. an event is internal only to the workflows that send it ------------------------------------------

EVENTS = """
workflow Handoff(n: int) -> int {
  parallel {
    branch a { send ready(n) }
    branch b { let v = receive ready: int }
  }
  return v
}
workflow Approval(n: int) -> int {
  let v = receive ready: int timeout 3600
  return v + n
}
"""


def test_an_event_another_workflow_sends_is_external_here(tmp_path, store):
    eng = engine(tmp_path, store, EVENTS, limits=Limits(internal_wait_s=1))
    assert eng.start({"n": 1}, "Handoff").output == 1
    r = eng.start({"n": 1}, "Approval", run_id="a1")
    assert (r.status, r.waiting_for) == ("waiting", "ready")
    [done] = eng.deliver("a1", "ready", 4)
    assert (done.status, done.output) == ("completed", 5)


# --- 9. a failed step's span has its attempts ----------------------------------------------------------------

def test_a_failed_step_span_has_its_attempts(tmp_path, store):
    text = "pure agent flaky(x: int) -> int { retry 2 }\nworkflow W(n: int) -> int {\n  let b = call flaky(n)\n" \
           "  return b\n}\n"
    tracer = Tracer(tmp_path / "t.jsonl")

    def flaky(x):
        raise RuntimeError("down")

    engine(tmp_path, store, text, {"flaky": flaky}, tracer=tracer).start({"n": 1}, run_id="f1")
    tracer.shutdown()
    [span] = [s for s in read_spans(tmp_path / "t.jsonl", "f1") if s.kind == "step"]
    assert (span.status, span.attributes["apel.attempts"]) == ("ERROR", 3)


# --- 10. a delegation loop with arguments converted to the declared type -----------------------------------

def test_a_delegation_loop_is_found_when_an_int_is_passed_for_a_float(tmp_path, store):
    text = "pure agent ask(x: float) -> float { delegates ask budget depth = 5 }\n" \
           "workflow W(n: float) -> float {\n  let r = call ask(n)\n  return r\n}\n"
    r = engine(tmp_path, store, text, {"ask": lambda x: apel.Delegate("ask", {"x": int(x)})}).start({"n": 2.0})
    assert r.error == ("step 'r' failed: delegation loop detected: ask → ask (agent 'ask' was already asked the same "
                       "thing in this chain)")


# --- 11. messages ---------------------------------------------------------------------------------------------

def test_a_file_without_workflows_says_so(tmp_path):
    with pytest.raises(UsageError, match=r"^the file declares no workflow"):
        program(tmp_path / "w.apel", "agent f(x: int) -> int\n").workflow(None)


def test_an_unfinished_expression_before_a_keyword_is_reported_there(tmp_path):
    path = tmp_path / "w.apel"
    path.write_text("workflow W(n: int) -> int {\n  let x = n +\n  return x\n}\n")
    with pytest.raises(GeoSyntaxError) as err:
        compile_file(path)
    assert err.value.render().startswith(f"{path}:3:3: error: incomplete expression: expected a value, found "
                                         "'return', a keyword that starts a statement")
