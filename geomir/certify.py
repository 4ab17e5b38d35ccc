"""Certified numerical bounds for contract verification (numpy only).

:func:`spectral_norm_bound` is a *guaranteed* upper bound on the largest singular value
sigma_1(W), by Gram iteration (Delattre, Barthélemy, Araujo & Allauzen, "Efficient Bound
of Lipschitz Constant for Convolutional Layers by Gram Iteration", ICML 2023), with the
floating-point rounding of every step carried into the bound, so that it can never fall
below the true norm (unlike power iteration, whose estimate is a lower bound).

Gram iteration: G_0 = W, c_k = ||G_k||_F, H_k = G_k / c_k, G_(k+1) = H_k^T H_k. Then
sigma_1(G_k) = c_k sigma_1(H_k) = c_k sigma_1(G_(k+1))^(1/2), and sigma_1(G_t) <= ||G_t||_F,
so sigma_1(W) <= c_0 (c_1 (... ||G_t||_F^(1/2) ...)^(1/2))^(1/2). After t steps the bound
exceeds sigma_1 by at most a factor rank^(1/2^(t+1)) (t = 14, the default: 1.0002 for
rank 512; the worst case, all singular values equal).

Rounding (u = 2^-53, float64; the inputs are widened exactly): forming H_k = fl(G_k / c_k)
moves it by at most u ||G_k/c_k||_F in spectral norm; fl(H^T H) differs from H^T H by at
most gamma_n ||H||_F^2 (gamma_n = n u / (1 - n u), n the inner dimension); the computed
Frobenius norms are within (size + 2) u relative. :func:`spectral_norm_bound` propagates
these through the recursion above (``s_k <= c_k (sqrt(s_(k+1) + e_k) + d_k)``) and
inflates the final scalar arithmetic by a further 1e-12 relative.
"""

from __future__ import annotations

import math

import numpy as np

_U = 2.0**-53
_SCALAR_SLACK = 1.0 + 1e-12  # covers the rounding of the few scalar operations below


def _frobenius(g: np.ndarray) -> float:
    """||g||_F without overflow or underflow (scaled by max |g|), rounded up."""
    top = float(np.max(np.abs(g))) if g.size else 0.0
    if top == 0.0 or not math.isfinite(top):
        return top
    value = top * float(np.sqrt(np.sum(np.square(g / top))))
    return value * (1.0 + (g.size + 4) * _U)


def spectral_norm_bound(w, iterations: int = 14) -> float:
    """A guaranteed upper bound on sigma_1(w) (the spectral norm) of a 2-D array.

    Raises ValueError for non-finite entries (no bound exists)."""
    g = np.asarray(w, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"spectral_norm_bound: a 2-D array is expected, found shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("spectral_norm_bound: the matrix has non-finite entries")
    if g.shape[0] < g.shape[1]:
        g = g.T  # same singular values; H^T H is then the smaller Gram matrix
    scales: list[tuple[float, float, float]] = []  # (c_k, d_k, e_k) per step
    for _ in range(iterations):
        c = _frobenius(g)
        if c == 0.0:
            break
        h = g / c
        n = h.shape[0]
        gamma = n * _U / (1.0 - n * _U)
        size_err = (h.size + 4) * _U
        d = _U * (1.0 + size_err) * 2.0  # ||fl(G/c) - G/c||_2 (||G/c||_F <= 1 + size_err)
        e = gamma * (1.0 + d + size_err) ** 2  # ||fl(H^T H) - H^T H||_2
        scales.append((c, d, e))
        g = h.T @ h
    s = _frobenius(g)  # sigma_1 of the last matrix <= its Frobenius norm
    for c, d, e in reversed(scales):
        s = c * (math.sqrt(s + e) + d)
    return s * _SCALAR_SLACK


def _norm(x: np.ndarray) -> float:
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return top * float(np.sqrt(np.sum(np.square(x / top)))) if top > 0.0 else 0.0


def spectral_norm_lower(w, iterations: int = 50, seed: int = 0) -> float:
    """A lower bound on sigma_1(w) by power iteration: |W v| / |v| for the final v (any v
    gives a lower bound; the iteration makes it tight). For tightness reports."""
    a = np.asarray(w, dtype=np.float64)
    if a.size == 0:
        return 0.0
    top = float(np.max(np.abs(a)))
    if top == 0.0 or not np.isfinite(top):
        return 0.0 if top == 0.0 else top
    # iterate on a / top (entries in [-1, 1]): subnormal or huge entries would lose their
    # relative precision in the products; sigma_1 scales back exactly
    return top * _power_lower(a / top, iterations, seed)


def _power_lower(a: np.ndarray, iterations: int, seed: int) -> float:
    v = np.random.default_rng(seed).standard_normal(a.shape[1])
    best = 0.0
    for _ in range(iterations):
        nv = _norm(v)
        if nv == 0.0:
            break
        v = v / nv
        av = a @ v
        best = max(best, _norm(av) * (1.0 - 4 * a.shape[1] * _U))
        v = a.T @ (av / max(_norm(av), np.finfo(np.float64).tiny))
    return best


# --- Lipschitz bounds of layered networks ---------------------------------------------------

SLOPES: dict[str, tuple[float, float] | None] = {
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 0.25),
    "relu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "sin": (-1.0, 1.0),
    "cos": (-1.0, 1.0),
    "neg": (-1.0, -1.0),
    "exp": None,  # unbounded slope: not globally Lipschitz
    "log": None,
    "sqrt": None,
}
"""Range [alpha, beta] of an elementwise activation's derivative (None: unbounded).
One row per primitive; the bounds below are sound for any function whose (Clarke)
derivative stays in the range."""


_ETA = 2.0**-1074  # the smallest subnormal: a bound on a product's underflow error


def _product_error(a: np.ndarray, b: np.ndarray) -> float:
    """A bound on ||fl(a @ b) - a @ b||_2 in float64: |fl(ab) - ab| <= gamma_n |a||b| + n eta
    entrywise (any summation order, n the inner dimension), through the Frobenius norm; the
    computed |a||b| is itself within gamma_n |a||b| + n eta of the exact one, so both terms
    are inflated for it."""
    n = a.shape[1]
    gamma = n * _U / (1.0 - n * _U)
    with np.errstate(over="ignore"):
        magnitude = _frobenius(np.abs(a) @ np.abs(b))
    rows, cols = a.shape[0], b.shape[1]
    return (gamma * (1.0 + gamma) * magnitude + math.sqrt(rows * cols) * 2 * n * _ETA) * _SCALAR_SLACK


def _block_norm(block: np.ndarray, error: float, product: float) -> float:
    """A bound on the norm of an exact product of layers from its computed value ``block``,
    which is within ``error`` of it, and ``product``, the product of the layers' norms."""
    if not (math.isfinite(error) and np.all(np.isfinite(block))):
        return product * _SCALAR_SLACK
    return min(spectral_norm_bound(block) + error, product) * _SCALAR_SLACK


def layered_lipschitz_bound(weights: list, slopes: list[tuple[float, float]]) -> float:
    """A certified Lipschitz bound (Euclidean norms) of x -> W_m D_(m-1)(... D_1(W_1 x))
    with elementwise activations D_p whose slopes lie in slopes[p-1] = (alpha_p, beta_p)
    (biases do not matter). Combettes & Pesquet (2020, "Lipschitz certificates for layered
    network structures driven by averaged activation operators"), generalised to any slope
    range: each Jacobian D_p = c_p I + r_p S_p with c_p = (alpha+beta)/2, r_p =
    (beta-alpha)/2 and |S_p| <= 1; expanding the product, every term is a product of
    merged blocks c.. W_j ... W_(i+1), so

        L <= sum over split sets of  prod r_(split)  prod c_(merged)  prod ||block||,

    computed by dynamic programming over split points with certified block norms
    (:func:`spectral_norm_bound` of the computed float64 product plus a bound on that
    product's rounding error, or the product of the layers' norms when smaller): O(m^2)
    products. Never above the product of the layer norms times max |slope|, and much
    tighter for monotone activations (c > 0)."""
    m = len(weights)
    if len(slopes) != m - 1:
        raise ValueError(f"layered_lipschitz_bound: {m} layers need {m - 1} slope ranges, found {len(slopes)}")
    # Every term of the expansion holds each W_i exactly once, so the bound is homogeneous in
    # each layer: run the recursion on W_i / 2^e_i (largest entry in [1/2, 1); exact scaling)
    # and multiply by 2^(sum e_i) at the end, so that products of large or small layers
    # neither overflow nor underflow (an overflowing block would have no certified norm).
    mats, exponent = [], 0
    for w in weights:
        a = np.asarray(w, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError("layered_lipschitz_bound: a weight matrix has non-finite entries")
        top = float(np.max(np.abs(a))) if a.size else 0.0
        if top == 0.0:
            return 0.0  # a zero layer: every term vanishes, the network is constant
        e = math.frexp(top)[1]
        mats.append(np.ldexp(a, -e))
        exponent += e
    cs = [(a + b) / 2.0 for a, b in slopes]
    rs = [(b - a) / 2.0 for a, b in slopes]
    norms = [spectral_norm_bound(a) for a in mats]
    best = [1.0] + [0.0] * m  # best[j]: the bound for layers 1..j with a split after j
    for j in range(1, m + 1):
        block = None  # fl(W_j ... W_(i+1)), built from i = j-1 down
        error = 0.0  # a bound on ||block - W_j ... W_(i+1)||_2 (rounding of the products)
        product = 1.0  # ||W_j|| ... ||W_(i+1)||: a bound on the exact block's norm too
        merged = 1.0  # prod of c over the positions inside the block
        total = 0.0
        for i in range(j - 1, -1, -1):
            if block is None:
                block = mats[i]
            else:
                error = error * norms[i] + _product_error(block, mats[i])
                block = block @ mats[i]
            product *= norms[i]
            if i < j - 1:
                merged *= cs[i]  # position i+1 (between layers i+1 and i+2) is inside
            split = rs[i - 1] if i > 0 else 1.0
            if best[i] and split and merged:
                total += best[i] * split * abs(merged) * _block_norm(block, error, product)
        best[j] = total
    try:
        return math.ldexp(best[m] * _SCALAR_SLACK, exponent)
    except OverflowError:
        return math.inf
