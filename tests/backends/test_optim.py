"""Riemannian SGD/Adam: the same trajectories as geoopt on the Poincaré ball, the same as
torch.optim on Euclidean parameters, and points stay on the manifold."""

from __future__ import annotations

import pytest
import torch

from geomir.backends.torch import runtime
from geomir.backends.torch.optim import RiemannianAdam, RiemannianSGD

geoopt = pytest.importorskip("geoopt")

C_VALUES = [0.3, 1.0, 2.5]


class ExpmapBall(geoopt.PoincareBall):
    """geoopt's ball with the exponential map as retraction (geoopt's default is the
    first-order proj(x + u)); with the retraction made equal, everything else of the
    algorithms (gradient rescaling, momentum, transport, Adam statistics) is compared."""

    def retr(self, x, u):
        return self.expmap(x, u)

    def retr_transp(self, x, u, v, *more):
        y = self.retr(x, u)
        return (y, self.transp(x, y, v), *(self.transp(x, y, w) for w in more))


def _loss(x: torch.Tensor, target: torch.Tensor, ball) -> torch.Tensor:
    return (ball.dist(x, target) ** 2).sum() + 0.1 * (x * x).sum()


def _run(opt_cls, kwargs, c, steps=25, geo=False):
    torch.manual_seed(0)
    ball = runtime.PoincareBall(c=c)
    start = ball.expmap0(0.3 * torch.randn(5, 3, dtype=torch.float64))
    target = ball.expmap0(0.3 * torch.randn(5, 3, dtype=torch.float64))
    if geo:
        # c as a float64 tensor: geoopt stores a Python float as float32 (0.3 -> 0.30000001)
        p = geoopt.ManifoldParameter(start.clone(), manifold=ExpmapBall(c=torch.tensor(c, dtype=torch.float64)))
    else:
        p = torch.nn.Parameter(start.clone())
        p.manifold = ball
    opt = opt_cls([p], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        _loss(p, target, ball).backward()
        opt.step()
    return p.detach(), ball


@pytest.mark.parametrize("c", C_VALUES)
@pytest.mark.parametrize(
    "ours,theirs,kwargs",
    [
        (RiemannianSGD, "RiemannianSGD", dict(lr=0.05)),
        (RiemannianAdam, "RiemannianAdam", dict(lr=0.02)),
        (RiemannianAdam, "RiemannianAdam", dict(lr=0.02, amsgrad=True)),
    ],
    ids=["sgd", "adam", "amsgrad"],
)
def test_matches_geoopt_on_the_ball(ours, theirs, kwargs, c) -> None:
    mine, ball = _run(ours, kwargs, c)
    ref, _ = _run(getattr(geoopt.optim, theirs), kwargs, c, geo=True)
    torch.testing.assert_close(mine, ref, rtol=1e-9, atol=1e-11)
    assert torch.all(ball.lambda_x(mine) < float("inf"))


def _reference_momentum_sgd(c, lr, momentum, nesterov, steps=25):
    """Riemannian SGD with momentum written out from its definition, on geoopt's ball
    operations. (geoopt's own RiemannianSGD seeds the buffer with the Euclidean gradient
    and then adds the Riemannian one at step 1, unlike torch.optim.SGD, so it is not the
    reference here.)"""
    torch.manual_seed(0)
    ball = runtime.PoincareBall(c=c)
    start = ball.expmap0(0.3 * torch.randn(5, 3, dtype=torch.float64))
    target = ball.expmap0(0.3 * torch.randn(5, 3, dtype=torch.float64))
    g = geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))
    x, buf = start.clone(), None
    for _ in range(steps):
        xr = x.clone().requires_grad_()
        (egrad,) = torch.autograd.grad(_loss(xr, target, ball), xr)
        rgrad = g.egrad2rgrad(x, egrad)
        buf = rgrad.clone() if buf is None else momentum * buf + rgrad
        direction = rgrad + momentum * buf if nesterov else buf
        new = g.expmap(x, -lr * direction)
        buf = g.transp(x, new, buf)
        x = new
    return x


@pytest.mark.parametrize("c", C_VALUES)
@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_momentum_sgd_matches_its_definition(c, nesterov) -> None:
    mine, _ = _run(RiemannianSGD, dict(lr=0.05, momentum=0.9, nesterov=nesterov), c)
    torch.testing.assert_close(mine, _reference_momentum_sgd(c, 0.05, 0.9, nesterov), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(
    "ours,theirs,kwargs",
    [
        (RiemannianSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
        (RiemannianAdam, torch.optim.Adam, dict(lr=0.05, weight_decay=0.01)),
    ],
    ids=["sgd", "adam"],
)
def test_euclidean_parameters_match_torch_optim(ours, theirs, kwargs) -> None:
    torch.manual_seed(1)
    w0 = torch.randn(4, 3, dtype=torch.float64)
    target = torch.randn(4, 3, dtype=torch.float64)
    results = []
    for cls in (ours, theirs):
        w = torch.nn.Parameter(w0.clone())
        opt = cls([w], **kwargs)
        for _ in range(30):
            opt.zero_grad()
            ((torch.tanh(w) - target) ** 2).sum().backward()
            opt.step()
        results.append(w.detach())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_one_sgd_step_follows_the_exponential_map() -> None:
    ball = runtime.PoincareBall(c=1.0)
    x0 = ball.expmap0(torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64))
    p = torch.nn.Parameter(x0.clone())
    p.manifold = ball
    p.grad = torch.tensor([[1.0, 2.0, -0.5]], dtype=torch.float64)
    RiemannianSGD([p], lr=0.1).step()
    rgrad = p.grad / ball.lambda_x(x0) ** 2  # the conformal rescaling
    torch.testing.assert_close(p.detach(), ball.expmap(x0, -0.1 * rgrad), rtol=1e-13, atol=1e-15)


def test_loss_decreases_and_points_stay_in_the_ball() -> None:
    first, ball = _run(RiemannianAdam, dict(lr=0.05), 1.0, steps=0)
    last, _ = _run(RiemannianAdam, dict(lr=0.05), 1.0, steps=60)
    torch.manual_seed(0)
    assert torch.all(last.norm(dim=-1) < 1)
    assert not torch.equal(first, last)


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(lr=0.1, momentum=-1.0), dict(lr=0.1, nesterov=True)])
def test_bad_hyperparameters_are_rejected(bad) -> None:
    with pytest.raises(ValueError):
        RiemannianSGD([torch.nn.Parameter(torch.zeros(2))], **bad)
