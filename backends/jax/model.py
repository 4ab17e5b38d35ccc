"""Parameters of generated JAX code: a flat dict pytree {name: array}."""

from __future__ import annotations

import jax.numpy as jnp

from geomir.backends.common.init import ParamSpec, draw, select

__all__ = ["ParamSpec", "init_params"]


def _value(name: str, spec: ParamSpec, seed: int, dtype):
    dtype = dtype or spec.dtype or jnp.float32
    value = jnp.asarray(draw(name, spec, seed), dtype=dtype)
    if spec.manifold is not None:  # a tangent at the origin -> a point (same steps as torch)
        value = spec.manifold.expmap0(spec.manifold.proju(spec.manifold.origin_like(value), value))
    return value


def init_params(specs: dict[str, ParamSpec], seed: int = 0, dtype=None, names=None) -> dict:
    """Initial parameters as a dict pytree that jax.jit and jax.grad accept."""
    return {name: _value(name, spec, seed, dtype) for name, spec in select(specs, names).items()}
