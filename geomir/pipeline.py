"""Pass registry and pipeline on xDSL's ModulePass.

Passes register by name with :func:`register_pass`; the pipeline runs them in order,
verifies the IR after every pass (a failure is an internal compiler error naming the
pass), and can hand each intermediate module to a dump callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from geomir.diagnostics import InternalCompilerError, UsageError
from geomir.dialects import make_context
from geomir.verify import verify_module

PASSES: dict[str, type[ModulePass]] = {}

# Run by geomc when --passes is not given: every derivative request becomes Taylor-mode
# code. Later passes (verify-contracts, insert-transport) join as they land.
DEFAULT_PIPELINE: tuple[str, ...] = ("jet-expand", "jet-fuse", "cse", "dce")


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    """Class decorator: make a ModulePass available by its ``name``."""
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass '{cls.name}' registered twice")
    PASSES[cls.name] = cls
    return cls


def _load_passes() -> None:
    import geomir.passes  # noqa: F401  (registers the built-in passes)


def available_passes() -> dict[str, str]:
    """Pass name -> first line of its docstring."""
    _load_passes()
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in sorted(PASSES.items())}


def parse_pipeline(spec: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> checked pass names (empty string: no passes)."""
    _load_passes()
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    for n in names:
        if n not in PASSES:
            known = ", ".join(sorted(PASSES))
            raise UsageError(f"unknown pass '{n}' (available: {known}; see geomc --list-passes)")
    return names


DumpCallback = Callable[[int, str, ModuleOp], None]


def run_pipeline(module: ModuleOp, names: Sequence[str], dump: DumpCallback | None = None) -> ModuleOp:
    """Run passes in place, verifying after each; ``dump(i, name, module)`` sees each stage."""
    _load_passes()
    ctx = make_context()
    _verify(module, "the frontend")
    if dump:
        dump(0, "input", module)
    for index, name in enumerate(names, start=1):
        PASSES[name]().apply(ctx, module)
        _verify(module, f"pass '{name}'")
        if dump:
            dump(index, name, module)
    return module


def _verify(module: ModuleOp, after: str) -> None:
    try:
        verify_module(module)
    except VerifyException as err:
        raise InternalCompilerError(f"IR after {after} does not verify: {err}") from err
