"""Code-generation targets: each a backend package with an emitter (IR -> source text)
and a small runtime the emitted code imports.

    torch   backends/torch: functions + nn.Module classes
    jax     backends/jax: pure functions over a params pytree
    triton  backends/triton: the torch module with fused layers as Triton kernel launches
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from geomir.diagnostics import TargetNotBuiltError, UsageError

TARGETS = ("torch", "jax", "triton")


@dataclass(frozen=True)
class Backend:
    target: str
    emitter: str  # module with emit(module, source_name) -> str
    requires: tuple[str, ...]  # frameworks the emitted code imports
    options: tuple[str, ...] = ("check_finite",)  # keyword options of its emit()

    def check_installed(self) -> None:
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(
                f"target '{self.target}' needs {', '.join(missing)}: install it "
                f"(pip install 'geomir[{self.target}]'; for torch first: pip install torch==2.13.0)"
            )

    def check_options(self, options: dict) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = f" (it takes {', '.join(self.options)})" if self.options else ""
            raise UsageError(f"target '{self.target}' has no option {', '.join(map(repr, unknown))}{allowed}")
        check_finite = options.get("check_finite", False)
        if type(check_finite).__name__ not in ("bool", "bool_"):  # "False" (a str) turned checking on
            raise UsageError(f"check_finite must be True or False, found {check_finite!r}")
        precision = options.get("precision")
        if precision is not None:
            from geomir.backends.triton import PRECISIONS

            if precision not in PRECISIONS:
                raise UsageError(f"precision {precision!r} (expected one of {', '.join(PRECISIONS)})")

    def emit(self, module, source_name: str, **options) -> str:
        return importlib.import_module(self.emitter).emit(module, source_name, **options)


_BUILT = {
    "torch": Backend("torch", "geomir.backends.torch.emitter", ("torch",)),
    "jax": Backend("jax", "geomir.backends.jax.emitter", ("jax",)),
    "triton": Backend("triton", "geomir.backends.triton.emitter", ("torch", "triton"), ("precision", "check_finite")),
}


def get_backend(target: str) -> Backend:
    """The backend for ``target``; a clear error when it is unknown or not built yet."""
    if target not in TARGETS:
        raise UsageError(f"unknown target '{target}' (expected one of {', '.join(TARGETS)})")
    if target not in _BUILT:
        raise TargetNotBuiltError(
            f"target '{target}' is not built yet in this version of geomir; "
            "use --emit=ir to see the model's IR"
        )
    return _BUILT[target]
