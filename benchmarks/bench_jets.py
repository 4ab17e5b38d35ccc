"""Benchmark of geomir's Taylor-mode derivatives against the frameworks' own.

A PINN MLP u: R^D -> R^1 (tanh, ``layers`` hidden layers of ``width``) is written in
.geo, compiled once per backend with the default pipeline, and timed in one process for
four tasks:

* ``forward``  u(x) on N points;
* ``d2``, ``d4`` the directional derivatives d^k/dt^k u(x + t v), k = 0..K (K = 2, 4);
* ``lap``      the Laplacian sum_i d^2 u / dx_i^2.

Every alternative is built from the same weights (the geomir parameter dict) and is
checked against geomir's result before it is timed; a disagreement is an error (the
script exits with status 1). See benchmarks/README.md for the methods.

    python benchmarks/bench_jets.py --size ci
    python benchmarks/bench_jets.py --size full --only torch --repeats 5
    python benchmarks/bench_jets.py --device cuda --size A B      # on a GPU: + geomir-Triton

On ``--device cuda`` the torch, Triton and JAX methods run on the GPU in fp32 with TF32 off
(torch.backends.*.allow_tf32 = False, jax_default_matmul_precision = "highest", the Triton
kernels' IEEE dots), every call synchronised before the clock is read; the JSON records the
GPU, the FLOP/s each method achieves and its share of the GPU's fp32 peak (FLOPS below).
``--triton-interpret`` adds the Triton backend on the CPU through the Triton interpreter
(tiny sizes only: a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PASSES = "jet-expand,jet-fuse,cse,dce"  # the default pipeline (geomir.DEFAULT_PIPELINE)

SIZES = {
    "full": dict(n=4096, d=16, width=512, layers=4),
    "ci": dict(n=256, d=4, width=64, layers=2),
    "A": dict(n=4096, d=16, width=512, layers=4),  # the GPU settings of issue 6
    "B": dict(n=16384, d=8, width=256, layers=6),
}
DEFAULT_REPEATS = {"full": 5, "ci": 10, "A": 50, "B": 50}
# Relative agreement bound per dtype: max|a - b| / max|b|, per derivative order.
RTOL = {"float32": 2e-3, "float64": 1e-9}
# ... and for the Triton rows at reduced dot precision (operands with 10 or 8 mantissa bits).
PRECISION_RTOL = {"tf32": 2e-2, "bf16": 1e-1}

TASKS = ("forward", "d2", "d4", "lap")
TASK_TITLES = {"forward": "forward", "d2": "directional K=2", "d4": "directional K=4", "lap": "Laplacian"}

# (backend, task, method) in table order. The geomir row of each (backend, task) comes
# first and is the reference of the others.
METHODS: list[tuple[str, str, str]] = [
    ("torch", "forward", "geomir"),
    ("torch", "forward", "eager forward"),
    ("torch", "d2", "geomir"),
    ("torch", "d2", "torch.func nested jvp"),
    ("torch", "d2", "stacked forward (K+1)N"),
    ("torch", "d4", "geomir"),
    ("torch", "d4", "torch.func nested jvp"),
    ("torch", "d4", "stacked forward (K+1)N"),
    ("torch", "lap", "geomir"),
    ("torch", "lap", "torch.func vmap(hessian)"),
    ("torch", "lap", "torch.func nested jvp (D dirs)"),
    ("torch", "lap", "stacked forward (D+2)N"),
    ("jax", "forward", "geomir"),
    ("jax", "forward", "jit forward"),
    ("jax", "d2", "geomir"),
    ("jax", "d2", "jax.experimental.jet"),
    ("jax", "d2", "nested jax.jvp (jit)"),
    ("jax", "d2", "stacked forward (K+1)N"),
    ("jax", "d4", "geomir"),
    ("jax", "d4", "jax.experimental.jet"),
    ("jax", "d4", "nested jax.jvp (jit)"),
    ("jax", "d4", "stacked forward (K+1)N"),
    ("jax", "lap", "geomir"),
    ("jax", "lap", "vmap(hessian) (jit)"),
    ("jax", "lap", "folx forward Laplacian"),
    ("jax", "lap", "nested jax.jvp (D dirs, jit)"),
    ("jax", "lap", "stacked forward (D+2)N"),
    ("triton", "forward", "geomir"),
    ("triton", "d2", "geomir"),
    ("triton", "d4", "geomir"),
    ("triton", "lap", "geomir"),
]
BACKEND_ORDER = ("torch", "triton", "jax")  # torch first: its module gives the weights

# The derivative methods that are NOT geomir's (the "alternatives" of the GPU goals).
ALTERNATIVES = {
    "d2": [("torch", "torch.func nested jvp"), ("jax", "jax.experimental.jet"), ("jax", "nested jax.jvp (jit)")],
    "d4": [("torch", "torch.func nested jvp"), ("jax", "jax.experimental.jet"), ("jax", "nested jax.jvp (jit)")],
    "lap": [("torch", "torch.func vmap(hessian)"), ("torch", "torch.func nested jvp (D dirs)"),
            ("jax", "vmap(hessian) (jit)"), ("jax", "folx forward Laplacian"), ("jax", "nested jax.jvp (D dirs, jit)")],
}

# fp32 peak (non-tensor-core FMA rate, TFLOP/s) by GPU name: datasheet figures, the
# denominators of "share of peak". The 'H100 80GB HBM3' is the SXM5 part.
FP32_PEAK_TFLOPS = [
    ("H100 80GB HBM3", 66.9), ("H100 SXM", 66.9), ("H100 PCIe", 51.2), ("H100 NVL", 60.0),
    ("H200 NVL", 60.0), ("H200", 66.9), ("A100", 19.5), ("L40S", 91.6), ("RTX 4090", 82.6),
]

# (name, backend, task, numerator method, denominator method, op, target): the ratio is
# time(numerator) / time(denominator).
GOALS = [
    ("jax K=4: nested jax.jvp (jit) / geomir", "jax", "d4", "nested jax.jvp (jit)", "geomir", ">=", 1.2),
    ("jax Laplacian: folx / geomir", "jax", "lap", "folx forward Laplacian", "geomir", ">=", 1.3),
    ("torch K=4: torch.func nested jvp / geomir", "torch", "d4", "torch.func nested jvp", "geomir", ">=", 5.0),
    ("torch K=4: geomir / stacked forward (K+1)N", "torch", "d4", "geomir", "stacked forward (K+1)N", "<=", 1.3),
    ("torch Laplacian: torch.func vmap(hessian) / geomir", "torch", "lap", "torch.func vmap(hessian)", "geomir", ">=", 2.0),
]
# GPU goals (issue 6), evaluated on --device cuda: geomir-Triton against the fastest
# alternative (K=4), JAX's vmap(hessian) and folx (Laplacian): (name, task, versus, target).
GPU_GOALS = [
    ("triton K=4: fastest alternative / geomir-Triton", "d4", "fastest", 1.5),
    ("triton Laplacian: JAX vmap(hessian) / geomir-Triton", "lap", ("jax", "vmap(hessian) (jit)"), 2.0),
    ("triton Laplacian: folx / geomir-Triton", "lap", ("jax", "folx forward Laplacian"), 1.0),
]
# Ratios reported without a target.
INFO_RATIOS = [
    ("torch K=2: geomir / stacked forward (K+1)N", "torch", "d2", "geomir", "stacked forward (K+1)N"),
    ("torch Laplacian: geomir / stacked forward (D+2)N", "torch", "lap", "geomir", "stacked forward (D+2)N"),
    ("jax K=4: geomir / stacked forward (K+1)N", "jax", "d4", "geomir", "stacked forward (K+1)N"),
    ("jax K=4: jax.experimental.jet / geomir", "jax", "d4", "jax.experimental.jet", "geomir"),
    ("jax Laplacian: vmap(hessian) (jit) / geomir", "jax", "lap", "vmap(hessian) (jit)", "geomir"),
    ("jax Laplacian: geomir / stacked forward (D+2)N", "jax", "lap", "geomir", "stacked forward (D+2)N"),
]


def method_id(backend: str, task: str, method: str) -> str:
    return f"{backend}/{task}/{method}"


class Skip(Exception):
    """A method that cannot run here (a missing optional package): recorded, not an error."""


# =========================================================================================
# The model
# =========================================================================================


def geo_source(d: int, width: int, layers: int, dtype: str) -> str:
    """The .geo program: U(x: R[d]) -> R[1] with ``layers`` tanh layers of ``width``, and
    the three derivative requests."""
    et = ", f64" if dtype == "float64" else ""
    lines = [f"model U(x: R[{d}{et}]) -> R[1{et}] {{"]
    fan_in, prev = d, "x"
    for _ in range(layers):
        lines.append(f"  let h = tanh(linear({prev}, {fan_in} -> {width}))")
        fan_in, prev = width, "h"
    lines.append(f"  return linear({prev}, {fan_in} -> 1)")
    lines.append("}")
    lines.append("")
    lines.append("derive d2 = directional(U, order = 2)")
    lines.append("derive d4 = directional(U, order = 4)")
    lines.append("derive lap = laplacian(U)")
    return "\n".join(lines) + "\n"


def layer_list(params: dict, layers: int) -> list[tuple[str, str]]:
    """(weight name, bias name) per linear layer, in order (the generated code's names)."""
    names = [(f"U.linear{i}.weight", f"U.linear{i}.bias") for i in range(layers + 1)]
    missing = [n for pair in names for n in pair if n not in params]
    if missing:
        raise RuntimeError(f"generated parameters {sorted(params)} lack {missing}")
    return names


def make_weights(mod, layers: int, dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The parameter dict of the compiled torch module (geomir's initialiser), with the
    zero biases replaced by small random ones so that no layer is odd; every method uses
    exactly these numbers."""
    import torch

    tdt = torch.float64 if dtype == "float64" else torch.float32
    params = {k: v.detach().cpu().numpy().copy() for k, v in mod.init_params(seed, tdt).items()}
    rng = np.random.default_rng(seed + 1)
    for _, b in layer_list(params, layers):
        params[b] = (0.1 * rng.standard_normal(params[b].shape)).astype(params[b].dtype)
    return params


# =========================================================================================
# Timing and agreement
# =========================================================================================


def rel_diff(a: np.ndarray, b: np.ndarray, stacked: bool) -> float:
    """max|a - b| / max|b|; for a stacked jet (leading axis = order) the max over orders of
    the per-order relative difference."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} != reference shape {b.shape}")
    if not np.all(np.isfinite(a)):
        return math.inf
    if stacked:
        return max(rel_diff(a[k], b[k], False) for k in range(a.shape[0]))
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    return err / scale if scale > 0 else err


_T0 = time.perf_counter()


def progress(message: str) -> None:
    """One line on stderr with the seconds since start: a long GPU run shows where it is."""
    print(f"[{time.perf_counter() - _T0:7.1f} s] {message}", file=sys.stderr, flush=True)


def warm(fn: Callable, sync: Callable, warmup: int):
    """The untimed calls (compilation, first-call set-up): the last output, the first
    call's time and the last call's time, in seconds."""
    t0 = time.perf_counter()
    out = sync(fn())
    first = last = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        t0 = time.perf_counter()
        out = sync(fn())
        last = time.perf_counter() - t0
    return out, first, last


def timed_rounds(fns: dict, sync: Callable, repeats: int, budget_s: float | None, estimate_s: float) -> dict:
    """``repeats`` rounds, each calling every function of ``fns`` once in turn (so that a
    change of the machine's load hits every method of a task alike); fewer rounds, but at
    least 3, when a round (``estimate_s``) would make them exceed ``budget_s``. Returns the
    wall-clock times in seconds per key."""
    rounds = repeats
    if budget_s is not None and estimate_s * repeats > budget_s:
        rounds = min(repeats, max(3, int(budget_s / max(estimate_s, 1e-9))))
    times: dict = {key: [] for key in fns}
    gc.collect()
    gc.disable()  # no collection inside a timed call (a collection takes ~0.3 s with torch and jax loaded)
    try:
        for _ in range(rounds):
            for key, fn in fns.items():
                t0 = time.perf_counter()
                sync(fn())
                times[key].append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times


# =========================================================================================
# torch
# =========================================================================================


def torch_methods(mod, weights: dict, x_np: np.ndarray, v_np: np.ndarray, layers: int, device: str = "cpu"):
    """(method name, task) -> zero-argument callable, with its grad mode."""
    import torch
    import torch.func as tf

    p = {k: torch.from_numpy(w).to(device) for k, w in weights.items()}
    names = layer_list(p, layers)
    x = torch.from_numpy(x_np).to(device)
    v = torch.from_numpy(v_np).to(device)
    n, d = x.shape

    def mlp(y):
        for i, (w, b) in enumerate(names):
            y = y @ p[w].T + p[b]
            if i < layers:
                y = torch.tanh(y)
        return y

    def nested_jvp(f, y, direction, order):
        """(f, f', ..., f^(order)) along ``direction`` by ``order`` levels of torch.func.jvp."""

        def lift(fn):
            def lifted(z):
                primals, tangents = tf.jvp(fn, (z,), (direction,))
                return (*primals, tangents[-1])

            return lifted

        fn = lambda z: (f(z),)  # noqa: E731
        for _ in range(order):
            fn = lift(fn)
        return fn(y)

    def directional(order):
        return lambda: torch.stack(nested_jvp(mlp, x, v, order))

    def lap_nested():
        total = None
        for i in range(d):
            e = torch.zeros_like(x)
            e[:, i] = 1.0
            term = nested_jvp(mlp, x, e, 2)[2]
            total = term if total is None else total + term
        return total

    def single(y):
        return mlp(y)[0]

    def lap_hessian():
        h = tf.vmap(tf.hessian(single))(x)
        return torch.diagonal(h, dim1=-2, dim2=-1).sum(-1)[:, None]

    x3, x5, xd = (torch.cat([x] * m) for m in (3, 5, d + 2))

    inf, nog = torch.inference_mode, torch.no_grad
    return {
        ("geomir", "forward"): (lambda: mod.U(p, x), inf),
        ("eager forward", "forward"): (lambda: mlp(x), inf),
        ("geomir", "d2"): (lambda: mod.d2(p, x, v), inf),
        ("torch.func nested jvp", "d2"): (directional(2), nog),
        ("stacked forward (K+1)N", "d2"): (lambda: mlp(x3), inf),
        ("geomir", "d4"): (lambda: mod.d4(p, x, v), inf),
        ("torch.func nested jvp", "d4"): (directional(4), nog),
        ("stacked forward (K+1)N", "d4"): (lambda: mlp(x5), inf),
        ("geomir", "lap"): (lambda: mod.lap(p, x), inf),
        ("torch.func vmap(hessian)", "lap"): (lap_hessian, nog),
        ("torch.func nested jvp (D dirs)", "lap"): (lap_nested, nog),
        ("stacked forward (D+2)N", "lap"): (lambda: mlp(xd), inf),
    }


def triton_method_name(precision: str, graph: bool = False) -> str:
    """The Triton rows: "geomir" at the default IEEE fp32 dots, "geomir [p]" at another,
    "geomir [graph]" / "geomir [p, graph]" replayed from a CUDA graph (runtime.graphed)."""
    tags = [t for t in (None if precision == "ieee" else precision, "graph" if graph else None) if t]
    return f"geomir [{', '.join(tags)}]" if tags else "geomir"


def triton_variants(precisions, graphs: bool) -> list[tuple[str, bool]]:
    """(precision, graph) of every Triton row after the plain "geomir" one."""
    rows = [(q, False) for q in precisions[1:]]
    return rows + ([(q, True) for q in precisions] if graphs else [])


def triton_methods(mod, weights: dict, x_np: np.ndarray, v_np: np.ndarray, device: str, precisions):
    """geomir's Triton module: the same four calls as the torch module's, on ``device``,
    once per dot-product precision (the module's PRECISION, set before each call), and on
    CUDA once more per precision replayed from a CUDA graph (``mod.runtime.graphed``)."""
    import torch

    p = {k: torch.from_numpy(w).to(device) for k, w in weights.items()}
    x = torch.from_numpy(x_np).to(device)
    v = torch.from_numpy(v_np).to(device)
    inf = torch.inference_mode

    def at(precision, fn, *args):
        def call():
            mod.PRECISION = precision
            return fn(p, *args)

        return call

    table = {}
    for prec in precisions:
        for graph in ((False, True) if device == "cuda" else (False,)):
            name = triton_method_name(prec, graph)
            fns = {task: getattr(mod, fn) for task, fn in (("forward", "U"), ("d2", "d2"), ("d4", "d4"), ("lap", "lap"))}
            if graph:
                fns = {task: mod.runtime.graphed(fn) for task, fn in fns.items()}
            table.update({
                (name, "forward"): (at(prec, fns["forward"], x), inf),
                (name, "d2"): (at(prec, fns["d2"], x, v), inf),
                (name, "d4"): (at(prec, fns["d4"], x, v), inf),
                (name, "lap"): (at(prec, fns["lap"], x), inf),
            })
    return table


def flops(task: str, n: int, d: int, width: int, layers: int) -> float:
    """Matmul FLOPs of a task's work: 2 N sum(n_i m_i) for the forward pass, times K+1
    for a K-jet (K+1 stacked coefficients) and D+2 for the Laplacian (f0, D f1, f2).
    Elementwise work is not counted; every method of a task is credited the same count."""
    per_point = d * width + (layers - 1) * width * width + width
    forward = 2.0 * n * per_point
    return forward * {"forward": 1, "d2": 3, "d4": 5, "lap": d + 2}[task]


def fp32_peak_tflops(gpu_name: str | None) -> float | None:
    for key, peak in FP32_PEAK_TFLOPS:
        if gpu_name and key in gpu_name:
            return peak
    return None


def gpu_info() -> dict:
    import torch

    props = torch.cuda.get_device_properties(0)
    name = torch.cuda.get_device_name(0)
    info = {"gpu_name": name, "gpu_sm_count": props.multi_processor_count,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "gpu_capability": f"{props.major}.{props.minor}", "cuda_runtime": torch.version.cuda,
            "fp32_peak_tflops": fp32_peak_tflops(name)}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = smi.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["nvidia_smi"] = None
    return info


# =========================================================================================
# JAX
# =========================================================================================


def jax_methods(mod, weights: dict, x_np: np.ndarray, v_np: np.ndarray, layers: int):
    import jax
    import jax.numpy as jnp

    p = {k: jnp.asarray(w) for k, w in weights.items()}
    names = layer_list(p, layers)
    x = jnp.asarray(x_np)
    v = jnp.asarray(v_np)
    n, d = x.shape

    def mlp(q, y):
        for i, (w, b) in enumerate(names):
            y = y @ q[w].T + q[b]
            if i < layers:
                y = jnp.tanh(y)
        return y

    def nested_jvp(f, y, direction, order):
        def lift(fn):
            def lifted(z):
                primals, tangents = jax.jvp(fn, (z,), (direction,))
                return (*primals, tangents[-1])

            return lifted

        fn = lambda z: (f(z),)  # noqa: E731
        for _ in range(order):
            fn = lift(fn)
        return fn(y)

    def nested(order):
        f = jax.jit(lambda q, y, u: jnp.stack(nested_jvp(lambda z: mlp(q, z), y, u, order)))
        return lambda: f(p, x, v)

    def jet(order):
        from jax.experimental import jet as jjet

        def run(q, y, u):
            series = (u,) + (jnp.zeros_like(u),) * (order - 1)
            y0, ys = jjet.jet(lambda z: mlp(q, z), (y,), (series,))
            return jnp.stack([y0, *ys])

        f = jax.jit(run)
        return lambda: f(p, x, v)

    def lap_nested_fn(q, y):
        total = None
        for i in range(d):
            e = jnp.zeros_like(y).at[:, i].set(1.0)
            term = nested_jvp(lambda z: mlp(q, z), y, e, 2)[2]
            total = term if total is None else total + term
        return total

    def lap_hessian_fn(q, y):
        h = jax.vmap(jax.hessian(lambda z: mlp(q, z)[0]))(y)
        return jnp.trace(h, axis1=-2, axis2=-1)[:, None]

    def folx_lap():
        try:
            import folx
        except ImportError as err:
            raise Skip(f"folx is not installed ({err}); pip install folx") from None

        def run(q, y):
            lap = folx.forward_laplacian(lambda z: mlp(q, z), disable_jit=True)
            return jax.vmap(lambda z: lap(z).laplacian)(y)

        f = jax.jit(run)
        return lambda: f(p, x)

    jmlp = jax.jit(mlp)
    x3, x5, xd = (jnp.concatenate([x] * m) for m in (3, 5, d + 2))
    g_u, g_d2, g_d4, g_lap = (jax.jit(getattr(mod, name)) for name in ("U", "d2", "d4", "lap"))
    j_lap_nested, j_lap_hessian = jax.jit(lap_nested_fn), jax.jit(lap_hessian_fn)
    return {
        ("geomir", "forward"): lambda: g_u(p, x),
        ("jit forward", "forward"): lambda: jmlp(p, x),
        ("geomir", "d2"): lambda: g_d2(p, x, v),
        ("jax.experimental.jet", "d2"): jet(2),
        ("nested jax.jvp (jit)", "d2"): nested(2),
        ("stacked forward (K+1)N", "d2"): lambda: jmlp(p, x3),
        ("geomir", "d4"): lambda: g_d4(p, x, v),
        ("jax.experimental.jet", "d4"): jet(4),
        ("nested jax.jvp (jit)", "d4"): nested(4),
        ("stacked forward (K+1)N", "d4"): lambda: jmlp(p, x5),
        ("geomir", "lap"): lambda: g_lap(p, x),
        ("vmap(hessian) (jit)", "lap"): lambda: j_lap_hessian(p, x),
        ("folx forward Laplacian", "lap"): folx_lap,  # built lazily: may Skip
        ("nested jax.jvp (D dirs, jit)", "lap"): lambda: j_lap_nested(p, x),
        ("stacked forward (D+2)N", "lap"): lambda: jmlp(p, xd),
    }


# =========================================================================================
# Running
# =========================================================================================


def machine_info(dtype: str) -> dict:
    info: dict = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": None,
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "dtype": dtype,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        info["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    for pkg in ("numpy", "torch", "jax", "jaxlib", "folx", "xdsl"):
        try:
            from importlib.metadata import version

            info[f"{pkg}_version"] = version(pkg)
        except Exception:  # noqa: BLE001 - not installed
            info[f"{pkg}_version"] = None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        info["geomir_commit"] = head.stdout.strip() or None
        info["geomir_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        info["geomir_commit"] = None
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = list(os.getloadavg())
    return info


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), nargs="+", default=["full"],
                    help="settings (several run in turn, one JSON): full, ci, or the GPU settings A, B")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: torch, Triton and JAX on the GPU (fp32, TF32 off)")
    ap.add_argument("--triton-interpret", action="store_true",
                    help="add the Triton backend on the CPU through TRITON_INTERPRET=1 (tiny sizes: a smoke test)")
    ap.add_argument("--n", type=int, help="points (overrides --size)")
    ap.add_argument("--d", type=int, help="input dimension D (overrides --size)")
    ap.add_argument("--width", type=int, help="hidden width (overrides --size)")
    ap.add_argument("--layers", type=int, help="hidden tanh layers (overrides --size)")
    ap.add_argument("--repeats", type=int, help="timed calls per method (median reported); default 5 full, 10 ci")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (jit compilation, first-call set-up)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of timed rounds per task before the rounds are cut (to at least 3)")
    ap.add_argument("--triton-precision", nargs="+", default=["ieee"],
                    choices=["ieee", "tf32", "tf32x3", "bf16"],
                    help="Triton dot precisions to time: ieee (the 'geomir' row, fp32, the goals') is always "
                         "run; others add rows 'geomir [p]' (e.g. tf32x3: fp32-accurate on tensor cores)")
    ap.add_argument("--only", choices=["torch", "jax"], help="one backend (and, with torch, Triton where it runs)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/bench_jets-<size>-<hostname>.json)")
    ap.add_argument("--cache-dir", type=Path, help="where geomir writes the generated modules (default: a temporary directory)")
    ap.add_argument("--passes", default=PASSES, help=f"geomir pass pipeline (default {PASSES})")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: the number of cores available)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="no table")
    return ap.parse_args(argv)


def run(args, size: str) -> dict:
    settings = dict(SIZES[size])
    custom = False
    for key in ("n", "d", "width", "layers"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
            custom = True
    size_label = "custom" if custom else size
    repeats = args.repeats if args.repeats is not None else DEFAULT_REPEATS[size]
    n, d, width, layers = settings["n"], settings["d"], settings["width"], settings["layers"]
    dtype = args.dtype
    device = args.device
    with_triton = device == "cuda" or args.triton_interpret
    backends = [b for b in BACKEND_ORDER if (b != "triton" or with_triton) and (args.only is None or b in (args.only, "triton"))]
    if args.only == "jax":
        backends = ["torch", "jax"]  # torch's module still gives the weights; its rows are timed too
    rtol = RTOL[dtype]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    import geomir

    source = geo_source(d, width, layers, dtype)
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="bench_jets_"))
    info = machine_info(dtype)
    result: dict = {
        "benchmark": "bench_jets",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "settings": {
            "size": size_label, "n": n, "d": d, "width": width, "layers": layers, "activation": "tanh",
            "dtype": dtype, "device": device, "repeats": repeats, "warmup": args.warmup, "budget_s": args.budget,
            "passes": args.passes, "backends": backends, "torch_threads": args.threads or cores, "rtol": rtol, "seed": args.seed,
            "statistic": "median wall-clock (time.perf_counter) of the timed calls, each call synchronised "
                         "with its device; the methods of a task are timed in interleaved rounds",
            "flops_convention": "matmul FLOPs: 2 N sum(n_i m_i) per forward pass, x(K+1) for a K-jet, x(D+2) for the Laplacian",
        },
        "geo_source": source,
        "methods": {},
        "cross_backend": {},
        "goals": [],
        "ratios": [],
        "errors": [],
    }

    import torch  # the parameters come from geomir's torch module in both cases

    torch.set_num_threads(args.threads or cores)
    info["torch_threads"] = torch.get_num_threads()
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        info.update(gpu_info())
        result["settings"]["tf32"] = False
    t0 = time.perf_counter()
    tmod = geomir.compile(source, target="torch", passes=args.passes, cache_dir=cache)
    compile_s = {"torch": time.perf_counter() - t0}
    weights = make_weights(tmod, layers, dtype, args.seed)
    result["generated_torch"] = str(Path(tmod.__file__))
    rng = np.random.default_rng(args.seed + 2)
    npdt = np.float64 if dtype == "float64" else np.float32
    x_np = rng.standard_normal((n, d)).astype(npdt)
    v_np = (rng.standard_normal((n, d)) / np.sqrt(d)).astype(npdt)

    def torch_sync(out):
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    precisions = ["ieee", *(q for q in args.triton_precision if q != "ieee")]
    variants = triton_variants(precisions, graphs=device == "cuda")
    method_rows = METHODS + [("triton", t, triton_method_name(q, g)) for q, g in variants for t in TASKS]
    result["settings"]["triton_precisions"] = precisions if "triton" in backends else []
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for backend in backends:
        stacked_k = {"stacked forward (K+1)N:d2": 3, "stacked forward (K+1)N:d4": 5, "stacked forward (D+2)N:lap": d + 2}
        if backend in ("torch", "triton"):
            if backend == "torch":
                table = torch_methods(tmod, weights, x_np, v_np, layers, device)
            else:
                try:
                    t0 = time.perf_counter()
                    xmod = geomir.compile(source, target="triton", passes=args.passes, cache_dir=cache)
                    compile_s["triton"] = time.perf_counter() - t0
                    progress(f"{size_label} triton: compiled in {compile_s['triton']:.1f} s")
                except Exception as err:  # noqa: BLE001 - recorded; the other backends still run
                    result["errors"].append(f"triton: cannot compile the model: {type(err).__name__}: {err}")
                    continue
                result["generated_triton"] = str(Path(xmod.__file__))
                result["settings"]["triton_precision"] = xmod.PRECISION  # of the "geomir" row
                from geomir.backends.triton import runtime as triton_runtime

                triton_runtime.set_strict(True)  # a torch fallback would time torch, not Triton
                table = triton_methods(xmod, weights, x_np, v_np, device, precisions)
            sync = torch_sync
            to_np = lambda out: out.detach().cpu().numpy()  # noqa: E731
        else:
            import jax

            if dtype == "float64":
                jax.config.update("jax_enable_x64", True)
            if device == "cuda":
                jax.config.update("jax_default_matmul_precision", "highest")
                platform_ = jax.devices()[0].platform
                info["jax_device"] = str(jax.devices()[0])
                if platform_ != "gpu":
                    result["errors"].append(f"jax: --device cuda but JAX's default device is {platform_}")
                    continue
            t0 = time.perf_counter()
            jmod = geomir.compile(source, target="jax", passes=args.passes, cache_dir=cache)
            compile_s["jax"] = time.perf_counter() - t0
            result["generated_jax"] = str(Path(jmod.__file__))
            table = {key: (fn, None) for key, fn in jax_methods(jmod, weights, x_np, v_np, layers).items()}
            sync = jax.block_until_ready
            to_np = np.asarray
        outputs[backend] = {}
        for task in TASKS:
            ready: dict[str, Callable] = {}
            estimate = 0.0
            for b, t, method in method_rows:
                if b != backend or t != task:
                    continue
                mid = method_id(backend, task, method)
                entry: dict = {"backend": backend, "task": task, "method": method}
                result["methods"][mid] = entry
                fn, mode = table[(method, task)]
                try:
                    if method == "folx forward Laplacian":
                        fn = fn()  # may raise Skip
                    if mode is not None:
                        inner, ctx = fn, mode
                        fn = lambda inner=inner, ctx=ctx: _in_mode(ctx, inner)  # noqa: E731
                        entry["torch_grad_mode"] = "inference_mode" if ctx is torch.inference_mode else "no_grad"
                    out, first, last = warm(fn, sync, args.warmup)
                    out = to_np(out)
                except Skip as why:
                    entry.update(status="skipped", reason=str(why))
                    continue
                except Exception as err:  # noqa: BLE001 - recorded, the run goes on
                    entry.update(status="error", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=6))
                    result["errors"].append(f"{mid}: {type(err).__name__}: {err}")
                    continue
                entry.update(status="ok", first_call_ms=1e3 * first, warmup=max(args.warmup, 1))
                progress(f"{size_label} {mid}: first call {1e3 * first:.1f} ms, last warm-up {1e3 * last:.2f} ms")
                ready[mid] = fn
                estimate += last
                tol = PRECISION_RTOL.get(method.removeprefix("geomir [").rstrip("]").split(",")[0], rtol)
                check_agreement(result, entry, out, outputs[backend], stacked_k, tol)
            times = timed_rounds(ready, sync, repeats, args.budget, estimate)
            for mid, ts in times.items():
                result["methods"][mid].update(median_ms=1e3 * statistics.median(ts), min_ms=1e3 * min(ts),
                                              max_ms=1e3 * max(ts), repeats=len(ts))
                progress(f"{size_label} {mid}: median {1e3 * statistics.median(ts):.3f} ms over {len(ts)} calls")
        # A geomir row with no other-backend check yet agrees if every alternative agreed.
        for task in TASKS:
            entry = result["methods"][method_id(backend, task, "geomir")]
            if entry.get("status") == "ok":
                others = [e for e in result["methods"].values() if e["backend"] == backend and e["task"] == task and not e["method"].startswith("geomir") and e.get("status") == "ok"]
                entry["agrees"] = all(e["agrees"] for e in others)
                entry["reference"] = "the other methods of this task"
                if others and any(e["max_rel_diff"] is not None for e in others):
                    entry["max_rel_diff"] = max(e["max_rel_diff"] for e in others if e["max_rel_diff"] is not None)
    result["settings"]["compile_s"] = compile_s
    if "triton" in outputs and device == "cuda":  # which tiles (and DIRS) the autotuner chose
        from geomir.backends.triton import layer as triton_layer

        result["settings"]["triton_tuned"] = triton_layer.tuned_configs()

    # geomir-JAX and geomir-Triton vs geomir-torch on the same weights and inputs.
    for other in ("jax", "triton"):
        if other not in outputs or "torch" not in outputs:
            continue
        for task in TASKS:
            a, b = outputs[other].get(task), outputs["torch"].get(task)
            if a is None or b is None:
                continue
            diff = rel_diff(a, b, task in ("d2", "d4"))
            ok = diff <= rtol
            key = task if other == "jax" else f"triton/{task}"
            result["cross_backend"][key] = {"max_rel_diff": diff, "agrees": ok}
            entry = result["methods"][method_id(other, task, "geomir")]
            entry["reference"] = method_id("torch", task, "geomir")
            entry["cross_backend_rel_diff"] = diff
            entry["agrees"] = bool(entry.get("agrees", True) and ok)
            if not ok:
                result["errors"].append(f"geomir {task}: torch and {other} disagree: {diff:.3g} > {rtol:g}")

    # FLOP/s and the share of the GPU's fp32 peak.
    peak = info.get("fp32_peak_tflops")
    for entry in result["methods"].values():
        if entry.get("status") == "ok" and entry.get("median_ms"):
            f = flops(entry["task"], n, d, width, layers)
            entry["flops"] = f
            entry["tflops_per_s"] = f / (entry["median_ms"] * 1e-3) / 1e12
            entry["share_of_fp32_peak"] = entry["tflops_per_s"] / peak if peak else None

    def med(backend, task, method):
        e = result["methods"].get(method_id(backend, task, method))
        return e.get("median_ms") if e and e.get("status") == "ok" else None

    if "triton" in outputs and device == "cuda":  # interpreter timings mean nothing
        for name, task, versus, target in GPU_GOALS:
            ours = med("triton", task, "geomir")
            if versus == "fastest":
                alts = {method_id(b, task, m): med(b, task, m) for b, m in ALTERNATIVES[task]}
                alts = {k: v for k, v in alts.items() if v is not None}
                den_id = min(alts, key=alts.get) if alts else None
                other = alts.get(den_id)
            else:
                den_id = method_id(*versus[:1], task, versus[1])
                other = med(versus[0], task, versus[1])
            ratio = other / ours if other is not None and ours is not None else None
            result["goals"].append({"goal": name, "ratio": ratio, "op": ">=", "target": target,
                                    "passed": None if ratio is None else ratio >= target,
                                    "numerator": den_id, "denominator": method_id("triton", task, "geomir")})
            for q, g in variants:  # the same ratio at another precision or by graph replay: reported, not a goal
                mine = med("triton", task, triton_method_name(q, g))
                result["ratios"].append({"ratio_name": f"{name} {triton_method_name(q, g).removeprefix('geomir ')}",
                                         "ratio": other / mine if other is not None and mine is not None else None})
    for name, backend, task, num, den, op, target in GOALS:
        if backend not in backends or device == "cuda":  # the CPU goals of issue 5
            continue
        a, b = med(backend, task, num), med(backend, task, den)
        ratio = a / b if a is not None and b is not None else None
        passed = None if ratio is None else (ratio >= target if op == ">=" else ratio <= target)
        result["goals"].append({"goal": name, "ratio": ratio, "op": op, "target": target, "passed": passed,
                                "numerator": method_id(backend, task, num), "denominator": method_id(backend, task, den)})
    for name, backend, task, num, den in INFO_RATIOS:
        if backend not in outputs:
            continue
        a, b = med(backend, task, num), med(backend, task, den)
        result["ratios"].append({"ratio_name": name, "ratio": a / b if a is not None and b is not None else None})
    if hasattr(os, "getloadavg"):
        info["loadavg_end"] = list(os.getloadavg())
    result["ok"] = not result["errors"]
    return result


def check_agreement(result: dict, entry: dict, out: np.ndarray, refs: dict, stacked_k: dict, rtol: float) -> None:
    """Compare a method's output with geomir's for the same task (a stacked forward: each
    block with geomir's forward). geomir's own outputs become the references."""
    backend, task, method = entry["backend"], entry["task"], entry["method"]
    mid = method_id(backend, task, method)
    if method == "geomir":
        refs[task] = out
        entry.update(reference=None, max_rel_diff=None, agrees=True)
        return
    ref_task = "forward" if method.startswith("stacked forward") else task
    ref = refs.get(ref_task)
    if ref is None:
        entry.update(reference=None, max_rel_diff=None, agrees=False)
        result["errors"].append(f"{mid}: no geomir result to compare with")
        return
    stacked = task in ("d2", "d4")
    if method.startswith("stacked forward"):
        m = stacked_k[f"{method}:{task}"]
        out = out.reshape(m, *ref.shape)
        ref = np.broadcast_to(ref, out.shape)
        stacked = False
    try:
        diff = rel_diff(out, ref, stacked)
    except ValueError as err:
        diff = math.inf
        entry["error"] = str(err)
    ok = bool(diff <= rtol)
    entry.update(reference=method_id(backend, ref_task, "geomir"), max_rel_diff=diff, agrees=ok)
    if not ok:
        result["errors"].append(f"{mid}: disagrees with geomir: max relative difference {diff:.3g} > {rtol:g}")


def _in_mode(ctx, fn):
    with ctx():
        return fn()


def _json_safe(obj):
    """Plain JSON: non-finite floats (a diverged method) as strings, numpy scalars as Python's."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def default_out(size: str) -> Path:
    return RESULTS / f"bench_jets-{size}-{socket.gethostname()}.json"


def print_report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    s, m = result["settings"], result["machine"]
    title = (f"bench_jets {s['size']}: N={s['n']} D={s['d']} width={s['width']} layers={s['layers']} tanh, {s['dtype']}, "
             f"median of ≤{s['repeats']} — {m.get('gpu_name') or m['cpu_model']}, {m['cores_available']} cores, "
             f"torch {m['torch_version']} ({m.get('torch_threads')} threads), jax {m['jax_version']}, device {s.get('device', 'cpu')}")
    table = Table(title=title, title_justify="left")
    for col, just in (("task", "left"), ("backend", "left"), ("method", "left"), ("median ms", "right"),
                      ("min ms", "right"), ("n", "right"), ("÷ geomir", "right"), ("TFLOP/s", "right"),
                      ("% fp32 peak", "right"), ("max rel diff", "right"), ("agrees", "center")):
        table.add_column(col, justify=just)
    prev = None
    for mid, e in result["methods"].items():
        key = (e["backend"], e["task"])
        if prev is not None and key != prev:
            table.add_section()
        prev = key
        if e.get("status") != "ok":
            table.add_row(TASK_TITLES[e["task"]], e["backend"], e["method"], e.get("status", "?"), "", "", "", "", "",
                          (e.get("reason") or e.get("error") or "")[:60], "")
            continue
        g = result["methods"].get(method_id(e["backend"], e["task"], "geomir"), {})
        ratio = f"{e['median_ms'] / g['median_ms']:.2f}×" if g.get("status") == "ok" else ""
        diff = e.get("cross_backend_rel_diff", e.get("max_rel_diff"))
        share = e.get("share_of_fp32_peak")
        table.add_row(TASK_TITLES[e["task"]], e["backend"], e["method"], f"{e['median_ms']:.2f}", f"{e['min_ms']:.2f}",
                      str(e["repeats"]), ratio, f"{e.get('tflops_per_s', 0):.3g}", "" if share is None else f"{100 * share:.1f}",
                      "" if diff is None else f"{diff:.1e}",
                      "[green]yes[/]" if e.get("agrees") else "[red]NO[/]")
    console.print(table)
    goals = Table(title="goals (ratios of median times, one run)", title_justify="left")
    for col in ("goal", "ratio", "target", "met"):
        goals.add_column(col)
    for g in result["goals"]:
        met = "n/a" if g["passed"] is None else ("[green]yes[/]" if g["passed"] else "[red]no[/]")
        goals.add_row(g["goal"], "n/a" if g["ratio"] is None else f"{g['ratio']:.2f}", f"{g['op']} {g['target']}", met)
    for r in result["ratios"]:
        goals.add_row(r["ratio_name"], "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}", "(info)", "")
    console.print(goals)
    for err in result["errors"]:
        console.print(f"[red]error:[/] {err}")


def _check_device(args) -> str | None:
    """Why the requested device cannot run, or None."""
    if args.device == "cuda" and args.triton_interpret:
        return "--triton-interpret is a CPU smoke test; drop it with --device cuda"
    if args.device == "cuda":
        try:
            import torch
        except ImportError:
            return "--device cuda needs torch with CUDA"
        if not torch.cuda.is_available():
            return "--device cuda: torch sees no CUDA GPU on this machine"
    return None


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.triton_interpret:  # before anything imports triton (it reads this when decorating)
        os.environ["TRITON_INTERPRET"] = "1"
    why = _check_device(args)
    if why is not None:
        print(f"bench_jets: error: {why}", file=sys.stderr)
        return 2
    results = []
    for size in args.size:  # the JSON is rewritten after each setting: a cut-off run keeps what it measured
        results.append(run(args, size))
        result = results[0] if len(args.size) == 1 else {
            "benchmark": "bench_jets", "runs": results, "ok": all(r["ok"] for r in results),
            "complete": len(results) == len(args.size),
            "errors": [e for r in results for e in r["errors"]],
        }
        label = "-".join(r["settings"]["size"] for r in results)
        out = args.out or default_out(label if args.device == "cpu" else f"{args.device}-{label}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_json_safe(result), indent=2) + "\n")
        progress(f"{results[-1]['settings']['size']} done; wrote {out}")
    if not args.quiet:
        for r in results:
            print_report(r)
        print(f"wrote {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
