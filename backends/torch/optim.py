"""Riemannian optimizers for generated PyTorch models (Bonnabel 2013; Bécigneul & Ganea 2019).

A parameter with a ``.manifold`` (set by ``CompiledModel`` for points on a curved
manifold) is updated on that manifold:

1. the Euclidean gradient is rescaled to the Riemannian gradient (``egrad2rgrad``;
   on the Poincaré ball: divided by the conformal factor squared),
2. the point moves along the exponential map (retraction ``proj(expmap(x, -lr·u))``),
3. momentum (and Adam's first moment) is parallel-transported to the new point.

Adam's second moment is kept per coordinate from ``u ⊙ u`` scaled by the metric (the
Riemannian norm for conformal metrics), as in geoopt's RiemannianAdam. Parameters without
a manifold take the Euclidean path: these optimizers then coincide with torch.optim.SGD
and Adam (tests check both the Euclidean agreement and geoopt's updates). A parameter
with ``.constraint == "nonnegative"`` (``linear(..., nonnegative = true)``) is projected
back onto W >= 0 after each step.
"""

from __future__ import annotations

import torch

from geomir.backends.torch import runtime

_EUCLIDEAN = runtime.Euclidean()


def _manifold(p: torch.Tensor):
    return getattr(p, "manifold", None) or _EUCLIDEAN


def _retract(manifold, x, u):
    return manifold.proj(manifold.expmap(x, u))


class _RiemannianOptimizer(torch.optim.Optimizer):
    """The loop both optimizers share: closure, weight decay, Riemannian gradient; the
    subclass's ``_update(p, manifold, rgrad, group)`` moves the point."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = _manifold(p)
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                self._update(p, m, m.egrad2rgrad(p, grad), group)
                if getattr(p, "constraint", None) == "nonnegative":
                    p.clamp_(min=0.0)  # projected step: W stays >= 0 (monotone layers)
        return loss


class RiemannianSGD(_RiemannianOptimizer):
    """SGD with momentum, Nesterov and weight decay, on each parameter's manifold."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, found {lr}")
        if momentum < 0 or weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, m, grad, group) -> None:
        lr, momentum = group["lr"], group["momentum"]
        if momentum:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            direction = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
            new = _retract(m, p, -lr * direction)
            buf.copy_(m.transp(p, new, buf))
        else:
            new = _retract(m, p, -lr * grad)
        p.copy_(new)


class RiemannianAdam(_RiemannianOptimizer):
    """Adam (optionally AMSGrad) on each parameter's manifold."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        if lr <= 0 or eps <= 0:
            raise ValueError(f"lr and eps must be > 0, found lr={lr}, eps={eps}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), found {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, p, m, grad, group) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(m.component_inner(p, grad), alpha=1 - beta2)
        second = exp_avg_sq
        if group["amsgrad"]:
            torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        bias1 = 1 - beta1 ** state["step"]
        bias2 = 1 - beta2 ** state["step"]
        denom = (second / bias2).sqrt_().add_(group["eps"])
        direction = exp_avg / denom
        new = _retract(m, p, -(group["lr"] / bias1) * direction)
        exp_avg.copy_(m.transp(p, new, exp_avg))
        p.copy_(new)
