"""IR -> a PyTorch module whose fused layers launch Triton kernels.

The module is the torch backend's (same functions, ``nn.Module`` classes, parameters and
numbers) except at the kernel launch sites chosen by :mod:`.select`: each is one call of
:mod:`geomir.backends.triton.runtime` (``runtime.dense``, ``runtime.poincare_layer``,
``taylor.layer``). The module also holds

    PRECISION   "ieee" (fp32 dot products, the default), "tf32", "tf32x3" or "bf16": read and
                checked (runtime.check_precision) at each call of every function
    KERNELS     one entry per launch site: kernel, jet order K (jet_layer), curvature c
                (poincare), activation, bias, widths, dtype, source, and the contracts
                verify-contracts proved for the model it belongs to
"""

from __future__ import annotations

import dataclasses

from xdsl.dialects import builtin, func

from geomir.backends.common.pyemit import Fused, emit_python
from geomir.backends.torch.emitter import FLAVOR as TORCH_FLAVOR
from geomir.backends.triton import PRECISIONS
from geomir.backends.triton.select import select, select_checked


def _kernels_table(sites: list[tuple[str, Fused]]) -> list[str]:
    lines = [
        "# Triton launch sites (geomir.backends.triton.select). The kernels run on CUDA tensors",
        "# (or CPU tensors under TRITON_INTERPRET=1); elsewhere the torch code runs (runtime.STATS).",
        "KERNELS = [",
    ]
    for function, group in sites:
        entry = {"function": function, **group.info}
        # the contract of the model the kernel computes (CONTRACTS is defined above)
        lines.append(f"    {{**{entry!r}, 'contracts': CONTRACTS.get({function!r}, {{}}).get('proved', [])}},")
    return [*lines, "]"]


def _header(precision: str):
    def header(source: str) -> list[str]:
        return [
            "import math",
            "",
            "import torch",
            "",
            "from geomir.backends.torch import derivatives, model",
            "from geomir.backends.triton import runtime, taylor",
            "",
            "# Dot-product precision of the kernels (fp32 accumulation always): \"ieee\" fp32,",
            "# \"tf32\", \"tf32x3\" (fp32-accurate, tensor cores) or \"bf16\" operands",
            "# (geomir.backends.triton.PRECISIONS). Set it on the module to change it at run time.",
            f"PRECISION = {precision!r}",
        ]

    return header


def flavor(precision: str = "ieee", check_finite: bool = False):
    """The torch flavor with Triton kernel selection and the PRECISION/KERNELS tables
    (``check_finite``: one op per kernel, :func:`.select.select_checked`)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        from geomir.diagnostics import UsageError

        raise UsageError(f"precision {precision!r} (expected one of {', '.join(PRECISIONS)})")
    return dataclasses.replace(TORCH_FLAVOR, target="triton", header=_header(precision),
                               fuse=select_checked if check_finite else select, fused_table=_kernels_table,
                               prologue=[PRECISION_CHECK])


PRECISION_CHECK = "runtime.check_precision(PRECISION)"
"""The first statement of every generated function: a bad ``m.PRECISION`` is a ValueError
at every call, whether the function launches a kernel or not."""


def _reject_paths(module: builtin.ModuleOp) -> None:
    """Paths (``!geo.path``) and the winding ops run on the torch and jax targets only."""
    from geomir.base_points import location
    from geomir.diagnostics import UsageError
    from geomir.dialects import geo

    for op in module.walk():
        where = location(op)
        at = f"{where}: " if where else ""
        if isinstance(op, func.FuncOp) and any(isinstance(t, geo.PathType) for t in op.function_type.inputs.data):
            raise UsageError(f"{at}@{op.sym_name.data} takes a path (!geo.path); paths and the winding ops "
                             "(unwrap, winding, winding_margin, endpoint) are available on the torch and jax "
                             "targets, not on triton")
        if type(op) in geo.PATH_OPS.values():
            raise UsageError(f"{at}{op.name}: paths and the winding ops (unwrap, winding, winding_margin, "
                             "endpoint) are available on the torch and jax targets, not on triton")


def emit(module: builtin.ModuleOp, source_name: str, precision: str = "ieee", check_finite: bool = False) -> str:
    """Triton-target source for ``module`` (not for models with paths: torch and jax only;
    ``check_finite``: see backends/common/finite.py)."""
    _reject_paths(module)
    return emit_python(module, flavor(precision, check_finite), source_name, check_finite=check_finite)
