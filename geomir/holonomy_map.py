"""Where a model's representation bends: the holonomy of its pull-back geometry over a
grid of inputs (``geomc model.geo --plot=holonomy -o holonomy.png``).

A model ``F`` maps a 2-D slice of its input space (two coordinate axes through a centre)
to a surface ``S = F(slice)`` in its output manifold ``M``. ``S`` carries the pull-back
metric ``g = J^T G J`` (``J`` the Jacobian, ``G`` the metric of ``M``) and its Levi-Civita
connection, the tangential part of ``M``'s. Around a small loop in the slice, a tangent
frame of ``S`` transported by that connection comes back rotated by the loop's holonomy
angle, which by Gauss-Bonnet is the integral of the Gaussian curvature ``K`` of ``g`` over
the enclosed area; ``K = angle / area`` is the map's value at the loop's centre.

How it is computed (float64, torch; the model is the geomir-emitted torch code):

1. The pull-back metric ``g(q) = (J^T G J)(q)`` at a chart point q, from forward-mode
   Jacobians (``torch.func.jvp``) and the output manifold's metric (``M.inner``); its
   first derivatives by a second, nested jvp; the Christoffel symbols
   ``Gamma^l_ij = g^lm (d_i g_mj + d_j g_mi - d_m g_ij) / 2`` from those.
2. For each grid cell, a square loop of half-side ``h`` around the cell's centre,
   counterclockwise in the slice. A tangent vector is parallel-transported around it by
   ``de^l/dtau = -Gamma^l_ij e^i dq^j/dtau`` (RK4, ``sides`` steps per side); the signed
   angle from where it started to where it ends, in ``g`` at the start and oriented by
   ds ^ dt, is the holonomy angle.
3. The loop's area in the pull-back metric is ``sqrt(det g) (2h)^2`` at the centre.
4. Loop size: each cell starts at ``h = loop * spacing / 2``; the angle ``a`` is taken
   around loops of half-side h, h/2 and h/4. It is ``K A + O(h^4)``, so Richardson
   extrapolation gives ``K`` from (h, h/2) and again from (h/2, h/4); a cell is accepted
   once the two agree to 1e-4 and ``|a(h)|`` is below 0.5 rad (a small loop: no
   wrap-around past pi), else its loop shrinks by 4, at most 8 times (cells that never
   settle are left blank and counted). The map shows the finer estimate,
   ``(64 a(h/4) - 4 a(h/2)) / (3 A(h))``.

Transporting in ``M`` and projecting onto the image plane at each vertex (the extrinsic
way) was tried first: its error per step is second order in the angle between
neighbouring planes, which adds up to an O(1/sides) relative error for bent surfaces
(37% on an MLP surface in R^3 with 4 steps per side), so the map uses the intrinsic
connection.

The chart: Euclidean inputs, tangent vectors, ball and torus points move along their
coordinates (``centre + s e_a + t e_b``); sphere and hyperboloid points are
``expmap0(s e_a + t e_b)`` with axes among the coordinates 1..n-1 (the tangent space at
the origin). The output's geometry: its manifold for points; a tangent vector (or a
Euclidean point) is a vector in flat coordinates. Other model inputs are held at the
values ``--report=jets`` draws for ``seed`` (first row). Cells where the image plane is
degenerate (the Jacobian has rank < 2 there: ``det g`` below ``1e-12`` of the grid's
median, or the metric is singular somewhere on a cell's loop) are left blank and counted,
and so are, for ball points, cells whose loop reaches the ball's boundary
(``|q| >= 1/sqrt(c)``: not points of the manifold; an extent that leaves no cell inside is
a usage error). Tests check closed forms (hyperbolic and spherical
images: ``K = -c`` and ``+1``; graphs of functions in R^3 by the second fundamental form;
flat maps: 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects import func

from geomir import input_names
from geomir.diagnostics import UsageError, require_installed
from geomir.dialects import geo
from geomir.jet_report import load_generated, runtime_manifold

GRID = 32
LOOP = 0.5  # loop side as a fraction of the grid spacing
SIDES = 4  # vertices per side of each loop
DEGENERATE = 1e-12  # det g below this share of the grid's median: no image plane
MAX_ANGLE = 0.5  # radians: a loop turning more is not small; shrink it
SETTLE = 1e-4  # the two Richardson estimates must agree to this share
REFINE = 8  # at most this many shrinkings (by 4) per cell


@dataclass
class HolonomyMap:
    """The holonomy angle and curvature of a model's pull-back metric on a grid.

    ``s``, ``t``: the grid's coordinates along the two input axes (cell centres);
    arrays are indexed ``[i_t, i_s]`` (rows along ``t``, as an image). ``angle``: the
    holonomy angle around each cell's loop (radians); ``area``: the loop's area in the
    pull-back metric; ``curvature``: ``angle / area`` (NaN where ``degenerate``);
    ``stretch``: the area element ``sqrt(det g)`` at the cell centre; ``unresolved``:
    cells whose loops never settled (NaN too); ``loop_half_side``: the loop used per cell;
    ``outside``: cells whose loop reaches outside the Poincaré ball the input lives on (NaN
    too; all False for other inputs).
    """

    model: str
    wrt: str
    input_type: str
    output_type: str
    axes: tuple[int, int]
    s: np.ndarray
    t: np.ndarray
    angle: np.ndarray
    area: np.ndarray
    curvature: np.ndarray
    stretch: np.ndarray
    degenerate: np.ndarray
    unresolved: np.ndarray
    loop_half_side: np.ndarray
    outside: np.ndarray | None = None

    def __post_init__(self):
        if self.outside is None:
            self.outside = np.zeros_like(self.degenerate, dtype=bool)

    @property
    def blank(self) -> int:
        return int(self.degenerate.sum() + self.unresolved.sum() + self.outside.sum())

    def summary(self) -> str:
        k = self.curvature[np.isfinite(self.curvature)]
        if k.size == 0:
            if self.outside.any():
                return (f"@{self.model}: no cell has a curvature ({int(self.outside.sum())} outside the ball, "
                        f"{int(self.degenerate.sum())} degenerate, {int(self.unresolved.sum())} unsettled)")
            return f"@{self.model}: every cell is degenerate (the Jacobian has rank < 2 on the whole slice)"
        text = (f"@{self.model} ({self.wrt}: {self.input_type} -> {self.output_type}), axes {self.axes}, "
                f"{self.s.size}x{self.t.size} cells: curvature min {k.min():.4g}, median {np.median(k):.4g}, "
                f"max {k.max():.4g}")
        if self.degenerate.any():
            text += f"; {int(self.degenerate.sum())} degenerate cell(s) left blank (Jacobian of rank < 2)"
        if self.unresolved.any():
            text += (f"; {int(self.unresolved.sum())} cell(s) left blank where the holonomy did not settle "
                     f"as the loop shrank (the map bends faster than the grid resolves)")
        if self.outside.any():
            text += (f"; {int(self.outside.sum())} cell(s) outside the Poincaré ball left blank (their loops reach "
                     f"|x| >= 1/sqrt(c))")
        return text


# -- the model as a torch function ------------------------------------------------------------


def _load_model(text: str, filename: str, model: str | None):
    """(emitted module, func.FuncOp of the model) for the named model or the only one."""
    from geomir.backends.common.pyemit import emit_python
    from geomir.backends.torch.emitter import FLAVOR
    from geomir.compiler import frontend
    from geomir.jet_report import models_of
    from geomir.pipeline import DEFAULT_PIPELINE, run_pipeline

    module = frontend(text, filename)
    found = {f.sym_name.data: f for f in models_of(module)}
    if model is None:
        if len(found) != 1:
            raise UsageError(f"--plot=holonomy: {filename} defines {len(found)} models ({', '.join(found) or 'none'}); "
                             "name one with --model")
        model = next(iter(found))
    if model not in found:
        raise UsageError(f"--plot=holonomy: no model '{model}' in {filename} (models: {', '.join(found) or 'none'})")
    passes = [p for p in DEFAULT_PIPELINE if p != "verify-contracts"]  # the plot proves nothing
    module = run_pipeline(module, passes)
    code = emit_python(module, FLAVOR, filename)
    generated = load_generated(code, f"geomir_holonomy_{model}", f"<geomc --plot=holonomy: {model}>")
    target = next(f for f in module.ops if isinstance(f, func.FuncOp) and f.sym_name.data == model)
    return generated, target


def _params(generated, model: str, seed: int, weights: str | Path | None):
    import torch

    names = generated.FUNCTION_PARAMS[model]
    params = generated.init_params(seed, torch.float64, names)
    if weights is not None:
        from geomir.weights_file import WeightFile

        file = WeightFile(weights)
        params = {n: torch.tensor(file.get(n, tuple(p.shape)), dtype=torch.float64) for n, p in params.items()}
    return params


# -- the chart of the input slice ------------------------------------------------------------


_AMBIENT = ("sphere", "lorentz")  # points live in one more coordinate than the manifold's dimension


def _default_axes(t) -> tuple[int, int]:
    """Sphere and hyperboloid values: coordinates 1, 2 (coordinate 0 is normal at the origin)."""
    return (1, 2) if t.manifold.kind in _AMBIENT and t.dim_value > 2 else (0, 1)


def _check_axes(axes, t, wrt: str) -> tuple[int, int]:
    a, b = axes
    n = t.dim_value
    lo = 1 if isinstance(t, geo.PointType) and t.manifold.kind in _AMBIENT else 0
    if a == b or not (lo <= a < n and lo <= b < n):
        where = f"coordinates {lo}..{n - 1}" + (" (the tangent space at the origin)" if lo else "")
        raise UsageError(f"--plot-axes {a},{b}: input '{wrt}' has {n} coordinates; pick two different {where}")
    return a, b


def _default_extent(t) -> float:
    if isinstance(t, geo.PointType) and isinstance(t.manifold, geo.PoincareAttr):
        return 0.7 / math.sqrt(float(t.manifold.c.value.data))  # the square's corners stay in the ball
    return 1.0


def _chart(t, axes, centre):
    """q (..., 2) -> input point (..., n)."""
    import torch

    n = t.dim_value
    basis = torch.zeros(2, n, dtype=torch.float64)
    basis[0, axes[0]] = basis[1, axes[1]] = 1.0
    if isinstance(t, geo.PointType) and t.manifold.kind in _AMBIENT:
        m = runtime_manifold(t.manifold)
        return lambda q: m.expmap0(q @ basis)
    return lambda q: centre + q @ basis


# -- the pull-back connection and its holonomy -------------------------------------------------


def _output_geometry(t):
    """The output's manifold (runtime object), flat for tangents and Euclidean points."""
    from geomir.backends.torch import runtime

    if isinstance(t, geo.TangentType) or isinstance(t.manifold, (geo.EuclideanAttr, geo.TorusAttr)):
        return runtime.Euclidean()
    return runtime_manifold(t.manifold)


def _gram(m, p, a, b):
    return m.inner(p, a, a), m.inner(p, a, b), m.inner(p, b, b)


def _jets(F, q):
    """Image points and the two image tangents J e_s, J e_t at chart points q (P, 2)."""
    import torch

    es, et = torch.zeros_like(q), torch.zeros_like(q)
    es[:, 0] = et[:, 1] = 1.0
    p, ja = torch.func.jvp(F, (q,), (es,))
    _, jb = torch.func.jvp(F, (q,), (et,))
    return p, ja, jb


def _metric(F, m):
    """q (P, 2) -> the pull-back metric (E, F, G) = (g_ss, g_st, g_tt), shape (P, 3)."""
    import torch

    def g(q):
        p, ja, jb = _jets(F, q)
        gaa, gab, gbb = _gram(m, p, ja, jb)
        return torch.cat([gaa, gab, gbb], -1)

    return g


def _christoffel(g, q):
    """Christoffel symbols of the pull-back metric at q (P, 2): Gamma[..., l, i, j]."""
    import torch

    es, et = torch.zeros_like(q), torch.zeros_like(q)
    es[:, 0] = et[:, 1] = 1.0
    with torch.no_grad():
        metric, ds = torch.func.jvp(g, (q,), (es,))
        _, dt = torch.func.jvp(g, (q,), (et,))

    def mat(x):  # (P, 3) -> (P, 2, 2)
        return torch.stack([torch.stack([x[:, 0], x[:, 1]], -1), torch.stack([x[:, 1], x[:, 2]], -1)], -2)

    dg = torch.stack([mat(ds), mat(dt)], 1)  # dg[:, k, i, j] = d_k g_ij
    # Gamma_{m i j} = (d_i g_mj + d_j g_mi - d_m g_ij) / 2, then raise m with g^-1
    first = 0.5 * (dg.permute(0, 2, 1, 3) + dg.permute(0, 2, 3, 1) - dg)
    return torch.einsum("plm,pmij->plij", _inverse(metric), first), mat(metric)


def _inverse(metric):
    """The inverse of the 2x2 metrics (E, F, G) (P, 3) as (P, 2, 2), NaN where a metric is
    singular (det <= 0: the Jacobian has rank < 2 there) or not finite, so that a loop
    through such a point gives a NaN angle (the cell is blank) rather than an error."""
    import torch

    e, f, g = metric[:, 0], metric[:, 1], metric[:, 2]
    det = e * g - f * f
    ok = (det > 0) & torch.isfinite(det)
    inv = torch.stack([torch.stack([g, -f], -1), torch.stack([-f, e], -1)], -2) / torch.where(ok, det, 1.0)[:, None, None]
    return torch.where(ok[:, None, None], inv, torch.nan)


def _loop_holonomy(g, centres, h, sides: int):
    """The signed holonomy angle (B,) around the square loops of half-side h (B,) at the
    centres (B, 2): a vector parallel-transported along the pull-back connection (RK4,
    ``sides`` steps per side, counterclockwise), then the angle from where it started to
    where it ends, in the metric at the start, oriented by ds ^ dt."""
    import torch

    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    steps = []  # (start, direction) of each RK4 step, in units of h
    for c in range(4):
        a, b = corners[c], corners[(c + 1) % 4]
        for i in range(sides):
            steps.append((a + (b - a) * i / sides, (b - a) / sides))
    # Gamma at every step's start, midpoint and end (the end is the next start)
    offsets = torch.stack([x for start, d in steps for x in (start, start + d / 2)])  # (2S, 2)
    q = (centres[None] + h[None, :, None] * offsets[:, None]).reshape(-1, 2)
    gamma, metric = _christoffel(g, q)
    gamma = gamma.reshape(len(offsets), centres.shape[0], 2, 2, 2)
    metric0 = metric.reshape(len(offsets), centres.shape[0], 2, 2)[0]

    def rhs(k, e, velocity):  # de^l/dtau = -Gamma^l_ij e^i v^j
        return -torch.einsum("blij,bi,bj->bl", gamma[k % len(offsets)], e, velocity)

    e = torch.zeros(centres.shape[0], 2, dtype=torch.float64)
    e[:, 0] = 1.0
    start = e.clone()
    for n, (_, d) in enumerate(steps):
        v = h[:, None] * d[None]  # the step's displacement in the chart
        k1 = rhs(2 * n, e, v)
        k2 = rhs(2 * n + 1, e + k1 / 2, v)
        k3 = rhs(2 * n + 1, e + k2 / 2, v)
        k4 = rhs(2 * n + 2, e + k3, v)
        e = e + (k1 + 2 * k2 + 2 * k3 + k4) / 6

    def inner(u, w):
        return torch.einsum("bi,bij,bj->b", u, metric0, w)

    root_det = torch.sqrt(torch.clamp(torch.linalg.det(metric0), min=0.0))
    area_form = root_det * (start[:, 0] * e[:, 1] - start[:, 1] * e[:, 0])
    return torch.atan2(area_form, inner(start, e))


@dataclass
class Slice:
    """A model restricted to a 2-D slice of one input: ``F(q)``, q (P, 2) -> outputs (P, n)."""

    F: object
    model: str
    wrt: str
    input_type: str
    output_type: str
    axes: tuple[int, int]
    extent: float
    out_attr: object  # the output's IR type
    radius: float | None = None  # ball points: the ball's radius 1/sqrt(c) (the chart is valid inside it)


def model_slice(
    source: str | Path, model: str | None = None, wrt: str | None = None, axes: tuple[int, int] | None = None,
    extent: float | None = None, seed: int = 0, weights: str | Path | None = None,
) -> Slice:
    """Compile the model (torch, float64) and restrict it to the slice the map is drawn on."""
    require_installed("torch", "--plot=holonomy runs the model with")
    import torch

    from geomir.compiler import read_source
    from geomir.jet_report import _wrt_index, draw_inputs, geo_type

    if extent is not None and not (extent > 0 and math.isfinite(extent)):
        raise UsageError(f"--plot-extent must be a positive number, not {extent:g}")
    text, filename = read_source(source)
    generated, target = _load_model(text, filename, model)
    name = target.sym_name.data
    inputs_t = list(target.function_type.inputs.data)
    if not inputs_t:
        raise UsageError(f"--plot=holonomy: model @{name} has no inputs")
    k = _wrt_index(target, wrt)
    t_in = inputs_t[k]
    wrt_name = input_names.input_names(target)[k] or f"#{k}"
    axes = _check_axes(axes or _default_axes(t_in), t_in, wrt_name)
    (t_out,) = target.function_type.outputs.data
    out_dim = geo.intrinsic_dim(t_out) if isinstance(t_out, geo.PointType) else t_out.dim_value
    if out_dim < 2:
        raise UsageError(f"--plot=holonomy: @{name} returns {geo_type(t_out)}, a space of dimension {out_dim}; "
                         "a curvature needs a surface, so an output of dimension at least 2")
    fn = getattr(generated, name)
    params = _params(generated, name, seed, weights)
    fixed, _ = draw_inputs(target, k, 1, seed)
    chart = _chart(t_in, axes, torch.zeros(t_in.dim_value, dtype=torch.float64))

    def F(q):
        args = [x.expand(q.shape[0], -1) for x in fixed]
        args[k] = chart(q)
        return fn(params, *args)

    radius = None
    if isinstance(t_in, geo.PointType) and isinstance(t_in.manifold, geo.PoincareAttr):
        radius = 1.0 / math.sqrt(float(t_in.manifold.c.value.data))
    return Slice(F, name, wrt_name, geo_type(t_in), geo_type(t_out), axes,
                 extent if extent is not None else _default_extent(t_in), t_out, radius)


def holonomy_map(
    source: str | Path, model: str | None = None, wrt: str | None = None, axes: tuple[int, int] | None = None,
    extent: float | None = None, grid: int = GRID, seed: int = 0, weights: str | Path | None = None,
    loop: float = LOOP, sides: int = SIDES,
) -> HolonomyMap:
    """The holonomy map of one model of a program (path or .geo text); see the module doc."""
    if grid < 2:
        raise UsageError(f"--plot-grid must be at least 2, not {grid}")
    if not (0 < loop <= 1) or sides < 1:
        raise UsageError(f"need 0 < loop <= 1 and sides >= 1, got {loop:g} and {sides}")
    sl = model_slice(source, model, wrt, axes, extent, seed, weights)
    import torch

    F, name, extent, t_out = sl.F, sl.model, sl.extent, sl.out_attr
    spacing = 2 * extent / grid
    centres_1d = -extent + spacing * (torch.arange(grid, dtype=torch.float64) + 0.5)
    tt, ss = torch.meshgrid(centres_1d, centres_1d, indexing="ij")
    cells = torch.stack([ss.reshape(-1), tt.reshape(-1)], -1)  # (B, 2)
    outside = _outside(cells, loop * spacing / 2, sl.radius)
    if outside.all():
        raise UsageError(f"--plot-extent {extent:g}: every cell of the {grid}x{grid} grid reaches outside the "
                         f"Poincaré ball that @{name}'s input '{sl.wrt}' lives on (radius 1/sqrt(c) = "
                         f"{sl.radius:g}); give an extent below {sl.radius:g} (the default is {0.7 * sl.radius:.4g})")
    with torch.no_grad():
        p, ja, jb = _jets(F, cells)
    for what, value in (("value", p), ("Jacobian", ja), ("Jacobian", jb)):
        if not torch.isfinite(value[~outside]).all():
            raise UsageError(f"--plot=holonomy: @{name} gives a non-finite {what} on the slice "
                             f"(extent {extent:g}); shrink --plot-extent")
    m = _output_geometry(t_out)
    gaa, gab, gbb = _gram(m, p, ja, jb)
    det = torch.where(outside, torch.nan, (gaa * gbb - gab * gab)[..., 0])
    valid = det > 0  # False for NaN (outside the ball)
    scale = torch.median(det[valid]) if valid.any() else torch.tensor(1.0, dtype=torch.float64)
    degenerate = ~outside & ~(det > DEGENERATE * scale)
    stretch = torch.sqrt(torch.clamp(det, min=0.0))  # NaN outside the ball
    g = _metric(F, m)

    # Shrink each loop until its angle is small and the Richardson extrapolations from
    # loops of half-side (h, h/2) and (h/2, h/4) agree. A loop through a point where the
    # metric is singular has a NaN angle: it never settles; if it still does not at the
    # last try, the cell counts as degenerate.
    half = torch.full_like(det, loop * spacing / 2)
    curvature = torch.full_like(det, torch.nan)
    angle = torch.full_like(det, torch.nan)
    singular = torch.zeros_like(degenerate)
    todo = ~degenerate & ~outside
    for _ in range(REFINE):
        if not todo.any():
            break
        idx = todo.nonzero()[:, 0]
        a1, a2, a4 = (_loop_holonomy(g, cells[idx], half[idx] / d, sides) for d in (1, 2, 4))
        area = stretch[idx] * (2 * half[idx]) ** 2
        coarse, fine = (16 * a2 - a1) / 3, (64 * a4 - 4 * a2) / 3  # K * area(h), two estimates
        settled = (a1.abs() <= MAX_ANGLE) & ((coarse - fine).abs() <= SETTLE * fine.abs() + 1e-12)
        singular[idx] = ~(torch.isfinite(a1) & torch.isfinite(a2) & torch.isfinite(a4))
        done = idx[settled]
        curvature[done] = (fine / area)[settled]
        angle[done] = a1[settled]
        todo[done] = False
        half[todo] /= 4
    degenerate = degenerate | (todo & singular)
    unresolved = todo & ~singular
    shape = (grid, grid)
    return HolonomyMap(
        model=name, wrt=sl.wrt, input_type=sl.input_type, output_type=sl.output_type, axes=sl.axes,
        s=centres_1d.numpy(), t=centres_1d.numpy(), angle=angle.reshape(shape).numpy(),
        area=(stretch * (2 * half) ** 2).reshape(shape).numpy(), curvature=curvature.reshape(shape).numpy(),
        stretch=stretch.reshape(shape).numpy(), degenerate=degenerate.reshape(shape).numpy(),
        unresolved=unresolved.reshape(shape).numpy(), loop_half_side=half.reshape(shape).numpy(),
        outside=outside.reshape(shape).numpy(),
    )


def _outside(cells, half: float, radius: float | None):
    """(B,) bool: the cells whose loop (half-side ``half`` around the centre; its farthest
    corner from the origin) reaches the boundary of a ball of ``radius`` (None: no ball, no
    cell is outside). The chart of a ball point is the identity on its coordinates."""
    import torch

    if radius is None:
        return torch.zeros(cells.shape[0], dtype=torch.bool)
    corner = cells.abs() + half
    return torch.sqrt((corner * corner).sum(-1)) >= radius


# -- the picture -----------------------------------------------------------------------------------


def plot(hmap: HolonomyMap, path: str | Path | None = None):
    """Draw the map (curvature left, area element right) and save it to ``path`` (the
    format from its suffix: .png, .pdf, .svg). Returns the matplotlib figure; the
    curvature panel's image array is ``hmap.curvature`` with degenerate cells masked."""
    require_installed("matplotlib", "--plot needs")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    k = np.ma.masked_invalid(hmap.curvature)
    half = (hmap.s[1] - hmap.s[0]) / 2
    box = (hmap.s[0] - half, hmap.s[-1] + half, hmap.t[0] - half, hmap.t[-1] + half)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    span = float(np.abs(k).max()) if k.count() else 1.0
    span = span if span > 0 else 1.0
    image = left.imshow(k, origin="lower", extent=box, cmap="RdBu_r",
                        norm=TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span), interpolation="nearest")
    fig.colorbar(image, ax=left, label="Gaussian curvature K of the pull-back metric")
    left.set_title("holonomy angle / area (red: K > 0, blue: K < 0)")
    stretch = np.ma.masked_where(hmap.degenerate | hmap.outside | ~np.isfinite(hmap.stretch), hmap.stretch)
    positive = stretch.count() and stretch.min() > 0
    image = right.imshow(stretch, origin="lower", extent=box, cmap="viridis", interpolation="nearest",
                         norm=LogNorm() if positive else None)
    fig.colorbar(image, ax=right, label="area element sqrt(det g)")
    right.set_title("how much the model stretches area")
    a, b = hmap.axes
    for ax in (left, right):
        ax.set_xlabel(f"{hmap.wrt}[{a}]")
        ax.set_ylabel(f"{hmap.wrt}[{b}]")
    if hmap.blank:
        outside = int(hmap.outside.sum())
        note = f"{hmap.blank - outside} degenerate cell(s) blank" if not outside else \
            f"{hmap.blank} cell(s) blank ({outside} outside the ball)"
        left.text(0.01, 0.01, note, transform=left.transAxes, fontsize=8)
    fig.suptitle(f"@{hmap.model}: {hmap.wrt}: {hmap.input_type} -> {hmap.output_type}")
    if path is not None:
        try:
            fig.savefig(path, dpi=110)
        except (OSError, ValueError) as err:
            plt.close(fig)
            raise UsageError(f"cannot write '{path}': {err}") from None
    return fig
