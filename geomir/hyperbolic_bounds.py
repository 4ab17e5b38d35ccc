"""Curvature-aware Lipschitz factors of the Poincaré ball's maps (curvature -c), used by
``verify-contracts``. Distances on the ball are geodesic; tangent vectors at the origin and
Euclidean values use the Euclidean norm of their coordinates (as ``geo.coords`` reads them).
Each factor is a guaranteed upper bound, given an upper bound on how far the values are
from the origin (``radius``: d(0, x) for ball points, |v| for vectors; ``inf`` when
unknown). Conventions (geoopt's): expmap0(v) = tanh(sqrt(c)|v|) v / (sqrt(c)|v|), so
d(0, expmap0(v)) = 2|v| and the metric at the origin is 4 times the Euclidean one.

* ``logmap0`` is 1/2-Lipschitz everywhere: on a Hadamard manifold exp_0 never shrinks
  distances, so its inverse is 1-Lipschitz into (T_0, g_0), and |.|_{g_0} = 2|.|.
* ``expmap0`` on |v| <= r: the differential of exp_0 at w stretches the radial direction by 1
  and the transverse ones by sinh(sqrt(c) rho) / (sqrt(c) rho), rho = |w|_{g_0} = 2|w|
  (Jacobi fields in curvature -c); the segment between two vectors stays in the ball of
  radius r, so the factor is 2 * S(2 sqrt(c) r) with S(t) = sinh(t) / t.
* ``mobius_add`` x ⊕ y: y -> x ⊕ y is an isometry (a transvection). x -> x ⊕ y is
  tau_x(y), tau_x the transvection from 0 to x. Moving x at unit speed moves tau_x(y) along
  a Killing field K with |K(x)| = 1 whose rotational part at x, for the component of the
  motion perpendicular to the ray from 0, is the rotation about 0 minus the rotation about
  x: |nabla K(x)| <= sqrt(c) tanh(sqrt(c) d(0,x) / 2) (zero for radial motion). Along a
  geodesic a Killing field is a Jacobi field, so at distance s = d(x, x ⊕ y) = d(0, y)
  |K| <= cosh(sqrt(c) s) + |nabla K(x)| sinh(sqrt(c) s) / sqrt(c). Hence the factor
  cosh(sqrt(c) R_y) + tanh(sqrt(c) R_x / 2) sinh(sqrt(c) R_y), at most e^{sqrt(c) R_y}
  (balls are convex, so the path between two points keeps the radius bounds). Tests check
  it against the Jacobian of Möbius addition; it is tight to 0.2% at small radii.
"""

from __future__ import annotations

import math

INF = math.inf


def _sinhc(t: float) -> float:
    """sinh(t) / t (1 at 0; inf where it overflows)."""
    if t < 1e-8:
        return 1.0
    try:
        return math.sinh(t) / t
    except OverflowError:
        return INF


def _unknown(radius: float) -> bool:
    """A radius that bounds nothing: inf, or NaN (never a finite bound from it)."""
    return not radius < INF


def logmap0_factor(c: float) -> float:
    """Lipschitz factor of logmap0: geodesic distance -> Euclidean tangent coordinates."""
    return 0.5


def expmap0_factor(c: float, radius: float) -> float:
    """Lipschitz factor of expmap0 on tangent vectors with |v| <= radius."""
    if _unknown(radius):
        return INF
    return 2.0 * _sinhc(2.0 * math.sqrt(c) * radius)


def mobius_add_factors(c: float, radius_x: float, radius_y: float) -> tuple[float, float]:
    """Lipschitz factors of (x, y) -> x ⊕ y in x and in y, for d(0, x) <= radius_x and
    d(0, y) <= radius_y (geodesic distances on both sides)."""
    if _unknown(radius_y):
        return INF, 1.0
    if _unknown(radius_x):
        radius_x = INF
    s = math.sqrt(c)
    try:
        in_x = math.cosh(s * radius_y) + math.tanh(s * radius_x / 2.0) * math.sinh(s * radius_y)
    except OverflowError:
        in_x = INF
    return in_x, 1.0


def ball_coords_norm(c: float, radius: float) -> float:
    """|x| (Euclidean, of the coordinates) for d(0, x) <= radius: tanh(sqrt(c) R / 2) / sqrt(c)."""
    s = math.sqrt(c)
    return (1.0 if _unknown(radius) else math.tanh(s * radius / 2.0)) / s


def lorentz_coords_factor(c: float, radius: float) -> float:
    """Lipschitz factor of the ambient coordinates of hyperboloid points (geodesic distance ->
    Euclidean distance in R^(n+1)) for d(o, x) <= radius: sqrt(cosh(2 sqrt(c) R)). A unit
    tangent v at x (<v, v>_L = 1) has |v|^2 = 1 + 2 v_0^2 and v_0^2 <= c |x_s|^2 =
    sinh^2(sqrt(c) d(o, x)); geodesic balls are convex, so the path keeps the bound.
    Unbounded without a radius: the coordinates grow like e^(sqrt(c) d(o, x))."""
    if _unknown(radius):
        return INF
    try:
        return math.sqrt(math.cosh(2.0 * math.sqrt(c) * radius))
    except OverflowError:
        return INF


def lorentz_coords_norm(c: float, radius: float) -> float:
    """|x| (Euclidean, ambient) for d(o, x) <= radius: sqrt(cosh(2 sqrt(c) R) / c)."""
    factor = lorentz_coords_factor(c, radius)
    return factor / math.sqrt(c) if factor < INF else INF


def ball_radius_of_tangent(radius: float) -> float:
    """d(0, expmap0(v)) for |v| <= radius."""
    return 2.0 * radius


def tangent_radius_of_ball(radius: float) -> float:
    """|logmap0(x)| for d(0, x) <= radius."""
    return radius / 2.0
