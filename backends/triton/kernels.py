"""Triton kernels of ``jet.layer`` (``taylor.layer``): ``activation(W x + b)`` on a jet or a
Laplacian jet, the matmul and the activation's Taylor recurrence in ONE kernel.

Each program owns a (BLOCK_N rows x BLOCK_M output columns) tile (:func:`_tile_of`: the
column blocks of a row block are neighbouring programs). It runs the tiled matmul
of every part of the jet over the n-loop (f32 accumulators in registers), then applies the
activation's coefficient recurrence to the accumulators in the epilogue, and stores each
output tile once: no intermediate global store/load between the matmul and the activation.

* :func:`jet_layer_kernel`: X (K+1, N, n) normalized Taylor coefficients (docs/jets.md),
  W (m, n), optional b (m,), Y (K+1, N, m). K+1 ``tl.dot`` per n-step (one per
  coefficient, K+1 accumulators), bias on coefficient 0, then the ODE recurrence of the
  activation (``y' = g x'``: ``y_k = (1/k) sum_(j=1..k) j x_j g_(k-j)``):
  tanh (g = 1 - y^2, g_0 = sech^2 x_0 = 4e/(1+e)^2, e = exp(-2|x_0|)),
  sigmoid (g = y (1 - y), g_0 = e/(1+e)^2, e = exp(-|x_0|)), exp (y_k = e^(x_0) z_k with
  z = exp(x - x_0): z' = z x', z_0 = 1, so an overflowed e^(x_0) gives +-inf, not NaN),
  sin/cos (coupled: s' = c x', c' = -s x'), softplus (g = the sigmoid jet to order K-1;
  y_0 = max(x_0, 0) + log1p(exp(-|x_0|))), relu (y_k = [x_0 > 0] x_k), and the implicit
  recurrences of log (x y' = x') and sqrt (y^2 = x), with the rules' NaN where they have no
  value (log of x_0 < 0; sqrt at x_0 = 0 unless the jet rests there), and neg.
* :func:`laplacian_layer_kernel`: the collapsed (forward-Laplacian) jet f0 (N, n),
  f1 (D, N, n), f2 (N, n) -> g0 (N, m), g1 (D, N, m), g2 (N, m): one n-loop of the f0 and
  f2 dots (+ b on f0) gives (c0, c1, c2) = (phi, phi', phi''/2) and y2 = W f2; then the
  directions DIRS at a time (DIRS dots per n-step on one W tile): y1 = W f1_d,
  sq += y1^2, store c1 y1; then store c1 y2 + c2 sq (exp: e (y2 + sq/2), and e y1, with
  e^u 0 = 0 where e overflowed: the collapsed exp rule of backends/common/taylor.py; sqrt:
  the constant 0 where the input rests at 0, the rule's ``_zero_at_rest``).

Tensors may be float32, bfloat16 or float16: tiles are widened to fp32 as they are loaded,
PRECISION alone decides the dot's operand precision, and results are rounded to the
output's dtype as they are stored.

Constexprs: K (jet order), ACTIVATION (:data:`ACTIVATIONS`), HAS_BIAS, PRECISION
(:data:`PRECISIONS`: 0 IEEE fp32 dots, the default; 1 TF32; 2 bf16 operands; 4 3xTF32,
each tile split once per k-step by :func:`_operand`; 3 and 5 the interpreter's bf16 and
TF32, :data:`INTERPRETER_PRECISIONS`), the block sizes, EVEN_K (n a
multiple of BLOCK_K: no k-masks in the loop) and, for the Laplacian, DIRS. tanh is built
from ``tl.exp`` (``tl.math`` has no tanh; libdevice's returns None under the interpreter).

The kernels live in this imported file (not generated strings) so that ``triton.compile``
of an ``ASTSource`` works without a GPU (tests/triton/ttir_check.py). Tuples of tensors
carry the K+1 accumulators through the loop (triton >= 3.3 frontend).
"""

from __future__ import annotations

import triton
import triton.language as tl

ACT_NONE: int = 0
ACT_TANH: int = 1
ACT_SIGMOID: int = 2
ACT_RELU: int = 3
ACT_SOFTPLUS: int = 4
ACT_SIN: int = 5
ACT_COS: int = 6
ACT_EXP: int = 7
ACT_LOG: int = 8
ACT_SQRT: int = 9
ACT_NEG: int = 10

ACTIVATIONS = {None: ACT_NONE, "tanh": ACT_TANH, "sigmoid": ACT_SIGMOID, "relu": ACT_RELU,
               "softplus": ACT_SOFTPLUS, "sin": ACT_SIN, "cos": ACT_COS, "exp": ACT_EXP,
               "log": ACT_LOG, "sqrt": ACT_SQRT, "neg": ACT_NEG}
"""IR activation name (without the ``geo.`` prefix) -> the ACTIVATION constexpr."""


PRECISIONS = {"ieee": 0, "tf32": 1, "bf16": 2, "tf32x3": 4}
"""Dot precision name (geomir.backends.triton.PRECISIONS) -> the PRECISION constexpr: fp32
IEEE products (the default), TF32 tensor-core products, 3xTF32 (fp32-accurate products on
tensor cores), or operands rounded to bfloat16. Accumulation is fp32 in all."""

INTERPRETER_PRECISIONS = {1: 5, 2: 3}
"""PRECISION -> the code that emulates it under the interpreter (layer.py maps it there),
whose ``tl.dot`` ignores ``input_precision`` (always IEEE products) and returns garbage for
bf16 operands (triton 3.9). Both emulations reduce the operands as the GPU does, then
multiply as fp32 (exact products: the GPU's numbers up to the summation order):
3 (bf16) rounds them to bfloat16; 5 (TF32) truncates them to TF32 (:func:`_tf32_trunc`).
3xTF32 (4) needs none: its operands are TF32 halves already, so IEEE products are its
tensor cores' products."""


@triton.jit
def _at_least(x, lo):
    """max(x, lo) keeping NaN, as torch.clamp does (tl.maximum's default, arith.maxnumf,
    drops NaN on the GPU and in the 3.9 interpreter)."""
    return tl.maximum(x, lo, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _tf32_round(x):
    """x rounded to TF32 (10-bit mantissa), to nearest with ties away from zero, as
    ``cvt.rna.tf32.f32`` does: add half a TF32 ulp to the magnitude bits, then truncate."""
    bits = x.to(tl.uint32, bitcast=True)
    return ((bits + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)


@triton.jit
def _tf32_trunc(x):
    """x truncated to TF32 (its low 13 mantissa bits cleared): the operand a TF32 tensor-core
    dot reads from an fp32 register (Triton inserts no rounding; triton-lang/triton#4574).
    inf and NaN stay (a quiet NaN keeps its top mantissa bit)."""
    return (x.to(tl.uint32, bitcast=True) & 0xFFFFE000).to(tl.float32, bitcast=True)


@triton.jit
def _operand(x, PRECISION: tl.constexpr):
    """A loaded fp32 tile in the form the dots take: for 3xTF32 (PRECISION 4) the pair
    (hi, lo) of TF32 halves, x = hi + lo to about 2^-22 (non-finite x: (x, 0), so inf
    stays inf and no NaN appears); otherwise (x, x), lo unused. A kernel splits each tile
    once, however many dots share it (the W tile of a jet layer feeds K+1)."""
    if PRECISION == 4:
        finite = tl.abs(x) < float("inf")
        xf = tl.where(finite, x, 0.0)
        hi = _tf32_round(xf)
        return tl.where(finite, hi, x), _tf32_round(xf - hi)
    else:
        return x, x


@triton.jit
def _dot_acc(a, b, acc, PRECISION: tl.constexpr):
    """acc + a b for operands from :func:`_operand`; 3xTF32 accumulates the small products
    first (lo hi, hi lo, then hi hi) on the tensor cores."""
    if PRECISION == 4:
        return _tf32x3_acc(a, b, acc)
    else:
        return acc + _dot(a[0], b[0], PRECISION)


@triton.jit
def _tf32x3_acc(a, b, acc):
    """acc + a b from (hi, lo) TF32 halves: three chained TF32 dots, small products first."""
    acc = tl.dot(a[1], b[0], acc, input_precision="tf32")
    acc = tl.dot(a[0], b[1], acc, input_precision="tf32")
    return tl.dot(a[0], b[0], acc, input_precision="tf32")


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr):
    """a b with fp32 accumulation at the given operand precision (module docstring)."""
    if PRECISION == 2:
        r = tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
    elif PRECISION == 3:
        r = tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32),
                   input_precision="ieee")
    elif PRECISION == 5:
        r = tl.dot(_tf32_trunc(a), _tf32_trunc(b), input_precision="ieee")
    elif PRECISION == 1:
        r = tl.dot(a, b, input_precision="tf32")
    elif PRECISION == 4:
        r = _tf32x3_acc(_operand(a, 4), _operand(b, 4), tl.zeros((a.shape[0], b.shape[1]), dtype=tl.float32))
    else:
        r = tl.dot(a, b, input_precision="ieee")
    return r


@triton.jit
def _log1p(e):
    """log(1 + e) for e >= 0, accurate for tiny e (Goldberg's trick: the rounding error of
    1 + e cancels in log(w) e / (w - 1)); e itself where 1 + e rounds to 1."""
    w = 1.0 + e
    d = w - 1.0
    return tl.where(d == 0.0, e, tl.log(w) * (e / tl.where(d == 0.0, 1.0, d)))


@triton.jit
def _tanh_abs(a, e):
    """tanh(a) for a >= 0 from e = exp(-2a), as -m/(2 + m) with m = expm1(-2a) by Kahan's
    trick m = (e - 1) x / log(e), x = -2a (the rounding of e cancels): a few ulps for every
    a, where the plain (1 - e)/(1 + e) loses eps/(2a) near 0. m = x where e rounds to 1,
    -1 where e - 1 does."""
    x = -2.0 * a
    d = e - 1.0
    safe = (d == 0.0) | (d == -1.0)
    m = tl.where(d == 0.0, x, tl.where(d == -1.0, -1.0, d * (x / tl.log(tl.where(safe, 0.5, e)))))
    return -m / (2.0 + m)


@triton.jit
def _padded(u, ok, ACTIVATION: tl.constexpr):
    """u, with 1.0 in the lanes outside ``ok`` (padding rows and columns, never stored) when
    the activation is log: their u is 0, and log 0 and 1/0 there, harmless on the GPU, make
    the interpreter's numpy warn (divide by zero) though every real input is positive. Other
    activations take u as it is (no instruction added)."""
    if ACTIVATION == 8:
        u = tl.where(ok, u, 1.0)
    return u


@triton.jit
def _act012(u, ACTIVATION: tl.constexpr):
    """(phi(u), phi'(u), phi''(u)/2) without cancellation when saturated."""
    if ACTIVATION == 1:  # tanh: t, g = sech^2 = 4e/(1+e)^2 (e = exp(-2|u|)), -t g
        e = tl.exp(-2.0 * tl.abs(u))
        t = _tanh_abs(tl.abs(u), e)
        t = tl.where(u < 0.0, -t, t)
        g = 4.0 * e / ((1.0 + e) * (1.0 + e))
        c2 = -t * g
    elif ACTIVATION == 2:  # sigmoid: s, g = s(1-s) = e/(1+e)^2 (e = exp(-|u|)), g (1 - 2s)/2
        e = tl.exp(-tl.abs(u))
        t = tl.where(u >= 0.0, 1.0, e) / (1.0 + e)
        g = e / ((1.0 + e) * (1.0 + e))
        c2 = 0.5 * g * (1.0 - 2.0 * t)
    elif ACTIVATION == 3:  # relu: max(u, 0), [u > 0], 0 (0 at the kink, as autodiff);
        # NaN stays NaN (the torch rule's where(u <= 0, 0, u)), never a silent 0
        neg = u <= 0.0
        t = tl.where(neg, 0.0, u)
        g = tl.where(neg, 0.0, 1.0)
        c2 = 0.0 * g  # 0 also where u is NaN (the torch rule's phi''/2 along (u, 1))
    elif ACTIVATION == 4:  # softplus: max(u,0) + log1p(e), sigmoid, sigmoid'/2 (e = exp(-|u|))
        e = tl.exp(-tl.abs(u))
        t = _at_least(u, 0.0) + _log1p(e)
        g = tl.where(u >= 0.0, 1.0, e) / (1.0 + e)
        c2 = 0.5 * e / ((1.0 + e) * (1.0 + e))
    elif ACTIVATION == 5:  # sin
        t = tl.sin(u)
        g = tl.cos(u)
        c2 = -0.5 * t
    elif ACTIVATION == 6:  # cos
        t = tl.cos(u)
        g = -tl.sin(u)
        c2 = -0.5 * t
    elif ACTIVATION == 8:  # log: log u, 1/u, -1/(2u^2); NaN all three where u < 0 (the rule)
        t = tl.log(u)
        u0 = tl.where(u < 0.0, float("nan"), u)
        g = 1.0 / u0
        c2 = (-0.5 * g) / u0
    elif ACTIVATION == 9:  # sqrt: s, 1/(2s), -(1/(2s))^2/(2s); NaN phi', phi'' at u = 0 (the
        # rule: no finite value where the input moves; the Laplacian kernel zeroes rest)
        t = tl.sqrt(u)
        two_t = tl.where(u == 0.0, 1.0, 2.0 * t)
        g = tl.where(u == 0.0, float("nan"), 1.0 / two_t)
        c2 = (-g * g) / two_t
    elif ACTIVATION == 10:  # neg
        t = -u
        g = tl.zeros_like(u) - 1.0
        c2 = 0.0 * u
    else:  # exp
        t = tl.exp(u)
        g = t
        c2 = 0.5 * t
    return t, g, c2


@triton.jit
def _exp_times(e, z):
    """e z for e = exp(u) that may have overflowed (``taylor.exp_times``): 0 where z is
    exactly 0 and e is inf (e^u 0 = 0, not IEEE's NaN), +-inf by z's sign elsewhere."""
    return tl.where((z == 0.0) & (e == float("inf")), 0.0, e * z)


@triton.jit
def _cauchy_square(ys, k: tl.constexpr):
    """sum_(j=1..k-1) y_j y_(k-j) (k >= 2), by symmetry 2 sum_(1<=j<k/2) y_j y_(k-j) (+ y_(k/2)^2):
    ``taylor._csq(y, k, lo=1)``."""
    if k % 2 == 0:
        s = ys[k // 2] * ys[k // 2]
        if k > 2:
            q = ys[1] * ys[k - 1]
            for j in tl.static_range(2, (k + 1) // 2):
                q += ys[j] * ys[k - j]
            s = 2.0 * q + s
    else:
        q = ys[1] * ys[k - 1]
        for j in tl.static_range(2, (k + 1) // 2):
            q += ys[j] * ys[k - j]
        s = 2.0 * q
    return s


@triton.jit
def _integ(u, gs, k: tl.constexpr):
    """(1/k) sum_(j=1..k) j u_j g_(k-j): coefficient k of y from y' = g x'."""
    s = u[1] * gs[k - 1]
    for j in tl.static_range(2, k + 1):
        s += j * u[j] * gs[k - j]
    if k > 1:
        s = s * (1.0 / k)
    return s


@triton.jit
def _quadratic_ode(u, K: tl.constexpr, ACTIVATION: tl.constexpr):
    """tanh (1) or sigmoid (2) on the tuple u of (at least) K+1 coefficient tiles:
    y_k = (1/k) sum_(j=1..k) j u_j g_(k-j), with g_m = -sum_i y_i y_(m-i) (tanh) or
    g_m = y_m - sum_i y_i y_(m-i) (sigmoid). Returns the tuple of the K+1 y_k."""
    y0, g0, _c2 = _act012(u[0], ACTIVATION)
    ys = (y0,)
    gs = (g0,)
    for k in tl.static_range(1, K + 1):
        ys = ys + (_integ(u, gs, k),)
        if k < K:  # g_k from y_0..y_k: 2 sum_(i < k/2) y_i y_(k-i) + [k even] y_(k/2)^2
            q = ys[0] * ys[k]
            for i in tl.static_range(1, (k + 1) // 2):
                q += ys[i] * ys[k - i]
            q = 2.0 * q
            if k % 2 == 0:
                q += ys[k // 2] * ys[k // 2]
            if ACTIVATION == 1:
                gk = -q
            else:
                gk = ys[k] - q
            gs = gs + (gk,)
    return ys


@triton.jit
def _ode_epilogue(u, K: tl.constexpr, ACTIVATION: tl.constexpr):
    """The activation's normalized Taylor recurrence on the tuple u of K+1 coefficient
    tiles (the rules of backends/common/taylor.py); returns the tuple of the K+1 y_k.
    Every ODE rule is y' = g x', so y_k = (1/k) sum_(j=1..k) j u_j g_(k-j):
    tanh/sigmoid g from y (:func:`_quadratic_ode`); exp g = y; sin/cos coupled
    (s' = c x', c' = -s x'); softplus g = the sigmoid jet of u to order K-1;
    relu y_k = [u_0 > 0] u_k (u_k where u_0 is NaN)."""
    if ACTIVATION == 1 or ACTIVATION == 2:
        ys = _quadratic_ode(u, K, ACTIVATION)
    elif ACTIVATION == 3:
        neg = u[0] <= 0.0  # a NaN u_0 passes u through, as the torch rule does
        ys = ()
        for k in tl.static_range(K + 1):
            ys = ys + (tl.where(neg, 0.0, u[k]),)
    elif ACTIVATION == 5 or ACTIVATION == 6:
        ss = (tl.sin(u[0]),)
        cs = (tl.cos(u[0]),)
        for k in tl.static_range(1, K + 1):
            s = _integ(u, cs, k)
            c = -_integ(u, ss, k)
            ss = ss + (s,)
            cs = cs + (c,)
        if ACTIVATION == 5:
            ys = ss
        else:
            ys = cs
    elif ACTIVATION == 4:  # softplus: g = sigmoid jet (order K-1)
        y0, _g, _c2 = _act012(u[0], ACTIVATION)
        ys = (y0,)
        gs = _quadratic_ode(u, K - 1, 2)
        for k in tl.static_range(1, K + 1):
            ys = ys + (_integ(u, gs, k),)
    elif ACTIVATION == 8:  # log: y_k = (u_k - sum_(j=1..k-1) (j/k) y_j u_(k-j)) / u_0, NaN u_0 < 0
        u0 = tl.where(u[0] < 0.0, float("nan"), u[0])
        ys = (tl.log(u[0]),)
        for k in tl.static_range(1, K + 1):
            s = u[k]
            for j in tl.static_range(1, k):
                s = s - (j / k) * (ys[j] * u[k - j])
            ys = ys + (s / u0,)
    elif ACTIVATION == 9:  # sqrt: y_k = (u_k - sum_(j=1..k-1) y_j y_(k-j)) / (2 y_0); at u_0 = 0
        # the zero jet where u rests there (u_1..u_k = 0), NaN where it moves (the rule)
        y0 = tl.sqrt(u[0])
        at_zero = u[0] == 0.0
        two_y0 = tl.where(at_zero, 1.0, 2.0 * y0)
        ys = (y0,)
        for k in tl.static_range(1, K + 1):
            s = u[k]
            if k == 1:
                moving = u[1] != 0.0
            else:
                s = s - _cauchy_square(ys, k)
                moving = moving | (u[k] != 0.0)
            ys = ys + (tl.where(at_zero & moving, float("nan"), s / two_y0),)
    elif ACTIVATION == 10:  # neg
        ys = ()
        for k in tl.static_range(K + 1):
            ys = ys + (-u[k],)
    else:  # exp (7): y_k = e^(u_0) z_k, z = exp(u - u_0) (z' = z u', z_0 = 1), as the rule
        e = tl.exp(u[0])
        zs = (tl.zeros_like(e) + 1.0,)
        for k in tl.static_range(1, K + 1):
            zs = zs + (_integ(u, zs, k),)
        ys = (e,)
        for k in tl.static_range(1, K + 1):
            ys = ys + (_exp_times(e, zs[k]),)
    return ys


@triton.jit
def _tile_of(pid, m, BLOCK_M: tl.constexpr):
    """(row block, column block) of program ``pid`` on a 1-D grid, column blocks fastest:
    the programs that run together share their rows of X, so each row block is read from
    DRAM about once and from L2 by its other column blocks (W, m x n, stays in L2)."""
    num_m = tl.cdiv(m, BLOCK_M)
    return pid // num_m, pid % num_m


@triton.jit
def _k_masks(i, ks, n, row_ok, col_ok, EVEN_K: tl.constexpr):
    """The load masks of the A (rows x k) and W (k x cols) tiles at k-offset i; with EVEN_K
    (n a multiple of BLOCK_K) no k-mask, only the rows' and columns' (broadcast by tl.load)."""
    if EVEN_K:
        a_ok = row_ok[:, None]
        w_ok = col_ok[None, :]
    else:
        k_ok = (i + ks) < n
        a_ok = row_ok[:, None] & k_ok[None, :]
        w_ok = k_ok[:, None] & col_ok[None, :]
    return a_ok, w_ok


@triton.jit
def jet_layer_kernel(
    X, W, B, Y,
    N, n, m,
    stride_xk, stride_xn,
    stride_wm, stride_wn,
    stride_yk, stride_yn,
    K: tl.constexpr, ACTIVATION: tl.constexpr, HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr,
):
    """Y[k] = coefficient k of activation(W X + b), X a (K+1, N, n) jet; see the module.
    EVEN_K (n % BLOCK_K == 0) drops the k-masks."""
    pid_n, pid_m = _tile_of(tl.program_id(0), m, BLOCK_M)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < N
    col_ok = cols < m

    accs = ()
    for k in tl.static_range(K + 1):
        accs = accs + (tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32),)

    x_ptrs = X + rows[:, None] * stride_xn + ks[None, :]
    w_ptrs = W + cols[None, :] * stride_wm + ks[:, None] * stride_wn
    for i in range(0, n, BLOCK_K):
        x_ok, w_ok = _k_masks(i, ks, n, row_ok, col_ok, EVEN_K)
        wt = _operand(tl.load(w_ptrs + i * stride_wn, mask=w_ok, other=0.0).to(tl.float32), PRECISION)
        new = ()
        for k in tl.static_range(K + 1):
            xk = tl.load(x_ptrs + k * stride_xk + i, mask=x_ok, other=0.0).to(tl.float32)
            new = new + (_dot_acc(_operand(xk, PRECISION), wt, accs[k], PRECISION),)
        accs = new

    if HAS_BIAS:
        bias = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
        accs = (accs[0] + bias[None, :],) + accs[1:]

    out_ok = row_ok[:, None] & col_ok[None, :]
    if ACTIVATION != 0:
        accs = _ode_epilogue((_padded(accs[0], out_ok, ACTIVATION),) + accs[1:], K, ACTIVATION)

    y_ptrs = Y + rows[:, None] * stride_yn + cols[None, :]
    for k in tl.static_range(K + 1):
        tl.store(y_ptrs + k * stride_yk, accs[k].to(Y.dtype.element_ty), mask=out_ok)


@triton.jit
def laplacian_layer_kernel(
    F0, F1, F2, W, B, G0, G1, G2,
    N, n, m, D,
    stride_f1d, stride_fn,
    stride_wm, stride_wn,
    stride_g1d, stride_gn,
    ACTIVATION: tl.constexpr, HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
    DIRS: tl.constexpr, EVEN_K: tl.constexpr,
):
    """The collapsed layer: (g0, g1, g2) = activation(W (f0, f1, f2) + b); see the module.
    F0, F2 (N, n) and every F1[d] share the row stride stride_fn; G0, G2 and G1[d] share
    stride_gn. One n-loop computes W f0 and W f2 (one W tile per step); then the
    directions go DIRS at a time, each n-step's W tile shared by DIRS dots (directions
    past D are masked: their tiles are zero and nothing is stored). sq sums y1^2 in the
    order d = 0..D-1 whatever DIRS is. EVEN_K (n % BLOCK_K == 0) drops the k-masks."""
    pid_n, pid_m = _tile_of(tl.program_id(0), m, BLOCK_M)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < N
    col_ok = cols < m
    out_ok = row_ok[:, None] & col_ok[None, :]
    out_off = rows[:, None] * stride_gn + cols[None, :]
    a_off = rows[:, None] * stride_fn + ks[None, :]
    w_ptrs = W + cols[None, :] * stride_wm + ks[:, None] * stride_wn

    y0 = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    y2 = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for i in range(0, n, BLOCK_K):
        a_ok, w_ok = _k_masks(i, ks, n, row_ok, col_ok, EVEN_K)
        wt = _operand(tl.load(w_ptrs + i * stride_wn, mask=w_ok, other=0.0).to(tl.float32), PRECISION)
        a0 = tl.load(F0 + a_off + i, mask=a_ok, other=0.0).to(tl.float32)
        a2 = tl.load(F2 + a_off + i, mask=a_ok, other=0.0).to(tl.float32)
        y0 = _dot_acc(_operand(a0, PRECISION), wt, y0, PRECISION)
        y2 = _dot_acc(_operand(a2, PRECISION), wt, y2, PRECISION)
    if HAS_BIAS:
        bias = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
        y0 += bias[None, :]
    if ACTIVATION != 0:
        c0, c1, c2 = _act012(_padded(y0, out_ok, ACTIVATION), ACTIVATION)
    else:
        c0 = y0
    tl.store(G0 + out_off, c0.to(G0.dtype.element_ty), mask=out_ok)

    sq = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for d0 in range(0, D, DIRS):
        accs = ()
        d_oks = ()  # directions past D: masked (tensors: the interpreter's masks must be)
        for j in tl.static_range(DIRS):
            accs = accs + (tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32),)
            d_oks = d_oks + (((rows * 0 + (d0 + j)) < D)[:, None],)
        for i in range(0, n, BLOCK_K):
            a_ok, w_ok = _k_masks(i, ks, n, row_ok, col_ok, EVEN_K)
            wt = _operand(tl.load(w_ptrs + i * stride_wn, mask=w_ok, other=0.0).to(tl.float32), PRECISION)
            new = ()
            for j in tl.static_range(DIRS):
                a = tl.load(F1 + (d0 + j) * stride_f1d + a_off + i, mask=a_ok & d_oks[j],
                            other=0.0).to(tl.float32)
                new = new + (_dot_acc(_operand(a, PRECISION), wt, accs[j], PRECISION),)
            accs = new
        for j in tl.static_range(DIRS):
            y1 = accs[j]
            if ACTIVATION == 10:  # neg: linear, -y1 and -y2 (no sq: the rule maps each part)
                y1 = -y1
            elif ACTIVATION != 0:
                sq += y1 * y1
                if ACTIVATION == 7:
                    y1 = _exp_times(c1, y1)
                else:
                    y1 = c1 * y1
            tl.store(G1 + (d0 + j) * stride_g1d + out_off, y1.to(G1.dtype.element_ty),
                     mask=out_ok & d_oks[j])

    if ACTIVATION == 7:  # exp: e (y2 + sq/2), e applied last (+-inf where e overflows, not NaN)
        g2 = _exp_times(c1, y2 + 0.5 * sq)
    elif ACTIVATION == 10:
        g2 = -y2
    elif ACTIVATION != 0:
        g2 = c1 * y2 + c2 * sq
    else:
        g2 = y2
    if ACTIVATION == 9:  # sqrt: the constant 0 where the input rests at 0 (f0, f1, f2 all 0;
        # the collapsed rule's _zero_at_rest): g2 here, and G1 (stored above with phi' = NaN
        # there) overwritten by the same program after a barrier. Rest is rare: few lanes store.
        rest = (y0 == 0.0) & (sq == 0.0) & (y2 == 0.0)
        g2 = tl.where(rest, 0.0, g2)
        tl.debug_barrier()
        zero = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32).to(G1.dtype.element_ty)
        for d in range(0, D):
            tl.store(G1 + d * stride_g1d + out_off, zero, mask=out_ok & rest)
    tl.store(G2 + out_off, g2.to(G2.dtype.element_ty), mask=out_ok)
