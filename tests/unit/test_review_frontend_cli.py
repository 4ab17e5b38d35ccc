"""Regressions from a review of the .geo front end and geomc: each test failed before its fix
(a silent wrong answer, an internal error with exit 3, or an unclear or missing message).

1. hvp's helper function took any function named ``<model>__jvp_wrt<k>``, a user's model too.
2. Deeply nested expressions hit Python's recursion limit (exit 3).
3. ``--plot=holonomy`` on the ball with an extent reaching outside it crashed in linalg.inv.
4. ``-o`` (and ``--dump-dir``) could overwrite the input file.
5. ``geomc ''``, two ``@lipschitz`` on one model, files with lone CR line endings.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import geomir
from geomir.diagnostics import ContractAnnotationError, GeoSyntaxError
from geomir.driver import main
from geomir.frontends.dsl import compile_source
from geomir.frontends.dsl.common import MAX_NESTING
from geomir.ir import print_ir

ROOT = Path(__file__).resolve().parents[2]


def geomc(*args: str) -> tuple[int, str, str]:
    """Run geomc in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def clean(err: str) -> None:
    assert "Traceback" not in err and "internal compiler error" not in err, err


# -- 1: the hvp helper's name ----------------------------------------------------------------

SHADOW = """
model U(x: R[2]) -> R[1] { return tanh(linear(tanh(linear(x, 2 -> 4)), 4 -> 1)) }
model U__jvp_wrt0(x: R[2], v: tangent R[2]) -> tangent R[1] { return scale(linear(v, 2 -> 1), 0.0) }
derive h = hvp(U)
"""

SHADOW_OTHER_SIGNATURE = """
model U(x: R[2]) -> R[1] { return tanh(linear(tanh(linear(x, 2 -> 4)), 4 -> 1)) }
model U__jvp_wrt0(x: R[2]) -> R[1] { return linear(x, 2 -> 1) }
derive h = hvp(U)
"""


def _check_hvp(source: str, tmp_path: Path):
    torch = pytest.importorskip("torch")
    mod = geomir.compile(source, target="torch", cache_dir=tmp_path)
    params = mod.init_params(seed=1, dtype=torch.float64)
    rng = np.random.default_rng(0)
    x, v = (torch.tensor(rng.normal(size=(3, 2))) for _ in range(2))
    got = mod.h(params, x, v)
    assert got.abs().max() > 1e-6  # the user's U__jvp_wrt0 would give zeros
    for i in range(3):
        _, expected = torch.autograd.functional.hvp(lambda z: mod.U(params, z[None])[0, 0], x[i], v[i])
        torch.testing.assert_close(got[i], expected, rtol=1e-10, atol=1e-12)
    return mod, params, x, v


def test_hvp_does_not_take_a_users_model_named_like_its_helper(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    mod, params, x, v = _check_hvp(SHADOW, tmp_path)
    # the user's model is still there, unchanged
    assert torch.equal(mod.U__jvp_wrt0(params, x, v), torch.zeros(3, 1, dtype=torch.float64))


def test_hvp_with_a_users_model_of_the_helpers_name_and_another_signature_compiles(tmp_path: Path) -> None:
    _check_hvp(SHADOW_OTHER_SIGNATURE, tmp_path)  # was an internal error, exit 3


def test_hvp_helper_gets_a_fresh_name_and_is_shared_by_requests_on_one_model() -> None:
    source = SHADOW + "model U__jvp_wrt0_1(x: R[2]) -> R[2] { return x }\nderive h2 = hvp(U)\n"
    text = print_ir(geomir.to_ir(source, passes="jet-expand"))
    assert "func.func private @U__jvp_wrt0_2(" in text
    assert text.count("func.func private") == 1  # one helper for both requests
    assert text.count("jet.grad @U__jvp_wrt0_2(") == 2
    assert "func.func @U__jvp_wrt0(" in text and "func.func @U__jvp_wrt0_1(" in text


def test_hvp_helper_keeps_its_plain_name_when_it_is_free() -> None:
    text = print_ir(geomir.to_ir("model U(x: R[2]) -> R[1] { return linear(tanh(x), 2 -> 1) }\n"
                                 "derive h = hvp(U)\n", passes="jet-expand"))
    assert "func.func private @U__jvp_wrt0(" in text


# -- 2: deeply nested expressions ------------------------------------------------------------


def _model(body: str, result: str = "R[2]") -> str:
    return f"model M(x: R[2]) -> {result} {{ return {body} }}\n"


DEEP = {
    "sum-500": ("x" + " + x" * 499, lambda x: 500 * x),
    "tanh-300": ("tanh(" * 300 + "x" + ")" * 300, None),
    "minus-1000": ("-" * 1000 + "x", lambda x: x),
    "parens-3000": ("(" * 3000 + "x" + ")" * 3000, lambda x: x),
}


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_expressions_compile_and_compute(name: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    body, expected = DEEP[name]
    limit = sys.getrecursionlimit()
    mod = geomir.compile(_model(body), target="torch", cache_dir=tmp_path)
    assert sys.getrecursionlimit() == limit  # raised only while checking and building
    x = torch.tensor(np.random.default_rng(1).normal(size=(4, 2)))
    got = mod.M(mod.init_params(dtype=torch.float64), x)
    if expected is None:
        expected = x
        for _ in range(300):
            expected = torch.tanh(expected)
    else:
        expected = expected(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_deep_expressions_through_geomc(tmp_path: Path) -> None:
    for i, (body, _) in enumerate(DEEP.values()):
        path = tmp_path / f"d{i}.geo"
        path.write_text(_model(body))
        for target in ("--target=torch", "--target=jax", "--emit=ir"):
            code, _, err = geomc(str(path), target, "-o", str(tmp_path / f"d{i}.out"))
            clean(err)
            assert code == 0, err


def test_the_deepest_accepted_expression_goes_through_every_stage(tmp_path: Path) -> None:
    """MAX_NESTING levels: type check, IR, the default pipeline (contracts, jets), each
    target's code, and the generated module's derivatives against autograd."""
    torch = pytest.importorskip("torch")
    inner = "tanh(" * (MAX_NESTING - 1) + "x" + ")" * (MAX_NESTING - 1)
    source = (f"@lipschitz(2.0)\nmodel U(x: R[2]) -> R[1] {{ return linear({inner}, 2 -> 1) }}\n"
              "derive lap = laplacian(U)\nderive hv = hvp(U)\n")
    for target in ("torch", "jax", "triton"):
        geomir.emit_source(source, target)
    mod = geomir.compile(source, target="torch", cache_dir=tmp_path)
    params = mod.init_params(seed=0, dtype=torch.float64)
    x, v = torch.full((1, 2), 0.3, dtype=torch.float64), torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda z: mod.U(params, z[None])[0, 0], x[0])
    torch.testing.assert_close(mod.hv(params, x, v)[0], H @ v[0], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(mod.lap(params, x)[0, 0], torch.trace(H), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("body,depth,column", [
    ("-" * (MAX_NESTING + 1) + "x", MAX_NESTING + 1, 35 + MAX_NESTING),
    ("tanh(" * 5000 + "x" + ")" * 5000, 5000, 35 + 5 * MAX_NESTING),
    ("x" + " + x" * 20000, 20000, 35),
])
def test_absurdly_deep_expressions_are_a_located_error(body: str, depth: int, column: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.geo"
    path.write_text(_model(body))
    code, _, err = geomc(str(path))
    clean(err)
    assert code == 1
    assert err.startswith(f"{path}:1:{column}: error: expression nested too deeply ({depth} levels of operators "
                          f"and calls); at most {MAX_NESTING}: split it with 'let' bindings"), err[:300]
    with pytest.raises(GeoSyntaxError, match="nested too deeply"):
        compile_source(_model(body))


def test_deep_arguments_of_annotations_and_manifolds_are_measured_too() -> None:
    deep = "-" * (MAX_NESTING + 1) + "1.0"
    with pytest.raises(GeoSyntaxError, match="nested too deeply"):
        compile_source(f"manifold H = poincare(c = {deep})\n")
    with pytest.raises(GeoSyntaxError, match="nested too deeply"):
        compile_source(f"@lipschitz({deep})\nmodel M(x: R[2]) -> R[2] {{ return x }}\n")
    ok = "-" * 1000 + "2.0"  # an even number of minuses: 2.0
    module = compile_source(f"@lipschitz({ok})\nmodel M(x: R[2]) -> R[2] {{ return x }}\n")
    assert "#contract.lipschitz<2.0>" in print_ir(module)


# -- 3: the holonomy plot on the ball --------------------------------------------------------

CLASSIFIER = str(ROOT / "examples" / "hyperbolic_classifier.geo")


@pytest.mark.parametrize("extent,outside", [(0.99, 4), (1.0, 4)])
def test_holonomy_map_leaves_cells_outside_the_ball_blank(extent: float, outside: int) -> None:
    pytest.importorskip("torch")
    from geomir import holonomy_map as hm

    r = hm.holonomy_map(CLASSIFIER, "Encoder", extent=extent, grid=4)
    assert int(r.outside.sum()) == outside
    assert r.outside[0, 0] and r.outside[-1, -1] and not r.outside[1, 1]  # the corners
    assert np.isnan(r.curvature[r.outside]).all()
    assert np.isfinite(r.curvature[~r.outside]).all()
    assert r.blank == outside and "outside the Poincaré ball left blank" in r.summary()


@pytest.mark.parametrize("extent", ["2", "100"])
def test_holonomy_plot_with_no_cell_inside_the_ball_is_a_usage_error(extent: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    code, _, err = geomc(CLASSIFIER, "--plot=holonomy", "--model", "Encoder", "-o", str(tmp_path / "x.png"),
                         "--plot-extent", extent, "--plot-grid", "4")
    clean(err)
    assert code == 2
    assert err.startswith(f"error: --plot-extent {extent}: every cell of the 4x4 grid reaches outside the "
                          "Poincaré ball"), err
    assert "give an extent below 1" in err


def test_holonomy_plot_at_extent_099_draws(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    out = tmp_path / "x.png"
    code, stdout, err = geomc(CLASSIFIER, "--plot=holonomy", "--model", "Encoder", "-o", str(out),
                              "--plot-extent", "0.99", "--plot-grid", "4")
    clean(err)
    assert code == 0 and out.stat().st_size > 0
    assert "4 cell(s) outside the Poincaré ball left blank" in stdout


def test_holonomy_map_loops_through_singular_metrics_are_blank(tmp_path: Path) -> None:
    """A relu layer: loops of cells next to a dead region pass through points where the
    Jacobian has rank < 2 (linalg.inv raised there)."""
    pytest.importorskip("torch")
    from geomir import holonomy_map as hm

    path = tmp_path / "relu.geo"
    path.write_text("model D(x: R[2]) -> R[2] {\n  return relu(linear(x, 2 -> 2))\n}\n")
    for seed in range(2):
        r = hm.holonomy_map(path, "D", grid=8, seed=seed)
        assert r.degenerate.any() and not r.outside.any()
        finite = np.isfinite(r.curvature)
        assert finite.any() and np.abs(r.curvature[finite]).max() < 1e-6  # a piecewise linear map is flat
        assert finite.sum() + r.blank == 64


def test_inverse_of_singular_metrics_is_nan() -> None:
    torch = pytest.importorskip("torch")
    from geomir.holonomy_map import _inverse

    metric = torch.tensor([[2.0, 0.0, 0.5], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [float("nan"), 0.0, 1.0]],
                          dtype=torch.float64)
    inv = _inverse(metric)
    torch.testing.assert_close(inv[0], torch.tensor([[0.5, 0.0], [0.0, 2.0]], dtype=torch.float64))
    assert torch.isnan(inv[1:]).all()


# -- 4: outputs that would overwrite an input ------------------------------------------------

PROGRAM = "model U(x: R[2]) -> R[1] {\n  return linear(x, 2 -> 1)\n}\n"


@pytest.mark.parametrize("spelling", ["same", "dot", "absolute", "symlink", "hardlink"])
@pytest.mark.parametrize("extra", [[], ["--target=torch"], ["--emit=ir-generic"]])
def test_output_that_is_the_input_is_a_usage_error(spelling: str, extra: list[str], tmp_path: Path,
                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pinn.geo").write_text(PROGRAM)
    out = {"same": "pinn.geo", "dot": "./sub/../pinn.geo", "absolute": str(tmp_path / "pinn.geo"),
           "symlink": "link.geo", "hardlink": "hard.geo"}[spelling]
    Path("sub").mkdir()
    if spelling == "symlink":
        os.symlink("pinn.geo", "link.geo")
    if spelling == "hardlink":
        os.link("pinn.geo", "hard.geo")
    code, stdout, err = geomc("pinn.geo", "-o", out, *extra)
    clean(err)
    assert code == 2
    assert err == f"error: -o {out} is the input file ('pinn.geo'); it would be overwritten: write the output to " \
                  "another file\n"
    assert Path("pinn.geo").read_text() == PROGRAM and stdout == ""


def test_input_through_a_symlink_and_output_to_its_target(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pinn.geo").write_text(PROGRAM)
    os.symlink("pinn.geo", "link.geo")
    code, _, err = geomc("link.geo", "-o", "pinn.geo")
    assert code == 2 and "is the input file ('link.geo')" in err
    assert Path("pinn.geo").read_text() == PROGRAM
    code, _, err = geomc("link.geo", "-o", "out.mlir")  # another file: fine
    assert code == 0 and Path("out.mlir").read_text().startswith("builtin.module")


def test_plot_report_and_weights_outputs_cannot_overwrite_inputs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.geo").write_text(PROGRAM)
    for args in (["--plot=holonomy", "-o", "m.geo"], ["--report=contracts", "-o", "m.geo"]):
        code, _, err = geomc("m.geo", *args)
        clean(err)
        assert code == 2 and "is the input file" in err, err
    Path("w.npz").write_bytes(b"not really")
    code, _, err = geomc("m.geo", "--weights", "w.npz", "--emit=ir", "-o", "w.npz")
    assert code == 2 and err.startswith("error: -o w.npz is the --weights file ('w.npz')"), err
    assert Path("m.geo").read_text() == PROGRAM and Path("w.npz").read_bytes() == b"not really"


def test_apel_output_cannot_overwrite_the_workflow(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("w.apel").write_text("anything")
    code, _, err = geomc("w.apel", "-o", "./w.apel")
    assert code == 2 and "is the input file" in err
    assert Path("w.apel").read_text() == "anything"


def test_dump_dir_that_would_overwrite_the_input_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.geo").write_text(PROGRAM)
    code, _, err = geomc("m.geo", "--dump-ir-after-all", "--dump-dir", "d")
    assert code == 0
    names = sorted(p.name for p in Path("d").iterdir())
    assert names[0] == "00-input.mlir" and "03-jet-expand.mlir" in names
    before = {p.name: p.read_text() for p in Path("d").iterdir()}
    Path("d/03-jet-expand.mlir").write_text("// mine\n" + before["03-jet-expand.mlir"])
    code, _, err = geomc("d/03-jet-expand.mlir", "--dump-ir-after-all", "--dump-dir", "d")
    clean(err)
    assert code == 2
    assert err == ("error: --dump-dir d: the dump 'd/03-jet-expand.mlir' is the input file ('d/03-jet-expand.mlir'); "
                   "it would be overwritten: dump to another directory\n")
    assert Path("d/03-jet-expand.mlir").read_text().startswith("// mine\n")
    assert all(Path("d", n).read_text() == t for n, t in before.items() if n != "03-jet-expand.mlir")
    # a pipeline whose dump files do not include it is fine
    code, _, err = geomc("d/03-jet-expand.mlir", "--dump-ir-after-all", "--dump-dir", "d", "--passes=cse")
    assert code == 0, err
    assert Path("d/03-jet-expand.mlir").read_text().startswith("// mine\n")


def test_contract_outputs_cannot_overwrite_the_contract(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text("x: 1\n")
    for args in (["check", "c.yaml", "-o", "./c.yaml"], ["promote", "c.yaml", "--state", "c.yaml"]):
        code, _, err = geomc("contract", *args)
        clean(err)
        assert code == 2 and "is the contract file ('c.yaml'); it would be overwritten" in err, err
    assert Path("c.yaml").read_text() == "x: 1\n"


# -- 5: small ones ----------------------------------------------------------------------------


def test_empty_paths_are_named() -> None:
    code, _, err = geomc("")
    assert code == 2 and err.startswith("error: empty input path"), err
    code, stdout, err = geomc(str(ROOT / "examples" / "hyperbolic_mlp.geo"), "-o", "")
    assert code == 2 and err == "error: empty path given to -o\n" and stdout == ""  # was: IR on stdout
    code, _, err = geomc(str(ROOT / "examples" / "hyperbolic_mlp.geo"), "--dump-ir-after-all", "--dump-dir", "")
    assert code == 2 and err == "error: empty path given to --dump-dir\n"
    code, _, err = geomc("contract", "check", "")
    assert code == 2 and err == "error: empty contract path\n"


def test_two_lipschitz_contracts_on_one_model_are_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "l.geo"
    path.write_text("@lipschitz(4.0)\n@lipschitz(2.0, radius = 1.0)\nmodel U(x: R[2]) -> R[2] { return tanh(x) }\n")
    code, _, err = geomc(str(path))
    clean(err)
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == (f"{path}:2:2: error: model U has two @lipschitz contracts (the first at {path}:1:2); "
                        "give one: @lipschitz(L) or @lipschitz(L, radius = R)")
    assert lines[3] == f"{path}:1:2: note: the first @lipschitz of model U"


def test_repeated_equivariance_or_monotone_input_is_an_error_but_different_ones_combine() -> None:
    with pytest.raises(ContractAnnotationError, match=r"has @equivariant\(perm\) twice"):
        compile_source("@equivariant(perm)\n@equivariant(perm)\nmodel U(x: R[2]) -> R[2] { return tanh(x) }\n")
    with pytest.raises(ContractAnnotationError, match="two @monotone contracts naming input 'x'"):
        compile_source("@monotone(x, increasing)\n@monotone(y, x, decreasing)\n"
                       "model U(x: R[2], y: R[2]) -> R[1] { return linear(x + y, 2 -> 1, nonnegative = true) }\n")
    compile_source("@equivariant(perm)\n@equivariant(so2)\nmodel U(x: R[2]) -> R[2] { return tanh(x) }\n")
    compile_source("@monotone(x, increasing)\n@monotone(y, decreasing)\n"
                   "model U(x: R[2], y: R[2]) -> R[1] { return linear(x - y, 2 -> 1, nonnegative = true) }\n")


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_lone_cr_line_endings_count_as_lines(newline: str, tmp_path: Path) -> None:
    path = tmp_path / "cr.geo"
    lines = ["// a comment", "model U(x: R[2]) -> R[2] {", "  return tanh(y)", "}", ""]
    path.write_bytes(newline.join(lines).encode())
    code, _, err = geomc(str(path))
    clean(err)
    assert code == 1  # with lone CRs the comment ran to the end of the file: an empty module, exit 0
    assert err.splitlines()[:2] == [f"{path}:3:15: error: unknown name 'y'", "    3 |   return tanh(y)"], err


def test_lone_cr_file_compiles_to_the_same_ir_as_with_newlines() -> None:
    text = "# c\nmodel U(x: R[2]) -> R[1] {\n  let h = tanh(x) // c\n  return linear(h, 2 -> 1)\n}\n"
    lf = print_ir(compile_source(text, "a.geo"), debug_info=True)
    cr = print_ir(compile_source(text.replace("\n", "\r"), "a.geo"), debug_info=True)
    assert lf == cr and 'loc("a.geo":4:' in cr
