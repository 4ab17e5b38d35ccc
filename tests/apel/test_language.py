"""The APEL language end to end: a corpus of broken workflows (tests/apel/broken/*.apel,
each with the one diagnostic it must give), valid workflows that check clean and round-trip
through the IR text, the checks on parsed IR, and a property test of the type check
against an independently computed answer."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomir import driver
from geomir.apel import compile_file
from geomir.apel.checks import run_checks
from geomir.apel.irgen import compile_workflow_source
from geomir.diagnostics import SourceError
from geomir.ir import parse_ir, print_ir

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BROKEN = sorted((HERE / "broken").glob("*.apel"))
EXPECT = re.compile(r"^// expect: (\d+):(\d+): (.+)$")
ERROR_LINE = re.compile(r"^\S.*:\d+:\d+: error: ", re.MULTILINE)

# Problems the static checks find (the file lowers to IR); the others stop the frontend.
CHECK_LEVEL = {
    "agent_delegation_cycle",
    "lorentz_vs_poincare",
    "manifold_curvature_mismatch",
    "manifold_dim_mismatch",
    "missing_compensation",
    "parallel_deadlock",
    "receive_type_mismatch",
    "record_type_mismatch",
    "subworkflow_arg_mismatch",
    "unbounded_while",
    "workflow_run_cycle",
}


def expectation(path: Path) -> tuple[int, int, str]:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    m = EXPECT.match(first)
    assert m, f"{path.name}: the first line must be '// expect: LINE:COL: MESSAGE', found {first!r}"
    return int(m[1]), int(m[2]), m[3].strip()


def geomc(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = driver.main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the corpus of broken workflows -------------------------------------------------------


def test_corpus_is_complete():
    names = {p.stem for p in BROKEN}
    assert len(names) >= 20
    assert CHECK_LEVEL <= names, f"missing corpus files: {sorted(CHECK_LEVEL - names)}"
    for path in BROKEN:
        lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        assert 10 <= len(lines) <= 25, f"{path.name}: {len(lines)} lines"
        expectation(path)


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_workflow_check(path, capsys):
    line, col, message = expectation(path)
    code, out, err = geomc(capsys, str(path), "--check")
    assert "Traceback" not in err and "internal" not in err, err
    assert code == 1, (out, err)
    assert "ok" not in out
    assert f"{path}:{line}:{col}: error: " in err, err
    assert message in err, err
    errors = ERROR_LINE.findall(err)
    assert len(errors) == 1, err  # one problem per file, reported once
    # the error line itself holds the message (not only a note)
    error_line = next(ln for ln in err.splitlines() if ": error: " in ln)
    assert error_line.startswith(f"{path}:{line}:{col}: error: ") and message in error_line, error_line
    # the caret points at the reported column
    lines = err.splitlines()
    caret = lines[lines.index(error_line) + 2]
    gutter = lines[lines.index(error_line) + 1].index("|")
    assert caret.index("^") - gutter - 2 == col - 1, err
    if path.stem in CHECK_LEVEL:
        assert err.rstrip().endswith(f"1 problem in {path}"), err


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_workflow_api(path):
    """The same diagnostics through the Python API: frontend problems raise a located
    SourceError, check-level problems lower and give exactly one SourceError."""
    line, col, message = expectation(path)
    if path.stem not in CHECK_LEVEL:
        with pytest.raises(SourceError) as info:
            compile_file(path)
        problems = [info.value]
    else:
        module, _ = compile_file(path)
        problems = run_checks(module)
    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert (problem.span.line, problem.span.column) == (line, col), problem.render()
    assert message in problem.message
    assert problem.render().startswith(f"{path}:{line}:{col}: error: ")


@pytest.mark.parametrize("name", sorted(CHECK_LEVEL))
def test_checks_on_parsed_ir(name):
    """Print the IR of a lowerable broken workflow, parse it back, check again: the same
    problems (with locations when the IR carries them, and the same messages without)."""
    path = HERE / "broken" / f"{name}.apel"
    module, _ = compile_file(path)
    want = [(p.message, p.span.line, p.span.column) for p in run_checks(module)]
    assert len(want) == 1

    with_locs = parse_ir(print_ir(module, debug_info=True))
    got = [(p.message, p.span.line, p.span.column) for p in run_checks(with_locs)]
    assert got == want
    assert all(str(p.span.source.name) == str(path) for p in run_checks(with_locs))

    plain = parse_ir(print_ir(module))
    assert [p.message for p in run_checks(plain)] == [m for m, _, _ in want]


# --- valid workflows ---------------------------------------------------------------------------

CHECKOUT = """\
// Checkout: compensation, parallel branches talking through events, if/else, a bounded
// retry loop, repeat, and a sub-workflow.
type Order = { item: str, qty: int, amount: float, email: str }
type Charge = { id: str, amount: float }
type Parcel = { tracking: str, carrier: str }

agent pay(o: Order) -> Charge { impl "shop:pay" requires o.qty > 0 requires o.amount > 0.0 budget calls = 3, seconds = 2.5 }
idempotent agent refund(c: Charge, why: str) -> bool { impl "shop:refund" retry 2 }
idempotent agent ship(o: Order, carrier: str) -> Parcel { impl "shop:ship" }
pure agent in_stock(item: str, qty: int) -> bool { impl "shop:in_stock" }
idempotent agent notify(email: str, text: str) -> bool { impl "shop:notify" }

workflow Notify(o: Order, text: str) -> bool {
  let sent = call notify(o.email, text) retry 3
  return sent
}

workflow Checkout(o: Order) -> str {
  let ok = call in_stock(o.item, o.qty)
  let tries = 0
  while not ok and tries < 5 max 5 {
    let tries = tries + 1
    let ok = call in_stock(o.item, o.qty)
  }
  if not ok { fail "out of stock" }
  let c = call pay(o) compensate refund(c, "rollback")
  parallel {
    branch shipping {
      let p = call ship(o, carrier = "ups")
      send shipped(p)
      let paid = receive receipt_sent: bool timeout 60
    }
    branch mail {
      let parcel = receive shipped: Parcel
      let sent = run Notify(o, "shipped with " + parcel.carrier)
      send receipt_sent(sent)
    }
  }
  repeat 2 { let reminded = run Notify(o, "rate your order") }
  if c.amount > 100.0 {
    return "big order " + p.tracking
  } else if len(o.item) == 0 {
    fail "no item"
  } else {
    return p.tracking
  }
  return "unreachable"
}
"""

RETRIEVE = """\
// Retrieval over a hyperbolic embedding space: manifold points flow between agents.
manifold H = poincare(c = 1.0)
manifold S = sphere()
type Concept = H[16]
type Query = { user: str, text: str, k: int }
type Hits = { ids: list[str], scores: list[float] }

pure agent encode(q: Query) -> Concept { impl "rag:encode" }
pure agent refine(v: H[16], feedback: str) -> H[16] { impl "rag:refine" }
pure agent search(v: Concept, k: int) -> Hits { impl "rag:search" budget seconds = 1.5 }
pure agent direction(v: H[16]) -> S[3] { impl "rag:direction" }
idempotent agent answer(q: Query, h: Hits) -> str { impl "rag:answer" budget calls = 10, depth = 2 delegates encode }

workflow Retrieve(q: Query) -> str {
  let v = call encode(q)
  let round = 0
  let hits = call search(v, q.k)
  while len(hits.ids) < q.k and round < 3 max 3 {
    let v = call refine(v, "broaden")
    let hits = call search(v, q.k * 2)
    let round = round + 1
  }
  let d = call direction(v)
  let text = call answer(q, hits)
  return text
}
"""

RECEIPT = """\
// A pydantic model imported as a record type.
import type Receipt from "tests.apel.apel_models:Receipt"
type Basket = { user: str, items: list[str], total: float }

agent charge(b: Basket) -> Receipt { impl "billing:charge" }
idempotent agent void(r: Receipt) -> bool { impl "billing:void" }
pure agent summarize(r: Receipt) -> str { impl "billing:summarize" }

workflow Bill(b: Basket) -> str {
  let r = call charge(b) compensate void(r)
  if not r.paid or r.amount != b.total { fail "payment mismatch" }
  let s = call summarize(r)
  return s + " (" + str(len(r.lines)) + " lines)"
}
"""

VALID = {"checkout": CHECKOUT, "retrieve": RETRIEVE, "receipt": RECEIPT}


@pytest.fixture
def valid_file(request, tmp_path, monkeypatch):
    name = request.param
    if name == "receipt":  # `import type` imports tests.apel.apel_models at compile time
        monkeypatch.syspath_prepend(str(ROOT))
        try:
            models = importlib.import_module("tests.apel.apel_models")
        except ImportError as err:
            pytest.skip(f"tests.apel.apel_models is not importable: {err}")
        if Path(models.__file__).resolve().parent != HERE:
            pytest.skip(f"'tests' resolves elsewhere: {models.__file__}")
    path = tmp_path / f"{name}.apel"
    path.write_text(VALID[name], encoding="utf-8")
    return path


@pytest.mark.parametrize("valid_file", sorted(VALID), indirect=True)
def test_valid_workflow_checks_clean(valid_file, capsys):
    code, out, err = geomc(capsys, str(valid_file), "--check")
    assert code == 0, err
    assert err == ""
    assert out.startswith(f"{valid_file}: ok")
    module, _ = compile_file(valid_file)
    assert run_checks(module) == []


@pytest.mark.parametrize("valid_file", sorted(VALID), indirect=True)
def test_valid_workflow_ir_round_trip(valid_file, capsys):
    code, text, err = geomc(capsys, str(valid_file), "--emit=ir")
    assert code == 0, err
    assert "apel.workflow" in text and "apel.call" in text and "apel.agent" in text
    assert print_ir(parse_ir(text)) == text
    # with locations too, and the checks still pass on the parsed module
    code, located, err = geomc(capsys, str(valid_file), "--emit=ir", "--debug-info")
    assert code == 0, err
    assert f'loc("{valid_file}"' in located
    reparsed = parse_ir(located)
    assert print_ir(reparsed, debug_info=True) == located
    assert run_checks(reparsed) == []


def test_ir_contents():
    """Spot checks of what the valid workflows lower to."""
    checkout = print_ir(compile_workflow_source(CHECKOUT, "checkout.apel"))
    for op in ("apel.parallel", "apel.while", "apel.repeat", "apel.if", "apel.send", "apel.receive",
               "apel.run", "apel.compensate", "apel.check", "apel.fail", "apel.return"):
        assert op in checkout, op
    assert 'branch_names = ["shipping", "mail"]' in checkout
    assert "max = #builtin.int<5>" in checkout
    retrieve = print_ir(compile_workflow_source(RETRIEVE, "retrieve.apel"))
    assert "!geo.point" in retrieve
    assert "depth = #builtin.int<2>" in retrieve or "depth = 2" in retrieve


# --- property: the type check agrees with an independent answer ---------------------------------

PRELUDE = """\
manifold H = poincare(c = 1.0)
manifold K = poincare(c = 2.0)
manifold L = lorentz(c = 1.0)
type Order = { item: str, qty: int }
type Twin = { item: str, qty: int }
type Invoice = { number: str, total: float }
type Concept = H[16]
"""
PRELUDE_LINES = PRELUDE.count("\n")

# type spelling -> (the type it denotes, whether it is a manifold point)
SPELLINGS = {
    "Order": ("Order", False),
    "Twin": ("Twin", False),  # same fields as Order, another record: records are nominal
    "Invoice": ("Invoice", False),
    "str": ("str", False),
    "H[16]": ("H16", True),
    "Concept": ("H16", True),  # an alias is the type it names
    "H[8]": ("H8", True),
    "K[16]": ("K16", True),  # another curvature
    "L[16]": ("L16", True),  # another model of hyperbolic space
}
spelling = st.sampled_from(sorted(SPELLINGS))


@st.composite
def workflows(draw):
    """A random workflow and, computed from the choices made, the (line, kind) of every
    argument whose type differs from its parameter's."""
    agents = []
    for i in range(draw(st.integers(1, 4))):
        params = draw(st.lists(spelling, min_size=1, max_size=2))
        agents.append((f"a{i}", params, draw(spelling)))
    inputs = draw(st.lists(spelling, min_size=1, max_size=2))
    lines = PRELUDE.rstrip("\n").split("\n")
    for name, params, result in agents:
        ps = ", ".join(f"p{j}: {t}" for j, t in enumerate(params))
        lines.append(f'pure agent {name}({ps}) -> {result} {{ impl "gen:{name}" }}')
    lines.append("workflow W(" + ", ".join(f"x{j}: {t}" for j, t in enumerate(inputs)) + ") -> str {")
    scope = [(f"x{j}", SPELLINGS[t][0]) for j, t in enumerate(inputs)]  # (name, type) in view
    expected: list[tuple[int, str]] = []
    counter = iter(range(10**6))

    def call(indent: str, visible: list) -> tuple[str, str]:
        name, params, result = agents[draw(st.integers(0, len(agents) - 1))]
        args = []
        for j, want in enumerate(params):
            fitting = [v for v in visible if v[1] == SPELLINGS[want][0]]
            pool = fitting if fitting and draw(st.booleans()) else visible
            var, got = pool[draw(st.integers(0, len(pool) - 1))]
            args.append((f"p{j}", var))
            if got != SPELLINGS[want][0]:
                both_points = SPELLINGS[want][1] and got in {t for t, point in SPELLINGS.values() if point}
                expected.append((len(lines) + 1, "manifold mismatch" if both_points else "type mismatch"))
        if draw(st.booleans()):  # keyword arguments, in any order
            args = draw(st.permutations(args))
            text = ", ".join(f"{p} = {v}" for p, v in args)
        else:
            text = ", ".join(v for _, v in args)
        target = f"v{next(counter)}"
        lines.append(f"{indent}let {target} = call {name}({text})")
        return target, SPELLINGS[result][0]

    def body(indent: str, visible: list, n: int) -> list:
        bound = []
        for _ in range(n):
            bound.append(call(indent, visible + bound))
        return bound

    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["plain", "parallel", "while", "repeat", "if"]))
        n = draw(st.integers(1, 3))
        if kind == "plain":
            scope += body("  ", scope, n)
        elif kind == "parallel":
            lines.append("  parallel {")
            new = []
            for b in range(draw(st.integers(1, 3))):
                lines.append(f"    branch b{b} {{")
                new += body("      ", scope, draw(st.integers(1, 2)))
                lines.append("    }")
            lines.append("  }")
            scope += new
        else:
            header = {"while": f"while 0 < 1 max {draw(st.integers(1, 9))}", "repeat": f"repeat {draw(st.integers(1, 3))}",
                      "if": "if 1 < 2"}[kind]
            lines.append(f"  {header} {{")
            before = list(scope)
            scope += body("    ", before, n)
            if kind == "if" and draw(st.booleans()):
                lines.append("  } else {")
                scope += body("    ", before, 1)
            lines.append("  }")
    lines.append('  return "done"')
    lines.append("}")
    return "\n".join(lines) + "\n", expected


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(workflows())
def test_type_check_property(case):
    text, expected = case
    module = compile_workflow_source(text, "<generated>")
    problems = run_checks(module)
    # only the type check can complain: the agents are pure, loops bounded, no events
    got = sorted((p.span.line, "manifold mismatch" if p.message.startswith("manifold mismatch") else "type mismatch")
                 for p in problems)
    assert bool(problems) == bool(expected), text
    assert got == sorted(expected), text
    assert all(p.span.line > PRELUDE_LINES for p in problems)
    assert run_checks(module, ["compensation", "loops", "deadlock"]) == []
    # the same answer on the IR read back from text
    again = run_checks(parse_ir(print_ir(module)))
    assert [p.message for p in again] == [p.message for p in problems]


# --- known problems in geomir/apel (see the report of this test file) ---------------------------


def _check(tmp_path, text: str) -> list[SourceError]:
    path = tmp_path / "w.apel"
    path.write_text(text, encoding="utf-8")
    module, _ = compile_file(path)
    return run_checks(module)


def test_two_disjoint_workflow_cycles_both_reported(tmp_path):
    problems = _check(tmp_path, """\
type T = { x: int }
workflow A(t: T) -> int {
  let b = run B(t)
  let d = run D(t)
  return 1
}
workflow B(t: T) -> int { let c = run C(t) return 1 }
workflow C(t: T) -> int { let b = run B(t) return 1 }
workflow D(t: T) -> int { let a = run A(t) return 1 }
""")
    cycles = sorted(p.message.split(" runs")[0] for p in problems)
    assert len(cycles) == 2, cycles  # B → C → B and A → D → A


def test_nested_parallel_is_not_a_deadlock(tmp_path):
    assert _check(tmp_path, """\
type T = { x: int }
workflow W(t: T) -> int {
  parallel {
    branch outer {
      parallel {
        branch x { let v = receive e: int }
        branch y { send e(1) }
      }
    }
    branch other { let z = 1 }
  }
  return 1
}
""") == []


def test_bool_literals_lower(tmp_path, capsys):
    path = tmp_path / "flags.apel"
    path.write_text("""\
type Ticket = { id: str, urgent: bool }
workflow Triage(t: Ticket) -> bool {
  let escalate = false
  if t.urgent == true { let escalate = true }
  return escalate
}
""", encoding="utf-8")
    code, out, err = geomc(capsys, str(path), "--check")
    assert "internal compiler error" not in err
    assert code == 0, err


def test_every_send_is_checked_against_the_receive(tmp_path):
    problems = _check(tmp_path, """\
type T = { x: int }
workflow W(t: T) -> int {
  parallel {
    branch a {
      send e(1)
      send e("one")
    }
    branch b {
      let v = receive e: int
      let w = receive e: int
    }
  }
  return 1
}
""")
    assert any("receive 'e' expects int" in p.message for p in problems)
