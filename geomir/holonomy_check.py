"""The holonomy check (``geomc model.geo --report=holonomy --holonomy-max RAD``): flag the
loops of a model whose holonomy turns tangent vectors by more than a threshold.

A tangent vector carried by parallel transport around a closed loop comes back rotated
(on a curved manifold); a model that carries state, momentum or messages around such a
loop rotates them by that much. The report finds two kinds of loops:

* ``holonomy`` ops (``holonomy(v, a, b, c, ...)`` / ``holonomy_angle`` in ``.geo``,
  ``geo.holonomy`` in IR): the loop a -> b -> c -> ... -> a as the model computes it;
* recurrent blocks: a model whose result has the type of its first input, a point on a
  curved manifold, is a step x -> M(x, ...) that can be iterated. Its trajectory
  x_0, x_1 = M(x_0), ..., x_T (``--steps T``, default 8), closed by the geodesic from x_T
  back to x_0, is the loop: the turn a tangent carried along T steps of the recurrence
  and back picks up.

For each loop the report runs the model (torch, float64) on a seeded batch (inputs drawn as
``--report=jets`` draws them; ``--weights`` for trained ones), builds the holonomy map at
the loop's first point as a matrix in a g-orthonormal basis of its tangent space (it is
orthogonal) and takes its rotation angle: the largest |arg| of its eigenvalues (in 2-D the
absolute holonomy angle; by Gauss-Bonnet the enclosed curvature). A loop is flagged when
the largest angle over the batch exceeds the threshold (default 0.1 rad). A row whose
matrix is not orthogonal (to 1e-6), or whose loop comes so near the ball's boundary that
transport is not accurate to 1e-6 there (1 - c|x|^2 < eps/1e-6), is lost, not measured: its
loop reached where float64 cannot follow the manifold (a trajectory running to the
boundary, |x| = 1 - 1e-15);
a loop with lost rows is flagged, as nothing below the threshold is certified there. A row
whose loop points the model itself computes as NaN/inf is lost too, and the note says so
(not the boundary). Flat
manifolds (Euclidean space, the torus) have no holonomy and are not listed.

How the points of a ``holonomy`` op are found: the model's function (after
``insert-transport``) is cloned, cut right before the op and made to return the op's loop
points; that probe is emitted and run like the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects import builtin, func

from geomir.base_points import location
from geomir.diagnostics import GeomirError, UsageError, require_installed
from geomir.dialects import geo

THRESHOLD = 0.1  # radians
STEPS = 8
BATCH = 64
ORTHOGONAL = 1e-6  # max |M^T M - I| of a holonomy matrix that is trusted
PROBE_PREFIX = "_holonomy_probe_"


class HolonomyFlagError(GeomirError):
    """``--fail-on-flags``: a loop turns tangents by more than the threshold (exit 1)."""


@dataclass
class LoopReport:
    """One loop of a model: where it is, how many points, and its rotation angles."""

    model: str
    kind: str  # "holonomy op" or "recurrent block"
    where: str  # file:line:col of the op, or of the model
    manifold: str
    points: int
    angles: np.ndarray  # rotation angle per batch row (radians); NaN for lost rows
    threshold: float
    nonfinite: int = 0  # rows (among the lost) whose loop points the model computed as NaN/inf

    @property
    def lost(self) -> int:
        """Rows not measured: loop points that are NaN/inf (``nonfinite``), or transport that
        lost orthogonality (points at the edge of float64)."""
        return int(np.isnan(self.angles).sum())

    @property
    def max(self) -> float:
        ok = self.angles[~np.isnan(self.angles)]
        return float(np.max(ok)) if ok.size else math.nan

    @property
    def median(self) -> float:
        ok = self.angles[~np.isnan(self.angles)]
        return float(np.median(ok)) if ok.size else math.nan

    @property
    def flagged(self) -> bool:
        """Over the threshold, or not measurable on some rows (then nothing is certified)."""
        return bool(self.lost) or self.max > self.threshold

    def summary(self) -> str:
        text = f"@{self.model} ({self.kind} at {self.where}): "
        if self.lost:
            parts = []
            if self.nonfinite:
                parts.append(f"{self.nonfinite} of {self.angles.size} rows have NaN/inf loop points "
                             f"(the model computes non-finite points there)")
            if self.lost > self.nonfinite:
                parts.append(f"{self.lost - self.nonfinite} of {self.angles.size} rows lost (transport is no longer "
                             f"an isometry there: the loop runs to where float64 cannot resolve the manifold, "
                             f"e.g. the ball's boundary)")
            text += "; ".join(parts)
            if not math.isnan(self.max):
                text += f"; the others rotate up to {self.max:.4g} rad"
            return text
        return text + f"rotation up to {self.max:.4g} rad > {self.threshold:g}"


# -- the rotation angle of a holonomy map ---------------------------------------------------------


def _unresolved(manifold, loop):
    """(B,) rows whose loop comes so close to the Poincaré ball's boundary that transport
    there is not accurate to ORTHOGONAL: its relative error is about eps/delta (delta =
    1 - c|x|^2, docs/numerics.md), and it stays an exact rotation, so the orthogonality
    defect no longer shows it."""
    import torch

    from geomir.backends.common.manifolds import PoincareBall

    x0 = loop[0]
    if not isinstance(manifold, PoincareBall):
        return torch.zeros(x0.shape[0], dtype=torch.bool)
    floor = torch.finfo(x0.dtype).eps / ORTHOGONAL
    return torch.stack([(1.0 - manifold.c * (p * p).sum(-1)) < floor for p in loop]).any(0)


def rotation_angles(manifold, loop, tol: float = 1e-9):
    """The rotation angle (B,) of the holonomy around ``loop`` (points of shape (B, n)):
    the holonomy map as a d x d matrix in a g-orthonormal basis of the tangent space at
    loop[0] (d the manifold's dimension), and the largest |arg| of its eigenvalues. Rows
    whose matrix is not orthogonal to ``ORTHOGONAL`` (transport broke down numerically)
    get NaN, and so do rows where a loop point is NaN/inf (their matrix is computed on a
    stand-in loop, so that they cannot spoil the others' basis). Returns (angles, matrices)."""
    import torch

    finite = torch.stack([torch.isfinite(p).all(-1) for p in loop]).all(0)  # (B,)
    if not bool(finite.all()):
        stand_in = manifold.origin_like(loop[0][:1].nan_to_num(0.0)).expand_as(loop[0])
        loop = [torch.where(finite[:, None], p, stand_in) for p in loop]
    x0 = loop[0]
    n = x0.shape[-1]
    eye = torch.eye(n, dtype=x0.dtype).expand(x0.shape[0], n, n)
    # candidates proju(x0, e_i) span the tangent space; transport each around the loop
    u = torch.stack([manifold.proju(x0, eye[:, i]) for i in range(n)], 1)  # (B, n, n)
    w = torch.stack([manifold.holonomy(loop, u[:, i]) for i in range(n)], 1)

    def gram(a, b):
        return torch.stack([torch.cat([manifold.inner(x0, a[:, i], b[:, j]) for j in range(n)], -1)
                            for i in range(n)], 1)

    lam, q = torch.linalg.eigh(gram(u, u))
    d = int((lam > tol * lam[:, -1:]).sum(-1).min())
    r = q[:, :, -d:] / torch.sqrt(lam[:, None, -d:])  # b = u^T r is g-orthonormal
    matrix = r.transpose(1, 2) @ gram(u, w) @ r
    defect = (matrix.transpose(1, 2) @ matrix - torch.eye(d, dtype=matrix.dtype)).abs().amax((-2, -1))
    lost = ~(defect <= ORTHOGONAL) | _unresolved(manifold, loop)  # NaN too
    safe = torch.where(lost[:, None, None], torch.eye(d, dtype=matrix.dtype), matrix)
    angles = torch.linalg.eigvals(safe).angle().abs().max(-1).values
    return torch.where(lost | ~finite, torch.nan, angles), matrix


# -- finding and running the loops ----------------------------------------------------------------


def _probe(f: func.FuncOp, index: int) -> func.FuncOp:
    """A private copy of ``f`` that stops before its ``index``-th holonomy op and returns
    that op's loop points."""
    clone = f.clone()
    op = [o for o in clone.walk() if isinstance(o, geo._LoopOp)][index]
    block = op.parent_block()
    while block.last_op is not op:
        block.erase_op(block.last_op, safe_erase=False)
    loop = list(op.loop)
    ret = func.ReturnOp(*loop)
    block.insert_op_after(ret, op)
    block.erase_op(op, safe_erase=False)
    clone.sym_name = builtin.StringAttr(f"{PROBE_PREFIX}{f.sym_name.data}_{index}")
    clone.sym_visibility = builtin.StringAttr("private")
    clone.function_type = func.FunctionType.from_lists(list(f.function_type.inputs.data), [v.type for v in loop])
    return clone


def _recurrent(f: func.FuncOp) -> bool:
    inputs, outputs = f.function_type.inputs.data, f.function_type.outputs.data
    return (len(inputs) >= 1 and len(outputs) == 1 and inputs[0] == outputs[0]
            and isinstance(outputs[0], geo.PointType) and outputs[0].manifold.kind not in geo.FLAT)


def _module(text: str, filename: str):
    """The program after insert-transport (so loops see transported tangents), with a probe
    function per holonomy op; (module, models, probes: name -> (model, op))."""
    from geomir.compiler import frontend
    from geomir.jet_report import drop_bodyless, models_of
    from geomir.passes.jet_expand import fresh_symbol
    from geomir.pipeline import run_pipeline

    module = run_pipeline(frontend(text, filename), ["insert-transport"])
    drop_bodyless(module)  # declarations (and their callers): nothing to run, no report
    models = models_of(module)
    probes = {}
    for f in models:
        loops = [o for o in f.walk() if isinstance(o, geo._LoopOp)]
        for i, op in enumerate(loops):
            if op.loop[0].type.manifold.kind in geo.FLAT:
                continue
            probe = _probe(f, i)
            probe.sym_name = builtin.StringAttr(fresh_symbol(probe.sym_name.data, {}, module))
            module.body.block.add_op(probe)
            probes[probe.sym_name.data] = (f, op)
    return module, models, probes


def check_holonomy(
    source: str | Path, model: str | None = None, threshold: float = THRESHOLD, batch: int = BATCH, seed: int = 0,
    steps: int = STEPS, weights: str | Path | None = None,
) -> list[LoopReport]:
    """One :class:`LoopReport` per loop of the program's models (or of the one named)."""
    require_installed("torch", "--report=holonomy runs the model with")
    import torch

    from geomir.backends.common.pyemit import emit_python
    from geomir.backends.torch.emitter import FLAVOR
    from geomir.compiler import read_source
    from geomir.holonomy_map import _params
    from geomir.jet_report import load_generated, runtime_manifold
    from geomir.jet_report import draw_inputs, geo_type

    if not (threshold >= 0 and math.isfinite(threshold)):
        raise UsageError(f"--holonomy-max must be a non-negative number of radians, not {threshold:g}")
    if batch < 1 or steps < 2 or seed < 0:
        raise UsageError(f"need --batch >= 1, --steps >= 2 and --seed >= 0, got {batch}, {steps} and {seed}")
    text, filename = read_source(source)
    module, models, probes = _module(text, filename)
    names = [f.sym_name.data for f in models]
    if model is not None and model not in names:
        raise UsageError(f"--report=holonomy: no model '{model}' in {filename} (models: {', '.join(names) or 'none'})")
    code = emit_python(module, FLAVOR, filename)
    generated = load_generated(code, "geomir_holonomy_check", f"<geomc --report=holonomy: {filename}>")

    reports = []
    for f in models:
        name = f.sym_name.data
        if model is not None and name != model:
            continue
        params = _params(generated, name, seed, weights)
        inputs, _ = draw_inputs(f, 0, batch, seed)
        with torch.no_grad():
            for probe, (owner, op) in probes.items():
                if owner is not f:
                    continue
                loop = getattr(generated, probe)(params, *inputs)
                loop = list(loop) if isinstance(loop, (tuple, list)) else [loop]
                m = runtime_manifold(op.loop[0].type.manifold)
                angles, _ = rotation_angles(m, loop)
                nonfinite = int((~torch.stack([torch.isfinite(p).all(-1) for p in loop]).all(0)).sum())
                reports.append(LoopReport(name, "holonomy op", location(op) or "?", geo_type(op.loop[0].type),
                                          len(loop), angles.numpy(), threshold, nonfinite))
            if _recurrent(f):
                fn = getattr(generated, name)
                xs = [inputs[0]]
                for _ in range(steps):
                    xs.append(fn(params, xs[-1], *inputs[1:]))
                # rows whose trajectory reaches NaN/inf are lost (and counted), as for a holonomy op
                m = runtime_manifold(f.function_type.outputs.data[0].manifold)
                angles, _ = rotation_angles(m, xs)
                nonfinite = int((~torch.stack([torch.isfinite(x).all(-1) for x in xs]).all(0)).sum())
                reports.append(LoopReport(name, "recurrent block", location(f) or "?", geo_type(f.function_type.outputs.data[0]),
                                          len(xs), angles.numpy(), threshold, nonfinite))
    return reports


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.4g}"


def render(reports: list[LoopReport], console, threshold: float) -> None:
    """A rich table: model, loop, where, points, median and max rotation, verdict."""
    from rich.table import Table

    if not reports:
        console.print(f"no loops on a curved manifold (holonomy ops or recurrent blocks); threshold {threshold:g} rad")
        return
    table = Table(title=f"holonomy of the models' loops (flag: rotation > {threshold:g} rad)")
    for column in ("model", "loop", "where", "manifold", "points", "median rad", "max rad", "rows lost", "verdict"):
        table.add_column(column, justify="right" if "rad" in column or column in ("points", "rows lost") else "left")
    for r in reports:
        table.add_row(f"@{r.model}", r.kind, r.where, r.manifold, str(r.points), _num(r.median), _num(r.max),
                      f"{r.lost}/{r.angles.size}" if r.lost else "0", "FLAG" if r.flagged else "ok")
    console.print(table)
    for r in reports:
        if r.lost:
            console.print(f"note: {r.summary()}")
