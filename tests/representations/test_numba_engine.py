"""The numba engine of the hierarchy trainer against the torch engine: one batch moves the
same rows to the same points (its closed-form gradients against torch autograd, with masked
candidates, a source among its own candidates and points at the clamped boundary), whole
runs follow the same batches to the same embedding, and misuse is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomir.diagnostics import UsageError
from geomir.representations import numba_engine
from geomir.representations.hierarchy import generated_tree
from geomir.representations import train as train_module
from geomir.representations.train import EmbeddingLoss, RowwiseRAdagrad, RowwiseRSGD, TrainConfig, make_space, train

pytest.importorskip("numba")

MANIFOLDS = ("poincare", "lorentz", "euclidean")


def _torch_step(space, points, u, cand, valid, lr, eps, acc=None):
    """The torch engine's batch step (one process) on a copy of points: (loss, points);
    Riemannian Adagrad with a copy of the accumulators ``acc`` (then (loss, points, acc))."""
    module = EmbeddingLoss(points.clone(), space)
    opt = RowwiseRSGD(module.points, lr)
    if acc is not None:
        opt = RowwiseRAdagrad(module.points, lr)
        opt.acc.copy_(torch.as_tensor(acc))
    loss, _ = train_module._torch_step(module, module, opt, space, TrainConfig(boundary_eps=eps), u, cand, valid,
                                       torch.device("cpu"), 0, 1)
    if acc is not None:
        return loss, module.points.detach(), opt.acc.numpy()
    return loss, module.points.detach()


def _batch(n, b, k, gen):
    u = torch.randint(0, n, (b,), generator=gen)
    cand = torch.randint(0, n, (b, k + 1), generator=gen)
    valid = torch.rand(b, k + 1, generator=gen) > 0.25
    valid[:, 0] = True
    cand[0, 2], valid[0, 2] = u[0], False  # the source among its negatives, masked
    cand[1, 1] = cand[1, 0]  # a repeated row
    return u, cand, valid


@settings(max_examples=25, deadline=None)
@given(manifold=st.sampled_from(MANIFOLDS), seed=st.integers(0, 2 ** 31), curvature=st.floats(0.3, 3.0),
       scale=st.sampled_from([1e-3, 0.3, 3.0]), lr=st.sampled_from([0.05, 1.0, 30.0]),
       batch=st.integers(2, 40), adagrad=st.booleans())
@example(manifold="lorentz", seed=1, curvature=2.0, scale=3.0, lr=30.0, batch=2, adagrad=False)  # a long clamped step
@example(manifold="lorentz", seed=0, curvature=2.0, scale=3.0, lr=30.0, batch=3, adagrad=False)
@example(manifold="lorentz", seed=1, curvature=3.0, scale=3.0, lr=0.05, batch=2, adagrad=True)  # acc 1.5e-9 apart
def test_one_batch_matches_the_torch_step(manifold, seed, curvature, scale, lr, batch, adagrad):
    space = make_space(manifold, 4, curvature)
    gen = torch.Generator().manual_seed(seed)
    n = 60
    points = space.clamp_radius(space.init(n, scale, gen, torch.float64), 1e-5)
    u, cand, valid = _batch(n, batch, 7, gen)
    # Adagrad: accumulators from 0 (a first step) to well beyond a batch's gradient
    acc = (torch.rand(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-9, 1, (n,), generator=gen)
           if adagrad else None)
    acc_np = None if acc is None else acc.numpy().copy()
    loss, expected, *acc_t = _torch_step(space, points, u, cand, valid, lr, 1e-5, acc)
    table = points.numpy().copy()
    losses, bad = numba_engine.run_batches(table, u.numpy(), cand.numpy(), valid.numpy(), batch, lr, manifold,
                                           curvature, 1e-5, numba_engine.Workspace(n, table.shape[1]), acc_np)
    assert bad == -1 and losses.shape == (1,)
    assert losses[0] == pytest.approx(loss, rel=1e-12)
    if adagrad:  # Lorentz far out: the gradient cancels (4e-8 apart at worst over 4,800 cases)
        np.testing.assert_allclose(acc_np, acc_t[0], rtol=1e-6 if manifold == "lorentz" else 1e-9, atol=0)
    if manifold == "lorentz":
        # Far out (x0 ~ 300) a long step (lr 30) is ill-conditioned: the tangent's Minkowski
        # norm and the distances' gradients cancel terms ~1e10 times their result, and the
        # step may clamp to the radius bound. The torch step itself moves by up to ~1e-5 of a
        # point when its input points move by 1e-15 (seed 0, c 3, batch 3, row 37). So each
        # row may differ by 1e-8 of its size plus 10 times the torch step's own spread under
        # relative input perturbations of 1e-15 (three draws).
        spread = torch.zeros(n, dtype=torch.float64)
        pgen = torch.Generator().manual_seed(seed + 1)
        for _ in range(3):
            noisy = points * (1 + 1e-15 * torch.randn(points.shape, generator=pgen, dtype=torch.float64))
            again = _torch_step(space, space.clamp_radius(noisy, 1e-5), u, cand, valid, lr, 1e-5, acc)[1]
            spread = torch.maximum(spread, (again[:, 1:] - expected[:, 1:]).norm(dim=1))
        got, want = torch.as_tensor(table)[:, 1:], expected[:, 1:]
        allowed = 1e-8 * want.norm(dim=1) + 10 * spread + 1e-12
        assert bool(((got - want).norm(dim=1) <= allowed).all()), ((got - want).norm(dim=1) / allowed).max()
    else:
        scale_ = max(1.0, float(expected.abs().max()))
        np.testing.assert_allclose(table, expected.numpy(), rtol=1e-7, atol=1e-10 * scale_)


@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_points_on_the_boundary_clamp(manifold):
    """Points at the radius bound (Poincaré: 1 - c|x|^2 at its floor) move as in torch."""
    space = make_space(manifold, 3, 1.0)
    gen = torch.Generator().manual_seed(3)
    n = 30
    points = space.init(n, 1.0, gen, torch.float64)
    points[:10] = space.clamp_radius(points[:10] * 1e6, 1e-15)  # far out, beyond the training bound
    u, cand, valid = _batch(n, 8, 5, gen)
    loss, expected = _torch_step(space, points, u, cand, valid, 0.5, 1e-5)
    table = points.numpy().copy()
    losses, bad = numba_engine.run_batches(table, u.numpy(), cand.numpy(), valid.numpy(), 8, 0.5, manifold, 1.0,
                                           1e-5, numba_engine.Workspace(n, table.shape[1]))
    assert bad == -1 and losses[0] == pytest.approx(loss, rel=1e-9)
    np.testing.assert_allclose(table, expected.numpy(), rtol=1e-9, atol=1e-9)


def test_several_batches_are_consecutive_steps():
    space = make_space("poincare", 5, 1.0)
    gen = torch.Generator().manual_seed(0)
    points = space.init(80, 0.2, gen, torch.float64)
    u, cand, valid = _batch(80, 30, 6, gen)
    expected, losses_t = points, []
    for s in range(0, 30, 8):  # 8, 8, 8, 6
        loss, expected = _torch_step(space, expected, u[s:s + 8], cand[s:s + 8], valid[s:s + 8], 2.0, 1e-5)
        losses_t.append(loss)
    table = points.numpy().copy()
    losses, bad = numba_engine.run_batches(table, u.numpy(), cand.numpy(), valid.numpy(), 8, 2.0, "poincare", 1.0,
                                           1e-5, numba_engine.Workspace(80, 5))
    assert bad == -1
    np.testing.assert_allclose(losses, losses_t, rtol=1e-12)
    np.testing.assert_allclose(table, expected.numpy(), atol=1e-12)


@pytest.mark.parametrize("manifold", MANIFOLDS)
@pytest.mark.parametrize("optimizer, lr", [("rsgd", 3.0), ("radagrad", 0.3)])
def test_training_runs_agree_between_engines(manifold, optimizer, lr):
    tree = generated_tree(depth=3, branching=4, seed=1)
    cfg = dict(manifold=manifold, dim=4, epochs=4, burnin=2, batch_size=16, negatives=10, lr=lr, optimizer=optimizer,
               adagrad_init=1e-6)
    a = train(tree, TrainConfig(**cfg, engine="torch"), progress=False)
    b = train(tree, TrainConfig(**cfg, engine="numba"), progress=False)
    assert a.history[-1]["engine"] == "torch" and b.history[-1]["engine"] == "numba"
    np.testing.assert_allclose([h["loss"] for h in b.history], [h["loss"] for h in a.history], rtol=1e-9)
    torch.testing.assert_close(b.points, a.points, rtol=0, atol=1e-8)


def test_float32_tables_train_and_stay_finite():
    tree = generated_tree(depth=4, branching=3, seed=0)
    emb = train(tree, TrainConfig(manifold="poincare", dim=5, epochs=15, burnin=2, batch_size=32, negatives=20,
                                  lr=10.0, dtype="float32", engine="numba"), progress=False)
    assert emb.points.dtype == torch.float32 and bool(torch.isfinite(emb.points).all())
    assert emb.evaluate(tree).map > 0.8


def test_engine_errors(monkeypatch):
    tree = generated_tree(depth=2, branching=2, seed=0)
    with pytest.raises(UsageError, match="engine 'numba' runs Riemannian SGD or Adagrad in one CPU process.*'radam'"):
        train(tree, TrainConfig(optimizer="radam", engine="numba", epochs=1, burnin=0), progress=False)
    with pytest.raises(UsageError, match="engine must be one of auto, torch, numba"):
        TrainConfig(engine="cuda").validate()
    monkeypatch.setattr(numba_engine, "numba", None)
    with pytest.raises(UsageError, match="engine 'numba' needs numba: pip install numba"):
        train(tree, TrainConfig(engine="numba", epochs=1, burnin=0), progress=False)
    auto = train(tree, TrainConfig(epochs=1, burnin=0, dim=2), progress=False)  # falls back to torch
    assert auto.history[-1]["engine"] == "torch"


@pytest.mark.parametrize("curvature", [1.0, 2.0])
def test_lorentz_close_pairs_far_out_step_as_in_torch(curvature):
    """Close pairs far out (x0 ~ 3e4, d ~ 1e-2): the numba engine took the squared chord as
    <y - x, y - x>_L, which cancels squares of the coordinates (relative error eps c x0^2/l2);
    its steps were 1-3% off torch's (which takes the chord from the ball images,
    ``Lorentz._chord``). Now the same formula and its gradient: the same step to 1e-8 of it."""
    space = make_space("lorentz", 3, curvature)
    gen = torch.Generator().manual_seed(5)
    m = 8
    base = torch.randn(m, 3, generator=gen, dtype=torch.float64)
    base = 11.0 * base / base.norm(dim=1, keepdim=True) / curvature ** 0.5  # inside the radius bound
    tangent = torch.cat([base, base + 1e-7 * torch.randn(m, 3, generator=gen, dtype=torch.float64),
                         base + 3e-5 * torch.randn(m, 3, generator=gen, dtype=torch.float64)])
    points = space.manifold.expmap0(torch.cat([torch.zeros(3 * m, 1, dtype=torch.float64), tangent], 1))
    u = torch.arange(m)
    cand = torch.stack([u + m, u + 2 * m], 1)  # a close positive, a farther negative
    valid = torch.ones_like(cand, dtype=torch.bool)
    loss, expected = _torch_step(space, points, u, cand, valid, 0.1, 1e-5)
    table = points.numpy().copy()
    losses, bad = numba_engine.run_batches(table, u.numpy(), cand.numpy(), valid.numpy(), m, 0.1, "lorentz",
                                           curvature, 1e-5, numba_engine.Workspace(3 * m, 4))
    assert bad == -1 and losses[0] == pytest.approx(loss, rel=1e-13)
    step = (expected[:, 1:] - points[:, 1:]).norm(dim=1).max()
    assert float((torch.as_tensor(table)[:, 1:] - expected[:, 1:]).norm(dim=1).max()) <= 1e-8 * float(step)


def test_the_lorentz_chord_and_its_gradient_are_torch_s():
    """``_lorentz_chord`` against ``Lorentz._chord`` and torch autograd, near and far pairs."""
    gen = torch.Generator().manual_seed(0)
    for c in (1.0, 2.5):
        manifold = make_space("lorentz", 3, c).manifold
        for trial in range(60):
            v = torch.randn(2, 4, generator=gen, dtype=torch.float64)
            v[:, 0] = 0
            v = v / v.norm(dim=1, keepdim=True) * 8.0 * torch.rand(2, 1, generator=gen, dtype=torch.float64)
            if trial % 3 == 0:
                v[1] = v[0] + 1e-3 * v[1]  # a close pair (the near form)
            x, y = (manifold.expmap0(v[i:i + 1]).requires_grad_() for i in range(2))
            _, l2 = manifold._chord(x, y)
            l2.sum().backward()
            gx, gy = np.zeros(4), np.zeros(4)
            got = numba_engine._lorentz_chord.py_func(x.detach().numpy()[0], y.detach().numpy()[0], c ** 0.5, gx, gy)
            assert got == pytest.approx(float(l2.detach()), rel=1e-13)
            np.testing.assert_allclose(gx, x.grad.numpy()[0], rtol=0, atol=1e-13 * float(x.grad.abs().max()))
            np.testing.assert_allclose(gy, y.grad.numpy()[0], rtol=0, atol=1e-13 * float(y.grad.abs().max()))
