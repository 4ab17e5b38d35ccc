"""IR -> a PyTorch module: plain functions plus an nn.Module class per function."""

from __future__ import annotations

from xdsl.dialects import builtin

from geomir.backends.common.pyemit import Flavor, emit_python

_DTYPES = {"f32": "torch.float32", "f64": "torch.float64", "f16": "torch.float16", "bf16": "torch.bfloat16"}


def _model_class(name: str, f) -> list[str]:
    return [
        f"class {name}Module(model.CompiledModel):",
        f'    """nn.Module form of {name}: its parameters as nn.Parameters, initialised from `seed`."""',
        "",
        f"    function = staticmethod({name})",
        f"    param_names = FUNCTION_PARAMS[{name!r}]",
        "    specs = PARAMS",
    ]


FLAVOR = Flavor(
    target="torch",
    elementwise={
        "geo.tanh": "torch.tanh",
        "geo.sigmoid": "torch.sigmoid",
        "geo.relu": "torch.relu",
        "geo.softplus": "runtime.softplus",
        "geo.exp": "torch.exp",
        "geo.log": "torch.log",
        "geo.sqrt": "torch.sqrt",
        "geo.sin": "torch.sin",
        "geo.cos": "torch.cos",
    },
    header=lambda source: [
        "import math",
        "",
        "import torch",
        "",
        "from geomir.backends.torch import derivatives, model, runtime, taylor",
    ],
    dtype_name=lambda t: _DTYPES[str(t)],
    model_class=_model_class,
)


def emit(module: builtin.ModuleOp, source_name: str, check_finite: bool = False) -> str:
    """PyTorch source for ``module`` (``check_finite``: see backends/common/finite.py)."""
    return emit_python(module, FLAVOR, source_name, check_finite=check_finite)
