"""Jets of the holonomy's rotation angle (``JetManifold.holonomy_angle``: atan2 of the area
form and the metric between v and its transport around the loop) and of the ``atan2`` rule
behind it: against mpmath, nested torch.func.jvp of the runtime's ``holonomy_angle`` on
every 2-dimensional manifold, Hessian traces (the collapsed rules), JAX, and generated code
(jet-expand) against the autodiff reference."""

from __future__ import annotations

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import torch
from geomir.backends.jax import taylor as JT
from geomir.backends.torch import runtime as TR
from geomir.backends.torch import taylor as TT

import geomir

from . import (
    rel_err,
    torch_nested,
    x64,  # noqa: F401  (fixture: jax float64 in this module)
)

pytestmark = pytest.mark.usefixtures("x64")

RTOL = 1e-9

# --- atan2 -----------------------------------------------------------------------------------

# (a_0, b_0): every quadrant, both sides of the branch cut (b < 0, a = +-0), b_0 near 0
ATAN2_POINTS = [(0.3, 0.8), (0.7, -0.2), (-0.5, -0.6), (-0.2, 0.9), (1e-3, -1.0), (-1e-3, -1.0), (2.0, 1e-4)]


def _mp_atan2(a, b, K):
    """Normalized Taylor coefficients of atan2(a(t), b(t)) by mpmath (40 digits)."""
    mpmath.mp.dps = 40

    def poly(c, t):
        return sum(mpmath.mpf(float(x)) * t ** k for k, x in enumerate(c))

    return [float(c) for c in mpmath.taylor(lambda t: mpmath.atan2(poly(a, t), poly(b, t)), 0, K)]


def test_atan2_matches_mpmath():
    """Random polynomial curves through each point, K = 6: float64 <= 1e-12, float32 <= 1e-5
    (relative to the largest coefficient), and NaN derivatives at a_0 = b_0 = 0."""
    rng = np.random.default_rng(11)
    K = 6
    for a0, b0 in ATAN2_POINTS:
        a, b = rng.normal(size=K + 1) * 0.5, rng.normal(size=K + 1) * 0.5
        a[0], b[0] = a0, b0
        want = np.array(_mp_atan2(a, b, K))
        for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            got = TT.atan2(torch.tensor(a[:, None], dtype=dtype), torch.tensor(b[:, None], dtype=dtype))
            err = np.abs(got.double().numpy()[:, 0] - want).max() / np.abs(want).max()
            assert err <= tol, (a0, b0, dtype, err)
        jax_got = np.asarray(JT.atan2(jnp.asarray(a[:, None]), jnp.asarray(b[:, None])))[:, 0]
        np.testing.assert_allclose(jax_got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    zero, one = torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)
    at_zero = TT.atan2(TT.seed(zero, one, 2), TT.seed(zero, one, 2))  # moving through (0, 0), and resting there
    assert (at_zero[0] == 0).all() and torch.isnan(at_zero[1:, 0]).all() and (at_zero[1:, 1] == 0).all()


def test_collapsed_atan2_resting_at_zero_is_constant_with_finite_gradients():
    """Both inputs resting at 0 (the angle of a zero vector): f1 = f2 = 0, not NaN, and the
    gradient through the rule stays finite; elsewhere the Hessian trace."""
    x = torch.tensor([[0.0, 0.0], [0.3, -0.4]], dtype=torch.float64, requires_grad=True)
    C = TT.collapsed
    s = TT.laplacian_seed(x)
    mask = torch.tensor([[0.0], [1.0]], dtype=torch.float64)  # row 0: both inputs constant 0
    a = C.mul(C.sum_last(C.mul(s, s)), TT.laplacian_lift(mask, s))
    b = C.mul(C.sum_last(C.sin(s)), TT.laplacian_lift(mask, s))
    out = TT.laplacian_of(C.atan2(a, b))
    assert out[0, 0] == 0 and torch.isfinite(out).all()
    f = lambda z: torch.atan2((z * z).sum(-1, keepdim=True), torch.sin(z).sum(-1, keepdim=True))  # noqa: E731
    torch.testing.assert_close(out[1, 0], torch.func.hessian(f)(x[1].detach())[0].trace(), rtol=1e-12, atol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_collapsed_atan2_is_the_hessian_trace():
    """The collapsed rule (partials from the order-2 rule along three directions) against
    torch.func: f1 = the Jacobian along each basis direction, Laplacian = trace of the Hessian."""
    rng = np.random.default_rng(12)
    P, Q = (torch.tensor(rng.normal(size=(3, 2))) for _ in range(2))
    x = torch.tensor(rng.normal(size=(4, 3)))

    def f(x):
        return torch.atan2(torch.tanh(x @ P + 0.1), torch.sin(x @ Q) - 0.3)

    C = TT.collapsed
    s = TT.laplacian_seed(x)
    out = C.atan2(C.tanh(C.bias(C.linear(s, P.T), torch.tensor(0.1, dtype=torch.float64))),
                  C.bias(C.sin(C.linear(s, Q.T)), torch.tensor(-0.3, dtype=torch.float64)))
    hess = torch.func.vmap(torch.func.hessian(f))(x)  # (batch, out, in, in)
    jac = torch.func.vmap(torch.func.jacrev(f))(x)  # (batch, out, in)
    torch.testing.assert_close(out.f0, f(x), rtol=1e-14, atol=0)
    torch.testing.assert_close(out.f1, jac.permute(2, 0, 1), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(TT.laplacian_of(out), hess.diagonal(dim1=-2, dim2=-1).sum(-1), rtol=1e-12, atol=1e-14)


# --- holonomy_angle on the 2-dimensional manifolds --------------------------------------------

MANIFOLDS = {  # name -> (runtime, jets, ambient dimension)
    "euclidean": (TR.Euclidean(), lambda **k: TT.Euclidean(**k), 2),
    "torus": (TR.Torus(period=1.0), lambda **k: TT.Torus(period=1.0, **k), 2),
    "poincare c=1": (TR.PoincareBall(1.0), lambda **k: TT.PoincareBall(1.0, **k), 2),
    "poincare c=2.5": (TR.PoincareBall(2.5), lambda **k: TT.PoincareBall(2.5, **k), 2),
    "sphere": (TR.Sphere(), lambda **k: TT.Sphere(**k), 3),
    "lorentz c=1": (TR.Lorentz(1.0), lambda **k: TT.Lorentz(1.0, **k), 3),
    "lorentz c=0.4": (TR.Lorentz(0.4), lambda **k: TT.Lorentz(0.4, **k), 3),
}
JAX_MANIFOLDS = {"poincare c=1": lambda: JT.PoincareBall(1.0), "sphere": lambda: JT.Sphere(),
                 "lorentz c=1": lambda: JT.Lorentz(1.0)}


def _turn(M, ta, tb, tc, tv, on_jets=True):
    """The angle around the loop expmap0(ta) -> expmap0(tb) -> expmap0(tc) of v = tv (its
    projection to the first point's tangent plane on the quadrics); the same formula on jets
    and, with ``on_jets=False``, on arrays (the runtime's holonomy_angle(loop, v))."""
    a, b, c = M.expmap0(ta), M.expmap0(tb), M.expmap0(tc)
    v = M.proju(a, tv) if hasattr(M, "proju") else tv
    return M.holonomy_angle(a, b, c, v) if on_jets else M.holonomy_angle([a, b, c], v)


def _curves(rng, K, n, batch=3):
    """Quadratic curves (normalized coefficients >= 3 are 0: nested jvp of a higher-degree
    polynomial costs far more) of tangents at the origin (coordinate 0 is 0 on the quadrics,
    whose expmap0 ignores it) spread so the loops enclose real area, and a vector of unit
    norm at t = 0."""
    def j(scale):
        out = rng.normal(size=(K + 1, batch, n)) * scale
        out[3:] = 0.0
        if n == 3:
            out[..., 0] = 0.0
        return torch.tensor(out)

    v = j(1.0)
    v[0] /= v[0].norm(dim=-1, keepdim=True)  # |v_0| = 1: the angle of a vector near 0 is ill-conditioned
    return j(0.5), j(0.5), j(0.5), v


@pytest.mark.parametrize("which", sorted(MANIFOLDS))
def test_holonomy_angle_matches_nested_jvp_of_the_runtime(which):
    """Orders 1..3 against nested torch.func.jvp of the runtime (float64, <= 1e-9 relative;
    order 4 is checked through generated code below), float32 against float64; 0 on the
    flat manifolds, where transport is the identity."""
    runtime, jets, n = MANIFOLDS[which]
    rng = np.random.default_rng(len(which))
    K = 3
    curves = _curves(rng, K, n)
    ref = torch_nested(lambda *xs: _turn(runtime, *xs, on_jets=False), list(curves), K).numpy()
    ours = TT.to_derivatives(_turn(jets(), *curves)).numpy()
    assert np.isfinite(ref).all() and ours.shape == ref.shape
    if which in ("euclidean", "torus"):
        assert np.abs(ours).max() <= 1e-12 and np.abs(ref).max() <= 1e-12  # cross(v, v) = 0 up to rounding
        return
    assert np.abs(ref[0]).min() > 1e-3  # every loop turns v
    assert rel_err(ours, ref) <= RTOL, rel_err(ours, ref)
    f32 = TT.to_derivatives(_turn(jets(), *(c.float() for c in curves)))
    assert f32.dtype == torch.float32 and rel_err(f32.double().numpy(), ref) <= 1e-4
    if which in JAX_MANIFOLDS:
        jax_ours = np.asarray(JT.to_derivatives(_turn(JAX_MANIFOLDS[which](), *(jnp.asarray(c.numpy()) for c in curves))))
        assert rel_err(jax_ours, ours) <= 1e-12


@pytest.mark.parametrize("which", ["poincare c=2.5", "sphere", "lorentz c=1"])
def test_collapsed_holonomy_angle_is_the_hessian_trace(which):
    """The Laplacian jet of x -> angle around the loop expmap0(W x) -> b -> c (x in R^3)
    against the trace of torch.func.hessian of the runtime."""
    runtime, jets, n = MANIFOLDS[which]
    rng = np.random.default_rng(20 + len(which))
    W = torch.tensor(rng.normal(size=(n, 3)) * 0.4)
    if n == 3:
        W[0] = 0.0
    tb, tc = (torch.tensor(rng.normal(size=(4, n)) * 0.5) for _ in range(2))
    tv = torch.tensor(rng.normal(size=(4, n)))
    if n == 3:
        tb[:, 0] = tc[:, 0] = 0.0
    x = torch.tensor(rng.normal(size=(4, 3)))

    def f(x, tb, tc, tv):
        return _turn(runtime, x @ W.T, tb, tc, tv, on_jets=False)

    JM = jets(collapsed=True)
    lift = lambda u, like: TT.laplacian_lift(u, like)  # noqa: E731
    s = TT.laplacian_seed(x)
    ta = TT.collapsed.linear(s, W)
    out = _turn(JM, ta, lift(tb, ta), lift(tc, ta), lift(tv, ta))
    hess = torch.func.vmap(torch.func.hessian(f))(x, tb, tc, tv)[:, 0]
    torch.testing.assert_close(TT.laplacian_of(out)[:, 0], hess.diagonal(dim1=-2, dim2=-1).sum(-1), rtol=1e-10, atol=1e-12)


def test_runtime_gradient_at_a_zero_vector_is_zero_on_both_backends():
    """holonomy_angle of v = logmap0(u) at u = the origin is atan2(0, 0) = 0 (and 0 nearby,
    around a degenerate loop): torch's atan2 gradient is 0 there, jnp.arctan2's was NaN; the
    JAX runtime's atan2 now agrees (and keeps arctan2's values, signed zeros included, and
    its derivatives elsewhere)."""
    import jax

    from geomir.backends.jax import runtime as JR

    def angle(M, u):
        return M.holonomy_angle([u, u, u], M.logmap0(u)).sum()

    u0 = np.array([[1.0 / np.sqrt(0.01), 0.0, 0.0]])
    g_jax = jax.grad(lambda u: angle(JR.Lorentz(0.01), u))(jnp.asarray(u0))
    ut = torch.tensor(u0, requires_grad=True)
    angle(TR.Lorentz(0.01), ut).backward()
    assert (np.asarray(g_jax) == 0).all() and (ut.grad.numpy() == 0).all()
    atan2 = JR.OPS.atan2
    for y in (0.0, -0.0):
        for x in (0.0, -0.0, 2.0, -2.0):
            assert np.array_equal(np.asarray(atan2(jnp.asarray(y), jnp.asarray(x))), np.arctan2(y, x), equal_nan=True)
    args = (jnp.asarray(0.3), jnp.asarray(-0.5))
    for ours, ref in zip(jax.hessian(atan2, argnums=(0, 1))(*args), jax.hessian(jnp.arctan2, argnums=(0, 1))(*args)):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-15)


# --- generated code ----------------------------------------------------------------------------

SOURCE = """
manifold B = poincare(c = 1.5)
manifold S = sphere()
manifold L = lorentz(c = 0.7)
model TB(z: R[2], b: B[2], c: B[2]) -> R[1] {
  let a = mobius_scalar(tanh(linear(z, 2 -> 1)), b)
  return holonomy_angle(logmap(a, c), a, b, c)
}
model TS(a: S[3], b: S[3], c: S[3]) -> R[1] {
  return holonomy_angle(logmap(a, b), a, b, c)
}
model TL(a: L[3], b: L[3], c: L[3]) -> R[1] {
  return sin(holonomy_angle(logmap(a, c), a, c, b, expmap0(logmap0(b) * 0.5)))
}
derive lb = laplacian(TB)
derive hb = hvp(TB)
derive db = directional(TB, wrt = b, order = 3)
derive ds = directional(TS, order = 4)
derive dl = directional(TL, wrt = c, order = 3)
"""
REFERENCE = "insert-transport,cse,dce"


def _inputs(name, dtype, rng):
    def point(M, n):
        v = rng.normal(size=(3, n)) * 0.6
        if n == 3:
            v[:, 0] = 0.0
        return M.expmap0(torch.tensor(v, dtype=dtype))

    B, S, L = TR.PoincareBall(1.5), TR.Sphere(), TR.Lorentz(0.7)
    vec = lambda n: torch.tensor(rng.normal(size=(3, n)), dtype=dtype)  # noqa: E731
    return {"lb": [vec(2), point(B, 2), point(B, 2)], "hb": [vec(2), point(B, 2), point(B, 2), vec(2)],
            "db": [vec(2), point(B, 2), point(B, 2), vec(2)],
            "ds": [point(S, 3), point(S, 3), point(S, 3), S.proju(point(S, 3), vec(3))],
            "dl": [point(L, 3), point(L, 3), point(L, 3), vec(3)]}[name]


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_generated_jet_code_matches_the_autodiff_reference(target, tmp_path):
    """jet-expand's holonomy_angle (default pipeline) against the autodiff lowering of the
    same requests (torch's), float64 <= 1e-9 relative; the jet code calls the jet manifold's method."""
    assert ".holonomy_angle(" in geomir.emit_source(SOURCE, target).split("def lb(")[1].split("def ")[0]
    jets = geomir.compile(SOURCE, target=target, cache_dir=tmp_path)
    ref = geomir.compile(SOURCE, target="torch", passes=REFERENCE, cache_dir=tmp_path)
    rng = np.random.default_rng(3)
    # JAX runs its jets eagerly, op by op (seconds a request): one request per manifold there
    for name in ("lb", "hb", "db", "ds", "dl") if target == "torch" else ("lb", "ds", "dl"):
        xs = _inputs(name, torch.float64, rng)
        want = getattr(ref, name)(ref.init_params(seed=1, dtype=torch.float64), *xs).numpy()
        if target == "torch":
            got = getattr(jets, name)(jets.init_params(seed=1, dtype=torch.float64), *xs).numpy()
        else:
            got = np.asarray(getattr(jets, name)(jets.init_params(seed=1, dtype=jnp.float64), *(jnp.asarray(x.numpy()) for x in xs)))
        assert np.isfinite(want).all() and want.shape == got.shape, name
        assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max(), (name, np.abs(got - want).max(), np.abs(want).max())
