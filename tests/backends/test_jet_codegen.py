"""jet-expand + the Taylor runtime in generated code: the same jets, Laplacians,
biharmonics, Hessian-vector products and gradients as the autodiff reference (nested jvp,
torch.func / jax reverse mode), on both backends, Euclidean and Poincaré models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import geomir

jax.config.update("jax_enable_x64", True)

SOURCE = """
manifold H = poincare(c = 1.5)
model U(x: R[3]) -> R[2] {
  let h = tanh(linear(x, 3 -> 8))
  let h = sin(linear(h, 8 -> 8)) * sigmoid(h) + exp(-0.5 * h * h)
  return linear(softplus(h) / (exp(h) + h * h), 8 -> 2)
}
model B(x: H[3], y: H[4]) -> H[4] {
  let h = mobius_tanh(mobius_linear(x, 3 -> 4))
  return mobius_add(h, y)
}
model S(x: H[3], y: H[4]) -> R[1] {
  return dist(B(x, y), y)
}
model P(x: R[3], s: H[4]) -> R[1] {
  let g = coords(logmap0(mobius_matvec(s, 4 -> 3)))
  let h = tanh(linear(x, 3 -> 6)) * sigmoid(linear(g, 3 -> 6))
  return linear(sin(h) + pow(h, 3.0) / exp(cos(h)), 6 -> 1)
}
derive du = jvp(U)
derive d6 = directional(U, order = 6)
derive db = directional(B, order = 4)
derive dby = directional(B, wrt = y, order = 3)
derive jb = jvp(B)
derive ds = directional(S, order = 3)
derive lu = laplacian(U)
derive bu = biharmonic(U)
derive lp = laplacian(P)
derive bp = biharmonic(P)
derive hp = hvp(P)
derive gp = grad(P)
"""
REQUESTS = ["du", "d6", "db", "dby", "jb", "ds", "lu", "bu", "lp", "bp", "hp", "gp"]
JETS = "jet-expand,cse,dce"
FUSED = "jet-expand,jet-fuse,cse,dce"


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {
        (target, passes): geomir.compile(SOURCE, target=target, passes=passes, cache_dir=cache)
        for target in ("torch", "jax")
        for passes in ("cse,dce", JETS, FUSED)
    }


def _inputs(name, dtype):
    rng = np.random.default_rng(sum(map(ord, name)))
    from geomir.backends.torch import runtime

    ball = runtime.PoincareBall(c=1.5)
    pt = lambda n: ball.expmap0(torch.tensor(rng.normal(0, 0.3, (4, n)), dtype=dtype))  # noqa: E731
    vec = lambda n: torch.tensor(rng.normal(0, 1.0, (4, n)), dtype=dtype)  # noqa: E731
    return {
        "du": [vec(3), vec(3)], "d6": [vec(3), vec(3)],
        "db": [pt(3), pt(4), vec(3)], "dby": [pt(3), pt(4), vec(4)], "jb": [pt(3), pt(4), vec(3)],
        "ds": [pt(3), pt(4), vec(3)],
        "lu": [vec(3)], "bu": [vec(3)], "lp": [vec(3), pt(4)], "bp": [vec(3), pt(4)],
        "hp": [vec(3), pt(4), vec(3)], "gp": [vec(3), pt(4)],
    }[name]


def _flat(out):
    return [np.asarray(o.detach() if isinstance(o, torch.Tensor) else o) for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("name", REQUESTS)
def test_jet_code_matches_the_autodiff_reference_f64(modules, name) -> None:
    """Both targets' jet code (plain and fused) against the torch autodiff lowering. JAX's own
    autodiff lowering runs eagerly through nested jvps (seconds per request); it is checked
    against torch's where it is cheap (orders <= 2) and by tests/backends/test_derivatives.py."""
    xs = _inputs(name, torch.float64)
    ref = modules[("torch", "cse,dce")]
    want = _flat(getattr(ref, name)(ref.init_params(seed=2, dtype=torch.float64), *xs))
    references = [("torch", passes) for passes in (JETS, FUSED)] + [("jax", passes) for passes in (JETS, FUSED)]
    if name in ("jb", "gp", "hp", "lu", "lp"):
        references.append(("jax", "cse,dce"))
    for target, passes in references:
        mod = modules[(target, passes)]
        params = mod.init_params(seed=2, dtype=torch.float64 if target == "torch" else jnp.float64)
        args = xs if target == "torch" else [jnp.asarray(x.numpy()) for x in xs]
        got = _flat(getattr(mod, name)(params, *args))
        for a, b in zip(want, got, strict=True):
            scale = max(np.abs(a).max(), 1e-300)
            assert np.abs(a - b).max() / scale < 1e-10, f"{target} {passes} {name}"


@pytest.mark.parametrize("name", REQUESTS)
def test_jet_code_float32_is_close_to_float64(modules, name) -> None:
    jets = modules[("torch", JETS)]
    hi = _flat(getattr(jets, name)(jets.init_params(2, torch.float64), *_inputs(name, torch.float64)))
    lo = _flat(getattr(jets, name)(jets.init_params(2, torch.float32), *_inputs(name, torch.float32)))
    for a, b in zip(hi, lo):
        assert np.abs(a - b).max() / max(np.abs(a).max(), 1e-30) < 1e-4


def test_generated_jet_code_calls_the_rules(modules) -> None:
    text = geomir.emit_source(SOURCE, "torch", JETS)
    assert "taylor.seed(x, v, 6)" in text and "taylor.tanh(" in text
    assert "poincare_c1_5_jet = taylor.PoincareBall(c=1.5)" in text
    assert "derivatives.directional" not in text
    assert "taylor.laplacian_seed(x)" in text and "taylor.collapsed.tanh(" in text
    assert "taylor.stencil_seed(x, 'biharmonic')" in text
    # hvp is the reverse pass over a generated jvp function; no other request is left
    assert "def P__jvp_wrt0(params, x, s, v):" in text and "derivatives.grad(P__jvp_wrt0," in text
    assert "P__jvp_wrt0Module" not in text
    for request in ("jvp(", "hvp(", "laplacian(", "biharmonic("):
        assert f"derivatives.{request}" not in text
    fused = geomir.emit_source(SOURCE, "torch", FUSED)
    assert "h = taylor.layer(v0, linear0_weight, linear0_bias, activation='geo.tanh')" in fused


ORDER8 = """
model V(x: R[2]) -> R[1] {
  let h = tanh(linear(x, 2 -> 4))
  return linear(sin(h) * softplus(h) + exp(-0.5 * h * h), 4 -> 1)
}
derive d8 = directional(V, order = 8)
"""


def test_order_8_matches_nested_jvp(tmp_path) -> None:
    """The top order the language allows: all 9 coefficients, fused jets vs 2^8 nested
    torch.func.jvp passes (float64)."""
    ref = geomir.compile(ORDER8, target="torch", passes="cse,dce", cache_dir=tmp_path)
    jets = geomir.compile(ORDER8, target="torch", passes=FUSED, cache_dir=tmp_path)
    rng = np.random.default_rng(8)
    x, v = (torch.tensor(rng.normal(0, 1, (3, 2))) for _ in range(2))
    params = ref.init_params(seed=8, dtype=torch.float64)
    want, got = ref.d8(params, x, v).numpy(), jets.d8(params, x, v).numpy()
    assert want.shape == got.shape == (9, 3, 1)
    for k in range(9):
        assert np.abs(want[k] - got[k]).max() <= 1e-10 * np.abs(want[k]).max(), f"order {k}"
