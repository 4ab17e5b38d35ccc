"""Long trajectories: the displacement is (x_T - x_0) - P K with K an exact sum of integer
branches and w = k_e - K (the chord's branch minus K), so the winding does not drift with T,
and the certified margin's rounding allowance is local (5 eps (|a| + |b| + P) per step and
for the chord), so it does not shrink with T. Before, D was a float sum of T steps (NumPy
sums axis -2 one row at a time: off by 4 turns at 10^6 float32 steps) and the allowance
grew like T^2 (margin 0 from T ~ 2000 float32 steps on)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomir import topology as W
from geomir.backends.common import winding as _w

TAU = 2 * math.pi


def reference(x: np.ndarray, period: float = TAU):
    """Independent of geomir's formulas: integer branches in int64, everything else in
    float64 from the input values; the closed-form margin min(P/2 - max|d_t|, P/2 - |D - wP|)/2
    (no rounding allowance) and the most geomir may subtract for rounding, 3 tau / 2 with
    tau = 5 eps (|a| + |b| + P) the largest per-step rounding bound, plus the float64 error of
    this reference itself (of D, ~ 1e-16 |D|) and of the margin in x's dtype (eps P)."""
    eps = np.finfo(x.dtype).eps
    x = x.astype(np.float64)
    raw = np.diff(x, axis=-2)
    k = np.floor(raw / period + 0.5).astype(np.int64)
    d = raw - period * k
    disp = (x[..., -1, :] - x[..., 0, :]) - period * k.sum(-2)
    w = np.round(disp / period).astype(np.int64)
    longest = np.abs(d).max(-2) if d.shape[-2] else 0.0
    closed = np.minimum(period / 2 - longest, period / 2 - np.abs(disp - w * period)).min(-1) / 2
    allowance = 1.5 * 5 * eps * (np.abs(x).max() * 2 + period) + eps * period + 1e-15 * (np.abs(disp).max() + period)
    return w, disp, closed, allowance


def drift(t: int, m: int, seed: int, lo: float = 0.5, hi: float = 2.0) -> np.ndarray:
    """A float32 path of t points turning one way (steps uniform in [lo, hi] rad), wrapped."""
    steps = np.random.default_rng(seed).uniform(lo, hi, (t, m))
    return np.mod(np.cumsum(steps, 0) + 0.1, TAU).astype(np.float32)


@pytest.fixture(scope="module")
def million():
    """10^6 float32 points, 2 coordinates, ~199 000 turns each."""
    return drift(10**6, 2, seed=1)


def test_a_million_float32_steps_wind_exactly_with_a_positive_margin(million):
    """(a) The float-summed D of NumPy was off by up to 25 rad: w was [198908, 198975] for
    [198909, 198971] (torch and jax, summing pairwise, happened to be right), and the margin
    was 0. Now w is exact on every library and the margin is the closed form up to its rounding allowance."""
    w_ref, disp_ref, closed, allowance = reference(million)
    assert w_ref.tolist() == [198909, 198971]
    import jax.numpy as jnp

    for x in (million, torch.from_numpy(million), jnp.asarray(million)):
        r = W.winding(x)
        assert np.asarray(r.winding).tolist() == w_ref.tolist()
        np.testing.assert_allclose(np.asarray(r.displacement, np.float64), disp_ref, rtol=0, atol=0.5)  # ulp(1.25e6)/2 = 0.06
        m = float(r.margin)
        assert 0.48 < m and closed - allowance <= m <= closed + 1e-6, (m, closed, allowance)
    # what the old code did: a float sum of the steps along axis -2
    old = np.round(_w.steps(W.ops_for(million)[0], million, TAU).sum(-2) / TAU)
    assert old.tolist() != w_ref.tolist()


def test_the_margin_no_longer_shrinks_with_length():
    """A float32 random walk of steps below 1 rad: the old allowance reached the whole margin
    at about T = 2000; now the margin depends only on the longest step and the chord."""
    rng = np.random.default_rng(0)
    for t in (100, 2_000, 20_000, 200_000):
        walk = np.mod(np.cumsum(rng.uniform(-1, 1, (t, 2)), 0), TAU).astype(np.float32)
        w_ref, _, closed, allowance = reference(walk)
        r = W.winding(walk)
        assert r.winding.tolist() == w_ref.tolist()
        assert closed - allowance <= float(r.margin) <= closed + 1e-6
        assert float(r.margin) > 0.05 or closed < 0.06


def test_unwrap_does_not_drift(million):
    """unwrap is x_t - P (k_0 + ... + k_{t-1}): every point within two roundings of the exact
    lift, its last minus first point the displacement; a running float sum of d_t drifts."""
    x = million[:200_000]
    lifted = W.unwrap(x)
    xx = x.astype(np.float64)
    k = np.floor(np.diff(xx, axis=0) / TAU + 0.5).astype(np.int64)
    exact = np.concatenate([xx[:1], xx[1:] - TAU * np.cumsum(k, 0)])
    err = np.abs(lifted.astype(np.float64) - exact)
    assert err.max() <= np.spacing(np.abs(exact).max().astype(np.float32)) * 2
    np.testing.assert_allclose(lifted[-1] - lifted[0], W.winding(x).displacement, rtol=0, atol=0.1)


# --- (b) soundness: no perturbation just below the margin changes w ----------------------------


def below(x: np.ndarray, delta: np.ndarray, bound: float) -> np.ndarray:
    """x + delta rounded to x's dtype, then moved an ulp back toward x wherever rounding took
    it to ``bound`` or beyond: a float path strictly within ``bound`` of x in max-norm."""
    moved = (x.astype(np.float64) + delta).astype(x.dtype)
    far = np.abs(moved.astype(np.float64) - x) >= bound
    moved[far] = np.nextafter(moved[far], x[far])
    assert np.abs(moved.astype(np.float64) - x).max(initial=0.0) < bound
    return moved


def attacks(x: np.ndarray, eps: float, rng) -> list[np.ndarray]:
    """Random uniform and corner perturbations of size eps, the longest step of each
    coordinate stretched by 2 eps, the chord pushed toward the half-integer by 2 eps, both."""
    xx = x.astype(np.float64)
    out = [rng.uniform(-eps, eps, x.shape), eps * rng.choice([-1.0, 1.0], x.shape)]
    cols = np.arange(x.shape[-1])
    chord = np.zeros_like(xx)
    e = (xx[-1] - xx[0]) - TAU * np.floor((xx[-1] - xx[0]) / TAU + 0.5)
    push = np.where(e >= 0, 1.0, -1.0)
    chord[-1] += eps * push
    chord[0] -= eps * push
    out.append(chord)
    if x.shape[0] > 1:
        d = _w.steps(W.ops_for(xx)[0], xx, TAU)
        t = np.abs(d).argmax(0)
        stretch = np.zeros_like(xx)
        stretch[t + 1, cols] += eps * np.sign(d[t, cols])
        stretch[t, cols] -= eps * np.sign(d[t, cols])
        out.append(stretch)
        both = stretch.copy()
        free = (t != 0) & (t + 1 != x.shape[0] - 1)  # the chord's points are not the step's
        both[0, free] = chord[0, free]
        both[-1, free] = chord[-1, free]
        out.append(both)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), t=st.sampled_from([1, 2, 5, 40, 500, 3000, 12000]), m=st.integers(1, 3),
       kind=st.sampled_from(["walk", "drift"]), max_step=st.floats(0.05, 0.499),
       turns=st.integers(-10**4, 10**4), frac=st.floats(0.9, 0.999999),
       dtype=st.sampled_from(["float32", "float64"]))
def test_no_perturbation_just_below_the_margin_changes_the_winding(seed, t, m, kind, max_step, turns, frac, dtype):
    """(b) Long walks and one-way drifts, wrapped or offset by up to 10^4 turns (large angles,
    where the rounding bound matters): the winding is the reference's, the margin is the
    closed form within the largest rounding bound (it was 0 for long float32 paths), and no
    perturbation of max-norm below it (random, corners, worst cases) changes the winding."""
    rng = np.random.default_rng(seed)
    lo = 0.0 if kind == "drift" else -max_step
    steps = rng.uniform(lo, max_step, (t - 1, m)) * TAU
    lifted = rng.uniform(0, TAU, (1, m)) + np.concatenate([np.zeros((1, m)), np.cumsum(steps, 0)])
    x = (np.remainder(lifted, TAU) + turns * TAU).astype(dtype)
    try:
        r = W.winding(x)
    except W.WindingError as e:
        assert "half a period" in str(e) and abs(turns) > 1000 and dtype == "float32"  # |x| ~ 6e4: tau ~ 0.07
        return
    w_ref, _, closed, allowance = reference(x)
    assert r.winding.tolist() == w_ref.tolist()
    margin = float(r.margin)
    assert max(closed - allowance, 0.0) <= margin <= closed + 1e-6
    if margin == 0.0:
        return
    eps = margin * frac
    for delta in attacks(x, eps, rng):
        moved = below(x, delta, margin)
        assert W.winding(moved).winding.tolist() == r.winding.tolist()
        assert W.winding(torch.from_numpy(moved)).winding.tolist() == r.winding.tolist()


# --- (c) numpy, torch and jax (jit) agree; gradients are those of the step sum ------------------


@pytest.mark.parametrize("t", [1, 2, 3000, 10**6])
def test_numpy_torch_and_jitted_jax_agree(million, t):
    import jax
    import jax.numpy as jnp

    x = million[:t]
    want = W.winding(x)
    jitted = jax.jit(lambda y: (W.winding(y).winding, W.winding(y).displacement, W.certified_margin(y), W.unwrap(y)))
    for got in (W.winding(torch.from_numpy(x)), W.winding(jnp.asarray(x))):
        assert np.asarray(got.winding).tolist() == want.winding.tolist()
        np.testing.assert_array_equal(np.asarray(got.displacement), want.displacement)
        np.testing.assert_array_equal(np.asarray(got.margin), want.margin)
    w, disp, margin, lifted = jitted(jnp.asarray(x))
    assert np.asarray(w).tolist() == want.winding.tolist()
    np.testing.assert_allclose(np.asarray(disp), want.displacement, rtol=3e-7, atol=1e-6)  # an ulp: XLA may fuse (FMA)
    np.testing.assert_allclose(float(margin), float(want.margin), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lifted), W.unwrap(x), rtol=3e-7, atol=1e-6)


def _old_displacement(ops, x):
    return ops.sum_steps(_w.steps(ops, x, TAU))


def _old_unwrap(ops, x):
    return ops.concat_steps([x[..., :1, :], x[..., :1, :] + ops.cumsum_steps(_w.steps(ops, x, TAU))])


def test_gradients_are_those_of_the_step_sum():
    """d D / d x = d (Σ d_t) / d x (+1 at x_T, -1 at x_0), and the lift's Jacobian is that of
    x_0 + d_0 + ... + d_{t-1}; in torch autograd and in jax.grad under jit."""
    import jax
    import jax.numpy as jnp

    from geomir.backends.jax.runtime import OPS as JOPS
    from geomir.backends.torch.runtime import OPS as TOPS

    x = drift(50, 3, seed=2).astype(np.float64)
    c = np.random.default_rng(3).normal(size=(50, 3))
    cd = c[0]

    def torch_grads(f):
        xt = torch.tensor(x, requires_grad=True)
        out = f(TOPS, xt)
        weight = torch.tensor(cd if out.dim() == 1 else c)
        (out * weight).sum().backward()
        return xt.grad.numpy()

    new_d = torch_grads(lambda o, y: _w.displacement(o, y, TAU))
    np.testing.assert_array_equal(new_d, torch_grads(_old_displacement))
    assert np.array_equal(new_d[-1], cd) and np.array_equal(new_d[0], -cd) and not new_d[1:-1].any()
    np.testing.assert_allclose(torch_grads(lambda o, y: _w.unwrap(o, y, TAU)), torch_grads(_old_unwrap), rtol=0, atol=1e-12)
    xj = jnp.asarray(x, jnp.float32)

    def jax_grad(f, weight):
        return np.asarray(jax.jit(jax.grad(lambda y: jnp.sum(f(JOPS, y) * weight)))(xj))

    np.testing.assert_allclose(jax_grad(lambda o, y: _w.displacement(o, y, TAU), jnp.asarray(cd, jnp.float32)),
                               jax_grad(_old_displacement, jnp.asarray(cd, jnp.float32)), rtol=0, atol=1e-6)
    np.testing.assert_allclose(jax_grad(lambda o, y: _w.unwrap(o, y, TAU), jnp.asarray(c, jnp.float32)),
                               jax_grad(_old_unwrap, jnp.asarray(c, jnp.float32)), rtol=0, atol=1e-5)
    # the margin is differentiable too (finite everywhere)
    g = jax.jit(jax.grad(lambda y: _w.margin(JOPS, y, TAU).sum()))(xj)
    assert np.all(np.isfinite(np.asarray(g)))


# --- the exact-count limit ----------------------------------------------------------------------


def half_turns(t: int, dtype, step: float = 0.45) -> np.ndarray:
    """t points stepping ``step`` periods (a cut crossing about every 1/step steps), wrapped."""
    return np.mod(0.1 + step * TAU * np.arange(t), TAU)[:, None].astype(dtype)


def test_too_many_turns_for_the_dtype_are_refused_or_uncertified():
    """float16 counts integers exactly up to 2^11 = 2048: 1800 turns (1799 cut crossings and
    the chord's branch) are counted right; 2250 are refused eagerly (the winding could be
    wrong) and give margin 0 under jit. bfloat16 counts up to 2^8 = 256."""
    import jax
    import jax.numpy as jnp

    ok, many = half_turns(4000, np.float16), half_turns(5000, np.float16)
    w_ref = reference(ok)[0]
    for x in (ok, torch.from_numpy(ok)):
        r = W.winding(x)
        assert np.asarray(r.winding).tolist() == w_ref.tolist() and float(r.margin) > 0
    for x in (many, torch.from_numpy(many)):
        with pytest.raises(W.WindingError, match=r"^coordinate 0 crosses the angles' cut 2250 times; float16 counts "
                                                 r"turns exactly only below 2048 \(2\^11\), so the winding could be "
                                                 r"wrong: use float64$"):
            W.winding(x)
    margin = jax.jit(W.certified_margin)
    assert float(margin(jnp.asarray(ok))) > 0 and float(margin(jnp.asarray(many))) == 0.0
    bf = torch.from_numpy(half_turns(1000, np.float32, 0.3)).to(torch.bfloat16)  # 300 turns
    with pytest.raises(W.WindingError, match=r"bfloat16 counts turns exactly only below 256"):
        W.winding(bf)
