"""The geomc command line: emits, dumps, pass selection, targets, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geomir.driver import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.geo"))


def geomc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomir.driver", *args], capture_output=True, text=True, cwd=ROOT)


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_at_least_five_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_compiles_to_ir_that_parses_back(example: Path, capsys) -> None:
    assert main([str(example), "--emit=ir"]) == 0
    text = capsys.readouterr().out
    assert "func.func" in text
    import geomir

    assert geomir.print_ir(geomir.parse_ir(text)) == text


def test_console_script_runs_main_job() -> None:
    proc = geomc("examples/hyperbolic_mlp.geo", "--emit=ir")
    assert proc.returncode == 0, proc.stderr
    assert "func.func @HyperbolicMLP" in proc.stdout
    assert "geo.mobius_matvec" in proc.stdout


def test_list_passes(capsys) -> None:
    assert main(["--list-passes"]) == 0
    out = capsys.readouterr().out
    for name in ("cse", "dce", "inline-models"):
        assert name in out
    assert "default pipeline" in out


def test_dump_ir_after_all_writes_one_file_per_stage(tmp_path: Path) -> None:
    out = tmp_path / "dump"
    code = main(["examples/hyperbolic_mlp.geo", "--passes=inline-models,cse,dce", "--dump-ir-after-all", "--dump-dir", str(out)])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["00-input.mlir", "01-inline-models.mlir", "02-cse.mlir", "03-dce.mlir"]
    before = (out / "00-input.mlir").read_text()
    after = (out / "01-inline-models.mlir").read_text()
    assert "func.call @HyperbolicMLP" in before and "func.call" not in after


def test_dump_without_dir_goes_to_stderr(capsys) -> None:
    assert main(["examples/pinn_laplacian.geo", "--passes=cse", "--dump-ir-after-all"]) == 0
    err = capsys.readouterr().err
    assert "IR Dump Before Any Pass" in err and "IR Dump After cse" in err


def test_chosen_passes_run_in_order(capsys) -> None:
    assert main(["examples/hyperbolic_mlp.geo", "--passes=inline-models,dce"]) == 0
    assert "func.call" not in capsys.readouterr().out


def test_empty_pipeline_keeps_frontend_ir(capsys) -> None:
    assert main(["examples/hyperbolic_mlp.geo", "--passes="]) == 0
    assert "func.call @HyperbolicMLP" in capsys.readouterr().out


def test_unknown_pass_is_a_usage_error(capsys) -> None:
    assert main(["examples/hyperbolic_mlp.geo", "--passes=cse,fuse-everything"]) == 2
    err = capsys.readouterr().err
    assert "unknown pass 'fuse-everything'" in err and "inline-models" in err


def test_triton_target_writes_kernel_launches_and_its_precision(tmp_path: Path) -> None:
    out = tmp_path / "m_triton.py"
    proc = geomc("examples/hyperbolic_mlp.geo", "--target=triton", "--precision=tf32", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "PRECISION = 'tf32'" in text and "KERNELS = [" in text
    assert "runtime.poincare_layer(x, mobius_linear0_weight, mobius_linear0_bias, c=1.0, activation='geo.tanh', precision=PRECISION)" in text


def test_precision_needs_the_triton_target() -> None:
    proc = geomc("examples/hyperbolic_mlp.geo", "--target=torch", "--precision=tf32", "-o", "/dev/null")
    assert proc.returncode == 2
    assert "--precision applies to --target=triton only" in proc.stderr
    assert_no_traceback(proc)


@pytest.mark.parametrize("target", ["torch", "jax", "triton"])
def test_built_targets_write_python(target: str, tmp_path: Path) -> None:
    out = tmp_path / f"m_{target}.py"
    proc = geomc("examples/pinn_laplacian.geo", f"--target={target}", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "def lap_u(params, x):" in out.read_text()


def test_unknown_target(capsys) -> None:
    assert main(["examples/hyperbolic_mlp.geo", "--target=cuda"]) == 2
    assert "unknown target 'cuda'" in capsys.readouterr().err


def test_missing_file_is_reported_without_traceback() -> None:
    proc = geomc("examples/does_not_exist.geo", "--emit=ir")
    assert proc.returncode == 2
    assert "cannot read 'examples/does_not_exist.geo'" in proc.stderr
    assert_no_traceback(proc)


def test_user_error_exit_code_and_caret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geo"
    bad.write_text("model M(x: R[8]) -> R[32] {\n  return linear(x, 16 -> 32)\n}\n")
    proc = geomc(str(bad), "--emit=ir")
    assert proc.returncode == 1
    assert_no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:2:20: error: dimension mismatch in linear")
    assert lines[1].endswith("  return linear(x, 16 -> 32)")
    assert lines[2].endswith(" " * 19 + "^~")


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "m.mlir"
    assert main(["examples/torus_oscillator.geo", "-o", str(out)]) == 0
    assert "geo.torus" in out.read_text() or "torus<radians>" in out.read_text()


def test_mlir_input_round_trips(tmp_path: Path, capsys) -> None:
    assert main(["examples/manifolds_tour.geo", "--passes="]) == 0
    ir = capsys.readouterr().out
    path = tmp_path / "tour.mlir"
    path.write_text(ir)
    assert main([str(path), "--passes="]) == 0
    assert capsys.readouterr().out == ir


def test_generic_form_parses_back(capsys) -> None:
    assert main(["examples/pinn_laplacian.geo", "--emit=ir-generic"]) == 0
    generic = capsys.readouterr().out
    assert '"geo.linear"' in generic
    import geomir

    module = geomir.parse_ir(generic)
    assert main(["examples/pinn_laplacian.geo", "--emit=ir"]) == 0
    assert geomir.print_ir(module) == capsys.readouterr().out


def test_invalid_mlir_is_a_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text('func.func @f(%x: !geo.point<klein, 3, f32>) {\n  func.return\n}\n')
    proc = geomc(str(bad))
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert f"{bad}:1:" in proc.stderr


def test_debug_info_prints_source_locations_that_parse_back(capsys) -> None:
    assert main(["examples/pinn_laplacian.geo", "--debug-info"]) == 0
    text = capsys.readouterr().out
    # linear(x, 2 -> 64) on line 5, column 16 of the example
    assert 'geo.linear' in text and 'loc("examples/pinn_laplacian.geo":5:16)' in text
    import geomir

    assert geomir.print_ir(geomir.parse_ir(text), debug_info=True) == text


def test_stock_xdsl_opt_knows_our_dialects_and_passes(tmp_path: Path) -> None:
    path = tmp_path / "h.mlir"
    assert main(["examples/hyperbolic_mlp.geo", "--passes=", "-o", str(path)]) == 0
    proc = subprocess.run(
        [sys.executable, "-c", "from xdsl.tools.xdsl_opt import main; main()", str(path), "-p", "inline-models"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "geo.mobius_matvec" in proc.stdout and "func.call" not in proc.stdout
