"""``geomc contract check``: run the reference and the candidate kernel on the contract's
inputs and evaluate every clause.

Both kernels are the same model compiled for their targets, with the same weights (seed
0, or the contract's ``weights`` file) cast to their dtypes, on the same inputs (drawn in
float64 and cast). Outputs are compared in float64. Per sample:

* ``euclidean`` error: |y_c - y_r| (coordinates); ``manifold``: the geodesic distance on
  the output manifold from y_r to proj(y_c), plus |y_c - proj(y_c)|, how far off the
  manifold y_c is (the Euclidean distance for vectors; on the torus, where every vector of
  angles is a point, the geodesic distance alone: the shortest angle difference per
  coordinate, so another representative of the same point is no error); ``relative``:
  |y_c - y_r| / |y_r|;
* the relative error |y_c - y_r| / |y_r| (for ``max_rel``).

Clauses (each: measured, bound, verdict, the escalation action of measured / bound):

* numerical: ``max_abs`` >= max error, ``max_rel`` >= max relative error; when both are
  left out, ``allclose``: every coordinate within atol + rtol |y_r| of the candidate
  dtype's defaults (contracts.tolerances), measured as the largest |dy| / (atol + rtol |y_r|);
* statistical: the ``quantile`` of the error, of the KL divergence KL(softmax(y_r) ||
  softmax(y_c)) (outputs of dimension >= 2 read as logits), and the top-1 agreement rate;
  the 50/99/99.9 percentiles of both are reported whatever the bounds;
* runtime: the p99 latency of a candidate call on ``inputs.batch`` rows (after a warm-up
  call) and the candidate's peak memory during one such call after the warm-up (CUDA:
  ``max_memory_allocated``; CPU on Linux: the rise of the process's peak RSS, reset before
  the call through /proc/self/clear_refs; elsewhere not measurable: verdict ``unmeasured``).

NaN or inf candidate rows fail every clause that compares outputs (``nonfinite`` counts
them). An escalation step reached by any clause applies: ``block`` and ``fallback`` reject
the candidate (the check exits 1 even when every bound holds), ``warn`` is noted.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from geomir.diagnostics import UsageError, require_installed

from .spec import Contract, Kernel, load_contract
from .tolerances import default_tolerance

PERCENTILES = (50.0, 99.0, 99.9)
ORDER = {"": 0, "warn": 1, "fallback": 2, "block": 3}  # escalation actions, weakest first
REJECT = ("fallback", "block")  # actions that keep the candidate from serving
UNMEASURED = "not measurable here (CPU memory needs Linux's /proc/self/clear_refs)"


@dataclass
class Clause:
    """One bound of the contract, measured."""

    clause: str  # e.g. "numerical.max_abs"
    measured: float
    bound: float | None  # None: reported, not bounded
    higher_is_better: bool = False
    detail: str = ""
    action: str = ""  # the escalation action its ratio reaches ("" none)
    nonfinite: int = 0  # NaN or inf candidate rows: the clause fails whatever it measured

    @property
    def ratio(self) -> float | None:
        """How much of the bound is used (> 1: violated)."""
        if self.bound is None or self.detail == UNMEASURED:
            return None
        if self.nonfinite or math.isnan(self.measured):
            return math.inf
        if self.higher_is_better:  # agreement rates: the shortfall over the allowed shortfall
            allowed = 1.0 - self.bound
            return (1.0 - self.measured) / allowed if allowed > 0 else (0.0 if self.measured >= 1.0 else math.inf)
        return self.measured / self.bound if self.bound > 0 else (0.0 if self.measured == 0 else math.inf)

    @property
    def verdict(self) -> str:
        if self.bound is None:
            return "info"
        if self.detail == UNMEASURED:
            return "unmeasured"
        if self.nonfinite or math.isnan(self.measured):
            return "FAIL"
        ok = self.measured >= self.bound if self.higher_is_better else self.measured <= self.bound
        return "pass" if ok else "FAIL"


@dataclass
class Report:
    contract: str
    model: str
    entry: str
    reference: dict
    candidate: dict
    samples: int
    clauses: list[Clause]
    percentiles: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def violated(self) -> bool:
        return any(c.verdict == "FAIL" for c in self.clauses)

    @property
    def passed(self) -> bool:
        """No clause violated and no clause reaches a ``fallback`` or ``block`` step."""
        return not self.violated and self.action not in REJECT

    @property
    def action(self) -> str:
        """The strongest escalation action any clause reaches ("" for none)."""
        return strongest(c.action for c in self.clauses)

    def to_json(self) -> dict:
        out = asdict(self)
        for c, raw in zip(self.clauses, out["clauses"]):
            raw.update(ratio=c.ratio, verdict=c.verdict)
        out.update(passed=self.passed, violated=self.violated, action=self.action)
        return _finite(out)


def strongest(actions) -> str:
    """The strongest of escalation ``actions`` ("" for none)."""
    return max(actions, key=ORDER.__getitem__, default="")


def _finite(x):
    """JSON has no inf/nan: write them as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


# -- the kernels ------------------------------------------------------------------------------


@dataclass
class Kernels:
    """The compiled model for both kernels and what they run on."""

    entry: str
    reference: Callable  # float64 numpy inputs (list) -> float64 numpy output
    candidate: Callable
    inputs: list[np.ndarray]
    output_type: object  # the model's IR result type


def _entry(path: Path, entry: str | None):
    from geomir.compiler import frontend, read_source
    from geomir.jet_report import models_of

    text, filename = read_source(path)
    models = {f.sym_name.data: f for f in models_of(frontend(text, filename))}
    if entry is None:
        if len(models) != 1:
            raise UsageError(f"contract: {path} defines {len(models)} models ({', '.join(models)}); name one with entry:")
        entry = next(iter(models))
    if entry not in models:
        raise UsageError(f"contract: no model '{entry}' in {path} (models: {', '.join(models)})")
    return entry, models[entry]


def _output_type(entry: str, f):
    """The model's one output type; UsageError for a model a contract cannot compare:
    several outputs, or a path input (a contract draws independent rows, not paths)."""
    from geomir.dialects import geo

    outputs = f.function_type.outputs.data
    if len(outputs) != 1:
        raise UsageError(f"contract: @{entry} returns {len(outputs)} outputs; a contract compares a model with one "
                         "output (give each output a model of its own)")
    paths = [i for i, t in enumerate(f.function_type.inputs.data, 1) if isinstance(t, geo.PathType)]
    if paths:
        raise UsageError(f"contract: @{entry} takes a path (input {paths[0]}); a contract draws independent sample "
                         "rows, and models with path inputs are not supported")
    return outputs[0]


def draw_inputs(f, samples: int, seed: int, distribution: str, scale: float | None) -> list[np.ndarray]:
    """float64 inputs for every model input (jet_report.sample_inputs from ``seed``)."""
    from geomir.jet_report import sample_inputs

    rng = np.random.default_rng(seed)
    return [u.numpy() for u in sample_inputs(f.function_type.inputs.data, rng, samples, distribution, scale)]


def _kernel(kernel: Kernel, path: Path, entry: str, master: dict[str, np.ndarray], batch: int, seed: int):
    """A callable: float64 numpy inputs -> float64 numpy outputs, for one kernel."""
    import torch

    import geomir

    options = {"precision": kernel.precision} if kernel.precision else {}
    module = geomir.compile(path, target=kernel.target, **options)
    fn = getattr(module, entry)
    if kernel.target == "jax":
        import jax
        import jax.numpy as jnp

        if kernel.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        dtype = getattr(jnp, kernel.dtype)
        params = {k: jnp.asarray(v, dtype=dtype) for k, v in master.items()}
        run = jax.jit(fn)

        def call(xs):
            return np.asarray(run(params, *[jnp.asarray(x, dtype=dtype) for x in xs]), dtype=np.float64)
    else:
        device = "cuda" if kernel.target == "triton" and torch.cuda.is_available() else "cpu"
        dtype = getattr(torch, kernel.dtype)
        params = {k: torch.tensor(v).to(device=device, dtype=dtype) for k, v in master.items()}

        def call(xs):
            with torch.no_grad():
                y = fn(params, *[torch.tensor(x).to(device=device, dtype=dtype) for x in xs])
            return y.detach().to("cpu", torch.float64).numpy()

    rng = np.random.default_rng(seed + 1)

    def batched(xs: list[np.ndarray]) -> np.ndarray:
        n = xs[0].shape[0]
        parts = [call([x[i:i + batch] for x in xs]) for i in range(0, n, batch)]
        y = np.concatenate(parts, axis=0)
        if kernel.perturb:
            y = y + kernel.perturb * rng.uniform(-1.0, 1.0, y.shape)
        return y

    batched.single = call  # one call, for timing
    return batched


def _master_params(path: Path, entry: str, weights: str | None, base: Path, program) -> dict[str, np.ndarray]:
    """The float64 parameters of ``entry``: the seed-0 init, or the ``weights`` file's,
    checked as ``geomc --weights`` checks them against ``program`` (the frontend IR)."""
    import torch

    import geomir

    module = geomir.compile(path, target="torch")
    params = module.init_params(0, torch.float64, module.FUNCTION_PARAMS[entry])
    master = {k: v.numpy() for k, v in params.items()}
    if weights is not None:
        from geomir.passes.verify_contracts import check_weights_file
        from geomir.weights_file import WeightFile

        file = WeightFile(base / weights)
        unknown = sorted(set(file.arrays) - set(module.PARAMS))
        if unknown:
            raise UsageError(f"weights file '{file}' holds {len(unknown)} arrays that are no parameter of "
                             f"{path.name}: {', '.join(unknown[:8])}{', ...' if len(unknown) > 8 else ''}")
        check_weights_file(program, file)  # shapes, finiteness, ball points on the ball
        master = {k: file.get(k, v.shape) for k, v in master.items()}
    return master


def require_torch() -> None:
    """A UsageError when PyTorch is not installed: every contract needs it, whatever its
    targets (the shared weights come from the torch module, the inputs from a torch draw)."""
    require_installed("torch", "kernel contracts draw their weights and inputs with")


def build_kernels(contract: Contract, base: Path, candidate: Callable | None = None) -> Kernels:
    """Compile both kernels; ``candidate`` overrides the candidate (inputs -> outputs,
    float64 numpy), e.g. a kernel with an injected fault."""
    require_torch()
    path = (base / contract.model).resolve()
    if not path.is_file():
        raise UsageError(f"contract: model file '{contract.model}' not found (relative to {base})")
    entry, f = _entry(path, contract.entry)
    output_type = _output_type(entry, f)
    master = _master_params(path, entry, contract.weights, base, f.get_toplevel_object())
    inputs = draw_inputs(f, contract.inputs.samples, contract.inputs.seed, contract.inputs.distribution,
                         contract.inputs.scale)
    batch = contract.inputs.batch
    ref = _kernel(contract.reference, path, entry, master, batch, contract.inputs.seed)
    cand = candidate or _kernel(contract.candidate, path, entry, master, batch, contract.inputs.seed)
    return Kernels(entry, ref, cand, inputs, output_type)


# -- errors between outputs ----------------------------------------------------------------------


def sample_errors(y_ref: np.ndarray, y_cand: np.ndarray, output_type, metric: str) -> np.ndarray:
    """The per-sample error of the candidate (see the module doc): under ``manifold``, the
    geodesic distance to the candidate projected on the manifold plus how far the
    projection moved it, so an output off the manifold is an error (not on the torus:
    angles a whole period apart are one point). Non-finite rows give NaN or inf."""
    diff = np.linalg.norm(y_cand - y_ref, axis=-1)
    if metric == "relative":
        return diff / np.maximum(np.linalg.norm(y_ref, axis=-1), np.finfo(np.float64).tiny)
    if metric == "manifold":
        from geomir.dialects import geo

        if isinstance(output_type, geo.PointType) and not isinstance(output_type.manifold, geo.EuclideanAttr):
            import torch

            from geomir.jet_report import runtime_manifold

            m = runtime_manifold(output_type.manifold)
            yr, yc = torch.tensor(y_ref), torch.tensor(y_cand)
            if isinstance(output_type.manifold, geo.TorusAttr):  # dist: the shortest angle differences
                return m.dist(yr, yc)[..., 0].numpy()
            on = m.proj(yc)
            return (m.dist(yr, on)[..., 0] + torch.linalg.vector_norm(yc - on, dim=-1)).numpy()
    return diff


def is_logits(output_type, dim: int) -> bool:
    """Whether outputs are read as logits (KL, top-1): Euclidean or tangent, dimension >= 2."""
    from geomir.dialects import geo

    flat = isinstance(output_type, geo.TangentType) or isinstance(output_type.manifold, geo.EuclideanAttr)
    return flat and dim >= 2


def softmax(y: np.ndarray) -> np.ndarray:
    """Probabilities of logits on the last axis."""
    z = y - y.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def kl_divergence(y_ref: np.ndarray, y_cand: np.ndarray) -> np.ndarray:
    """KL(softmax(y_ref) || softmax(y_cand)) per sample (outputs read as logits)."""
    lp = y_ref - y_ref.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    lq = y_cand - y_cand.max(-1, keepdims=True)
    lq = lq - np.log(np.exp(lq).sum(-1, keepdims=True))
    return np.maximum((np.exp(lp) * (lp - lq)).sum(-1), 0.0)


def quantile(x: np.ndarray, q: float) -> float:
    """np.quantile (linear interpolation), but +inf where it reaches an infinite error
    (NumPy gives NaN: inf - inf)."""
    s = np.sort(x)
    h = (len(s) - 1) * q
    lo = int(math.floor(h))
    hi = min(lo + 1, len(s) - 1)
    if math.isinf(s[hi]) and h > lo or math.isinf(s[lo]):
        return math.inf
    return float(s[lo] + (s[hi] - s[lo]) * (h - lo))


def _percentiles(x: np.ndarray) -> dict[str, float]:
    return {f"p{p:g}": quantile(x, p / 100) for p in PERCENTILES} | {"max": float(np.max(x)),
                                                                      "mean": float(np.mean(x))}


def evaluate(contract: Contract, y_ref: np.ndarray, y_cand: np.ndarray, output_type,
             timing: dict | None = None) -> tuple[list[Clause], dict, list[str]]:
    """(clauses, percentiles, notes) for outputs of both kernels on the same inputs."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf errors of NaN outputs are counted, not warned
        return _evaluate(contract, y_ref, y_cand, output_type, timing)


def nonfinite_rows(y: np.ndarray) -> np.ndarray:
    """Which output rows (samples) hold a NaN or inf."""
    return ~np.all(np.isfinite(y), axis=-1)


def _evaluate(contract, y_ref, y_cand, output_type, timing):
    notes: list[str] = []
    bad = nonfinite_rows(y_cand)
    nonfinite = int(bad.sum())
    if nonfinite:
        notes.append(f"{nonfinite} candidate outputs are NaN or inf: every clause on the outputs fails")
    num = contract.numerical
    errors = np.where(bad, np.inf, sample_errors(y_ref, y_cand, output_type, num.metric))
    relative = np.where(bad, np.inf, sample_errors(y_ref, y_cand, output_type, "relative"))
    clauses = _numerical(contract, y_ref, y_cand, errors, relative)
    percentiles = {"error": _percentiles(errors), "relative_error": _percentiles(relative)}
    kl = None
    if is_logits(output_type, y_ref.shape[-1]):
        kl = np.where(bad, np.inf, kl_divergence(y_ref, y_cand))
        percentiles["kl"] = _percentiles(kl)
        agree = (np.argmax(y_ref, -1) == np.argmax(y_cand, -1)) & ~bad  # a NaN row agrees with nothing
        percentiles["top1_agreement"] = float(np.mean(agree))
    if contract.statistical is not None:
        clauses += _statistical(contract, errors, kl, percentiles, notes)
    for c in clauses:
        c.nonfinite = nonfinite
    if contract.runtime is not None and timing is not None:
        rt = contract.runtime
        clauses.append(Clause("runtime.p99_ms", timing["p99_ms"], rt.max_p99_ms,
                              detail=f"p99 of {timing['calls']} candidate calls on {timing['rows']} rows "
                                     f"(p50 {timing['p50_ms']:.3g} ms, {timing['device']})"))
        clauses.append(Clause("runtime.memory_mb", timing["memory_mb"], rt.max_memory_mb, detail=timing["memory_how"]))
        if timing["memory_how"] == UNMEASURED and rt.max_memory_mb is not None:
            notes.append(f"runtime.max_memory_mb is not evaluated: {UNMEASURED}")
    _escalate(contract, clauses)
    reached = [c.clause for c in clauses if c.action == "warn"]
    if reached:
        notes.append(f"escalation warn: {', '.join(reached)} reach a warn step")
    return clauses, percentiles, notes


def _numerical(contract, y_ref, y_cand, errors, relative) -> list[Clause]:
    num = contract.numerical
    clauses = []
    if num.max_abs is not None:
        clauses.append(Clause("numerical.max_abs", float(np.max(errors)), num.max_abs,
                              detail=f"max over samples of the {num.metric} error"))
    if num.max_rel is not None:
        clauses.append(Clause("numerical.max_rel", float(np.max(relative)), num.max_rel,
                              detail="max over samples of |dy| / |y_ref|"))
    if num.max_abs is None and num.max_rel is None:
        rtol, atol = default_tolerance(contract.candidate.dtype)
        scaled = np.abs(y_cand - y_ref) / (atol + rtol * np.abs(y_ref))
        scaled = np.where(np.isfinite(y_cand), scaled, np.inf)
        clauses.append(Clause("numerical.allclose", float(np.max(scaled)), 1.0,
                              detail=f"max |dy| / (atol + rtol |y_ref|), {contract.candidate.dtype} defaults "
                                     f"rtol {rtol:g}, atol {atol:g}"))
    return clauses


def _statistical(contract, errors, kl, percentiles, notes) -> list[Clause]:
    st, q = contract.statistical, contract.statistical.quantile
    clauses = [Clause(f"statistical.quantile_error@{q:g}", quantile(errors, q), st.max_quantile_error,
                      detail=f"the {q:g} quantile of the {contract.numerical.metric} error")]
    if kl is not None:
        clauses.append(Clause(f"statistical.kl@{q:g}", quantile(kl, q), st.max_kl,
                              detail="KL(softmax(y_ref) || softmax(y_cand)) at the quantile"))
        clauses.append(Clause("statistical.top1", percentiles["top1_agreement"], st.min_top1, higher_is_better=True,
                              detail="share of samples whose argmax agrees"))
    elif st.max_kl is not None or st.min_top1 is not None:
        notes.append("statistical.max_kl / min_top1 need Euclidean outputs of dimension >= 2 (logits); "
                     "not evaluated")
    return clauses


def _escalate(contract: Contract, clauses: list[Clause]) -> None:
    for c in clauses:
        r = c.ratio
        if r is None:
            continue
        reached = [s.action for s in contract.escalation if r > s.above]
        c.action = reached[-1] if reached else ""


def _timing(kernels: Kernels, contract: Contract) -> dict:
    """Latency of candidate calls on one batch, and the peak memory of one such call."""
    import torch

    rows = min(contract.inputs.batch, kernels.inputs[0].shape[0])
    xs = [x[:rows] for x in kernels.inputs]
    single = getattr(kernels.candidate, "single", None) or kernels.candidate
    cuda = contract.candidate.target == "triton" and torch.cuda.is_available()
    single(xs)  # warm-up: compilation, autotuning
    memory, how = _peak_memory(lambda: single(xs), cuda)
    times = []
    for _ in range(contract.runtime.repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        single(xs)
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "calls": len(times), "rows": rows, "device": "cuda" if cuda else "cpu", "memory_mb": float(memory),
            "memory_how": how}


def _peak_memory(call: Callable, cuda: bool) -> tuple[float, str]:
    """(MiB, how it was measured) of the memory ``call`` takes at its peak."""
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20, "CUDA peak allocated during one call"
    rise = _rss_rise(call)
    if rise is None:
        return math.nan, UNMEASURED
    return rise, "rise of the process's peak RSS during one call (CPU: peak reset through /proc/self/clear_refs)"


def _rss_rise(call: Callable) -> float | None:
    """MiB by which ``call`` raises the resident set above where it started: freed memory
    goes back to the OS first (malloc_trim) and the peak is reset (Linux clear_refs), so
    what earlier calls left does not hide it. None without Linux's /proc."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status_kb("VmRSS")
    except OSError:
        return None
    call()
    return max(_status_kb("VmHWM") - before, 0) / 1024


def _status_kb(field: str) -> int:
    """A ``kB`` field of /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _triton_launches():
    """Start counting Triton launches; the returned function gives (kernel launches,
    torch fallbacks by reason) since the start."""
    from geomir.backends.triton import runtime

    before = dict(runtime.STATS)

    def since():
        delta = {k: n - before.get(k, 0) for k, n in runtime.STATS.items() if n - before.get(k, 0)}
        ran = sum(n for (path, *_), n in delta.items() if path == "triton")
        fell = {}
        for (path, _kind, reason), n in delta.items():
            if path == "torch":
                fell[reason] = fell.get(reason, 0) + n
        return ran, fell

    return since


def inputs_hash(inputs: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for x in inputs:
        h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()[:16]


def check_contract(source, candidate: Callable | None = None, base: str | Path | None = None) -> Report:
    """Load (a path, YAML text or a :class:`Contract`), run both kernels, evaluate.
    Relative ``model`` and ``weights`` paths are relative to ``base``; by default the
    contract file's directory (YAML text, a :class:`Contract`: the working directory)."""
    contract, base = resolve(source, base)
    count = contract.candidate.target == "triton" and candidate is None
    return run_check(contract, build_kernels(contract, base, candidate), count_launches=count)


def resolve(source, base: str | Path | None = None) -> tuple[Contract, Path]:
    """(the contract, the base of its relative paths) of a path, YAML text or :class:`Contract`."""
    contract, found = (source, Path.cwd()) if isinstance(source, Contract) else load_contract(source)
    return contract, Path(base) if base is not None else found


def run_check(contract: Contract, kernels: Kernels, count_launches: bool = False) -> Report:
    """Run both built kernels on the contract's inputs and evaluate every clause; with
    ``count_launches``, record the Triton candidate's kernel launches and fallbacks."""
    y_ref = kernels.reference(kernels.inputs)
    launches = _triton_launches() if count_launches else None
    y_cand = kernels.candidate(kernels.inputs)
    counted = launches() if launches is not None else None  # the compared run's, not the timing calls'
    timing = _timing(kernels, contract) if contract.runtime is not None else None
    clauses, percentiles, notes = evaluate(contract, y_ref, y_cand, kernels.output_type, timing)
    percentiles["inputs_hash"] = inputs_hash(kernels.inputs)
    if counted is not None:
        ran, fell_back = counted
        percentiles["triton_launches"] = {"kernel": ran, "torch_fallback": fell_back}
        if fell_back:
            reasons = ", ".join(f"{r} ({n})" for r, n in sorted(fell_back.items()))
            notes.append(f"the Triton candidate ran the torch code at some launch sites ({reasons}): those outputs are "
                         "torch's, not the kernels' (on a CPU, set TRITON_INTERPRET=1 before running)")
    return Report(contract.contract, contract.model, kernels.entry, contract.reference.model_dump(),
                  contract.candidate.model_dump(), contract.inputs.samples, clauses, percentiles, notes)


def render(report: Report, console) -> None:
    from rich.table import Table

    table = Table(title=f"kernel contract {report.contract}: @{report.entry} of {report.model}, "
                        f"{report.candidate['target']} {report.candidate['dtype']} vs "
                        f"{report.reference['target']} {report.reference['dtype']} on {report.samples} samples")
    for col in ("clause", "measured", "bound", "used", "verdict", "action"):
        table.add_column(col, justify="right" if col in ("measured", "bound", "used") else "left")
    for c in report.clauses:
        table.add_row(c.clause, f"{c.measured:.4g}", "-" if c.bound is None else f"{c.bound:.4g}",
                      "-" if c.ratio is None else f"{c.ratio:.2f}", c.verdict, c.action or "-")
    console.print(table)
    p = report.percentiles
    console.print("error percentiles: " + ", ".join(f"{k} {v:.3g}" for k, v in p["error"].items()))
    if "kl" in p:
        console.print("KL percentiles: " + ", ".join(f"{k} {v:.3g}" for k, v in p["kl"].items())
                      + f"; top-1 agreement {p['top1_agreement']:.4f}")
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(verdict_line(report))


def verdict_line(report: Report) -> str:
    """PASS, VIOLATED, or REJECTED (every bound holds but a clause reaches a fallback or
    block step), with the strongest escalation action."""
    word = "VIOLATED" if report.violated else "REJECTED" if not report.passed else "PASS"
    return word + (f" (escalation: {report.action})" if report.action else "")


def write_json(report: Report, path: str | Path) -> None:
    try:
        Path(path).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    except OSError as err:
        raise UsageError(f"cannot write '{path}': {err.strerror}") from None
