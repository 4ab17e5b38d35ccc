"""Cross-check against geoopt (float64) on the operations where its conventions match ours.

geoopt differs on purpose in a few places, so those are not compared (docs/numerics.md):
  * its ball projection keeps sqrt(c)|x| <= 1 - 1e-5 in float64 (ours 1 - 1e-15) and its
    artanh clamps at 1 - 1e-7: inputs stay within hyperbolic radius 3 and geoopt's
    ``project=False`` is used; ``projx`` of far-away points is compared at 2e-5;
  * its ball ``retr`` is proj(x + u) (ours: expmap);
  * its sphere ``transp`` is the projection proju(y, v), a vector transport (ours: parallel);
  * its Lorentz(k) is our Lorentz(c) with k = 1/c (same origin (sqrt(k), 0, ...)); its
    PoincareBall stores c in the default dtype (float32), so c is passed as a float64 tensor.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomir.backends.torch import runtime as R

from . import CURVATURES, ball_points, lorentz_points, sphere_points, tangents

geoopt = pytest.importorskip("geoopt")

N, DIM = 32, 6
F64 = torch.float64


def t(a):
    return torch.as_tensor(np.asarray(a), dtype=F64)


def agree(ours, theirs, what, rtol=1e-10):
    ours, theirs = ours.reshape(ours.shape[0], -1), theirs.reshape(theirs.shape[0], -1)
    scale = theirs.abs().max(-1).values.clamp(min=1e-3 * float(theirs.abs().max()) + 1e-300)
    err = float(((ours - theirs).abs().max(-1).values / scale).max())
    assert err <= rtol, f"{what}: differs from geoopt by {err:.2e} > {rtol:.0e}"


@pytest.mark.parametrize("c", CURVATURES)
def test_poincare_ball(c):
    rng = np.random.default_rng(0)
    ours, g = R.PoincareBall(c), geoopt.PoincareBall(c=torch.tensor(c, dtype=F64))
    xn = ball_points(rng, N, DIM, c, 3.0)
    x, y = t(xn), t(ball_points(rng, N, DIM, c, 3.0))
    u, v = t(tangents(rng, "poincare", c, xn, 1.0)), t(tangents(rng, "poincare", c, xn, 1.0))
    r, W = t(rng.uniform(-2, 2, (N, 1))), t(rng.standard_normal((4, DIM)))
    nop = {"project": False}
    agree(ours.expmap(x, u), g.expmap(x, u, **nop), "expmap")
    agree(ours.logmap(x, y), g.logmap(x, y), "logmap")
    agree(ours.expmap0(u), g.expmap0(u, **nop), "expmap0")
    agree(ours.logmap0(y), g.logmap0(y), "logmap0")
    agree(ours.dist(x, y), g.dist(x, y, keepdim=True), "dist")
    agree(ours.mobius_add(x, y), g.mobius_add(x, y, **nop), "mobius_add")
    agree(ours.mobius_scalar(r, x), g.mobius_scalar_mul(r, x, **nop), "mobius_scalar_mul")
    agree(ours.mobius_matvec(W, x), g.mobius_matvec(W, x, **nop), "mobius_matvec")
    agree(ours.transp(x, y, u), g.transp(x, y, u), "transp")
    agree(ours.gyration(x, y, u), g.gyration(x, y, u), "gyration")
    agree(ours.egrad2rgrad(x, u), g.egrad2rgrad(x, u), "egrad2rgrad")
    agree(ours.proju(x, u), g.proju(x, u), "proju")
    agree(ours.inner(x, u, v), g.inner(x, u, v, keepdim=True), "inner")
    agree(ours.norm(x, u), g.norm(x, u, keepdim=True), "norm")
    agree(ours.lambda_x(x), g.lambda_x(x, keepdim=True), "lambda_x")
    agree(ours.proj(x), g.projx(x), "projx inside")
    far = 3.0 * x / x.norm(dim=-1, keepdim=True)
    agree(ours.proj(far), g.projx(far), "projx outside (boundary eps 1e-15 vs 1e-5)", rtol=2e-5)


@pytest.mark.parametrize("c", CURVATURES)
def test_lorentz(c):
    rng = np.random.default_rng(1)
    ours, g = R.Lorentz(c), geoopt.Lorentz(k=torch.tensor(1.0 / c, dtype=F64))
    xn = lorentz_points(rng, N, DIM, c, 3.0)
    x, y = t(xn), t(lorentz_points(rng, N, DIM, c, 3.0))
    u, v = t(tangents(rng, "lorentz", c, xn, 1.0)), t(tangents(rng, "lorentz", c, xn, 1.0))
    o = ours.origin_like(x)
    u0 = ours.proju(o, u)  # tangent at the origin: u0[..., 0] = 0
    agree(o, g.origin(x.shape, dtype=F64), "origin")
    agree(ours.expmap(x, u), g.expmap(x, u), "expmap", rtol=1e-9)
    agree(ours.logmap(x, y), g.logmap(x, y), "logmap", rtol=1e-9)
    agree(ours.expmap0(u0), g.expmap0(u0), "expmap0")
    agree(ours.logmap0(y), g.logmap0(y), "logmap0", rtol=1e-9)
    agree(ours.dist(x, y), g.dist(x, y, keepdim=True), "dist", rtol=1e-9)
    agree(ours.transp(x, y, u), g.transp(x, y, u), "transp", rtol=1e-9)
    agree(ours.proj(x + 0.1 * v), g.projx(x + 0.1 * v), "projx")
    agree(ours.proju(x, y), g.proju(x, y), "proju")
    agree(ours.egrad2rgrad(x, y), g.egrad2rgrad(x, y.clone()), "egrad2rgrad")  # geoopt edits in place
    agree(ours.inner(x, u, v), g.inner(x, u, v, keepdim=True), "inner")
    agree(ours.norm(x, u), g.norm(u, keepdim=True), "norm")


def test_sphere():
    rng = np.random.default_rng(2)
    ours, g = R.Sphere(), geoopt.Sphere()
    xn = sphere_points(rng, N, DIM)
    x, y = t(xn), t(sphere_points(rng, N, DIM))
    u = t(tangents(rng, "sphere", None, xn, 1.0))
    a = t(rng.standard_normal((N, DIM)))
    agree(ours.expmap(x, u), g.expmap(x, u), "expmap")
    agree(ours.logmap(x, y), g.logmap(x, y), "logmap", rtol=1e-9)
    agree(ours.dist(x, y), g.dist(x, y, keepdim=True), "dist", rtol=1e-9)
    agree(ours.retr(x, u), g.retr(x, u), "retr")
    agree(ours.proj(a), g.projx(a), "projx")
    agree(ours.proju(x, a), g.proju(x, a), "proju")
    agree(ours.egrad2rgrad(x, a), g.egrad2rgrad(x, a), "egrad2rgrad")
    agree(ours.inner(x, u, a), g.inner(x, u, a, keepdim=True), "inner")
    # geoopt's transp is a vector transport (projection); parallel transport agrees with it
    # only to first order in the distance
    y_near = ours.expmap(x, 1e-4 * u)
    agree(ours.transp(x, y_near, u), g.transp(x, y_near, u), "transp (first order)", rtol=1e-7)


def test_euclidean():
    rng = np.random.default_rng(3)
    ours, g = R.Euclidean(), geoopt.Euclidean(ndim=1)
    x, y, u = (t(rng.standard_normal((N, DIM))) for _ in range(3))
    agree(ours.expmap(x, u), g.expmap(x, u), "expmap")
    agree(ours.logmap(x, y), g.logmap(x, y), "logmap")
    agree(ours.dist(x, y), g.dist(x, y, keepdim=True), "dist")
    agree(ours.transp(x, y, u), g.transp(x, y, u), "transp")
    agree(ours.egrad2rgrad(x, u), g.egrad2rgrad(x, u), "egrad2rgrad")
    agree(ours.inner(x, u, y), g.inner(x, u, y, keepdim=True), "inner")
