"""Jets of the quadric manifold maps: the unit sphere and the hyperboloid (Lorentz model).

The formulas, clamps and conventions are those of ``manifolds._Quadric``, ``manifolds.Sphere``
and ``manifolds.Lorentz``, composed from a table of jet rules (``taylor.RULES`` for ordinary
jets, ``taylor.COLLAPSED_RULES`` for Laplacian jets), like ``taylor.PoincareBall``. No torch
or jax import here; ``geomir.backends.torch.taylor`` and ``geomir.backends.jax.taylor`` bind
them (``taylor.Sphere()``, ``taylor.Lorentz(c=1.5)``). docs/jets.md has the formulas and the
measured accuracy.

Even functions
--------------
The exponential maps take the squared norm q = c<v, v>_M, never the norm, and the even
functions cos(sqrt q) (``cosq``), sin(sqrt q)/sqrt q (``sinc``), cosh(sqrt q) (``coshq``) and
sinh(sqrt q)/sqrt q (``sinhc``), which are analytic in q: their jets are exact along
curves through (or near) v = 0. The sphere's angles are atan2 of two norms, written with
the even ratio atan(sqrt w)/sqrt w (``atanc``) at w <= 1, and the hyperboloid's log factor
is ``asinhc``: the logarithmic maps are analytic where the two points meet.

Conventions where no Taylor series exists (masks from coefficient 0)
--------------------------------------------------------------------
* ``dist`` is a norm. Where the two curves meet it returns the runtime's value (0) and
  zero derivatives (``sqrt0``), as ``PoincareBall.dist``. At antipodal sphere points the
  same holds for |x + y|: the distance is pi with zero derivatives.
* Sphere ``logmap``/``transp`` at antipodal points (|x + y|^2 below ``min_den``, where the
  runtime clamps it) and ``logmap0`` at the antipode of the origin (|y_s|^2 < tiny, y_0 < 0):
  the value is the runtime's, every derivative is 0, no NaN.
* ``proj`` of the sphere sends the zero vector to the origin (constant jet).
* Lorentz exponentials cap q at max_hyp_z^2 as the runtime's ``_cap`` does: where q_0 is over
  the cap, v is scaled by sqrt(qmax/q) (a jet) and q is the constant qmax (``clamp``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import manifolds as _m
from .taylor import RULES, JetManifold, JetOps


class _Quadric(JetManifold):
    """{x : <x, x>_M = sigma/c}; the shared formulas of ``manifolds._Quadric`` on jets:
      expmap = proj(cos_sigma(z) x + sin_sigma(z)/z v),  z^2 = q = c <v, v>_M
      logmap = f(l2) (u + sigma (c/2) l2 x),   u = y - x, l2 = <u, u>_M
      transp = v - 2 <y, v>_M / <x+y, x+y>_M (x + y)."""

    sigma = 1.0

    def __init__(self, ops: JetOps, c: float = 1.0, rules: dict[str, Callable] = RULES):
        super().__init__(ops, rules)
        self.c = _m._check_curvature(c)
        self.sqrt_c = math.sqrt(self.c)

    origin_of = _m._Quadric.origin_like  # e0 / sqrt(c), the runtime's formula

    # -- structure: the last axis of either kind of jet (JetManifold._parts) ----------------
    def _head(self, x):
        """Coordinate 0, shape (..., 1)."""
        return self._parts(lambda a: a[..., :1], x)

    def _tail(self, x):
        """Coordinates 1..n-1."""
        return self._parts(lambda a: a[..., 1:], x)

    def _concat(self, a, b):
        """Concatenate along the last axis, the batch axes broadcast first."""
        o = self.ops
        return self._parts(
            lambda u, v: o.concat([u + o.zeros_like(v[..., :1]), v + o.zeros_like(u[..., :1])]), a, b)

    def _safe(self, mask, x, value: float):
        """x where mask, the constant jet ``value`` elsewhere (a safe argument)."""
        J = self.J
        return J.select(mask, x, J.bias(J.scale(x, 0.0), value))

    def _frozen(self, x):
        """x's value with every derivative 0 (where a map has no Taylor series)."""
        J = self.J
        return J.with_primal(J.scale(x, 0.0), J.primal(x))

    def _consts(self, x):
        return self.ops.consts(self.J.primal(x))

    # -- hooks (as manifolds._Quadric) ------------------------------------------------------
    def _mdot(self, u, v):
        raise NotImplementedError

    def _msq(self, u):
        """<u, u>_M (one squared-norm rule where the form is definite)."""
        return self._mdot(u, u)

    def _cos_sinc(self, q):
        raise NotImplementedError

    def _cap(self, v, q):
        return v, q

    def _log_factor(self, x, y, l2):
        raise NotImplementedError

    def _sum_sq(self, x, y, l2):
        raise NotImplementedError

    def _log0_factor(self, y0, r2):
        raise NotImplementedError

    # -- shared formulas ---------------------------------------------------------------------
    def origin_like(self, x):
        """The constant jet of the origin (1/sqrt(c), 0, ...), shaped like x."""
        o, J = self.ops, self.J
        x0 = J.primal(x)
        e0 = o.concat([o.full_like(x0[..., :1], 1.0 / self.sqrt_c), o.zeros_like(x0[..., 1:])])
        return J.with_primal(J.scale(x, 0.0), e0)

    def inner(self, x, u, v=None):
        return self._msq(u) if v is None else self._mdot(u, v)

    def area_form(self, x, u, w):
        """sqrt(c) det[x, u, w] (2-dimensional quadrics in R^3), as the runtime's."""
        J, c = self.J, self._coord

        def minor(i, j):
            return J.sub(J.mul(c(u, i), c(w, j)), J.mul(c(u, j), c(w, i)))

        det = J.add(J.sub(J.mul(c(x, 0), minor(1, 2)), J.mul(c(x, 1), minor(0, 2))), J.mul(c(x, 2), minor(0, 1)))
        return J.scale(det, self.sqrt_c)

    def proju(self, x, u):
        """u - sigma c <x, u>_M x."""
        J = self.J
        return J.sub(u, J.mul(J.scale(self._mdot(x, u), self.sigma * self.c), x))

    def _chord(self, x, y):
        J = self.J
        u = J.sub(y, x)
        return u, J.clamp(self._msq(u), lo=0.0)

    def expmap(self, x, v):
        """proj(cos_sigma(z) x + sin_sigma(z)/z v), q = z^2 = c max(<v, v>_M, 0) (capped)."""
        J = self.J
        v, q = self._cap(v, J.scale(J.clamp(self._msq(v), lo=0.0), self.c))
        cos, sinc = self._cos_sinc(q)
        return self.proj(J.add(J.mul(cos, x), J.mul(sinc, v)))

    def expmap0(self, v):
        """(cos_sigma(z)/sqrt(c), sin_sigma(z)/z v_s), q = c|v_s|^2; v_0 is ignored."""
        J = self.J
        vs = self._tail(v)
        vs, q = self._cap(vs, J.scale(J.sqnorm(vs), self.c))
        cos, sinc = self._cos_sinc(q)
        return self._concat(J.scale(cos, 1.0 / self.sqrt_c), J.mul(sinc, vs))

    def logmap(self, x, y):
        """f(l2) (u + sigma (c/2) l2 x)."""
        J = self.J
        u, l2 = self._chord(x, y)
        return J.mul(self._log_factor(x, y, l2), J.add(u, J.scale(J.mul(l2, x), self.sigma * 0.5 * self.c)))

    def logmap0(self, y):
        """(0, angle(o, y)/|y_s| y_s)."""
        J = self.J
        ys = self._tail(y)
        return self._concat(J.scale(self._head(y), 0.0), J.mul(self._log0_factor(self._head(y), J.sqnorm(ys)), ys))

    def transp(self, x, y, v):
        """v - (2 <y, v>_M / <x+y, x+y>_M) (x + y)."""
        J = self.J
        _, l2 = self._chord(x, y)
        k = J.div(J.scale(self._mdot(y, v), 2.0), self._sum_sq(x, y, l2))
        return J.sub(v, J.mul(k, J.add(x, y)))


class Sphere(_Quadric):
    """Unit sphere S^(n-1) in R^n, origin e0 (``manifolds.Sphere``). Angles are atan2 of the
    chord |x - y| and the co-chord |x + y|, written with ``atanc`` at a ratio <= 1."""

    sigma = 1.0

    def __init__(self, ops: JetOps, rules: dict[str, Callable] = RULES):
        super().__init__(ops, 1.0, rules)

    def _mdot(self, u, v):
        return self.J.sum_last(self.J.mul(u, v))

    def _msq(self, u):
        return self.J.sqnorm(u)

    def _cos_sinc(self, q):
        return self.J.cosq(q), self.J.sinc(q)

    def _co2(self, x, y):
        """|x + y|^2 floored at min_den (the runtime's clamp)."""
        J = self.J
        s2 = J.sqnorm(J.add(x, y))
        return J.clamp(s2, lo=self._consts(s2).min_den)

    def _antipodal(self, x, y):
        """Where the runtime's clamp of |x_0 + y_0|^2 is active (from the values only)."""
        o, J = self.ops, self.J
        s = J.primal(x) + J.primal(y)
        return o.sqnorm(s) < o.consts(s).min_den

    def _log_factor(self, x, y, l2):
        """The runtime's (4/h) atan2(l, h)/l (theta = 2 atan2(l, h), h^2 = co2 the clamped
        |x+y|^2), with atanc of a ratio <= 1: 4 atanc(l2/co2)/co2 where co2 >= l2
        (theta <= pi/2), 2 pi/sqrt(co2 l2) - 4 atanc(co2/l2)/l2 beyond."""
        J = self.J
        co2 = self._co2(x, y)
        near = J.primal(co2) >= J.primal(l2)
        c_n = self._safe(near, co2, 1.0)
        fwd = J.scale(J.div(J.atanc(J.div(self._safe(near, l2, 0.0), c_n)), c_n), 4.0)
        far = ~near
        l_f = self._safe(far, l2, 1.0)  # l2 > co2 >= min_den > 0 where used
        c_f = self._safe(far, co2, 0.5)
        back = J.sub(J.scale(J.pow(J.mul(c_f, l_f), -0.5), 2.0 * math.pi),
                     J.scale(J.div(J.atanc(J.div(c_f, l_f)), l_f), 4.0))
        return J.select(near, fwd, back)

    def logmap(self, x, y):
        """The shared formula; at antipodal points (|x+y|^2 < min_den) the runtime's value
        with zero derivatives."""
        out = super().logmap(x, y)
        return self.J.select(self._antipodal(x, y), self._frozen(out), out)

    def transp(self, x, y, v):
        """The shared formula; at antipodal points the runtime's value, zero derivatives."""
        out = super().transp(x, y, v)
        return self.J.select(self._antipodal(x, y), self._frozen(out), out)

    def _sum_sq(self, x, y, l2):
        return self._co2(x, y)

    def _atan2c(self, a2, b):
        """atan2(a, b)/a, a = sqrt(a2) >= 0, b of either sign, and the mask where it has no
        Taylor series (a_0 = 0 < -b_0: value pi/sqrt(tiny) as the runtime's clamp). With
        atanc(w) = atan(sqrt w)/sqrt w at w <= 1:
          |b| >= a: atanc(a2/b^2)/b, plus pi/a where b < 0
          |b| <  a: (pi/2)/a - b atanc(b^2/a2)/a2."""
        J = self.J
        a20, b0 = J.primal(a2), J.primal(b)
        tiny = self._consts(a2).tiny
        near = (b0 * b0 >= a20) & (b0 != 0)
        neg = near & (b0 < 0)
        b_n = self._safe(near, b, 1.0)
        f_near = J.div(J.atanc(J.div(self._safe(near, a2, 0.0), J.mul(b_n, b_n))), b_n)
        a2_neg = J.clamp(self._safe(neg, a2, 1.0), lo=tiny)
        f_near = J.add(f_near, J.select(neg, J.scale(J.pow(a2_neg, -0.5), math.pi), J.scale(f_near, 0.0)))
        a2_far = J.clamp(self._safe(~near, a2, 1.0), lo=tiny)
        b_far = self._safe(~near, b, 0.0)
        f_far = J.sub(J.scale(J.pow(a2_far, -0.5), 0.5 * math.pi),
                      J.div(J.mul(b_far, J.atanc(J.div(J.mul(b_far, b_far), a2_far))), a2_far))
        return J.select(near, f_near, f_far), neg & (a20 < tiny)

    def logmap0(self, y):
        """(0, atan2(|y_s|, y_0)/|y_s| y_s); at the antipode of the origin the runtime's
        value with zero derivatives."""
        J = self.J
        ys = self._tail(y)
        f, degenerate = self._atan2c(J.sqnorm(ys), self._head(y))
        out = J.mul(f, ys)
        out = J.select(degenerate, self._frozen(out), out)
        return self._concat(J.scale(self._head(y), 0.0), out)

    def dist(self, x, y):
        """2 atan2(|x-y|, |x+y|) with both norms through ``sqrt0``: 2 (a/b) atanc(a^2/b^2)
        where a <= b, pi - 2 (b/a) atanc(b^2/a^2) beyond. Where the curves meet (a = 0) the
        jet is 0 with zero derivatives, at antipodal points (b = 0) pi with zero derivatives."""
        J = self.J
        l2, h2 = J.sqnorm(J.sub(x, y)), J.sqnorm(J.add(x, y))
        a, b = J.sqrt0(l2), J.sqrt0(h2)
        l20, h20 = J.primal(l2), J.primal(h2)
        near = l20 <= h20
        ok_n = near & (h20 > 0)
        ok_f = ~near & (l20 > 0)
        h_n = self._safe(ok_n, h2, 1.0)
        b_n = self._safe(ok_n, b, 1.0)
        d_near = J.scale(J.mul(J.div(a, b_n), J.atanc(J.div(self._safe(ok_n, l2, 0.0), h_n))), 2.0)
        l_f = self._safe(ok_f, l2, 1.0)
        a_f = self._safe(ok_f, a, 1.0)
        d_far = J.bias(J.scale(J.mul(J.div(b, a_f), J.atanc(J.div(self._safe(ok_f, h2, 0.0), l_f))), -2.0), math.pi)
        return J.select(near, d_near, d_far)

    def proj(self, x):
        """x/|x|; the zero vector goes to the origin (constant jet)."""
        J = self.J
        q = J.sqnorm(x)
        pos = J.primal(q) > self._consts(q).tiny
        return J.select(pos, J.mul(x, J.pow(self._safe(pos, q, 1.0), -0.5)), self.origin_like(x))

    def retr(self, x, v):
        """proj(x + v) (the runtime's retraction)."""
        return self.proj(self.J.add(x, v))


class Lorentz(_Quadric):
    """Hyperboloid <x, x>_L = -1/c (``manifolds.Lorentz``), <u, v>_L = -u0 v0 + sum u_i v_i.
    The exponentials use coshq/sinhc of q = c<v, v>_L capped at max_hyp_z^2, the
    logarithms asinhc of the Minkowski chord, dist the runtime's asinh of ``sqrt0``."""

    sigma = -1.0

    def _mdot(self, u, v):
        J = self.J
        return J.sub(J.sum_last(J.mul(self._tail(u), self._tail(v))), J.mul(self._head(u), self._head(v)))

    def _msq(self, u):
        J = self.J
        h = self._head(u)
        return J.sub(J.sqnorm(self._tail(u)), J.mul(h, h))

    def _cos_sinc(self, q):
        return self.J.coshq(q), self.J.sinhc(q)

    def _cap(self, v, q):
        """Where q_0 > qmax = max_hyp_z^2: v sqrt(qmax/q) and q = qmax (mask from coefficient 0)."""
        J = self.J
        qmax = self._consts(q).max_hyp_z ** 2
        over = J.primal(q) > qmax
        scale = J.scale(J.pow(self._safe(over, q, 1.0), -0.5), math.sqrt(qmax))
        return J.select(over, J.mul(v, scale), v), J.clamp(q, hi=qmax)

    def _log_factor(self, x, y, l2):
        """asinhc(s2)/sqrt(1 + s2), s2 = c l2/4."""
        J = self.J
        s2 = J.scale(l2, 0.25 * self.c)
        return J.div(J.asinhc(s2), J.sqrt(J.bias(s2, 1.0)))

    def _sum_sq(self, x, y, l2):
        """<x+y, x+y>_L = -(4 + c l2)/c."""
        J = self.J
        return J.scale(J.bias(J.scale(l2, self.c), 4.0), -1.0 / self.c)

    def _log0_factor(self, y0, r2):
        return self.J.asinhc(self.J.scale(r2, self.c))

    def _chord(self, x, y):
        """(y - x, l2) with l2 the runtime's (``manifolds.Lorentz._chord``): the squared
        chord of the points' images in the Poincaré ball, its form picked from coefficient 0
        (the plain <u, u>_L cancelled squares of far coordinates)."""
        J, o, sc = self.J, self.ops, self.sqrt_c
        x0, y0, xs, ys = self._head(x), self._head(y), self._tail(x), self._tail(y)
        p0, q0 = J.primal(x0), J.primal(y0)
        near = o.abs(q0 - p0) <= o.minimum(p0, q0)
        q = J.select(near, J.sub(ys, xs), ys)
        qq = J.sqnorm(q)
        a = J.clamp(J.bias(J.scale(x0, sc), 1.0), lo=1.0)
        b = J.clamp(J.bias(J.scale(y0, sc), 1.0), lo=1.0)
        ra, rb = J.sqrt(a), J.sqrt(b)
        # near: y0 - x0 = (2<us, xs> + |us|^2)/(x0 + y0), from the spatial coordinates
        u0s = J.div(J.add(J.scale(J.sum_last(J.mul(q, xs)), 2.0), qq), J.clamp(J.add(x0, y0), lo=1.0 / sc))
        theta = J.select(near, J.scale(J.div(u0s, J.mul(ra, rb)), sc), J.div(rb, ra))
        return J.sub(y, x), J.sqnorm(J.sub(J.mul(theta, xs), J.mul(J.div(ra, rb), q)))

    def dist(self, x, y):
        """(2/sqrt(c)) asinh(sqrt(c)/2 sqrt0(l2)): 0 with zero derivatives where the curves
        meet."""
        J = self.J
        _, l2 = self._chord(x, y)
        return J.scale(J.asinh(J.scale(J.sqrt0(l2), 0.5 * self.sqrt_c)), 2.0 / self.sqrt_c)

    def proj(self, x):
        """(sqrt(1/c + |x_s|^2), x_s)."""
        J = self.J
        xs = self._tail(x)
        return self._concat(J.sqrt(J.bias(J.sqnorm(xs), 1.0 / self.c)), xs)
