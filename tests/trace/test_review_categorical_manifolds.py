"""The categorical API applies the rules of .geo's ``derive`` (frontends/dsl/derive.py) to
every request, in the same words: a laplacian or hvp of a model whose input is on a curved
manifold is refused (it used to return the trace of the coordinate Hessian), so is one
with a curved output; every request of a model with path inputs is refused. An integer input is
refused as the generated module refuses it (it needs a floating dtype), not with a message
about init_params."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

import geomir as g  # noqa: E402
from geomir.diagnostics import GeoTypeError, UsageError  # noqa: E402

H = g.PoincareBall(c=1.0, name="H")
T = g.Torus(name="T")


W64 = g.Param[3, 3, "glorot_uniform", "f64"]


@g.trace(x=H.point(3, "f64"))
def S(x, W: W64):  # noqa: N802 - named as the .geo model
    return g.dist(g.mobius_matvec(W, x), x)


@g.trace(x=g.R(3, "f64"))
def U(x):  # noqa: N802
    return g.linear(g.tanh(g.linear(x, 3, 8)), 8, 1)


GEO = """manifold H = poincare(c = 1.0)

model S(x: H[3, f64]) -> R[1, f64] {
  let W = param(3, 3, dtype = f64)
  return dist(mobius_matvec(W, x), x)
}

derive d = %s(S)
"""


def _geo_message(op: str) -> str:
    with pytest.raises(GeoTypeError) as info:
        g.to_ir(GEO % op, passes=[])
    return info.value.message


def _points(n=5):
    return S.compile("torch").poincare_c1.expmap0(0.1 * torch.randn(n, 3, dtype=torch.float64))


@pytest.mark.parametrize("op", ["laplacian", "hvp"])
def test_a_curved_input_is_refused_in_the_geo_words(op):
    x = _points()
    expected = _geo_message(op)
    assert expected.startswith(f"{op} needs a Euclidean input; input 'x' of S is H[3")
    with pytest.raises(UsageError) as info:
        g.laplacian(S, x) if op == "laplacian" else g.hvp(S, x, x)
    assert info.value.message == expected


def test_requests_that_geo_allows_on_a_curved_input_still_run():
    x = _points()
    value, tangent = g.jvp(S, x, torch.randn_like(x))
    assert value.shape == (5, 1) and tangent.shape == (5, 1)
    assert g.pull_back(S, x, torch.ones(5, 1, dtype=torch.float64)).shape == (5, 3)
    jet = g.push_forward(S, g.lift_to_jet(x, 2, torch.randn_like(x)))
    assert jet.order == 2


def test_a_curved_output_is_refused_in_the_geo_words():
    @g.trace(t=g.R(1, "f64"), h=H.point(3, "f64"))
    def ball(t, h):
        return g.mobius_scalar(t, h)

    t, h = torch.full((2, 1), 0.5, dtype=torch.float64), _points(2)
    with pytest.raises(UsageError, match=r"^laplacian needs a Euclidean output; ball returns H\[3"):
        g.laplacian(ball, t, h)
    with pytest.raises(UsageError, match=r"^hvp needs a Euclidean output; ball returns H\[3"):
        g.hvp(ball, t, t, h)
    with pytest.raises(UsageError, match=r"^laplacian needs a Euclidean input; input 'h' of ball is H\[3"):
        g.laplacian(ball, h, t, wrt=1)


def test_path_inputs_are_refused_for_every_request():
    @g.trace(p=T.path(2, "f64"), x=g.R(2, "f64"))
    def wind(p, x):
        return g.winding(p) + x

    p, x = torch.zeros(2, 5, 2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)
    words = re.escape(" of wind: derivatives of models with path inputs (!geo.path) are not supported")
    with pytest.raises(UsageError, match=f"^jvp{words}"):
        g.jvp(wind, x, x, p, wrt=1)
    with pytest.raises(UsageError, match=f"^vjp{words}"):
        g.pull_back(wind, x, x, p, wrt=1)
    with pytest.raises(UsageError, match=f"^laplacian{words}"):
        g.laplacian(wind, x, p, wrt=1)
    with pytest.raises(UsageError, match=f"^push_forward{words}"):
        g.push_forward(wind, g.lift_to_jet(x, 1, x), p, wrt=1)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_an_integer_input_needs_a_floating_dtype(dtype):
    x = torch.ones(5, 3, dtype=dtype)
    for request in (lambda: g.laplacian(U, x), lambda: g.hvp(U, x, x), lambda: g.jvp(U, x, x)):
        with pytest.raises(UsageError, match=r"of U: input 'x' .* needs a floating dtype \(float64\), found "
                                             + str(dtype).removeprefix("torch.")):
            request()


def test_an_integer_input_needs_a_floating_dtype_in_jax():
    jnp = pytest.importorskip("jax.numpy")

    @g.trace(x=g.R(3))
    def u32(x):
        return g.linear(g.tanh(g.linear(x, 3, 8)), 8, 1)

    with pytest.raises(UsageError, match=r"laplacian of u32: input 'x' .* needs a floating dtype \(float32\), "
                                         r"found int32"):
        g.laplacian(u32, jnp.ones((5, 3), dtype=jnp.int32))
    assert g.laplacian(u32, jnp.ones((5, 3), dtype=jnp.float32)).shape == (5, 1)


def test_a_euclidean_model_is_still_differentiated():
    x = torch.randn(4, 3, dtype=torch.float64)
    lap = g.laplacian(U, x)
    p = U.compile("torch").init_params(0, torch.float64)
    hess = torch.func.vmap(torch.func.hessian(lambda v: U.compile("torch").U(p, v[None])[0, 0]))(x)
    torch.testing.assert_close(lap[:, 0], hess.diagonal(dim1=-2, dim2=-1).sum(-1))
