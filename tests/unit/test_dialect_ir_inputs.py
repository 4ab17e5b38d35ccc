"""Mutated IR text given to ``geomc file.mlir``: each input below once crashed geomc (exit 3,
an internal compiler error) or was accepted although ill-formed, so that a pass or the
code generator crashed on it later. Each must now be a user error (exit 1) with a message
that names the problem, for the plain parse (``--passes=``), the default pipeline and the
torch and jax targets.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from geomir.driver import main

T = "!geo.point<euclidean, 2, f32>"
V = "!geo.tangent<euclidean, 2, f32>"
J = f"!jet.jet<2, {T}>"


def function(body: str, args: str = f"%x: {T}", result: str = T) -> str:
    return f"builtin.module {{\n  func.func @f({args}) -> {result} {{\n{body}\n  }}\n}}\n"


def geomc(tmp_path, text: str, *options: str) -> tuple[int, str]:
    path = tmp_path / "mutant.mlir"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(path), *options])
    return rc, err.getvalue()


RUNS = (("--passes=",), (), ("--target=torch",), ("--target=jax",))


def assert_rejected(tmp_path, text: str, message: str, runs=RUNS) -> None:
    for options in runs:
        rc, err = geomc(tmp_path, text, *options)
        assert rc == 1, f"geomc {' '.join(options)}: exit {rc}\n{err}"
        assert message in err, err
        assert "Traceback" not in err and "internal compiler error" not in err, err


# -- dominance: the parser accepts forward references ------------------------------------------

USE_BEFORE_DEF = function(
    f"    %y = geo.tanh %z : {T} -> {T}\n"
    f"    %z = geo.sin %x : {T} -> {T}\n"
    f"    func.return %y : {T}"
)
SELF_USE = function(f"    %y = geo.tanh %y : {T} -> {T}\n    func.return %y : {T}")
PARAM_AFTER_USE = function(
    f"    %0 = geo.bias %x, %b : {T}, tensor<2xf32> -> {T}\n"
    '    %b = geo.param "f.b" init "zeros" : tensor<2xf32>\n'
    f"    func.return %0 : {T}"
)


@pytest.mark.parametrize("text, message", [
    (USE_BEFORE_DEF, "geo.tanh: operand #0 (%z) is defined after its use (by geo.sin)"),
    (SELF_USE, "geo.tanh: operand #0 (%y) is a result of the op itself"),
    (PARAM_AFTER_USE, "geo.bias: operand #1 (%b) is defined after its use (by geo.param)"),
], ids=["use-before-def", "self-use", "param-after-use"])
def test_use_before_definition_is_rejected(tmp_path, text, message):
    runs = RUNS + (("--passes=insert-transport",), ("--passes=verify-contracts",), ("--passes=jet-fuse",))
    assert_rejected(tmp_path, text, message, runs)


# -- module structure ---------------------------------------------------------------------------


def test_op_at_module_level_is_rejected(tmp_path):
    text = function(f"    func.return %x : {T}").replace(
        "builtin.module {\n", 'builtin.module {\n  %w = geo.param "a.w" init "zeros" : tensor<2xf32>\n')
    assert_rejected(tmp_path, text, "only func.func (or apel.* declarations) may appear at module level, found geo.param")


def test_nested_module_is_rejected(tmp_path):
    text = "builtin.module {\n" + function(f"    func.return %x : {T}") + "}\n"
    assert_rejected(tmp_path, text, "only func.func (or apel.* declarations) may appear at module level, found builtin.module")


def test_function_with_two_blocks_is_rejected(tmp_path):
    text = function(f"    func.return %x : {T}\n  ^bb1:\n    func.return %x : {T}")
    assert_rejected(tmp_path, text, "func.func: @f has 2 blocks (expected exactly one)")


# -- numbers and element types ----------------------------------------------------------------


HUGE = "9" * 400


@pytest.mark.parametrize("text, message", [
    (function(f"    func.return %x : !geo.point<poincare<{HUGE}>, 2, f32>",
              args=f"%x: !geo.point<poincare<{HUGE}>, 2, f32>", result=f"!geo.point<poincare<{HUGE}>, 2, f32>"),
     "error: the curvature c of geo.poincare is out of the range of f64"),
    (function(f"    func.return %x : {T}").replace(f"-> {T} {{", f"-> {T} attributes {{contracts = [#contract.lipschitz<{HUGE}>]}} {{"),
     "error: the Lipschitz bound is out of the range of f64"),
    (function(f"    func.return %x : {T}").replace(
        f"-> {T} {{", f"-> {T} attributes {{contracts = [#contract.lipschitz<1.0, radius = {HUGE}>]}} {{"),
     "error: the input radius is out of the range of f64"),
    (function(f'    %y = "geo.scale"(%x) <{{factor = -{HUGE} : f64}}> : ({T}) -> {T}\n    func.return %y : {T}'),
     "error: integer literal -99999999999... (401 characters) is out of range for its float type"),
], ids=["curvature", "lipschitz", "radius", "generic-f64"])
def test_integer_literal_beyond_f64_is_a_parse_error(tmp_path, text, message):
    assert_rejected(tmp_path, text, message)
    rc, err = geomc(tmp_path, text, "--passes=")
    assert re.match(r"\S*mutant\.mlir:\d+:\d+: error: ", err), err  # at file:line:col


@pytest.mark.parametrize("elt", ["f80", "f128", "tf32", "f8E4M3FN"])
@pytest.mark.parametrize("kind", ["point", "path", "param"])
def test_element_types_no_backend_has_are_rejected(tmp_path, elt, kind):
    if kind == "param":
        text = function(f'    %w = geo.param "f.w" init "zeros" : tensor<2x{elt}>\n    func.return %x : {T}')
        message = f"geo.param: result must be a static rank-1 or rank-2 float tensor, a !geo.point or a !geo.tangent, found tensor<2x{elt}>"
    else:
        t = f"!geo.point<euclidean, 2, {elt}>" if kind == "point" else f"!geo.path<torus<radians>, 2, {elt}>"
        text = function(f"    func.return %x : {t}", args=f"%x: {t}", result=t)
        message = f"geo.{kind}: element type must be one of f16, bf16, f32, f64, found {elt}"
    assert_rejected(tmp_path, text, message)


@pytest.mark.parametrize("elt", ["f16", "bf16", "f32", "f64"])
def test_supported_element_types_still_compile(tmp_path, elt):
    t = f"!geo.point<euclidean, 2, {elt}>"
    text = function(f"    %y = geo.tanh %x : {t} -> {t}\n    func.return %y : {t}", args=f"%x: {t}", result=t)
    for options in RUNS:
        rc, err = geomc(tmp_path, text, *options)
        assert rc == 0, err


@pytest.mark.parametrize("manifold", ["euclidean<1.0>", "euclidean<", "sphere<>", "sphere<radians>"])
def test_parameters_on_a_manifold_without_any_are_a_parse_error(tmp_path, manifold):
    t = f"!geo.point<{manifold}, 3, f32>"
    text = function(f"    func.return %x : {t}", args=f"%x: {t}", result=t)
    name = manifold.split("<")[0]
    assert_rejected(tmp_path, text, f"error: geo.{name} takes no parameters")


def test_parameters_on_a_standalone_euclidean_attribute_are_a_parse_error(tmp_path):
    text = function(f"    func.return %x : {T}").replace("builtin.module {", "builtin.module attributes {m = #geo.euclidean<1, 2>} {")
    assert_rejected(tmp_path, text, "error: geo.euclidean takes no parameters")


# -- jet.apply: the primitive's operand count and properties ------------------------------------


def _apply(line: str) -> str:
    return function(
        f"    %j = jet.seed %x, %v order 2 : {T}, {V} -> {J}\n{line}\n"
        f"    %r = jet.coeff %y index 0 : {J} -> {T}\n    func.return %r : {T}",
        args=f"%x: {T}, %v: {V}",
    )


@pytest.mark.parametrize("line, message", [
    (f'    %y = jet.apply "geo.add"(%j) : ({J}) -> {J}', "jet.apply: 'geo.add' takes 2 operand(s), found 1"),
    (f'    %y = jet.apply "geo.tanh"(%j, %j) : ({J}, {J}) -> {J}', "jet.apply: 'geo.tanh' takes 1 operand(s), found 2"),
    (f'    %y = jet.apply "geo.scale"(%j) : ({J}) -> {J}', "jet.apply: 'geo.scale' needs the property 'factor' in params"),
    (f'    %y = jet.apply "geo.scale"(%j) params {{factor = "x"}} : ({J}) -> {J}',
     "jet.apply: 'geo.scale' property 'factor' is invalid"),
    (f'    %y = jet.apply "geo.scale"(%j) params {{factor = 2.0 : f32}} : ({J}) -> {J}',
     "jet.apply: 'geo.scale' property 'factor' is invalid"),
    (f'    %y = jet.apply "geo.tanh"(%j) params {{factor = 2.0 : f64}} : ({J}) -> {J}',
     "jet.apply: 'geo.tanh' has no property 'factor' (its properties: none)"),
], ids=["too-few", "too-many", "missing-param", "string-param", "f32-param", "unknown-param"])
def test_jet_apply_checks_the_primitive_signature(tmp_path, line, message):
    assert_rejected(tmp_path, _apply(line), message)


def test_jet_apply_with_a_valid_signature_compiles(tmp_path):
    text = _apply(f'    %y = jet.apply "geo.scale"(%j) params {{factor = 2.0 : f64}} : ({J}) -> {J}')
    for options in RUNS:
        rc, err = geomc(tmp_path, text, *options)
        assert rc == 0, err


def test_lexer_error_on_the_first_token_is_a_parse_error(tmp_path):
    """The parser lexes the first token when it is made: its error is a user error too."""
    rc, err = geomc(tmp_path, f"! @f(%x: {T}) -> {T} {{\n  func.return %x : {T}\n}}\n", "--passes=")
    assert rc == 1 and re.match(r"\S*mutant\.mlir:1:1: error: ", err), err


@pytest.mark.parametrize("proved", ["3", "[3]", '"x"'])
def test_proved_attribute_must_be_contracts(tmp_path, proved):
    """``proved`` (what verify-contracts recorded) is printed by the backends: a non-array
    value crashed them (AttributeError, exit 3)."""
    text = function(f"    func.return %x : {T}").replace(f"-> {T} {{", f"-> {T} attributes {{proved = {proved}}} {{")
    assert_rejected(tmp_path, text, "func.func: 'proved' must be an array of #contract attributes, found")


def test_proved_contracts_are_accepted(tmp_path):
    text = function(f"    func.return %x : {T}").replace(f"-> {T} {{", f"-> {T} attributes {{proved = [#contract.lipschitz<1.0>]}} {{")
    for options in RUNS:
        rc, err = geomc(tmp_path, text, *options)
        assert rc == 0, err


@pytest.mark.parametrize("text, where", [
    (USE_BEFORE_DEF, ":3:5: error: "),  # a check of verify_module (dominance)
    (function(f"    %y = geo.tanh %x : {T} -> !geo.point<euclidean, 3, f32>\n    func.return %x : {T}"),
     ":3:5: error: "),  # an op's own verifier
])
def test_verifier_errors_are_reported_at_the_op(tmp_path, text, where):
    """Ill-typed IR is rejected at file:line:col of the offending op, with a caret."""
    rc, err = geomc(tmp_path, text, "--passes=")
    assert rc == 1, err
    first = err.splitlines()[0]
    assert first.split("mutant.mlir", 1)[1].startswith(where), err
    assert "mutant.mlir: invalid IR: geo.tanh: " in first, err
    assert "^" in err.splitlines()[2], err


@pytest.mark.parametrize("order", [65, 10**5, 10**20])
def test_jet_orders_beyond_the_cap_are_rejected(order, tmp_path):
    """A jet order above jet.MAX_ORDER (64) is a verifier error: 10^5 hung code generation
    and 10^20 overflowed it."""
    text = function("    func.return %x : " + T, args=f"%x: {T}, %j: !jet.jet<{order}, {T}>")
    rc, err = geomc(tmp_path, text, "--target=torch")
    assert rc == 1 and "order must be from 1 to 64" in err, err


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_function_without_a_body_is_a_clear_error_on_a_target(target, tmp_path):
    """A declaration reached code generation, which read its (missing) block: exit 3."""
    text = (f"func.func private @External({T}) -> {T}\n"
            f"func.func @Model(%x: {T}) -> {T} {{\n  func.return %x : {T}\n}}\n")
    rc, err = geomc(tmp_path, text, f"--target={target}")
    assert rc == 2 and "@External is declared without a body" in err and "internal" not in err, err


def test_a_value_never_defined_is_located_at_its_first_use(tmp_path):
    """xDSL reports it at the end of the text (line 6, col 1 here)."""
    text = function(f"    %0 = geo.sub %x, %y : {T}, {T} -> {T}\n    %1 = geo.add %0, %z : {T}, {T} -> {T}\n"
                    f"    func.return %1 : {T}")
    rc, err = geomc(tmp_path, text, "--passes=")
    assert rc == 1
    assert "mutant.mlir:3:22: error: %y is used but never defined (also used and never defined: %z)" in err


def test_an_empty_manifold_says_one_is_missing(tmp_path):
    """It said 'unknown manifold no manifold keyword'."""
    rc, err = geomc(tmp_path, function(f"    func.return %x : {T}", args="%x: !geo.point<>"), "--passes=")
    assert rc == 1 and "expected a manifold, one of: euclidean, poincare" in err
