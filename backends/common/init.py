"""Deterministic parameter initialisation, shared by every backend.

Values are drawn in float64 with NumPy from a generator seeded by ``(seed, crc32(name))``,
so a parameter's initial value depends only on the seed and its own name: the same on
torch and JAX, whatever other parameters a program has. Backends cast to their dtype.

Initialisers (``geo.param init``):
    glorot_uniform  U(-a, a), a = sqrt(6 / (fan_in + fan_out)); fan_in = last axis,
                    fan_out = first axis (a 1-D parameter has fan_in = fan_out = n)
    zeros           0 (for a manifold point: the manifold's origin)
    uniform_small   U(-1e-3, 1e-3) (for a manifold point: expmap0 of that tangent)
    normal          N(0, 1/n), n = size of the last axis
Manifold points are made from the drawn tangent vector at the origin by the backend
(projected to the tangent space at the origin, then expmap0).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from geomir.backends.common import weights
from geomir.backends.common.autodiff import ModelInputError

INITIALISERS = ("glorot_uniform", "zeros", "uniform_small", "normal")
UNIFORM_SMALL = 1e-3


@dataclass(frozen=True)
class ParamSpec:
    """What a generated module knows about one parameter."""

    shape: tuple[int, ...]
    init: str
    manifold: Any = None  # a runtime manifold object for points on a curved manifold
    dtype: Any = None  # the IR's element type as a backend dtype (None: backend default)
    transforms: tuple[str, ...] = ()  # weight transforms, in order (geomir.backends.common.weights)


def draw(name: str, spec: ParamSpec, seed: int) -> np.ndarray:
    """The float64 initial value (for manifold points: a tangent vector at the origin),
    after the spec's weight transforms (quantization, pruning)."""
    value = _draw(name, spec, seed)
    return weights.apply(value, spec.transforms) if spec.transforms else value


def _draw(name: str, spec: ParamSpec, seed: int) -> np.ndarray:
    if spec.init not in INITIALISERS:
        raise ValueError(f"unknown initialiser '{spec.init}' for parameter '{name}' (expected one of {', '.join(INITIALISERS)})")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    shape = spec.shape
    if spec.init == "zeros":
        return np.zeros(shape)
    if spec.init == "uniform_small":
        return rng.uniform(-UNIFORM_SMALL, UNIFORM_SMALL, shape)
    fan_in = shape[-1]
    if spec.init == "normal":
        return rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
    fan_out = shape[0] if len(shape) > 1 else shape[-1]
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape)


def check_seed(seed) -> int:
    """``seed`` as a Python int: a non-negative integer (a NumPy integer too; not a bool),
    else :class:`ModelInputError`."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return int(seed)
    if type(seed).__module__.split(".")[0] in ("jax", "jaxlib"):
        found = (f"a JAX array ({getattr(seed, 'dtype', '?')}, shape {tuple(getattr(seed, 'shape', ()))}): a JAX "
                 "array or PRNG key is not a seed; pass a Python integer (the one you would give jax.random.key)")
    elif isinstance(seed, (int, float, str, np.generic)) or seed is None:
        found = repr(seed)
    else:
        found = type(seed).__name__
    raise ModelInputError(f"init_params: seed must be a non-negative integer, found {found}")


def select(specs: dict[str, ParamSpec], names) -> dict[str, ParamSpec]:
    """The specs of ``names`` (all when None), with a clear error for an unknown name or a
    string where the list of names belongs."""
    if names is None:
        return dict(specs)
    if isinstance(names, str):
        raise ModelInputError(f"init_params: names must be a list of parameter names, found the string {names!r}")
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise KeyError(f"unknown parameter(s) {unknown}; this program has {sorted(specs)}")
    return {n: specs[n] for n in names}
