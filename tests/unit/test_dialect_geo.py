"""The geo dialect: manifold attributes, point/tangent types and ops.

Every attribute, type and op is printed, parsed back, verified and compared; every
verifier has at least one invalid case with its message checked.
"""

from __future__ import annotations

import math
import re
from functools import partial

import pytest
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, f64, i32
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.traits import NoMemoryEffect, Pure
from xdsl.transforms.common_subexpression_elimination import cse
from xdsl.transforms.dead_code_elimination import dce
from xdsl.utils.exceptions import ParseError, VerifyException

from geomir.dialects import geo, make_context

from .ir_roundtrip import assert_round_trips, parse_ir, print_ir

E, P, L, S = geo.EuclideanAttr(), geo.PoincareAttr(1.0), geo.LorentzAttr(0.5), geo.SphereAttr()
T = geo.TorusAttr("turns")


def pt(m, n, elt=f32):
    return geo.PointType(m, n, elt)


def tg(m, n, elt=f32):
    return geo.TangentType(m, n, elt)


def path(m, n, elt=f32):
    return geo.PathType(m, n, elt)


# -- helpers ----------------------------------------------------------------------------




def single_op_module(make, arg_types) -> tuple[ModuleOp, Operation]:
    """``func.func @f(args) { make(*args); func.return }`` and the op ``make`` built."""
    f = func.FuncOp("f", (arg_types, []))
    with ImplicitBuilder(f.body) as args:
        op = make(*args)
        func.ReturnOp()
    return ModuleOp([f]), op


def assert_invalid(arg_types: list[str], op_text: str, message: str) -> None:
    """Parsing ``op_text`` in a function with ``arg_types`` arguments fails verification."""
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(arg_types))
    module = parse_ir(f"func.func @f({args}) {{\n  %r = {op_text}\n  func.return\n}}")
    with pytest.raises(VerifyException, match=re.escape(message)):
        module.verify()


# -- attributes and types ---------------------------------------------------------------

PRINTED = [
    (E, "#geo.euclidean"),
    (P, "#geo.poincare<1.0>"),
    (L, "#geo.lorentz<0.5>"),
    (S, "#geo.sphere"),
    (geo.TorusAttr("radians"), "#geo.torus<radians>"),
    (T, "#geo.torus<turns>"),
    (geo.PoincareAttr(1e-5), "#geo.poincare<1.0e-05>"),
    (pt(P, 16), "!geo.point<poincare<1.0>, 16, f32>"),
    (tg(E, 4, f64), "!geo.tangent<euclidean, 4, f64>"),
    (pt(T, 3), "!geo.point<torus<turns>, 3, f32>"),
    (pt(L, 3, f64), "!geo.point<lorentz<0.5>, 3, f64>"),
    (tg(S, 2), "!geo.tangent<sphere, 2, f32>"),
    (path(T, 3), "!geo.path<torus<turns>, 3, f32>"),
    (path(geo.TorusAttr("radians"), 1, f64), "!geo.path<torus<radians>, 1, f64>"),
]


@pytest.mark.parametrize(("attr", "text"), PRINTED, ids=[t for _, t in PRINTED])
def test_attribute_prints_and_parses(attr, text):
    assert str(attr) == text
    assert Parser(make_context(), text).parse_attribute() == attr


@pytest.mark.parametrize(
    ("attr", "kind", "curvature", "short"),
    [
        (E, "euclidean", None, "euclidean"),
        (P, "poincare", 1.0, "poincare<1.0>"),
        (L, "lorentz", 0.5, "lorentz<0.5>"),
        (S, "sphere", None, "sphere"),
        (T, "torus", None, "torus<turns>"),
    ],
)
def test_manifold_helpers(attr, kind, curvature, short):
    assert isinstance(attr, geo.ManifoldAttr)
    assert (attr.kind, attr.curvature, attr.short()) == (kind, curvature, short)
    assert geo.MANIFOLDS[kind] is type(attr)


def test_torus_period():
    assert geo.TorusAttr("radians").period == 2 * math.pi
    assert T.period == 1.0


def test_path_type_is_not_a_point_or_tangent():
    p = path(T, 3, f64)
    assert p.dim_value == 3 and p.point() == pt(T, 3, f64)
    assert not isinstance(p, geo.GeoValueType) and not geo.is_vector_type(p)
    assert p != pt(T, 3, f64)


def test_type_helpers():
    x = pt(P, 16)
    assert x.dim_value == 16
    assert not x.is_vector_space()
    assert pt(E, 3).is_vector_space() and tg(P, 3).is_vector_space()
    assert x.tangent() == tg(P, 16)
    assert tg(P, 16).tangent() == tg(P, 16)
    assert x.with_dim(4) == pt(P, 4)
    assert tg(E, 2, f64).with_dim(5) == tg(E, 5, f64)
    assert geo.PointType(P, 3) == geo.PointType(P, 3, f32)  # f32 by default
    assert geo.is_vector_type(pt(E, 1)) and not geo.is_vector_type(pt(S, 3))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: geo.PoincareAttr(-1.0), "geo.poincare: curvature c must be finite and > 0, found -1.0"),
        (lambda: geo.PoincareAttr(math.inf), "geo.poincare: curvature c must be finite and > 0, found inf"),
        (lambda: geo.LorentzAttr(0.0), "geo.lorentz: curvature c must be finite and > 0, found 0.0"),
        (lambda: geo.TorusAttr("degrees"), "geo.torus: unknown units 'degrees' (expected one of radians, turns)"),
        (lambda: pt(E, 0), "geo.point: dimension must be >= 1 on euclidean, found 0"),
        (lambda: pt(S, 1), "geo.point: dimension must be >= 2 on sphere, found 1"),
        (lambda: tg(L, 1), "geo.tangent: dimension must be >= 2 on lorentz<0.5>, found 1"),
        (lambda: pt(E, 3, i32), "element_type"),
        (lambda: path(P, 3), "geo.path: paths are on torus manifolds, found poincare<1.0>"),
        (lambda: path(E, 3), "geo.path: paths are on torus manifolds, found euclidean"),
        (lambda: path(T, 0), "geo.path: dimension must be >= 1, found 0"),
        (lambda: path(T, 3, i32), "element_type"),
    ],
    ids=["poincare-negative", "poincare-inf", "lorentz-zero", "torus-units", "dim-zero",
         "sphere-dim", "lorentz-dim", "element-type", "path-poincare", "path-euclidean", "path-dim",
         "path-element-type"],
)
def test_invalid_attribute(make, message):
    with pytest.raises(VerifyException, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("!geo.point<poincare<-1.0>, 2, f32>", VerifyException, "curvature c must be finite and > 0"),
        ("!geo.point<sphere, 1, f32>", VerifyException, "dimension must be >= 2 on sphere"),
        ("#geo.torus<degrees>", VerifyException, "unknown units 'degrees'"),
        (
            "!geo.point<hyperbolic, 2, f32>",
            ParseError,
            "unknown manifold 'hyperbolic', expected one of: euclidean, poincare, lorentz, sphere, torus",
        ),
        ("!geo.tangent<3, f32>", ParseError, "expected a manifold, one of: euclidean"),
        ("!geo.path<sphere, 3, f32>", VerifyException, "geo.path: paths are on torus manifolds, found sphere"),
        ("!geo.path<torus<degrees>, 3, f32>", VerifyException, "unknown units 'degrees'"),
    ],
)
def test_invalid_attribute_text(text, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Parser(make_context(), text).parse_attribute()


# -- ops: build, infer, round-trip ------------------------------------------------------

W43 = TensorType(f32, [4, 3])
SCALAR = pt(E, 1)

OP_CASES = [
    pytest.param(geo.ExpmapOp, [pt(P, 3), tg(P, 3)], pt(P, 3), id="expmap"),
    pytest.param(geo.LogmapOp, [pt(S, 3), pt(S, 3)], tg(S, 3), id="logmap"),
    pytest.param(geo.Expmap0Op, [tg(L, 3)], pt(L, 3), id="expmap0"),
    pytest.param(geo.Logmap0Op, [pt(P, 3)], tg(P, 3), id="logmap0"),
    pytest.param(geo.DistOp, [pt(T, 2, f64), pt(T, 2, f64)], pt(E, 1, f64), id="dist"),
    pytest.param(geo.MobiusAddOp, [pt(P, 3), pt(P, 3)], pt(P, 3), id="mobius_add"),
    pytest.param(geo.MobiusScalarOp, [SCALAR, pt(P, 3)], pt(P, 3), id="mobius_scalar"),
    pytest.param(geo.MobiusMatvecOp, [W43, pt(P, 3)], pt(P, 4), id="mobius_matvec"),
    pytest.param(geo.ProjOp, [pt(L, 3)], pt(L, 3), id="proj"),
    pytest.param(geo.ParallelTransportOp, [pt(S, 3), pt(S, 3), tg(S, 3)], tg(S, 3), id="parallel_transport"),
    pytest.param(geo.CoordsOp, [tg(T, 2)], pt(E, 2), id="coords"),
    pytest.param(geo.OriginOp, [tg(S, 3)], pt(S, 3), id="origin"),
    pytest.param(lambda a, b, c, v: geo.HolonomyOp([a, b, c], v), [pt(P, 3)] * 3 + [tg(P, 3)], tg(P, 3), id="holonomy"),
    pytest.param(lambda a, b, c, d, v: geo.HolonomyAngleOp([a, b, c, d], v), [pt(S, 3)] * 4 + [tg(S, 3)],
                 pt(E, 1), id="holonomy_angle"),
    pytest.param(geo.UnwrapOp, [path(T, 3)], pt(E, 3), id="unwrap"),
    pytest.param(geo.WindingOp, [path(T, 2, f64)], pt(E, 2, f64), id="winding"),
    pytest.param(geo.WindingMarginOp, [path(T, 4)], pt(E, 1), id="winding_margin"),
    pytest.param(geo.EndpointOp, [path(geo.TorusAttr("radians"), 3, f64)], pt(geo.TorusAttr("radians"), 3, f64),
                 id="endpoint"),
    pytest.param(
        lambda: geo.ParamOp("mlp.linear0.weight", W43, "glorot_uniform"), [], W43, id="param"
    ),
    pytest.param(lambda: geo.ParamOp("b", tg(P, 3), "zeros"), [], tg(P, 3), id="param-tangent"),
    pytest.param(geo.LinearOp, [tg(P, 3), W43], tg(P, 4), id="linear"),
    pytest.param(geo.LinearOp, [pt(E, 3), W43], pt(E, 4), id="linear-euclidean"),
    pytest.param(geo.BiasOp, [pt(E, 3), TensorType(f32, [3])], pt(E, 3), id="bias"),
    pytest.param(partial(geo.ScaleOp, value=-0.5), [pt(E, 3)], pt(E, 3), id="scale"),
    pytest.param(partial(geo.PowOp, value=2.0), [tg(S, 3)], tg(S, 3), id="pow"),
    *[pytest.param(cls, [pt(E, 2), pt(E, 2)], pt(E, 2), id=name) for name, cls in geo.BINARY_OPS.items()],
    *[pytest.param(cls, [tg(P, 4)], tg(P, 4), id=name) for name, cls in geo.UNARY_OPS.items()],
]


@pytest.mark.parametrize(("make", "arg_types", "result_type"), OP_CASES)
def test_op_infers_result_and_round_trips(make, arg_types, result_type):
    module, op = single_op_module(make, arg_types)
    assert op.result_types == (result_type,)
    assert_round_trips(module)


def test_every_op_has_a_round_trip_case():
    covered = {case.id.split("-")[0] for case in OP_CASES}
    assert {op.name.split(".", 1)[1] for op in geo.Geo.operations} == covered


def test_tables():
    assert set(geo.UNARY_OPS) == {
        "neg", "tanh", "sigmoid", "relu", "softplus", "exp", "log", "sqrt", "sin", "cos"
    }
    assert geo.UNARY_OPS["tanh"] is geo.TanhOp
    assert geo.BINARY_OPS == {"add": geo.AddOp, "sub": geo.SubOp, "mul": geo.MulOp, "div": geo.DivOp}


@pytest.mark.parametrize(
    ("make", "arg_types", "line"),
    [
        (
            geo.ExpmapOp,
            [pt(P, 3), tg(P, 3)],
            "%2 = geo.expmap %0, %1 : !geo.point<poincare<1.0>, 3, f32>, "
            "!geo.tangent<poincare<1.0>, 3, f32> -> !geo.point<poincare<1.0>, 3, f32>",
        ),
        (
            partial(geo.ScaleOp, value=-0.5),
            [pt(E, 3)],
            "%1 = geo.scale %0 factor -0.5 : !geo.point<euclidean, 3, f32> -> !geo.point<euclidean, 3, f32>",
        ),
        (
            lambda: geo.ParamOp("w", W43, "glorot_uniform"),
            [],
            '%0 = geo.param "w" init "glorot_uniform" : tensor<4x3xf32>',
        ),
    ],
    ids=["expmap", "scale", "param"],
)
def test_op_syntax(make, arg_types, line):
    module, _ = single_op_module(make, arg_types)
    assert line in print_ir(module)


def test_traits_dce_and_cse():
    assert geo.ExpmapOp.has_trait(Pure) and geo.TanhOp.has_trait(Pure)
    assert not geo.ParamOp.has_trait(Pure) and geo.ParamOp.has_trait(NoMemoryEffect)
    module, _ = single_op_module(lambda: geo.ParamOp("unused", W43, "zeros"), [])
    dce(module)
    assert "geo.param" not in print_ir(module)

    f = func.FuncOp("f", ([], [W43] * 3))
    with ImplicitBuilder(f.body):
        func.ReturnOp(*(geo.ParamOp(name, W43, "zeros") for name in ("a", "a", "b")))
    module = ModuleOp([f])
    cse(module)
    assert print_ir(module).count("geo.param") == 2  # only the two "a" merge


def test_constructor_rejects_bad_operands():
    module, _ = single_op_module(lambda *a: None, [pt(P, 3), tg(S, 3)])
    x, v = module.body.block.first_op.body.block.args
    with pytest.raises(VerifyException, match="geo.expmap: tangent"):
        geo.ExpmapOp(x, v)
    with pytest.raises(TypeError, match="takes 2 operands"):
        geo.ExpmapOp(x)


# -- ops: verifiers ---------------------------------------------------------------------

P3, P4 = "!geo.point<poincare<1.0>, 3, f32>", "!geo.point<poincare<1.0>, 4, f32>"
TP3, TS3 = "!geo.tangent<poincare<1.0>, 3, f32>", "!geo.tangent<sphere, 3, f32>"
E1, E2, E3 = (f"!geo.point<euclidean, {n}, f32>" for n in (1, 2, 3))
E16, TE3 = "!geo.point<euclidean, 16, f32>", "!geo.tangent<euclidean, 3, f32>"
VECTOR = "must be a vector type (a !geo.tangent or a !geo.point on euclidean)"
T3, TT3 = "!geo.point<torus<radians>, 3, f32>", "!geo.tangent<torus<radians>, 3, f32>"
PATH3, PATH3_F64 = "!geo.path<torus<radians>, 3, f32>", "!geo.path<torus<radians>, 3, f64>"

INVALID_OPS = [
    pytest.param(
        [P3, TS3], f"geo.expmap %a0, %a1 : {P3}, {TS3} -> {P3}",
        f"geo.expmap: tangent {TS3} does not match base point {P3} "
        "(expected the same manifold, dimension and element type)",
        id="expmap-space",
    ),
    pytest.param(
        [TP3, TP3], f"geo.expmap %a0, %a1 : {TP3}, {TP3} -> {P3}",
        f"geo.expmap: base point must be a !geo.point, found {TP3}", id="expmap-base",
    ),
    pytest.param(
        [P3, TP3], f"geo.expmap %a0, %a1 : {P3}, {TP3} -> {TP3}",
        f"geo.expmap: result type {TP3} does not match the expected {P3}", id="expmap-result",
    ),
    pytest.param(
        [P3, P4], f"geo.logmap %a0, %a1 : {P3}, {P4} -> {TP3}",
        f"geo.logmap: target point {P4} does not match base point {P3}", id="logmap",
    ),
    pytest.param(
        [P3], f"geo.expmap0 %a0 : {P3} -> {P3}",
        f"geo.expmap0: operand must be a !geo.tangent, found {P3}", id="expmap0",
    ),
    pytest.param(
        [TP3], f"geo.logmap0 %a0 : {TP3} -> {TP3}",
        f"geo.logmap0: operand must be a !geo.point, found {TP3}", id="logmap0",
    ),
    pytest.param(
        [P3, P3], f"geo.dist %a0, %a1 : {P3}, {P3} -> {E2}",
        f"geo.dist: result type {E2} does not match the expected {E1}", id="dist",
    ),
    pytest.param(
        [E3, E3], f"geo.mobius_add %a0, %a1 : {E3}, {E3} -> {E3}",
        f"geo.mobius_add: x must be a !geo.point on poincare, found {E3}", id="mobius_add",
    ),
    pytest.param(
        [E2, P3], f"geo.mobius_scalar %a0, %a1 : {E2}, {P3} -> {P3}",
        f"geo.mobius_scalar: scalar r must be {E1}, found {E2}", id="mobius_scalar",
    ),
    pytest.param(
        ["tensor<4x5xf32>", P3], f"geo.mobius_matvec %a0, %a1 : tensor<4x5xf32>, {P3} -> {P4}",
        f"geo.mobius_matvec: weight tensor<4x5xf32> expects input dimension 5, found {P3}",
        id="mobius_matvec",
    ),
    pytest.param(
        ["tensor<4x3xf64>", P3], f"geo.mobius_matvec %a0, %a1 : tensor<4x3xf64>, {P3} -> {P4}",
        "geo.mobius_matvec: weight tensor<4x3xf64> has element type f64, expected f32",
        id="mobius_matvec-element",
    ),
    pytest.param(
        [TP3], f"geo.proj %a0 : {TP3} -> {TP3}",
        f"geo.proj: operand must be a !geo.point, found {TP3}", id="proj",
    ),
    pytest.param(
        [P3, P3, TS3], f"geo.parallel_transport %a0, %a1, %a2 : {P3}, {P3}, {TS3} -> {TS3}",
        f"geo.parallel_transport: tangent {TS3} does not match source point {P3}",
        id="parallel_transport",
    ),
    pytest.param(
        [P3], f"geo.coords %a0 : {P3} -> {P3}",
        f"geo.coords: result type {P3} does not match the expected {E3}", id="coords",
    ),
    pytest.param(
        [], 'geo.param "w" init "ones" : tensor<4xf32>',
        "geo.param: unknown init 'ones' for 'w' (expected one of glorot_uniform, zeros, "
        "uniform_small, normal)",
        id="param-init",
    ),
    pytest.param(
        [], 'geo.param "w" init "zeros" : tensor<2x2x2xf32>',
        "geo.param: result must be a static rank-1 or rank-2 float tensor, a !geo.point or a "
        "!geo.tangent, found tensor<2x2x2xf32>",
        id="param-type",
    ),
    pytest.param(
        [], 'geo.param "w" init "zeros" : tensor<4xi32>',
        "geo.param: result must be a static rank-1 or rank-2 float tensor", id="param-element",
    ),
    pytest.param(
        [E16, "tensor<32x8xf32>"], f"geo.linear %a0, %a1 : {E16}, tensor<32x8xf32> -> {E16}",
        f"geo.linear: weight tensor<32x8xf32> expects input dimension 8, found {E16}",
        id="linear-shape",
    ),
    pytest.param(
        [P3, "tensor<4x3xf32>"], f"geo.linear %a0, %a1 : {P3}, tensor<4x3xf32> -> {P4}",
        f"geo.linear: input {VECTOR}, found {P3}", id="linear-manifold",
    ),
    pytest.param(
        [E3, "tensor<4xf32>"], f"geo.bias %a0, %a1 : {E3}, tensor<4xf32> -> {E3}",
        f"geo.bias: bias tensor<4xf32> expects dimension 4, found {E3}", id="bias",
    ),
    pytest.param(
        [E3, "tensor<3x1xf32>"], f"geo.bias %a0, %a1 : {E3}, tensor<3x1xf32> -> {E3}",
        "geo.bias: bias must be a static rank-1 tensor<n x f32>, found tensor<3x1xf32>",
        id="bias-rank",
    ),
    pytest.param(
        [E3, TE3], f"geo.add %a0, %a1 : {E3}, {TE3} -> {E3}",
        f"geo.add: rhs {TE3} does not match lhs {E3} (expected the same type)", id="add",
    ),
    pytest.param(
        [P3, P3], f"geo.sub %a0, %a1 : {P3}, {P3} -> {P3}", f"geo.sub: lhs {VECTOR}", id="sub",
    ),
    pytest.param(
        [E3], f'"geo.scale"(%a0) <{{factor = 0x7FF0000000000000 : f64}}> : ({E3}) -> {E3}',
        "geo.scale: factor must be finite, found inf", id="scale",
    ),
    pytest.param(
        [P3], f"geo.pow %a0 exponent 2.0 : {P3} -> {P3}", f"geo.pow: operand {VECTOR}", id="pow",
    ),
    *[
        pytest.param(
            [P3], f"geo.{name} %a0 : {P3} -> {P3}", f"geo.{name}: operand {VECTOR}, found {P3}", id=name
        )
        for name in geo.UNARY_OPS
    ],
    *[
        pytest.param(
            [E3, E3], f"geo.{name} %a0, %a1 : {E3}, {E3} -> {E2}",
            f"geo.{name}: result type {E2} does not match the expected {E3}", id=name,
        )
        for name in ("mul", "div")
    ],
    pytest.param([P3], f"geo.origin %a0 : {P3} -> {TP3}",
                 f"geo.origin: result type {TP3} does not match the expected {P3}", id="origin"),
    pytest.param([P3, P3, TP3], f"geo.holonomy %a2 around %a0, %a1 : {TP3} around {P3}, {P3} -> {TP3}",
                 "geo.holonomy: a loop needs at least 3 points, found 2", id="holonomy"),
    pytest.param([P3, P3, P3, TS3], f"geo.holonomy %a3 around %a0, %a1, %a2 : {TS3} around {P3}, {P3}, {P3} -> {TS3}",
                 f"geo.holonomy: tangent {TS3} does not match loop point 0 {P3}", id="holonomy-space"),
    pytest.param([T3], f"geo.unwrap %a0 : {T3} -> {E3}",
                 f"geo.unwrap: operand must be a !geo.path on torus, found {T3}", id="unwrap"),
    pytest.param([PATH3], f"geo.unwrap %a0 : {PATH3} -> {E2}",
                 f"geo.unwrap: result type {E2} does not match the expected {E3}", id="unwrap-result"),
    pytest.param([TT3], f"geo.winding %a0 : {TT3} -> {E3}",
                 f"geo.winding: operand must be a !geo.path on torus, found {TT3}", id="winding"),
    pytest.param([PATH3_F64], f"geo.winding %a0 : {PATH3_F64} -> {E3}",
                 f"geo.winding: result type {E3} does not match the expected !geo.point<euclidean, 3, f64>",
                 id="winding-element"),
    pytest.param([PATH3], f"geo.winding_margin %a0 : {PATH3} -> {E3}",
                 f"geo.winding_margin: result type {E3} does not match the expected {E1}", id="winding_margin"),
    pytest.param([T3], f"geo.endpoint %a0 : {T3} -> {T3}",
                 f"geo.endpoint: operand must be a !geo.path on torus, found {T3}", id="endpoint"),
    pytest.param([PATH3], f"geo.endpoint %a0 : {PATH3} -> {E3}",
                 f"geo.endpoint: result type {E3} does not match the expected {T3}", id="endpoint-result"),
    pytest.param([P3, P3, P3, TP3], f"geo.holonomy_angle %a3 around %a0, %a1, %a2 : {TP3} around {P3}, {P3}, {P3} -> {E1}",
                 f"geo.holonomy_angle: a rotation angle needs a 2-dimensional manifold, found {P3} (dimension 3)",
                 id="holonomy_angle"),
]


@pytest.mark.parametrize(("arg_types", "op_text", "message"), INVALID_OPS)
def test_invalid_op(arg_types, op_text, message):
    assert_invalid(arg_types, op_text, message)


def test_every_op_has_an_invalid_case():
    covered = {case.id.split("-")[0] for case in INVALID_OPS}
    assert {op.name.split(".", 1)[1] for op in geo.Geo.operations} == covered
