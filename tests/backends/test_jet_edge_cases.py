"""Jet programs at the edges that random programs found (tests/unit/geo_programs.py through
both backends): the jets on torch and JAX agree with the autodiff reference (the same
program without jet-expand: nested jvp, torch.func), float64.

* ``T``, ``Q``: insert-transport carries ``logmap0`` tangents from the origin, so the jet
  code meets ``geo.origin`` of a jet (a constant jet of the origin; it had no rule).
* ``E``: a Laplacian through ``expmap`` on R^n needs the collapsed Euclidean jet manifold
  (its constructor was emitted as ``taylor.Euclidean(, collapsed=True)``).
* ``C``, ``N``: an output that does not depend on the differentiated input (``N`` through
  a called model that takes it); its biharmonic is 0 (a lifted jet reached the stencil
  sum, which asserted, or for a batch of n² rows would have summed over the batch). A
  called model's result that does not depend on the jets now stays a plain value.
* ``P``: ``pow(relu(.), 2.5)`` (a ReLU^p activation) where the ReLU is 0: the pow rule
  divided by x_0 and gave NaN (0/0) where autodiff gives 0.
* ``L``: parallel transport on a flat manifold is the identity on its vector, so its
  endpoints carry no dependence (``log(e - e)`` of a transported constant had NaN
  derivatives where the reference has 0).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import geomir

from .helpers import functions, inputs_for

jax.config.update("jax_enable_x64", True)

SOURCE = """
manifold H = poincare(c = 1.0)
manifold S = sphere()
model T(x: H[3], w: H[3]) -> H[3] {
  return expmap(mobius_add(x, x), logmap0(mobius_linear(w, 3 -> 3)))
}
model Q(p: S[3], w: S[3]) -> R[3] {
  return coords(expmap(p, logmap0(w)))
}
model E(x: R[3]) -> R[2] {
  return linear(tanh(expmap(x, logmap0(x))), 3 -> 2)
}
model C(x: R[2], y: R[2]) -> R[2] {
  return tanh(linear(y, 2 -> 2))
}
model N(x: R[2], y: R[2]) -> R[2] {
  let h = C(-x, y)
  return h * 0.5
}
derive dt = directional(T, order = 3, wrt = w)
derive jt = jvp(T, wrt = w)
derive dq = directional(Q, order = 2, wrt = w)
derive le = laplacian(E)
derive be = biharmonic(E)
derive bc = biharmonic(C)
derive lc = laplacian(C)
derive dc = directional(C, order = 2)
model P(x: R[3]) -> R[3] {
  return pow(relu(linear(x, 3 -> 3)), 2.5)
}
derive bn = biharmonic(N)
derive ln = laplacian(N)
derive dp = directional(P, order = 2)
derive lp = laplacian(P)
"""
REQUESTS = ["dt", "jt", "dq", "le", "be", "bc", "lc", "dc", "bn", "ln", "dp", "lp"]
REFERENCE = "insert-transport,cse,dce"  # the default pipeline without jet-expand and jet-fuse


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {key: geomir.compile(SOURCE, target=key[0], passes=key[1], cache_dir=cache)
            for key in (("torch", None), ("jax", None), ("torch", REFERENCE))}


def test_the_edges_are_in_the_jet_code(modules):
    text = geomir.emit_source(SOURCE, "torch")
    assert "euclidean_lap = taylor.Euclidean(collapsed=True)" in text
    assert ".origin_like(" in text and "taylor.origin(" not in text
    ir = geomir.print_ir(geomir.to_ir(SOURCE))
    for name in ("bc", "bn"):
        body = ir[ir.index(f"func.func @{name}("):]
        assert "jet.stencil_sum" not in body[:body.index("func.return")]  # a constant output: no stencil sum


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("name", REQUESTS)
def test_jets_match_the_autodiff_reference(modules, name, target):
    # 4 rows: for C (n = 2) a lifted constant jet had as many rows as the stencil directions
    f = next(f for f in functions(SOURCE) if f.sym_name.data == name)
    xs = inputs_for(f, batch=4)
    got, ref = modules[(target, None)], modules[("torch", REFERENCE)]
    want = getattr(ref, name)(ref.init_params(seed=1, dtype=torch.float64), *xs)
    params = got.init_params(seed=1, dtype=torch.float64 if target == "torch" else jnp.float64)
    have = getattr(got, name)(params, *(xs if target == "torch" else [jnp.asarray(x.numpy()) for x in xs]))
    for a, b in zip(*((o if isinstance(o, tuple) else (o,)) for o in (want, have)), strict=True):
        a, b = np.asarray(a.detach()), np.asarray(b)
        assert a.shape == b.shape and np.isfinite(b).all(), (name, a.shape, b.shape)
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(a).max()))
    if name in ("bc", "lc", "bn", "ln"):  # C and N do not depend on x
        assert not np.asarray(have).any()


def _framework(framework):
    """(runtime, taylor, float64 array maker) of the torch or the JAX backend."""
    if framework == "torch":
        from geomir.backends.torch import runtime, taylor

        return runtime, taylor, lambda v: torch.tensor(v, dtype=torch.float64)
    from geomir.backends.jax import runtime, taylor

    return runtime, taylor, lambda v: jnp.asarray(v, dtype=jnp.float64)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_nan_is_never_a_silent_zero(framework):
    """sqrt0 (norms, dist) and the relu jet rule gave 0 for NaN (a NaN point was at distance
    0 from anything); NaN stays NaN, and at 0 the value and gradient stay 0."""
    runtime, taylor, arr = _framework(framework)
    nan = float("nan")
    x = arr([[nan, 1.0], [0.0, 0.0], [3.0, 4.0]])
    d = np.asarray(runtime.Euclidean().dist(x, x * 0.0))
    assert np.isnan(d[0]).all() and d[1, 0] == 0.0 and d[2, 0] == 5.0
    jet = taylor.seed(arr([nan, -1.0, 2.0]), arr([1.0, 1.0, 1.0]), 2)
    assert np.isnan(np.asarray(taylor.relu(jet))[0, 0])  # the value: NaN, as torch.relu gives
    np.testing.assert_array_equal(np.asarray(taylor.relu(jet))[:, 1:], [[0.0, 2.0], [0.0, 1.0], [0.0, 0.0]])
    root = np.asarray(taylor.sqrt0(taylor.seed(arr([nan, 0.0, 4.0]), arr([1.0, 0.0, 1.0]), 2)))
    assert np.isnan(root[0, 0]) and (root[:, 1] == 0.0).all() and root[0, 2] == 2.0
    if framework == "torch":  # the gradient of a norm at 0 is 0, not NaN
        z = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
        runtime.Euclidean().dist(z, torch.zeros(2, 3, dtype=torch.float64)).sum().backward()
        assert (z.grad == 0).all()
    else:
        g = jax.grad(lambda z: runtime.Euclidean().dist(z, z * 0.0).sum())(jnp.zeros((2, 3)))
        assert (np.asarray(g) == 0).all()


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_outside_the_domain_every_coefficient_is_nan(framework):
    """log at x_0 < 0 and atanh at |x_0| > 1 have NaN values; their recurrences alone gave
    finite derivatives there (1/x_0, 1/(1 - x_0^2)), so a Laplacian of log(-u) came out finite
    where the function is not defined. Every coefficient is NaN there, in the full and the
    collapsed (Laplacian) rules; inside the domain the coefficients are the closed forms."""
    _, taylor, arr = _framework(framework)
    for name, x0, fine in (("log", [-0.5, 0.5], [0.5]), ("atanh", [-1.5, 2.0, 0.5], [0.5])):
        y = np.asarray(taylor.RULES[name](taylor.seed(arr(x0), arr([1.0] * len(x0)), 3)))
        assert np.isnan(y[:, :-1]).all(), (name, y)
        a = fine[0]
        want = [math.log(a), 1 / a, -0.5 / a**2, 1 / (3 * a**3)] if name == "log" else \
            [math.atanh(a), 1 / (1 - a * a), a / (1 - a * a) ** 2, (1 + 3 * a * a) / (3 * (1 - a * a) ** 3)]
        np.testing.assert_allclose(y[:, -1], want, rtol=1e-14)
        lap = np.asarray(taylor.laplacian_of(taylor.COLLAPSED_RULES[name](taylor.laplacian_seed(arr([x0])))))
        assert np.isnan(lap[0, :-1]).all() and np.isfinite(lap[0, -1]), (name, lap)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_pow_coefficients_match_mpmath_and_are_exact_at_zero(framework):
    """y = x^p along x(t) = x_0 + t: y_k = binomial(p, k) x_0^(p-k) (mpmath). At x_0 = 0 the
    coefficients with k < p are 0 (they were 0/0 = NaN) and the others NaN (none is finite);
    along a curve resting at 0 all are 0."""
    import mpmath

    _, taylor, arr = _framework(framework)
    x0 = [0.0, 1e-3, 0.3, 2.0]
    for p in (2.5, 1.5, 0.5, -0.5, 9.0, 11.0, -3.0):
        y = np.asarray(taylor.pow(taylor.seed(arr(x0), arr([1.0] * 4), 3), p))
        for i, a in enumerate(x0):
            for k in range(4):
                if a == 0 and k > p:
                    assert not np.isfinite(y[k, i]), (p, k, y[k, i])
                    continue
                want = float(mpmath.binomial(p, k) * mpmath.power(mpmath.mpf(a), p - k)) if a else 0.0
                np.testing.assert_allclose(y[k, i], want, rtol=1e-13, atol=0, err_msg=f"p={p} x0={a} k={k}")
        resting = np.asarray(taylor.pow(taylor.seed(arr([0.0]), arr([0.0]), 3), p))
        assert (resting == 0).all() if p > 0 else np.isinf(resting[0]).all(), (p, resting)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_collapsed_pow_at_rest_is_zero_and_its_gradient_finite(framework):
    """The Laplacian rule of x^1.5 reads phi'' = inf at 0; where the input rests at 0 (f0,
    f1, f2 all 0) the output is the constant 0, and the gradient through it stays finite."""
    _, taylor, arr = _framework(framework)

    def lap(f0):
        rules = taylor.COLLAPSED_RULES
        return taylor.laplacian_of(rules["pow"](rules["relu"](taylor.laplacian_seed(f0)), 1.5))

    got, grad = _value_and_gradient(framework, lap, arr([[-1.0, 0.5, 2.0]]))
    np.testing.assert_allclose(got, [[0.0, 0.75 * 0.5 ** -0.5, 0.75 * 2.0 ** -0.5]], rtol=1e-14)
    np.testing.assert_allclose(grad, [[0.0, -0.375 * 0.5 ** -1.5, -0.375 * 2.0 ** -1.5]], rtol=1e-14)


def _value_and_gradient(framework, f, x):
    """f(x) and the gradient of its sum, as numpy arrays, by torch autograd or jax.grad."""
    if framework == "torch":
        t = x.clone().requires_grad_(True)
        y = f(t)
        y.sum().backward()
        return y.detach().numpy(), t.grad.numpy()
    return np.asarray(f(x)), np.asarray(jax.grad(lambda u: f(u).sum())(x))


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_sqrt_at_zero_is_the_zero_jet_at_rest_and_nan_when_moving(framework):
    """sqrt(relu(x)): on relu's masked side the curve rests at 0 and so does sqrt (every
    coefficient 0, as pow(x, 0.5) gives; the recurrence gave 0/0 = NaN), full and collapsed,
    with finite gradients; a curve moving through 0 has no finite derivative (NaN, not a
    silent 0); elsewhere the closed form."""
    _, taylor, arr = _framework(framework)
    x0, v = [-1.0, 0.0, 0.25], [1.0, 1.0, 2.0]
    y = np.asarray(taylor.sqrt(taylor.relu(taylor.seed(arr(x0), arr(v), 3))))
    assert (y[:, :2] == 0).all()  # at rest at 0 (relu's kink at 0 is the zero jet too)
    np.testing.assert_allclose(y[:, 2], [0.5, 2.0, -4.0, 16.0], rtol=1e-14)  # sqrt(0.25 + 2t)
    np.testing.assert_array_equal(y, np.asarray(taylor.pow(taylor.relu(taylor.seed(arr(x0), arr(v), 3)), 0.5)))
    moving = np.asarray(taylor.sqrt(taylor.seed(arr([0.0]), arr([1.0]), 3)))  # sqrt(t)
    assert moving[0, 0] == 0 and np.isnan(moving[1:, 0]).all()

    def lap(f0):
        rules = taylor.COLLAPSED_RULES
        return taylor.laplacian_of(rules["sqrt"](rules["relu"](taylor.laplacian_seed(f0))))

    got, grad = _value_and_gradient(framework, lap, arr([[-1.0, 0.25, 4.0]]))
    np.testing.assert_allclose(got, [[0.0, -0.25 * 0.25 ** -1.5, -0.25 * 4.0 ** -1.5]], rtol=1e-14)
    np.testing.assert_allclose(grad, [[0.0, 0.375 * 0.25 ** -2.5, 0.375 * 4.0 ** -2.5]], rtol=1e-14)


FLAT_TRANSPORT = """
manifold T = torus(units = turns)
model L(q: R[2], v: R[2]) -> R[2] {
  let e = exp(parallel_transport(v, v, logmap0(q)))
  return coords(log(e - e))
}
model A(b: T[2], a: T[2]) -> R[2] {
  let e = exp(parallel_transport(a, a, logmap0(b)))
  return coords(log(e - e))
}
derive dl = directional(L, order = 2, wrt = v)
derive da = directional(A, order = 2, wrt = a)
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_transport_on_a_flat_manifold_does_not_depend_on_its_endpoints(target):
    """The derivatives of a constant (here -inf: log 0) are 0, as the reference gives; the
    jet code has no transport of a jet."""
    ir = geomir.print_ir(geomir.to_ir(FLAT_TRANSPORT))
    assert "parallel_transport" not in ir[ir.index("func.func @dl("):]
    ref = geomir.compile(FLAT_TRANSPORT, target="torch", passes=REFERENCE)
    got = geomir.compile(FLAT_TRANSPORT, target=target)
    for name in ("dl", "da"):
        f = next(f for f in functions(FLAT_TRANSPORT) if f.sym_name.data == name)
        xs = inputs_for(f, batch=3)
        want = np.asarray(getattr(ref, name)(ref.init_params(seed=1, dtype=torch.float64), *xs))
        args = xs if target == "torch" else [jnp.asarray(x.numpy()) for x in xs]
        have = np.asarray(getattr(got, name)(got.init_params(seed=1), *args))
        assert np.isneginf(want[0]).all() and not want[1:].any()
        np.testing.assert_array_equal(have, want)


INTEGRAL_POW = """
model P2(x: R[3]) -> R[3] {
  return pow(x, 2.0) + pow(x, 3)
}
derive d4 = directional(P2, order = 4)
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("passes", [None, REFERENCE])
def test_integral_exponents_have_exact_derivatives_at_zero(target, passes):
    """pow(x, 2.0) is emitted as x ** 2: JAX's x ** 2.0 has a NaN third derivative at 0
    (0 * 0^-1) where autodiff of x ** 2 (integer_pow) and the jet rule give 0."""
    m = geomir.compile(INTEGRAL_POW, target=target, passes=passes)
    assert "x ** 2\n" in geomir.emit_source(INTEGRAL_POW, target, passes=passes)
    x, v = np.array([[0.0, 1.0, -2.0]]), np.ones((1, 3))
    arr = (lambda a: torch.tensor(a)) if target == "torch" else jnp.asarray  # noqa: E731
    got = np.asarray(m.d4({}, arr(x), arr(v)))
    want = np.stack([x**2 + x**3, 2 * x + 3 * x**2, 2 + 6 * x, np.full_like(x, 6.0), np.zeros_like(x)])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
