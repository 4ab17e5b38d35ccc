"""The jet health report (``geomc model.geo --report=jets``).

For each model (or the one named), with respect to one input ``x``, the report evaluates
the order-2 jet of t ↦ M(x + t v) on a seeded batch and measures, per layer, the sizes of

    f    = the layer's value,
    ∂f   = d/dt   of the layer along the curve   (coefficient 1),
    ∂²f  = d²/dt² of the layer along the curve   (coefficient 2 times 2!),

flagging layers where the first derivative vanishes or a derivative explodes, and any
NaN/inf. How it works:

1. IR: the frontend's module (derive functions dropped) gets a private function
   ``@_jet_report_<M>(inputs..., v)`` returning ``jet.directional @M(...) along v wrt k
   order 2``; the passes ``insert-transport,jet-expand,cse,dce`` turn it into Taylor-mode code.
2. Code: the torch emitter with ``tap=True`` calls ``_tap("file:line:col", op, jet)``
   after each jet value; the report replaces the module's no-op ``_tap`` by a recorder.
3. Run: parameters from ``init_params(seed)``, inputs drawn from ``seed`` (below), all in
   float64 so that rounding of the model's own dtype cannot pass for a vanishing signal.
4. Layers: the jets are grouped by the source line of the op that made them (a line whose
   ops run again, e.g. in a model called twice, gets one layer per run, ``#2``, ``#3``);
   a layer's sizes are those of the last jet made on its line (the line's output), its NaN
   check covers every jet made on it.

Inputs: Euclidean points and tangents ~ N(0, 1) per coordinate; points on a curved
manifold (and the torus) are ``expmap0`` of a tangent at the origin with coordinates
~ N(0, 0.25²), tangents on a curved manifold are such a tangent. Directions v are random
unit vectors (Euclidean coordinate norm 1) in the tangent space at x (``proju(x, ·)``).

Definitions (per batch row b; v_b the row's direction, so |v_b| = 1):

    rel ∂f_b  = |∂f_b| / |v_b|        rel ∂²f_b = |∂²f_b| / |v_b|²

i.e. relative to the input's (the seed's) first-order size; the jet of the input is
(x, v, 0). Both are invariant under rescaling v. A layer is

    NaN        if any coefficient of any jet on its line is NaN or ±inf in any row,
    EXPLODING  if max_b rel ∂f_b > explode or max_b rel ∂²f_b > explode (default 1e6):
               one input that blows up is enough to wreck a training step,
    VANISHING  if median_b rel ∂f_b < vanish (default 1e-6): the signal is gone for
               typical inputs (a few dead rows are not enough).

Second derivatives are not flagged as vanishing: they are exactly zero through every
linear layer (and through relu networks) without anything being wrong. Sizes relative to
the input rather than to the layer's own value: a layer's value may sit near 0 (a tanh
centred at 0, a point near the ball's origin), which makes |∂f|/|f| large for a healthy
layer; the product of the layer Jacobians, which is what gradients go through, is the
size relative to the input perturbation. Medians and maxima are over the finite rows.
The comparisons allow for float64 rounding (:data:`ROUNDING`): a gain of exactly the
threshold is not flagged.
"""

from __future__ import annotations

import math
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xdsl.dialects import builtin, func
from xdsl.ir import Block, Region

from geomir import input_names
from geomir.diagnostics import EncodingError, GeomirError, UsageError, decode_text, require_installed
from geomir.dialects import geo, jet

ORDER = 2
PASSES = ("insert-transport", "jet-expand", "cse", "dce")
VANISH = 1e-6
EXPLODE = 1e6
FLAGS = ("NaN", "EXPLODING", "VANISHING")
ROUNDING = 1e-12
"""Relative slack of the threshold comparisons: |∂f| and |v| are float64 norms of rounded
coefficients, so a gain of exactly R comes out a few ulps above or below R; it is not
flagged (the comparisons are strict: > explode, < vanish)."""
FUNC_PREFIX = "_jet_report_"


class JetHealthError(GeomirError):
    """``--fail-on-flags``: the report raised flags (exit 1)."""


@dataclass
class Layer:
    """One row of the report: a source line (one run of it) and the sizes of its jet."""

    where: str | None  # "file:line", None for ops without a location
    line: int | None
    run: int  # 1, then 2, 3, ... when the line's ops run again (a model called twice)
    source: str  # the source line's text, stripped ("" if unknown)
    ops: list[str]  # op names, in order, without the "geo." prefix
    f0_median: float  # median over the batch of |f_b|
    d1_median: float  # |∂f_b|
    d1_max: float
    d2_median: float  # |∂²f_b|
    d2_max: float
    rel1_median: float  # |∂f_b| / |v_b|
    rel1_max: float
    rel2_median: float  # |∂²f_b| / |v_b|²
    rel2_max: float
    nonfinite_rows: int  # rows with a NaN/inf in any coefficient of any jet on the line
    rows: int
    kind: str = "layer"  # "input" (the seed), "layer", "constant" (lifted: no dependence on x)
    flags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == "input":
            return "input"
        if self.kind == "constant" and self.where is None:
            return "output (constant)"
        where = self.where or "(no location)"
        return where if self.run == 1 else f"{where} #{self.run}"


@dataclass
class ModelReport:
    model: str
    wrt: str  # the input's name
    wrt_type: str
    batch: int
    seed: int
    layers: list[Layer]  # the input row first, then the layers in the order they ran
    inputs: list  # the torch tensors the model ran on (float64)
    direction: object  # v, unit rows
    vanish: float
    explode: float

    @property
    def flagged(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.flags]

    def first(self, flag: str) -> Layer | None:
        return next((layer for layer in self.layers if flag in layer.flags), None)


# -- the IR of the request -------------------------------------------------------------------


def _has_request(f: func.FuncOp) -> bool:
    return any(isinstance(op, jet.DerivativeOp) for op in f.walk())


def _derived(f: func.FuncOp) -> bool:
    """A derived function: a derive request, or one that jet-expand has lowered (read back
    from a pipeline's .mlir output). Models hold no op of the jet dialect, derived
    functions always do (a request, a seed, a jet.vjp or jet.grad)."""
    return any(op.name.startswith("jet.") for op in f.walk())


def _bodyless_closure(module: builtin.ModuleOp) -> set[str]:
    """The functions that cannot run: declarations without a body, and the functions that
    call one (directly or through others)."""
    funcs = {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}
    calls = {name: {c.callee.string_value() for c in f.walk() if isinstance(c, func.CallOp)}
             for name, f in funcs.items()}
    bad = {name for name, f in funcs.items() if not f.body.blocks}
    grew = True
    while grew:
        new = {name for name, callees in calls.items() if name not in bad and callees & (bad | (callees - set(funcs)))}
        bad |= new
        grew = bool(new)
    return bad


def drop_bodyless(module: builtin.ModuleOp) -> None:
    """Erase the declarations without a body, and the functions that call them, from
    ``module``: the reports run the generated code, which has nothing to run for them."""
    bad = _bodyless_closure(module)
    for op in [op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data in bad]:
        module.body.block.erase_op(op, safe_erase=False)


def models_of(module: builtin.ModuleOp) -> list[func.FuncOp]:
    """The program's models: public functions with a body, calling none without one, that
    are not derived functions (derive requests, lowered or not)."""
    bad = _bodyless_closure(module)
    return [
        op for op in module.ops
        if isinstance(op, func.FuncOp) and op.sym_visibility is None and op.sym_name.data not in bad
        and not _derived(op)
    ]


def _has_path_input(f: func.FuncOp) -> bool:
    """A model with a path input (winding numbers: no jets)."""
    return any(isinstance(t, geo.PathType) for t in f.function_type.inputs.data)


def geo_type(t) -> str:
    """A value type in the .geo notation: ``R[3]``, ``poincare(c=1)[16]``, ``tangent sphere[3]``."""
    from geomir.frontends.dsl.types import curvature_text

    m = t.manifold
    if isinstance(m, geo.EuclideanAttr):
        space = "R"
    elif isinstance(m, geo.TorusAttr):
        space = f"torus({m.units.data})"
    elif isinstance(m, geo.SphereAttr):
        space = "sphere"
    else:
        space = f"{m.kind}(c={curvature_text(float(m.c.value.data))})"
    return f"{'tangent ' if isinstance(t, geo.TangentType) else ''}{space}[{t.dim_value}]"


def _input_names(f: func.FuncOp) -> list[str]:
    return [name or f"#{i}" for i, name in enumerate(input_names.input_names(f))]


def _wrt_index(f: func.FuncOp, wrt: str | None) -> int:
    names = _input_names(f)
    if not names:
        raise UsageError(f"--report=jets: model @{f.sym_name.data} has no inputs to differentiate")
    if wrt is None:
        return 0
    if wrt in names:
        return names.index(wrt)
    if wrt.isdigit() and int(wrt) < len(names):
        return int(wrt)
    raise UsageError(f"--report=jets: model @{f.sym_name.data} has no input '{wrt}' (inputs: {', '.join(names)})")


def request_module(text: str, filename: str, model: str, wrt: int) -> tuple[builtin.ModuleOp, str]:
    """The program's models plus ``@_jet_report_<model>(inputs..., v)`` = the order-2
    directional jet of ``model`` along v wrt input ``wrt``, after insert-transport,jet-expand,cse,dce;
    (module, the request's name: ``_jet_report_<model>_1`` if a model has that name)."""
    from geomir.compiler import frontend
    from geomir.passes.jet_expand import fresh_symbol
    from geomir.pipeline import run_pipeline

    module = frontend(text, filename)
    for op in [op for op in module.ops if isinstance(op, func.FuncOp) and _has_request(op)]:
        module.body.block.erase_op(op)  # the program's own derive requests play no part
    drop_bodyless(module)  # nothing to run for them (models_of skips them)
    target = next(f for f in models_of(module) if f.sym_name.data == model)
    inputs = list(target.function_type.inputs.data)
    block = Block(arg_types=[*inputs, inputs[wrt].tangent()])
    request = jet.DirectionalOp.for_model(target, list(block.args), wrt=wrt, order=ORDER)
    block.add_ops([request, func.ReturnOp(request.result)])
    name = fresh_symbol(FUNC_PREFIX + model, {}, module)
    report = func.FuncOp(name, ([*inputs, inputs[wrt].tangent()], [request.result.type]), Region(block), "private")
    input_names.copy_input_names(target, report, extra=["v"])
    module.body.block.add_op(report)
    return run_pipeline(module, PASSES), name


# -- inputs -----------------------------------------------------------------------------------


def runtime_manifold(attr, runtime=None):
    """The runtime object of a manifold attribute, from ``runtime`` (a backend's runtime
    module; the torch one by default)."""
    from geomir.backends.common.pyemit import manifold_ctor

    if runtime is None:
        from geomir.backends.torch import runtime
    return eval(manifold_ctor(attr), {"runtime": runtime, "math": math})  # noqa: S307 (our text)


def sample_inputs(types, rng, rows: int, distribution: str = "normal", scale: float | None = None):
    """float64 tensors (rows, n), one per type: coordinates ~ ``distribution`` times
    ``scale`` (default 1 on Euclidean space, 0.25 on curved manifolds), as a tangent at the
    origin on curved manifolds, mapped by expmap0 for points."""
    import torch

    out = []
    for t in types:
        flat = isinstance(t.manifold, geo.EuclideanAttr)
        s = scale if scale is not None else (1.0 if flat else 0.25)
        shape = (rows, t.dim_value)
        raw = rng.normal(0.0, s, shape) if distribution == "normal" else rng.uniform(-s, s, shape)
        u = torch.tensor(raw, dtype=torch.float64)
        if not flat:
            m = runtime_manifold(t.manifold)
            u = m.proju(m.origin_like(u), u)
            if isinstance(t, geo.PointType):
                u = m.expmap0(u)
        out.append(u)
    return out


def draw_inputs(f: func.FuncOp, wrt: int, batch: int, seed: int):
    """``(inputs, v)`` for model ``f``: float64 tensors of shape (batch, n), drawn from
    ``seed`` as the module docstring says."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    inputs = sample_inputs(f.function_type.inputs.data, rng, batch)
    t = f.function_type.inputs.data[wrt]
    g = torch.tensor(rng.normal(0.0, 1.0, (batch, t.dim_value)), dtype=torch.float64)
    if not isinstance(t.manifold, geo.EuclideanAttr):
        m = runtime_manifold(t.manifold)
        base = inputs[wrt] if isinstance(t, geo.PointType) else m.origin_like(g)
        g = m.proju(base, g)
    v = g / torch.linalg.vector_norm(g, dim=-1, keepdim=True)
    return inputs, v


# -- running and measuring ----------------------------------------------------------------------


def load_generated(code: str, name: str, filename: str) -> types.ModuleType:
    """Run generated code as a module ``name`` (``filename`` shows in its tracebacks)."""
    module = types.ModuleType(name)
    exec(compile(code, filename, "exec"), module.__dict__)  # noqa: S102 (code we generated)
    return module


def _sizes(value, v_norm):
    """Per-row norms of coefficients 0..2 in the derivative convention, relative sizes,
    and the finite-row mask, for a jet tensor of shape (3, *batch, n)."""
    import torch

    if isinstance(value, tuple) or not isinstance(value, torch.Tensor):
        raise TypeError(f"jet report: unexpected jet value {type(value).__name__}")
    coeffs = value.detach().to(torch.float64)
    coeffs = coeffs.reshape(coeffs.shape[0], -1, coeffs.shape[-1]) if coeffs.ndim >= 2 else coeffs.reshape(-1, 1, 1)
    factorial = torch.tensor([math.factorial(k) for k in range(coeffs.shape[0])], dtype=torch.float64)
    deriv = coeffs * factorial.reshape(-1, 1, 1)
    finite = torch.isfinite(deriv).all(dim=-1).all(dim=0)  # (rows,)
    norms = torch.linalg.vector_norm(torch.where(torch.isfinite(deriv), deriv, 0.0), dim=-1)  # (K+1, rows)
    vn = v_norm if v_norm.shape[0] == norms.shape[1] else v_norm.median().expand(norms.shape[1])
    return norms, norms[1] / vn, norms[2] / vn**2, finite


def _median_max(x, finite) -> tuple[float, float]:
    x = x[finite]
    if x.numel() == 0:
        return math.nan, math.nan
    return float(x.median()), float(x.max())


def _source_line(texts: dict[str, list[str]], filename: str, line: int | None) -> str:
    if line is None:
        return ""
    if filename not in texts:
        try:
            texts[filename] = decode_text(Path(filename).read_bytes(), filename).split("\n")  # no byte-order mark
        except (OSError, EncodingError):
            texts[filename] = []
    lines = texts[filename]
    return lines[line - 1].strip() if 1 <= line <= len(lines) else ""


def _group(taps: list[tuple[str | None, str, object]]) -> list[list[tuple[str | None, str, object]]]:
    """Consecutive taps on one source line form a group (one run of the line). A new run
    starts when another line ran in between, or when an op of the current run (same
    line:col and name) comes again: a model called twice in a row."""
    groups: list[list] = []
    for tap in taps:
        current = groups[-1] if groups else []
        same_line = current and _line_key(current[0][0]) == _line_key(tap[0])
        repeated = any(t[0] == tap[0] and t[1] == tap[1] for t in current)
        if same_line and not repeated and "jet.seed" not in (tap[1], current[0][1]):
            current.append(tap)
        else:
            groups.append([tap])
    return groups


def _line_key(where: str | None) -> tuple[str, int] | None:
    if where is None:
        return None
    filename, line, _col = where.rsplit(":", 2)
    return filename, int(line)


def _layer(group, run: int, v_norm, texts, vanish: float, explode: float) -> Layer:
    where, _, last = group[-1]
    key = _line_key(where)
    ops = list(dict.fromkeys(op.removeprefix("geo.").removeprefix("jet.") for _, op, _ in group))
    norms, rel1, rel2, finite = _sizes(last, v_norm)
    nonfinite = ~finite
    for _, _, value in group[:-1]:
        other = _sizes(value, v_norm)[3]
        if other.shape == nonfinite.shape:
            nonfinite |= ~other
        elif not bool(other.all()):
            nonfinite[:] = True
    kind = "input" if ops == ["seed"] else "constant" if ops == ["lift"] else "layer"
    f0 = _median_max(norms[0], finite)
    d1, d2 = _median_max(norms[1], finite), _median_max(norms[2], finite)
    r1, r2 = _median_max(rel1, finite), _median_max(rel2, finite)
    layer = Layer(
        where=f"{key[0]}:{key[1]}" if key else None, line=key[1] if key else None, run=run,
        source=_source_line(texts, key[0], key[1]) if key else "", ops=ops,
        f0_median=f0[0], d1_median=d1[0], d1_max=d1[1], d2_median=d2[0], d2_max=d2[1],
        rel1_median=r1[0], rel1_max=r1[1], rel2_median=r2[0], rel2_max=r2[1],
        nonfinite_rows=int(nonfinite.sum()), rows=int(nonfinite.numel()), kind=kind,
    )
    if layer.nonfinite_rows:
        layer.flags.append("NaN")
    if kind == "layer":
        if r1[1] > explode * (1 + ROUNDING) or r2[1] > explode * (1 + ROUNDING):
            layer.flags.append("EXPLODING")
        if r1[0] < vanish * (1 - ROUNDING):
            layer.flags.append("VANISHING")
    return layer


def report_model(
    text: str, filename: str, model: str, wrt: str | None = None, batch: int = 256, seed: int = 0,
    vanish: float = VANISH, explode: float = EXPLODE,
) -> ModelReport:
    """The jet health report of one model of a program (``text`` read from ``filename``)."""
    import torch

    from geomir.backends.common.pyemit import emit_python
    from geomir.backends.torch.emitter import FLAVOR
    from geomir.compiler import frontend

    found = {f.sym_name.data: f for f in models_of(frontend(text, filename))}
    if model not in found:
        known = ", ".join(found) or "none"
        raise UsageError(f"--report=jets: no model '{model}' in {filename} (models: {known})")
    target = found[model]
    if _has_path_input(target):
        raise UsageError(f"--report=jets: model @{model} takes a path (!geo.path); jets are reported for models "
                         "of points and vectors only")
    k = _wrt_index(target, wrt)
    module, request = request_module(text, filename, model, k)
    try:
        code = emit_python(module, FLAVOR, filename, tap=True)
    except UsageError as err:  # e.g. a manifold whose jet maps are not built yet
        raise UsageError(f"--report=jets of @{model}: {err.message}") from None
    generated = load_generated(code, f"geomir_jet_report_{model}", f"<geomc --report=jets: geomir_jet_report_{model}>")
    taps: list[tuple[str | None, str, object]] = []
    generated._tap = lambda where, op, value: taps.append((where, op, value))
    inputs, v = draw_inputs(target, k, batch, seed)
    params = generated.init_params(seed, torch.float64, generated.FUNCTION_PARAMS[request])
    with torch.no_grad():
        getattr(generated, request)(params, *inputs, v)
    v_norm = torch.linalg.vector_norm(v, dim=-1)
    texts = {filename: text.split("\n")}
    layers, runs = [], {}
    for group in _group(taps):
        key = (group[0][1] == "jet.seed", _line_key(group[-1][0]))  # the seed has no location
        runs[key] = runs.get(key, 0) + 1
        layers.append(_layer(group, runs[key], v_norm, texts, vanish, explode))
    return ModelReport(
        model=model, wrt=_input_names(target)[k], wrt_type=geo_type(target.function_type.inputs.data[k]),
        batch=batch, seed=seed, layers=layers, inputs=inputs, direction=v, vanish=vanish, explode=explode,
    )


def check_options(batch: int, vanish: float, explode: float, seed: int = 0) -> None:
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, not {batch}")
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {seed}")
    if not (0 < vanish < explode) or not math.isfinite(explode):
        raise UsageError(f"need 0 < --jets-vanish < --jets-explode < inf, got {vanish:g} and {explode:g}")


def report_jets(
    source: str | Path, model: str | None = None, wrt: str | None = None, batch: int = 256, seed: int = 0,
    vanish: float = VANISH, explode: float = EXPLODE,
) -> list[ModelReport]:
    """Reports for every model of a program (path or .geo text), or the one named."""
    from geomir.compiler import frontend, read_source

    require_installed("torch", "--report=jets runs the model with")
    check_options(batch, vanish, explode, seed)
    text, filename = read_source(source)
    models = models_of(frontend(text, filename))
    names = [f.sym_name.data for f in models if not _has_path_input(f)]  # paths have no jets
    if model is not None:
        names = [model]
    elif not names:
        only_paths = " without path inputs" if models else ""
        raise UsageError(f"--report=jets: {filename} defines no model{only_paths}")
    return [report_model(text, filename, name, wrt, batch, seed, vanish, explode) for name in names]


# -- output ---------------------------------------------------------------------------------------


def _num(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    return f"{x:.3g}"


def _short(text: str, width: int = 36) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(report: ModelReport) -> str:
    """``@M: ok`` or ``@M: VANISHING at f.geo:4 (2 layers), NaN at ...`` (first layer of each flag)."""
    parts = []
    for flag in FLAGS:
        layers = [layer for layer in report.layers if flag in layer.flags]
        if layers:
            more = f" ({len(layers)} layers)" if len(layers) > 1 else ""
            parts.append(f"{flag} at {layers[0].label}{more}")
    return f"@{report.model}: " + (", ".join(parts) if parts else "ok")


def render(reports: Sequence[ModelReport], console) -> None:
    """Print the reports as rich tables on ``console``."""
    from rich.table import Table
    from rich.text import Text

    styles = {"NaN": "bold red", "EXPLODING": "bold red", "VANISHING": "bold yellow"}
    for index, report in enumerate(reports):
        if index:
            console.print()
        console.print(
            f"jets of @{report.model} along {report.wrt}: {report.wrt_type} "
            f"(order {ORDER}, batch {report.batch}, seed {report.seed}, float64)",
            highlight=False, style="bold", soft_wrap=True,
        )
        table = Table()
        for name, justify in (
            ("layer", "left"), ("source", "left"), ("ops", "left"), ("|f| med", "right"),
            ("|∂f| med", "right"), ("|∂f| max", "right"), ("|∂²f| med", "right"), ("|∂²f| max", "right"),
            ("rel ∂f", "right"), ("flag", "left"),
        ):
            table.add_column(name, justify=justify, no_wrap=True)
        for layer in report.layers:
            if layer.flags:
                words = [f"NaN ({layer.nonfinite_rows}/{layer.rows} rows)" if f == "NaN" else f for f in layer.flags]
                flag = Text(", ".join(words), style=styles[layer.flags[0]])
            else:
                flag = Text({"input": "", "constant": "constant"}.get(layer.kind, "ok"), style="green" if layer.kind == "layer" else "dim")
            table.add_row(
                f"{layer.label} ({report.wrt})" if layer.kind == "input" else layer.label,
                _short(layer.source), ", ".join(layer.ops), _num(layer.f0_median),
                _num(layer.d1_median), _num(layer.d1_max), _num(layer.d2_median), _num(layer.d2_max),
                _num(layer.rel1_median), flag,
            )
        console.print(table)
        console.print(summary(report), highlight=False, soft_wrap=True)
        if report.layers and report.layers[-1].kind == "constant":
            console.print(f"note: the output of @{report.model} does not depend on {report.wrt}", highlight=False, soft_wrap=True)
    if reports:
        console.print(
            f"∂f, ∂²f: first and second derivative along t ↦ x + t·v (v a random unit vector); rel ∂f = "
            f"median |∂f|/|v|. VANISHING: median |∂f|/|v| < {reports[0].vanish:g}; EXPLODING: max |∂f|/|v| or "
            f"|∂²f|/|v|² > {reports[0].explode:g}; NaN: a NaN/inf in any row (docs/cli.md)",
            highlight=False, style="dim", soft_wrap=True,
        )
