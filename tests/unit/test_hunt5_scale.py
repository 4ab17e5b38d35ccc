"""Regressions from the stress hunt (/tmp/hunt/stress, findings 4 and 5): compile time that
grew with calls x models (every func.call looked up by a scan of the module, in each of
the pipeline's verifications and in the base-point analysis, which also re-analysed a
callee per call: exponential for models that call each other twice), a recursive cycle
check that overflowed on a long chain of calls, and deeply nested .mlir that crashed the
parser (RecursionError, exit 3). Each test of a fix failed before it; the others check that
the new verification of calls says what xDSL's says."""

from __future__ import annotations

import contextlib
import io

import pytest
from xdsl.dialects import func
from xdsl.parser import Parser
from xdsl.traits import SymbolTable
from xdsl.utils.exceptions import VerifyException

from geomir import base_points
from geomir.compiler import to_ir
from geomir.diagnostics import IRError, SourceError
from geomir.dialects import make_context
from geomir.driver import main
from geomir.ir import parse_ir, print_ir
from geomir.pipeline import DEFAULT_PIPELINE, check_no_recursion, run_pipeline
from geomir.verify import verify_module

P4, P2 = "!geo.point<euclidean, 4, f32>", "!geo.point<euclidean, 2, f32>"
IDENTITY = f"func.func @M(%x: {P4}) -> {P4} {{\n    func.return %x : {P4}\n  }}\n"


def fan(n: int) -> str:
    """n models and one that calls the last of them n times."""
    models = "".join(f"model M{i}(x: R[4]) -> R[4] {{\n  return tanh(x)\n}}\n" for i in range(n))
    calls = "".join(f"  let h = M{n - 1}(h)\n" for _ in range(n))
    return models + f"model Top(x: R[4]) -> R[4] {{\n  let h = x\n{calls}  return h\n}}\n"


def test_verification_looks_no_call_up_by_a_scan(monkeypatch):
    module = to_ir(fan(30), passes="")
    scans = []
    real = SymbolTable.lookup_symbol
    monkeypatch.setattr(SymbolTable, "lookup_symbol", staticmethod(lambda *a: scans.append(a) or real(*a)))
    verify_module(module)
    base_points.find_conflicts(module)
    assert scans == []


def test_verification_of_derivative_requests_looks_no_model_up_by_a_scan(monkeypatch):
    """Each jet request's verifier looked its model up with xDSL's scan of the module: 800
    derives took 8 s, quadratic. It reads the verification's tables now."""
    text = "model U(x: R[2]) -> R[1] {\n  return linear(tanh(x), 2 -> 1)\n}\n"
    text += "".join(f"derive d{i} = directional(U, order = 2)\n" for i in range(20))
    module = to_ir(text, passes="")
    scans = []
    real = SymbolTable.lookup_symbol
    monkeypatch.setattr(SymbolTable, "lookup_symbol", staticmethod(lambda *a: scans.append(a) or real(*a)))
    verify_module(module)
    assert scans == []


def _unverified(text: str):
    return Parser(make_context(), text).parse_module()


BAD_CALLS = {
    "unknown callee": f"%y = func.call @Nope(%x) : ({P4}) -> {P4}\n    func.return %y : {P4}",
    "operand count": f"%y = func.call @M(%x, %x) : ({P4}, {P4}) -> {P4}\n    func.return %y : {P4}",
    "result count": f"func.call @M(%x) : ({P4}) -> ()\n    func.return %x : {P4}",
    "operand type": f"%y = func.call @K(%x) : ({P4}) -> {P2}\n    func.return %x : {P4}",
    "result type": f"%y = func.call @M(%x) : ({P4}) -> {P2}\n    func.return %x : {P4}",
    "not a terminator": f"%y = func.call @M(%x) : ({P4}) -> {P4}",
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_call_errors_say_what_xdsl_says(case):
    text = (f"builtin.module {{\n  {IDENTITY}  func.func @K(%x: {P2}) -> {P2} {{\n    func.return %x : {P2}\n  }}\n"
            f"  func.func @Top(%x: {P4}) -> {P4} {{\n    {BAD_CALLS[case]}\n  }}\n}}\n")
    with pytest.raises(VerifyException) as xdsl:
        _unverified(text).verify()
    with pytest.raises(VerifyException) as ours:
        verify_module(_unverified(text))
    assert str(ours.value) == str(xdsl.value)


def test_call_into_a_symbol_that_is_no_function():
    text = (f"builtin.module {{\n  builtin.module @N {{\n  }}\n  func.func @Top(%x: {P4}) -> {P4} {{\n"
            f"    %y = func.call @N(%x) : ({P4}) -> {P4}\n    func.return %y : {P4}\n  }}\n}}\n")
    with pytest.raises(VerifyException, match="'@N' does not reference a valid function"):
        verify_module(_unverified(text))


def test_a_call_is_looked_up_in_its_nearest_symbol_table():
    text = (f"builtin.module {{\n  {IDENTITY}  builtin.module {{\n    func.func @Top(%x: {P4}) -> {P4} {{\n"
            f"      %y = func.call @M(%x) : ({P4}) -> {P4}\n      func.return %y : {P4}\n    }}\n  }}\n}}\n")
    with pytest.raises(VerifyException, match="'@M' could not be found in symbol table"):
        verify_module(_unverified(text))


def tangent_chain(n: int) -> str:
    """T0 returns a tangent; each next model calls the one before twice and adds the results."""
    text = "manifold H = poincare(c = 1.0)\nmodel T0(x: H[4], y: H[4]) -> tangent H[4] {\n  return logmap(x, y)\n}\n"
    for i in range(1, n):
        text += (f"model T{i}(x: H[4], y: H[4]) -> tangent H[4] {{\n  let a = T{i - 1}(x, y)\n"
                 f"  let b = T{i - 1}(y, x)\n  return a + b\n}}\n")
    return text


def test_base_points_analyse_each_function_once(monkeypatch):
    module = to_ir(tangent_chain(10), passes="")
    logmaps = []
    rule = base_points.RULES["geo.logmap"]
    monkeypatch.setitem(base_points.RULES, "geo.logmap", lambda *a: logmaps.append(a) or rule(*a))
    conflicts = base_points.find_conflicts(module)
    assert len(logmaps) == 1  # T0's, not once per path of calls into it (2**9 from T9)
    # each T1..T9 adds a tangent at x to one at y: the bases of call results are still followed
    assert len(conflicts) == 9 and all(c.op.name == "geo.add" for c in conflicts)


def test_cycle_check_of_a_long_chain_of_calls():
    n = 1500  # each function calls the next: deeper than Python's recursion limit
    funcs = [func.FuncOp(f"F{i}", ((), ())) for i in range(n)]
    for i, f in enumerate(funcs):
        f.body.block.add_ops([func.CallOp(f"F{(i + 1) % n}", [], []), func.ReturnOp()])
    module = _unverified("builtin.module {\n}\n")
    module.body.block.add_ops(funcs)
    with pytest.raises(IRError, match=r"models call each other in a cycle: @F0 -> @F1 -> .* -> @F1499 -> @F0 "):
        check_no_recursion(module)
    funcs[-1].body.block.first_op.detach()
    check_no_recursion(module)  # no cycle, no RecursionError


def geomc(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


@pytest.mark.parametrize("nesting", ["array", "modules"])
def test_deeply_nested_mlir_is_a_located_error(tmp_path, nesting):
    n = 3000
    text = ("builtin.module attributes {foo = " + "[" * n + "]" * n + "} {\n  " + IDENTITY + "}\n"
            if nesting == "array" else "builtin.module {\n" * n + "}\n" * n)
    path = tmp_path / "deep.mlir"
    path.write_text(text)
    code, err = geomc(str(path), "--emit=ir")
    assert code == 1, err
    assert err.startswith(f"{path}:") and "IR nested too deeply" in err and "internal compiler error" not in err
    with pytest.raises(SourceError, match="IR nested too deeply") as info:
        parse_ir(text, "deep.mlir")
    span = info.value.span
    assert (span.line == 1) if nesting == "array" else (1 < span.line < n)  # where the parser was


def test_nesting_that_parses_verifies_and_prints():
    text = "builtin.module attributes {foo = " + "[" * 60 + "]" * 60 + "} {\n  " + IDENTITY + "}\n"
    module = parse_ir(text, "nested.mlir")
    assert print_ir(parse_ir(print_ir(module))) == print_ir(module)
    assert print_ir(run_pipeline(module, list(DEFAULT_PIPELINE))).count("[") == 60
