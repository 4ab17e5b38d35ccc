"""Winding numbers of torus paths, written once, generic over an array namespace.

A path is an array of shape ``(..., T, m)``: T points on the flat torus T^m whose
coordinates are angles of period P (2π for radians, 1 for turns). Step t has the raw
difference δ_t = x_{t+1} - x_t, the branch k_t = floor(δ_t/P + 1/2) ∈ Z and the unwrapped
step d_t = δ_t - P k_t ∈ [-P/2, P/2), the shortest signed difference, which is the true
step exactly when the true step is shorter than half a period. The displacement
D = Σ d_t = (x_T - x_0) - P K, K = Σ k_t, is where the path lifted to R^m ends relative to
its start; it is computed in the second form, so it does not drift with T (a float sum of
the d_t did: off by up to 4 turns for 10^6 float32 steps). The winding vector w = round(D/P) ∈ Z^m
is computed as w = k_e - K, k_e = floor((x_T - x_0)/P + 1/2) the branch of the chord
x_0 -> x_T (round(D/P) = round((x_T - x_0)/P) - K as K is an integer); then D - wP = e, the
chord's shortest difference. For a closed loop D = kP exactly, so w = k; for an open path
w counts the net turns, independent of where the angles' cut lies.

Exact counting. k_t and k_e are integer-valued floats. A sum of integers whose magnitudes
total N <= 2^p (p = 24, 53, 11, 8 significand bits for float32, float64, float16,
bfloat16; 2^p = 2/eps) is exact in any order of additions: every partial sum is an
integer of magnitude <= N. If the computed N^ = Σ|k_t| + |k_e| is below 2^p, so is N (the
first inexact partial sum of a sum of non-negative terms exceeds 2^p and, rounding being
monotone, leaves every later one >= 2^p). So w, K and the running sums of ``unwrap`` are
exact while N^ < 2^p: wrapped angles cross the cut at most once a step, so any float32
path of fewer than 2^24 - 1 ≈ 1.7·10^7 points qualifies. Beyond, the margin is 0 (w is
not certified) and ``geomir.topology`` refuses the path eagerly.

Certified margin. Perturb every point by any δ'_t with |δ'_t|_inf <= ε (so any L2 ball of
radius ε too). A step, and the chord, change by at most 2ε per coordinate, so k_t keeps
its value while |d_t| + 2ε < P/2, k_e while |e| + 2ε < P/2, and then w = k_e - K stays.
Hence w cannot change for any ε below

    margin = min over coordinates and over c in (steps, chord) of  (P/2 - |d_c| - 3τ_c) / 2,

with d_chord = e and τ_c = 5 eps (|a| + |b| + P), a and b the two points of c: the
rounding bound of one step (``geomir.topology.step_rounding``, derived in docs/winding.md,
"Which steps are refused"). 3τ covers the float error for the path and for a perturbed
copy. With u = eps/2 and S = |a| + |b|: a computed d^ with |d^| < P/2 - τ has the exact
branch and |d^ - d| <= ρ = 3uS + 4uP; the perturbed copy has S' <= S + 2ε <= S + P/2
(ε <= margin <= P/4), exact |d'| <= |d| + 2ε, and, while that is below P/2 - 5uS' - uP/2,
the exact branch too, with |d^' - d'| <= ρ' = 3uS' + 4uP. It passes the eager check, and
keeps every branch, if |d^| + ρ + 2ε + ρ' < P/2 - τ', τ' = 10u(S' + P); as
ρ + ρ' + τ' <= 16uS + 24.5uP, and the margin's own arithmetic rounds by at most uP,
2ε <= P/2 - |d^| - 3τ suffices. Each term is local to two points: the margin does not
shrink with T or with K (the old allowance 2u((T+1)Σ|d_t| + 2Σ|x_t| + TP) did, to 0 at
T ≈ 2000 float32 steps). Both conditions are tight up to 3τ (at most 3.4·10^-5 rad for
wrapped float32 angles): a perturbation just above the margin that pushes the longest
step past P/2, or the chord (D) past the half-integer boundary, changes w. The margin is
0 where a step or the chord is within 3τ of half a period (its direction is ambiguous),
or N^ >= 2^p. A path of one point has D = 0, w = 0 and margin P/4 - 3τ/2.

Gradients: k_t, k_e are piecewise constant, so D = (x_T - x_0) - PK has the gradient of
Σ d_t, and ``unwrap`` that of x_0 + d_0 + ... + d_{t-1}. The functions act on axis -2
(steps) and -1 (coordinates) and broadcast over the leading axes; ``margin`` keeps a
trailing axis of size 1 like the other scalar results. No torch or jax import here: ``ops``
is an :class:`~geomir.backends.common.manifolds.ArrayOps`.
"""

from __future__ import annotations

from .manifolds import Array, ArrayOps

STEP_ROUNDING = 5.0
"""c in the per-step rounding bound τ = c·eps·(|a| + |b| + P) (docs/winding.md)."""
MARGIN_ROUNDING = 3 * STEP_ROUNDING
"""The margin subtracts 3τ from each step's and the chord's distance to P/2 (module docstring)."""


def _shortest(ops: ArrayOps, delta: Array, period: float) -> tuple[Array, Array]:
    """The shortest difference delta - P k in [-P/2, P/2) and its branch k = floor(delta/P + 1/2)."""
    k = ops.floor(delta / period + 0.5)
    return delta - period * k, k


def _chord(x: Array) -> Array:
    """x_T - x_0, keeping the step axis (size 1), (..., 1, m)."""
    return x[..., -1:, :] - x[..., :1, :]


def branches(ops: ArrayOps, x: Array, period: float) -> Array:
    """The integer-valued branches k_t of the steps, shape (..., T-1, m)."""
    return _shortest(ops, x[..., 1:, :] - x[..., :-1, :], period)[1]


def steps(ops: ArrayOps, x: Array, period: float) -> Array:
    """The unwrapped steps d_t in [-P/2, P/2), shape (..., T-1, m)."""
    return _shortest(ops, x[..., 1:, :] - x[..., :-1, :], period)[0]


def displacement(ops: ArrayOps, x: Array, period: float) -> Array:
    """D = (x_T - x_0) - P K = Σ d_t: where the lifted path ends relative to its start, (..., m)."""
    return _chord(x)[..., 0, :] - period * ops.sum_steps(branches(ops, x, period))


def winding(ops: ArrayOps, x: Array, period: float) -> Array:
    """w = round(D / P) = k_e - K, integer-valued (exact) in x's dtype, (..., m)."""
    k_end = _shortest(ops, _chord(x), period)[1][..., 0, :]
    return k_end - ops.sum_steps(branches(ops, x, period))


def unwrap(ops: ArrayOps, x: Array, period: float) -> Array:
    """The path lifted to R^m: x_t - P (k_0 + ... + k_{t-1}), shape (..., T, m). Equal to
    x_0 + d_0 + ... + d_{t-1}, but each point is rounded twice, not T times (no drift)."""
    turns = ops.cumsum_steps(branches(ops, x, period))
    return ops.concat_steps([x[..., :1, :], x[..., 1:, :] - period * turns])


def count_limit(ops: ArrayOps, x: Array) -> float:
    """2^p for x's dtype: the integer sums are exact while Σ|k_t| + |k_e| stays below it."""
    return 2.0 / ops.eps(x)


def margin(ops: ArrayOps, x: Array, period: float) -> Array:
    """The certified margin (module docstring), >= 0, shape (..., 1)."""
    first, last = x[..., :1, :], x[..., -1:, :]
    d, k = _shortest(ops, x[..., 1:, :] - x[..., :-1, :], period)
    e, k_end = _shortest(ops, last - first, period)
    length = ops.abs(ops.concat_steps([e, d]))  # the chord, then the steps
    size = ops.abs(ops.concat_steps([first, x[..., :-1, :]])) + ops.abs(ops.concat_steps([last, x[..., 1:, :]]))
    slack = (period / 2 - length) - MARGIN_ROUNDING * ops.eps(x) * (size + period)
    per_coord = -ops.max_steps(-slack) / 2  # (..., m)
    count = ops.sum_steps(ops.abs(ops.concat_steps([k_end, k])))  # (..., m)
    zero = ops.zeros_like(per_coord[..., :1])
    exact = -ops.min_last(-count) < count_limit(ops, x)
    return ops.where(exact, ops.maximum(ops.min_last(per_coord), zero), zero)
