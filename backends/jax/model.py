"""Parameters of generated JAX code: a flat dict pytree {name: array}."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

import numpy as np

from geomir.backends.common.autodiff import InputSpec, ModelInputError, check_call, checked_function
from geomir.backends.common.init import ParamSpec, check_seed, draw, select
from geomir.backends.common.weights import apply, deployed, for_dtype

__all__ = ["InputSpec", "ModelInputError", "ParamSpec", "checked", "init_params", "transform_params"]


def _value(name: str, spec: ParamSpec, seed: int, dtype):
    dtype = dtype or spec.dtype or jnp.float32
    value = jnp.asarray(for_dtype(draw(name, spec, seed), jnp.dtype(dtype).name), dtype=dtype)  # as proved
    if spec.manifold is not None:  # a tangent at the origin -> a point (same steps as torch)
        value = spec.manifold.expmap0(spec.manifold.proju(spec.manifold.origin_like(value), value))
    return value


def _needs_x64(dtype, what: str) -> None:
    """Refuse a dtype this JAX would truncate (float64 without x64: jnp.asarray gives float32
    with only a warning)."""
    if jax.dtypes.canonicalize_dtype(dtype) != jnp.dtype(dtype):
        raise ModelInputError(f"init_params: {what} {jnp.dtype(dtype).name} needs 64-bit JAX "
                              "(jax.config.update('jax_enable_x64', True) before creating arrays); "
                              f"without it JAX would give {jax.dtypes.canonicalize_dtype(dtype).name}")


def init_params(specs: dict[str, ParamSpec], seed: int = 0, dtype=None, names=None) -> dict:
    """Initial parameters as a dict pytree that jax.jit and jax.grad accept."""
    seed = check_seed(seed)
    if dtype is not None and not _is_float(dtype):
        raise ModelInputError(f"init_params: dtype must be a floating dtype (jnp.float32, ...), found {dtype}")
    chosen = select(specs, names)
    if dtype is not None:
        _needs_x64(dtype, "dtype")
    else:  # the declared dtypes: a model declared in f64 is refused as init_params(dtype=f64) is
        for name, spec in chosen.items():
            if spec.dtype is not None:
                _needs_x64(spec.dtype, f"parameter {name!r} declared")
    return {name: _value(name, spec, seed, dtype) for name, spec in chosen.items()}


def checked(function, param_names: list[str], inputs: tuple[InputSpec, ...]):
    """``function`` (a generated model) checking its params and inputs at each call (under
    jax.jit at trace time: shapes and dtypes are static). The parameters' declared dtypes
    are read from the module's PARAMS."""
    specs = function.__globals__.get("PARAMS", {})
    declared = {n: getattr(specs.get(n), "dtype", None) for n in param_names}
    check = functools.partial(check_call, function.__name__, declared, inputs, _is_array, _is_float, "JAX array",
                              _broadcast_to)

    def check_x64(params, args):
        out = check(params, args)
        _no_truncation(function.__name__, declared, inputs, params, args)
        return out

    return checked_function(function, check_x64)


def _no_truncation(model: str, declared, inputs, params, args) -> None:
    """Refuse a float64 parameter or input that this JAX would compute in float32 (x64 off:
    jnp converts it silently), as init_params refuses to build one."""
    if jax.dtypes.canonicalize_dtype(np.float64) == np.float64:
        return  # x64 on: nothing is truncated
    wide = [f"parameter '{n}'" for n in declared if params[n].dtype == np.float64]
    wide += [f"input '{spec.name}' ({spec.text})" for spec, x in zip(inputs, args) if x.dtype == np.float64]
    if wide:
        raise ModelInputError(f"{model}: {wide[0]} is float64, which needs 64-bit JAX "
                              "(jax.config.update('jax_enable_x64', True) before creating arrays); without it "
                              "JAX would compute in float32: give float32 arrays or enable x64")


def _is_array(x) -> bool:
    """A JAX array (or tracer) or a numpy array; not a torch tensor (which has shape and dtype too)."""
    return hasattr(x, "shape") and hasattr(x, "dtype") and not type(x).__module__.startswith("torch")


def _is_float(dtype) -> bool:
    try:
        return jnp.issubdtype(dtype, jnp.floating)
    except TypeError:
        return False


def _broadcast_to(x, shape: tuple):
    return jnp.broadcast_to(x, shape)


def transform_params(specs: dict[str, ParamSpec], params: dict) -> dict:
    """Trained ``params`` after the recorded quantization/pruning (geomc --quantize/--prune),
    the weights ``verify-contracts{weights=...}`` proved; other parameters unchanged. The
    transforms run in NumPy on concrete arrays: call it on the trained params, outside
    ``jax.jit`` (inside, the deployed params are an input of the jitted function)."""
    out = dict(params)
    for name, spec in specs.items():
        ts = deployed(spec.transforms)
        if ts and name in params:
            if isinstance(params[name], jax.core.Tracer):
                raise ModelInputError(f"transform_params: parameter '{name}' is traced by a JAX transformation "
                                      "(jax.jit, jax.grad, ...); the transforms run in NumPy on concrete arrays: "
                                      "call transform_params on the trained params outside it and pass the result in")
            dtype = params[name].dtype
            new = for_dtype(apply(np.asarray(params[name], dtype=np.float64), ts), jnp.dtype(dtype).name)  # as proved
            out[name] = jnp.asarray(new, dtype=dtype)
    return out
