"""The path builtins as compiled by geomc, on the torch and JAX targets, against an
independent NumPy oracle: batched paths (B, T, n) of float32 and float64, radians and
turns, any T (1 included).

Oracle (float64, from the same input values): the lifted path is
``np.unwrap(x, axis=-2, period=P)``; the displacement D is its last point minus its first;
the winding vector is ``np.round(D / P)``; the endpoint is the last point mod P; the
margin is the closed form

    max(0, min over coordinates, and over c in (steps, chord x_0 -> x_T), of (P/2 - |d_c| - 3 tau_c) / 2)

with d_t the lifted steps, d_chord = D - wP and tau_c = 5 eps (|a| + |b| + P) for the two
points a, b of c (eps of the input's dtype; tiny). Closed loops wound k times give exactly k.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import geomir

from . import x64  # noqa: F401  (fixture: jax float64 in this module)

pytestmark = pytest.mark.usefixtures("x64")

PERIODS = {"radians": 2 * math.pi, "turns": 1.0}
N = 3  # angles per point
OPS = ("unwrap", "winding", "winding_margin", "endpoint")
DTYPES = {"f32": np.float32, "f64": np.float64}


def _name(op: str, units: str, dtype: str) -> str:
    return f"{op.title().replace('_', '')}_{units}_{dtype}"


def _program() -> str:
    lines = ["manifold T = torus(units = radians)", "manifold U = torus(units = turns)", ""]
    for units, manifold in (("radians", "T"), ("turns", "U")):
        for dtype in DTYPES:
            for op in OPS:
                result = {"unwrap": f"R[{N}, {dtype}]", "winding": f"R[{N}, {dtype}]",
                          "winding_margin": f"R[1, {dtype}]", "endpoint": f"{manifold}[{N}, {dtype}]"}[op]
                lines += [f"model {_name(op, units, dtype)}(p: path {manifold}[{N}, {dtype}]) -> {result} {{",
                          f"  return {op}(p)", "}", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    cache = tmp_path_factory.mktemp("winding")
    source = _program()
    return {target: geomir.compile(source, target=target, cache_dir=cache) for target in ("torch", "jax")}


def _run(compiled, target: str, op: str, units: str, dtype: str, x: np.ndarray) -> np.ndarray:
    fn = getattr(compiled[target], _name(op, units, dtype))
    if target == "torch":
        out = fn({}, torch.from_numpy(x))
        assert out.dtype == {"f32": torch.float32, "f64": torch.float64}[dtype]
        return out.numpy().astype(np.float64)
    out = fn({}, jnp.asarray(x))
    assert out.dtype == jnp.dtype(DTYPES[dtype])
    return np.asarray(out, np.float64)


# --- the oracle ------------------------------------------------------------------------------


def oracle(x: np.ndarray, period: float) -> dict[str, np.ndarray]:
    """Everything from numpy, in float64, from the input values ``x`` (B, T, n)."""
    eps = np.finfo(x.dtype).eps
    x = x.astype(np.float64)
    lifted = np.unwrap(x, axis=-2, period=period)
    d = np.diff(lifted, axis=-2)
    disp = lifted[..., -1, :] - lifted[..., 0, :]
    w = np.round(disp / period)
    # each step and the chord x_0 -> x_T, less 3 tau, tau = 5 eps (|a| + |b| + P) its rounding bound
    size = np.concatenate([np.abs(x[..., :1, :]) + np.abs(x[..., -1:, :]),
                           np.abs(x[..., :-1, :]) + np.abs(x[..., 1:, :])], axis=-2)
    length = np.concatenate([np.abs(disp - w * period)[..., None, :], np.abs(d)], axis=-2)
    slack = (period / 2 - length - 15 * eps * (size + period)).min(-2) / 2
    margin = np.maximum(0.0, slack.min(-1, keepdims=True))
    return {"unwrap": disp, "winding": w, "winding_margin": margin, "endpoint": np.mod(x[..., -1, :], period),
            "lifted": lifted}


def random_paths(rng, batch: int, length: int, period: float, dtype, max_step: float = 0.45, n: int = N) -> np.ndarray:
    """Random walks on the torus (steps shorter than max_step periods), wrapped to [0, P)."""
    start = rng.uniform(0, period, (batch, 1, n))
    steps = rng.uniform(-max_step, max_step, (batch, length - 1, n)) * period
    walk = np.concatenate([start, start + np.cumsum(steps, axis=-2)], axis=-2)
    return np.mod(walk, period).astype(dtype)


def _close(got, want, dtype: str, what: str, period: float):
    tol = {"f64": 1e-9, "f32": 2e-5}[dtype] * max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, period), err_msg=what)


# --- tests -----------------------------------------------------------------------------------

CASES = [(target, units, dtype) for target in ("torch", "jax") for units in PERIODS for dtype in DTYPES]
IDS = [f"{t}-{u}-{d}" for t, u, d in CASES]


@pytest.mark.parametrize(("target", "units", "dtype"), CASES, ids=IDS)
@pytest.mark.parametrize("length", [1, 2, 17, 200])
def test_path_ops_match_numpy(compiled, target, units, dtype, length):
    period = PERIODS[units]
    rng = np.random.default_rng([length, len(units), len(dtype)])
    x = random_paths(rng, 6, length, period, DTYPES[dtype])
    want = oracle(x, period)
    for op in ("unwrap", "winding", "endpoint"):
        got = _run(compiled, target, op, units, dtype, x)
        assert got.shape == want[op].shape, (op, got.shape)
        if op == "winding":
            np.testing.assert_array_equal(got, want[op], err_msg=f"{target} winding {units} {dtype} T={length}")
            assert np.all(got == np.round(got))
        elif op == "endpoint":  # angles: compare on the circle (P and 0 are the same angle)
            diff = (got - want[op] + period / 2) % period - period / 2
            _close(diff, np.zeros_like(diff), dtype, f"{target} endpoint", period)
            assert np.all((got >= 0) & (got < period))
        else:
            _close(got, want[op], dtype, f"{target} {op} {units} {dtype} T={length}", period)
    margin = _run(compiled, target, "winding_margin", units, dtype, x)
    assert margin.shape == (6, 1) and np.all(margin >= 0)
    if dtype == "f64":
        np.testing.assert_allclose(margin, want["winding_margin"], rtol=1e-6, atol=1e-12)
    else:
        np.testing.assert_allclose(margin, want["winding_margin"], rtol=0, atol=1e-4 * max(1.0, period / 2 / math.pi))


@pytest.mark.parametrize(("target", "units", "dtype"), CASES, ids=IDS)
def test_loops_wound_k_times_give_exactly_k(compiled, target, units, dtype):
    """x_t = k P t / L (mod P), t = 0..L: a closed loop wound k_i times around angle i."""
    period = PERIODS[units]
    ks = np.array([[-5, 0, 3], [7, -1, 1], [2, -7, 0], [-3, 6, -4]])
    length = 4 * int(np.abs(ks).max()) + 3  # steps below P/4: certified
    t = np.arange(length + 1) / length
    x = np.mod(ks[:, None, :] * period * t[None, :, None], period).astype(DTYPES[dtype])
    w = _run(compiled, target, "winding", units, dtype, x)
    np.testing.assert_array_equal(w, ks.astype(np.float64))
    d = _run(compiled, target, "unwrap", units, dtype, x)
    _close(d, ks * period, dtype, "loop displacement", period)
    margin = _run(compiled, target, "winding_margin", units, dtype, x)
    assert np.all(margin > period / 16), margin  # steps <= P/4.3 or so: a wide certified margin
    np.testing.assert_allclose(margin, oracle(x, period)["winding_margin"], rtol=1e-6 if dtype == "f64" else 0,
                               atol=1e-12 if dtype == "f64" else 1e-4 * max(1.0, period / 2 / math.pi))


@pytest.mark.parametrize(("target", "units", "dtype"), CASES, ids=IDS)
def test_one_point_path(compiled, target, units, dtype):
    period = PERIODS[units]
    x = np.array([[[0.1, 0.5, 0.9]]]) * period
    x = x.astype(DTYPES[dtype])
    assert np.all(_run(compiled, target, "winding", units, dtype, x) == 0)
    assert np.all(_run(compiled, target, "unwrap", units, dtype, x) == 0)
    margin = _run(compiled, target, "winding_margin", units, dtype, x)
    np.testing.assert_allclose(margin, [[period / 4]], rtol=1e-4)


@pytest.mark.parametrize(("target", "dtype"), [(t, d) for t in ("torch", "jax") for d in DTYPES])
def test_a_step_at_half_a_period_is_uncertified(compiled, target, dtype):
    """A step of exactly P/2 could go either way: margin 0."""
    period = PERIODS["radians"]
    x = np.array([[[0.0, 0.0, 0.0], [period / 2, 0.1, 0.2]]]).astype(DTYPES[dtype])
    assert _run(compiled, target, "winding_margin", "radians", dtype, x)[0, 0] == 0.0


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_torch_module_form_and_leading_axes(compiled, dtype):
    """The nn.Module form runs too, and any leading axes broadcast (here (2, 3, T, n))."""
    period = PERIODS["radians"]
    rng = np.random.default_rng(7)
    x = random_paths(rng, 6, 9, period, DTYPES[dtype]).reshape(2, 3, 9, N)
    module = getattr(compiled["torch"], _name("winding", "radians", dtype) + "Module")()
    got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, oracle(x, period)["winding"])


def test_jax_jit(compiled):
    import jax

    period = PERIODS["turns"]
    x = random_paths(np.random.default_rng(3), 4, 33, period, np.float64)
    fn = jax.jit(getattr(compiled["jax"], _name("winding_margin", "turns", "f64")))
    np.testing.assert_allclose(np.asarray(fn({}, jnp.asarray(x))), oracle(x, period)["winding_margin"], rtol=1e-6)


def test_the_example_runs_on_both_targets(tmp_path):
    """examples/winding/phase_memory.geo: Readout on torch and JAX agree (same seed)."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "winding" / "phase_memory.geo"
    mt = geomir.compile(example, target="torch", cache_dir=tmp_path)
    mj = geomir.compile(example, target="jax", cache_dir=tmp_path)
    period = PERIODS["radians"]
    x = random_paths(np.random.default_rng(11), 5, 40, period, np.float64, n=4)
    want = oracle(x, period)
    pt, pj = mt.init_params(0, torch.float64), mj.init_params(0, jnp.float64)
    rt = mt.Readout(pt, torch.from_numpy(x)).numpy()
    rj = np.asarray(mj.Readout(pj, jnp.asarray(x)))
    np.testing.assert_allclose(rt, rj, rtol=1e-12, atol=1e-12)
    e = (want["endpoint"] + period / 2) % period - period / 2  # logmap0 of the endpoint
    w = pt["Readout.linear0.weight"].numpy()
    expected = (np.tanh(want["unwrap"] / period) + np.sin(e)) @ w.T + pt["Readout.linear0.bias"].numpy()
    np.testing.assert_allclose(rt, expected, rtol=1e-9, atol=1e-9)
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(mt.Winding({}, torch.from_numpy(x32)).numpy(), oracle(x32, period)["winding"])
    np.testing.assert_array_equal(np.asarray(mj.Winding({}, jnp.asarray(x32))), oracle(x32, period)["winding"])
