"""Riemannian SGD/Adam: a NaN/inf gradient, a sparse gradient where a dense one is needed,
or a step that overflows is reported before anything changes (it used to spread NaN over
the whole point and into Adam's moments, or, on the sphere, to turn silently into the
origin); and the updates on the sphere, the hyperboloid and the torus follow the published
algorithms (Bécigneul & Ganea 2019) written out here from the manifold operations."""

from __future__ import annotations

import math

import pytest
import torch

from geomir.backends.torch import runtime
from geomir.backends.torch.optim import NonFiniteStepError, RiemannianAdam, RiemannianSGD

MANIFOLDS = [None, runtime.PoincareBall(c=1.0), runtime.Lorentz(c=1.0), runtime.Sphere(), runtime.Torus()]
OPTIMIZERS = [(RiemannianSGD, dict(lr=0.1, momentum=0.9)), (RiemannianAdam, dict(lr=0.1)),
              (RiemannianAdam, dict(lr=0.1, amsgrad=True))]


def _point(manifold, rows=3, dim=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    v = 0.3 * torch.randn(rows, dim, generator=g, dtype=dtype)
    if manifold is None:
        return v
    return manifold.expmap0(manifold.proju(manifold.origin_like(v), v))


def _param(manifold, **kw):
    p = torch.nn.Parameter(_point(manifold, **kw))
    if manifold is not None:
        p.manifold = manifold
    return p


def _snapshot(opt, params):
    state = {id(p): {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[p].items()} for p in params}
    return [p.detach().clone() for p in params], state


def _assert_unchanged(opt, params, before):
    values, state = before
    for p, v in zip(params, values):
        assert torch.equal(p.detach(), v)
    for p in params:
        now = opt.state[p]
        assert set(now) == set(state[id(p)])
        for k, v in state[id(p)].items():
            assert torch.equal(now[k], v) if torch.is_tensor(v) else now[k] == v


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("manifold", MANIFOLDS, ids=lambda m: "R" if m is None else m.name)
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=["sgd-momentum", "adam", "amsgrad"])
def test_a_non_finite_gradient_is_reported_and_nothing_changes(cls, kwargs, manifold, bad) -> None:
    good, hit = _param(runtime.PoincareBall(c=1.0), seed=1), _param(manifold)
    opt = cls([good, hit], **kwargs)
    for _ in range(2):  # some state first
        good.grad, hit.grad = torch.ones_like(good), torch.ones_like(hit)
        opt.step()
    before = _snapshot(opt, [good, hit])
    good.grad = torch.ones_like(good)  # the first parameter's step would be fine
    hit.grad = torch.ones_like(hit)
    hit.grad[1, 2] = bad
    with pytest.raises(NonFiniteStepError, match=r"gradient of parameter 1 of param group 0 \(shape \(3, 3\)"):
        opt.step()
    _assert_unchanged(opt, [good, hit], before)
    hit.grad[1, 2] = 0.5  # the caller fixes the gradient: the step goes on from the same state
    opt.step()
    assert torch.isfinite(hit).all() and torch.isfinite(good).all()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=["sgd-momentum", "adam", "amsgrad"])
def test_check_finite_false_skips_the_checks(cls, kwargs) -> None:
    """check_finite=False: no host read per step, and a NaN gradient is committed as it was
    before the checks (the caller checks the loss itself)."""
    p = _param(runtime.PoincareBall(c=1.0))
    opt = cls([p], check_finite=False, **kwargs)
    p.grad = torch.ones_like(p)
    p.grad[0, 0] = math.nan
    opt.step()
    assert torch.isnan(p[0]).any() and torch.isfinite(p[1:]).all()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=["sgd-momentum", "adam", "amsgrad"])
def test_a_step_that_overflows_is_reported_and_nothing_changes(cls, kwargs) -> None:
    """A huge finite gradient far out on the hyperboloid: the exponential map overflows.
    The NaN point used to be written (and NaN moments with it)."""
    lorentz = runtime.Lorentz(c=1.0)
    p = torch.nn.Parameter(lorentz.expmap0(torch.tensor([[0.0, 200.0, 0.0]], dtype=torch.float64)))
    p.manifold = lorentz
    opt = cls([p], **{**kwargs, "lr": 1e3})
    before = _snapshot(opt, [p])
    p.grad = torch.tensor([[0.0, 1e200, -1e200]], dtype=torch.float64)
    with pytest.raises(NonFiniteStepError, match="non-finite .* from a finite gradient"):
        opt.step()
    _assert_unchanged(opt, [p], before)


@pytest.mark.parametrize("cls", [RiemannianSGD, RiemannianAdam])
def test_sparse_gradients_on_a_manifold_are_refused_with_a_clear_error(cls) -> None:
    emb = torch.nn.Embedding(5, 3, sparse=True).double()
    with torch.no_grad():
        emb.weight.mul_(0.1)
    emb.weight.manifold = runtime.PoincareBall(c=1.0)
    opt = cls(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(RuntimeError, match=r"PoincareBall.*has a sparse gradient"):
        opt.step()
    assert torch.equal(emb.weight.detach(), before)


def test_adam_refuses_sparse_gradients_like_torch_and_sgd_takes_them_like_torch() -> None:
    emb = torch.nn.Embedding(5, 3, sparse=True).double()
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradient"):
        RiemannianAdam(emb.parameters(), lr=0.1).step()
    results = []
    for cls in (RiemannianSGD, torch.optim.SGD):
        torch.manual_seed(0)
        emb = torch.nn.Embedding(5, 3, sparse=True).double()
        opt = cls(emb.parameters(), lr=0.1, momentum=0.9)
        for i in range(3):
            opt.zero_grad()
            (emb(torch.tensor([i, 2])) ** 2).sum().backward()
            opt.step()
        results.append(emb.weight.detach())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


# -- the algorithms from their definition, on the sphere, the hyperboloid and the torus ----------


def _loss(manifold, x, target):
    return (manifold.dist(x, target) ** 2).sum()


def _reference_adam(manifold, x, target, lr, betas, eps, steps):
    """Riemannian Adam (Bécigneul & Ganea 2019, as geoopt writes it) with the exponential map
    and parallel transport of the first moment."""
    m = v = None
    for t in range(1, steps + 1):
        xr = x.clone().requires_grad_()
        (egrad,) = torch.autograd.grad(_loss(manifold, xr, target), xr)
        r = manifold.egrad2rgrad(x, egrad)
        m = (1 - betas[0]) * r if m is None else betas[0] * m + (1 - betas[0]) * r
        sq = manifold.component_inner(x, r)
        v = (1 - betas[1]) * sq if v is None else betas[1] * v + (1 - betas[1]) * sq
        direction = (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps)
        new = manifold.proj(manifold.expmap(x, -lr * direction))
        m, x = manifold.transp(x, new, m), new
    return x


@pytest.mark.parametrize("manifold", [runtime.Sphere(), runtime.Lorentz(c=0.5), runtime.Torus(), runtime.PoincareBall(c=2.0)],
                         ids=lambda m: m.name)
def test_adam_follows_its_definition_on_every_manifold(manifold) -> None:
    x0, target = _point(manifold, rows=4, seed=2), _point(manifold, rows=4, seed=3)
    p = torch.nn.Parameter(x0.clone())
    p.manifold = manifold
    opt = RiemannianAdam([p], lr=0.05)
    for _ in range(15):
        opt.zero_grad()
        _loss(manifold, p, target).backward()
        opt.step()
    expected = _reference_adam(manifold, x0, target, 0.05, (0.9, 0.999), 1e-8, 15)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-12)
