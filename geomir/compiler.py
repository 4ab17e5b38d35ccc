"""The compile entry points shared by the Python API and the geomc CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import keyword
import os
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from geomir.base_points import location, verify_base_points
from geomir.diagnostics import UsageError
from geomir.ir import parse_ir
from geomir.pipeline import DEFAULT_PIPELINE, DumpCallback, parse_pipeline, run_pipeline


def read_source(source: str | Path) -> tuple[str, str]:
    """``(text, filename)`` from a path to a .geo/.mlir file, or from source text itself."""
    if isinstance(source, Path) or (
        "\n" not in source and "{" not in source and source.endswith((".geo", ".mlir"))
    ):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise UsageError(f"cannot read '{source}': {err.strerror or err}") from None
        try:
            return data.decode("utf-8-sig"), str(source)  # a byte-order mark is dropped
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
            raise UsageError(f"cannot read '{source}': not UTF-8 text: byte 0x{data[err.start]:02x} "
                             f"at line {line}, column {col}") from None
    return source, "<string>"


def frontend(text: str, filename: str) -> ModuleOp:
    """IR straight from the frontend: .mlir text is parsed, anything else is .geo."""
    if filename.endswith(".mlir"):
        return parse_ir(text, filename)
    from geomir.frontends.dsl import compile_source

    return compile_source(text, filename)


def to_ir(
    source: str | Path,
    passes: str | Sequence[str] | None = None,
    dump: DumpCallback | None = None,
) -> ModuleOp:
    """Compile a .geo program (path or text) to IR and run ``passes`` (default pipeline if None)."""
    return _lower(source, passes, dump)[0]


def _lower(source, passes, dump) -> tuple[ModuleOp, str]:
    text, filename = read_source(source)
    names = list(DEFAULT_PIPELINE) if passes is None else parse_pipeline(passes)
    return run_pipeline(frontend(text, filename), names, dump), filename


def emit_source(
    source: str | Path,
    target: str,
    passes: str | Sequence[str] | None = None,
    dump: DumpCallback | None = None,
    **options,
) -> str:
    """The generated source of a program for ``target`` ("torch", "jax", "triton");
    ``options`` are the target's (triton: ``precision="ieee" | "tf32" | "bf16"``)."""
    from geomir.backends import get_backend

    backend = get_backend(target)  # fails early for an unknown or unbuilt target
    backend.check_options(options)
    module, filename = _lower(source, passes, dump)
    verify_base_points(module)  # code is never generated from IR that mixes base points
    return backend.emit(hygienic(module, target), filename, **options)


def compile_module(
    module: ModuleOp, target: str = "torch", filename: str = "<traced>", cache_dir: str | Path | None = None,
    **options,
) -> types.ModuleType:
    """Emit code for IR that has been through its passes (e.g. a traced function's) and
    import it, as :func:`compile` does for a program."""
    from geomir.backends import get_backend

    backend = get_backend(target)
    backend.check_installed()
    backend.check_options(options)
    verify_base_points(module)
    return _import(backend.emit(hygienic(module, target), filename, **options), target, cache_dir)


# -- names in generated modules ----------------------------------------------------------------

MODULE_NAMES = frozenset({
    "math", "torch", "jax", "jnp", "derivatives", "model", "runtime", "taylor", "params", "staticmethod",
    "PARAMS", "FUNCTION_PARAMS", "CONTRACTS", "KERNELS", "PRECISION", "init_params", "transform_params",
    "_tap", "_check_finite",
})
"""The globals a generated module defines or imports (backends/common/pyemit.py and the flavors)."""

_MANIFOLD_VAR = re.compile(r"(euclidean|sphere|torus_radians|torus_turns|(poincare|lorentz)_c[0-9][0-9a-z_]*)(_jet|_lap)?")


def module_name_clash(name: str) -> str | None:
    """Why ``name`` cannot be a model's name in a generated module (None if it can)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"'{name}' is not a Python identifier"
    if name in MODULE_NAMES or _MANIFOLD_VAR.fullmatch(name):
        return f"the generated module already defines '{name}'"
    return None


def hygienic(module: ModuleOp, target: str) -> ModuleOp:
    """``module`` ready for the Python emitters: a model named like a generated module's
    global is an error; a value named like one (a local ``sphere`` or ``torch``) is renamed
    ``v_<name>`` in a copy (a local would hide the global in its function)."""
    from xdsl.dialects import func

    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    names = {f.sym_name.data for f in funcs}
    for f in funcs:
        name = f.sym_name.data
        if f.is_declaration:
            where = location(f)
            raise UsageError(f"{where + ': ' if where else ''}@{name} is declared without a body: the {target} "
                             "target emits code for every function; give it a body or remove it")
        why = module_name_clash(name) or (f"the model {name[:-6]} has a class '{name}'"
                                          if name.endswith("Module") and name[:-6] in names else None)
        if why:
            where = location(f)
            raise UsageError(f"{where + ': ' if where else ''}a model cannot be named '{name}' on the {target} "
                             f"target: {why}; rename the model")
    if not any(_hides_global(v.name_hint) for v in _values(module)):
        return module
    module = module.clone()
    for v in _values(module):
        if _hides_global(v.name_hint):
            v.name_hint = f"v_{v.name_hint}"
    return module


def _hides_global(hint: str | None) -> bool:
    return bool(hint) and (hint in MODULE_NAMES or _MANIFOLD_VAR.fullmatch(hint) is not None)


def _values(module: ModuleOp):
    for op in module.walk():
        yield from op.results
        for region in op.regions:
            for block in region.blocks:
                yield from block.args


def default_cache_dir() -> Path:
    """Where geomir.compile writes generated modules: $GEOMIR_CACHE_DIR or ~/.cache/geomir."""
    return Path(os.environ.get("GEOMIR_CACHE_DIR") or Path.home() / ".cache" / "geomir")


def compile(
    source: str | Path,
    target: str = "torch",
    passes: str | Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    **options,
) -> types.ModuleType:
    """Compile a .geo program (path or text) and import the generated module.

    The source is written to ``cache_dir`` under a name derived from its hash (generated
    kernels must live in a real file, and a file makes tracebacks readable), then imported:
    each call returns a new module object, so state set on one (``m.PRECISION``,
    ``m.PARAMS``) does not reach another.
    The module has one function per model (``Model(params, *inputs)``), ``init_params``,
    and for torch and triton an ``nn.Module`` class per model (``ModelModule(seed=0)``).
    ``options`` are the target's: triton takes ``precision`` ("ieee" default, "tf32", "tf32x3", "bf16").
    """
    from geomir.backends import get_backend

    backend = get_backend(target)
    backend.check_installed()
    return _import(emit_source(source, target, passes, **options), target, cache_dir)


def _import(code: str, target: str, cache_dir: str | Path | None) -> types.ModuleType:
    """Write generated ``code`` under a name derived from its hash and import it: a new
    module object on every call (its PRECISION, PARAMS and other globals are its own)."""
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    base = f"geomir_generated_{target}_{digest}"
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{base}.py"
        if not path.exists() or path.read_text() != code:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(code)
            os.replace(tmp, path)
    except OSError as err:
        raise UsageError(f"cannot write the generated module to '{directory}': {err.strerror or err}") from None
    return _load(path, _fresh_name(base))


def _fresh_name(base: str) -> str:
    """``base``, or ``base_<n>`` when a module of that code is already loaded (each loaded
    module stays in sys.modules under its own name, so its classes pickle)."""
    name, n = base, 1
    while name in sys.modules:
        n += 1
        name = f"{base}_{n}"
    return name


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
