"""The categorical API's laws (issue 9), float64, through the torch and the JAX backends:

* push_forward is a functor: push_forward(f o h) = push_forward(f) o push_forward(h) on any
  jet (random coefficients of every order, not only lines), and the identity is kept;
* pull_back is the adjoint of push_forward: <pull_back(f, x, w), v> = <w, Df(x) v>;
* the jets agree with independent automatic differentiation of the generated code
  (nested torch.func.jvp; jax.experimental.jet), hvp and laplacian with torch.func.hessian;
* parallel transport composes along a geodesic, keeps the metric and is undone by
  transporting back.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import geomir as g  # noqa: E402
from geomir.diagnostics import UsageError  # noqa: E402

H = g.PoincareBall(c=0.8, name="H")


@g.trace(x=H.point(3, "f64"))
def enc(x):
    return g.mobius_tanh(g.mobius_linear(x, 3, 5))


@g.trace(z=H.point(5, "f64"))
def dec(z):
    return g.coords(g.tanh(g.linear(g.logmap0(z), 5, 2)))


@g.trace(x=H.point(3, "f64"))
def dec_enc(x):
    return dec(enc(x))


@g.trace(x=g.R(3, "f64"))
def ident(x):
    return x


@g.trace(x=g.R(3, "f64"))
def energy(x):
    h = g.tanh(g.linear(x, 3, 16))
    return g.linear(g.sin(h), 16, 1)


def _backend(name):
    if name == "torch":
        return lambda a: torch.tensor(np.asarray(a), dtype=torch.float64), lambda t: t.detach().numpy()
    jnp = pytest.importorskip("jax.numpy")
    import jax

    jax.config.update("jax_enable_x64", True)
    return lambda a: jnp.asarray(np.asarray(a), dtype=jnp.float64), np.asarray


BACKENDS = ["torch", "jax"]


def _params(f, conv):
    return {k: conv(v.numpy()) for k, v in f.compile("torch").init_params(0, torch.float64).items()}


def _ball_points(rng, shape, scale=0.3):
    v = rng.normal(0, scale, shape)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.tanh(math.sqrt(0.8) * n) * v / (math.sqrt(0.8) * n)  # expmap0 on the ball of c = 0.8


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), order=st.integers(1, 5))
def test_push_forward_is_a_functor(backend, seed, order):
    conv, back = _backend(backend)
    rng = np.random.default_rng(seed)
    P = _params(dec_enc, conv)
    coeffs = rng.normal(0, 0.2, (order + 1, 4, 3))
    coeffs[0] = _ball_points(rng, (4, 3))
    J = g.Jet(conv(coeffs))
    whole = g.push_forward(dec_enc, J, params=P)
    parts = g.push_forward(dec, g.push_forward(enc, J, params=P), params=P)
    assert whole.order == order and back(whole.coefficients).shape == (order + 1, 4, 2)
    np.testing.assert_allclose(back(whole.coefficients), back(parts.coefficients), rtol=1e-11, atol=1e-12)
    same = g.push_forward(ident, g.Jet(conv(rng.normal(size=(order + 1, 4, 3)))))
    assert same.order == order


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_pull_back_is_the_adjoint_of_push_forward(backend, seed):
    conv, back = _backend(backend)
    rng = np.random.default_rng(seed)
    P = _params(dec_enc, conv)
    x, v, w = conv(_ball_points(rng, (6, 3))), conv(rng.normal(size=(6, 3))), conv(rng.normal(size=(6, 2)))
    pushed = g.push_forward(dec_enc, g.lift_to_jet(x, 1, v), params=P)[1]
    pulled = g.pull_back(dec_enc, x, w, params=P)
    lhs = (back(pulled) * back(v)).sum(-1)
    rhs = (back(w) * back(pushed)).sum(-1)
    _assert_close_normwise(lhs, rhs, 1e-12)
    y, t = g.jvp(dec_enc, x, v, params=P)
    _assert_close_normwise(back(t), back(pushed), 1e-13)
    y2, pulled2 = g.vjp(dec_enc, x, w, params=P)
    _assert_close_normwise(back(y), back(y2), 1e-13)
    _assert_close_normwise(back(pulled), back(pulled2), 1e-13)


def _assert_close_normwise(a, b, rtol):
    """||a - b|| <= rtol * ||b||: the same value computed along two routes (jet, autograd)
    differs by round-off relative to the whole array, not to each entry (entries near zero
    differed by 2.5e-13 of themselves at seeds 194 and 72883602)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)
    assert err <= rtol, f"differ by {err:.2e} (relative, norm-wise), allowed {rtol:.0e}"


def test_jets_match_nested_torch_func_jvp():
    rng = np.random.default_rng(1)
    P = dec_enc.compile("torch").init_params(0, torch.float64)
    model = dec_enc.compile("torch").dec_enc
    x = torch.tensor(_ball_points(rng, (3,)), dtype=torch.float64)
    v = torch.tensor(rng.normal(size=3), dtype=torch.float64)
    K = 4
    jet = g.push_forward(dec_enc, g.lift_to_jet(x, K, v), params=P)

    _assert_matches_nested_jvp(jet, lambda t: model(P, x + t * v), K)


@g.trace(a=H.point(3, "f64"), b=H.point(3, "f64"), c=H.point(3, "f64"))
def carried(a, b, c):
    return g.holonomy(g.logmap(a, b), a, b, c)


def test_jets_through_holonomy_match_nested_torch_func_jvp():
    """The jet rule of geo.holonomy (the transport rule, edge after edge) against
    independent forward-mode AD of the generated code, up to order 3."""
    rng = np.random.default_rng(4)
    a, b, c = (torch.tensor(_ball_points(rng, (3,), 0.4), dtype=torch.float64) for _ in range(3))
    v = torch.tensor(rng.normal(size=3), dtype=torch.float64)
    jet = g.push_forward(carried, g.lift_to_jet(a, 3, v), b, c)
    model = carried.compile("torch").carried
    _assert_matches_nested_jvp(jet, lambda t: model({}, a + t * v, b, c), 3)


@g.trace(x=H.point(3, "f64"))
def residual(x):
    return g.expmap(x, g.tanh(g.linear(g.logmap0(x), 3)))  # a tangent at the origin used at x


@g.trace(x=g.Sphere().point(3, "f64"))
def on_sphere(x):
    return g.dist(x, g.expmap(x, g.sigmoid(g.linear(g.logmap0(x), 3))))


@pytest.mark.parametrize("model", [residual, on_sphere], ids=["ball_residual", "sphere"])
def test_push_forward_transports_as_the_model_does(model):
    """push_forward is built on the model after insert-transport (a tangent at the origin
    is carried to x before expmap(x, .)), as jvp is: every coefficient matches the model's."""
    rng = np.random.default_rng(7)
    mod = model.compile("torch")
    P = mod.init_params(0, torch.float64)
    x = torch.tensor(_ball_points(rng, (2, 3)), dtype=torch.float64)
    if model is on_sphere:
        x = torch.nn.functional.normalize(x, dim=-1)
    v = torch.tensor(rng.normal(size=(2, 3)), dtype=torch.float64)
    jet = g.push_forward(model, g.lift_to_jet(x, 3, v), params=P)
    fn = getattr(mod, model.name)
    np.testing.assert_allclose(jet[0].numpy(), fn(P, x).numpy(), rtol=1e-12)
    _assert_matches_nested_jvp(jet, lambda t: fn(P, x + t * v), 3)
    np.testing.assert_allclose(jet[1].numpy(), g.jvp(model, x, v, params=P)[1].numpy(), rtol=1e-12, atol=1e-14)


def _assert_matches_nested_jvp(jet, curve, K):
    """Coefficients 1..K of ``jet`` against k nested torch.func.jvp of ``curve`` at t = 0."""
    derivative = curve
    for k in range(1, K + 1):
        derivative = (lambda d: lambda t: torch.func.jvp(d, (t,), (torch.ones_like(t),))[1])(derivative)
        expected = derivative(torch.tensor(0.0, dtype=torch.float64))
        np.testing.assert_allclose(jet[k].numpy(), expected.numpy(), rtol=1e-9, atol=1e-11)


def test_jets_through_holonomy_angle_match_nested_torch_func_jvp():
    """The rotation angle of the holonomy (atan2 of the area form and the metric on jets):
    the traced jet against forward-mode AD of the generated code, up to order 3; reverse
    mode gives the same first derivative."""
    @g.trace(a=H.point(2, "f64"), b=H.point(2, "f64"), c=H.point(2, "f64"))
    def turn(a, b, c):
        return g.holonomy_angle(g.logmap(a, b), a, b, c)

    rng = np.random.default_rng(6)
    a, b, c = (torch.tensor(_ball_points(rng, (2,), 0.5), dtype=torch.float64) for _ in range(3))
    v = torch.tensor(rng.normal(size=2), dtype=torch.float64)
    jet = g.push_forward(turn, g.lift_to_jet(a, 3, v), b, c)
    model = turn.compile("torch").turn
    assert abs(float(jet[0])) > 1e-3  # the loop turns (the angle is not 0 by flatness)
    _assert_matches_nested_jvp(jet, lambda t: model({}, a + t * v, b, c), 3)
    grad = g.pull_back(turn, a, torch.ones(1, dtype=torch.float64), b, c)
    np.testing.assert_allclose(float(grad @ v), jet[1].numpy()[0], rtol=1e-10)


def test_jets_match_jax_experimental_jet():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from jax.experimental import jet as jjet

    conv, back = _backend("jax")
    rng = np.random.default_rng(2)
    mod = dec_enc.compile("jax")
    P = _params(dec_enc, conv)
    x, v = conv(_ball_points(rng, (5, 3))), conv(rng.normal(size=(5, 3)))
    K = 3
    ours = g.push_forward(dec_enc, g.lift_to_jet(x, K, v), params=P)
    primal, series = jjet.jet(lambda y: mod.dec_enc(P, y), (x,), ((v,) + (v * 0,) * (K - 1),))
    np.testing.assert_allclose(back(ours[0]), np.asarray(primal), rtol=1e-13)
    for k in range(1, K + 1):
        np.testing.assert_allclose(back(ours[k]), np.asarray(series[k - 1]), rtol=1e-9, atol=1e-11)


def test_hvp_and_laplacian_match_the_hessian():
    rng = np.random.default_rng(3)
    mod = energy.compile("torch")
    P = mod.init_params(0, torch.float64)
    x = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float64)
    v = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float64)
    hess = torch.stack([torch.func.hessian(lambda y: mod.energy(P, y)[0])(row) for row in x])  # (4, 3, 3)
    np.testing.assert_allclose(g.hvp(energy, x, v, params=P).numpy(), (hess @ v[:, :, None])[..., 0].numpy(),
                               rtol=1e-10, atol=1e-12)
    lap = g.laplacian(energy, x, params=P)
    np.testing.assert_allclose(lap[:, 0].numpy(), hess.diagonal(dim1=-2, dim2=-1).sum(-1).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), t=st.floats(0.1, 0.9))
def test_transport_composes_along_a_geodesic_and_keeps_the_metric(backend, seed, t):
    conv, back = _backend(backend)
    rng = np.random.default_rng(seed)
    x, z = conv(_ball_points(rng, (3,), 0.5)), conv(_ball_points(rng, (3,), 0.5))
    from geomir.backends.torch import runtime as R

    ball = R.PoincareBall(c=0.8)
    tx, tz = torch.tensor(back(x)), torch.tensor(back(z))
    y = conv(ball.expmap(tx, t * ball.logmap(tx, tz)).numpy())  # on the geodesic from x to z
    v = conv(rng.normal(size=3))
    direct = g.parallel_transport(v, x, z, space=H)
    stepwise = g.parallel_transport(g.parallel_transport(v, x, y, space=H), y, z, space=H)
    np.testing.assert_allclose(back(direct), back(stepwise), rtol=1e-10, atol=1e-12)
    back_again = g.parallel_transport(direct, z, x, space=H)
    np.testing.assert_allclose(back(back_again), back(v), rtol=1e-10, atol=1e-12)
    norm = lambda p, u: float(ball.norm(torch.tensor(back(p)), torch.tensor(back(u))))  # noqa: E731
    assert abs(norm(z, direct) - norm(x, v)) <= 1e-10 * norm(x, v)


def test_misuse_is_a_clear_error():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(UsageError, match="push_forward takes a Jet"):
        g.push_forward(enc, x)
    with pytest.raises(UsageError, match="order must be an integer from 1 to 64"):
        g.lift_to_jet(x, 0, x)
    with pytest.raises(UsageError, match="expected a model traced with @geomir.trace"):
        g.jvp(lambda y: y, x, x)
    with pytest.raises(UsageError, match="expected a torch tensor or a JAX array, found ndarray"):
        g.jvp(enc, np.zeros(3), np.zeros(3))
    with pytest.raises(UsageError, match="space must be a geomir space"):
        g.parallel_transport(x, x, x, space="ball")


def test_hvp_of_a_non_scalar_model_is_the_geo_error():
    @g.trace(x=g.R(3))
    def wide(x):
        return g.tanh(g.linear(x, 2))

    x = torch.randn(4, 3)
    with pytest.raises(UsageError, match=r"hvp needs a scalar model \(output R\[1\]\); wide returns R\[2\]"):
        g.hvp(wide, x, x)


def test_bad_jets_and_arrays_are_clear_errors():
    x = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="push_forward needs a jet of order 1 to 64.*found order 0"):
        g.push_forward(energy, g.Jet(x[None]))
    with pytest.raises(ValueError, match=r"coefficients are an array of shape \(K\+1, \*batch, n\); found shape \(\)"):
        g.Jet(torch.tensor(1.0))
    assert repr(g.Jet(torch.zeros(3, 4, 2))) == "Jet(order=2, shape=(4, 2))"
    with pytest.raises(UsageError, match=r"jvp of energy: the direction has shape \(4, 4\), the point \(4, 3\)"):
        g.jvp(energy, x, torch.zeros(4, 4, dtype=torch.float64))
    p32 = energy.compile("torch").init_params(0, torch.float32)
    with pytest.raises(UsageError, match="laplacian of energy: input .x. .* is float64, the parameters float32"):
        g.laplacian(energy, x, params=p32)


def test_requests_accept_what_the_model_accepts_for_mixed_element_types():
    """The request checks with the model's own rule: x in its declared f32 beside f64
    parameters (declared so) is accepted; x in f32 with parameters built in f64 is not."""

    @g.trace(x=g.R(3), y=g.R(3, "f64"))
    def mixed(x, y):
        return g.tanh(g.linear(y, 2))

    p = mixed.compile("torch").init_params(0)  # f64, as declared
    x, y = torch.randn(4, 3), torch.randn(4, 3, dtype=torch.float64)
    value, tangent = g.jvp(mixed, x, torch.randn(4, 3), y, params=p)
    assert torch.equal(tangent, torch.zeros_like(value))  # y alone reaches the output
    _, ty = g.jvp(mixed, y, y, x, params=p, wrt=1)
    expected = torch.func.jvp(lambda v: mixed.compile("torch").mixed(p, x, v), (y,), (y,))[1]
    torch.testing.assert_close(ty, expected)
    p64 = energy.compile("torch").init_params(0, torch.float64)
    with pytest.raises(UsageError, match="jvp of energy: input 'x' .* is float32, the parameters float64"):
        g.jvp(energy, torch.randn(4, 3), torch.randn(4, 3), params=p64)
