"""Collapsed Taylor mode: every collapsed rule equals the sum over directions of ordinary
order-2 jets, and the forward Laplacian of MLPs, random compositions and Poincaré-ball
layers equals the trace of the Hessian (torch.autograd.functional.hessian and jax.hessian,
float64 <= 1e-10); torch and JAX agree."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from geomir.backends.common import taylor as common
from geomir.backends.jax import taylor as JT
from geomir.backends.torch import runtime as TR
from geomir.backends.torch import taylor as TT

from . import (
    Plain,
    algebra,
    random_program,
    run_program,
    x64,  # noqa: F401  (fixture: jax float64 in this module)
)
from .test_rules import CASES

pytestmark = pytest.mark.usefixtures("x64")

RTOL = 1e-10
D, SHAPE = 3, (2, 4)  # directions, (batch, n)


def _lap_jet(rng, domain="any", shape=SHAPE, d=D):
    f0 = rng.normal(size=shape)
    if domain == "pos":
        f0 = rng.uniform(0.5, 2.0, size=shape)
    elif domain == "unit":
        f0 = rng.uniform(-0.8, 0.8, size=shape)
    return common.LaplacianJet(torch.tensor(f0), torch.tensor(rng.normal(size=(d, *shape)) * 0.5),
                               torch.tensor(rng.normal(size=shape) * 0.5))


def _directional(lj, d):
    """The ordinary order-2 jet along direction d, the second-order part split evenly
    (every rule is linear in it, so the sum over d is the collapsed f2)."""
    return torch.stack([lj.f0, lj.f1[d], lj.f2 / lj.f1.shape[0]])


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.abs(b).max(), 1e-300)
    err = np.abs(a - b).max() / scale
    assert err <= 1e-12, f"{what}: {err:.1e}"


EXTRA = {  # rules outside CASES: name -> (domains, program)
    "clamp": (("any",), lambda A, x: A.clamp(x, lo=-0.5, hi=0.7)),
    "sqrt0": (("pos",), lambda A, x: A.sqrt0(x)),
    "abs0": (("any",), lambda A, x: A.abs0(x)),
    "tanhc": (("pos",), lambda A, x: A.tanhc(A.scale(x, 0.1))),
    "asinhc": (("pos",), lambda A, x: A.asinhc(x)),
    "tanhc at 0": (("any",), lambda A, x: A.tanhc(A.sqnorm(A.sub(x, x)))),
    "select": (("any", "any"), lambda A, a, b: A.select(torch.tensor(np.arange(4) % 2 == 0), a, b)),
    "with_primal": (("any",), lambda A, x: A.with_primal(x, torch.ones(4, dtype=torch.float64))),
    "coords": (("any",), lambda A, x: A.coords(x)),
}


@pytest.mark.parametrize("name", sorted(CASES) + sorted(EXTRA))
def test_collapsed_rule_is_the_sum_of_directional_jets(name):
    domains, fn = {**CASES, **EXTRA}[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    ljs = [_lap_jet(rng, d) for d in domains]
    out = fn(algebra("torch", collapsed=True), *ljs)
    A = algebra("torch")
    jets = [fn(A, *(_directional(lj, d) for lj in ljs)) for d in range(D)]
    _close(out.f0, jets[0][0], f"{name} f0")
    for d in range(D):
        _close(out.f1[d], jets[d][1], f"{name} f1[{d}]")
    _close(out.f2, sum(j[2] for j in jets), f"{name} f2")


def test_every_rule_has_a_collapsed_rule():
    assert set(common.RULES) == set(common.COLLAPSED_RULES)


# --- Laplacians against Hessian traces -------------------------------------------------------


def _hessian_trace_torch(f, x):
    """sum_i d^2 f_j/dx_i^2 per batch row b and output j, by torch.autograd.functional.hessian."""
    out = []
    for b in range(x.shape[0]):
        m = f(x[b : b + 1]).shape[-1]
        row = [torch.autograd.functional.hessian(lambda u, j=j: f(u[None])[0, j], x[b]).diagonal().sum()
               for j in range(m)]
        out.append(torch.stack(row))
    return torch.stack(out)


def _hessian_trace_jax(f, x):
    def one(u):
        return jnp.trace(jax.hessian(lambda v: f(v[None])[0])(u), axis1=-2, axis2=-1)

    return jax.jit(jax.vmap(one))(x)


def _laplacian_torch(f_collapsed, x):
    return TT.laplacian_of(f_collapsed(TT.laplacian_seed(x)))


def _check_laplacian(prog_torch, prog_jax, prog_jets, x, what, tol=RTOL):
    """Against the torch Hessian trace and, if ``prog_jax`` is given, jax.hessian's."""
    ours = _laplacian_torch(prog_jets, x).numpy()
    ref_t = _hessian_trace_torch(prog_torch, x).numpy()
    refs = [(ref_t, "torch hessian")]
    if prog_jax is not None:
        refs.append((np.asarray(_hessian_trace_jax(prog_jax, jnp.asarray(x.numpy()))), "jax.hessian"))
    for ref, who in refs:
        err = np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-300)
        assert err <= tol, f"{what}: vs {who} {err:.1e}"
    return np.abs(ours - ref_t).max() / np.abs(ref_t).max()


def _mlp_weights(rng, sizes):
    return [(rng.normal(size=(m, n)) / math.sqrt(n), rng.normal(size=m) * 0.1) for n, m in itertools.pairwise(sizes)]


def _mlp(A, layers, x):
    h = x
    for i, (w, b) in enumerate(layers):
        h = A.bias(A.linear(h, A.const(w)), A.const(b))
        if i < len(layers) - 1:
            h = A.tanh(h)
    return h


def test_laplacian_of_a_tanh_mlp():
    rng = np.random.default_rng(0)
    layers = _mlp_weights(rng, [4, 16, 16, 2])
    x = torch.tensor(rng.normal(size=(3, 4)))
    err = _check_laplacian(lambda u: _mlp(Plain("torch"), layers, u), lambda u: _mlp(Plain("jax"), layers, u),
                           lambda lj: _mlp(algebra("torch", collapsed=True), layers, lj), x, "tanh MLP")
    print(f"ACC laplacian tanh MLP: {err:.1e}")


def test_laplacian_factor_two():
    """f = |x|^2 has Laplacian 2n; f = sum sin x_i has -sum sin x_i."""
    x = torch.randn(2, 5, dtype=torch.float64)
    lap = TT.laplacian_of(TT.collapsed.sqnorm(TT.laplacian_seed(x)))
    assert torch.allclose(lap, torch.full((2, 1), 10.0, dtype=torch.float64), rtol=1e-15, atol=0)
    lap = TT.laplacian_of(TT.collapsed.sum_last(TT.collapsed.sin(TT.laplacian_seed(x))))
    assert torch.allclose(lap, -torch.sin(x).sum(-1, keepdim=True), rtol=1e-14, atol=0)


def test_laplacian_seed_with_directions_gives_a_weighted_trace():
    """sum_d v_d^T H v_d for given directions (shape (D, *x.shape))."""
    rng = np.random.default_rng(1)
    layers = _mlp_weights(rng, [3, 8, 1])
    x = torch.tensor(rng.normal(size=(1, 3)))
    v = torch.tensor(rng.normal(size=(2, 1, 3)))
    out = TT.laplacian_of(_mlp(algebra("torch", collapsed=True), layers, TT.laplacian_seed(x, v)))
    H = torch.autograd.functional.hessian(lambda u: _mlp(Plain("torch"), layers, u[None])[0, 0], x[0])
    ref = sum(v[d, 0] @ H @ v[d, 0] for d in range(2))
    assert abs(out.item() - ref.item()) <= 1e-12 * abs(ref.item())


@pytest.mark.parametrize("seed", range(8))
def test_laplacian_of_random_compositions(seed):
    rng = np.random.default_rng([seed, 99])
    n = int(rng.integers(2, 5))
    prog = random_program(rng, n, int(rng.integers(2, 6)))
    x = torch.tensor(rng.normal(size=(2, n)) * 0.8)
    _check_laplacian(lambda u: run_program(prog, Plain("torch"), u), lambda u: run_program(prog, Plain("jax"), u),
                     lambda lj: run_program(prog, algebra("torch", collapsed=True), lj), x,
                     f"program {[s[0] for s in prog]}")


# --- hyperbolic layers -----------------------------------------------------------------------------


def _hyperbolic_layer(ball, w, b, x):
    """expmap0 of a Euclidean input, a Möbius matvec, a Möbius bias, then logmap0 and the
    distance to b (the shape of examples/hyperbolic_mlp.geo)."""
    p = ball.mobius_add(ball.mobius_matvec(w, ball.expmap0(x)), b)
    return (ball.logmap0(p), ball.dist(p, b))


@pytest.mark.parametrize("c", [1.0, 2.5])
def test_laplacian_of_hyperbolic_layers(c):
    rng = np.random.default_rng(int(c * 10))
    w = rng.normal(size=(3, 4)) * 0.5
    b = TR.PoincareBall(c).expmap0(torch.tensor(rng.normal(size=3) * 0.3)).numpy()
    x = torch.tensor(rng.normal(size=(3, 4)) * 0.5)
    x[0] = 0.0  # through the origin of expmap0

    def plain(ball, const):
        def f(u):
            return ball.ops.concat(list(_hyperbolic_layer(ball, const(w), const(b), u)))
        return f

    t = plain(TR.PoincareBall(c), lambda a: torch.tensor(a))
    jball = TT.PoincareBall(c, collapsed=True)

    def jets(lj):
        bj = TT.laplacian_constant(torch.tensor(b)[None])
        log, dist = _hyperbolic_layer(jball, torch.tensor(w), bj, lj)
        return common.LaplacianJet(*(torch.cat([u, v], -1) for u, v in zip(log, dist)))

    # torch only: jax.hessian of the layer takes seconds to compile
    err = _check_laplacian(t, None, jets, x, f"hyperbolic layer c={c}", tol=1e-9)
    print(f"ACC laplacian hyperbolic layer c={c}: {err:.1e}")


def test_torch_and_jax_collapsed_agree():
    rng = np.random.default_rng(3)
    layers = _mlp_weights(rng, [4, 8, 8, 2])
    x = rng.normal(size=(3, 4))
    t = TT.laplacian_of(_mlp(algebra("torch", collapsed=True), layers, TT.laplacian_seed(torch.tensor(x))))
    A = algebra("jax", collapsed=True)
    j = jax.jit(lambda u: JT.laplacian_of(_mlp(A, layers, JT.laplacian_seed(u))))(jnp.asarray(x))
    assert np.abs(np.asarray(j) - t.numpy()).max() <= 1e-12 * np.abs(t.numpy()).max()
    q = np.abs(rng.normal(size=(5, 1)))
    q[0] = 0.0
    for name in ("tanhc", "asinhc"):
        tj = getattr(TT.collapsed, name)(TT.laplacian_seed(torch.tensor(q)))
        jj = getattr(JT.collapsed, name)(JT.laplacian_seed(jnp.asarray(q)))
        for a, b in zip(tj, jj):
            assert np.abs(np.asarray(b) - a.numpy()).max() <= 1e-12 * max(np.abs(a.numpy()).max(), 1e-300), name


def test_collapsed_linear_with_broadcast_parts():
    """Parts with different batch shapes (a broadcast value) take three matmuls."""
    rng = np.random.default_rng(5)
    lj = common.LaplacianJet(torch.tensor(rng.normal(size=(1, 4))), torch.tensor(rng.normal(size=(3, 2, 4))),
                             torch.tensor(rng.normal(size=(1, 4))))
    w = torch.tensor(rng.normal(size=(2, 4)))
    out = TT.collapsed.linear(lj, w)
    for a, b in zip(out, lj):
        assert torch.allclose(a, b @ w.T, rtol=1e-15, atol=0)
    c = TT.collapsed.linear(TT.laplacian_constant(lj.f0), w)
    assert c.f1.shape == (1, 1, 2) and not c.f1.any()
