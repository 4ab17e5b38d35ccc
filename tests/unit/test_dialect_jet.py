"""The jet dialect: the jet type, seed/coeff and the derivative requests.

Round-trips every type and op, and checks each verifier's messages, including the checks
of a request against its model function.
"""

from __future__ import annotations

import re

import pytest
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import FloatAttr, ModuleOp, TensorType, f32, f64
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.traits import Pure
from xdsl.utils.exceptions import ParseError, VerifyException

from geomir.dialects import geo, jet, make_context

from .ir_roundtrip import assert_round_trips, parse_ir, print_ir

E, P = geo.EuclideanAttr(), geo.PoincareAttr(1.0)
E1, E2, P3 = geo.PointType(E, 1), geo.PointType(E, 2), geo.PointType(P, 3)
TE1, TE2, TP3 = E1.tangent(), E2.tangent(), P3.tangent()


# -- helpers ----------------------------------------------------------------------------




# The models the requests refer to (external declarations are enough).
MODELS = {"U": ([E2], [E1]), "G": ([P3, E2], [E1])}


def module_with(make, arg_types) -> tuple[ModuleOp, Operation]:
    """A module holding the models and ``func.func @f(args) { make(models, *args) }``."""
    models = {name: func.FuncOp.external(name, *sig) for name, sig in MODELS.items()}
    f = func.FuncOp("f", (arg_types, []))
    with ImplicitBuilder(f.body) as args:
        op = make(models, *args)
        func.ReturnOp()
    return ModuleOp([*models.values(), f]), op


# -- type -------------------------------------------------------------------------------


def test_jet_type():
    t = jet.JetType(4, E1)
    assert str(t) == "!jet.jet<4, !geo.point<euclidean, 1, f32>>"
    assert Parser(make_context(), str(t)).parse_attribute() == t
    assert t.order_value == 4 and t.base == E1
    assert t.coeff_type(0) == E1 and t.coeff_type(3) == TE1 == t.tangent_type
    assert jet.JetType(2, TP3) != jet.JetType(3, TP3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: jet.JetType(0, E1), "jet.jet: order must be from 1 to 64, found 0"),
        (lambda: jet.JetType(2, f32), "jet.jet: base must be a !geo.point or !geo.tangent, found f32"),
        (
            lambda: Parser(make_context(), "!jet.jet<0, !geo.point<euclidean, 1, f32>>").parse_type(),
            "jet.jet: order must be from 1 to 64, found 0",
        ),
    ],
    ids=["order", "base", "parsed"],
)
def test_invalid_jet_type(make, message):
    with pytest.raises(VerifyException, match=re.escape(message)):
        make()


# -- ops: build, infer, round-trip ------------------------------------------------------

DERIVATIVE_CASES = [
    # (op class, model, wrt, operand types, properties, expected result types)
    pytest.param(jet.JvpOp, "U", 0, [E2, TE2], {}, [E1, TE1], id="jvp"),
    pytest.param(jet.JvpOp, "G", 1, [P3, E2, TE2], {}, [E1, TE1], id="jvp-wrt1"),
    pytest.param(jet.VjpOp, "U", 0, [E2, TE1], {}, [TE2], id="vjp"),
    pytest.param(jet.VjpOp, "G", 0, [P3, E2, TE1], {}, [TP3], id="vjp-manifold"),
    pytest.param(jet.HvpOp, "U", 0, [E2, TE2], {}, [TE2], id="hvp"),
    pytest.param(jet.GradOp, "U", 0, [E2], {}, [TE2], id="grad"),
    pytest.param(jet.GradOp, "G", 0, [P3, E2], {}, [TP3], id="grad-manifold"),
    pytest.param(jet.DirectionalOp, "U", 0, [E2, TE2], {"order": 3}, [jet.JetType(3, E1)], id="directional"),
    pytest.param(jet.LaplacianOp, "U", 0, [E2], {}, [E1], id="laplacian"),
    pytest.param(jet.BiharmonicOp, "G", 1, [P3, E2], {}, [E1], id="biharmonic"),
]


@pytest.mark.parametrize(("cls", "model", "wrt", "arg_types", "props", "results"), DERIVATIVE_CASES)
def test_derivative_op_round_trips(cls, model, wrt, arg_types, props, results):
    module, op = module_with(lambda m, *a: cls.for_model(m[model], a, wrt, **props), arg_types)
    assert list(op.result_types) == results
    assert op.callee_name == model and op.wrt.data == wrt
    # The explicit constructor (as the frontend calls it) builds the same op.
    explicit, _ = module_with(lambda m, *a: cls(model, list(a), wrt, results, **props), arg_types)
    assert module.is_structurally_equivalent(explicit)
    assert_round_trips(module)


SEED_COEFF_CASES = [
    pytest.param(lambda m, x, v: jet.SeedOp(x, v, 4), [E2, TE2], [jet.JetType(4, E2)], id="seed"),
    pytest.param(lambda m, j: jet.CoeffOp(j, 0), [jet.JetType(2, P3)], [P3], id="coeff-primal"),
    pytest.param(lambda m, j: jet.CoeffOp(j, 2), [jet.JetType(2, P3)], [TP3], id="coeff"),
    pytest.param(lambda m, x: jet.LiftOp(x, 3), [P3], [jet.JetType(3, P3)], id="lift"),
    pytest.param(lambda m, j: jet.ApplyOp("geo.tanh", [j]), [jet.JetType(2, E2)], [jet.JetType(2, E2)], id="apply"),
    pytest.param(
        lambda m, j, w: jet.ApplyOp("geo.linear", [j, w]),
        [jet.JetType(3, TP3), TensorType(f32, [2, 3])],
        [jet.JetType(3, geo.TangentType(geo.PoincareAttr(1.0), 2))],
        id="apply-plain-weight",
    ),
    pytest.param(
        lambda m, j: jet.ApplyOp("geo.scale", [j], {"factor": FloatAttr(0.5, f64)}),
        [jet.JetType(1, E1)], [jet.JetType(1, E1)], id="apply-params",
    ),
    pytest.param(lambda m, x, y: jet.ApplyOp("geo.mobius_add", [x, y]), [jet.JetType(2, P3), P3], [jet.JetType(2, P3)], id="apply-manifold"),
    pytest.param(lambda m, x: jet.CollapsedSeedOp(x), [E2], [jet.CollapsedType(E2)], id="collapsed_seed"),
    pytest.param(lambda m, x: jet.CollapsedLiftOp(x), [P3], [jet.CollapsedType(P3)], id="collapsed_lift"),
    pytest.param(lambda m, j: jet.TraceOp(j), [jet.CollapsedType(E1)], [E1], id="trace"),
    pytest.param(
        lambda m, j, w: jet.ApplyOp("geo.linear", [j, w]),
        [jet.CollapsedType(E2), TensorType(f32, [3, 2])],
        [jet.CollapsedType(geo.PointType(E, 3))],
        id="apply-collapsed",
    ),
    pytest.param(
        lambda m, j, w, b: jet.LayerOp(j, w, b, "geo.tanh"),
        [jet.JetType(3, E2), TensorType(f32, [4, 2]), TensorType(f32, [4])],
        [jet.JetType(3, geo.PointType(E, 4))],
        id="layer",
    ),
    pytest.param(
        lambda m, j, w: jet.LayerOp(j, w),
        [jet.CollapsedType(E2), TensorType(f32, [1, 2])],
        [jet.CollapsedType(E1)],
        id="layer-collapsed-no-bias",
    ),
    pytest.param(lambda m, x: jet.StencilSeedOp(x, "biharmonic"), [E2], [jet.JetType(4, E2)], id="stencil_seed"),
    pytest.param(lambda m, x: jet.StencilSumOp(jet.StencilSeedOp(x, "biharmonic"), "biharmonic"), [E1], [E1],
                 id="stencil_sum"),
]


@pytest.mark.parametrize(("make", "arg_types", "results"), SEED_COEFF_CASES)
def test_seed_coeff_round_trip(make, arg_types, results):
    module, op = module_with(make, arg_types)
    assert list(op.result_types) == results
    assert op.has_trait(Pure)
    assert_round_trips(module)


def test_every_op_has_a_round_trip_case():
    covered = {case.id.split("-")[0] for case in DERIVATIVE_CASES + SEED_COEFF_CASES}
    assert {op.name.split(".", 1)[1] for op in jet.Jet.operations} == covered


@pytest.mark.parametrize(
    ("make", "arg_types", "line"),
    [
        (
            lambda m, x: jet.LaplacianOp.for_model(m["U"], [x]),
            [E2],
            "%1 = jet.laplacian @U(%0) wrt 0 : (!geo.point<euclidean, 2, f32>) -> "
            "!geo.point<euclidean, 1, f32>",
        ),
        (
            lambda m, x, v: jet.JvpOp.for_model(m["U"], [x, v]),
            [E2, TE2],
            "%2, %3 = jet.jvp @U(%0) along %1 wrt 0 : (!geo.point<euclidean, 2, f32>), "
            "!geo.tangent<euclidean, 2, f32> -> (!geo.point<euclidean, 1, f32>, "
            "!geo.tangent<euclidean, 1, f32>)",
        ),
        (
            lambda m, x, v: jet.DirectionalOp.for_model(m["U"], [x, v], order=2),
            [E2, TE2],
            "jet.directional @U(%0) along %1 wrt 0 order 2 : (!geo.point<euclidean, 2, f32>), "
            "!geo.tangent<euclidean, 2, f32> -> !jet.jet<2, !geo.point<euclidean, 1, f32>>",
        ),
        (
            lambda m, x, v: jet.SeedOp(x, v, 4),
            [E2, TE2],
            "%2 = jet.seed %0, %1 order 4 : !geo.point<euclidean, 2, f32>, "
            "!geo.tangent<euclidean, 2, f32> -> !jet.jet<4, !geo.point<euclidean, 2, f32>>",
        ),
        (
            lambda m, j: jet.CoeffOp(j, 1),
            [jet.JetType(4, E2)],
            "%1 = jet.coeff %0 index 1 : !jet.jet<4, !geo.point<euclidean, 2, f32>> -> "
            "!geo.tangent<euclidean, 2, f32>",
        ),
        (
            lambda m, x: jet.CollapsedSeedOp(x),
            [E2],
            "%1 = jet.collapsed_seed %0 : !geo.point<euclidean, 2, f32> -> "
            "!jet.collapsed<!geo.point<euclidean, 2, f32>>",
        ),
        (
            lambda m, x: jet.StencilSeedOp(x, "biharmonic"),
            [E2],
            '%1 = jet.stencil_seed %0 stencil "biharmonic" : !geo.point<euclidean, 2, f32> -> '
            "!jet.jet<4, !geo.point<euclidean, 2, f32>>",
        ),
        (
            lambda m, x: jet.GradOp.for_model(m["U"], [x]),
            [E2],
            "%1 = jet.grad @U(%0) wrt 0 : (!geo.point<euclidean, 2, f32>) -> !geo.tangent<euclidean, 2, f32>",
        ),
    ],
    ids=["laplacian", "jvp", "directional", "seed", "coeff", "collapsed-seed", "stencil-seed", "grad"],
)
def test_op_syntax(make, arg_types, line):
    module, _ = module_with(make, arg_types)
    assert line in print_ir(module)


def test_request_outside_a_module_skips_the_model_check():
    f = func.FuncOp("f", ([E2], []))
    with ImplicitBuilder(f.body) as (x,):
        jet.LaplacianOp("Missing", [x], 0, [E1])
        func.ReturnOp()
    f.verify()
    with pytest.raises(VerifyException, match="jet.laplacian: unknown model @Missing"):
        ModuleOp([f]).verify()


# -- ops: verifiers ---------------------------------------------------------------------

S_E1, S_E2, S_E3, S_P3 = (str(t) for t in (E1, E2, geo.PointType(E, 3), P3))
S_TE1, S_TE2, S_TE3 = (str(t) for t in (TE1, TE2, geo.PointType(E, 3).tangent()))

DECLARATIONS = f"""
func.func private @U({S_E2}) -> {S_E1}
func.func private @Two({S_E2}) -> ({S_E1}, {S_E1})
func.func private @V2({S_E2}) -> {S_E2}
builtin.module @m {{}}
"""


def jet_of(order: int, base: str) -> str:
    return f"!jet.jet<{order}, {base}>"


INVALID_OPS = [
    # jet.seed / jet.coeff
    pytest.param(
        [S_E2, S_TE3], f"jet.seed %a0, %a1 order 2 : {S_E2}, {S_TE3} -> {jet_of(2, S_E2)}",
        f"jet.seed: direction {S_TE3} is not the tangent type of primal {S_E2} (expected {S_TE2})",
        id="seed-direction",
    ),
    pytest.param(
        [S_E2, S_TE2], f"jet.seed %a0, %a1 order 3 : {S_E2}, {S_TE2} -> {jet_of(2, S_E2)}",
        f"jet.seed: result type {jet_of(2, S_E2)} does not match the expected {jet_of(3, S_E2)}",
        id="seed-order",
    ),
    pytest.param(
        [S_E2, S_TE2], f"jet.seed %a0, %a1 order 0 : {S_E2}, {S_TE2} -> {jet_of(1, S_E2)}",
        "jet.seed: order must be from 1 to 64, found 0", id="seed-order0",
    ),
    pytest.param(
        [jet_of(4, S_E2)], f"jet.coeff %a0 index 5 : {jet_of(4, S_E2)} -> {S_TE2}",
        f"jet.coeff: index 5 is out of range for {jet_of(4, S_E2)} (expected 0 <= index <= K = 4)",
        id="coeff-index",
    ),
    pytest.param(
        [jet_of(4, S_E2)], f"jet.coeff %a0 index 0 : {jet_of(4, S_E2)} -> {S_TE2}",
        f"jet.coeff: result type {S_TE2} does not match the expected {S_E2}", id="coeff-result",
    ),
    # checks against the model
    pytest.param(
        [S_E3], f"jet.laplacian @U(%a0) wrt 0 : ({S_E3}) -> {S_E1}",
        f"jet.laplacian: @U takes ({S_E2}), found operands ({S_E3})", id="laplacian-operands",
    ),
    pytest.param(
        [S_E2], f"jet.laplacian @V(%a0) wrt 0 : ({S_E2}) -> {S_E1}",
        "jet.laplacian: unknown model @V", id="laplacian-unknown",
    ),
    pytest.param(
        [S_E2], f"jet.laplacian @m(%a0) wrt 0 : ({S_E2}) -> {S_E1}",
        "jet.laplacian: @m is not a func.func (found builtin.module)", id="laplacian-not-func",
    ),
    pytest.param(
        [S_E2], f"jet.laplacian @Two(%a0) wrt 0 : ({S_E2}) -> {S_E1}",
        f"jet.laplacian: @Two must return one !geo.point or !geo.tangent, returns ({S_E1}, {S_E1})",
        id="laplacian-two-results",
    ),
    pytest.param(
        [S_E2], f"jet.laplacian @U(%a0) wrt 0 : ({S_E2}) -> {S_E2}",
        f"jet.laplacian: result #0 has type {S_E2}, expected {S_E1} "
        f"(the model output type; @U returns {S_E1})",
        id="laplacian-result",
    ),
    pytest.param(
        [S_E2], f"jet.laplacian @U(%a0) wrt 1 : ({S_E2}) -> {S_E1}",
        "jet.laplacian: wrt = 1 is out of range for 1 model input(s)", id="laplacian-wrt",
    ),
    pytest.param(
        ["tensor<2xf32>"], f"jet.biharmonic @W(%a0) wrt 0 : (tensor<2xf32>) -> {S_E1}",
        "jet.biharmonic: differentiated input #0 must be a !geo.point or !geo.tangent, "
        "found tensor<2xf32>",
        id="biharmonic-input",
    ),
    pytest.param(
        [S_E2], f"jet.biharmonic @U(%a0) wrt 0 : ({S_E2}) -> tensor<1xf32>",
        "expected a !geo.point or !geo.tangent",
        id="biharmonic-output",
    ),
    # the op's own types
    pytest.param(
        [S_E2, S_TE3], f"jet.jvp @U(%a0) along %a1 wrt 0 : ({S_E2}), {S_TE3} -> ({S_E1}, {S_TE1})",
        f"jet.jvp: direction has type {S_TE3}, expected {S_TE2} "
        "(the tangent type of the differentiated input)",
        id="jvp-direction",
    ),
    pytest.param(
        [S_E2, S_TE2], f"jet.jvp @U(%a0) along %a1 wrt 0 : ({S_E2}), {S_TE2} -> ({S_E1}, {S_TE2})",
        f"jet.jvp: result #1 has type {S_TE2}, expected {S_TE1} "
        "(the tangent type of the model output)",
        id="jvp-tangent",
    ),
    pytest.param(
        [S_TE2], f"jet.jvp @U() along %a0 wrt 0 : (), {S_TE2} -> ({S_E1}, {S_TE1})",
        "jet.jvp: expects at least one model input followed by the direction, found 1 operands",
        id="jvp-no-inputs",
    ),
    pytest.param(
        [S_E2, S_TE2], f"jet.vjp @U(%a0) cotangent %a1 wrt 0 : ({S_E2}), {S_TE2} -> {S_TE2}",
        f"jet.vjp: cotangent has type {S_TE2}, expected {S_TE1} "
        f"(the tangent type of the model output; @U returns {S_E1})",
        id="vjp-cotangent",
    ),
    pytest.param(
        [S_E2, S_E1], f"jet.vjp @V(%a0) cotangent %a1 wrt 0 : ({S_E2}), {S_E1} -> {S_TE2}",
        f"jet.vjp: cotangent must be a !geo.tangent, found {S_E1}", id="vjp-cotangent-kind",
    ),
    pytest.param(
        [S_E2, S_TE1], f"jet.vjp @U(%a0) cotangent %a1 wrt 0 : ({S_E2}), {S_TE1} -> {S_E2}",
        f"jet.vjp: result #0 has type {S_E2}, expected {S_TE2} "
        "(the tangent type of the differentiated input)",
        id="vjp-result",
    ),
    pytest.param(
        [S_E2, S_TE2], f"jet.hvp @U(%a0) along %a1 wrt 0 : ({S_E2}), {S_TE2} -> {S_TE3}",
        f"jet.hvp: result #0 has type {S_TE3}, expected {S_TE2}", id="hvp",
    ),
    pytest.param(
        [S_E2, S_TE2],
        f"jet.directional @U(%a0) along %a1 wrt 0 order 4 : ({S_E2}), {S_TE2} -> {jet_of(3, S_E1)}",
        f"jet.directional: result #0 has type {jet_of(3, S_E1)}, expected {jet_of(4, S_E1)} "
        "(a jet of order 4 over the model output type)",
        id="directional-order",
    ),
    pytest.param(
        [S_E2, S_TE2],
        f"jet.directional @U(%a0) along %a1 wrt 0 order 2 : ({S_E2}), {S_TE2} -> {jet_of(2, S_E2)}",
        f"jet.directional: result #0 has type {jet_of(2, S_E2)}, expected {jet_of(2, S_E1)} "
        f"(a jet of order 2 over the model output type; @U returns {S_E1})",
        id="directional-model",
    ),
    pytest.param(
        [S_E2, S_TE2],
        f"jet.directional @U(%a0) along %a1 wrt 0 order 0 : ({S_E2}), {S_TE2} -> {jet_of(1, S_E1)}",
        "jet.directional: order must be from 1 to 64, found 0", id="directional-order0",
    ),
    pytest.param(
        [S_E2], f"jet.grad @Two(%a0) wrt 0 : ({S_E2}) -> {S_TE2}",
        "jet.grad: @Two must return one !geo.point or !geo.tangent", id="grad-two-results",
    ),
    pytest.param(
        [S_E2], f"jet.grad @V2(%a0) wrt 0 : ({S_E2}) -> {S_TE2}",
        f"jet.grad: needs a scalar model (output of dimension 1); @V2 returns {S_E2}", id="grad-scalar",
    ),
    pytest.param(
        [jet_of(2, S_E2), f"!jet.collapsed<{S_E2}>"],
        f'jet.apply "geo.add"(%a0, %a1) : ({jet_of(2, S_E2)}, !jet.collapsed<{S_E2}>) -> {jet_of(2, S_E2)}',
        "jet.apply: mixes !jet.jet and !jet.collapsed operands", id="apply-mixed-kinds",
    ),
    pytest.param(
        [f"!jet.collapsed<{S_E2}>"], f"jet.trace %a0 : !jet.collapsed<{S_E2}> -> {S_E1}",
        f"jet.trace: result type {S_E1} does not match the expected {S_E2}", id="trace-result",
    ),
    pytest.param(
        [jet_of(2, S_E2), "tensor<4x2xf32>"],
        f'jet.layer %a0, %a1 activation "geo.mul" : ({jet_of(2, S_E2)}, tensor<4x2xf32>) -> {jet_of(2, S_E2)}',
        "jet.layer: activation 'geo.mul' is not a unary elementwise geo op", id="layer-activation",
    ),
    pytest.param(
        [jet_of(2, S_E2), "tensor<4x2xf32>"],
        f"jet.layer %a0, %a1 : ({jet_of(2, S_E2)}, tensor<4x2xf32>) -> {jet_of(2, S_E2)}",
        "jet.layer: result type", id="layer-result",
    ),
    pytest.param(
        [S_E2], f"jet.collapsed_seed %a0 : {S_E2} -> !jet.collapsed<{S_E1}>",
        f"jet.collapsed_seed: result type !jet.collapsed<{S_E1}> does not match the expected !jet.collapsed<{S_E2}>",
        id="collapsed_seed-result",
    ),
    pytest.param(
        [S_E2], f"jet.collapsed_lift %a0 : {S_E2} -> !jet.collapsed<{S_E1}>",
        f"jet.collapsed_lift: result type !jet.collapsed<{S_E1}> does not match the expected !jet.collapsed<{S_E2}>",
        id="collapsed_lift-result",
    ),
    pytest.param(
        [S_E2], f'jet.stencil_seed %a0 stencil "laplacian9" : {S_E2} -> {jet_of(4, S_E2)}',
        "jet.stencil_seed: unknown stencil 'laplacian9' (expected one of biharmonic)", id="stencil_seed-unknown",
    ),
    pytest.param(
        [jet_of(3, S_E2)], f'jet.stencil_sum %a0 stencil "biharmonic" : {jet_of(3, S_E2)} -> {S_E2}',
        f"jet.stencil_sum: stencil 'biharmonic' needs a jet of order 4, found {jet_of(3, S_E2)}", id="stencil_sum-order",
    ),
    pytest.param(  # a plain jet has no stencil batch axis: the runtime's stencil_sum cannot use it
        [S_E2, f"!geo.tangent<euclidean, 2, f32>"],
        f"%j = jet.seed %a0, %a1 order 4 : {S_E2}, !geo.tangent<euclidean, 2, f32> -> {jet_of(4, S_E2)}\n  "
        f'%t = jet.apply "geo.tanh"(%j) : ({jet_of(4, S_E2)}) -> {jet_of(4, S_E2)}\n  '
        f'%s = jet.stencil_sum %t stencil "biharmonic" : {jet_of(4, S_E2)} -> {S_E2}',
        'jet.stencil_sum: its jet must be computed from a jet.stencil_seed stencil "biharmonic" (the stencil\'s '
        "directions are a leading batch axis), found jet.seed", id="stencil_sum-plain-seed",
    ),
    pytest.param(
        [jet_of(4, S_E2)], f'jet.stencil_sum %a0 stencil "biharmonic" : {jet_of(4, S_E2)} -> {S_E2}',
        "jet.stencil_sum: its jet must be computed from a jet.stencil_seed", id="stencil_sum-argument",
    ),
    pytest.param(
        [jet_of(2, S_E2)], f'%y = jet.apply "geo.add"(%a0) : ({jet_of(2, S_E2)}) -> {jet_of(2, S_E2)}',
        "jet.apply: 'geo.add' takes 2 operand(s), found 1", id="apply-arity",
    ),
    pytest.param(
        [jet_of(2, S_E2)], f'%y = jet.apply "geo.pow"(%a0) params {{factor = 2.0 : f64}} : ({jet_of(2, S_E2)}) -> {jet_of(2, S_E2)}',
        "jet.apply: 'geo.pow' has no property 'factor' (its properties: exponent)", id="apply-params",
    ),
    pytest.param(
        [S_E2], f"jet.lift %a0 order 2 : {S_E2} -> {jet_of(3, S_E2)}",
        f"jet.lift: result type {jet_of(3, S_E2)} does not match the expected {jet_of(2, S_E2)}", id="lift-order",
    ),
    pytest.param(
        [jet_of(2, S_E2)], f'jet.apply "geo.frobnicate"(%a0) : ({jet_of(2, S_E2)}) -> {jet_of(2, S_E2)}',
        "jet.apply: unknown primitive 'geo.frobnicate'", id="apply-unknown",
    ),
    pytest.param(
        [S_E2], f'jet.apply "geo.tanh"(%a0) : ({S_E2}) -> {jet_of(2, S_E2)}',
        "jet.apply: 'geo.tanh' has no jet operand", id="apply-no-jet",
    ),
    pytest.param(
        [jet_of(2, S_E2), jet_of(3, S_E2)], f'jet.apply "geo.add"(%a0, %a1) : ({jet_of(2, S_E2)}, {jet_of(3, S_E2)}) -> {jet_of(2, S_E2)}',
        "jet.apply: jet operands of different orders [2, 3]", id="apply-orders",
    ),
    pytest.param(
        [jet_of(2, S_E2)], f'jet.apply "geo.tanh"(%a0) : ({jet_of(2, S_E2)}) -> {jet_of(2, S_E1)}',
        f"jet.apply: result type {jet_of(2, S_E1)} does not match the expected {jet_of(2, S_E2)}", id="apply-result",
    ),
    pytest.param(
        [jet_of(2, S_E2), jet_of(2, S_E1)], f'jet.apply "geo.add"(%a0, %a1) : ({jet_of(2, S_E2)}, {jet_of(2, S_E1)}) -> {jet_of(2, S_E2)}',
        "geo.add: rhs", id="apply-primitive-typing",
    ),
]


@pytest.mark.parametrize(("arg_types", "op_text", "message"), INVALID_OPS)
def test_invalid_op(arg_types, op_text, message):
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(arg_types))
    module = parse_ir(f"{DECLARATIONS}func.func @f({args}) {{\n  {op_text}\n  func.return\n}}")
    with pytest.raises(VerifyException, match=re.escape(message)):
        module.verify()


def test_every_op_has_an_invalid_case():
    covered = {case.id.split("-")[0] for case in INVALID_OPS}
    assert {op.name.split(".", 1)[1] for op in jet.Jet.operations} == covered


def test_wrong_number_of_result_types_is_a_parse_error():
    op = f"jet.laplacian @U(%x) wrt 0 : ({S_E2}) -> ({S_E1}, {S_E1})"
    text = f"{DECLARATIONS}func.func @f(%x: {S_E2}) {{\n  {op}\n  func.return\n}}"
    message = "jet.laplacian has 1 result(s), found 2 result types"
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_ir(text)
