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
