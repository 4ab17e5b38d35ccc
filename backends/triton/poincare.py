"""Fused Triton kernel of one hyperbolic layer on the Poincaré ball (Ganea et al. 2018):

    y = mobius_add(mobius_matvec(W, x), b)            (b optional, a point on the ball)
    y = expmap0(act(logmap0(y)))                      (if an activation is given)

with the formulas, clamps and constants of the torch runtime
(``geomir.backends.common.manifolds.PoincareBall``; docs/numerics.md), so the numbers are
the torch target's. Per row, with delta(x) = max(1 - c|x|^2, min_delta):

    logmap0(x)  = asinhc(c|x|^2 / delta) / sqrt(delta) * x      a per-row scale s(x) of x
    W logmap0(x) = s(x) (x W^T)                                 ONE tiled tl.dot, |x|^2 alongside
    expmap0(v)  = proj(tanhc(c|v|^2) v)                  (c|v|^2 = inf: maxnorm v/|v|, from 2^-70 v)
    x (+) b     = proj((c|x+b|^2 x + delta_x (x+b)) / max(c|x+b|^2 + delta_x delta_b, tiny))
    proj(y)     = y * min(1, (1 - ball_eps) / (sqrt(c) |y|))

where tanhc(q) = tanh(z)/z and asinhc(q) = asinh(z)/z at z = sqrt(q), by their series
1 + a q + b q^2 below ``series_q`` (exact there to rounding) and the direct quotient above.
Each program owns BLOCK_N whole output rows (BLOCK_M >= m), so every row norm is a
register reduction; the epilogue runs after the n-loop, in the same kernel, and the output
tile is stored once. Widths m <= 1024 (:data:`MAX_WIDTH`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from geomir.backends.common.manifolds import CONSTANTS

from . import kernels as _k
from .layer import INTERPRET, _activation_code, _launch, _precision_code

ACTIVATIONS = _k.ACTIVATIONS
"""Activations between logmap0 and expmap0 (the jet-layer kernels' table)."""
MAX_WIDTH = 1024
"""The widest output row one program holds (the row norms are reduced in registers)."""


@triton.jit
def _tanhc(q, series_q):
    """tanh(z)/z at z = sqrt(q) >= 0: series below series_q, ``kernels._tanh_abs``/z above
    (a few ulps; the plain (1 - e)/(1 + e) lost eps/(2z) just above the switch)."""
    small = q < series_q
    z = tl.sqrt(tl.where(small, 1.0, q))
    direct = _k._tanh_abs(z, tl.exp(-2.0 * z)) / z
    series = 1.0 + q * (-1.0 / 3.0 + q * (2.0 / 15.0))  # manifolds.TANHC
    return tl.where(small, series, direct)


@triton.jit
def _asinhc(q, series_q):
    """asinh(z)/z at z = sqrt(q) >= 0: series below series_q; above, asinh z = log1p(w) with
    w = z + q/(1 + sqrt(1 + q)) and log1p(w) = log(v) w / (v - 1), v = 1 + w (Kahan's trick):
    a few ulps for every z (log(z + sqrt(q + 1)) lost eps/z just above the switch)."""
    small = q < series_q
    z = tl.sqrt(tl.where(small, 1.0, q))
    w = z + tl.where(small, 1.0, q) / (1.0 + tl.sqrt(1.0 + tl.where(small, 1.0, q)))
    v = 1.0 + w
    direct = tl.where(v == 1.0, w, tl.log(v) * (w / (v - 1.0))) / z
    series = 1.0 + q * (-1.0 / 6.0 + q * (3.0 / 40.0))  # manifolds.ASINHC
    return tl.where(small, series, direct)


@triton.jit
def _rowsq(y):
    return tl.sum(y * y, axis=1)


@triton.jit
def _proj(y, max_norm):
    n = tl.sqrt(_rowsq(y))
    out = n > max_norm
    return y * tl.where(out, max_norm / tl.where(out, n, 1.0), 1.0)[:, None]


@triton.jit
def _logmap0_scale(y2, c, min_delta, series_q):
    """s with logmap0(y) = s y, from y2 = |y|^2."""
    d = _k._at_least(1.0 - c * y2, min_delta)
    return _asinhc(c * y2 / d, series_q) / tl.sqrt(d)


@triton.jit
def _expmap0(v, c, max_norm, series_q):
    """proj(tanhc(c|v|^2) v). Where c|v|^2 overflows (weights so large that |W x|^2 does),
    the row is scaled by 2^-70 instead (|2^-70 v|^2 < 2^126 for the m <= 1024 fp32 entries)
    and taken to the sphere of radius max_norm: the runtime's maxnorm v/|v|
    (backends/common/manifolds.py, PoincareBall.expmap0). tanhc(inf) = 0 gave 0. One compare,
    one select and one or per row; the NaN of a NaN row stays (the compare is false)."""
    q = c * _rowsq(v)
    huge = q > 3.4028234663852886e38  # q = inf
    y = v * tl.where(huge, 8.470329472543003e-22, _tanhc(q, series_q))[:, None]
    n = tl.sqrt(_rowsq(y))
    out = (n > max_norm) | huge
    return y * tl.where(out, max_norm / tl.where(out, n, 1.0), 1.0)[:, None]


@triton.jit
def poincare_layer_kernel(
    X, W, B, Y,
    N, n, m,
    stride_xn, stride_wm, stride_wn, stride_yn,
    c, max_norm, min_delta, tiny, series_q,
    ACTIVATION: tl.constexpr, HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """Y = the layer of the module docstring on X (N, n), W (m, n), B (m,)."""
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_M)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < N
    col_ok = cols < m

    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    x2 = tl.zeros((BLOCK_N,), dtype=tl.float32)
    x_ptrs = X + rows[:, None] * stride_xn + ks[None, :]
    w_ptrs = W + cols[None, :] * stride_wm + ks[:, None] * stride_wn
    for i in range(0, n, BLOCK_K):
        k_ok = (i + ks) < n
        xt = tl.load(x_ptrs + i, mask=row_ok[:, None] & k_ok[None, :], other=0.0).to(tl.float32)
        wt = tl.load(w_ptrs + i * stride_wn, mask=k_ok[:, None] & col_ok[None, :], other=0.0).to(tl.float32)
        x2 += tl.sum(xt * xt, axis=1)
        acc += _k._dot(xt, wt, PRECISION)

    # mobius_matvec: expmap0(s(x) x W^T)
    y = _expmap0(acc * _logmap0_scale(x2, c, min_delta, series_q)[:, None], c, max_norm, series_q)
    if HAS_BIAS:  # y (+) b
        b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
        db = _k._at_least(1.0 - c * tl.sum(b * b, axis=0), min_delta)
        dy = _k._at_least(1.0 - c * _rowsq(y), min_delta)
        s = y + b[None, :]
        cs2 = c * _rowsq(s)
        den = _k._at_least(cs2 + dy * db, tiny)
        y = _proj((cs2[:, None] * y + dy[:, None] * s) / den[:, None], max_norm)
    if ACTIVATION != 0:  # expmap0(act(logmap0(y)))
        t = y * _logmap0_scale(_rowsq(y), c, min_delta, series_q)[:, None]
        t, _g, _c2 = _k._act012(_k._padded(t, row_ok[:, None] & col_ok[None, :], ACTIVATION), ACTIVATION)
        t = tl.where(col_ok[None, :], t, 0.0)  # act(0) != 0 (sigmoid) in the padding columns
        y = _expmap0(t, c, max_norm, series_q)

    y_ptrs = Y + rows[:, None] * stride_yn + cols[None, :]
    tl.store(y_ptrs, y.to(Y.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


def _block_m(m: int) -> int:
    return max(16, triton.next_power_of_2(m))


def _configs() -> list[triton.Config]:
    return [triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=st)
            for bn, bk, w, st in [(16, 32, 4, 3), (32, 32, 4, 3), (32, 32, 8, 3), (64, 32, 8, 2)]]


def _prune(configs, named_args, **kwargs):
    """Keep the accumulator tile in registers: BLOCK_N * BLOCK_M <= 16384."""
    bm = kwargs.get("BLOCK_M", named_args.get("BLOCK_M"))
    kept = [cfg for cfg in configs if cfg.kwargs["BLOCK_N"] * bm <= 16384]
    return kept or configs[:1]


if INTERPRET:
    _kernel = poincare_layer_kernel
else:
    _kernel = triton.autotune(_configs(), key=["N", "n", "m", "PRECISION", "ACTIVATION"],
                              prune_configs_by={"early_config_prune": _prune})(poincare_layer_kernel)


def _constants(dtype: torch.dtype, c: float) -> dict:
    k = CONSTANTS[str(dtype).removeprefix("torch.")]
    return {"c": float(c), "max_norm": (1.0 - k.ball_eps) / c ** 0.5, "min_delta": k.min_delta,
            "tiny": k.tiny, "series_q": k.series_q}


def poincare_layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, c: float = 1.0,
                   activation: str | None = None, precision: str = "ieee") -> torch.Tensor:
    """The layer of the module docstring: x (*batch, n) on the ball of curvature -c, w (m, n),
    b (m,) a point -> (*batch, m), x's dtype (float32, bfloat16 or float16; computed in fp32
    with the clamps of x's dtype)."""
    act = _activation_code(activation)
    code = _precision_code(precision)
    if not (isinstance(c, (int, float)) and c > 0 and c == c and c != float("inf")):
        raise ValueError(f"triton poincare layer: curvature c must be finite and > 0, found {c}")
    if w.ndim != 2 or w.shape[1] != x.shape[-1]:
        raise ValueError(f"triton poincare layer: weight {tuple(w.shape)} does not match input width {x.shape[-1]}")
    m, n = w.shape
    if b is not None and b.shape != (m,):
        raise ValueError(f"triton poincare layer: bias {tuple(b.shape)} is not ({m},)")
    if m > MAX_WIDTH:
        raise NotImplementedError(f"triton poincare layer: output width {m} > {MAX_WIDTH} (one program holds whole rows)")
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise NotImplementedError(f"triton poincare layer: dtype {x.dtype} (float32, bfloat16, float16 only)")
    if not INTERPRET and not x.is_cuda:
        raise ValueError("triton poincare layer: tensors must be on a CUDA device "
                         "(or set TRITON_INTERPRET=1 before importing the kernels)")
    batch = x.shape[:-1]
    xs = x.reshape(-1, n).contiguous()
    N = xs.shape[0]
    wc = w.to(x.dtype).contiguous()
    bc = b.to(x.dtype).contiguous() if b is not None else wc  # dummy pointer when no bias
    y = torch.empty((N, m), dtype=x.dtype, device=x.device)
    if N and m:
        bm = _block_m(m)
        args = (xs, wc, bc, y, N, n, m, xs.stride(0), wc.stride(0), wc.stride(1), y.stride(0))
        meta = {**_constants(x.dtype, c), "ACTIVATION": act, "HAS_BIAS": b is not None,
                "PRECISION": code, "BLOCK_M": bm}
        if INTERPRET:
            _kernel[(triton.cdiv(N, 16),)](*args, **meta, BLOCK_N=16, BLOCK_K=32)
        else:
            _launch(_kernel, poincare_layer_kernel, lambda cfg: (triton.cdiv(N, cfg["BLOCK_N"]),), args, meta,
                    ("poincare", N, n, m, code, act, x.dtype), untuned=lambda: _prune(_configs(), {}, BLOCK_M=bm))
    return y.reshape(*batch, m)


def poincare_layer_spec(activation=None, has_bias: bool = True, precision: str = "ieee",
                        dtype: str = "fp32", m: int = 64, blocks: dict | None = None):
    """(kernel, signature, constexprs) of one :func:`poincare_layer` specialization, for
    compiling without a GPU (tests/triton/ttir_*.py)."""
    if precision not in _k.PRECISIONS:
        raise ValueError(f"precision {precision!r} (expected one of {', '.join(_k.PRECISIONS)})")
    sig = {name: f"*{dtype}" for name in ("X", "W", "B", "Y")}
    sig.update({name: "i32" for name in ("N", "n", "m", "stride_xn", "stride_wm", "stride_wn", "stride_yn")})
    sig.update({name: "fp32" for name in ("c", "max_norm", "min_delta", "tiny", "series_q")})
    constexprs = {"ACTIVATION": _activation_code(activation), "HAS_BIAS": bool(has_bias),
                  "PRECISION": _k.PRECISIONS[precision], "BLOCK_M": _block_m(m),
                  **(blocks or {"BLOCK_N": 16, "BLOCK_K": 32})}
    return poincare_layer_kernel, sig, constexprs
