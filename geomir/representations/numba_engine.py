"""The CPU engine of the hierarchy trainer: Riemannian SGD and Adagrad steps compiled with numba.

One call runs many consecutive batches of the objective of
:mod:`geomir.representations.train` (the mean over a batch of the softmax cross-entropy of
-d(u, v) against -d(u, v'), masked negatives left out) on a float32 or float64 table in
place: per batch, the Euclidean gradient of every row the batch touches, computed in
closed form at the batch's starting points, then ``clamp_radius(proj(expmap(x, -lr *
egrad2rgrad(x, g))))`` on those rows: the step of ``RowwiseRSGD`` with the formulas of
``backends/common/manifolds.py`` (the same clamps, series and caps); with Riemannian
Adagrad (``RowwiseRAdagrad``) the rate of row r is ``lr / sqrt(acc[r])`` after
``acc[r] += |rgrad|_x^2``. So the two engines agree to rounding
(tests/representations/test_numba_engine.py checks them against each other and the
gradients against torch autograd).

Closed-form derivatives of the distances (``s = |x - y|^2``, ``delta = 1 - c|x|^2``):

- Poincaré: d = 2/sqrt(c) asinh(sqrt(w)), w = c s / (delta_x delta_y);
  dd/dw = 1 / (sqrt(c) sqrt(w (1 + w))), dw/dx = 2c / (delta_x delta_y) ((x - y) + (c s / delta_x) x).
- Lorentz: d = 2/sqrt(c) asinh(sqrt(c l2) / 2), l2 = <y - x, y - x>_L the squared
  Minkowski chord taken from the points' images in the Poincaré ball as
  ``Lorentz._chord`` takes it (``_lorentz_chord``: no cancellation of big coordinates far
  out); dd/dx = dl2/dx / (2 sqrt(l2) sqrt(1 + c l2 / 4)) with dl2/dx that formula's gradient.
- Euclidean: dd/dx = (x - y) / |x - y|.

Each is 0 where the runtime's ``sqrt0`` returns 0 (coincident points).

Threads: the edges of a batch are worked on in parallel (their distances, softmax and
gradient terms), the terms are then summed per row in edge order by one thread, and the
touched rows step in parallel; so the result does not depend on the thread count
(``NUMBA_NUM_THREADS``, default: every core). numba is an optional
dependency (the ``fast`` extra); :func:`available` says whether it imports.
"""

from __future__ import annotations

import math

import numpy as np

from geomir.backends.common.manifolds import CONSTANTS

try:
    import numba
except ImportError:  # the engine is unavailable; the module still imports
    numba = None

KINDS = {"poincare": 0, "lorentz": 1, "euclidean": 2}


def available() -> bool:
    """Whether numba imports (the engine can run)."""
    return numba is not None


def _jit(fn):
    return numba.njit(cache=True, error_model="numpy")(fn) if numba is not None else fn


def _jit_parallel(fn):
    return numba.njit(cache=True, error_model="numpy", parallel=True)(fn) if numba is not None else fn


def run_batches(table: np.ndarray, sources: np.ndarray, candidates: np.ndarray, valid: np.ndarray,
                batch_size: int, lr: float, kind: str, curvature: float, boundary_eps: float,
                work: "Workspace", acc: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Run the batches ``sources[i:i + batch_size]`` (with their ``candidates`` rows, the true
    ancestor first, and ``valid`` masks) one after the other on ``table`` in place.

    ``acc``: Riemannian Adagrad's accumulators (float64, one per row, updated in place; the
    step of ``RowwiseRAdagrad``); None: plain Riemannian SGD.

    Returns the loss of every batch and the index of the first batch whose loss or updated
    rows are not finite (-1 if none); the run stops after that batch."""
    if numba is None:
        raise ImportError("the numba engine needs numba: pip install numba (or geomir[fast])")
    k = CONSTANTS[table.dtype.name]
    nb = -(-sources.shape[0] // batch_size)
    losses = np.zeros(nb, dtype=np.float64)
    rows = min(table.shape[0], batch_size * (candidates.shape[1] + 1))
    if work.grad.shape[0] < rows:
        work.grad = np.zeros((rows, table.shape[1]), dtype=np.float64)
    adagrad = acc is not None
    if acc is None:
        acc = np.zeros(0, dtype=np.float64)
    elif acc.dtype != np.float64 or acc.shape != (table.shape[0],):
        raise ValueError(f"acc must be float64 of shape ({table.shape[0]},), found {acc.dtype} {acc.shape}")
    bad = _run_batches(table, sources, candidates, valid, batch_size, float(lr), KINDS[kind], float(curvature),
                       float(boundary_eps), k.tiny, k.series_q, k.min_delta, k.ball_eps, k.max_hyp_z,
                       work.grad, work.slot, work.touched, losses, adagrad, acc)
    return losses, int(bad)


class Workspace:
    """Buffers reused across calls: the gradients of a batch's rows (compact: row ``touched[i]``
    of the table has its gradient in ``grad[i]``; ``slot[r]`` is that i, or -1)."""

    def __init__(self, num_rows: int, coords: int) -> None:
        self.grad = np.zeros((0, coords), dtype=np.float64)
        self.slot = np.full(num_rows, -1, dtype=np.int64)
        self.touched = np.zeros(num_rows, dtype=np.int64)


# --- the kernel (plain Python that numba compiles) ------------------------------------------------


@_jit
def _ratio(q, fn_kind, series_q):
    """f(z)/z at z = sqrt(q): tanh (0), sinh (1), asinh (2); Taylor below series_q."""
    if q < series_q:
        if fn_kind == 0:
            return 1.0 + q * (-1.0 / 3.0 + q * (2.0 / 15.0))
        if fn_kind == 1:
            return 1.0 + q * (1.0 / 6.0 + q * (1.0 / 120.0))
        return 1.0 + q * (-1.0 / 6.0 + q * (3.0 / 40.0))
    z = math.sqrt(q)
    if fn_kind == 0:
        return math.tanh(z) / z
    if fn_kind == 1:
        return math.sinh(z) / z
    return math.asinh(z) / z


@_jit_parallel
def _run_batches(P, U, C, V, bs, lr, kind, c, beps, tiny, series_q, min_delta, ball_eps, max_hyp_z,
                 G, slot, touched, losses, adagrad, acc):
    n_edges, width = C.shape
    dim = P.shape[1]
    sc = math.sqrt(c)
    rows = min(bs, n_edges)
    # per edge of a batch: distances to the candidates, dd/dx = h * (J(x - y) + gu * x),
    # dd/dy = h * (J(y - x) + gv * y), the softmax weights, and the gradient terms
    d = np.empty((rows, width))
    h = np.empty((rows, width))
    gu = np.empty((rows, width))
    gv = np.empty((rows, width))
    a = np.empty((rows, width))
    xu = np.empty((rows, dim))
    du_ = np.empty(rows)
    su_ = np.empty(rows)
    edge_loss = np.empty(rows)
    w = np.zeros((rows, width))
    gxu = np.empty((rows, width, dim))  # w * dd/dx, w * dd/dy
    gyv = np.empty((rows, width, dim))
    nb = (n_edges + bs - 1) // bs
    for b in range(nb):
        lo = b * bs
        hi = min(n_edges, lo + bs)
        inv_b = 1.0 / (hi - lo)
        # 1. every edge on its own (in parallel): distances, softmax, loss, gradient terms
        for i in numba.prange(hi - lo):
            e = lo + i
            u = U[e]
            su = 0.0
            for k in range(dim):
                xu[i, k] = P[u, k]
                su += xu[i, k] * xu[i, k]
            su_[i] = su
            du_[i] = max(1.0 - c * su, min_delta)
            for j in range(width):
                if V[e, j]:
                    _pair(P, xu[i], su, du_[i], C[e, j], j, kind, c, sc, tiny, min_delta, d[i], h[i], gu[i], gv[i],
                          gxu[i, j], gyv[i, j])
                else:
                    d[i, j] = math.inf
            # softmax over the valid candidates; loss = logsumexp(-d) + d_0
            m = -math.inf
            for j in range(width):
                if V[e, j] and -d[i, j] > m:
                    m = -d[i, j]
            z = 0.0
            for j in range(width):
                a[i, j] = math.exp(-d[i, j] - m) if V[e, j] else 0.0
                z += a[i, j]
            edge_loss[i] = math.log(z) + m + d[i, 0]
            for j in range(width):
                w[i, j] = 0.0
                if V[e, j]:
                    w[i, j] = ((1.0 if j == 0 else 0.0) - a[i, j] / z) * inv_b * h[i, j]
                if w[i, j] == 0.0:
                    continue
                v = C[e, j]
                if kind == 1:  # _pair left dl2/dx, dl2/dy there (h = dd/dl2 is in w)
                    for k in range(dim):
                        gxu[i, j, k] *= w[i, j]
                        gyv[i, j, k] *= w[i, j]
                    continue
                for k in range(dim):
                    t = xu[i, k] - P[v, k]
                    gxu[i, j, k] = w[i, j] * (t + gu[i, j] * xu[i, k])
                    gyv[i, j, k] = w[i, j] * (gv[i, j] * P[v, k] - t)
        # 2. in edge order: the batch's rows and their summed gradients
        nt = 0
        total = 0.0
        for i in range(hi - lo):
            e = lo + i
            total += edge_loss[i]
            iu, nt = _slot_of(U[e], slot, touched, nt)
            for j in range(width):
                iv, nt = _slot_of(C[e, j], slot, touched, nt)
                if w[i, j] == 0.0:
                    continue
                for k in range(dim):
                    G[iu, k] += gxu[i, j, k]
                    G[iv, k] += gyv[i, j, k]
        loss = total * inv_b
        losses[b] = loss
        # 3. the step on every touched row (in parallel: the rows differ), then its gradient
        # back to zero
        bad = 0
        for t in numba.prange(nt):
            r = touched[t]
            rate = _adagrad_rate(P, G, r, t, lr, kind, c, min_delta, acc) if adagrad else lr
            _step_row(P, G, r, t, rate, kind, c, sc, beps, tiny, series_q, min_delta, ball_eps, max_hyp_z)
            slot[r] = -1
            for k in range(dim):
                G[t, k] = 0.0
                if not math.isfinite(P[r, k]):
                    bad += 1
        if bad > 0 or not math.isfinite(loss):
            return b
    return -1


@_jit
def _slot_of(r, slot, touched, nt):
    """(row r's index in the batch's gradient buffer, the new row count): a new index
    for a row the batch has not touched yet."""
    i = slot[r]
    if i < 0:
        i = nt
        slot[r] = nt
        touched[nt] = r
        nt += 1
    return i, nt


@_jit
def _sqrt0(q, tiny):
    return math.sqrt(q) if q > tiny else 0.0


@_jit
def _pair(P, xu, su, du, v, j, kind, c, sc, tiny, min_delta, d, h, gu, gv, gx, gy):
    """d[j] = d(x, P[v]) (x = xu, |x|^2 = su, clamped 1 - c|x|^2 = du) and its derivative
    factors h[j], gu[j], gv[j] (see _run_batches); Lorentz: h[j] = dd/dl2 and the vectors
    gx = dl2/dx, gy = dl2/dy of the squared chord l2."""
    dim = P.shape[1]
    gu[j] = 0.0
    gv[j] = 0.0
    if kind == 1:
        l2 = _lorentz_chord(xu, P[v], sc, gx, gy)
        r = _sqrt0(l2, tiny)
        d[j] = (2.0 / sc) * math.asinh(0.5 * sc * r)
        h[j] = 0.5 / (r * math.sqrt(1.0 + 0.25 * c * l2)) if r > 0.0 else 0.0
        return
    s = 0.0
    sv = 0.0
    for k in range(dim):
        y = P[v, k]
        t = xu[k] - y
        s += t * t
        sv += y * y
    if kind == 2:
        r = _sqrt0(s, tiny)
        d[j] = r
        h[j] = 1.0 / r if r > 0.0 else 0.0
        return
    dv = max(1.0 - c * sv, min_delta)
    q = c * s / (du * dv)
    r = _sqrt0(q, tiny)
    d[j] = (2.0 / sc) * math.asinh(r)
    if r == 0.0:
        h[j] = 0.0
        return
    # dd/dq = 1 / (sqrt(c) sqrt(q (1 + q))), dq/dx = 2c / (du dv) ((x - y) + (c s / du) x); a
    # clamped 1 - c|x|^2 has no gradient
    h[j] = 2.0 * c / (sc * r * math.sqrt(1.0 + q) * du * dv)
    if 1.0 - c * su >= min_delta:
        gu[j] = c * s / du
    if 1.0 - c * sv >= min_delta:
        gv[j] = c * s / dv


@_jit
def _lorentz_chord(x, y, sc, gx, gy):
    """The squared Minkowski chord l2 = <y - x, y - x>_L as ``Lorentz._chord`` takes it (that
    of the points' images in the Poincaré ball, a = 1 + sqrt(c) x0, b = 1 + sqrt(c) y0):
    l2 = |theta xs - rho q|^2 with rho = sqrt(a/b) and, where x0/2 <= y0 <= 2 x0, q = ys - xs,
    theta = sqrt(c) u0s / sqrt(a b), u0s = (2 <q, xs> + |q|^2)/(x0 + y0); elsewhere q = ys,
    theta = sqrt(b/a). Its gradients dl2/dx and dl2/dy (of that formula, as torch autograd
    takes them) go to gx and gy. The plain <y - x, y - x>_L cancelled squares of the
    coordinates (relative error eps c x0^2 / l2: far out the gradients were ~8x less
    accurate than torch's)."""
    dim = x.shape[0]
    x0 = x[0]
    y0 = y[0]
    near = abs(y0 - x0) <= min(x0, y0)
    a = max(1.0 + sc * x0, 1.0)
    b = max(1.0 + sc * y0, 1.0)
    ra = math.sqrt(a)
    rb = math.sqrt(b)
    rho = ra / rb
    if near:
        qq = 0.0
        qx = 0.0
        for k in range(1, dim):
            q = y[k] - x[k]
            qq += q * q
            qx += q * x[k]
        p = max(x0 + y0, 1.0 / sc)
        u0s = (2.0 * qx + qq) / p
        theta = sc * u0s / (ra * rb)
        kappa = sc / (ra * rb * p)
    else:
        theta = rb / ra
        kappa = 0.0
    l2 = 0.0
    na = 0.0  # near: <n, xs>; far: <n, theta xs + rho ys>
    nb = 0.0  # near: <n, q>
    for k in range(1, dim):
        q = y[k] - x[k] if near else y[k]
        n = theta * x[k] - rho * q
        l2 += n * n
        if near:
            na += n * x[k]
            nb += n * q
        else:
            na += n * (theta * x[k] + rho * y[k])
    for k in range(1, dim):
        q = y[k] - x[k] if near else y[k]
        n = theta * x[k] - rho * q
        if near:
            gx[k] = 2.0 * (theta + rho) * n - 4.0 * kappa * na * x[k]
            gy[k] = -2.0 * rho * n + 4.0 * kappa * na * y[k]
        else:
            gx[k] = 2.0 * theta * n
            gy[k] = -2.0 * rho * n
    if near:
        p = max(x0 + y0, 1.0 / sc)
        inv_p = 1.0 / p if x0 + y0 > 1.0 / sc else 0.0
        gx[0] = -2.0 * na * theta * (inv_p + 0.5 * sc / a) - nb * rho * sc / a
        gy[0] = -2.0 * na * theta * (inv_p + 0.5 * sc / b) + nb * rho * sc / b
    else:
        gx[0] = -(sc / a) * na
        gy[0] = (sc / b) * na
    if 1.0 + sc * x0 < 1.0:  # a clamped (not a point of the hyperboloid): no gradient through a
        gx[0] = 0.0
    if 1.0 + sc * y0 < 1.0:
        gy[0] = 0.0
    return l2


@_jit
def _delta(P, r, c, min_delta):
    """(1 - c|P[r]|^2 floored at min_delta, |P[r]|^2)."""
    s = 0.0
    for k in range(P.shape[1]):
        s += P[r, k] * P[r, k]
    return max(1.0 - c * s, min_delta), s


@_jit
def _adagrad_rate(P, G, r, i, lr, kind, c, min_delta, acc):
    """acc[r] += |rgrad|^2 at P[r] (the squared Riemannian norm); the rate lr / (sqrt(acc[r]) + 1e-10)."""
    dim = P.shape[1]
    g2 = 0.0
    if kind == 1:
        # rgrad = gJ + c <x, gJ>_L x; its size is its Minkowski square
        ip = P[r, 0] * G[i, 0]
        for k in range(1, dim):
            ip += P[r, k] * G[i, k]
        t = -G[i, 0] + c * ip * P[r, 0]
        g2 = -t * t
        for k in range(1, dim):
            t = G[i, k] + c * ip * P[r, k]
            g2 += t * t
        g2 = max(g2, 0.0)
    else:
        for k in range(dim):
            g2 += G[i, k] * G[i, k]
        if kind == 0:
            # rgrad = (delta/2)^2 g, lambda = 2/delta: |rgrad|_x^2 = (delta/2)^2 |g|^2
            dx, _ = _delta(P, r, c, min_delta)
            g2 *= 0.25 * dx * dx
    acc[r] += g2
    return lr / (math.sqrt(acc[r]) + 1e-10)


@_jit
def _step_row(P, G, r, i, lr, kind, c, sc, beps, tiny, series_q, min_delta, ball_eps, max_hyp_z):
    """P[r] <- clamp_radius(proj(expmap(P[r], -lr * egrad2rgrad(P[r], G[i]))))."""
    dim = P.shape[1]
    if kind == 2:
        for k in range(dim):
            P[r, k] -= lr * G[i, k]
        return
    if kind == 0:
        dx, _ = _delta(P, r, c, min_delta)
        h = 0.5 * dx
        scale = -lr * h * h  # v = -lr * rgrad
        vv = 0.0
        for k in range(dim):
            vk = scale * G[i, k]
            vv += vk * vk
        q = c * vv / (dx * dx)
        f = _ratio(q, 0, series_q) / dx  # y = tanhc(q) v / dx
        e = math.exp(-2.0 * _sqrt0(q, tiny))
        dy = 4.0 * e / ((1.0 + e) * (1.0 + e))
        # x (+) y, unprojected: (c|x+y|^2 x + dx (x+y)) / (c|x+y|^2 + dx dy)
        ss = 0.0
        for k in range(dim):
            t = P[r, k] + f * scale * G[i, k]
            ss += t * t
        cs2 = c * ss
        den = max(cs2 + dx * dy, tiny)
        nn = 0.0
        for k in range(dim):
            x = P[r, k]
            t = x + f * scale * G[i, k]
            x = (cs2 * x + dx * t) / den
            P[r, k] = x
            nn += x * x
        # proj, then the boundary clamp
        norm = _sqrt0(nn, tiny)
        maxnorm = (1.0 - ball_eps) / sc
        if norm > maxnorm:
            for k in range(dim):
                P[r, k] *= maxnorm / norm
            norm = maxnorm
        limit = (1.0 - beps) / sc
        if norm > limit:
            for k in range(dim):
                P[r, k] *= limit / norm
        return
    # Lorentz: g with its time component flipped, projected on the tangent space at x
    x0 = P[r, 0]
    g0 = -G[i, 0]
    ip = -x0 * g0
    for k in range(1, dim):
        ip += P[r, k] * G[i, k]
    # rgrad = gJ + c <x, gJ>_L x; v = -lr rgrad
    v0 = -lr * (g0 + c * ip * x0)
    vv = -v0 * v0
    for k in range(1, dim):
        vk = -lr * (G[i, k] + c * ip * P[r, k])
        vv += vk * vk
    q = c * max(vv, 0.0)
    qmax = max_hyp_z * max_hyp_z
    cap = 1.0
    if q > qmax:
        cap = math.sqrt(qmax / q)
        q = qmax
    sq = _ratio(q * 0.25, 1, series_q)
    cosh_ = 1.0 + 0.5 * q * sq * sq
    sinc = _ratio(q, 1, series_q) * cap
    ss = 0.0
    for k in range(1, dim):
        vk = -lr * (G[i, k] + c * ip * P[r, k])
        xk = cosh_ * P[r, k] + sinc * vk
        P[r, k] = xk
        ss += xk * xk
    # proj (x0 from the spatial part), then the radius clamp
    norm = _sqrt0(ss, tiny)
    r_max = 2.0 * math.atanh(1.0 - beps) / sc
    limit = math.sinh(sc * r_max) / sc
    if norm > limit:
        for k in range(1, dim):
            P[r, k] *= limit / norm
        ss = limit * limit
    P[r, 0] = math.sqrt(1.0 / c + ss)
