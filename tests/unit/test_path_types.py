"""Paths on a torus (``path T[n]``): the type, the four path builtins, and every place a
path is refused, each with its exact file:line:col and a message naming expected vs found;
the IR of path models round-trips; tracing ``T.path(n)`` gives the .geo model's IR; the
triton target refuses paths with a GeomirError."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import FunctionType

import geomir
from geomir.diagnostics import ContractAnnotationError, GeomirError, GeoTypeError, SourceError, UsageError
from geomir.dialects import geo
from geomir.frontends.dsl import compile_source
from geomir.frontends.dsl.builtins import BUILTINS, PATH_BUILTINS
from geomir.frontends.dsl.types import EUCLIDEAN, Manifold, ValueType

from .ir_roundtrip import assert_round_trips

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "winding" / "phase_memory.geo"
TORUS = "manifold T = torus(units = radians)"
BALL = "manifold H = poincare(c = 1.0)"


def src(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# --- the type ------------------------------------------------------------------------------


def test_path_type_prints_and_describes():
    t = Manifold("torus", units="radians", name="T")
    assert str(ValueType(t, 3, path=True)) == "path T[3]"
    assert str(ValueType(t, 3, "f64", path=True)) == "path T[3, f64]"
    assert ValueType(t, 3, path=True).describe() == "path T[3] (a path on torus(units=radians))"
    p = ValueType(t, 3, path=True)
    assert not p.is_vector and p != ValueType(t, 3) and p.as_point() == ValueType(t, 3)
    assert ValueType(EUCLIDEAN, 2).is_vector


def test_path_types_lower_to_geo_path():
    module = compile_source(src(TORUS, "model M(p: path T[3], q: path T[2, f64]) -> R[3] {", "  return winding(p)", "}"))
    (f,) = module.ops
    assert list(f.function_type.inputs.data) == [
        geo.PathType(geo.TorusAttr("radians"), 3),
        geo.PathType(geo.TorusAttr("radians"), 2, geo.f64),
    ]


def test_path_keyword_is_still_a_name_elsewhere():
    """'path' is a keyword only where a type starts: values and parameters may be named path."""
    module = compile_source(src(TORUS, "model M(path: path T[2]) -> R[2] {", "  let path2 = unwrap(path)", "  return path2", "}"))
    assert "geo.unwrap" in geomir.print_ir(module)


@pytest.mark.parametrize(
    ("builtin", "result"),
    [("unwrap", "R[3]"), ("winding", "R[3]"), ("winding_margin", "R[1]"), ("endpoint", "T[3]")],
)
@pytest.mark.parametrize("dtype", ["", ", f64"])
def test_path_builtins_type(builtin, result, dtype):
    result = result.replace("]", f"{dtype}]")
    module = compile_source(src(TORUS, f"model M(p: path T[3{dtype}]) -> {result} {{", f"  return {builtin}(p)", "}"))
    ops = [op.name for op in module.walk() if op.dialect_name() == "geo"]
    assert ops == [f"geo.{builtin}"]


def test_every_path_builtin_is_in_the_table():
    assert set(PATH_BUILTINS) <= set(BUILTINS)
    for name in PATH_BUILTINS:
        assert BUILTINS[name].params == ("p",) and BUILTINS[name].doc


# --- located errors --------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    text: str
    line: int
    col: int
    message: str
    error: type[SourceError] = GeoTypeError


PT3 = "path T[3] (a path on torus(units=radians))"
CASES = [
    Bad("path-on-ball", src(BALL, "model M(p: path H[3]) -> R[1] {", "  return winding_margin(p)", "}"), 2, 17,
        "paths are on torus manifolds: expected a torus after 'path', found H (poincare(c=1))"),
    Bad("path-on-R", src("model M(p: path R[3]) -> R[3] {", "  return unwrap(p)", "}"), 1, 17,
        "paths are on torus manifolds: expected a torus after 'path', found R (euclidean)"),
    Bad("path-result", src(TORUS, "model M(p: path T[3]) -> path T[3] {", "  return p", "}"), 2, 26,
        f"model M returns {PT3}; a path is an input type only"),
    Bad("return-path-as-point", src(TORUS, "model M(p: path T[3]) -> T[3] {", "  return p", "}"), 3, 10,
        f"a path used where a point is expected for the result of model M: expected T[3] (a point on "
        f"torus(units=radians)), found {PT3}"),
    Bad("coords-of-path", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return coords(p)", "}"), 3, 17,
        f"argument 1 of coords ('x') must be a point or vector, found {PT3}; a path is taken only by unwrap, "
        "winding, winding_margin, endpoint"),
    Bad("dist-of-path", src(TORUS, "model M(p: path T[3], q: T[3]) -> R[1] {", "  return dist(q, p)", "}"), 3, 18,
        f"argument 2 of dist ('y') must be a point or vector, found {PT3}"),
    Bad("proj-of-path", src(TORUS, "model M(p: path T[3]) -> T[3] {", "  return proj(p)", "}"), 3, 15,
        f"argument 1 of proj ('x') must be a point or vector, found {PT3}"),
    Bad("logmap0-of-path", src(TORUS, "model M(p: path T[3]) -> tangent T[3] {", "  return logmap0(p)", "}"), 3, 18,
        f"argument 1 of logmap0 ('y') must be a point or vector, found {PT3}"),
    Bad("sin-of-path", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return sin(p)", "}"), 3, 14,
        f"argument 1 of sin ('x') must be a point or vector, found {PT3}"),
    Bad("linear-of-path", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return linear(p, 3 -> 3)", "}"), 3, 17,
        f"argument 1 of linear ('x') must be a point or vector, found {PT3}"),
    Bad("holonomy-on-path", src(TORUS, "model M(p: path T[3], a: T[3], v: tangent T[3]) -> tangent T[3] {",
                                "  return holonomy(v, a, p, a)", "}"), 3, 25,
        f"must be a point or vector, found {PT3}"),
    Bad("winding-of-point", src(TORUS, "model M(q: T[3]) -> R[3] {", "  return winding(q)", "}"), 3, 18,
        "winding expects a path on a torus (path T[n]) for 'p', found a point T[3] (a point on torus(units=radians))"),
    Bad("endpoint-of-tangent", src(TORUS, "model M(v: tangent T[3]) -> T[3] {", "  return endpoint(v)", "}"), 3, 19,
        "endpoint expects a path on a torus (path T[n]) for 'p', found a tangent vector tangent T[3]"),
    Bad("unwrap-of-number", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return unwrap(2)", "}"), 3, 17,
        "unwrap expects a path on a torus (path T[n]) for 'p', found a number (2)"),
    Bad("winding-margin-arity", src(TORUS, "model M(p: path T[3]) -> R[1] {", "  return winding_margin(p, p)", "}"), 3, 28,
        "wrong number of arguments: winding_margin(p) takes 1 argument, found 2"),
    Bad("path-plus-vector", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return winding(p) + p", "}"), 3, 23,
        f"manifold mismatch for the right side of '+': expected R[3] (a point on euclidean), found {PT3}"),
    Bad("path-plus-path", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  let q = p + p", "  return winding(q)", "}"), 3, 11,
        f"'+' needs vectors (Euclidean points or tangent vectors), found {PT3}"),
    Bad("scaled-path", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return winding(2 * p)", "}"), 3, 22,
        f"cannot scale {PT3} with '*'"),
    Bad("negated-path", src(TORUS, "model M(p: path T[3]) -> R[3] {", "  return winding(-p)", "}"), 3, 18,
        f"cannot negate {PT3}"),
    Bad("point-to-path-parameter", src(TORUS, "model W(p: path T[3]) -> R[3] {", "  return winding(p)", "}",
                                       "model M(q: T[3]) -> R[3] {", "  return W(q)", "}"), 6, 12,
        "a point used where a path is expected for argument 'p' of model W: expected path T[3] (a path on "
        "torus(units=radians)), found T[3] (a point on torus(units=radians))"),
    Bad("path-element-type", src(TORUS, "model W(p: path T[3]) -> R[3] {", "  return winding(p)", "}",
                                 "model M(q: path T[3, f64]) -> R[3] {", "  return W(q)", "}"), 6, 12,
        "element type mismatch (f32 vs f64) for argument 'p' of model W"),
    Bad("contract-on-path-model", src(TORUS, "@lipschitz(1.0)", "model M(p: path T[3]) -> R[3] {", "  return winding(p)", "}"),
        2, 2, f"contracts are not checked on models with path inputs; input 'p' of model M is {PT3}",
        ContractAnnotationError),
    Bad("equivariant-on-path-model", src(TORUS, "@equivariant(torus_translation)",
                                         "model M(p: path T[3], q: T[3]) -> R[3] {", "  return winding(p)", "}"),
        2, 2, "contracts are not checked on models with path inputs", ContractAnnotationError),
    Bad("derive-path-model", src(TORUS, "model M(p: path T[3], x: R[3]) -> R[3] {", "  return winding(p) + x", "}",
                                 "derive j = jvp(M, wrt = x)"), 5, 16,
        f"jvp of a model with path inputs is not supported: input 'p' of M is {PT3}"),
    Bad("laplacian-path-model", src(TORUS, "model M(x: R[3], p: path T[3]) -> R[3] {", "  return winding(p) + x", "}",
                                    "derive l = laplacian(M)"), 5, 22,
        "laplacian of a model with path inputs is not supported"),
    Bad("path-syntax-without-manifold", src(TORUS, "model M(p: path [3]) -> R[3] {", "  return winding(p)", "}"), 2, 17,
        "expected a name, found '['", geomir.diagnostics.GeoSyntaxError),
]


def test_cases_are_distinct():
    assert len({c.id for c in CASES}) == len(CASES) and len({c.text for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_path_error_is_located(case: Bad):
    with pytest.raises(SourceError) as info:
        compile_source(case.text, "bad.geo")
    err = info.value
    assert isinstance(err, case.error), f"{type(err).__name__}: {err}"
    assert (err.span.line, err.span.column) == (case.line, case.col), str(err)
    assert case.message in err.message, err.message
    assert str(err).startswith(f"bad.geo:{case.line}:{case.col}: ")


@pytest.mark.parametrize("case_id", ["path-on-ball", "coords-of-path"])
def test_geomc_renders_path_error(case_id: str, tmp_path: Path):
    case = next(c for c in CASES if c.id == case_id)
    path = tmp_path / "bad.geo"
    path.write_text(case.text)
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", str(path), "--emit=ir"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first, source_line, caret_line, *_ = proc.stderr.splitlines()
    assert first == f"{path}:{case.line}:{case.col}: error: " + first.split(": error: ", 1)[1]
    assert case.message in first
    column_zero = source_line.index(" | ") + 3
    assert caret_line.index("^") - column_zero == case.col - 1


# --- IR ----------------------------------------------------------------------------------


def test_example_ir_round_trips():
    for passes in ("", None):
        module = geomir.to_ir(EXAMPLE, passes=passes)
        text = assert_round_trips(module)
        assert geomir.print_ir(geomir.parse_ir(geomir.print_ir(module))) == geomir.print_ir(module)
        for op in ("geo.unwrap", "geo.winding", "geo.winding_margin", "geo.endpoint", "!geo.path<torus<radians>, 4, f32>",
                   "!geo.path<torus<radians>, 4, f64>"):
            assert op in text


def test_example_functions():
    module = geomir.to_ir(EXAMPLE)
    names = [f.sym_name.data for f in module.ops if isinstance(f, func.FuncOp)]
    assert names == ["Winding", "Margin", "Address", "Readout"]


def test_contract_on_path_model_is_rejected_in_ir():
    from geomir.dialects import contract

    problem = contract.signature_problem(contract.LipschitzAttr(1.0), [geo.PathType(geo.TorusAttr(), 3)],
                                         [geo.scalar_type()])
    assert problem == "contracts are not checked on models with path inputs, found !geo.path<torus<radians>, 3, f32>"


def test_jet_request_cannot_differentiate_a_path(tmp_path: Path):
    text = """
func.func @M(%p: !geo.path<torus<radians>, 3, f32>) -> !geo.point<euclidean, 3, f32> {
  %w = geo.winding %p : !geo.path<torus<radians>, 3, f32> -> !geo.point<euclidean, 3, f32>
  func.return %w : !geo.point<euclidean, 3, f32>
}
func.func @d(%p: !geo.path<torus<radians>, 3, f32>, %v: !geo.tangent<euclidean, 3, f32>) -> !jet.jet<2, !geo.point<euclidean, 3, f32>> {
  %j = jet.directional @M(%p) along %v wrt 0 order 2 : (!geo.path<torus<radians>, 3, f32>), !geo.tangent<euclidean, 3, f32> -> !jet.jet<2, !geo.point<euclidean, 3, f32>>
  func.return %j : !jet.jet<2, !geo.point<euclidean, 3, f32>>
}
"""
    with pytest.raises(GeomirError, match="differentiated input #0 must be a !geo.point or !geo.tangent, found "
                                          r"!geo.path<torus<radians>, 3, f32>"):
        geomir.parse_ir(text, "d.mlir")


# --- targets -------------------------------------------------------------------------------


def test_triton_target_refuses_paths():
    with pytest.raises(UsageError, match=r"phase_memory.geo:\d+:\d+: @Winding takes a path .*available on the torch and "
                                         "jax targets, not on triton"):
        geomir.emit_source(EXAMPLE, "triton")


def test_triton_refuses_a_path_op_in_a_function_without_path_inputs():
    from geomir.backends.triton.emitter import _reject_paths

    module = geomir.to_ir(EXAMPLE, passes="")
    for f in module.ops:  # hide the path inputs: the op is still refused
        if isinstance(f, func.FuncOp):
            f.function_type = FunctionType.from_lists([], list(f.function_type.outputs.data))
    with pytest.raises(UsageError, match="geo.winding: paths and the winding ops"):
        _reject_paths(module)


def test_geomc_triton_exits_without_traceback(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", str(EXAMPLE), "--target=triton", "-o",
                           str(tmp_path / "x.py")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "available on the torch and jax targets" in proc.stderr


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_geomc_emits_the_example(target: str, tmp_path: Path):
    out = tmp_path / f"x_{target}.py"
    proc = subprocess.run([sys.executable, "-m", "geomir.driver", str(EXAMPLE), f"--target={target}", "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    code = out.read_text()
    assert "torus_radians.winding(p)" in code and "torus_radians.winding_margin(p)" in code
    assert "torus_radians.displacement(p)" in code and "torus_radians.proj(p[..., -1, :])" in code


# --- tracing ------------------------------------------------------------------------------


def _traced_twins():
    import geomir as g

    T = g.Torus(units="radians", name="T")

    @g.trace(p=T.path(4))
    def Winding(p):
        return g.winding(p)

    @g.trace(p=T.path(4))
    def Margin(p):
        return g.winding_margin(p)

    @g.trace(p=T.path(4))
    def Address(p):
        return g.endpoint(p)

    @g.trace(p=T.path(4, "f64"))
    def Readout(p):
        d = g.unwrap(p)
        e = g.coords(g.logmap0(g.endpoint(p)))
        return g.linear(g.tanh(d / 6.283185307179586) + g.sin(e), 4, 1)

    return [Winding, Margin, Address, Readout]


def _functions(module) -> dict[str, str]:
    module = module.clone()
    for op in module.walk():
        for r in op.results:
            r.name_hint = None
        for region in op.regions:
            for block in region.blocks:
                for a in block.args:
                    a.name_hint = None
    return {f.sym_name.data: geomir.print_ir(f) for f in module.ops if isinstance(f, func.FuncOp)}


@pytest.mark.parametrize("passes", [None, ""], ids=["default-pipeline", "frontend"])
def test_traced_twins_have_the_example_ir(passes):
    geo_ir = _functions(geomir.to_ir(EXAMPLE, passes=passes))
    twins = _traced_twins()
    assert {t.name for t in twins} == set(geo_ir)
    for traced in twins:
        (text,) = _functions(traced.lowered(passes)).values()
        assert text == geo_ir[traced.name], f"{traced.name}:\n{text}\n--- .geo ---\n{geo_ir[traced.name]}"


def test_tracing_refuses_paths_off_the_torus_and_path_results():
    import geomir as g

    with pytest.raises(g.TraceError, match="paths are on torus manifolds, found a path on poincare"):
        g.PoincareBall(c=1.0).path(3)
    T = g.Torus()

    @g.trace(p=T.path(3))
    def echo(p):
        return p

    with pytest.raises(g.TraceError, match=r"echo returns path .*\[3\] \(a path on torus\(units=radians\)\); a path is "
                                           "an input type only"):
        echo.module  # noqa: B018

    @g.trace(p=T.path(3))
    def bad(p):
        return g.coords(p)

    with pytest.raises(SourceError, match="argument 1 of coords"):
        bad.module  # noqa: B018


# --- tools that differentiate models: a clear error, never a traceback -------------------------


def test_jet_report_skips_or_refuses_path_models(tmp_path: Path):
    from geomir.jet_report import report_jets

    with pytest.raises(UsageError, match="defines no model without path inputs"):
        report_jets(EXAMPLE)
    with pytest.raises(UsageError, match=r"model @Winding takes a path \(!geo.path\)"):
        report_jets(EXAMPLE, model="Winding")
    mixed = src(TORUS, "model W(p: path T[2]) -> R[2] {", "  return winding(p)", "}",
                "model F(x: R[2]) -> R[2] {", "  return tanh(x)", "}")
    assert [r.model for r in report_jets(mixed, batch=4)] == ["F"]


def test_categorical_derivatives_refuse_path_models():
    import geomir as g

    torch = pytest.importorskip("torch")
    T = g.Torus()

    @g.trace(p=T.path(3), x=g.R(3))
    def F(p, x):
        return g.winding(p) + x

    with pytest.raises(UsageError, match="jvp of F: derivatives of models with path inputs"):
        g.jvp(F, torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 5, 3), wrt=1)
