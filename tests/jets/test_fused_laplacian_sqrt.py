"""torch's fused Laplacian layer (backends/torch/fused.py, ``_laplacian_layer``) with a
``sqrt`` activation: the collapsed sqrt rule's zero-at-rest case (common.taylor:
``COLLAPSED_RULES["sqrt"]`` = ``_zero_at_rest(...)``). Where the layer's input rests at 0
(f0, every f1_d and f2 are 0: the masked side of ``sqrt(linear(relu(x)))`` with a zero
bias) the output is the constant 0; the generic (phi, phi', phi''/2) is infinite there, and
the fused layer gave NaN, which is why ``jet-fuse`` once stopped a collapsed layer before a
sqrt. Every fused layer (torch, JAX, the Triton kernel: tests/triton) now makes the case, and
the default pipeline fuses it.

Oracles: the unfused rule chain (``common.layer``), ``torch.func.hessian``'s trace, JAX.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import geomir
from geomir.backends.common import taylor as common
from geomir.backends.torch import taylor

from . import x64  # noqa: F401  (fixture: jax float64)

GENERIC = functools.partial(common.layer, taylor.OPS)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _inputs(dtype=torch.float64):
    """A Laplacian jet of relu(x) (f0, f1, f2 are 0 on the masked entries) for x with rows
    that are all negative (their layer input rests at 0), mixed, and all positive; a weight
    with positive entries, so W relu(x) > 0 wherever some entry of x is positive."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, dtype=dtype, generator=g)
    x[:3] = -x[:3].abs()  # at rest
    x[5:] = x[5:].abs() + 0.1
    lap = taylor.collapsed.relu(taylor.laplacian_seed(x))
    w = torch.rand(4, 3, dtype=dtype, generator=g) + 0.1
    return x, lap, w


def test_fused_sqrt_layer_equals_the_unfused_rule_including_at_rest():
    x, lap, w = _inputs()
    fused = taylor.layer(lap, w, None, "geo.sqrt")
    ref = GENERIC(lap, w, None, "geo.sqrt")
    for part, (a, r) in zip("f0 f1 f2".split(), zip(fused, ref, strict=True)):
        assert torch.isfinite(a).all(), (part, a)
        assert torch.equal(a[..., :3, :], torch.zeros_like(a[..., :3, :])), part  # at rest: exactly 0
        assert torch.equal(a[..., :3, :], r[..., :3, :]), part
        assert _rel(a, r) < 1e-14, part
    # a layer input at 0 that moves (f1 != 0): no finite derivative, NaN in both
    moving = taylor.laplacian_seed(torch.zeros(2, 3, dtype=torch.float64))
    a, r = taylor.layer(moving, w, None, "geo.sqrt"), GENERIC(moving, w, None, "geo.sqrt")
    assert torch.equal(a.f0, r.f0) and a.f2.isnan().all() and r.f2.isnan().all()


def test_fused_sqrt_layer_laplacian_matches_the_hessian_trace():
    """Laplacian of f(x) = sum_j v_j sqrt((W relu(x))_j + b_j) by the fused layer vs the trace of
    torch.func.hessian, also where relu masks every entry of x and b = 0: f is the constant 0
    near such x, the rule's 0 (autodiff's relu mask zeroes the infinite sqrt' there too)."""
    x, _, w = _inputs()
    v = torch.tensor([0.7, -1.1, 0.4, 2.0], dtype=torch.float64)
    for b in (torch.full((4,), 0.3, dtype=torch.float64), None):
        def f(xi):
            z = torch.relu(xi) @ w.T
            return (v * torch.sqrt(z if b is None else z + b)).sum()

        lap = taylor.layer(taylor.collapsed.relu(taylor.laplacian_seed(x)), w, b, "geo.sqrt")
        ours = taylor.laplacian_of(lap) @ v
        ref = torch.stack([torch.func.hessian(f)(xi).trace() for xi in x])
        assert torch.isfinite(ours).all()
        assert _rel(ours, ref) < 1e-12, (b, ours, ref)
        if b is None:
            assert torch.equal(ours[:3], torch.zeros(3, dtype=torch.float64))  # f = 0 near x


def test_gradients_through_the_fused_sqrt_layer_at_rest():
    """A loss on the Laplacian differentiates through the rest case without NaN (the rule is
    evaluated at 1 there), with the unfused chain's gradients."""
    x, lap, w0 = _inputs()
    b0 = torch.zeros(4, dtype=torch.float64)

    def grads(layer):
        w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
        out = taylor.laplacian_of(layer(lap, w, b, "geo.sqrt"))
        return torch.autograd.grad((out**2).sum() + out.sum(), (w, b))

    ours, ref = grads(taylor.layer), grads(GENERIC)
    for a, r in zip(ours, ref, strict=True):
        assert torch.isfinite(a).all() and _rel(a, r) < 1e-12


SRC = "model U(x: R[3]) -> R[4] {\n  return sqrt(linear(relu(x), 3 -> 4, bias = false))\n}\nderive lap = laplacian(U)\n"


@pytest.mark.usefixtures("x64")
def test_compiled_laplacian_of_sqrt_layer_fused():
    """The default pipeline fuses the collapsed layer into its sqrt (one ``taylor.layer``)
    and gives the unfused program's Laplacian, at rest too, on torch and JAX."""
    code = geomir.compiler.emit_source(SRC, "torch")
    assert "activation='geo.sqrt'" in code and "taylor.collapsed.sqrt" not in code
    fused = geomir.compile(SRC, target="torch")
    unfused = geomir.compile(SRC, target="torch", passes="insert-transport,jet-expand,cse,dce")
    x, _, _ = _inputs()
    params = fused.init_params(seed=3, dtype=torch.float64)
    params = {k: p.abs() + 0.1 for k, p in params.items()}  # W > 0: no zero-at-rest in moving rows
    got, ref = fused.lap(params, x), unfused.lap(params, x)
    assert torch.isfinite(got).all()
    assert torch.equal(got[:3], torch.zeros_like(got[:3]))
    assert _rel(got, ref) < 1e-13
    import jax.numpy as jnp

    jl = np.asarray(geomir.compile(SRC, target="jax").lap({k: jnp.asarray(p.numpy()) for k, p in params.items()},
                                                          jnp.asarray(x.numpy())))
    assert jl.dtype == np.float64 and np.abs(jl - got.numpy()).max() <= 1e-13 * np.abs(jl).max()
