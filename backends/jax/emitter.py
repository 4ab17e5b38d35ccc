"""IR -> a JAX module: pure functions over a params dict that jax.jit and jax.grad accept."""

from __future__ import annotations

from xdsl.dialects import builtin

from geomir.backends.common.pyemit import Flavor, emit_python

_DTYPES = {"f32": "jnp.float32", "f64": "jnp.float64", "f16": "jnp.float16", "bf16": "jnp.bfloat16"}

FLAVOR = Flavor(
    target="jax",
    elementwise={
        "geo.tanh": "jnp.tanh",
        "geo.sigmoid": "jax.nn.sigmoid",
        "geo.relu": "jax.nn.relu",
        "geo.softplus": "jax.nn.softplus",
        "geo.exp": "jnp.exp",
        "geo.log": "jnp.log",
        "geo.sqrt": "jnp.sqrt",
        "geo.sin": "jnp.sin",
        "geo.cos": "jnp.cos",
    },
    header=lambda source: [
        "import math",
        "",
        "import jax",
        "import jax.numpy as jnp",
        "",
        "from geomir.backends.jax import derivatives, model, runtime, taylor",
    ],
    dtype_name=lambda t: _DTYPES[str(t)],
)


def emit(module: builtin.ModuleOp, source_name: str, check_finite: bool = False) -> str:
    """JAX source for ``module`` (``check_finite``: see backends/common/finite.py; eager
    calls only, under jax.jit the values are tracers)."""
    return emit_python(module, FLAVOR, source_name, check_finite=check_finite)
