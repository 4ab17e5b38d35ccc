"""A numeric check of ``@equivariant(G)`` for tests: the largest |f(g·x) - g·f(x)| over
random group elements and random inputs, on the compiled torch model (needs torch).

    from geomir.equivariance_check import equivariance_error
    err = equivariance_error("examples/equivariant_ball.geo", "Geodesic", "ball_rotation")
    assert err < 1e-10   # float64; about 1e-6 in float32

The group acts as ``verify-contracts`` assumes (geomir.equivariance.acted_inputs), by one
element on every input it acts on: so2 rotates every coordinate pair of the
even-dimensional Euclidean inputs by one angle; perm permutes the coordinates of every
Euclidean input; torus_translation shifts the angles of every torus point (outputs on the
torus are compared modulo the period); ball_rotation applies one rotation Q in SO(n) to
every ball point. Invariance outputs (R[1], or R^n for the torus) are compared with f(x)
itself. A model whose acted inputs one element cannot all act on (perm, ball_rotation,
torus_translation with inputs of different dimensions) is refused with the prover's words
(geomir.equivariance.inputs_problem), a UsageError.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from xdsl.dialects import func

from geomir import input_names
from geomir.dialects import contract, geo
from geomir.diagnostics import UsageError
from geomir.equivariance import EQUI, acted_inputs, inputs_problem, output_label
from geomir.pipeline import UNCHECKED_PIPELINE


def _manifold(attr, runtime):
    from geomir.backends.common.pyemit import manifold_ctor

    return eval(manifold_ctor(attr), {"runtime": runtime, "math": math})  # noqa: S307


def _sample(t, rng, batch, dtype, scale, runtime):
    """Points of type ``t``: expmap0 of a tangent with coordinates ~ N(0, scale²)."""
    import torch

    v = torch.tensor(rng.normal(0.0, scale, (batch, t.dim_value)), dtype=dtype)
    if isinstance(t, geo.TangentType) or isinstance(t.manifold, geo.EuclideanAttr):
        return v
    m = _manifold(t.manifold, runtime)
    return m.expmap0(m.proju(m.origin_like(v), v))


def _element(group: str, dim: int, rng: np.random.Generator, period: float):
    """A random element of the group: an angle, a permutation, a shift or a rotation."""
    if group == "so2":
        return rng.uniform(0.0, 2 * math.pi)
    if group == "perm":
        return rng.permutation(dim)
    if group == "torus_translation":
        return rng.uniform(0.0, period, dim)
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q  # Haar-distributed in SO(dim)


def _act(group: str, g, x, t, runtime):
    import torch

    if group == "so2":
        c, s = math.cos(g), math.sin(g)
        pairs = x.reshape(*x.shape[:-1], -1, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return torch.stack([c * a - s * b, s * a + c * b], dim=-1).reshape(x.shape)
    if group == "perm":
        return x[..., torch.as_tensor(g)]
    if group == "torus_translation":
        return _manifold(t.manifold, runtime).proj(x + torch.as_tensor(g, dtype=x.dtype))
    return x @ torch.as_tensor(g, dtype=x.dtype).T


def _function(source, model: str) -> func.FuncOp:
    import geomir

    module = geomir.to_ir(source, passes=[])
    funcs = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}
    if model not in funcs:
        raise KeyError(f"no model {model} (models: {', '.join(funcs)})")
    return funcs[model]


def equivariance_error(source: str | Path, model: str, group: str | None = None, *, dtype=None,
                       batch: int = 16, trials: int = 8, seed: int = 0, scale: float = 0.5,
                       params: dict | None = None) -> float:
    """max |f(g·x) - g·f(x)| for model ``model`` of ``source`` (a .geo path or text) over
    ``trials`` random group elements, each on ``batch`` random inputs (float64 unless
    ``dtype``). ``group`` defaults to the model's declared ``@equivariant`` group; the
    weights are ``init_params(seed=0)`` unless ``params`` are given."""
    import torch

    import geomir
    from geomir.backends.torch import runtime

    dtype = dtype or torch.float64
    f = _function(source, model)
    if group is None:
        declared = [c.group.data for c in contract.get_contracts(f) if isinstance(c, contract.EquivariantAttr)]
        if len(declared) != 1:
            raise ValueError(f"model {model} declares {len(declared)} equivariance contracts; name the group")
        group = declared[0]
    types = f.function_type.inputs.data
    out_type = f.function_type.outputs.data[0]
    names = [name or f"input {i}" for i, name in enumerate(input_names.input_names(f))]
    problem = inputs_problem(group, types, names)
    if problem is not None:
        raise UsageError(f"@equivariant({group}) of model {model}: {problem}")
    acts = acted_inputs(group, types)
    if not any(acts):
        raise ValueError(f"{group} acts on no input of model {model}")
    dim = types[acts.index(True)].dim_value
    period = getattr(types[acts.index(True)].manifold, "period", 2 * math.pi)
    moves_output = output_label(group, out_type) == EQUI

    compiled = geomir.compile(source, target="torch", passes=UNCHECKED_PIPELINE)
    fn = getattr(compiled, model)
    if params is None:
        params = compiled.init_params(seed=0, dtype=dtype)
    rng = np.random.default_rng(seed)
    worst = 0.0
    with torch.no_grad():
        for _ in range(trials):
            xs = [_sample(t, rng, batch, dtype, scale, runtime) for t in types]
            g = _element(group, dim, rng, period)
            moved = [_act(group, g, x, t, runtime) if a else x for x, t, a in zip(xs, types, acts)]
            lhs = fn(params, *moved)
            rhs = fn(params, *xs)
            if moves_output:
                rhs = _act(group, g, rhs, out_type, runtime)
            diff = lhs - rhs
            if isinstance(getattr(out_type, "manifold", None), geo.TorusAttr):
                p = out_type.manifold.period
                diff = torch.remainder(diff + p / 2, p) - p / 2
            worst = max(worst, float(diff.abs().max()))
    return worst
