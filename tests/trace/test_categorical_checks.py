"""pull_back / vjp check the covector as jvp checks the direction: its shape is the
output's (the inputs' batch and the output dimension) and its dtype the point's, else a
UsageError naming the API function (a covector of the wrong shape failed inside torch's
autograd or JAX's vjp before); messages name push_forward, not the internal request."""

from __future__ import annotations

import pytest

import geomir as g
from geomir.diagnostics import UsageError

torch = pytest.importorskip("torch")


@g.trace(x=g.R(3, "f64"))
def f(x):
    return g.tanh(g.linear(x, 3, 2))


X = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)


@pytest.mark.parametrize("api", [g.pull_back, g.vjp], ids=["pull_back", "vjp"])
def test_a_covector_of_the_wrong_shape_or_dtype_is_a_usage_error(api):
    name = api.__name__
    with pytest.raises(UsageError, match=rf"^{name} of f: the covector has shape \(4, 5\), the output \(4, 2\)$"):
        api(f, X, torch.ones(4, 5, dtype=torch.float64))
    with pytest.raises(UsageError, match=rf"^{name} of f: the covector has shape \(2,\), the output \(4, 2\)$"):
        api(f, X, torch.ones(2, dtype=torch.float64))
    with pytest.raises(UsageError, match=rf"^{name} of f: the covector has dtype torch.float32, the point torch.float64$"):
        api(f, X, torch.ones(4, 2, dtype=torch.float32))
    out = api(f, X, torch.ones(4, 2, dtype=torch.float64))
    grad = out[1] if name == "vjp" else out
    m = f.compile(target="torch")
    params = m.init_params(0, torch.float64)
    want = torch.func.vjp(lambda x: m.f(params, x), X)[1](torch.ones(4, 2, dtype=torch.float64))[0]
    torch.testing.assert_close(grad, want)


def test_jax_covectors_are_checked_too():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    with pytest.raises(UsageError, match=r"pull_back of f: the covector has shape \(4, 5\), the output \(4, 2\)"):
        g.pull_back(f, jax.numpy.ones((4, 3)), jax.numpy.ones((4, 5)))


def test_push_forward_errors_name_push_forward():
    with pytest.raises(UsageError, match=r"^push_forward of f: input 'x'"):
        g.push_forward(f, g.Jet(torch.ones(2, 4, 5, dtype=torch.float64)))


def test_directions_are_checked_like_covectors_and_jets_must_be_floating():
    import numpy as np

    jax = pytest.importorskip("jax")
    with pytest.raises(UsageError, match=r"^jvp of f: the direction is a numpy.ndarray, the point a torch tensor"):
        g.jvp(f, X, np.ones((4, 3)))
    with pytest.raises(UsageError, match=r"^jvp of f: the direction is a jax"):
        g.jvp(f, X, jax.numpy.ones((4, 3)))
    with pytest.raises(UsageError, match=r"^jvp of f: the direction has dtype torch.float32, the point torch.float64$"):
        g.jvp(f, X, torch.ones(4, 3))
    with pytest.raises(UsageError, match=r"^pull_back of f: the covector is a numpy.ndarray, the point a torch tensor"):
        g.pull_back(f, X, np.ones((4, 2)))
    with pytest.raises(UsageError, match=r"needs a floating dtype"):  # the point's own check, not the direction's
        g.jvp(f, X.long(), torch.ones(4, 3, dtype=torch.float64))
    with pytest.raises(UsageError, match=r"^push_forward of f: the jet needs a floating dtype, found torch.int64$"):
        g.push_forward(f, g.Jet(torch.ones(2, 4, 3, dtype=torch.int64)))


def test_the_torch_reference_differentiates_an_input_broadcast_against_another():
    """torch.func.jvp refused the stride-0 view that the call check makes of an input with
    one row broadcast against another's four (the reference pipeline's jvp, hvp, directional)."""
    src = ("model U(x: R[3], y: R[3]) -> R[1] { return linear(tanh(x) * y, 3 -> 1) }\n"
           "derive hv = hvp(U, wrt = x)\nderive jv = jvp(U, wrt = x)\nderive d2 = directional(U, wrt = x, order = 2)\n")
    m = g.compile(src, target="torch", passes="insert-transport,cse,dce")
    p = m.init_params(0, torch.float64)
    x, y, v = X[:1], X + 1, torch.ones(1, 3, dtype=torch.float64)
    for name in ("hv", "jv", "d2"):
        got = getattr(m, name)(p, x, y, v) if name != "d2" else m.d2(p, x, y, v)
        want = getattr(m, name)(p, x.expand(4, 3).clone(), y, v.expand(4, 3).clone())
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            torch.testing.assert_close(a, b)
