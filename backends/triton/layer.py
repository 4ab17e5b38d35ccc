"""Host wrappers of the fused ``jet.layer`` kernels (``kernels.py``): torch tensors in,
torch tensors out (CUDA tensors on a GPU; CPU tensors under ``TRITON_INTERPRET=1``).

* :func:`jet_layer` ``(x, w, b=None, activation=None)``: x a jet (K+1, *batch, n);
  returns the jet (K+1, *batch, m) of ``activation(W x + b)``.
* :func:`laplacian_layer` ``(lap, w, b=None, activation=None)``: lap a
  ``LaplacianJet(f0, f1, f2)``; returns the ``LaplacianJet`` of the layer.

``activation`` uses the IR spelling (``"geo.tanh"``, ``"geo.sigmoid"``, or the bare name,
or None). Outputs are fresh contiguous tensors; every output element is written by one
program (no atomics), so results are deterministic. fp32 dots are IEEE unless
``precision`` is "tf32", "tf32x3" (tensor cores) or "bf16" (operands rounded to bfloat16);
accumulation is fp32 always; the interpreter emulates the TF32 and bf16 operands
(``kernels.INTERPRETER_PRECISIONS``), so it computes the GPU's numbers there too. Off the
interpreter the kernels are autotuned, keyed on (N, n, m) and K, over the :data:`CONFIGS`
whose accumulators fit in registers; under the interpreter one fixed large-block config
keeps tests fast.
No autograd: these are forward kernels (the emitter's inference / benchmark path).
"""

from __future__ import annotations

import torch
import triton
from geomir.backends.common.taylor import LaplacianJet
from triton.runtime.interpreter import InterpretedFunction

from . import env_flag
from . import kernels as _k

INTERPRET = isinstance(_k.jet_layer_kernel, InterpretedFunction)
"""Whether triton decorated the kernels for its CPU interpreter: triton's own reading of
``TRITON_INTERPRET`` (1, true, on, yes or y in any case; anything else is off) when
``kernels`` was first imported, so the wrappers never disagree with the kernels."""

ACTIVATIONS = _k.ACTIVATIONS
"""Activations with a fused kernel (bare names; None for none)."""

AUTOTUNE = [env_flag("GEOMIR_TRITON_AUTOTUNE", True)]
"""Off the interpreter: autotune each new key (the default), or launch the first fitting
candidate without timing any (``GEOMIR_TRITON_AUTOTUNE=0`` or :func:`set_autotune`):
no tuning at start-up, same sums (every candidate has the same BLOCK_K), maybe slower."""

_INTERP_BLOCKS = {"BLOCK_N": 64, "BLOCK_M": 64, "BLOCK_K": 64}
_INTERP_DIRS = 4


CONFIGS = [triton.Config({"BLOCK_N": bn, "BLOCK_M": bm, "BLOCK_K": 32}, num_warps=warps, num_stages=stages)
           for bn, bm, warps, stages in [(32, 32, 4, 3), (64, 32, 4, 3), (64, 64, 4, 3), (64, 64, 8, 3),
                                         (128, 64, 8, 3), (64, 128, 8, 3), (128, 128, 8, 2)]]
"""Autotuning candidates of the jet kernel. BLOCK_K is the same in all, so the k-loop sums
in the same order whichever tile shape wins (run-to-run determinism does not hang on the
tuning)."""
LAPLACIAN_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_M": bm, "BLOCK_K": 32, "DIRS": dirs}, num_warps=warps, num_stages=stages)
    for bn, bm, dirs, warps, stages in [(32, 32, 4, 4, 3), (64, 32, 4, 4, 3), (64, 64, 2, 4, 3),
                                        (64, 64, 2, 8, 3), (64, 64, 4, 8, 3), (128, 64, 1, 8, 3),
                                        (64, 128, 1, 8, 3)]]
"""Autotuning candidates of the Laplacian kernel: tile shapes and DIRS, the directions whose
dots share each W tile. Every DIRS gives the same sums in the same order."""
MAX_ACC_ELEMENTS = 5 * 128 * 64
"""Live fp32 accumulator elements per program that may stay in registers (160 per thread
at 8 warps): the jet kernel holds K+1 tiles, the Laplacian kernel 4 + DIRS (c1, c2, y2,
sq and the DIRS direction tiles). On an H100 the K = 4 kernel reached 22 TFLOP/s (IEEE)
with 64x64 tiles (benchmarks/results/triton_profile-A-H100.json); the autotuner also times
128x64 and 64x128, and keeps whichever is fastest."""


def _fitting(configs, tiles) -> list:
    """The configs whose live tiles (``tiles(config)``) fit in registers; never none."""
    def area(c):
        return c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_M"] * tiles(c)

    kept = [c for c in configs if area(c) <= MAX_ACC_ELEMENTS]
    return kept or [min(configs, key=area)]


def _prune_jet(configs, named_args, **kwargs):
    """The tile shapes whose K+1 accumulator tiles fit in registers."""
    K = kwargs.get("K", named_args.get("K", 0))
    return _fitting(configs, lambda c: int(K) + 1)


def _prune_laplacian(configs, named_args, **kwargs):
    """The tile shapes and DIRS whose 4 + DIRS live tiles fit in registers."""
    return _fitting(configs, lambda c: 4 + c.kwargs["DIRS"])


def _even_k(args: dict) -> bool:
    """EVEN_K: the reduction length is a multiple of BLOCK_K (no k-masks in the loop)."""
    return args["n"] % args["BLOCK_K"] == 0


_EVEN_K = triton.heuristics({"EVEN_K": _even_k})

_JET_KEY = ["N", "n", "m", "K", "PRECISION", "ACTIVATION"]
_LAPLACIAN_KEY = ["N", "n", "m", "PRECISION", "ACTIVATION"]
"""What the autotuning is keyed on: the shapes, the jet order, the dot precision (3xTF32 and
IEEE dots favour different tiles) and the activation (its epilogue's registers)."""

if INTERPRET:
    _jet_kernel = _EVEN_K(_k.jet_layer_kernel)
    _lap_kernel = _EVEN_K(_k.laplacian_layer_kernel)
else:  # tuned per shape (and jet order), among the configs that fit
    _jet_kernel = triton.autotune(CONFIGS, key=_JET_KEY,
                                  prune_configs_by={"early_config_prune": _prune_jet})(_EVEN_K(_k.jet_layer_kernel))
    _lap_kernel = triton.autotune(LAPLACIAN_CONFIGS, key=_LAPLACIAN_KEY,
                                  prune_configs_by={"early_config_prune": _prune_laplacian})(
                                      _EVEN_K(_k.laplacian_layer_kernel))

_TUNED: dict = {}
"""(kernel, autotuning key) -> the launch options of the config the autotuner chose, with
EVEN_K. Later launches with that key call the jit function directly: the same kernel and
config without the autotuner's and the heuristics' Python, about 20 us a launch (the layer
kernels launch once per layer and call)."""


def tuned_configs() -> dict[str, dict]:
    """The configs the autotuner chose in this process, for reports: ``"kernel N n m ..."``
    (the key, dtype last) -> the launch options (block sizes, DIRS, warps, stages, EVEN_K)."""
    return {" ".join(map(str, key)): dict(launch) for key, launch in _TUNED.items()}


def _untuned(configs: list) -> list:
    """The candidates with 64x64 tiles first (the H100's choice at setting A), for AUTOTUNE off."""
    return sorted(configs, key=lambda c: (c.kwargs["BLOCK_N"], c.kwargs["BLOCK_M"]) != (64, 64))


def set_autotune(on: bool = True) -> None:
    """Autotune new keys (True, the default) or launch the first fitting candidate (see AUTOTUNE)."""
    AUTOTUNE[0] = bool(on)


def _launch(tuned, kernel, grid, args: tuple, kwargs: dict, key: tuple, n: int | None = None,
            untuned=None) -> None:
    """Launch ``kernel`` (a jit function) on ``grid``: through ``tuned`` (its autotuner, or
    the heuristics wrapper under the interpreter) the first time ``key`` is seen off the
    interpreter, directly with the chosen config after that (n: the reduction length, for
    EVEN_K; None for a kernel without it). With autotuning off, the first config of
    ``untuned()`` (the candidates that fit; called only then) is chosen without timing."""
    launch = None if INTERPRET else _TUNED.get(key)
    if launch is None and not INTERPRET and not AUTOTUNE[0] and untuned is not None:
        chosen = untuned()[0].all_kwargs()
        launch = _TUNED[key] = chosen if n is None else {**chosen, "EVEN_K": _even_k({"n": n, **chosen})}
    if launch is not None:
        kernel[grid](*args, **kwargs, **launch)
        return
    tuned[grid](*args, **kwargs)
    if not INTERPRET:
        chosen = tuned.best_config.all_kwargs()
        _TUNED[key] = chosen if n is None else {**chosen, "EVEN_K": _even_k({"n": n, **chosen})}


def _activation_code(activation: str | None) -> int:
    name = activation.removeprefix("geo.") if activation else None
    if name not in _k.ACTIVATIONS:
        supported = ", ".join(f"geo.{a}" for a in _k.ACTIVATIONS if a)
        raise NotImplementedError(
            f"triton jet.layer: activation {activation!r} has no fused Triton kernel "
            f"(supported: {supported}, or None)")
    return _k.ACTIVATIONS[name]


def _precision_code(precision: str) -> int:
    if precision not in _k.PRECISIONS:
        raise ValueError(f"triton jet.layer: precision {precision!r} (expected one of "
                         f"{', '.join(_k.PRECISIONS)})")
    code = _k.PRECISIONS[precision]
    return _k.INTERPRETER_PRECISIONS.get(code, code) if INTERPRET else code


def _check(w: torch.Tensor, b: torch.Tensor | None, x: torch.Tensor) -> None:
    if w.ndim != 2 or w.shape[1] != x.shape[-1]:
        raise ValueError(f"triton jet.layer: weight {tuple(w.shape)} does not match "
                         f"input width {x.shape[-1]}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"triton jet.layer: bias {tuple(b.shape)} is not ({w.shape[0]},)")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise NotImplementedError(f"triton jet.layer: dtype {x.dtype} (f32/f16/bf16 only; "
                                  f"accumulation is f32)")
    if not INTERPRET and not x.is_cuda:
        raise ValueError("triton jet.layer: tensors must be on a CUDA device "
                         "(or set TRITON_INTERPRET=1 before importing the kernels)")


def _grid(N: int, m: int):
    """A 1-D grid of row blocks x column blocks (kernels._tile_of orders them)."""
    if INTERPRET:
        return (triton.cdiv(N, _INTERP_BLOCKS["BLOCK_N"]) * triton.cdiv(m, _INTERP_BLOCKS["BLOCK_M"]),)
    return lambda meta: (triton.cdiv(N, meta["BLOCK_N"]) * triton.cdiv(m, meta["BLOCK_M"]),)


def _blocks(**more) -> dict:
    """The interpreter's fixed config (with ``more``); nothing when autotuned."""
    return {**_INTERP_BLOCKS, **more} if INTERPRET else {}


def _as(t: torch.Tensor, dtype) -> torch.Tensor:
    """t in dtype, contiguous; t itself when it already is (no dispatch on the hot path)."""
    if t.dtype != dtype:
        t = t.to(dtype)
    return t if t.is_contiguous() else t.contiguous()


def jet_layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None,
              activation: str | None = None, precision: str = "ieee") -> torch.Tensor:
    """activation(W x + b) on the jet x (K+1, *batch, n) -> (K+1, *batch, m)."""
    act = _activation_code(activation)
    _check(w, b, x)
    K1, n, m = x.shape[0], x.shape[-1], w.shape[0]
    batch = x.shape[1:-1]
    xs = _as(x if x.ndim == 3 else x.reshape(K1, -1, n), x.dtype)
    N = xs.shape[1]
    wc = _as(w, x.dtype)
    bc = _as(b, x.dtype) if b is not None else wc  # dummy pointer when no bias
    y = torch.empty((K1, N, m), dtype=x.dtype, device=x.device)
    if N and m:
        prec = _precision_code(precision)
        _launch(_jet_kernel, _k.jet_layer_kernel, _grid(N, m),
                (xs, wc, bc, y, N, n, m, xs.stride(0), xs.stride(1), wc.stride(0), wc.stride(1),
                 y.stride(0), y.stride(1)),
                dict(K=K1 - 1, ACTIVATION=act, HAS_BIAS=b is not None, PRECISION=prec, **_blocks()),
                ("jet", N, n, m, K1 - 1, prec, act, x.dtype), n,
                lambda: _untuned(_prune_jet(CONFIGS, {}, K=K1 - 1)))
    return y if x.ndim == 3 else y.reshape(K1, *batch, m)


def laplacian_layer(lap: LaplacianJet, w: torch.Tensor, b: torch.Tensor | None = None,
                    activation: str | None = None, precision: str = "ieee") -> LaplacianJet:
    """activation(W lap + b) on a LaplacianJet (f0 (*batch, n), f1 (D, *batch, n), f2)."""
    act = _activation_code(activation)
    f0 = lap.f0
    _check(w, b, f0)
    n, m = f0.shape[-1], w.shape[0]
    batch = f0.shape[:-1]
    D = lap.f1.shape[0]
    flat = f0.ndim == 2
    f0c = _as(f0 if flat else f0.reshape(-1, n), f0.dtype)
    N = f0c.shape[0]
    # broadcast parts (a constant's f1 or f2) are materialized: the kernel reads dense parts
    f1, f2 = lap.f1, lap.f2
    f1c = _as(f1 if f1.shape == (D, N, n) else f1.to(f0.dtype).expand(D, *batch, n).reshape(D, N, n), f0.dtype)
    f2c = _as(f2 if f2.shape == (N, n) else f2.to(f0.dtype).expand(*batch, n).reshape(N, n), f0.dtype)
    wc = _as(w, f0.dtype)
    bc = _as(b, f0.dtype) if b is not None else wc
    g0 = torch.empty((N, m), dtype=f0.dtype, device=f0.device)
    g1 = torch.empty((D, N, m), dtype=f0.dtype, device=f0.device)
    g2 = torch.empty((N, m), dtype=f0.dtype, device=f0.device)
    if N and m:
        prec = _precision_code(precision)
        _launch(_lap_kernel, _k.laplacian_layer_kernel, _grid(N, m),
                (f0c, f1c, f2c, wc, bc, g0, g1, g2, N, n, m, D, f1c.stride(0), f0c.stride(0),
                 wc.stride(0), wc.stride(1), g1.stride(0), g0.stride(0)),
                dict(ACTIVATION=act, HAS_BIAS=b is not None, PRECISION=prec, **_blocks(DIRS=_INTERP_DIRS)),
                ("laplacian", N, n, m, prec, act, f0.dtype), n,
                lambda: _untuned(_prune_laplacian(LAPLACIAN_CONFIGS, {})))
    if flat:
        return LaplacianJet(g0, g1, g2)
    return LaplacianJet(g0.reshape(*batch, m), g1.reshape(D, *batch, m), g2.reshape(*batch, m))


# -- specializations, for compiling without a GPU (tests/triton/ttir_*.py) -----------------

_SPEC_BLOCKS = {"BLOCK_N": 64, "BLOCK_M": 64, "BLOCK_K": 32}
_SPEC_DIRS = 2


def _spec_constexprs(activation, has_bias, precision, blocks, even_k) -> dict:
    if precision not in _k.PRECISIONS:
        raise ValueError(f"precision {precision!r} (expected one of {', '.join(_k.PRECISIONS)})")
    return {"ACTIVATION": _activation_code(activation), "HAS_BIAS": bool(has_bias),
            "PRECISION": _k.PRECISIONS[precision], **_SPEC_BLOCKS, **(blocks or {}),
            "EVEN_K": bool(even_k)}


def jet_layer_spec(K: int, activation=None, has_bias: bool = True, precision: str = "ieee",
                   dtype: str = "fp32", blocks: dict | None = None, even_k: bool = False):
    """(kernel, signature, constexprs) of one :func:`jet_layer` specialization: what
    ``triton.compile(ASTSource(kernel, signature + constexprs, constexprs))`` needs.
    ``blocks`` overrides the block sizes; ``even_k``: n is a multiple of BLOCK_K."""
    sig = {name: f"*{dtype}" for name in ("X", "W", "B", "Y")}
    sig.update({name: "i32" for name in ("N", "n", "m", "stride_xk", "stride_xn", "stride_wm",
                                         "stride_wn", "stride_yk", "stride_yn")})
    constexprs = _spec_constexprs(activation, has_bias, precision, blocks, even_k)
    return _k.jet_layer_kernel, sig, {"K": int(K), **constexprs}


def laplacian_layer_spec(activation=None, has_bias: bool = True, precision: str = "ieee",
                         dtype: str = "fp32", blocks: dict | None = None, even_k: bool = False):
    """(kernel, signature, constexprs) of one :func:`laplacian_layer` specialization
    (``blocks`` may also set DIRS, 2 by default)."""
    sig = {name: f"*{dtype}" for name in ("F0", "F1", "F2", "W", "B", "G0", "G1", "G2")}
    sig.update({name: "i32" for name in ("N", "n", "m", "D", "stride_f1d", "stride_fn",
                                         "stride_wm", "stride_wn", "stride_g1d", "stride_gn")})
    constexprs = _spec_constexprs(activation, has_bias, precision, {"DIRS": _SPEC_DIRS, **(blocks or {})}, even_k)
    return _k.laplacian_layer_kernel, sig, constexprs
