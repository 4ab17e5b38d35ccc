"""Winding numbers and certified margins (geomir.topology): closed loops give their known
integer, unwrapping agrees with numpy.unwrap and refuses what it cannot do, and the margin
is sound (no random or worst-case perturbation below it changes the winding) and tight
(a constructed perturbation just above it does), in float32 and float64, on NumPy, torch
and JAX arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geomir import topology as W

TAU = 2 * math.pi
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def loop(turns: list[int], n: int, period: float = TAU, start: float = 0.3, wobble: float = 0.0) -> np.ndarray:
    """A closed loop of n+1 points (the last equals the first mod P) going around each
    coordinate ``turns[j]`` times, with an optional smooth wobble that keeps it closed."""
    s = np.linspace(0.0, 1.0, n + 1)[:, None]
    k = np.asarray(turns, dtype=np.float64)[None, :]
    angle = start + period * k * s + wobble * np.sin(2 * math.pi * s) * np.arange(1, len(turns) + 1)
    return np.remainder(angle, period)


def oracle(path: np.ndarray, period: float):
    """Independent of geomir: numpy.unwrap, the closed-form margin of the docstring."""
    lifted = np.unwrap(path, axis=-2, period=period)
    disp = lifted[..., -1, :] - lifted[..., 0, :]
    w = np.round(disp / period)
    d = np.diff(lifted, axis=-2)
    step = period / 2 - (np.abs(d).max(axis=-2) if d.shape[-2] else 0.0)
    rnd = period / 2 - np.abs(disp - w * period)
    return lifted, disp, w, np.minimum(step, rnd).min(axis=-1) / 2


@pytest.mark.parametrize("turns", [[0], [1], [-1], [3], [2, -5], [1, 0, -2, 7]])
@pytest.mark.parametrize("lib", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_closed_loops_wind_their_known_integer(turns, lib, dtype):
    path = loop(turns, n=64, wobble=0.4).astype(dtype)
    if lib == "torch":
        path = torch.from_numpy(path)
    elif lib == "jax":
        import jax.numpy as jnp

        if dtype == "float64":
            pytest.skip("jax without x64 computes in float32 (covered by the float32 case)")
        path = jnp.asarray(path)
    r = W.winding(path)
    assert np.asarray(r.winding).tolist() == turns
    assert np.allclose(np.asarray(r.displacement), np.asarray(turns) * TAU, atol=1e-4 if dtype == "float32" else 1e-10)
    assert float(r.margin) > 0


@pytest.mark.parametrize("period", ["radians", "turns", 360.0])
def test_periods(period):
    p = W.period_of(period)
    r = W.winding(loop([2, -1], 50, period=p), period)
    assert r.winding.tolist() == [2, -1] and r.period == p


def test_batched_and_single_point():
    paths = np.stack([loop([k, -k], 40) for k in range(-3, 4)])  # (7, 41, 2)
    r = W.winding(torch.from_numpy(paths))
    assert r.winding.shape == (7, 2) and r.margin.shape == (7,)
    assert r.winding[:, 0].tolist() == list(range(-3, 4))
    one = W.winding(np.array([[1.0, 2.0]]))
    assert one.winding.tolist() == [0, 0] and float(one.margin) == pytest.approx(TAU / 4, rel=1e-12)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(2, 40), m=st.integers(1, 4),
       max_step=st.floats(0.05, 0.49), dtype=st.sampled_from(["float32", "float64"]))
def test_unwrap_matches_numpy_for_steps_below_half_a_period(seed, t, m, max_step, dtype):
    rng = np.random.default_rng(seed)
    true_steps = rng.uniform(-max_step, max_step, (t - 1, m)) * TAU
    lifted = rng.uniform(0, TAU, (1, m)) + np.concatenate([np.zeros((1, m)), np.cumsum(true_steps, 0)])
    path = np.remainder(lifted, TAU).astype(dtype)
    got = W.unwrap(torch.from_numpy(path)).numpy()
    want, disp, w, _ = oracle(path.astype(np.float64), TAU)
    tol = 1e-4 * t if dtype == "float32" else 1e-9
    assert np.allclose(got, want, atol=tol)
    assert np.allclose(got - got[:1], lifted - lifted[:1], atol=tol)  # exact: the true path back
    assert W.winding(path).winding.tolist() == w.astype(int).tolist()


def test_unwrap_refuses_what_it_cannot_unwrap():
    with pytest.raises(W.WindingError, match=r"step 0 -> 1 in coordinate 0 is half a period .* ambiguous"):
        W.winding(np.array([[0.0], [math.pi]]))
    with pytest.raises(W.WindingError, match=r"trajectory 1: step 1 -> 2 in coordinate 1"):
        W.winding(np.array([[[0.0, 0.0], [0.1, 0.1], [0.2, 0.2]], [[0.0, 0.0], [0.1, 0.1], [0.1, 0.1 + math.pi]]]))
    with pytest.raises(W.WindingError, match=r"step 1 -> 2 moves \+0.541 periods in coordinate 0.*sample"):
        W.unwrap(np.array([[0.0], [0.1], [3.5]]), lifted=True)
    assert W.unwrap(np.array([[0.0], [0.1], [3.0]]), lifted=True)[-1, 0] == pytest.approx(3.0)
    with pytest.raises(W.WindingError, match="non-finite angle at index \\(1, 0\\)"):
        W.winding(np.array([[0.0], [np.nan]]))
    with pytest.raises(W.WindingError, match=r"shape \(..., T, m\).*found shape \(5,\)"):
        W.winding(np.zeros(5))
    with pytest.raises(W.WindingError, match="unknown period 'degrees'"):
        W.winding(np.zeros((2, 1)), "degrees")
    with pytest.raises(W.WindingError, match="positive number"):
        W.winding(np.zeros((2, 1)), -1.0)


def test_under_jit_an_ambiguous_step_shows_as_margin_zero():
    import jax
    import jax.numpy as jnp

    margin = jax.jit(lambda x: W.certified_margin(x))
    assert float(margin(jnp.array([[0.0], [math.pi]]))) == 0.0
    assert float(margin(jnp.asarray(loop([1], 30), dtype=jnp.float32))) > 0.5


def random_path(rng, t, m, max_step, dtype):
    steps = rng.uniform(-max_step, max_step, (t - 1, m)) * TAU
    lifted = rng.uniform(0, TAU, (1, m)) + np.concatenate([np.zeros((1, m)), np.cumsum(steps, 0)])
    return np.remainder(lifted, TAU).astype(dtype)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(1, 30), m=st.integers(1, 3),
       max_step=st.floats(0.02, 0.45), frac=st.floats(0.0, 0.999), dtype=st.sampled_from(["float32", "float64"]))
def test_no_perturbation_below_the_margin_changes_the_winding(seed, t, m, max_step, frac, dtype):
    rng = np.random.default_rng(seed)
    path = random_path(rng, t, m, max_step, dtype)
    r = W.winding(path)
    eps = float(r.margin) * frac
    assume(eps > 0)
    # random perturbations, uniform in the max-norm ball and on its corners
    for delta in (rng.uniform(-eps, eps, path.shape), eps * rng.choice([-1.0, 1.0], path.shape)):
        assert W.winding((path + delta.astype(dtype)).astype(dtype)).winding.tolist() == r.winding.tolist()
    # the worst cases of both conditions: the longest step stretched, D pushed to the boundary
    for delta in worst_cases(path.astype(np.float64), eps):
        moved = (path + delta).astype(dtype)
        assert W.winding(moved).winding.tolist() == r.winding.tolist()


def worst_cases(path: np.ndarray, eps: float) -> list[np.ndarray]:
    _, disp, w, _ = oracle(path, TAU)
    cases = []
    push = np.sign(disp - w * TAU)
    push[push == 0] = 1.0
    end = np.zeros_like(path)
    end[-1] += eps * push
    end[0] -= eps * push
    cases.append(end)
    if path.shape[0] > 1:
        d = np.diff(np.unwrap(path, axis=0, period=TAU), axis=0)
        t = np.abs(d).max(axis=1).argmax()
        stretch = np.zeros_like(path)
        stretch[t + 1] += eps * np.sign(d[t])
        stretch[t] -= eps * np.sign(d[t])
        cases.append(stretch)
    return cases


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_margin_is_tight_for_the_displacement_condition(dtype):
    # D ends 0.3 rad short of a half-integer number of turns in coordinate 0.
    n = 40
    target = 2.5 * TAU - 0.3
    path = np.remainder(0.1 + np.linspace(0, target, n)[:, None], TAU).astype(dtype)
    r = W.winding(path)
    assert r.winding.tolist() == [2]
    assert float(r.margin) == pytest.approx(0.15, abs=1e-3 if dtype == "float32" else 1e-9)
    for scale, changes in [(0.999, False), (1.001, True)]:
        delta = np.zeros((n, 1))
        delta[-1] = 0.15 * scale
        delta[0] = -0.15 * scale
        assert (W.winding((path + delta).astype(dtype)).winding.tolist() != [2]) is changes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_margin_is_tight_for_the_step_condition(dtype):
    # A closed loop with one long step of 0.45 periods: the step condition binds.
    short = np.full(20, (TAU - 0.45 * TAU) / 20)
    steps = np.concatenate([short[:10], [0.45 * TAU], short[10:]])
    path = np.remainder(0.2 + np.concatenate([[0.0], np.cumsum(steps)]), TAU)[:, None].astype(dtype)
    r = W.winding(path)
    assert r.winding.tolist() == [1]
    want = (0.5 - 0.45) * TAU / 2
    assert float(r.margin) == pytest.approx(want, abs=1e-3 if dtype == "float32" else 1e-9)
    for scale, changes in [(0.999, False), (1.001, True)]:
        delta = np.zeros_like(path, dtype=np.float64)
        delta[11] = want * scale  # the long step is 10 -> 11
        delta[10] = -want * scale
        assert (W.winding((path + delta).astype(dtype)).winding.tolist() != [1]) is changes


def test_require_margin():
    r = W.winding(np.stack([loop([1], 40), loop([18], 40)]))  # 18 turns in 40 steps: long steps
    W.require_margin(W.winding(loop([1], 40)), 0.1)
    with pytest.raises(W.WindingError, match=r"input \(item 1\): winding margin .* not above the required 0.5: .*1 of 2"):
        W.require_margin(r, 0.5)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_require_margin_refuses_a_single_trajectory(lib):
    """A single (T, m) trajectory has a 0-d margin; it was never refused (finding 1)."""
    path = loop([3, -1], 50) if lib == "numpy" else torch.tensor(loop([3, -1], 50))
    r = W.winding(path)
    assert np.ndim(W._to_numpy(r.margin)) == 0
    W.require_margin(r, 0.1)
    with pytest.raises(W.WindingError, match=r"^input: winding margin .* not above the required 100: .*1 of 1"):
        W.require_margin(r, 100.0)


def test_a_short_step_refused_for_rounding_says_so():
    """float32 angles near 1e7: a short step was refused as 'half a period', with advice
    to sample more finely that cannot help (finding 11). The rounding bound is now the
    step's own: near 1e6 (ulp 0.0625) the steps are accepted, near 1e7 (ulp 1) refused."""
    huge = (1e7 + np.arange(0.0, 40.0))[:, None]
    with pytest.raises(W.WindingError, match=r"^step 0 -> 1 in coordinate 0 moves \+1, but its angles \(1e\+07 and "
                                             r"1e\+07\) are so large that the float32 rounding error of the step can "
                                             r"reach 11.9, so it cannot be told from half a period \(3.14159\): wrap the "
                                             r"angles to \[0, 6.28319\) first or use float64$"):
        W.winding(huge.astype(np.float32))
    assert W.winding(np.mod(huge, TAU).astype(np.float32)).winding.tolist() == [6]  # the advice works
    assert W.winding(huge).winding.tolist() == [6]
    with pytest.raises(W.WindingError, match=r"float64 rounding error of the step can reach 22.2, .*: wrap the angles "
                                             r"to \[0, 6.28319\) first$"):  # float64 already: no advice to use it
        W.winding((1e16 + 4 * np.arange(4.0))[:, None])
    near = (1e6 + np.linspace(0, 3 * TAU, 100))[:, None].astype(np.float32)  # steps of 3 ulps: unambiguous
    r = W.winding(near)
    # w returned, but not certified: the margin subtracts 3 tau = 15 eps (|x_t| + |x_t+1| + P) = 3.6 > P/2
    assert r.winding.tolist() == [3] and float(r.margin) == 0.0
    r = W.winding(near - np.float32(8e5))  # near 2e5: 3 tau = 0.71, local (the old allowance was 9.5)
    assert r.winding.tolist() == [3] and 0.9 < float(r.margin) < (TAU / 2 - 3 * TAU / 99) / 2
    with pytest.raises(W.WindingError, match=r"^step 0 -> 1 in coordinate 0 is half a period \(-3.14159\) up to "
                                             r"rounding \(the float64 error of this step, between angles 0 and "
                                             r"3.14159, can reach 1.05e-14\): .*sample the trajectory more finely$"):
        W.winding(np.array([[0.0], [math.pi]]))  # a real half-period step keeps its message


def test_long_float32_trajectories_are_unwrapped():
    """A 3001-point float32 trajectory of exact P/3 steps was refused as 'half a period'
    and an 8000-point float32 random walk of steps below 1 rad with advice to wrap angles
    that were wrapped: the check used the margin's rounding allowance, which grows like T^2.
    Each step's branch depends on its two angles only. The margin was 0 (uncertified) too;
    its allowance is now local as well, so it is the closed form (P/2 - P/3)/2 = P/12."""
    thirds = np.mod(np.arange(3001) * (TAU / 3) + 0.1, TAU)[:, None].astype(np.float32)
    for x in (thirds, torch.from_numpy(thirds)):
        r = W.winding(x)
        assert np.asarray(r.winding).tolist() == [1000] and float(r.margin) == pytest.approx(TAU / 12, abs=2e-5)
    walk = np.mod(np.cumsum(np.random.default_rng(0).uniform(-1, 1, (8000, 2)), 0), TAU).astype(np.float32)
    want = np.round((np.unwrap(walk.astype(np.float64), axis=0)[-1] - walk[0]) / TAU)
    assert W.winding(torch.from_numpy(walk)).winding.tolist() == want.astype(int).tolist()
    lifted = W.unwrap(walk)
    assert np.allclose(np.diff(lifted, axis=0), np.diff(np.unwrap(walk.astype(np.float64), axis=0), axis=0), atol=1e-5)


def ulp_neighbours(b: np.ndarray, reach: int, stride: int) -> np.ndarray:
    """b and every ``stride``-th of its ``reach`` float neighbours on each side."""
    out = [b]
    up, down = b.copy(), b.copy()
    for i in range(1, reach + 1):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        if i % stride == 0:
            out += [up, down]
    return np.stack(out)


@pytest.mark.parametrize("dtype, scales", [("float32", [1.0, 30.0, 1e3, 1e5]), ("float16", [1.0, 30.0, 1e3])])
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_an_accepted_step_has_the_branch_of_exact_arithmetic(dtype, scales, lib):
    """The per-step rounding bound (docs/winding.md) against adversarial pairs: x_{t+1}
    within a few ulps of x_t + (n + 1/2) P, compared with exact rational arithmetic. An
    accepted step is exactly below half a period and is unwrapped on its exact branch; a
    refused one is within the bound of half a period; both happen."""
    from fractions import Fraction

    rng = np.random.default_rng(7)
    period = Fraction(TAU)
    accepted = refused = 0
    for scale in scales:
        a = rng.uniform(-scale, scale, 30).astype(dtype)
        n = rng.integers(-3, 3, 30)
        for b in ulp_neighbours((a + (n + 0.5) * TAU).astype(dtype), 60, 3):  # the bound is 5 to 40 ulps
            for x0, x1 in zip(a.tolist(), b.tolist()):
                delta = Fraction(x1) - Fraction(x0)
                d = delta - math.floor(delta / period + Fraction(1, 2)) * period  # the exact step
                path = np.array([[x0], [x1]], dtype=dtype)
                try:
                    lifted = W.unwrap(path if lib == "numpy" else torch.from_numpy(path))
                except W.WindingError as e:
                    assert "half a period" in str(e)
                    tol = 5 * np.finfo(dtype).eps * (abs(x0) + abs(x1) + TAU)
                    assert abs(float(d)) > TAU / 2 - 3 * tol  # within (a few times) the bound of P/2
                    refused += 1
                    continue
                assert abs(d) < period / 2
                assert abs(float(np.asarray(lifted)[1, 0]) - float(Fraction(x0) + d)) < TAU / 8  # its branch
                accepted += 1
    assert accepted > 100 and refused > 100


def test_complex_and_bfloat16_inputs():
    """Complex angles were cast to real (dropping the imaginary part) with only a NumPy
    warning; a bfloat16 tensor crashed the eager check with a raw TypeError."""
    for x in (np.array([[0j], [1 + 0j]]), torch.tensor([[0j], [1 + 0j]])):
        with pytest.raises(W.WindingError, match="angles are real numbers, found a complex"):
            W.winding(x)
    r = W.winding(torch.tensor([[0.0], [0.5], [1.0]], dtype=torch.bfloat16))
    assert r.winding.tolist() == [0] and float(r.margin) > 0.5


@pytest.mark.parametrize("period", [True, False, np.bool_(True), None, "2"])
def test_a_period_must_be_a_number(period):
    """period=True was taken as a period of 1."""
    with pytest.raises(W.WindingError, match=r"the period must be a positive number, found|unknown period"):
        W.winding(np.zeros((3, 1)), period=period)


@pytest.mark.parametrize("lib, dtype", [("numpy", "float64"), ("torch", "float32"), ("torch", "float64")])
def test_a_lifted_step_within_rounding_of_half_a_period_is_refused(lib, dtype):
    """Lifted 0 -> a -> 2a, a the largest float below π, passed the check (|step| < P/2) and
    was unwrapped backwards (w = -1, not +1); lifted steps now get the wrapped steps' band."""
    a = np.nextafter(np.array(math.pi, dtype=dtype), np.array(0.0, dtype=dtype))
    edge = np.array([[0.0], [a], [2 * a]], dtype=dtype)
    inside = np.array([[0.0], [3.1415], [6.283]], dtype=dtype)  # 1e-4 inside: outside every band here
    if lib == "torch":
        edge, inside = torch.from_numpy(edge), torch.from_numpy(inside)
    for f in (W.winding, W.unwrap, W.certified_margin):
        with pytest.raises(W.WindingError, match=r"^step 0 -> 1 in coordinate 0 is half a period \(\+3.14159\) up "
                                                 rf"to rounding \(the {dtype} error of this step"):
            f(edge, lifted=True)
    r = W.winding(inside, lifted=True)
    assert r.winding.tolist() == [1] and float(r.displacement[0]) == pytest.approx(6.283, rel=1e-6)
    assert np.asarray(W.unwrap(inside, lifted=True)).tolist() == np.asarray(inside).tolist()
    with pytest.raises(W.WindingError, match=r"so large that the float32 rounding error .* wrap the angles to "
                                             r"\[0, 6.28319\) first \(and pass lifted=False\) or use float64"):
        W.winding(np.array([[1e7], [1e7 + 1]], dtype=np.float32), lifted=True)
