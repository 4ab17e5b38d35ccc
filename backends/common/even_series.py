"""Exact Taylor coefficients about q = 0 of the even ratio functions h(q) = f(z)/z, z = sqrt(q),
for the odd f = tanh, asinh, sin, sinh, atan (f'(0) = 1, so h(0) = 1).

Each function returns the first n coefficients as exact rationals. The runtime
(``manifolds.py``: its series branch) and the jet rules (``taylor.py``: series about 0
shifted to q_0) both read them here. Pure Python: no array library.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache


@cache
def tanhc_series(n: int) -> tuple[Fraction, ...]:
    """h = tanh(z)/z solves 2 q h' + h = 1 - q h^2 (from tanh' = 1 - tanh^2), so
    (2m + 1) a_m = [m = 0] - sum_(i+j=m-1) a_i a_j."""
    a: list[Fraction] = []
    for m in range(n):
        s = Fraction(1 if m == 0 else 0) - sum((a[i] * a[m - 1 - i] for i in range(m)), Fraction(0))
        a.append(s / (2 * m + 1))
    return tuple(a)


@cache
def asinhc_series(n: int) -> tuple[Fraction, ...]:
    """asinh(z)/z = sum (-1)^m (2m)! / (4^m (m!)^2 (2m+1)) q^m."""
    return tuple(Fraction((-1) ** m * math.comb(2 * m, m), 4 ** m * (2 * m + 1)) for m in range(n))


@cache
def sinc_series(n: int) -> tuple[Fraction, ...]:
    """sin(z)/z = sum (-1)^m q^m / (2m+1)!."""
    return tuple(Fraction((-1) ** m, math.factorial(2 * m + 1)) for m in range(n))


@cache
def sinhc_series(n: int) -> tuple[Fraction, ...]:
    """sinh(z)/z = sum q^m / (2m+1)!."""
    return tuple(Fraction(1, math.factorial(2 * m + 1)) for m in range(n))


@cache
def atanc_series(n: int) -> tuple[Fraction, ...]:
    """atan(z)/z = sum (-1)^m q^m / (2m+1)."""
    return tuple(Fraction((-1) ** m, 2 * m + 1) for m in range(n))
