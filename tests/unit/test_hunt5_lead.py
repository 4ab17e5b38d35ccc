"""Hunt 5 findings fixed by the lead: dump file names, and what a generated module says
about the weights its contracts were proved on."""
from __future__ import annotations

import numpy as np
import pytest

from geomir.driver import main

SOURCE = "@lipschitz(10.0)\nmodel F(x: R[4]) -> R[2] {\n  return linear(tanh(linear(x, 4 -> 8)), 8 -> 2)\n}\n"


def _weights(path) -> None:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{"F.linear0.weight": 0.1 * rng.standard_normal((8, 4)), "F.linear0.bias": np.zeros(8),
                      "F.linear1.weight": 0.1 * rng.standard_normal((2, 8)), "F.linear1.bias": np.zeros(2)})


def test_dumps_are_named_after_the_pass_without_its_options(tmp_path, monkeypatch) -> None:
    """A --weights path with a folder made the verify-contracts dump 'NN-verify-contracts{weights="w/w.npz"}.mlir',
    a path into a missing folder: 'cannot write', exit 2, after two dumps."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.geo").write_text(SOURCE)
    _weights(tmp_path / "weights" / "w.npz")
    for weights in ("weights/w.npz", str(tmp_path / "weights" / "w.npz")):
        assert main(["m.geo", "--weights", weights, "--dump-ir-after-all", "--dump-dir", "dumps", "-o", "out.mlir"]) == 0
        names = sorted(p.name for p in (tmp_path / "dumps").iterdir())
        assert names[:3] == ["00-input.mlir", "01-insert-transport.mlir", "02-verify-contracts.mlir"], names
        assert all("{" not in n for n in names)


def test_a_contract_at_the_end_of_a_long_call_chain_is_proved(tmp_path) -> None:
    """verify-contracts recursed a few Python frames per call level: a chain of 350 models was
    an internal error (RecursionError, exit 3). The prover now keeps its own stack."""
    n = 1200
    text = "model M0(x: R[4]) -> R[4] {\n  return tanh(x)\n}\n"
    for i in range(1, n):
        text += ("@lipschitz(1.0)\n" if i == n - 1 else "") + f"model M{i}(x: R[4]) -> R[4] {{\n  return M{i - 1}(x)\n}}\n"
    (tmp_path / "chain.geo").write_text(text)
    out = tmp_path / "out.mlir"
    assert main([str(tmp_path / "chain.geo"), "--passes=verify-contracts", "-o", str(out)]) == 0
    assert "proved = [#contract.lipschitz<1" in out.read_text()


def test_a_module_proved_on_trained_weights_names_them(tmp_path) -> None:
    """With --weights the module listed the trained weights' bound as proved and its comment
    said 'weights of seed 0', while its own init_params(0) weights break the contract."""
    import importlib.util

    (tmp_path / "m.geo").write_text(SOURCE.replace("10.0", "1.0"))
    _weights(tmp_path / "w" / "w.npz")
    out = tmp_path / "m_torch.py"
    assert main([str(tmp_path / "m.geo"), "--target=torch", "-o", str(out)]) == 1  # seed 0: 2.4 > 1
    assert main([str(tmp_path / "m.geo"), "--weights", str(tmp_path / "w" / "w.npz"), "--target=torch",
                 "-o", str(out)]) == 0
    spec = importlib.util.spec_from_file_location("m_torch_hunt5", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    on = module.CONTRACTS["F"]["proved_on"]
    assert on.startswith(str(tmp_path / "w" / "w.npz") + " (sha256 ") and len(on.split("sha256 ")[1]) == 17
    assert f"Proved (on the weights of {on})" in module.F.__doc__
    ir = tmp_path / "m.mlir"
    assert main([str(tmp_path / "m.geo"), "--weights", str(tmp_path / "w" / "w.npz"), "--emit=ir", "-o", str(ir)]) == 0
    assert 'proved_on = "' in ir.read_text()
    again = tmp_path / "again_torch.py"  # the claim read from the .mlir is proved again, on seed 0: dropped
    assert main([str(ir), "--passes=", "--target=torch", "-o", str(again)]) == 0
    spec = importlib.util.spec_from_file_location("again_torch_hunt5", again)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.CONTRACTS["F"] == {"declared": ["#contract.lipschitz<1.0>"], "proved": []}


def test_proved_on_without_proved_is_invalid_ir(tmp_path) -> None:
    text = ('func.func @F(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> '
            'attributes {proved_on = "w.npz"} {\n  func.return %x : !geo.point<euclidean, 2, f32>\n}\n')
    (tmp_path / "f.mlir").write_text(text)
    assert main([str(tmp_path / "f.mlir"), "--emit=ir", "-o", str(tmp_path / "g.mlir")]) == 1


def test_the_representations_cli_without_torch_is_a_usage_error(monkeypatch, capsys) -> None:
    """`python -m geomir.representations` imported the torch trainer at the top: a traceback."""
    import sys

    from geomir.representations import cli

    monkeypatch.setitem(sys.modules, "torch", None)
    assert cli.main(["train", "--data", "tree:2:2"]) == 2
    assert "needs PyTorch, which is not installed (pip install torch==2.13.0)" in capsys.readouterr().err


def test_debug_goes_after_the_subcommand_of_every_tool() -> None:
    """`apel run x.apel --debug` was 'unrecognized arguments' (geomc contract took it since hunt 5's first fix)."""
    from geomir.apel.cli import _parser as apel_parser
    from geomir.representations.cli import _parser as reps_parser

    assert apel_parser().parse_args(["run", "x.apel", "--debug"]).debug is True
    assert apel_parser().parse_args(["--debug", "runs"]).debug is True
    assert apel_parser().parse_args(["runs"]).debug is False
    assert reps_parser().parse_args(["eval", "e.npz", "--data", "mammals", "--debug"]).debug is True


def test_a_long_chain_of_calls_in_mlir_compiles(tmp_path) -> None:
    """cse's purity analysis recursed (and copied its visiting set) once per call level: a
    .mlir chain of ~1000 functions, each calling the next, was an internal error."""
    n, p = 1500, "!geo.point<euclidean, 2, f32>"
    funcs = [f"func.func @F{i}(%x: {p}) -> {p} {{\n  %y = func.call @F{i + 1}(%x) : ({p}) -> {p}\n"
             f"  func.return %y : {p}\n}}" for i in range(n - 1)]
    funcs.append(f"func.func @F{n - 1}(%x: {p}) -> {p} {{\n  %y = geo.tanh %x : {p} -> {p}\n  func.return %y : {p}\n}}")
    (tmp_path / "chain.mlir").write_text("builtin.module {\n" + "\n".join(funcs) + "\n}\n")
    assert main([str(tmp_path / "chain.mlir"), "--emit=ir", "-o", str(tmp_path / "out.mlir")]) == 0


def test_purity_of_calls_and_cycles() -> None:
    from geomir.compiler import to_ir
    from geomir.passes.stock import pure_functions

    module = to_ir("model A(x: R[2]) -> R[2] {\n  return tanh(x)\n}\nmodel B(x: R[2]) -> R[2] {\n  return A(A(x))\n}\n"
                   "derive dB = directional(B, order = 2)\n", passes="")
    assert {"A", "B", "dB"} <= pure_functions(module)


def test_insert_transport_analyses_each_callee_once(monkeypatch) -> None:
    """insert-transport analysed each function anew, with every callee whose tangent it uses:
    a chain of 400 models returning tangents took 8.6 s (quadratic)."""
    from geomir import base_points
    from geomir.compiler import to_ir

    n = 40
    text = "manifold H = poincare(c = 1.0)\nmodel T0(x: H[4], y: H[4]) -> tangent H[4] {\n  return logmap(x, y)\n}\n"
    for i in range(1, n):
        text += (f"model T{i}(x: H[4], y: H[4]) -> tangent H[4] {{\n  let u = T{i - 1}(x, y)\n"
                 f"  let v = T{i - 1}(x, y)\n  return u + v\n}}\n")
    analysed = []
    real = base_points.Analysis._analyze
    monkeypatch.setattr(base_points.Analysis, "_analyze", lambda self, f: analysed.append(f) or real(self, f))
    to_ir(text, passes="insert-transport")
    assert len(analysed) <= 2 * n  # the pass once, the check of base points at the end once (was ~n²/2)


def test_traced_functions_nested_too_deeply_say_so() -> None:
    """A chain of ~150 traced functions calling each other was a bare RecursionError."""
    import geomir as g
    from geomir.frontends.trace.tracer import TraceError

    @g.trace(x=g.R(4))
    def f0(x):
        return g.tanh(x)

    fs = [f0]
    for i in range(1, 300):
        def fi(x, prev=fs[-1]):
            return prev(x)
        fi.__name__ = fi.__qualname__ = f"f{i}"
        fs.append(g.trace(x=g.R(4))(fi))
    with pytest.raises(TraceError, match=r"f299: traced functions call each other too deeply for Python's recursion"):
        fs[-1].module
    assert "func.func @f5" in fs[5].ir  # nothing left half-traced
