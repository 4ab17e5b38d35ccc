"""``taylor.layer`` (jet.layer): torch's scheduled kernels (backends/torch/fused.py) equal
the generic rule chain, values and reverse-mode gradients, on jets and Laplacian jets."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from geomir.backends.common import taylor as common
from geomir.backends.torch import taylor

GENERIC = functools.partial(common.layer, taylor.OPS)
ACTIVATIONS = ["geo.tanh", "geo.sigmoid", "geo.sin", "geo.softplus", None]


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("K", [1, 2, 4, 8])
def test_jet_layer_equals_the_rule_chain(activation, K):
    g = torch.Generator().manual_seed(K)
    x = torch.randn(K + 1, 5, 6, dtype=torch.float64, generator=g) / torch.arange(1, K + 2).reshape(-1, 1, 1)
    w = torch.randn(7, 6, dtype=torch.float64, generator=g) / 3
    b = torch.randn(7, dtype=torch.float64, generator=g)
    assert _rel(taylor.layer(x, w, b, activation), GENERIC(x, w, b, activation)) < 1e-13
    assert _rel(taylor.layer(x, w, None, activation), GENERIC(x, w, None, activation)) < 1e-13


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_laplacian_layer_equals_the_collapsed_rules(activation):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, dtype=torch.float64, generator=g)
    w1, w2 = (torch.randn(m, n, dtype=torch.float64, generator=g) / 2 for m, n in ((6, 4), (3, 6)))
    b = torch.randn(6, dtype=torch.float64, generator=g)
    ours = taylor.layer(taylor.layer(taylor.laplacian_seed(x), w1, b, activation), w2, None, activation)
    ref = GENERIC(GENERIC(taylor.laplacian_seed(x), w1, b, activation), w2, None, activation)
    for a, r in zip(ours, ref, strict=True):
        assert _rel(a, r) < 1e-13


def test_gradients_through_the_fused_kernels():
    """Training a PINN differentiates the Laplacian (and jets) with respect to weights:
    the in-place updates must leave autograd's saved tensors alone."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, dtype=torch.float64, generator=g)
    v = torch.randn(8, 3, dtype=torch.float64, generator=g)
    w1 = torch.randn(5, 3, dtype=torch.float64, generator=g).requires_grad_()
    b1 = torch.randn(5, dtype=torch.float64, generator=g).requires_grad_()
    w2 = torch.randn(1, 5, dtype=torch.float64, generator=g).requires_grad_()

    def losses(layer):
        lap = taylor.laplacian_of(layer(layer(taylor.laplacian_seed(x), w1, b1, "geo.tanh"), w2))
        jet = layer(layer(taylor.seed(x, v, 4), w1, b1, "geo.tanh"), w2)
        return (lap**2).sum() + (jet[4] ** 2).sum()

    ours = torch.autograd.grad(losses(taylor.layer), (w1, b1, w2))
    ref = torch.autograd.grad(losses(GENERIC), (w1, b1, w2))
    for a, r in zip(ours, ref, strict=True):
        assert np.isfinite(a.numpy()).all() and _rel(a, r) < 1e-12


def test_laplacian_of_sqrt_layer_at_rest_is_the_rules_zero_not_nan():
    """sqrt(linear(relu(x))) where relu masks every input (and the bias is 0): the layer's
    input rests at 0, where the collapsed sqrt rule gives the constant 0 (docs/jets.md). The
    default pipeline (jet-fuse) must give the same as the unfused rules and as JAX; the fused
    torch kernel used the generic (phi, phi', phi''/2), infinite there: NaN."""
    import geomir

    src = "model U(x: R[2]) -> R[2] {\n  return sqrt(linear(relu(x), 2 -> 2))\n}\nderive lap = laplacian(U)\n"
    x = torch.tensor([[-1.0, -2.0], [-0.5, -0.25]], dtype=torch.float64)
    fused = geomir.compile(src, target="torch")
    unfused = geomir.compile(src, target="torch", passes="insert-transport,jet-expand,cse,dce")
    params = fused.init_params(seed=1, dtype=torch.float64)
    got = fused.lap(params, x)
    assert torch.equal(got, torch.zeros_like(got))
    assert torch.equal(got, unfused.lap(params, x))


def test_laplacian_layer_neg_is_linear_like_the_collapsed_rule():
    """neg on a Laplacian jet negates each part (the collapsed rule maps -u over f0, f1, f2):
    no sum of f1^2 enters, so directions whose squares overflow give -f2, not the NaN of
    phi''/2 = -0 times inf; gradients flow as through the rule."""
    g = torch.Generator().manual_seed(4)
    x = taylor.LaplacianJet(torch.randn(3, 4, dtype=torch.float64, generator=g),
                            1e160 * torch.randn(2, 3, 4, dtype=torch.float64, generator=g),
                            torch.randn(3, 4, dtype=torch.float64, generator=g))
    w = (torch.randn(5, 4, dtype=torch.float64, generator=g) / 2).requires_grad_()
    ours, ref = taylor.layer(x, w, None, "geo.neg"), GENERIC(x, w, None, "geo.neg")
    for a, r in zip(ours, ref, strict=True):
        assert torch.isfinite(a).all() and torch.equal(a, r)
    ga = torch.autograd.grad(sum(p.sum() for p in ours), w)[0]
    gr = torch.autograd.grad(sum(p.sum() for p in ref), w)[0]
    assert torch.equal(ga, gr)
