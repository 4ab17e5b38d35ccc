"""Every jet rule against jax.experimental.jet and nested torch.func.jvp (float64, K = 1..6,
relative error per order <= 1e-10), the even ratio functions against mpmath, random
compositions (hypothesis) in float64 and float32, the Poincaré-ball maps against nested
jvp of the runtime, and the torch and JAX bindings against each other."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomir.backends.common import taylor as common
from geomir.backends.jax import runtime as JR
from geomir.backends.jax import taylor as JT
from geomir.backends.torch import runtime as TR
from geomir.backends.torch import taylor as TT

from . import (
    Plain,
    algebra,
    jax_jet,
    random_jet,
    random_program,
    rel_err,
    run_program,
    torch_nested,
    x64,  # noqa: F401  (fixture: jax float64 in this module)
)

pytestmark = pytest.mark.usefixtures("x64")

RTOL = 1e-10
ORDERS = range(1, 7)
SHAPE = (3, 4)
_rng = np.random.default_rng(1234)
W = _rng.normal(size=(2, 4))
B = _rng.normal(size=4)
MASK = _rng.random(SHAPE) < 0.5

# name -> (input domains, program over a namespace A with the rule names)
CASES = {
    "add": (("any", "any"), lambda A, a, b: A.add(a, b)),
    "sub": (("any", "any"), lambda A, a, b: A.sub(a, b)),
    "neg": (("any",), lambda A, x: A.neg(x)),
    "mul": (("any", "any"), lambda A, a, b: A.mul(a, b)),
    "div": (("any", "pos"), lambda A, a, b: A.div(a, b)),
    "scale": (("any",), lambda A, x: A.scale(x, -1.7)),
    "linear": (("any",), lambda A, x: A.linear(x, A.const(W))),
    "bias": (("any",), lambda A, x: A.bias(x, A.const(B))),
    "sum_last": (("any",), lambda A, x: A.sum_last(x)),
    "sqnorm": (("any",), lambda A, x: A.sqnorm(x)),
    "exp": (("any",), lambda A, x: A.exp(x)),
    "log": (("pos",), lambda A, x: A.log(x)),
    "sqrt": (("pos",), lambda A, x: A.sqrt(x)),
    "pow_1.7": (("pos",), lambda A, x: A.pow(x, 1.7)),
    "pow_-0.5": (("pos",), lambda A, x: A.pow(x, -0.5)),
    "pow_-2": (("any",), lambda A, x: A.pow(x, -2.0)),
    "pow_0": (("any",), lambda A, x: A.pow(x, 0.0)),
    "pow_1": (("any",), lambda A, x: A.pow(x, 1.0)),
    "pow_2": (("any",), lambda A, x: A.pow(x, 2.0)),
    "pow_3": (("any",), lambda A, x: A.pow(x, 3.0)),
    "pow_5": (("any",), lambda A, x: A.pow(x, 5.0)),
    "tanh": (("any",), lambda A, x: A.tanh(x)),
    "tanh_saturated": (("any",), lambda A, x: A.tanh(A.scale(x, 9.0))),
    "sigmoid": (("any",), lambda A, x: A.sigmoid(x)),
    "sigmoid_saturated": (("any",), lambda A, x: A.sigmoid(A.scale(x, 12.0))),
    "softplus": (("any",), lambda A, x: A.softplus(x)),
    "softplus_large": (("any",), lambda A, x: A.softplus(A.scale(x, 15.0))),
    "sin": (("any",), lambda A, x: A.sin(x)),
    "cos": (("any",), lambda A, x: A.cos(x)),
    "relu": (("any",), lambda A, x: A.relu(x)),
    "asinh": (("any",), lambda A, x: A.asinh(x)),
    "atanh": (("unit",), lambda A, x: A.atanh(x)),
    "atan2": (("any", "any"), lambda A, a, b: A.atan2(a, b)),
}


def _inputs(name, K, seed=0):
    domains, _ = CASES[name]
    rng = np.random.default_rng([seed, K, sum(map(ord, name))])
    return [random_jet(rng, K, SHAPE, domain=d) for d in domains]


def _ours(fn, jets, backend="torch", dtype=torch.float64):
    if backend == "torch":
        args = [torch.tensor(j, dtype=dtype) for j in jets]
        return TT.to_derivatives(fn(algebra("torch", dtype=dtype), *args)).numpy()
    args = [jnp.asarray(j) for j in jets]
    return np.asarray(JT.to_derivatives(fn(algebra("jax"), *args)))


def _line(jet):
    """The same value and velocity, higher coefficients 0: the jet of t -> x + t v."""
    out = jet.copy()
    out[2:] = 0.0
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_matches_jax_jet_and_nested_jvp(name):
    """Full random input jets against jax.experimental.jet; lines x + t v against nested
    torch.func.jvp (2^K evaluations: a polynomial curve would cost far more). Each oracle
    runs once at K = 6: truncating a jet to order K keeps orders <= K exact, so the rule at
    every K = 1..6 is compared with the first K + 1 orders."""
    _, fn = CASES[name]
    jets = _inputs(name, max(ORDERS))
    derivs = [np.asarray(TT.to_derivatives(torch.tensor(j))) for j in jets]
    ref_jax = jax_jet(lambda *xs: fn(Plain("jax"), *xs), derivs)
    lines = [_line(j) for j in jets]
    ref_t = torch_nested(lambda *xs: fn(Plain("torch"), *xs), [torch.tensor(j) for j in lines], max(ORDERS)).numpy()
    for K in ORDERS:
        err = rel_err(_ours(fn, [j[: K + 1] for j in jets]), ref_jax[: K + 1])
        assert err <= RTOL, f"{name} K={K}: vs jax jet {err:.1e}"
        err = rel_err(_ours(fn, [j[: K + 1] for j in lines]), ref_t[: K + 1])
        assert err <= RTOL, f"{name} K={K}: vs nested jvp {err:.1e}"


def test_every_rule_is_tested_or_covered():
    covered = {n.split("_")[0] if n.startswith(("pow_", "tanh_", "sigmoid_", "softplus_")) else n for n in CASES}
    # structural and internal rules have their own tests below; the even functions of the
    # sphere and hyperboloid maps are checked in test_quadric_maps.py
    own = {"primal", "with_primal", "select", "clamp", "sqrt0", "abs0", "tanhc", "asinhc", "coords",
           "sinc", "sinhc", "atanc", "cosq", "coshq"}
    assert set(common.RULES) == covered | own, set(common.RULES) ^ (covered | own)


def test_structural_rules():
    rng = np.random.default_rng(0)
    x = torch.tensor(random_jet(rng, 4, SHAPE))
    y = torch.tensor(random_jet(rng, 4, SHAPE))
    mask = torch.tensor(MASK)
    assert torch.equal(TT.primal(x), x[0]) and TT.coords(x) is x
    z = TT.with_primal(x, y[0])
    assert torch.equal(z[0], y[0]) and torch.equal(z[1:], x[1:])
    s = TT.select(mask, x, y)
    assert torch.equal(s, torch.where(mask, x, y))
    c = TT.clamp(x, lo=-0.3, hi=0.5)
    keep = (x[0] >= -0.3) & (x[0] <= 0.5)
    assert torch.equal(c[0], x[0].clamp(-0.3, 0.5)) and torch.equal(c[1:], torch.where(keep, x[1:], 0.0))
    ref = torch_nested(lambda u: TR.OPS.clamp(u, -0.3, 0.5), [x], 4)
    assert rel_err(TT.to_derivatives(c), ref) <= RTOL


def test_sqrt0_is_sqrt_away_from_zero_and_the_zero_jet_at_zero():
    rng = np.random.default_rng(0)
    x = torch.tensor(random_jet(rng, 5, SHAPE, domain="pos"))
    assert torch.allclose(TT.sqrt0(x), TT.sqrt(x), rtol=0, atol=0)
    x[0, 0] = 0.0
    out = TT.sqrt0(x)
    assert torch.all(out[:, 0] == 0) and torch.isfinite(out).all()
    ref = torch_nested(TR.OPS.sqrt0, [x], 5)  # the runtime's convention at 0: all zero
    assert rel_err(TT.to_derivatives(out), ref) <= RTOL


def test_abs0_is_sign_times_the_jet_and_sqrt0_of_the_square():
    """abs0 (dist on R^1): sign(x_0) x_k; the numbers sqrt0(x^2) gives in float64; the zero
    jet at 0 (as sqrt0); a NaN value makes every coefficient NaN; the same on JAX."""
    rng = np.random.default_rng(3)
    x = torch.tensor(random_jet(rng, 5, SHAPE))
    out = TT.abs0(x)
    assert torch.equal(out, torch.sign(x[0]) * x)
    assert rel_err(out, TT.sqrt0(TT.mul(x, x))) <= 1e-12
    assert np.array_equal(np.asarray(JT.abs0(jnp.asarray(x.numpy()))), out.numpy())
    x[0, 0], x[0, 1] = 0.0, float("nan")
    out = TT.abs0(x)
    assert torch.all(out[:, 0] == 0) and torch.isnan(out[:, 1]).all() and torch.isfinite(out[:, 2:]).all()


def test_abs0_keeps_float32_digits_near_zero():
    """|cos(z) - 1| near z = 0 in float32, order 4 (generator seed 10466): sqrt0 of the
    square cancels terms of size x_1^2 and divides by |x_0| ~ 1e-4, losing about 1e-2 of the
    result; abs0 is exact up to cos's own rounding."""
    z = TT.seed(torch.tensor([0.0124, -0.02, 0.05], dtype=torch.float64), torch.ones(3, dtype=torch.float64), 4)
    d = TT.sub(TT.cos(z), TT.constant(torch.ones(3, dtype=torch.float64), 4))
    exact = TT.to_derivatives(TT.abs0(d))
    assert torch.allclose(exact, TT.to_derivatives(TT.sqrt0(TT.mul(d, d))), rtol=1e-6, atol=0)
    d32 = d.float()
    err = lambda y: float(((TT.to_derivatives(y).double() - exact).abs() / exact.abs().clamp_min(1e-30)).max())  # noqa: E731
    assert err(TT.abs0(d32)) <= 1e-6
    assert err(TT.sqrt0(TT.mul(d32, d32))) > 1e-4  # what dist on R^1 did before


def test_seed_constant_and_conventions():
    x, v = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    s = TT.seed(x, v, 4)
    assert s.shape == (5, 2, 3) and torch.equal(s[0], x) and torch.equal(s[1], v) and not s[2:].any()
    c = TT.constant(x, 3)
    assert c.shape == (4, 2, 3) and not c[1:].any()
    j = torch.randn(6, 2, 3, dtype=torch.float64)
    d = TT.to_derivatives(j)
    assert torch.allclose(d[5], j[5] * 120) and torch.allclose(TT.from_derivatives(d), j, rtol=1e-15, atol=0)
    # exp along x + t v: derivatives v^k e^x, normalized v^k e^x / k!
    e = TT.exp(TT.seed(x, v, 4))
    for k in range(5):
        assert torch.allclose(e[k], v ** k * torch.exp(x) / math.factorial(k), rtol=1e-14, atol=0)
    assert TT.order(e) == 4
    # lift: a parameter of shape (n,) against a batched jet
    b = torch.randn(3, dtype=torch.float64)
    lifted = TT.lift(b, e)
    assert lifted.shape == (5, 1, 3) and torch.equal(TT.mul(e, lifted)[2], e[2] * b)


def test_sin_and_cos_from_one_recurrence():
    x = torch.tensor(random_jet(np.random.default_rng(3), 5, SHAPE))
    s, c = TT.sincos(x)
    assert torch.equal(s, TT.sin(x)) and torch.equal(c, TT.cos(x))


def test_linear_is_one_matmul_over_all_coefficients():
    calls = []
    real = TT.OPS.matmul_t

    class Spy(type(TT.OPS)):
        @staticmethod
        def matmul_t(x, w):
            calls.append(x.shape)
            return real(x, w)

    x = torch.randn(7, 3, 4, dtype=torch.float64)
    out = common.linear(Spy(), x, torch.tensor(W))
    assert calls == [(7, 3, 4)] and out.shape == (7, 3, 2)


# --- even ratio functions against mpmath ----------------------------------------------------


def _mp_even(name, q_coeffs, K):
    """Normalized Taylor coefficients of h(q(t)) by mpmath (50 digits), q(t) polynomial."""
    mpmath.mp.dps = 50
    f = mpmath.tanh if name == "tanhc" else mpmath.asinh

    def h(t):
        q = sum(mpmath.mpf(float(c)) * t ** k for k, c in enumerate(q_coeffs))
        if q == 0:
            return mpmath.mpf(1)
        z = mpmath.sqrt(q)  # complex for q < 0 (t < 0): h is analytic in q
        return mpmath.re(f(z) / z)

    return [float(c) for c in mpmath.taylor(h, 0, K)]


@pytest.mark.parametrize("name", ["tanhc", "asinhc"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_even_ratios_against_mpmath(name, dtype):
    """Both branches (series about 0 shifted to q_0, and f(z)/z through z = sqrt(q_0 + s)),
    on both sides of the switch and at q_0 = 0, for K = 1..6."""
    rng = np.random.default_rng(7)
    rule = getattr(TT, name)
    tol = 1e-12 if dtype == torch.float64 else 2e-4
    worst = 0.0
    for K in ORDERS:
        q_s = common._shifted_series(common.TANHC if name == "tanhc" else common.ASINHC, K,
                                     "float64" if dtype == torch.float64 else "float32")[0]
        for q0 in [0.0, 1e-9, 0.5 * q_s, 0.999 * q_s, 1.001 * q_s, 2 * q_s, 0.5, 0.9, 3.0, 40.0]:
            q = rng.normal(size=(K + 1, 1)) * 0.3
            q[0] = q0
            if q0 == 0.0:  # a squared norm through the origin: q_1 = 0
                q[1] = 0.0
            ours = rule(torch.tensor(q, dtype=dtype)).double().numpy()[:, 0]
            ref = np.array(_mp_even(name, q[:, 0], K))
            err = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
            worst = max(worst, err)
            assert err <= tol, f"{name} K={K} q0={q0:.3g}: {err:.1e}"
    print(f"ACC even {name} {dtype}: {worst:.1e}")


# --- random compositions ---------------------------------------------------------------------


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), depth=st.integers(2, 5), K=st.integers(1, 6))
def test_random_compositions(seed, depth, K):
    """float64 against jax.experimental.jet (full random input jets) and, for K <= 4, nested
    torch.func.jvp along a line; float32 against the float64 jet."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    prog = random_program(rng, n, depth)
    x = random_jet(rng, K, (2, n), scale=0.4)
    f64 = TT.to_derivatives(run_program(prog, algebra("torch"), torch.tensor(x))).numpy()
    what = [s[0] for s in prog]
    ref = jax_jet(lambda u: run_program(prog, Plain("jax"), u), [TT.to_derivatives(torch.tensor(x)).numpy()], jit=True)
    assert rel_err(f64, ref) <= RTOL, f"float64 vs jax jet: {rel_err(f64, ref):.1e} for {what}"
    if K <= 4:
        line = _line(x)
        ref = torch_nested(lambda u: run_program(prog, Plain("torch"), u), [torch.tensor(line)], K).numpy()
        ours = TT.to_derivatives(run_program(prog, algebra("torch"), torch.tensor(line))).numpy()
        assert rel_err(ours, ref) <= RTOL, f"float64 vs nested jvp: {rel_err(ours, ref):.1e} for {what}"
    A32 = algebra("torch", dtype=torch.float32)
    f32 = TT.to_derivatives(run_program(prog, A32, torch.tensor(x, dtype=torch.float32))).double().numpy()
    assert rel_err(f32, f64) <= 1e-4, f"float32: {rel_err(f32, f64):.1e} for {what}"


def test_random_compositions_under_jit_match_eager():
    rng = np.random.default_rng(5)
    prog = random_program(rng, 3, 5)
    x = jnp.asarray(random_jet(rng, 4, (2, 3)))
    A = algebra("jax")
    eager = run_program(prog, A, x)
    jitted = jax.jit(lambda u: run_program(prog, A, u))(x)
    assert rel_err(jitted, eager) <= 1e-12


# --- Poincaré ball maps -------------------------------------------------------------------------


def _curves(K, seed, c, n=5, batch=4):
    """Random quadratic curves (coefficients >= 3 are 0: nested jvp of a higher-degree
    polynomial costs far more): points x, y on the ball, tangents v, a curve v0 through
    the origin, scalars r with |r_0| >= 0.5, a weight w. q_0 = c|.|^2 stays out of
    (0, 6e-6), where the runtime's autodiff was wrong before 2026-12-07 (docs/jets.md)."""
    rng = np.random.default_rng([seed, K])
    ball = TR.PoincareBall(c)

    def j(shape=(batch, n), scale=0.3):
        out = rng.normal(size=(K + 1, *shape)) * scale
        out[3:] = 0.0
        return torch.tensor(out)

    x, y, v, v0, r = j(), j(), j(), j(), j((batch, 1), 1.0)
    x[0], y[0] = ball.expmap0(x[0]), ball.expmap0(y[0])
    v0[0] = 0.0
    r[0] = torch.tensor(rng.choice([-1.0, 1.0], size=(batch, 1)) * rng.uniform(0.5, 2.0, size=(batch, 1)))
    w = torch.tensor(rng.normal(size=(3, n)))
    return x, y, v, v0, r, w


def _ganea_expmap(ball, x, v):
    """x (+) tanh(sqrt(c)|v|/delta_x) v/(sqrt(c)|v|) with the second delta from coordinates:
    analytic at v = 0, unlike the runtime's sech^2(sqrt0(.)) whose derivatives vanish there."""
    o = ball.ops
    dx = ball._delta(x)
    y = TR._m._tanhc(o, ball.c * o.sqnorm(v) / (dx * dx)) * v / dx
    return ball.proj(ball._add(x, y, dx, ball._delta(y)))


# nested jvp costs 2^K evaluations: one call at K = 4 checks every map at K = 1..4 (a
# truncated jet keeps its lower orders), one at K = 6 these
AT_ORDER_6 = {1.0: ("expmap0 through 0", "logmap0 through 0"), 2.5: ("expmap0",)}


def _ball_cases(c, K):
    ball, jball = TR.PoincareBall(c), TT.PoincareBall(c)
    x, y, v, v0, r, w = _curves(K, 0, c)
    return {
        "expmap0": (ball.expmap0, (v,), jball.expmap0),
        "expmap0 through 0": (ball.expmap0, (v0,), jball.expmap0),
        "logmap0": (ball.logmap0, (x,), jball.logmap0),
        "logmap0 through 0": (ball.logmap0, (0.5 * v0,), jball.logmap0),
        "mobius_add": (ball.mobius_add, (x, y), jball.mobius_add),
        "mobius_add through 0": (ball.mobius_add, (0.5 * v0, y), jball.mobius_add),
        "mobius_matvec": (lambda u: ball.mobius_matvec(w, u), (x,), lambda u: jball.mobius_matvec(w, u)),
        "mobius_matvec through 0": (lambda u: ball.mobius_matvec(w, u), (0.5 * v0,),
                                    lambda u: jball.mobius_matvec(w, u)),
        "mobius_scalar": (ball.mobius_scalar, (r, x), jball.mobius_scalar),
        "dist": (ball.dist, (x, y), jball.dist),
        "expmap": (ball.expmap, (x, v), jball.expmap),
        "expmap, v through 0": (lambda a, b: _ganea_expmap(ball, a, b), (x, v0), jball.expmap),
        "logmap": (ball.logmap, (x, y), jball.logmap),
        "proj outside": (ball.proj, (3.0 * x,), jball.proj),
        "lambda_x": (ball.lambda_x, (x,), jball.lambda_x),
        "transp": (ball.transp, (x, y, v), jball.transp),
        "transp from 0": (ball.transp, (0.5 * v0, y, v), jball.transp),
        "transp along a ray": (ball.transp, (x, _on_ray(x, y, -0.7), v), jball.transp),
        "gyration, parallel": (ball.gyration, (x, _on_ray(x, y, 0.6), v), jball.gyration),
        "gyration, nearly opposite": (ball.gyration, (x, _on_ray(x, y, -0.999), v), jball.gyration),
    }


def _on_ray(x, y, a):
    """y's curve moved so that it starts at a x_0 (parallel to x_0, opposite for a < 0):
    where the gyration's plane degenerates (q^2 = 0 at coefficient 0)."""
    out = y.clone()
    out[0] = a * x[0]
    return out


@pytest.mark.parametrize("c", [1.0, 2.5])
def test_poincare_maps_match_nested_jvp_of_the_runtime(c):
    """Jets along random quadratic curves against nested torch.func.jvp of the runtime's
    PoincareBall methods (float64, <= 1e-9), including curves through the origin."""
    worst = {}
    for top, names in [(4, None), (6, AT_ORDER_6[c])]:
        cases = _ball_cases(c, top)
        for name, (f, args, g) in cases.items():
            if names is not None and name not in names:
                continue
            ref = torch_nested(f, list(args), top).numpy()
            for K in range(1, top + 1):
                ours = TT.to_derivatives(g(*(a[: K + 1] for a in args))).numpy()
                err = rel_err(ours, ref[: K + 1])
                worst[name] = max(worst.get(name, 0.0), err)
                assert err <= 1e-9, f"c={c} {name} K={K}: {err:.1e}"
    print(f"ACC poincare c={c}: " + ", ".join(f"{k} {e:.0e}" for k, e in worst.items()))


def test_dist_where_the_curves_meet_is_the_zero_jet():
    x, y, *_ = _curves(3, 1, 1.0)
    y[0] = x[0]
    out = TT.PoincareBall(1.0).dist(x, y)
    assert torch.isfinite(out).all() and not out.any()


def test_euclidean_and_torus_maps():
    rng = np.random.default_rng(2)
    x = torch.tensor(random_jet(rng, 4, SHAPE) * 4)
    y = torch.tensor(random_jet(rng, 4, SHAPE) * 4)
    e, t = TT.Euclidean(), TT.Torus("radians")
    rt = TR.Torus("radians")
    assert torch.equal(e.expmap0(x), x) and torch.equal(e.logmap(x, y), y - x)
    assert e.transp(x, y, x) is x and t.transp(x, y, y) is y
    for name, args in [("expmap0", (x,)), ("logmap0", (x,)), ("expmap", (x, y)), ("logmap", (x, y)), ("proj", (x,))]:
        ours = getattr(t, name)(*args)
        assert torch.equal(ours[0], getattr(rt, name)(*(a[0] for a in args))), name
        ref = torch_nested(getattr(rt, name), list(args), 4)
        assert rel_err(TT.to_derivatives(ours), ref) <= RTOL, name
    assert rel_err(TT.to_derivatives(t.dist(x, y)), torch_nested(rt.dist, [x, y], 4)) <= RTOL


# --- torch and JAX bindings -----------------------------------------------------------------------


def _everything(A, ball, rule_inputs, curves, qs):
    """Every rule case, every ball map and the even ratios, on one namespace (for one
    jax.jit: eagerly each new op would compile on its own)."""
    out = {name: CASES[name][1](A, *rule_inputs[name]) for name in CASES}
    x, y, v, v0, r, w = curves
    for name, args in [("expmap0", (v,)), ("expmap0 through 0", (v0,)), ("logmap0", (x,)),
                       ("mobius_add", (x, y)), ("dist", (x, y)), ("expmap", (x, v)), ("logmap", (x, y)),
                       ("mobius_scalar", (r, x)), ("proj", (3.0 * x,))]:
        out["ball " + name] = getattr(ball, name.split()[0])(*args)
    out["ball mobius_matvec"] = ball.mobius_matvec(w, x)
    out["ball transp"] = ball.transp(x, y, v)
    out["tanhc"], out["asinhc"] = A.tanhc(qs), A.asinhc(qs)
    return out


def test_torch_and_jax_bindings_agree():
    rule_inputs = {name: _inputs(name, 3, seed=1) for name in CASES}
    curves = [u.numpy() for u in _curves(3, 3, 1.0)]
    qs = np.abs(random_jet(np.random.default_rng(4), 3, (5, 1)))
    qs[0, :, 0] = [0.0, 1e-4, 0.05, 0.4, 3.0]
    t = _everything(algebra("torch"), TT.PoincareBall(1.0),
                    {k: [torch.tensor(a) for a in v] for k, v in rule_inputs.items()},
                    [torch.tensor(a) for a in curves], torch.tensor(qs))
    run = jax.jit(lambda ri, cv, q: _everything(algebra("jax"), JT.PoincareBall(1.0), ri, cv, q))
    j = run({k: [jnp.asarray(a) for a in v] for k, v in rule_inputs.items()}, [jnp.asarray(a) for a in curves],
            jnp.asarray(qs))
    worst = 0.0
    for name in t:
        err = rel_err(np.asarray(j[name]), t[name].numpy())
        worst = max(worst, err)
        assert err <= 1e-12, f"{name}: torch and jax differ by {err:.1e}"
    print(f"ACC torch vs jax f64: {worst:.1e}")


def test_jax_rules_work_under_jit_and_keep_float32():
    x = jnp.asarray(random_jet(np.random.default_rng(0), 3, SHAPE), dtype=jnp.float32)
    out = jax.jit(lambda u: JT.PoincareBall(1.0).expmap0(JT.tanh(u)))(x)
    assert out.dtype == jnp.float32 and out.shape == x.shape
    assert JR.OPS.dtype_name(out) == "float32"


def test_jax_gradients_through_jets_are_finite_at_the_origin():
    """The unused branches of the even ratios and of sqrt0 get safe arguments: no NaN
    gradient where a curve passes through the origin or two curves meet."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 2, 4)) * 0.3
    v[0, 0] = 0.0
    ball = JT.PoincareBall(1.0)

    def f(u):
        p = ball.expmap0(u)
        return jnp.sum(ball.logmap0(p) ** 2) + jnp.sum(ball.dist(p, p))

    g = jax.jit(jax.grad(f))(jnp.asarray(v))
    assert bool(jnp.isfinite(g).all())
