"""``geomc model.geo --report=contracts``: each model's declared Lipschitz contract, the
bound ``verify-contracts`` proves, and how tight that bound is against an empirical lower
bound (adversarial probes on the compiled torch model with the same weights, seed 0).

The empirical bound maximises |f(x) - f(y)| / d(x, y) over random pairs at several scales,
then by gradient ascent on the ratio (Adam): any pair gives a lower bound on the true
Lipschitz constant, so proved / empirical >= 1 always (a violation would be a bug in the
proof, and is flagged). Models on the Poincaré ball, and contracts on a radius, get the
largest norm of the metric Jacobian (conformal factors of input and output applied) over
random points within the radius, boundary-weighted: also a lower bound on the Lipschitz
constant there. Other manifolds get no empirical bound yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from geomir.diagnostics import SourceError
from geomir.pipeline import UNCHECKED_PIPELINE


@dataclass
class ContractRow:
    model: str
    where: str | None
    declared: float
    proved: float
    empirical: float | None
    blocker: str | None  # why no finite bound was proved

    @property
    def holds(self) -> bool:
        return self.proved <= self.declared

    @property
    def sound(self) -> bool:
        return self.empirical is None or self.empirical <= self.proved * (1 + 1e-9)


def empirical_lipschitz(fn, dims: list[int], seed: int = 0, points: int = 64, steps: int = 30) -> float:
    """A lower bound on the Lipschitz constant of ``fn(*inputs)`` (Euclidean inputs of
    sizes ``dims``, joint distance) by random and adversarial pairs, in float64."""
    import torch

    g = torch.Generator().manual_seed(seed)
    d = sum(dims)

    def f(z):
        return fn(*torch.split(z, dims, dim=-1))

    best = 0.0
    for scale in (0.1, 1.0, 5.0):
        x = (scale * torch.randn(points, d, generator=g, dtype=torch.float64)).requires_grad_()
        y = (x.detach() + 1e-2 * torch.randn(points, d, generator=g, dtype=torch.float64)).requires_grad_()
        opt = torch.optim.Adam([x, y], lr=0.05 * scale)
        for _ in range(steps):
            ratio = (f(x) - f(y)).norm(dim=-1) / (x - y).norm(dim=-1).clamp_min(1e-12)
            best = max(best, float(ratio.detach().max()))
            opt.zero_grad()
            (-ratio.sum()).backward()
            opt.step()
    return best


def empirical_metric_lipschitz(fn, in_types, out_type, radius: float, seed: int = 0, points: int = 48) -> float | None:
    """max over points within ``radius`` (|x| for R^n and tangent vectors, d(0, x) on the
    ball; 2.0 when unbounded) of || lambda_out D f(x) / lambda_in ||_2 (lambda = 1 off the
    ball's points), inputs jointly: a lower bound on
    the Lipschitz constant of ``fn(*inputs)`` on that radius. None when an input or the
    output is on another manifold."""
    import numpy as np
    import torch

    from geomir.backends.torch import runtime
    from geomir.dialects import geo

    def curvature(t):
        """0 for coordinates measured by the Euclidean norm (R^n, and tangent vectors, as
        the prover measures them: geomir.hyperbolic_bounds), c for a point of the ball."""
        m = getattr(t, "manifold", None)
        if isinstance(m, geo.EuclideanAttr) or isinstance(t, geo.TangentType):
            return 0.0
        return float(m.c.value.data) if isinstance(m, geo.PoincareAttr) else None

    cs = [curvature(t) for t in in_types]
    c_out = curvature(out_type)
    if c_out is None or any(c is None for c in cs):
        return None
    r = radius if math.isfinite(radius) else 2.0
    dims = [t.dim_value for t in in_types]
    rng = np.random.default_rng(seed)

    def lam(x, c):
        return 2.0 / (1.0 - c * (x * x).sum()) if c > 0 else torch.ones((), dtype=x.dtype)

    best = 0.0
    for _ in range(points):
        xs = []
        for dim, c in zip(dims, cs):
            v = rng.normal(size=dim)
            rho = r * rng.uniform() ** 0.2  # weighted to the rim, where the stretch is largest
            if c > 0:
                xs.append(runtime.PoincareBall(c=c).expmap0(torch.tensor(v / np.linalg.norm(v) * rho / 2.0)))
            else:
                xs.append(torch.tensor(v / np.linalg.norm(v) * rho))
        z = torch.cat(xs)
        jac = torch.autograd.functional.jacobian(lambda z: fn(*torch.split(z, dims)), z)
        y = fn(*xs)
        cols = torch.cat([torch.full((d,), float(1.0 / lam(x, c)), dtype=z.dtype) for x, d, c in zip(xs, dims, cs)])
        scaled = jac * float(lam(y, c_out)) * cols.reshape(1, -1)
        best = max(best, float(torch.linalg.matrix_norm(scaled.reshape(y.shape[-1], -1), 2)))
    return best


def report_contracts(path: Path, model: str | None = None) -> list[ContractRow]:
    """One row per model with a Lipschitz contract (``model``: that one only)."""
    import geomir
    from geomir.dialects import geo
    from geomir.passes.verify_contracts import lipschitz_contracts

    module = geomir.to_ir(path, passes=[])
    found = lipschitz_contracts(module)
    if model is not None:
        found = [item for item in found if item[0].sym_name.data == model]
        if not found:
            from geomir.diagnostics import UsageError

            raise UsageError(f"--model {model}: no model of that name with a Lipschitz contract in {path}")
    compiled = _compiled(path) if any(math.isfinite(proof.bound) for _, _, proof in found) else None
    rows = []
    for f, c, proof in found:
        declared = c.bound_value
        loc = f.location
        where = f"{loc.filename.data}:{loc.line.data}:{loc.column.data}" if hasattr(loc, "line") else None
        empirical = None
        types = f.function_type.inputs.data
        euclidean = all(isinstance(t.manifold, geo.EuclideanAttr) for t in types)
        if math.isfinite(proof.bound):
            import torch

            params = compiled.init_params(seed=0, dtype=torch.float64)
            fn = getattr(compiled, f.sym_name.data)
            if euclidean and math.isinf(c.radius_value):  # probes anywhere in R^n
                empirical = empirical_lipschitz(lambda *xs, fn=fn: fn(params, *xs), [t.dim_value for t in types])
            else:  # within the contract's radius, in the manifolds' metrics
                empirical = empirical_metric_lipschitz(lambda *xs, fn=fn: fn(params, *xs), types,
                                                       f.function_type.outputs.data[0], c.radius_value)
        rows.append(ContractRow(f.sym_name.data, where, declared, proof.bound, empirical,
                                proof.blocker.why if proof.blocker else None))
    return rows


def _compiled(path: Path):
    """The torch module of the program's models (those that call a declaration without a
    body left out: their bound is infinite, nothing of them is run)."""
    import geomir
    from geomir.compiler import compile_module
    from geomir.jet_report import drop_bodyless

    from xdsl.dialects import func

    from geomir.dialects import contract

    module = geomir.to_ir(path, passes=UNCHECKED_PIPELINE)
    drop_bodyless(module)
    for f in module.ops:  # only run, never shown: no claim read from the input to check
        if isinstance(f, func.FuncOp):
            contract.set_proved(f, None, checked=False)
    return compile_module(module, "torch", str(path))


def render(rows: list[ContractRow], console) -> None:
    from rich.table import Table

    table = Table(title="Lipschitz contracts (weights of seed 0)", title_justify="left")
    for col, just in (("model", "left"), ("where", "left"), ("declared", "right"), ("proved", "right"),
                      ("empirical ≥", "right"), ("proved / empirical", "right"), ("status", "left")):
        table.add_column(col, justify=just)
    for r in rows:
        if r.blocker:
            status = f"[red]no bound[/]: {r.blocker}"
        elif not r.sound:
            status = "[red]UNSOUND (report a bug)[/]"
        else:
            status = "[green]holds[/]" if r.holds else f"[red]FAILS[/] ({r.proved / r.declared:.3g}x the declared)"
        tight = f"{r.proved / r.empirical:.2f}" if r.empirical and math.isfinite(r.proved) else "n/a"
        table.add_row(r.model, r.where or "", f"{r.declared:g}", f"{r.proved:.4g}",
                      "n/a" if r.empirical is None else f"{r.empirical:.4g}", tight, status)
    if not rows:
        console.print("no model declares a Lipschitz contract")
        return
    console.print(table)


class ContractReportError(SourceError):
    """--fail-on-flags: a contract does not hold (or has no bound)."""
