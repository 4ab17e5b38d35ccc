"""Winding numbers of torus paths, written once, generic over an array namespace.

A path is an array of shape ``(..., T, m)``: T points on the flat torus T^m whose
coordinates are angles of period P (2π for radians, 1 for turns). Unwrapping takes each
step as the shortest signed difference d_t = x_{t+1} - x_t - P*round(...) in [-P/2, P/2),
which is the true step exactly when the true step is shorter than half a period. The
displacement D = sum_t d_t is the endpoint of the path lifted to R^m, minus its start, and
the winding vector is w = round(D / P) in Z^m: for a closed loop D = kP exactly, so w = k;
for an open path w counts the net turns, independent of where the angles' cut lies.

Certified margin. Perturb every point by any delta_t with |delta_t|_inf <= eps (so any
L2 ball of radius eps too). A step changes by delta_{t+1} - delta_t, at most 2 eps per
coordinate, so unwrapping keeps each step's branch while |d_t| + 2 eps < P/2; then the
displacement changes by delta_T - delta_0, at most 2 eps, so w stays while
|D - wP| + 2 eps < P/2. Hence w cannot change for any eps below

    margin = min over coordinates of  min(P/2 - max_t |d_t|,  P/2 - |D - wP|) / 2

less a rounding allowance that covers the floating-point error of computing the steps and
their sum twice (once for the path, once for a perturbed copy): 2u((T+1) sum|d_t| +
2 sum|x_t| + T P) per coordinate, u the unit roundoff of the dtype. Both bounds are tight:
a perturbation just above the margin that pushes the longest step past P/2, or D past the
half-integer boundary, changes w. The margin is 0 (uncertified) when a step is within
rounding of half a period, where its direction is ambiguous. A path of one point has
D = 0, w = 0 and margin P/4.

The functions act on axis -2 (steps) and -1 (coordinates) and broadcast over the leading
axes; ``margin`` keeps a trailing axis of size 1 like the other scalar results. No torch
or jax import here: ``ops`` is an :class:`~geomir.backends.common.manifolds.ArrayOps`.
"""

from __future__ import annotations

from .manifolds import Array, ArrayOps


def steps(ops: ArrayOps, x: Array, period: float) -> Array:
    """The unwrapped steps d_t in [-P/2, P/2), shape (..., T-1, m)."""
    d = x[..., 1:, :] - x[..., :-1, :]
    return d - period * ops.floor(d / period + 0.5)


def displacement(ops: ArrayOps, x: Array, period: float) -> Array:
    """D = sum of the unwrapped steps: where the lifted path ends relative to its start, (..., m)."""
    return ops.sum_steps(steps(ops, x, period))


def winding(ops: ArrayOps, x: Array, period: float) -> Array:
    """w = round(D / P), integer-valued in x's dtype, (..., m)."""
    return ops.floor(displacement(ops, x, period) / period + 0.5)


def unwrap(ops: ArrayOps, x: Array, period: float) -> Array:
    """The path lifted to R^m: x_0 followed by x_0 + d_0 + ... + d_t, shape (..., T, m)."""
    d = steps(ops, x, period)
    return ops.concat_steps([x[..., :1, :], x[..., :1, :] + ops.cumsum_steps(d)])


def step_slack(ops: ArrayOps, x: Array, period: float) -> Array:
    """P/2 - max_t |d_t| per coordinate, (..., m): how far the longest step is from the
    unwrapping limit (P/2 for a path of one point)."""
    d = ops.abs(steps(ops, x, period))
    zero = x[..., :1, :] * 0.0
    return period / 2 - ops.max_steps(ops.concat_steps([zero, d]))


def rounding_allowance(ops: ArrayOps, x: Array, period: float) -> Array:
    """The floating-point slack subtracted from the margin, per coordinate, (..., m)."""
    n = x.shape[-2]
    d = ops.abs(steps(ops, x, period))
    return 2.0 * ops.eps(x) * ((n + 1) * ops.sum_steps(d) + 2.0 * ops.sum_steps(ops.abs(x)) + n * period)


def margin(ops: ArrayOps, x: Array, period: float) -> Array:
    """The certified margin (module docstring), >= 0, shape (..., 1)."""
    disp = displacement(ops, x, period)
    w = ops.floor(disp / period + 0.5)
    round_slack = period / 2 - ops.abs(disp - w * period)
    per_coord = ops.minimum(step_slack(ops, x, period), round_slack) / 2 - rounding_allowance(ops, x, period)
    return ops.maximum(ops.min_last(per_coord), ops.zeros_like(per_coord[..., :1]))
