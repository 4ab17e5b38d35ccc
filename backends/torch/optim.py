"""Riemannian optimizers for generated PyTorch models (Bonnabel 2013; Bécigneul & Ganea 2019).

A parameter with a ``.manifold`` (set by ``CompiledModel`` for points on a curved
manifold) is updated on that manifold:

1. the Euclidean gradient is rescaled to the Riemannian gradient (``egrad2rgrad``;
   on the Poincaré ball: divided by the conformal factor squared),
2. the point moves along the exponential map (retraction ``proj(expmap(x, -lr·u))``),
3. momentum (and Adam's first moment) is parallel-transported to the new point.

Adam's second moment averages ``component_inner(x, u)``: the squared Riemannian norm
``|u|_x²``, one value per point, on curved manifolds; ``u ⊙ u`` per coordinate on flat ones
(Euclidean, torus), as in geoopt's RiemannianAdam. Parameters without
a manifold take the Euclidean path: these optimizers then coincide with torch.optim.SGD
and Adam (tests check both the Euclidean agreement and geoopt's updates). A parameter
with ``.constraint == "nonnegative"`` (``linear(..., nonnegative = true)``) is projected
back onto W >= 0 after each step.

A step is all or nothing: a gradient that holds NaN or inf, a sparse gradient where the
update needs a dense one (a point on a curved manifold; Adam), or a step that would make a
point or a moment non-finite (an overflowing exponential map) raises before any parameter
or optimizer state changes (:class:`NonFiniteStepError`, ``RuntimeError``). Without this a
NaN in one coordinate spread over the whole point (the ball, the hyperboloid), into Adam's
moments for good, or was silently replaced by the sphere's origin by ``proj``.
"""

from __future__ import annotations

import torch

from geomir.backends.torch import runtime

_EUCLIDEAN = runtime.Euclidean()


def _manifold(p: torch.Tensor):
    return getattr(p, "manifold", None) or _EUCLIDEAN


def _retract(manifold, x, u):
    return manifold.proj(manifold.expmap(x, u))


class NonFiniteStepError(FloatingPointError):
    """A Riemannian optimizer step met a NaN or inf (in a gradient, or made by the update);
    nothing was changed."""


def _flat(m) -> bool:
    """Plain R^n (no manifold, or Euclidean): the path that coincides with torch.optim."""
    return m.name == "euclidean"


def _values(t: torch.Tensor) -> torch.Tensor:
    """The stored values of ``t`` (those of a sparse tensor), which must all be finite."""
    return t if t.layout == torch.strided else t.coalesce().values()


def _where(gi: int, pi: int, p: torch.Tensor, m) -> str:
    manifold = "" if _flat(m) else f", on {m!r}"
    return f"parameter {pi} of param group {gi} (shape {tuple(p.shape)}, {p.dtype}{manifold})"


def _count(x: torch.Tensor) -> str:
    x = _values(x)
    return f"{int(torch.isnan(x).sum())} NaN and {int(torch.isinf(x).sum())} inf of {x.numel()} values"


def _all_finite(tensors) -> bool:
    """Whether every tensor is finite: one host read for the lot."""
    flags = [torch.isfinite(_values(t)).all() for t in tensors]
    if not flags:
        return True
    dev = flags[0].device
    return bool(torch.stack([f.to(dev) for f in flags]).all())


def _first_non_finite(items):
    """The first ``(tag, tensor)`` of ``items`` whose tensor holds a NaN or inf, or None: one
    host read when all are finite (the common case), then one per tensor to find it."""
    items = list(items)
    if _all_finite([t for _, t in items]):
        return None
    return next(item for item in items if not _all_finite([item[1]]))


class _RiemannianOptimizer(torch.optim.Optimizer):
    """The loop both optimizers share: closure, checks, weight decay, Riemannian gradient;
    the subclass's ``_update(p, manifold, rgrad, group)`` returns the new point and the new
    state entries (computed out of place), committed only once every parameter's step is
    finite. ``check_finite=False`` skips the two checks (each a host read: a GPU sync per
    step) and commits whatever the step made."""

    _dense_only = False  # Adam: every sparse gradient is refused (as torch.optim.Adam does)
    check_finite = True

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        todo = []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                m = _manifold(p)
                if p.grad.layout != torch.strided and (self._dense_only or not _flat(m)):
                    raise RuntimeError(
                        f"{type(self).__name__}: {_where(gi, pi, p, m)} has a sparse gradient ({p.grad.layout}); "
                        + ("it needs dense gradients" if self._dense_only else
                           "a point on a curved manifold moves along a dense Riemannian gradient")
                        + " (use a dense embedding/gradient, e.g. nn.Embedding(..., sparse=False))")
                todo.append((gi, pi, group, p, m))
        bad = self.check_finite and _first_non_finite(((gi, pi, p, m), p.grad) for gi, pi, _, p, m in todo)
        if bad:
            (gi, pi, p, m), g = bad
            raise NonFiniteStepError(
                f"{type(self).__name__}: the gradient of {_where(gi, pi, p, m)} has {_count(g)}; "
                "no parameter or optimizer state was changed (zero the gradients or skip this step)")
        steps = []
        for gi, pi, group, p, m in todo:
            grad = p.grad
            if group["weight_decay"]:
                grad = grad.add(p, alpha=group["weight_decay"])
            new, state = self._update(p, m, m.egrad2rgrad(p, grad), group)
            steps.append((gi, pi, p, m, new, state))
        bad = self.check_finite and _first_non_finite(
            ((gi, pi, p, m, name), t) for gi, pi, p, m, new, state in steps
            for name, t in (("the new point", new), *state.items()) if torch.is_tensor(t))
        if bad:
            (gi, pi, p, m, name), t = bad
            raise NonFiniteStepError(
                f"{type(self).__name__}: the step of {_where(gi, pi, p, m)} made {name} non-finite "
                f"({_count(t)}) from a finite gradient (lr too large for the manifold?); "
                "no parameter or optimizer state was changed")
        for _, _, p, _, new, state in steps:
            p.copy_(new)
            if state:
                self.state[p].update(state)
            if getattr(p, "constraint", None) == "nonnegative":
                p.clamp_(min=0.0)  # projected step: W stays >= 0 (monotone layers)
        return loss


class RiemannianSGD(_RiemannianOptimizer):
    """SGD with momentum, Nesterov and weight decay, on each parameter's manifold."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, check_finite: bool = True):
        self.check_finite = check_finite
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, found {lr}")
        if momentum < 0 or weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, m, grad, group):
        lr, momentum = group["lr"], group["momentum"]
        if not momentum:
            return _retract(m, p, -lr * grad), {}
        buf = self.state[p].get("momentum_buffer")
        if buf is None:
            buf = grad.clone()
        else:
            buf = buf.mul(momentum).add_(grad, alpha=1 - group["dampening"])
        direction = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        new = _retract(m, p, -lr * direction)
        return new, {"momentum_buffer": m.transp(p, new, buf)}


class RiemannianAdam(_RiemannianOptimizer):
    """Adam (optionally AMSGrad) on each parameter's manifold."""

    _dense_only = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, check_finite: bool = True):
        self.check_finite = check_finite
        if lr <= 0 or eps <= 0:
            raise ValueError(f"lr and eps must be > 0, found lr={lr}, eps={eps}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), found {betas}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, found {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, p, m, grad, group):
        beta1, beta2 = group["betas"]
        state = self.state[p]
        step = state.get("step", 0) + 1
        exp_avg = state["exp_avg"] if "exp_avg" in state else torch.zeros_like(p)
        exp_avg_sq = state["exp_avg_sq"] if "exp_avg_sq" in state else torch.zeros_like(p)
        exp_avg = exp_avg.mul(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq = exp_avg_sq.mul(beta2).add_(m.component_inner(p, grad), alpha=1 - beta2)
        new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second = exp_avg_sq
        if group["amsgrad"]:
            previous = state["max_exp_avg_sq"] if "max_exp_avg_sq" in state else torch.zeros_like(p)
            second = new_state["max_exp_avg_sq"] = torch.maximum(previous, exp_avg_sq)
        bias1 = 1 - beta1 ** step
        bias2 = 1 - beta2 ** step
        denom = (second / bias2).sqrt_().add_(group["eps"])
        direction = exp_avg / denom
        new = _retract(m, p, -(group["lr"] / bias1) * direction)
        new_state["exp_avg"] = m.transp(p, new, exp_avg)
        return new, new_state
