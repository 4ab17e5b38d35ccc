"""Jets of the sphere and Lorentz maps (``taylor_quadric``): every map against nested
torch.func.jvp of the runtime's ``Sphere``/``Lorentz`` along random quadratic curves (also
through the origin and where two curves meet; float64, <= 1e-9), the new even functions
(sinc, sinhc, atanc, cosq, coshq) against mpmath, the conventions where no Taylor series
exists, the collapsed (Laplacian) maps against Hessian traces, torch against JAX, and
generated code (jet-expand) against the autodiff reference."""

from __future__ import annotations

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import torch
from geomir.backends.common import taylor as common
from geomir.backends.jax import runtime as JR
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
N, BATCH = 4, 4  # ambient dimension, batch

# --- the even functions against mpmath --------------------------------------------------------

# name -> (h(z) at z = sqrt q, the EvenRatio whose switch applies, factor of q at that
# ratio's argument, q_0 values beyond the switch)
EVEN = {
    "sinc": (lambda z: mpmath.sin(z) / z, common.SINC, 1.0, [0.5, 3.0, 40.0, 400.0]),
    "sinhc": (lambda z: mpmath.sinh(z) / z, common.SINHC, 1.0, [0.5, 3.0, 40.0, 400.0]),
    "atanc": (lambda z: mpmath.atan(z) / z, common.ATANC, 1.0, [0.5, 0.9, 1.0, 3.0, 40.0]),
    "cosq": (mpmath.cos, common.SINC, 0.25, [0.5, 3.0, 40.0, 400.0]),
    "coshq": (mpmath.cosh, common.SINHC, 0.25, [0.5, 3.0, 40.0, 400.0]),
}


def _mp_even(name, q_coeffs, K):
    """Normalized Taylor coefficients of h(q(t)) by mpmath (50 digits), q(t) polynomial;
    complex sqrt where q(t) < 0 (h is analytic in q)."""
    mpmath.mp.dps = 50
    f = EVEN[name][0]

    def h(t):
        q = sum(mpmath.mpf(float(c)) * t ** k for k, c in enumerate(q_coeffs))
        if q == 0:
            return mpmath.mpf(1)
        return mpmath.re(f(mpmath.sqrt(q)))

    return [float(c) for c in mpmath.taylor(h, 0, K)]


@pytest.mark.parametrize("name", sorted(EVEN))
def test_even_functions_against_mpmath(name):
    """Both branches (series about 0 shifted to q_0, and through z = sqrt(q_0 + s)) on
    both sides of the switch, at q_0 = 0 (a squared norm through the origin: q_1 = 0),
    1e-9 and far out, K = 1..6, float64 <= 1e-12 and float32 <= 2e-4."""
    _, spec, factor, far = EVEN[name]
    rule = getattr(TT, name)
    rng = np.random.default_rng(sum(map(ord, name)))
    worst = {}
    for dtype, dname, tol in [(torch.float64, "float64", 1e-12), (torch.float32, "float32", 2e-4)]:
        for K in range(1, 7):
            q_s = common._shifted_series(spec, K, dname)[0] / factor
            for q0 in [0.0, 1e-9, 0.5 * q_s, 0.999 * q_s, 1.001 * q_s, 2 * q_s, *far]:
                q = rng.normal(size=(K + 1, 1)) * 0.3
                q[0] = q0
                if q0 == 0.0:
                    q[1] = 0.0
                ours = rule(torch.tensor(q, dtype=dtype)).double().numpy()[:, 0]
                ref = np.array(_mp_even(name, q[:, 0], K))
                err = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
                worst[dname] = max(worst.get(dname, 0.0), err)
                assert err <= tol, f"{name} {dname} K={K} q0={q0:.3g}: {err:.1e}"
    print(f"ACC even {name}: f64 {worst['float64']:.1e}, f32 {worst['float32']:.1e}")


def test_new_even_functions_are_registered_in_both_tables():
    for name in EVEN:
        assert name in common.RULES and name in common.COLLAPSED_RULES


# --- curves ------------------------------------------------------------------------------------


def _quad(rng, K, scale=0.3, shape=(BATCH, N), through0=False):
    """Normalized coefficients of a random quadratic curve (coefficients >= 3 are 0: nested
    jvp of a higher-degree polynomial costs far more)."""
    out = rng.normal(size=(K + 1, *shape)) * scale
    out[3:] = 0.0
    if through0:
        out[0] = 0.0
    return torch.tensor(out)


def _curves(K, seed, sphere: bool):
    """Ambient curves a, b (points are proj(a), proj(b)), tangent seeds w (tangents are
    proju(proj(a), w)), curves v0, w0 through 0, a curve y0 through the origin, a curve
    af of points with y_0 < 0 on the sphere (every region of atan2) and bf near -a (angles
    beyond pi/2). Values stay away from (0, 6e-6), where the runtime's autodiff was wrong
    before 2026-12-07 (docs/jets.md, runtime finding 2)."""
    rng = np.random.default_rng([seed, K, int(sphere)])
    a, b, w, v = (_quad(rng, K) for _ in range(4))
    a[0] = torch.tensor(rng.normal(size=(BATCH, N)))
    b[0] = torch.tensor(rng.normal(size=(BATCH, N)))
    w[0] = torch.tensor(rng.normal(size=(BATCH, N)))
    v[0] = torch.tensor(rng.normal(size=(BATCH, N)))
    v0, w0 = _quad(rng, K, through0=True), _quad(rng, K, through0=True)
    y0 = _quad(rng, K, through0=True)
    y0[0, :, 0] = 1.0
    af = _quad(rng, K)
    af[0] = torch.tensor(rng.normal(size=(BATCH, N)))
    af[0, :, 0] = torch.tensor([-3.0, -0.4, 0.3, 2.0]) * af[0, :, 1:].norm(dim=-1)
    bf = -a + _quad(rng, K, scale=0.5)
    return {"a": a, "b": b, "w": w, "v": v, "v0": v0, "w0": w0, "y0": y0, "af": af, "bf": bf}


# name -> (map over a manifold M, the curves it takes); written once for the runtime
# manifold (plain arrays) and the jet manifold (jets)
MAPS = {
    "proj": (lambda M, a: M.proj(a), ("a",)),
    "expmap0": (lambda M, v: M.expmap0(v), ("v",)),
    "expmap0 through 0": (lambda M, v: M.expmap0(v), ("v0",)),
    "logmap0": (lambda M, a: M.logmap0(M.proj(a)), ("a",)),
    "logmap0 through 0": (lambda M, y: M.logmap0(M.proj(y)), ("y0",)),
    "expmap": (lambda M, a, w: M.expmap(M.proj(a), M.proju(M.proj(a), w)), ("a", "w")),
    "expmap, v through 0": (lambda M, a, w: M.expmap(M.proj(a), M.proju(M.proj(a), w)), ("a", "w0")),
    "logmap": (lambda M, a, b: M.logmap(M.proj(a), M.proj(b)), ("a", "b")),
    "logmap, y near -x": (lambda M, a, b: M.logmap(M.proj(a), M.proj(b)), ("a", "bf")),
    "logmap, curves meet": (lambda M, a, w: M.logmap(M.proj(a), M.proj(a + w)), ("a", "w0")),
    "dist": (lambda M, a, b: M.dist(M.proj(a), M.proj(b)), ("a", "b")),
    "dist, y near -x": (lambda M, a, b: M.dist(M.proj(a), M.proj(b)), ("a", "bf")),
    "transp": (lambda M, a, b, w: M.transp(M.proj(a), M.proj(b), M.proju(M.proj(a), w)), ("a", "b", "w")),
    "transp, y near -x": (lambda M, a, b, w: M.transp(M.proj(a), M.proj(b), M.proju(M.proj(a), w)),
                            ("a", "bf", "w")),
    "inner": (lambda M, a, w, v: M.inner(M.proj(a), M.proju(M.proj(a), w), M.proju(M.proj(a), v)),
              ("a", "w", "v")),
}
SPHERE_ONLY = {
    "logmap0, y_0 < 0": (lambda M, a: M.logmap0(M.proj(a)), ("af",)),
    "retr": (lambda M, a, w: M.retr(M.proj(a), M.proju(M.proj(a), w)), ("a", "w")),
}
LORENTZ_ONLY = {  # |v|_L about 10^3 > max_hyp_z = 300: the cap
    "expmap capped": (lambda M, a, w: M.expmap(M.proj(a), M.proju(M.proj(a), 1e3 * w)), ("a", "w")),
    "expmap0 capped": (lambda M, v: M.expmap0(1e3 * v), ("v",)),
}
# nested jvp costs 2^K evaluations: K = 4 for every map, K = 6 for these
AT_ORDER_6 = {"sphere": ("expmap0 through 0", "logmap0 through 0"),
              "lorentz c=1": ("expmap0 through 0", "logmap0 through 0"), "lorentz c=2.5": ("expmap0 through 0",)}
MANIFOLDS = list(AT_ORDER_6)


def _pair(which, collapsed=False):
    """(runtime manifold, torch jet manifold)."""
    if which == "sphere":
        return TR.Sphere(), TT.Sphere(collapsed=collapsed)
    c = float(which.split("=")[1])
    return TR.Lorentz(c), TT.Lorentz(c, collapsed=collapsed)


def _maps(which):
    return {**MAPS, **(SPHERE_ONLY if which == "sphere" else LORENTZ_ONLY)}


@pytest.mark.parametrize("which", MANIFOLDS)
def test_maps_match_nested_jvp_of_the_runtime(which):
    """Jets along random quadratic curves against nested torch.func.jvp of the runtime's
    methods (float64, <= 1e-9): one oracle call at the top order checks every K below it
    (a truncated jet keeps its lower orders)."""
    M, JM = _pair(which)
    worst = {}
    for top in (4, 6):
        curves = _curves(top, 0, which == "sphere")
        for name, (fn, keys) in _maps(which).items():
            if top == 6 and name not in AT_ORDER_6[which]:
                continue
            args = [curves[k] for k in keys]
            ref = torch_nested(lambda *xs, fn=fn: fn(M, *xs), args, top).numpy()
            assert np.isfinite(ref).all(), name
            for K in range(1, top + 1):
                ours = TT.to_derivatives(fn(JM, *(x[: K + 1] for x in args))).numpy()
                err = rel_err(ours, ref[: K + 1])
                worst[name] = max(worst.get(name, 0.0), err)
                assert err <= RTOL, f"{which} {name} K={K}: {err:.1e}"
    print(f"ACC {which}: max {max(worst.values()):.1e} (" + ", ".join(f"{k} {e:.0e}" for k, e in worst.items()) + ")")


def test_lorentz_cap_is_active_in_the_capped_cases():
    M, _ = _pair("lorentz c=1")
    cv = _curves(4, 0, False)
    x = M.proj(cv["a"][0])
    v = M.proju(x, 1e3 * cv["w"][0])
    qmax = TR.OPS.consts(x).max_hyp_z ** 2
    assert bool((M.inner(x, v) > qmax).all()) and bool((1e6 * (cv["v"][0][..., 1:] ** 2).sum(-1) > qmax).all())


def test_sphere_regions_are_all_visited():
    """The sphere's atan2 has three regions (|b| >= a with b > 0 or b < 0, |b| < a); the
    curves above visit each, and dist/logmap both sides of pi/2."""
    cv = _curves(4, 0, True)
    y = TR.Sphere().proj(cv["af"][0])
    b, a = y[:, 0], y[:, 1:].norm(dim=-1)
    assert bool(((b > 0) & (b >= a)).any() and ((b < 0) & (-b >= a)).any() and (b.abs() < a).any())
    S = TR.Sphere()
    d, d_beyond = (S.dist(S.proj(cv["a"][0]), S.proj(cv[k][0])) for k in ("b", "bf"))
    assert bool((d_beyond > torch.pi / 2).all()) and bool((d < torch.pi / 2).any())


# --- where no Taylor series exists --------------------------------------------------------------


def test_conventions_where_no_taylor_series_exists():
    """dist where the curves meet: 0 with zero derivatives (as the runtime's nested jvp,
    through sqrt0). Antipodal sphere points: dist pi with zero derivatives (also the
    runtime's), logmap/transp the runtime's value with zero derivatives; logmap0 at the
    antipode of the origin likewise; proj of the zero vector is the origin. No NaN."""
    cv = _curves(4, 1, True)
    a, w, w0 = cv["a"], cv["w"], cv["w0"]
    def meet(M, a, w):
        return M.dist(M.proj(a), M.proj(a + w))

    for which in MANIFOLDS:
        M, JM = _pair(which)
        out = TT.to_derivatives(meet(JM, a, w0))
        assert torch.isfinite(out).all() and not out.any(), which
        assert rel_err(out.numpy(), torch_nested(lambda *xs, M=M: meet(M, *xs), [a, w0], 4).numpy()) == 0.0
    S, JS = _pair("sphere")
    x = S.proj(a[0])
    xj = TT.with_primal(a, x)  # a curve starting on the sphere
    yj = TT.with_primal(w, -x)  # and one starting at the antipode
    v = TT.with_primal(w0, S.proju(x, w[0]))
    d = JS.dist(xj, yj)
    ref = torch_nested(S.dist, [xj, yj], 4)
    assert torch.allclose(d[0], torch.full_like(d[0], torch.pi)) and not d[1:].any()
    assert rel_err(TT.to_derivatives(d).numpy(), ref.numpy()) <= 1e-15
    for name, out, val in [("logmap", JS.logmap(xj, yj), S.logmap(x, -x)),
                           ("transp", JS.transp(xj, yj, v), S.transp(x, -x, v[0]))]:
        assert torch.isfinite(out).all() and not out[1:].any(), name
        assert torch.allclose(out[0], val, rtol=1e-12, atol=1e-12), name
    anti = TT.with_primal(w0, torch.tensor([-1.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    out = JS.logmap0(anti)
    assert torch.isfinite(out).all() and not out[1:].any()
    assert torch.equal(out[0], S.logmap0(anti[0]))
    p = JS.proj(TT.with_primal(w, torch.zeros(N, dtype=torch.float64)))
    assert torch.equal(p[0], S.origin_like(w[0])) and not p[1:].any()


def test_gradients_through_jets_are_finite_where_series_degenerate():
    """Safe arguments in the unused branches: no NaN gradient through the jets at the
    origin (expmap0, logmap0), where two curves meet (logmap, dist) and at antipodal
    sphere points (torch autograd; JAX's where has the same rule, 0 * inf = NaN, and its
    eager first calls take seconds per op signature)."""
    rng = np.random.default_rng(0)
    v = torch.tensor(rng.normal(size=(3, 2, N)) * 0.3, requires_grad=True)
    for M in (TT.Sphere(), TT.Lorentz(2.5)):
        u = TT.with_primal(v, torch.zeros(2, N, dtype=torch.float64))  # through the origin
        p = M.expmap0(u)
        loss = (M.logmap0(p) ** 2).sum() + M.dist(p, p).sum() + (M.logmap(p, p) ** 2).sum()
        if isinstance(M, TT.Sphere):
            q = TT.with_primal(v, -M.proj(v[0].detach()))
            x = M.proj(v)
            loss = loss + M.dist(x, q).sum() + (M.logmap(x, q) ** 2).sum() + (M.transp(x, q, v) ** 2).sum()
            loss = loss + (M.logmap0(TT.with_primal(v, -M.origin_like(v)[0])) ** 2).sum()
        (g,) = torch.autograd.grad(loss, v)
        assert torch.isfinite(g).all(), type(M).__name__


# --- collapsed: the Laplacian ----------------------------------------------------------------------


def _layer(M, lin, b, u):
    """expmap0 of a Euclidean input, a tangent from a linear map, expmap, then logmap,
    dist, transport to a fixed point b, logmap0 and proj."""
    p = M.expmap0(u)
    v = M.proju(p, lin(u))
    q = M.expmap(p, v)
    return [M.logmap(q, b), M.dist(q, b), M.transp(q, b, v), M.logmap0(q), M.proj(q), M.dist(p, q)]


@pytest.mark.parametrize("which", MANIFOLDS)
def test_laplacian_of_quadric_layers(which):
    """The collapsed maps give the trace of torch.func.hessian of the runtime's layer
    (float64, <= 1e-9), also at u = 0 (the origin of expmap0)."""
    rng = np.random.default_rng(len(which))
    M, JM = _pair(which, collapsed=True)
    W = torch.tensor(rng.normal(size=(N, N)) * 0.5)
    b = M.proj(torch.tensor(rng.normal(size=N)))
    x = torch.tensor(rng.normal(size=(3, N)) * 0.5)
    x[0] = 0.0

    def plain(u):
        return torch.cat(_layer(M, lambda h: h @ W.T, b, u), -1)

    H = torch.func.vmap(torch.func.hessian(plain))(x)  # (batch, out, n, n)
    ref = H.diagonal(dim1=-2, dim2=-1).sum(-1).numpy()
    outs = _layer(JM, lambda h: TT.collapsed.linear(h, W), TT.laplacian_constant(b[None]), TT.laplacian_seed(x))
    ours = TT.laplacian_of(common.LaplacianJet(*(torch.cat(parts, -1) for parts in zip(*outs)))).numpy()
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err <= RTOL, f"{which}: {err:.1e}"
    print(f"ACC laplacian quadric layer {which}: {err:.1e}")


def test_collapsed_even_functions_are_the_sum_of_directional_jets():
    rng = np.random.default_rng(3)
    D, shape = 3, (5, 1)
    f0 = np.abs(rng.normal(size=shape)) * 2.0
    f0[0] = 0.0
    lj = common.LaplacianJet(torch.tensor(f0), torch.tensor(rng.normal(size=(D, *shape))),
                             torch.tensor(rng.normal(size=shape)))
    for name in EVEN:
        out = getattr(TT.collapsed, name)(lj)
        jets = [getattr(TT, name)(torch.stack([lj.f0, lj.f1[d], lj.f2 / D])) for d in range(D)]
        for got, want in [(out.f0, jets[0][0]), (out.f2, sum(j[2] for j in jets))] + [
                (out.f1[d], jets[d][1]) for d in range(D)]:
            assert (got - want).abs().max() <= 1e-12 * want.abs().max(), name


# --- torch and JAX ---------------------------------------------------------------------------------


def _everything(S, L, even, curves_s, curves_l, qs):
    out = {}
    for tag, M, cv in [("sphere", S, curves_s), ("lorentz", L, curves_l)]:
        for name, (fn, keys) in _maps("sphere" if tag == "sphere" else "lorentz").items():
            out[f"{tag} {name}"] = fn(M, *(cv[k] for k in keys))
    for name in EVEN:
        out[name] = even[name](qs)
    return out


def test_torch_and_jax_agree():
    cs = {k: v.numpy() for k, v in _curves(3, 5, True).items()}
    cl = {k: v.numpy() for k, v in _curves(3, 5, False).items()}
    qs = np.abs(np.random.default_rng(4).normal(size=(4, 6, 1)))
    qs[0, :, 0] = [0.0, 1e-4, 0.05, 0.9, 3.0, 40.0]
    t = _everything(TT.Sphere(), TT.Lorentz(2.5), {n: getattr(TT, n) for n in EVEN},
                    {k: torch.tensor(v) for k, v in cs.items()}, {k: torch.tensor(v) for k, v in cl.items()},
                    torch.tensor(qs))
    # eager: under jax.jit this graph takes 20 s to compile on 2 cores
    j = _everything(JT.Sphere(), JT.Lorentz(2.5), {n: getattr(JT, n) for n in EVEN},
                    {k: jnp.asarray(v) for k, v in cs.items()}, {k: jnp.asarray(v) for k, v in cl.items()},
                    jnp.asarray(qs))
    worst = 0.0
    for name in t:
        err = rel_err(np.asarray(j[name]), t[name].numpy())
        worst = max(worst, err)
        assert err <= 1e-12, f"{name}: torch and jax differ by {err:.1e}"
    print(f"ACC quadric torch vs jax f64: {worst:.1e}")


def test_float32_jets_are_close_to_float64():
    """Every map in float32 against the float64 jets (K = 4; the capped cases are left out:
    the cap is dtype-dependent, max_hyp_z = 40 in float32)."""
    worst = 0.0
    for which in MANIFOLDS:
        _, JM = _pair(which)
        cv = _curves(4, 2, which == "sphere")
        for name, (fn, keys) in _maps(which).items():
            if "capped" in name:
                continue
            hi = TT.to_derivatives(fn(JM, *(cv[k] for k in keys)))
            lo = TT.to_derivatives(fn(JM, *(cv[k].float() for k in keys)))
            assert lo.dtype == torch.float32
            err = rel_err(lo.double().numpy(), hi.numpy())
            worst = max(worst, err)
            assert err <= 1e-4, f"{which} {name}: {err:.1e}"
    print(f"ACC quadric float32 vs float64: {worst:.1e}")


def test_jax_maps_keep_float32():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 2, N)), dtype=jnp.float32)
    out = JT.Lorentz(1.5).logmap(JT.Lorentz(1.5).proj(x), JT.Sphere().proj(x))
    assert out.dtype == jnp.float32 and bool(jnp.isfinite(out).all())
    assert JR.OPS.dtype_name(out) == "float32"


# --- generated code ----------------------------------------------------------------------------------

SOURCE = """
manifold S = sphere()
manifold L = lorentz(c = 1.5)
model SM(x: S[4], y: S[4]) -> R[4] {
  let v = logmap(x, y)
  let w = parallel_transport(x, y, v)
  let z = expmap(y, tanh(w))
  return coords(logmap0(z)) + coords(proj(z)) + linear(dist(z, x), 1 -> 4)
}
model LM(x: L[4], y: L[4]) -> R[4] {
  let v = logmap(x, y)
  let z = expmap(y, 0.5 * parallel_transport(x, y, v))
  let u = logmap0(expmap0(sigmoid(linear(logmap0(z), 4 -> 4))))
  return coords(u) + coords(proj(z)) + linear(dist(z, x), 1 -> 4)
}
derive ds = directional(SM, order = 3)
derive dsy = directional(SM, wrt = y, order = 4)
derive dl = directional(LM, order = 3)
"""
JETS = "jet-expand,cse,dce"


def test_generated_jet_code_matches_the_autodiff_reference(tmp_path):
    """directional requests on sphere and Lorentz models: jet-expand against the autodiff
    reference (nested jvp), float64 <= 1e-9. torch: every request against its own
    reference; JAX: ``ds`` and ``dl`` against the torch reference, ``dl`` also against the
    JAX reference (JAX traces the other references for 15 s on 2 cores)."""
    text = geomir.emit_source(SOURCE, "torch", JETS)
    assert "sphere_jet = taylor.Sphere()" in text and "lorentz_c1_5_jet = taylor.Lorentz(c=1.5)" in text
    assert "derivatives.directional" not in text
    rng = np.random.default_rng(11)
    S, L = TR.Sphere(), TR.Lorentz(1.5)
    pts = {k: M.proj(torch.tensor(rng.normal(size=(3, 4)))) for k, M in [("S", S), ("S2", S), ("L", L), ("L2", L)]}
    vec = torch.tensor(rng.normal(size=(3, 4)) * 0.5)
    inputs = {"ds": ["S", "S2"], "dsy": ["S", "S2"], "dl": ["L", "L2"]}
    mods = {(t, p): geomir.compile(SOURCE, target=t, passes=p, cache_dir=tmp_path)
            for t in ("torch", "jax") for p in ("cse,dce", JETS)}
    p_t = mods[("torch", JETS)].init_params(seed=2, dtype=torch.float64)
    p_j = mods[("jax", JETS)].init_params(seed=2, dtype=jnp.float64)
    worst = 0.0
    for name, keys in inputs.items():
        xs = [pts[k] for k in keys] + [vec]
        xj = [jnp.asarray(x.numpy()) for x in xs]
        ref = np.asarray(getattr(mods[("torch", "cse,dce")], name)(p_t, *xs))
        checks = [("torch", np.asarray(getattr(mods[("torch", JETS)], name)(p_t, *xs)), ref)]
        if name in ("ds", "dl"):
            checks.append(("jax", np.asarray(getattr(mods[("jax", JETS)], name)(p_j, *xj)), ref))
        if name == "dl":
            checks.append(("jax vs jax reference", checks[1][1], np.asarray(getattr(mods[("jax", "cse,dce")], name)(p_j, *xj))))
        for who, ours, want in checks:
            err = np.abs(ours - want).max() / np.abs(want).max()
            worst = max(worst, err)
            assert err <= RTOL, f"{who} {name}: {err:.1e}"
    print(f"ACC quadric generated code: {worst:.1e}")
