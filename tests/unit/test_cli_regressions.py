"""Regressions from the `.geo` / `geomc` bug hunt: each failed (a traceback, exit 3, a wrong
or unclear message, IR that does not parse back) before its fix.

Most go through ``geomc`` itself: exit 1 for a mistake in the program, 2 for bad usage,
a located message, and never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import geomir as g
from geomir.diagnostics import GeoTypeError, SourceError
from geomir.frontends.dsl import compile_source
from geomir.ir import parse_ir, print_ir
from geomir.pipeline import DEFAULT_PIPELINE

ROOT = Path(__file__).resolve().parents[2]
POINT = "!geo.point<euclidean, 2, f32>"


def geomc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomir.driver", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def failed(proc: subprocess.CompletedProcess, code: int, *says: str) -> str:
    """The first line of ``proc``'s error, after checking its exit code and text."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "internal compiler error" not in proc.stderr
    for text in says:
        assert text in proc.stderr, proc.stderr
    return proc.stderr.splitlines()[0]


def scale_ir(factor: str) -> str:
    return (f"builtin.module {{\n  func.func @A(%x: {POINT}) -> {POINT} {{\n"
            f"    %0 = geo.scale %x factor {factor} : {POINT} -> {POINT}\n"
            f"    func.return %0 : {POINT}\n  }}\n}}\n")


# -- 2: a declared parameter used as a vector ---------------------------------------------------


def test_geomc_vector_plus_weight_is_a_located_type_error(tmp_path: Path) -> None:
    path = tmp_path / "weight_add.geo"
    path.write_text("model A(x: R[2]) -> R[2] {\n  let W = param(2, 2)\n  return x + W\n}\n")
    first = failed(geomc(str(path)), 1, "    3 |   return x + W\n      |              ^")
    assert first.startswith(f"{path}:3:14: error: '+' needs vectors")


E = g.Euclidean


def test_traced_sum_with_a_vector_param_is_located() -> None:
    with pytest.raises(GeoTypeError) as info:
        @g.trace
        def f(x: E.point(3), b: g.Param[3]):
            return x + b  # the error points here

        f.ir  # noqa: B018
    err = info.value
    assert err.span.source.name == __file__ and err.span.source.line_text(err.span.line).strip().startswith("return x + b")
    assert "'+' needs vectors" in err.message and "param[3] (a learned tensor)" in err.message


def test_traced_function_returning_a_param_is_located() -> None:
    with pytest.raises(GeoTypeError) as info:
        @g.trace
        def f(x: E.point(3), b: g.Param[3]):
            return b

        f.ir  # noqa: B018
    err = info.value
    assert err.span.source.line_text(err.span.line).strip() == "return b"
    assert "model f must return a point or vector, found param[3] (a learned tensor)" in err.message


# -- 3: dimensions beyond what a backend can index ----------------------------------------------


def test_geomc_huge_dimension_with_a_contract_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.geo"
    path.write_text("@lipschitz(2.0)\nmodel A(x: R[1000000000000]) -> R[1] {\n  return linear(x, 1000000000000 -> 1)\n}\n")
    first = failed(geomc(str(path)), 1, "largest dimension is 2147483647")
    assert first.startswith(f"{path}:2:14: error: the dimension of R is too large")


def test_traced_layer_of_huge_width_is_located() -> None:
    with pytest.raises(GeoTypeError, match="output dimension of linear is too large"):
        @g.trace
        def f(x: E.point(3)):
            return g.linear(x, 2**40)

        f.ir  # noqa: B018


# -- 5: printed locations parse back --------------------------------------------------------------


@pytest.mark.parametrize("generic", [False, True])
def test_non_ascii_file_name_round_trips_in_locations(generic: bool) -> None:
    module = compile_source("model A(x: R[2]) -> R[2] {\n  return tanh(x)\n}\n", "é ü.geo")
    text = print_ir(module, generic=generic, debug_info=True)
    assert 'loc("\\C3\\A9 \\C3\\BC.geo":2:10)' in text
    again = parse_ir(text, "é.mlir")
    assert print_ir(again, generic=generic, debug_info=True) == text
    tanh = next(op for op in again.walk() if op.name == "geo.tanh")
    assert tanh.location.filename.data == "é ü.geo"


def test_geomc_reads_back_its_debug_info_for_a_non_ascii_name(tmp_path: Path) -> None:
    (tmp_path / "é.geo").write_text("model A(x: R[2]) -> R[2] {\n  return tanh(x)\n}\n")
    assert geomc("é.geo", "--debug-info", "-o", "é.mlir", cwd=tmp_path).returncode == 0
    proc = geomc("é.mlir", "--debug-info", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (tmp_path / "é.mlir").read_text()


# -- 6: recursion in hand-written IR ---------------------------------------------------------------


RECURSIVE = (f"builtin.module {{\n  func.func @A(%x: {POINT}) -> {POINT} {{\n"
             f"    %0 = func.call @A(%x) : ({POINT}) -> {POINT}{{loc}}\n    func.return %0 : {POINT}\n  }}\n}}\n")


@pytest.mark.parametrize("args", [[], ["--target=torch"], ["--passes="], ["--emit=ir-generic"]])
def test_geomc_rejects_a_recursive_model_before_codegen(args: list[str], tmp_path: Path) -> None:
    path = tmp_path / "rec.mlir"
    path.write_text(RECURSIVE.replace("{loc}", ""))
    proc = geomc(str(path), *args)
    assert failed(proc, 1) == "error: models call each other in a cycle: @A -> @A (recursive models are not supported)"
    assert proc.stdout == ""


def test_recursive_call_with_a_location_is_reported_there(tmp_path: Path) -> None:
    path = tmp_path / "rec.mlir"
    path.write_text(RECURSIVE.replace("{loc}", ' loc("rec.geo":3:10)'))
    first = failed(geomc(str(path), "--target=jax"), 1)
    assert first == "rec.geo:3:10: error: models call each other in a cycle: @A -> @A (recursive models are not supported)"


# -- 7: a weights file of another format ---------------------------------------------------------


LIP = "@lipschitz(10.0)\nmodel A(x: R[2]) -> R[2] {\n  return linear(x, 2 -> 2)\n}\n"


@pytest.mark.parametrize("name", ["w.npz", "w.txt", "w.pt"])
def test_weights_file_that_is_not_npz_or_pt_is_a_usage_error(name: str, tmp_path: Path) -> None:
    (tmp_path / "lip.geo").write_text(LIP)
    (tmp_path / name).write_text("hello\n")
    first = failed(geomc("lip.geo", f"--weights={name}", cwd=tmp_path), 2)
    if name != "w.pt":  # torch names its own problem with a .pt file
        assert first == f"error: cannot read weights file '{name}': not a .npz archive or a .pt state dict"
    assert "pickle" not in first


def test_a_zip_that_is_not_npz_is_named_as_such(tmp_path: Path) -> None:
    import zipfile

    (tmp_path / "lip.geo").write_text(LIP)
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as archive:
        archive.writestr("notes.txt", "hello")
    failed(geomc("lip.geo", "--weights=w.npz", cwd=tmp_path), 2, "not a .npz archive or a .pt state dict")


def test_real_npz_weights_still_load(tmp_path: Path) -> None:
    (tmp_path / "lip.geo").write_text(LIP)
    np.savez(tmp_path / "w.npz", **{"A.linear0.weight": 0.1 * np.eye(2), "A.linear0.bias": np.zeros(2)})
    proc = geomc("lip.geo", "--weights=w.npz", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


# -- 8: a UTF-8 byte-order mark --------------------------------------------------------------------


def test_geo_file_with_a_byte_order_mark_compiles(tmp_path: Path) -> None:
    path = tmp_path / "bom.geo"
    path.write_bytes(b"\xef\xbb\xbfmodel A(x: R[2]) -> R[2] {\n  return y\n}\n")
    failed(geomc(str(path)), 1, f"{path}:2:10: error: unknown name 'y'")
    path.write_bytes(b"\xef\xbb\xbfmodel A(x: R[2]) -> R[2] {\n  return x\n}\n")
    proc = geomc(str(path))
    assert proc.returncode == 0 and "func.func @A" in proc.stdout


def test_byte_order_mark_does_not_shift_line_one_columns() -> None:
    with pytest.raises(SourceError) as info:
        compile_source("\ufeffmodel A(x: R[2]) -> R[3] {\n  return x\n}\n", "bom.geo")
    assert (info.value.span.line, info.value.span.column) == (2, 10)
    with pytest.raises(SourceError) as info:
        compile_source("\ufeffmodel A(x: Q[2]) -> R[2] {\n  return x\n}\n", "bom.geo")
    assert (info.value.span.line, info.value.span.column) == (1, 12)


# -- 9: f64 literals in .mlir ----------------------------------------------------------------------


@pytest.mark.parametrize(("literal", "value"), [("0x3FF0000000000000", 1.0), ("0xC004000000000000", -2.5),
                                                ("-2.5", -2.5), ("3", 3.0), ("1.0e-3", 1e-3)])
def test_mlir_float_literals_read_as_mlir_reads_them(literal: str, value: float) -> None:
    module = parse_ir(scale_ir(literal), "s.mlir")
    (op,) = [o for o in module.walk() if o.name == "geo.scale"]
    assert op.factor.value.data == value


@pytest.mark.parametrize(("literal", "message"), [
    ("0x7FF0000000000000", "expected a finite f64, found inf (0x7FF0000000000000)"),
    ("0x7FF8000000000000", "expected a finite f64, found nan"),
    ("0x1FFFFFFFFFFFFFFFFF", "does not fit an f64"),
    ("-0x10", "a hexadecimal float literal (the bits of an f64) takes no '-'"),
    ("1.0e400", "float literal 1.0e400 is out of range for f64"),
    ("1" + "0" * 400, "is out of range for f64"),
    ("1e400", "a float literal needs a '.' before its exponent: write 1.0e400"),
    ("2e-3", "write 2.0e-3"),
])
def test_bad_mlir_float_literals_are_located_errors(literal: str, message: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_ir(scale_ir(literal), "s.mlir")
    assert message in info.value.message
    assert (info.value.span.line, info.value.span.column) == (3, 30)


@pytest.mark.parametrize("op", ["scale", "pow"])
@pytest.mark.parametrize("value", ["0x7FF0000000000000 : f64", "0xFFF0000000000000 : f64", "0x7FF8000000000000 : f64"])
def test_verifier_rejects_non_finite_scale_and_pow(op: str, value: str, tmp_path: Path) -> None:
    prop = {"scale": "factor", "pow": "exponent"}[op]
    path = tmp_path / "g.mlir"
    path.write_text(f'builtin.module {{\n  func.func @A(%x: {POINT}) -> {POINT} {{\n'
                    f'    %0 = "geo.{op}"(%x) <{{{prop} = {value}}}> : ({POINT}) -> {POINT}\n'
                    f'    func.return %0 : {POINT}\n  }}\n}}\n')
    failed(geomc(str(path)), 1, f"geo.{op}: {prop} must be finite")


# -- 10: the documented default pipeline ---------------------------------------------------------


@pytest.mark.parametrize("doc", ["docs/cli.md", "docs/backends.md"])
def test_docs_name_the_default_pipeline(doc: str) -> None:
    text = (ROOT / doc).read_text()
    assert f"`{','.join(DEFAULT_PIPELINE)}`" in text
    assert "(`verify-contracts,jet-expand" not in text


# -- file reading: a byte-order mark in .mlir, where a non-UTF-8 byte is, huge traced inputs ------


def test_mlir_file_with_a_byte_order_mark_parses(tmp_path: Path) -> None:
    text = geomc("examples/hyperbolic_mlp.geo", "--passes=").stdout
    path = tmp_path / "bom.mlir"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    proc = geomc(str(path), "--passes=")
    assert proc.returncode == 0 and proc.stdout == text, proc.stderr


def test_a_file_that_is_not_utf8_names_the_byte_and_where(tmp_path: Path) -> None:
    path = tmp_path / "latin1.geo"
    path.write_bytes("model A(x: R[2]) -> R[2] {\n  // caf\xe9\n  return x\n}\n".encode("latin-1"))
    failed(geomc(str(path)), 1, f"{path}:2:9: error: the file is not UTF-8 (byte 0xe9 at offset 35")


def test_a_traced_input_of_huge_dimension_is_located() -> None:
    with pytest.raises(GeoTypeError, match=r"test_cli_regressions.py:\d+:\d+: the dimension of euclidean is too large"):
        g.R(10**12)


def test_an_integer_given_to_a_float_pass_option_is_read_as_a_float() -> None:
    """xDSL's spec parser reads fraction=0 as an int, which its type check refused."""
    proc = geomc("examples/lipschitz_classifier.geo", "--passes=prune-weights{fraction=0}")
    assert proc.returncode == 0 and "prune:magnitude:0.0" in proc.stdout, proc.stderr
    failed(geomc("examples/lipschitz_classifier.geo", "--passes=prune-weights{fraction=1}"), 2,
           "the pruning fraction must be in [0, 1), found 1")
