"""PyTorch kernels of ``jet.layer`` (``taylor.layer``): the generic rule chain of
``geomir.backends.common.taylor.layer`` with fewer passes over memory.

* the matmul acts on each part without first copying the parts into one stack;
* the bias is added in place to coefficient 0 (f0) of the fresh matmul output, where that
  is the same as ``f0 + b`` (:func:`_bias_in_place`); out of place otherwise (a bias batched
  by ``torch.func.vmap`` while f0 is not: in place would have to grow f0);
* tanh, the PINN activation, has a hand-scheduled recurrence (fused multiply-adds,
  ``addcmul_``, into fresh buffers), the same numbers as the rule up to rounding;
* the Laplacian's sum over directions of f1² accumulates one direction at a time
  instead of materializing f1² (D times the activation's size);
* the Laplacian layer makes the collapsed rules' special cases: ``exp`` as
  e (f2 + sum_d f1_d²/2) with the factor applied last (``taylor.exp_times``: +-inf, not NaN,
  where exp overflows), and ``sqrt``'s constant 0 where its input rests at 0 (f0, f1, f2
  all 0: the rule's ``_zero_at_rest``), so the layer equals the unfused rules there too.

In-place updates only touch tensors made here whose old values autograd does not save
(matmul outputs, sums), so reverse mode (``derivatives.grad``, hvp) still works; torch's
version counters would raise, not miscompute, if that changed. Under a torch.func
transform (a wrapped tensor) the multiply-adds run out of place (:func:`_addcmul`). Other activations use
the generic rules.
"""

from __future__ import annotations

import torch
from torch._C import _functorch

from geomir.backends.common import taylor as _t
from geomir.backends.common.manifolds import _sech2


def _tanh012(ops, u0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tanh u, tanh' u, tanh'' u / 2) = (t, g, -t g), g = sech² u without cancellation."""
    t = torch.tanh(u0)
    g = _sech2(ops, torch.abs(u0))
    return t, g, -t * g


def tanh_jet(ops, u: torch.Tensor) -> torch.Tensor:
    """The tanh rule (y' = g u', g = 1 - y²) on a (K+1, ...) jet, scheduled with fused
    multiply-adds: y_k = (1/k) sum_j j u_j g_(k-j), g_m = -sum_i y_i y_(m-i)."""
    K = u.shape[0] - 1
    y0, g0, _ = _tanh012(ops, u[0])
    ys, gs = [y0], [g0]
    for k in range(1, K + 1):
        s = u[1] * gs[k - 1]
        for j in range(2, k + 1):
            s = _addcmul(s, u[j], gs[k - j], value=float(j))
        if k > 1:
            s.mul_(1.0 / k)
        ys.append(s)
        if k < K:  # g_k = -(2 sum_(i < k/2) y_i y_(k-i) + [k even] y_(k/2)^2)
            g = ys[0] * ys[k]
            for i in range(1, (k + 1) // 2):
                g = _addcmul(g, ys[i], ys[k - i])
            g.mul_(-2.0)
            if k % 2 == 0:
                g = _addcmul(g, ys[k // 2], ys[k // 2], value=-1.0)
            gs.append(g)
    return torch.stack(ys)


def _addcmul(s: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: float = 1.0) -> torch.Tensor:
    """``s + value a b``, in place into the fresh buffer ``s`` unless a torch.func transform
    wraps one of them (``vmap`` has no batching rule for ``addcmul_``: a loop per example)."""
    if any(_functorch.is_functorch_wrapped_tensor(t) for t in (s, a, b)):
        return torch.addcmul(s, a, b, value=value)
    return s.addcmul_(a, b, value=value)


def _bias_in_place(y0: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``y0 += b`` on the fresh matmul output ``y0`` gives ``y0 + b``: ``b``
    broadcasts to ``y0``'s shape and dtype, and no torch.func transform wraps ``b`` (under
    ``vmap`` over a bias, ``b`` is batched and ``y0`` not, a shape in place cannot hold)."""
    return (not _functorch.is_functorch_wrapped_tensor(b)
            and torch.broadcast_shapes(y0.shape, b.shape) == y0.shape
            and torch.result_type(y0, b) == y0.dtype)


def layer(ops, x, w, b=None, activation=None):
    """``activation(W x + b)`` on a jet or a Laplacian jet (see the module docstring)."""
    act = activation.removeprefix("geo.") if activation else None
    wt = w.transpose(-1, -2)
    if isinstance(x, _t.LaplacianJet):
        return _laplacian_layer(ops, x, wt, b, act)
    y = torch.matmul(x, wt)
    if b is not None:
        if _bias_in_place(y[0], b):
            y[0] += b
        else:
            y = _t.RULES["bias"](ops, y, b)
    if act is None:
        return y
    if act == "tanh":
        return tanh_jet(ops, y)
    return _t.RULES[act](ops, y)


def _laplacian_layer(ops, x: _t.LaplacianJet, wt, b, act):
    y0 = torch.matmul(x.f0, wt)
    if b is not None:
        y0 = y0.add_(b) if _bias_in_place(y0, b) else y0 + b
    y1, y2 = torch.matmul(x.f1, wt), torch.matmul(x.f2, wt)
    if act is None:
        return _t.LaplacianJet(y0, y1, y2)
    if act == "neg":  # linear: each part negated (the collapsed rule; no sum of f1^2)
        return _t.LaplacianJet(y0.neg_(), y1.neg_(), y2.neg_())
    if y1.shape[1:] != y0.shape:  # broadcast parts (a constant's f1): no in-place update
        return _t.COLLAPSED_RULES[act](ops, _t.LaplacianJet(y0, y1, y2))
    sq = y1[0] * y1[0]
    for d in range(1, y1.shape[0]):
        sq = _addcmul(sq, y1[d], y1[d])
    if act == "exp":  # e (f2 + sum_d f1_d^2 / 2): the collapsed exp rule (taylor.c_exp)
        e = torch.exp(y0)
        return _t.LaplacianJet(e, _t.exp_times(ops, e, y1), _t.exp_times(ops, e, y2 + 0.5 * sq))
    rest = None
    if act == "sqrt":  # the collapsed rule's zero-at-rest case (taylor._zero_at_rest)
        rest = (y0 == 0) & (sq == 0) & (y2 == 0)
        y0 = torch.where(rest, 1.0, y0)  # the rule at 1 there: no NaN reaches the gradient
    if act == "tanh":
        c0, c1, c2 = _tanh012(ops, y0)
    else:  # (phi, phi', phi''/2) from the ordinary order-2 rule, as COLLAPSED_RULES does
        c = _t.RULES[act](ops, _t.seed(ops, y0, torch.ones_like(y0), 2))
        c0, c1, c2 = c[0], c[1], c[2]
    y2 = y2 * c1
    y2 = _addcmul(y2, c2, sq)
    out = _t.LaplacianJet(c0, y1 * c1, y2)
    if rest is not None:  # the constant 0 where the input rests at 0 (phi', phi'' infinite)
        out = _t.LaplacianJet(*(torch.where(rest, 0.0, part) for part in out))
    return out
