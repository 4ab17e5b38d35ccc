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

import math
import numbers

import torch

from geomir.backends.common import manifolds as _common
from geomir.backends.torch import runtime

_EUCLIDEAN = runtime.Euclidean()

# what the optimizers call on a parameter's manifold
_MANIFOLD_METHODS = ("egrad2rgrad", "proj", "expmap", "transp", "component_inner")
# (manifold type, its ops' type) pairs that passed _manifold_problem (the per-step check is a
# set lookup); the ops too: one manifold class runs on torch or on NumPy arrays
_CHECKED_MANIFOLD_TYPES: set[tuple[type, type]] = set()


def _manifold(p: torch.Tensor):
    m = getattr(p, "manifold", None)
    return _EUCLIDEAN if m is None else m


def _manifold_problem(m) -> str | None:
    """Why ``m`` (a parameter's ``.manifold``) cannot be stepped on, or None."""
    key = (type(m), type(getattr(m, "ops", None)))
    if key in _CHECKED_MANIFOLD_TYPES:
        return None
    if isinstance(m, _common.Manifold):
        if not isinstance(getattr(m, "ops", None), runtime.TorchOps):
            return (f"is a manifold on {type(getattr(m, 'ops', None)).__name__} arrays, not torch tensors "
                    "(use the geomir.backends.torch.runtime manifolds)")
    else:
        missing = [name for name in _MANIFOLD_METHODS if not callable(getattr(m, name, None))]
        if not isinstance(getattr(m, "name", None), str):
            missing.append("name")
        if missing:
            return (f"is not a manifold (it has no {', '.join(missing)}); set it to one of "
                    "geomir.backends.torch.runtime's manifolds (e.g. runtime.PoincareBall(c=1.0)), "
                    "or delete it for a Euclidean parameter")
    _CHECKED_MANIFOLD_TYPES.add(key)
    return None


def _check_manifold(owner: str, gi: int, pi: int, p: torch.Tensor):
    """``p``'s manifold (Euclidean without one), or a TypeError naming the parameter."""
    m = _manifold(p)
    problem = _manifold_problem(m)
    if problem is not None:
        shown = repr(m)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise TypeError(f"{owner}: parameter {pi} of param group {gi} (shape {tuple(p.shape)}, {p.dtype}) has "
                        f".manifold = {shown} ({type(m).__name__}), which {problem}")
    return m


def _number(owner: str, what: str, value) -> float:
    """``value`` as a float, or a TypeError: a real number (not a bool) or a one-element tensor."""
    if torch.is_tensor(value) and value.numel() == 1 and not value.is_complex() and value.dtype != torch.bool:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: Invalid {what}: {value!r} ({type(value).__name__}); expected a real number")
    return float(value)


def _check_range(owner: str, what: str, value, low: float, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = True) -> None:
    """A ValueError unless ``value`` is a finite number in the interval (low, high) with the
    ends open or closed as told (NaN and inf never pass)."""
    v = _number(owner, what, value)
    above = v > low if low_open else v >= low
    below = v < high if high_open else v <= high
    if not (math.isfinite(v) and above and below):
        if math.isfinite(high):
            wanted = ("in (" if low_open else "in [") + f"{low:g}, {high:g}" + (")" if high_open else "]")
        else:
            wanted = ("> " if low_open else ">= ") + f"{low:g}"
        raise ValueError(f"{owner}: Invalid {what}: {value!r} (it must be a finite number {wanted})")


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

    def __init__(self, params, defaults: dict, check_finite: bool) -> None:
        self.check_finite = check_finite
        self._check_hyperparameters(defaults)  # the defaults before any group takes them
        super().__init__(params, defaults)

    @classmethod
    def _check_hyperparameters(cls, group: dict) -> None:
        """Raise a ValueError (TypeError for a non-number) for a hyperparameter of ``group``
        that is NaN, infinite or out of range; the subclass says which and what range."""
        raise NotImplementedError

    def add_param_group(self, param_group: dict) -> None:
        """torch.optim's, after checking the group's hyperparameters (its own and the defaults
        it takes) and its parameters' manifolds; a bad group is not added."""
        if isinstance(param_group, dict):
            self._check_hyperparameters({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)
        try:
            for pi, p in enumerate(self.param_groups[-1]["params"]):
                _check_manifold(type(self).__name__, len(self.param_groups) - 1, pi, p)
        except TypeError:
            self.param_groups.pop()
            raise

    def load_state_dict(self, state_dict: dict) -> None:
        """torch.optim's, after checking the saved groups' hyperparameters (they replace the
        optimizer's): nothing is loaded from a state with a NaN learning rate, say."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if isinstance(groups, (list, tuple)):
            for group in groups:
                if isinstance(group, dict):
                    self._check_hyperparameters({**self.defaults, **{k: v for k, v in group.items() if k != "params"}})
        super().load_state_dict(state_dict)

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
                m = _check_manifold(type(self).__name__, gi, pi, p)  # .manifold may have been set since
                if p.grad.layout != torch.strided and (self._dense_only or not _flat(m)):
                    raise RuntimeError(
                        f"{type(self).__name__}: {_where(gi, pi, p, m)} has a sparse gradient ({p.grad.layout}); "
                        + ("it needs dense gradients" if self._dense_only else
                           f"a point on {m.name} (not R^n) moves along a dense Riemannian gradient")
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
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults, check_finite)

    @classmethod
    def _check_hyperparameters(cls, group: dict) -> None:
        owner = cls.__name__
        _check_range(owner, "learning rate", group["lr"], 0.0, low_open=True)
        _check_range(owner, "momentum value", group["momentum"], 0.0, 1.0)
        _check_range(owner, "dampening value", group["dampening"], 0.0, 1.0, high_open=False)
        _check_range(owner, "weight_decay value", group["weight_decay"], 0.0)
        if group["nesterov"] and (float(group["momentum"]) <= 0 or float(group["dampening"]) != 0):
            raise ValueError(f"{owner}: Nesterov momentum needs momentum > 0 and dampening = 0, found "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

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
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults, check_finite)

    @classmethod
    def _check_hyperparameters(cls, group: dict) -> None:
        owner = cls.__name__
        _check_range(owner, "learning rate", group["lr"], 0.0, low_open=True)
        _check_range(owner, "epsilon value", group["eps"], 0.0, low_open=True)
        betas = group["betas"]
        if torch.is_tensor(betas) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{owner}: Invalid betas: {betas!r} (expected a pair (beta1, beta2) in [0, 1))")
        for i, beta in enumerate(betas):
            _check_range(owner, f"beta parameter at index {i}", beta, 0.0, 1.0)
        _check_range(owner, "weight_decay value", group["weight_decay"], 0.0)

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
