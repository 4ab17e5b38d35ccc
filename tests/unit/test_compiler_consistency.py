"""One behaviour wherever geomir does the same thing: every CLI reads files alike (not
UTF-8: the same located error and exit code), the names a model may not take are read off
the emitter's own output, geomir.compile/emit_source/to_ir take a traced function, and
compiling in a loop does not grow sys.modules (while pickle, inspect, torch.compile and
tracebacks still find a generated module in use)."""

from __future__ import annotations

import dataclasses
import gc
import inspect
import pickle
import sys
import traceback
from pathlib import Path

import pytest

import geomir
from geomir import compiler
from geomir.apel.cli import main as apel_main
from geomir import diagnostics
from geomir.diagnostics import UsageError
from geomir.driver import main as geomc_main

ROOT = Path(__file__).resolve().parents[2]

# -- 1. files that are not UTF-8 --------------------------------------------------------------------

# "é" is two bytes and one column; 0xe9 alone is not UTF-8.
BAD_LINE = "  // \u00e9t".encode() + b"\xe9 x\n"
GEO = b"model A(x: R[2]) -> R[2] {\n" + BAD_LINE + b"  return x\n}\n"
MLIR = b"builtin.module {\n" + BAD_LINE + b"}\n"
APEL = b"pure agent f(x: int) -> int\n" + BAD_LINE + b"workflow W(x: int) -> int {\n  return x\n}\n"
YAML = b"contract: t\nmodel: m.geo\n" + BAD_LINE.replace(b"//", b"#")
GOOD_APEL = "pure agent f(x: int) -> int\nworkflow W(x: int) -> int {\n  return x\n}\n"
JSON = '{"x": "\u00e9t'.encode() + b'\xe9"}\n'


def _message(path: Path, line: int, column: int, offset: int) -> str:
    return (f"{path}:{line}:{column}: error: the file is not UTF-8 (byte 0xe9 at offset {offset}: "
            "invalid continuation byte); save it as UTF-8")


@pytest.mark.parametrize("case", ["geomc .geo", "geomc .mlir", "geomc .apel", "geomc --report", "apel run",
                                  "apel run --input", "geomc contract check"])
def test_every_cli_reports_a_file_that_is_not_utf8_alike(case, tmp_path, capsys, monkeypatch):
    """geomc said 'cannot read ...: not UTF-8 text ... column <bytes>' (exit 2), apel 'cannot
    read ...: not UTF-8 text' without a place (exit 2; a non-UTF-8 --input was an internal
    error, exit 3), kernel contracts a located error (exit 1)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # apel puts the workflow's folder on it
    store = ["--store", str(tmp_path / "s.sqlite"), "--trace", str(tmp_path / "t.jsonl")]
    name, data, main, argv = {
        "geomc .geo": ("m.geo", GEO, geomc_main, lambda p: [p]),
        "geomc .mlir": ("m.mlir", MLIR, geomc_main, lambda p: [p, "--passes="]),
        "geomc .apel": ("w.apel", APEL, geomc_main, lambda p: [p, "--check"]),
        "geomc --report": ("m.geo", GEO, geomc_main, lambda p: [p, "--report=holonomy"]),
        "apel run": ("w.apel", APEL, apel_main, lambda p: [*store, "run", p]),
        "apel run --input": ("in.json", JSON, apel_main, lambda p: [*store, "run", "ok.apel", "--input", p]),
        "geomc contract check": ("c.yaml", YAML, geomc_main, lambda p: ["contract", "check", p]),
    }[case]
    (tmp_path / "ok.apel").write_text(GOOD_APEL)
    path = tmp_path / name
    path.write_bytes(data)
    bad = data.index(b"\xe9 ") if b"\xe9 " in data else data.index(b"\xe9\"")
    line = data.count(b"\n", 0, bad) + 1
    column = len(data[data.rfind(b"\n", 0, bad) + 1:bad].decode()) + 1  # characters, not bytes
    capsys.readouterr()
    args = argv(str(path))
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == _message(path, line, column, bad)
    assert "\ufffd" in err[1] and err[2].endswith("| " + " " * (column - 1) + "^")  # the line and a caret


def test_the_documented_example_is_what_geomc_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.geo").write_bytes(GEO.replace(b" x\n", b"\n", 1))
    assert geomc_main(["m.geo"]) == 1
    printed = capsys.readouterr().err
    doc = (ROOT / "docs" / "cli.md").read_text()
    assert printed in doc
    assert "a file that is not UTF-8 (the same in `geomc contract` and `apel`)" in doc  # exit code 1's row


def test_the_reader_drops_a_byte_order_mark_and_counts_columns_after_it():
    assert diagnostics.decode_text(b"\xef\xbb\xbfab\n", "f") == "ab\n"
    with pytest.raises(diagnostics.EncodingError) as info:
        diagnostics.decode_text(b"\xef\xbb\xbf\xc3\xa9b\xff", "f")
    assert (info.value.span.line, info.value.span.column) == (1, 3) and info.value.exit_code == 1
    assert "byte 0xff at offset 6" in info.value.message
    with pytest.raises(UsageError, match="cannot read 'nope.geo': No such file"):
        compiler.read_source("nope.geo")


def test_an_apel_file_with_a_byte_order_mark_reads_as_the_others_do(tmp_path, capsys):
    """.geo, .mlir and contracts dropped a byte-order mark; .apel stopped at it (1:1,
    unexpected character '\\ufeff')."""
    path = tmp_path / "bom.apel"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_APEL.encode())
    assert geomc_main([str(path), "--check"]) == 0, capsys.readouterr().err


# -- 2. names a model cannot take: read off the emitted module -----------------------------------------

JETS = ROOT / "examples" / "pinn_laplacian.geo"  # jet and collapsed-jet manifolds
TOUR = ROOT / "examples" / "manifolds_tour.geo"  # every manifold


@pytest.mark.parametrize("target", ["torch", "jax", "triton"])
def test_every_global_of_a_generated_module_is_a_refused_model_name(target, tmp_path, monkeypatch):
    pytest.importorskip("torch" if target != "jax" else "jax")
    if target == "triton":
        pytest.importorskip("triton")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    for example in (JETS, TOUR):
        models = {f.sym_name.data for f in geomir.to_ir(example).ops}
        m = geomir.compile(example, target=target, cache_dir=tmp_path, check_finite=True)
        own = models | {f"{name}Module" for name in models}
        unrefused = [g for g in vars(m) if g not in own and compiler.module_name_clash(g) is None]
        assert unrefused == [], f"{example.name} on {target}: a model could be named {unrefused}"


def test_the_instrumented_module_s_globals_are_refused_too():
    from geomir.backends.common.pyemit import emit_python
    from geomir.backends.torch.emitter import FLAVOR

    code = emit_python(compiler.hygienic(geomir.to_ir(JETS), "torch"), FLAVOR, "x", tap=True, check_finite=True)
    names: dict = {}
    exec(compile(code, "<tap>", "exec"), names)  # noqa: S102
    models = {f.sym_name.data for f in geomir.to_ir(JETS).ops}
    extra = [g for g in names if g not in models | {f"{m}Module" for m in models}
             and compiler.module_name_clash(g) is None]
    assert extra == [] and compiler.module_name_clash("_tap")


def test_the_refused_names_follow_the_emitter():
    """A flavor that imports one more name refuses it: the list is the emitter's output."""
    from geomir.backends.common.pyemit import module_globals
    from geomir.backends.torch.emitter import FLAVOR

    more = dataclasses.replace(FLAVOR, header=lambda source: [*FLAVOR.header(source), "import numpy as np"])
    assert module_globals(more) == module_globals(FLAVOR) | {"np"}
    assert {"params", "staticmethod", "PARAMS", "init_params", "_tap", "_check_finite"} <= compiler.module_names()
    assert {"KERNELS", "PRECISION", "jnp"} <= compiler.module_names()  # triton's and jax's


@pytest.mark.parametrize("name", ["__name__", "__doc__", "params", "PRECISION", "sphere_jet"])
def test_a_model_named_like_a_module_attribute_is_refused(name):
    """A model named __name__ rebound the module's __name__: its nn.Module class got a
    function as __module__."""
    source = f"model {name}(x: R[2]) -> R[2] {{\n  return linear(x, 2 -> 2)\n}}\n"
    with pytest.raises(UsageError, match=f"a model cannot be named '{name}' on the torch target"):
        geomir.emit_source(source, "torch")


# -- 3. a traced function where a program is expected -------------------------------------------------


@geomir.trace(x=geomir.R(3))
def Traced(x):
    return geomir.linear(geomir.tanh(x), 2)


def test_compile_emit_source_and_to_ir_take_a_traced_function(tmp_path):
    torch = pytest.importorskip("torch")
    assert geomir.print_ir(geomir.to_ir(Traced)) == Traced.ir
    assert geomir.print_ir(geomir.to_ir(Traced, passes="")) == geomir.print_ir(Traced.lowered(""))
    code = geomir.emit_source(Traced, "torch")
    assert "def Traced(params, x):" in code and Path(__file__).name in code.splitlines()[0]
    m, n = geomir.compile(Traced, "torch", cache_dir=tmp_path), Traced.compile("torch", cache_dir=tmp_path)
    assert m.__file__ == n.__file__  # the same code
    x = torch.randn(5, 3)
    assert torch.equal(m.Traced(m.init_params(0), x), n.Traced(n.init_params(0), x))


@pytest.mark.parametrize("value", [3, b"model", None, ["m.geo"]])
def test_anything_else_is_a_usage_error_saying_what_is_accepted(value):
    for call in (lambda: geomir.compile(value), lambda: geomir.emit_source(value, "torch"),
                 lambda: geomir.to_ir(value)):
        with pytest.raises(UsageError, match="expected a .geo or .mlir path, .geo source text or a "
                                             r"@geomir.trace function, found (bytes|int|NoneType|list)"):
            call()


# -- 4. sys.modules ---------------------------------------------------------------------------------

SRC = "model U(x: R[4]) -> R[2] {\n  return tanh(linear(x, 4 -> 2))\n}\n"


def _generated() -> set[str]:
    return {name for name in sys.modules if name.startswith("geomir_generated_")}


def test_compiling_in_a_loop_does_not_grow_sys_modules(tmp_path):
    pytest.importorskip("torch")
    geomir.compile(SRC, "torch", cache_dir=tmp_path)  # imports the runtime
    gc.collect()
    before = len(sys.modules)
    for _ in range(20):
        geomir.compile(SRC, "torch", cache_dir=tmp_path)
    gc.collect()
    assert len(sys.modules) == before


def test_a_generated_module_in_use_stays_registered(tmp_path):
    """Pickle, inspect.getsource, torch.compile and tracebacks, with only an instance of a
    generated nn.Module kept (the module object itself dropped)."""
    torch = pytest.importorskip("torch")
    net = geomir.compile(SRC, "torch", cache_dir=tmp_path).UModule(seed=0)
    gc.collect()
    name = type(net).__module__
    assert name in sys.modules
    x = torch.randn(3, 4)
    clone = pickle.loads(pickle.dumps(net))
    assert type(clone) is type(net) and torch.equal(clone(x), net(x))
    assert inspect.getsource(type(net)).startswith("class UModule(model.CompiledModel):")
    assert inspect.getsource(type(net).function.__wrapped__).startswith("def U(params, x):")
    with pytest.raises(KeyError) as info:
        type(net).function.__wrapped__({}, x)  # the unchecked function: fails inside the generated file
    text = "".join(traceback.format_exception(info.value))
    assert f'File "{tmp_path}' in text and "params['U.linear0.weight']" in text
    compiled = torch.compile(net, backend="eager")  # dynamo looks functions up by module name
    assert torch.allclose(compiled(x), net(x))
    del net, clone, compiled, info
    torch._dynamo.reset()
    gc.collect()
    assert name not in sys.modules


def test_each_compile_is_still_its_own_module(tmp_path):
    pytest.importorskip("torch")
    a, b = geomir.compile(SRC, "torch", cache_dir=tmp_path), geomir.compile(SRC, "torch", cache_dir=tmp_path)
    assert a is not b and a.__name__ != b.__name__
    a.PRECISION = "bf16"
    sys.modules[a.__name__].marker = 1  # the registration writes through to the module
    assert a.marker == 1 and not hasattr(b, "marker") and "PRECISION" not in vars(b)
    assert a.U.__globals__ is vars(a)


def test_a_generated_module_is_registered_while_it_runs(tmp_path):
    """dataclasses look the defining module up in sys.modules (a ClassVar written as a
    string is a field otherwise)."""
    code = ("from __future__ import annotations\nimport dataclasses\nimport typing\n\n\n"
            "@dataclasses.dataclass\nclass D:\n    x: int = 0\n    n: typing.ClassVar[int] = 3\n")
    m = compiler._import(code, "torch", tmp_path)
    assert [f.name for f in dataclasses.fields(m.D)] == ["x"]


def test_the_other_readers_read_alike(tmp_path):
    """geomir.apel.load, the hierarchy reader and the jet report's source column read files
    as the CLIs do: a located 'not UTF-8' error, a byte-order mark dropped."""
    from geomir.apel import compile_file
    from geomir.diagnostics import EncodingError
    from geomir.jet_report import _source_line
    from geomir.representations.hierarchy import Hierarchy, HierarchyError

    (tmp_path / "w.apel").write_bytes(APEL)
    with pytest.raises(EncodingError, match=r"w.apel:2:8: the file is not UTF-8 \(byte 0xe9"):
        compile_file(tmp_path / "w.apel")
    (tmp_path / "h.tsv").write_bytes(b"a\tb\n" + "\u00e9t".encode() + b"\xe9\tc\n")
    with pytest.raises(HierarchyError, match=r"h.tsv:2:3: the file is not UTF-8 \(byte 0xe9 at offset 7"):
        Hierarchy.read_tsv(tmp_path / "h.tsv")
    (tmp_path / "bom.geo").write_bytes(b"\xef\xbb\xbfmodel A(x: R[2]) -> R[2] {\n  return x\n}\n")
    assert _source_line({}, str(tmp_path / "bom.geo"), 1) == "model A(x: R[2]) -> R[2] {"


def test_one_cycle_check_for_the_pipeline_and_inline_models_alone():
    """run_pipeline and the inline-models pass applied by itself name a cycle alike (the
    pass had its own search and message, and run_pipeline skipped its check before it)."""
    from xdsl.context import Context

    from geomir.diagnostics import IRError
    from geomir.ir import parse_ir
    from geomir.pipeline import run_pipeline
    from geomir.passes.inline_models import InlineModels

    t = "!geo.point<euclidean, 2, f32>"
    text = (f"builtin.module {{\n  func.func @A(%x: {t}) -> {t} {{\n    %y = func.call @A(%x) : ({t}) -> {t}\n"
            f"    func.return %y : {t}\n  }}\n}}\n")
    message = r"models call each other in a cycle: @A -> @A \(recursive models are not supported\)"
    with pytest.raises(IRError, match=message):
        run_pipeline(parse_ir(text), ["inline-models"])
    with pytest.raises(IRError, match=message):
        InlineModels().apply(Context(), parse_ir(text))
