"""Riemannian SGD/Adam: a NaN/inf gradient, a sparse gradient where a dense one is needed,
or a step that overflows is reported before anything changes (it used to spread NaN over
the whole point and into Adam's moments, or, on the sphere, to turn silently into the
origin); and the updates on the sphere, the hyperboloid and the torus follow the published
algorithms (Bécigneul & Ganea 2019) written out here from the manifold operations."""

from __future__ import annotations

import math
import re

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


# --- hyperparameters and manifolds are checked when they come in -------------------------------------

_NAN, _INF = math.nan, math.inf


@pytest.mark.parametrize("cls,kwargs,message", [
    (RiemannianSGD, dict(lr=_NAN), "Invalid learning rate: nan"),
    (RiemannianSGD, dict(lr=_INF), "Invalid learning rate: inf"),
    (RiemannianSGD, dict(lr=0.1, momentum=_NAN), "Invalid momentum value: nan"),
    (RiemannianSGD, dict(lr=0.1, momentum=1.5), "Invalid momentum value: 1.5"),
    (RiemannianSGD, dict(lr=0.1, dampening=-1.0), "Invalid dampening value: -1.0"),
    (RiemannianSGD, dict(lr=0.1, dampening=_NAN), "Invalid dampening value: nan"),
    (RiemannianSGD, dict(lr=0.1, weight_decay=_NAN), "Invalid weight_decay value: nan"),
    (RiemannianSGD, dict(lr=0.1, weight_decay=_INF), "Invalid weight_decay value: inf"),
    (RiemannianAdam, dict(lr=_NAN), "Invalid learning rate: nan"),
    (RiemannianAdam, dict(lr=-_INF), "Invalid learning rate: -inf"),
    (RiemannianAdam, dict(lr=0.1, eps=_NAN), "Invalid epsilon value: nan"),
    (RiemannianAdam, dict(lr=0.1, eps=_INF), "Invalid epsilon value: inf"),
    (RiemannianAdam, dict(lr=0.1, weight_decay=_NAN), "Invalid weight_decay value: nan"),
    (RiemannianAdam, dict(lr=0.1, betas=(_NAN, 0.999)), "Invalid beta parameter at index 0: nan"),
    (RiemannianAdam, dict(lr=0.1, betas=(0.9, _NAN)), "Invalid beta parameter at index 1: nan"),
    (RiemannianAdam, dict(lr=0.1, betas=(0.9,)), "Invalid betas"),
])
def test_non_finite_or_out_of_range_hyperparameters_are_refused_at_construction(cls, kwargs, message) -> None:
    """NaN passed every `x <= 0` check: lr=nan was taken, and the first step blamed the
    learning rate for being too large (or, with check_finite=False, turned the point NaN)."""
    with pytest.raises(ValueError, match=re.escape(message)):
        cls([_param(runtime.PoincareBall(c=1.0))], **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        cls([_param(runtime.PoincareBall(c=1.0))], check_finite=False, **kwargs)


def test_a_non_number_hyperparameter_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Invalid learning rate: '0.1'"):
        RiemannianSGD([_param(None)], lr="0.1")
    RiemannianSGD([_param(None)], lr=torch.tensor(0.1))  # a one-element tensor, as torch.optim takes


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=["sgd-momentum", "adam", "amsgrad"])
def test_add_param_group_and_load_state_dict_check_the_hyperparameters(cls, kwargs) -> None:
    p, q = _param(runtime.PoincareBall(c=1.0)), _param(runtime.Lorentz(c=1.0))
    opt = cls([p], **kwargs)
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        opt.add_param_group({"params": [q], "lr": math.nan})
    assert len(opt.param_groups) == 1  # the bad group was not added
    p.grad = torch.ones_like(p)
    opt.step()
    state = opt.state_dict()
    before = _snapshot(opt, [p])
    bad = {**state, "param_groups": [{**state["param_groups"][0], "lr": math.nan}]}
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == kwargs["lr"]
    _assert_unchanged(opt, [p], before)
    opt.load_state_dict(state)  # a good one still loads


@pytest.mark.parametrize("bad", ["poincare", 3, object(), 0])
def test_a_parameter_whose_manifold_is_not_one_is_named(bad) -> None:
    """`.manifold = "poincare"` failed only at step() with "'str' object has no attribute
    'egrad2rgrad'" (and a falsy one, 0, was taken for Euclidean)."""
    good, p = _param(None), torch.nn.Parameter(torch.zeros(2, 2))
    p.manifold = bad
    for cls, kwargs in OPTIMIZERS:
        with pytest.raises(TypeError, match=r"parameter 1 of param group 0 \(shape \(2, 2\).* has \.manifold = "
                                            r".*which is not a manifold"):
            cls([good, p], **kwargs)
        opt = cls([good], **kwargs)
        with pytest.raises(TypeError, match=r"parameter 0 of param group 1 .*not a manifold"):
            opt.add_param_group({"params": [p]})
        assert len(opt.param_groups) == 1
    # set after the optimizer was made: the step names it, before anything changes
    q = _param(None)
    opt = RiemannianSGD([good, q], lr=0.1)
    q.manifold = bad
    good.grad, q.grad = torch.ones_like(good), torch.ones_like(q)
    before = _snapshot(opt, [good, q])
    with pytest.raises(TypeError, match=r"parameter 1 of param group 0 .*not a manifold"):
        opt.step()
    _assert_unchanged(opt, [good, q], before)


def test_a_manifold_on_other_arrays_is_named() -> None:
    from geomir.backends.common import numpy_runtime

    p = _param(None)
    p.manifold = numpy_runtime.Torus()
    with pytest.raises(TypeError, match="a manifold on NumpyOps arrays, not torch tensors"):
        RiemannianAdam([p], lr=0.1)


def test_a_numpy_manifold_is_refused_after_the_same_class_on_torch_passed():
    """The check remembered the manifold's class only: once a torch Torus had passed, a
    NumPy Torus got through and step() failed inside copy_ with torch's own TypeError."""
    from geomir.backends.common import manifolds as common
    from geomir.backends.common import numpy_runtime

    ok = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    ok.manifold = common.Torus(runtime.OPS)
    RiemannianSGD([ok], lr=0.1)
    bad = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    bad.manifold = numpy_runtime.Torus()
    with pytest.raises(TypeError, match="a manifold on NumpyOps arrays, not torch tensors"):
        RiemannianSGD([bad], lr=0.1)


def test_a_sparse_gradient_on_the_torus_names_the_torus():
    p = torch.nn.Parameter(torch.zeros(4, 2))
    p.manifold = runtime.Torus(1.0)
    p.grad = torch.sparse_coo_tensor([[0]], torch.ones(1, 2), (4, 2))
    with pytest.raises(RuntimeError, match=r"a point on torus \(not R\^n\) moves along a dense"):
        RiemannianSGD([p], lr=0.1).step()
