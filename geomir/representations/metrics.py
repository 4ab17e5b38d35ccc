"""Reconstruction mean rank and MAP of an embedded hierarchy, as Nickel & Kiela measure them
(poincare-embeddings ``hype/graph.py``, ``reconstruction_worker``).

For every node u with ancestors N(u) (its edges in the hierarchy), take the distances
d(u, w) to all nodes w, with d(u, u) = +inf (u never counts):

- the rank of v in N(u) is 1 + #{w not in N(u), w != u : d(u, w) < d(u, v)}: other
  ancestors never push v down, and a non-ancestor at exactly the distance of v does not
  either (ties count in v's favour);
- the average precision of u is scikit-learn's ``average_precision_score`` of the scores
  -d(u, .) over all nodes, N(u) positive and every other node (u included) negative:
  the mean over v in N(u) of #{p in N(u) : d(u, p) <= d(u, v)} / #{w : d(u, w) <= d(u, v)}
  (ties grouped as sklearn groups equal scores).

Mean rank is the mean over all (u, v) pairs; MAP the mean over u of its average precision.
Both are undefined for a hierarchy with no edges (no pair, no source): evaluating one raises
:class:`EvaluationError` rather than returning NaN.
The reference sorts each row and subtracts N(N-1)/2 from the summed positions of the
ancestors, which equals the rank above when no non-ancestor ties an ancestor (with a tie
its result depends on the sort order); it sets d(u, u) = 1e12 where we use +inf.

Both only depend on the order of each row, so a row may hold any increasing function of
the distance: the built-in distances' ``pairwise`` forms return cosh(d)-like keys and skip
the arcosh. Work is batched over source nodes on the device of the points: per block of
rows the ancestor distances are sorted and the other N distances located among them with
``torch.searchsorted`` (only those below the farthest ancestor when they are few, as for a
trained embedding), so a row costs O(N log K) beyond its distances.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from geomir.diagnostics import GeomirError

from .hierarchy import Hierarchy

if TYPE_CHECKING:
    import torch

__all__ = ["Reconstruction", "EvaluationError", "reconstruction", "reconstruction_from_distances",
           "make_distance", "poincare_distance", "lorentz_distance", "euclidean_distance", "DISTANCES"]

# elements of (B, N, D) in one block of a broadcast distance call; a quarter as many (B, N)
# distances for a pairwise one, a distance matrix or a rows callable
_BLOCK = 1 << 24
# locate only the negatives below the farthest ancestor when they are at most this share of
# the block (times K: they each gather the K thresholds)
_COMPACT = 0.5


class EvaluationError(GeomirError):
    """Bad input to a metric: NaN distances, mismatched shapes, an unknown distance, a
    hierarchy without edges (nothing to rank)."""


@dataclass(frozen=True)
class Reconstruction:
    """Mean rank (>= 1, lower is better) and MAP (in (0, 1], higher is better) over
    ``num_sources`` source nodes and their ``num_pairs`` (child, ancestor) pairs."""

    mean_rank: float
    map: float
    num_pairs: int
    num_sources: int


def reconstruction(points, hierarchy: Hierarchy, distance: Callable | str, *, batch_size: int | None = None,
                   sample: int | None = None, seed: int = 0) -> Reconstruction:
    """Mean rank and MAP of ``points`` (one row per node of ``hierarchy``, a torch tensor or
    NumPy array) under ``distance``.

    ``distance`` is ``"poincare"``, ``"lorentz"``, ``"euclidean"`` (curvature -1, 0; see
    :func:`make_distance` for others) or a callable ``distance(x, y)`` that broadcasts over
    leading axes and drops the last: it is called with x of shape (B, 1, D) and y of shape
    (1, N, D) and returns (B, N). A callable with a ``pairwise`` attribute is called as
    ``pairwise(x (B, D), y (N, D)) -> (B, N)`` instead, which may return any increasing
    function of the distance and avoids (B, N, D) temporaries: the built-in distances have
    one and are several times faster than a broadcast callable.

    Computes in the dtype and on the device of ``points`` (pass float64 to avoid float32
    ties). ``sample``: evaluate a random subset of that many source nodes (``seed``), as
    the reference's ``-sample``. A hierarchy without edges raises :class:`EvaluationError`
    (the metrics are undefined). ``batch_size``: source rows per block (default: about
    4M distances, or 16M elements of (B, N, D) for a broadcast callable).
    """
    import torch

    if isinstance(distance, str):
        distance = make_distance(distance)
    x = torch.as_tensor(points)
    if x.ndim != 2 or x.shape[0] != hierarchy.num_nodes:
        raise EvaluationError(f"points must be ({hierarchy.num_nodes}, D), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)  # integer points: exact in float64
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # torch.cdist and friends have no half kernels on the CPU
    _check_points(x, distance)
    n, dim = x.shape
    pairwise = getattr(distance, "pairwise", None)
    if pairwise is not None:
        def rows(src: "torch.Tensor") -> "torch.Tensor":
            return pairwise(x[src], x)
        default = _BLOCK // 4 // max(1, n)
    else:
        y = x[None]

        def rows(src: "torch.Tensor") -> "torch.Tensor":
            return distance(x[src][:, None, :], y)
        default = _BLOCK // max(1, n * dim)
    if batch_size is None:
        batch_size = max(1, default)
    return _evaluate(rows, hierarchy, batch_size, sample, seed, x.device, owned=True)


def _check_points(x: "torch.Tensor", distance) -> None:
    """NaN points, and points outside the ball for the built-in Poincaré distance (whose
    keys would silently rank them as if at the boundary), are errors naming a node."""
    import torch

    bad = torch.isnan(x).any(dim=1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise EvaluationError(f"the points contain NaN ({int(bad.sum())} rows; the first is node {i})")
    if isinstance(distance, _Distance) and distance.name == "poincare":
        c = distance.curvature
        outside = c * x.double().pow(2).sum(-1) >= 1.0
        if bool(outside.any()):
            i = int(outside.nonzero()[0, 0])
            norm = float(x[i].double().norm())
            raise EvaluationError(f"{int(outside.sum())} points are not inside the Poincaré ball of curvature "
                                  f"-{c:g} (norm < {1 / math.sqrt(c):g}): node {i} has norm {norm:.6g}")


def reconstruction_from_distances(distances, hierarchy: Hierarchy, *, batch_size: int | None = None,
                                  sample: int | None = None, seed: int = 0) -> Reconstruction:
    """Mean rank and MAP from distances: an (N, N) matrix (torch or NumPy; row u holds
    d(u, .), or any increasing function of it), or a callable taking a LongTensor of B
    source ids and returning their (B, N) rows. The diagonal is ignored (d(u, u) is taken
    as +inf)."""
    import torch

    n = hierarchy.num_nodes
    if batch_size is None:
        batch_size = max(1, _BLOCK // 4 // max(1, n))
    if callable(distances):
        return _evaluate(distances, hierarchy, batch_size, sample, seed, None, owned=False)
    mat = torch.as_tensor(distances)
    if mat.shape != (n, n):
        raise EvaluationError(f"the distance matrix must be ({n}, {n}), got {tuple(mat.shape)}")
    # indexing with a LongTensor copies, so the rows are ours to modify
    return _evaluate(mat.__getitem__, hierarchy, batch_size, sample, seed, mat.device, owned=True)


def _evaluate(rows: Callable, hierarchy: Hierarchy, batch_size: int, sample: int | None, seed: int,
              device, owned: bool) -> Reconstruction:
    import torch

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise EvaluationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1):
        raise EvaluationError(f"sample must be a positive integer or None, got {sample!r}")
    n = hierarchy.num_nodes
    counts_np = np.diff(np.asarray(hierarchy.offsets))
    sources = np.flatnonzero(counts_np > 0)
    if sample is not None and sample < sources.size:
        sources = np.sort(np.random.default_rng(seed).choice(sources, size=sample, replace=False))
    if sources.size == 0:  # sample >= 1 keeps a source when there is one
        raise EvaluationError(f"the hierarchy has no edges ({n} nodes): mean rank and MAP are undefined (they "
                              "average over (child, ancestor) pairs, and there are none)")
    # blocks of sources with similar ancestor counts pad little
    sources = sources[np.argsort(counts_np[sources], kind="stable")]
    offsets = torch.tensor(np.asarray(hierarchy.offsets))
    targets = torch.tensor(np.asarray(hierarchy.edges[:, 1]))
    if device is not None:
        offsets, targets = offsets.to(device), targets.to(device)
    rank_sum = ap_sum = 0.0
    pairs = 0
    for start in range(0, sources.size, batch_size):
        src = torch.as_tensor(sources[start:start + batch_size])
        if device is not None:
            src = src.to(device)
        d = torch.as_tensor(rows(src))
        if device is None:
            device = d.device
            src, offsets, targets = src.to(device), offsets.to(device), targets.to(device)
        if d.shape != (src.numel(), n):
            raise EvaluationError(f"distance rows must be ({src.numel()}, {n}), got {tuple(d.shape)}")
        r, a, k = _block(d, src, offsets, targets, owned)
        rank_sum += r
        ap_sum += a
        pairs += k
    return Reconstruction(rank_sum / pairs, ap_sum / sources.size, pairs, int(sources.size))


def _block(d: "torch.Tensor", src: "torch.Tensor", offsets: "torch.Tensor", targets: "torch.Tensor",
           owned: bool) -> tuple[float, float, int]:
    """Summed ranks, summed average precisions and the pair count of one block of rows."""
    import torch

    if not d.is_floating_point() or d.dtype in (torch.float16, torch.bfloat16):
        d, owned = d.float(), True
    if not d.is_contiguous():
        d, owned = d.contiguous(), True
    b, n = d.shape
    dev = d.device
    inf = torch.tensor(math.inf, dtype=d.dtype, device=dev)
    start, count = offsets[src], offsets[src + 1] - offsets[src]
    k = int(count.max())
    col = torch.arange(k, device=dev)
    valid = col[None, :] < count[:, None]  # (B, K)
    pos = targets[(start[:, None] + col[None, :]).clamp(max=targets.numel() - 1)]
    pos = torch.cat([torch.where(valid, pos, src[:, None]), src[:, None]], dim=1)  # pads and u last
    # t: each row's ancestor distances sorted (the K_b real ones first, then +inf)
    t = torch.where(valid, d.gather(1, pos[:, :k]), inf).sort(dim=1).values
    # the negatives: the ancestors and u moved to +inf, where they never count below
    neg = d.scatter_(1, pos, inf.expand(b, k + 1)) if owned else d.scatter(1, pos, inf.expand(b, k + 1))
    # NaN among the ancestors' or the other nodes' distances is an error; d(u, u) is ignored
    # (it is +inf in neg now): the sum is NaN for NaN (or inf - inf)
    for part in (t, neg):
        if torch.isnan(part.sum()) and torch.isnan(part).any():
            raise EvaluationError("the distances contain NaN")
    # Only negatives at most as far as the farthest ancestor count; when they are few (their
    # share estimated on a slice of columns, then counted), locate just those.
    farthest = t.gather(1, (count - 1)[:, None])
    lo = int(src[0]) * 7919 % max(1, n - 1024)
    few = float((neg[:, lo:lo + 1024] <= farthest).float().mean()) * k <= _COMPACT
    if few:
        rows, cols = (neg <= farthest).nonzero(as_tuple=True)
        few = rows.numel() * k <= b * n * _COMPACT * 2
    # right = #{j : t_j <= d_w}; slot = (row, right) in a (B, K + 1) histogram
    if few:
        vals = neg[rows, cols]
        right = torch.searchsorted(t[rows], vals[:, None], right=True)[:, 0]
        slot = rows * (k + 1) + right
    else:
        vals = neg.reshape(-1)
        right = torch.searchsorted(t, neg, right=True)
        slot = right.add_(torch.arange(0, b * (k + 1), k + 1, device=dev)[:, None]).view(-1)
    # #{negative w : d_w < t_k} = #{w : right_w <= k}
    ones = torch.ones(1, dtype=torch.int64, device=dev).expand(slot.numel())
    hist = torch.zeros(b * (k + 1), dtype=torch.int64, device=dev).scatter_add_(0, slot, ones)
    lt = hist.view(b, k + 1).cumsum(dim=1)[:, :k]
    # #{negative w : d_w <= t_k} adds the finite d_w equal to t_k: such a w has its
    # right_w - 1 on the last of the thresholds equal to t_k
    t_ext = torch.cat([torch.full((b, 1), -math.inf, dtype=d.dtype, device=dev), t], dim=1)
    tie = (t_ext.view(-1)[slot] == vals).nonzero()[:, 0]
    tie = tie[torch.isfinite(vals[tie])]
    last = torch.searchsorted(t, t, right=True)  # (B, K): 1 + the last index equal to t_k
    le = lt
    if tie.numel():
        eq = torch.zeros(b * (k + 1), dtype=torch.int64, device=dev).scatter_add_(0, slot[tie], ones[:tie.numel()])
        le = lt + eq.view(b, k + 1).gather(1, last)
    le = torch.where(torch.isinf(t) & (t > 0), (n - count)[:, None], le)  # every negative, u included
    pos_le = torch.minimum(last, count[:, None])
    rank_sum = float(torch.where(valid, 1 + lt, 0).sum(dtype=torch.float64))
    prec = pos_le.to(torch.float64) / (le + pos_le).to(torch.float64)
    ap = torch.where(valid, prec, 0).sum(dim=1) / count.to(torch.float64)
    return rank_sum, float(ap.sum()), int(count.sum())


# --------------------------------------------------------------------------- distances


class _Distance:
    """A distance: ``self(x, y)`` broadcasts over leading axes (the last is the point);
    ``pairwise(a (B, D), b (N, D))`` gives an increasing function of it as (B, N)."""

    def __init__(self, name: str, curvature: float, full: Callable, pairwise: Callable, doc: str):
        self.name, self.curvature, self._full, self.pairwise = name, curvature, full, pairwise
        self.__doc__ = doc

    def __call__(self, x, y):
        return self._full(x, y)

    def __repr__(self) -> str:
        return f"make_distance({self.name!r}, curvature={self.curvature!r})"


def make_distance(name: str, curvature: float = 1.0) -> _Distance:
    """The distance of ``"poincare"`` (the ball of curvature -c), ``"lorentz"`` (the
    hyperboloid <x, x>_L = -1/c) or ``"euclidean"``, with c = ``curvature`` > 0 (ignored for
    euclidean), as used by :func:`reconstruction`. Building one needs no torch (the
    module-level distances exist in an install without it); calling one imports torch."""
    c = float(curvature)
    if name != "euclidean" and not c > 0:
        raise EvaluationError(f"curvature must be > 0, got {curvature!r}")
    sc = math.sqrt(c)

    if name == "euclidean":
        return _Distance(name, 0.0, lambda x, y: (x - y).norm(dim=-1), _cdist, "|x - y|")
    if name in ("poincare", "lorentz"):
        @functools.cache
        def manifold():
            from geomir.backends.torch import runtime

            return runtime.PoincareBall(c) if name == "poincare" else runtime.Lorentz(c)

        def full(x, y):
            # the runtime's distance: 2 asinh(sqrt(c)|x - y| / sqrt(delta_x delta_y)) / sqrt(c) on the
            # ball, its chord on the hyperboloid; arcosh(1 + t) lost all relative accuracy for
            # close points (0 for points 1e-9 apart)
            return manifold().dist(x, y).squeeze(-1)

        if name == "poincare":
            def pairwise(a, b):
                # d(a, b) increases with |a - b|^2 / (1 - c|b|^2) for a fixed a
                import torch

                inv = 1 / (1 - c * b.pow(2).sum(-1)).clamp_min(torch.finfo(b.dtype).tiny)
                return _cdist(a, b).square_() * inv
        else:
            def pairwise(a, b):
                # the same key on the points' images in the ball, b_s / (1 + sqrt(c) b_0), whose
                # 1 - c|image|^2 is 2 / (1 + sqrt(c) b_0): -<a, b>_L cancelled (eps x0^2) for
                # close points far out and misranked near ties
                ball_a, ball_b = a[:, 1:] / (1 + sc * a[:, :1]), b[:, 1:] / (1 + sc * b[:, :1])
                return _cdist(ball_a, ball_b).square_() * ((1 + sc * b[:, 0]) / 2)

        formula = ("2 asinh(sqrt(c)|x - y| / sqrt((1 - c|x|^2)(1 - c|y|^2))) / sqrt(c)" if name == "poincare"
                   else "2 asinh(sqrt(c) l / 2) / sqrt(c), l the Minkowski chord |y - x|_L")
        return _Distance(name, c, full, pairwise, formula)
    raise EvaluationError(f"unknown distance {name!r}: use poincare, lorentz, euclidean or a callable")


def _cdist(a, b):
    """|a_i - b_j| as (B, N): the direct difference, not |a|^2 + |b|^2 - 2ab, which cancels
    for close points."""
    import torch

    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


euclidean_distance = make_distance("euclidean")
poincare_distance = make_distance("poincare")
lorentz_distance = make_distance("lorentz")
DISTANCES = {"euclidean": euclidean_distance, "poincare": poincare_distance, "lorentz": lorentz_distance}
