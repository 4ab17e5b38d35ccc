"""Installs without an optional framework, and what a run leaves behind (hunt 5, envs):
geomir.representations imported torch at import time (make_distance ran at module level);
`geomc contract` and an APEL model agent without torch, and `--plot` without matplotlib,
were internal errors (exit 3), the last after computing the whole map; `geomc contract`
refused the --debug its crash message asks for; a traced file whose name is not UTF-8 put
raw surrogates in IR locations and errors; a --check-finite caret showed the line of another
program (or of the file as edited since); '~' in cache_dir was a directory named '~'; a
reused --dump-dir kept the stages of an earlier, longer pipeline.

A missing framework is simulated in-process: ``sys.modules[name] = None`` makes its import
fail and ``importlib.util.find_spec`` return None, as in an install without it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import geomir
from geomir.diagnostics import NonFiniteError, UsageError
from geomir.driver import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOG = "model A(x: R[2]) -> R[2] {\n  let h = log(x)\n  return h\n}\n"


@pytest.fixture
def fresh(monkeypatch):
    """``fresh(package, *missing)``: ``package`` imported anew with the ``missing`` modules
    uninstalled; sys.modules and the parent's attribute are restored after the test."""
    before = set(sys.modules)

    def load(package: str, *missing: str):
        for name in missing:
            monkeypatch.setitem(sys.modules, name, None)
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            monkeypatch.delitem(sys.modules, name)
        parent, _, child = package.rpartition(".")
        monkeypatch.setattr(sys.modules[parent], child, None, raising=False)
        return importlib.import_module(package)

    yield load
    for name in set(sys.modules) - before:  # the copies imported here; the originals come back
        if name.startswith("geomir."):
            del sys.modules[name]


# --- 1. geomir.representations without torch ------------------------------------------------------


def test_representations_import_without_torch_and_train_jax_says_it_needs_torch(fresh):
    reps = fresh("geomir.representations", "torch")
    assert reps.generated_tree(2, 2).num_nodes == 7
    assert reps.poincare_distance.name == "poincare" and reps.make_distance("lorentz", 2.0).curvature == 2.0
    train_jax = importlib.import_module("geomir.representations.train_jax")
    with pytest.raises(UsageError, match=r"train_jax needs PyTorch as well as JAX .*pip install torch==2\.13\.0"):
        train_jax.train_jax(reps.generated_tree(2, 2))


def test_distances_still_compute_with_torch():
    torch = pytest.importorskip("torch")
    from geomir.representations.metrics import make_distance

    a, b = torch.tensor([[0.1, 0.2]], dtype=torch.float64), torch.tensor([[-0.3, 0.1]], dtype=torch.float64)
    for name in ("poincare", "euclidean"):
        d = make_distance(name, 2.0)
        assert float(d(a, b)) > 0 and d.pairwise(a, b).shape == (1, 1)


# --- 2, 4. geomc contract: without torch, and --debug ----------------------------------------------


@pytest.fixture
def jax_contract(tmp_path):
    path = tmp_path / "jj.yaml"
    path.write_text(f"contract: jax-only\nmodel: {EXAMPLES / 'pinn_laplacian.geo'}\nentry: U\n"
                    "reference: {target: jax, dtype: float32}\ncandidate: {target: jax, dtype: float32}\n"
                    "inputs: {samples: 64, seed: 0}\n")
    return path


@pytest.mark.parametrize("command", ["check", "promote"])
def test_contract_without_torch_is_a_usage_error(jax_contract, monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["contract", command, str(jax_contract)]) == 2
    err = capsys.readouterr().err
    assert "error: kernel contracts draw their weights and inputs with PyTorch, which is not installed" in err
    assert not jax_contract.with_name("jj.state.sqlite").exists()  # refused before the state is touched


@pytest.mark.parametrize("argv", [["contract", "check", "C", "--debug"], ["contract", "--debug", "check", "C"],
                                  ["--debug", "contract", "check", "C"]])
def test_contract_takes_debug_anywhere(jax_contract, monkeypatch, capsys, argv):
    from geomir.contracts import check

    def crash(path):
        raise RuntimeError("boom")

    monkeypatch.setattr(check, "check_contract", crash)
    monkeypatch.setattr(check, "require_torch", lambda: None)
    argv = [str(jax_contract) if a == "C" else a for a in argv]
    with pytest.raises(RuntimeError, match="boom"):
        main(argv)
    assert main([a for a in argv if a != "--debug"]) == 3
    assert "rerun with --debug for a traceback" in capsys.readouterr().err


# --- 3. an APEL model agent without torch ----------------------------------------------------------


def test_apel_model_agent_without_torch_is_a_deployment_error(tmp_path, monkeypatch):
    from geomir import apel
    from geomir.apel.engine import AgentUnavailable

    path = tmp_path / "w.apel"
    path.write_text(f'manifold H = poincare(c = 1.0)\n\npure agent embed(x: H[16]) -> H[8] {{\n'
                    f'  model "{EXAMPLES / "hyperbolic_mlp.geo"}:HyperbolicMLP"\n}}\n\n'
                    "workflow W(x: H[16]) -> H[8] {\n  let z = call embed(x)\n  return z\n}\n")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(AgentUnavailable, match=r"agent 'embed' cannot be loaded: target 'torch' needs torch") as err:
        apel.run(path, {"x": [0.01] * 16}, store=tmp_path / "runs.sqlite")
    assert err.value.span.location == f"{path}:3:12"


# --- 5. a traced function in a file whose name is not UTF-8 ---------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes: Linux")
def test_a_traced_file_named_with_non_utf8_bytes(tmp_path):
    torch = pytest.importorskip("torch")
    path = os.fsdecode(os.fsencode(tmp_path) + b"/t\xff.py")
    with open(path, "w") as f:
        f.write("import geomir as g\n\n@g.trace(x=g.R(3))\ndef f(x):\n    return g.log(g.linear(x, 1) * 0.0)\n")
    spec = importlib.util.spec_from_file_location("hunt5_traced", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ir = geomir.print_ir(module.f.lowered(), debug_info=True)
    assert 't\\\\xff.py":5:' in ir  # written as a .geo path is: \xff, not a raw surrogate
    m = module.f.compile("torch", cache_dir=tmp_path / "cache", check_finite=True)
    with pytest.raises(NonFiniteError) as err:
        m.f(m.init_params(0), torch.ones(2, 3))
    text = err.value.render()
    text.encode("utf-8")  # printable
    assert "t\\xff.py:5:" in text and "return g.log(g.linear(x, 1) * 0.0)" in text


# --- 6. --plot without matplotlib -------------------------------------------------------------------


def test_plot_without_matplotlib_fails_before_computing(tmp_path, monkeypatch, capsys):
    from geomir import holonomy_map

    def computed(*args, **kwargs):
        raise AssertionError("the map was computed")

    monkeypatch.setattr(holonomy_map, "holonomy_map", computed)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main([str(EXAMPLES / "hyperbolic_classifier.geo"), "--plot=holonomy", "-o", str(tmp_path / "p.png")]) == 2
    assert "error: --plot needs matplotlib, which is not installed (pip install matplotlib, or geomir[plot])" in \
        capsys.readouterr().err


# --- 7. the caret line of --check-finite --------------------------------------------------------------


def test_check_finite_caret_is_the_compiled_programs_line(tmp_path):
    torch = pytest.importorskip("torch")
    other = "model B(x: R[2]) -> R[2] {\n  let somethingelse = tanh(x)\n  return somethingelse\n}\n"
    a = geomir.compile(LOG, target="torch", check_finite=True, cache_dir=tmp_path)
    geomir.compile(other, target="torch", check_finite=True, cache_dir=tmp_path)  # also '<string>'
    with pytest.raises(NonFiniteError) as err:
        a.A(a.init_params(0), torch.tensor([[-1.0, 1.0]]))
    assert err.value.render().splitlines()[1:] == ["    2 |   let h = log(x)", "      |           ^"]


def test_generated_module_keeps_its_lines_after_the_file_changes(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    src, out = tmp_path / "m.geo", tmp_path / "m_hunt5.py"
    src.write_text(LOG)
    assert main([str(src), "--target=torch", "--check-finite", "-o", str(out)]) == 0
    text = out.read_text()
    assert f"    {str(src)!r}: {{1: 'model A(x: R[2]) -> R[2] {{', 2: '  let h = log(x)'}}," in text
    src.write_text("// a comment added after compiling\n" + LOG)
    monkeypatch.syspath_prepend(str(tmp_path))
    m = importlib.import_module("m_hunt5")
    monkeypatch.delitem(sys.modules, "m_hunt5")
    with pytest.raises(NonFiniteError) as err:
        m.A(m.init_params(0), torch.tensor([[-1.0, 1.0]]))
    assert err.value.render().splitlines()[1] == "    2 |   let h = log(x)"


def test_check_finite_without_lines_reads_the_file(tmp_path):
    from geomir.backends.common.finite import check_finite

    src = tmp_path / "old.geo"
    src.write_text(LOG)
    assert check_finite(f"{src}:2:11", "geo.log", "A", np.ones(2)) is not None
    with pytest.raises(NonFiniteError) as err:  # a module generated before modules carried their lines
        check_finite(f"{src}:2:11", "geo.log", "A", np.array([np.nan]))
    assert err.value.render().splitlines()[1] == "    2 |   let h = log(x)"
    with pytest.raises(NonFiniteError) as err:
        check_finite.with_lines({str(src): {2: "  let kept = log(x)"}})(f"{src}:2:11", "geo.log", "A", np.array([np.inf]))
    assert err.value.render().splitlines()[1] == "    2 |   let kept = log(x)"


# --- the questionable items: ~ in cache_dir, wordings, --dump-dir reuse --------------------------------


def test_cache_dir_expands_the_home_directory(tmp_path, monkeypatch):
    from geomir.compiler import _cache_directory, default_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    assert _cache_directory("~/c") == tmp_path / "c"
    monkeypatch.setenv("GEOMIR_CACHE_DIR", "~/env")
    assert default_cache_dir() == tmp_path / "env"


def test_memory_without_torch_names_the_wheel(fresh):
    with pytest.raises(UsageError, match=r"geomir.memory needs PyTorch, which is not installed \(pip install "
                                         r"torch==2\.13\.0\)"):
        fresh("geomir.memory", "torch")


def test_jax_init_params_of_a_float64_model_reads_well(tmp_path):
    jax = pytest.importorskip("jax")
    jm = geomir.compile("model F(x: R[3, f64]) -> R[1, f64] { return linear(x, 3 -> 1) }", target="jax",
                        cache_dir=tmp_path)
    with jax.enable_x64(False):
        with pytest.raises(jm.model.ModelInputError,
                           match=r"init_params: parameter 'F.linear0.weight' declared float64 needs 64-bit JAX"):
            jm.init_params(seed=0)


def test_a_reused_dump_dir_holds_this_runs_stages_only(tmp_path):
    src, dumps = tmp_path / "m.geo", tmp_path / "d"
    src.write_text(LOG)
    assert main([str(src), "--emit=ir", "-o", str(tmp_path / "a.mlir"), "--dump-ir-after-all",
                 "--dump-dir", str(dumps)]) == 0
    assert len(list(dumps.glob("*.mlir"))) > 3
    kept = ["notes.txt", "07-mine.mlir", "1-cse.mlir"]  # not named as geomc names its dumps
    for name in kept + ["03-prune-weights{fraction=0.5}.mlir"]:
        (dumps / name).write_text("x")
    assert main([str(src), "--emit=ir", "-o", str(tmp_path / "b.mlir"), "--passes=cse", "--dump-ir-after-all",
                 "--dump-dir", str(dumps)]) == 0
    assert sorted(p.name for p in dumps.iterdir()) == sorted(["00-input.mlir", "01-cse.mlir", *kept])
