"""The compile entry points shared by the Python API and the geomc CLI."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import keyword
import os
import sys
import threading
import types
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import ModuleOp

from geomir import input_names
from geomir.base_points import location, verify_base_points
from geomir.diagnostics import UsageError, read_text_file
from geomir.ir import parse_ir
from geomir.pipeline import DEFAULT_PIPELINE, DumpCallback, parse_pipeline, run_pipeline

if TYPE_CHECKING:
    from geomir.frontends.trace import TracedFunction


def read_source(source: str | Path) -> tuple[str, str]:
    """``(text, filename)`` from a path to a .geo/.mlir file, or from source text itself.
    A file is read by :func:`geomir.diagnostics.read_text_file`, as by every geomir tool."""
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".geo", ".mlir"))
        and ("{" not in source or os.path.exists(source))  # a one-line program has a '{'; a path may too
    ):
        return read_text_file(source), _shown_path(os.fspath(source))
    if not isinstance(source, str):
        raise UsageError(f"expected a .geo or .mlir path or .geo source text, found {_kind(source)}")
    return source, "<string>"


def _shown_path(path: str) -> str:
    """``path`` as text for messages, locations and generated code: bytes that are not UTF-8
    (a Linux file name; Python holds them as surrogates, which no UTF-8 output takes) as
    ``\\xff``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _kind(value) -> str:
    return f"{type(value).__name__} {value!r}" if len(repr(value)) <= 60 else f"a {type(value).__name__}"


def frontend(text: str, filename: str) -> ModuleOp:
    """IR straight from the frontend: .mlir text is parsed, anything else is .geo."""
    if filename.endswith(".mlir"):
        return parse_ir(text, filename)
    from geomir.frontends.dsl import compile_source

    return compile_source(text, filename)


def to_ir(
    source: str | Path | TracedFunction,
    passes: str | Sequence[str] | None = None,
    dump: DumpCallback | None = None,
) -> ModuleOp:
    """Compile a .geo program (path or text) or a ``@geomir.trace``d function to IR and run
    ``passes`` (default pipeline if None)."""
    return _lower(source, passes, dump)[0]


def _lower(source, passes, dump) -> tuple[ModuleOp, str]:
    """``(IR after passes, source name)`` of a path, .geo text or a traced function (whose
    ``.module`` is its frontend IR: the same as its ``.lowered(passes)``)."""
    if isinstance(source, (str, os.PathLike)):
        text, filename = read_source(source)
        module = None
    else:
        traced = _traced(source)
        module, filename = traced.module, traced.model.span.source.name
    names = list(DEFAULT_PIPELINE) if passes is None else parse_pipeline(passes)
    return run_pipeline(frontend(text, filename) if module is None else module, names, dump), filename


def _traced(source) -> TracedFunction:
    """``source`` if it is a traced function; else a UsageError saying what is accepted."""
    from geomir.frontends.trace import TracedFunction

    if isinstance(source, TracedFunction):
        return source
    raise UsageError(f"expected a .geo or .mlir path, .geo source text or a @geomir.trace function, "
                     f"found {_kind(source)}")


def emit_source(
    source: str | Path | TracedFunction,
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
    return backend.emit(hygienic(checked_proofs(module), target), filename, **options)


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
    return _import(backend.emit(hygienic(checked_proofs(module), target), filename, **options), target, cache_dir)


class UncheckedProofWarning(UserWarning):
    """A ``proved`` entry read from the input that geomir does not prove was left out of
    the generated code (geomc prints it as a note)."""


def checked_proofs(module: ModuleOp) -> ModuleOp:
    """``module`` as the code generators may emit it: every ``proved`` entry is one geomir
    proved. Entries verify-contracts wrote in this compilation are kept as they are; those
    read from the input (a .mlir file compiled without verify-contracts, e.g. ``geomc
    a.mlir --passes= --target=torch``) are proved again, in a copy, and the ones geomir does
    not prove are dropped with an :class:`UncheckedProofWarning` (passes/verify_contracts.
    recheck_proved)."""
    import warnings

    from xdsl.dialects import func

    from geomir.dialects import contract

    if all(contract.proved_is_checked(f) for f in module.ops if isinstance(f, func.FuncOp)):
        return module
    from geomir.passes.verify_contracts import recheck_proved

    module = module.clone()
    for note in recheck_proved(module):
        warnings.warn(note, UncheckedProofWarning, stacklevel=3)
    return module


# -- names in generated modules ----------------------------------------------------------------

@functools.cache
def module_names() -> frozenset[str]:
    """The globals a generated module defines or reads besides its models and manifold
    objects, on any target (a model that compiles for one target compiles for all): read
    off the emitter's own output for each target (backends/common/pyemit.module_globals)."""
    from geomir.backends.common.pyemit import module_globals

    return frozenset().union(*(module_globals(flavor) for flavor in _flavors()))


def _flavors():
    """The Python emitters' flavors, one per target."""
    from geomir.backends.jax.emitter import FLAVOR as JAX
    from geomir.backends.torch.emitter import FLAVOR as TORCH
    from geomir.backends.triton.emitter import flavor as triton

    return TORCH, JAX, triton()


def __getattr__(name: str):
    if name == "MODULE_NAMES":  # the former hand-written list, now module_names()
        return module_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_manifold_var(name: str) -> bool:
    from geomir.backends.common.pyemit import MANIFOLD_VAR

    return MANIFOLD_VAR.fullmatch(name) is not None


def module_name_clash(name: str) -> str | None:
    """Why ``name`` cannot be a model's name in a generated module (None if it can)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"'{name}' is not a Python identifier"
    if name.startswith("__") and name.endswith("__"):
        return f"'{name}' has the form of Python's own module attributes (__name__, __doc__, ...)"
    if name in module_names() or _is_manifold_var(name):
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
    if not any(_hides_global(v.name_hint) for v in _values(module)) and not any(
            _hides_global(n) for f in funcs for n in input_names.input_names(f)):
        return module
    module = module.clone()
    inputs = {f: _renamed(input_names.input_names(f)) for f in module.ops if isinstance(f, func.FuncOp)}
    for v in _values(module):
        if _hides_global(v.name_hint):
            v.name_hint = f"v_{v.name_hint}"
    for f, names in inputs.items():
        input_names.rename_inputs(f, names)
    return module


def _renamed(names: list[str | None]) -> list[str | None]:
    """Input ``names`` with those hiding a global renamed ``v_<name>`` (``_`` appended while
    that is another input's name: ``M(torch, v_torch)`` is ``M(params, v_torch_, v_torch)``)."""
    out = list(names)
    for i, name in enumerate(names):
        if _hides_global(name):
            new = f"v_{name}"
            while new in out or _hides_global(new):
                new += "_"
            out[i] = new
    return out


def _hides_global(hint: str | None) -> bool:
    return bool(hint) and (hint in module_names() or _is_manifold_var(hint))


def _values(module: ModuleOp):
    for op in module.walk():
        yield from op.results
        for region in op.regions:
            for block in region.blocks:
                yield from block.args


def default_cache_dir() -> Path:
    """Where geomir.compile writes generated modules: $GEOMIR_CACHE_DIR or ~/.cache/geomir
    (a leading ``~`` expanded, as a shell would)."""
    return Path(os.environ.get("GEOMIR_CACHE_DIR") or Path.home() / ".cache" / "geomir").expanduser()


def compile(
    source: str | Path | TracedFunction,
    target: str = "torch",
    passes: str | Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    **options,
) -> types.ModuleType:
    """Compile a .geo program (path or text), or a ``@geomir.trace``d function (as its
    ``.compile(target, passes, cache_dir, **options)`` does), and import the generated module.

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
    data = code.encode("utf-8", "surrogateescape")  # a source path's undecodable bytes, as they were
    digest = hashlib.sha256(data).hexdigest()[:16]
    base = f"geomir_generated_{target}_{digest}"
    directory = _cache_directory(cache_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{base}.py"
        if not path.exists() or path.read_bytes() != data:  # bytes: a corrupt entry is rewritten, not decoded
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)  # Python reads source as UTF-8, whatever the locale
            os.replace(tmp, path)
    except OSError as err:
        raise UsageError(f"cannot write the generated module to '{directory}': {err.strerror or err}") from None
    return _load(path, base)


def _cache_directory(cache_dir) -> Path:
    """``cache_dir`` as a directory (None: :func:`default_cache_dir`; a leading ``~``
    expanded, not a directory named '~'); an empty or non-path value is a
    :class:`UsageError`, not the working directory or a TypeError."""
    if cache_dir is None:
        return default_cache_dir()
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise UsageError(f"cache_dir must be a directory path (str or os.PathLike) or None, found "
                         f"{type(cache_dir).__name__}")
    if not os.fspath(cache_dir):
        raise UsageError("cache_dir is empty: give a directory, or None for $GEOMIR_CACHE_DIR or ~/.cache/geomir")
    return Path(cache_dir).expanduser()


_NAMING = threading.Lock()


def _fresh_name(base: str) -> str:
    """``base``, or ``base_<n>`` while a module of that code is still in use (registered in
    sys.modules under its own name, so that its classes pickle). Call with _NAMING held."""
    name, n = base, 1
    while name in sys.modules:
        n += 1
        name = f"{base}_{n}"
    return name


def _load(path: Path, base: str) -> types.ModuleType:
    """Run the generated file as a new module named ``base`` (``base_<n>`` while an earlier
    one is in use), registered in sys.modules for as long as anything defined in it is
    alive, and no longer (geomir.compile in a loop must not grow sys.modules).

    While it runs, sys.modules holds the module itself (dataclasses and typing look the
    defining module up there). Afterwards it holds a :class:`_Registration`, which reads
    every attribute from the module through a weak reference: pickle (of an ``nn.Module``
    instance: its class by name), ``inspect.getsource`` of a class and torch.compile's
    guards find the module's classes and functions there, under the module's name and file.
    The module's globals hold the module (``__geomir_self__``), so it lives as long as its
    functions, its classes or their instances do, even when the module object itself is
    dropped (``net = geomir.compile(...).ModelModule()``); when it is collected, its
    registration leaves sys.modules. Tracebacks and ``inspect.getsource`` of a function
    read the file, which stays in the cache directory."""
    with _NAMING:  # two threads compiling the same code get two names
        name = _fresh_name(base)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    vars(module)["__geomir_self__"] = module
    registration = _Registration(module)
    sys.modules[name] = registration
    weakref.finalize(module, _unregister, name, registration).atexit = False
    return module


def _unregister(name: str, registration: types.ModuleType) -> None:
    if sys.modules.get(name) is registration:
        del sys.modules[name]


class _Registration(types.ModuleType):
    """sys.modules' entry for a generated module (see :func:`_load`): the module's name,
    file, spec and loader; every other attribute is read from (and written to) the module
    itself while it is alive. (No attribute of its own but dunders: any other name is the
    module's.)"""

    def __init__(self, module: types.ModuleType):
        super().__init__(module.__name__, module.__doc__)
        own = vars(self)
        for key in ("__file__", "__cached__", "__spec__", "__loader__", "__package__"):
            if key in vars(module):
                own[key] = vars(module)[key]
        own["__geomir_ref__"] = weakref.ref(module)

    def __getattr__(self, name: str):
        module = _registered(self)
        if module is None:
            raise AttributeError(f"generated module {self.__name__!r} is no longer loaded (nothing uses it)")
        return getattr(module, name)

    def __setattr__(self, name: str, value) -> None:
        module = _registered(self)
        if module is None:
            super().__setattr__(name, value)
        else:
            setattr(module, name, value)

    def __delattr__(self, name: str) -> None:
        module = _registered(self)
        if module is None:
            super().__delattr__(name)
        else:
            delattr(module, name)

    def __dir__(self) -> list[str]:
        module = _registered(self)
        return dir(module) if module is not None else super().__dir__()


def _registered(registration: _Registration) -> types.ModuleType | None:
    """The module behind ``registration`` (None once it is collected)."""
    return vars(registration)["__geomir_ref__"]()
