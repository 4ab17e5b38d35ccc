"""Hard negatives for hierarchy training: each source's intruders in the current embedding.

An intruder of a source u is a node w, neither u nor an ancestor or descendant of u, that
is closer to u than u's farthest ancestor: exactly the nodes that push u's ancestors down
in the reconstruction ranking (metrics.py). Uniform negatives meet a given intruder rarely
(50 draws among 82,115 nouns per edge and epoch), which is why the reference trains the
noun closure for 1,500 epochs; drawing some negatives among the intruders, mined again every
few epochs, works on those pairs directly. Descendants are left out: u's children are
closer to u than its root ancestor in any reasonable embedding, and pushing them away
fights their own positive edge to u (they stay among the uniform negatives, as in the
reference).

Mining scans every source against every node (as a full evaluation does) with the
distances' order-preserving keys and keeps the ``limit`` closest intruders of each source
(ties in node order). On a CPU with numba it runs one compiled pass, sources in parallel,
that keeps only the keys below each source's threshold (21 s for the nouns on 2 cores);
otherwise torch blocks of (1024, N) keys on the points' device (90 s on the same CPU).
"""

from __future__ import annotations

import numpy as np
import torch

from geomir.diagnostics import UsageError

from . import numba_engine
from .hierarchy import Hierarchy
from .metrics import make_distance
from .numba_engine import numba

__all__ = ["Intruders", "mine_intruders"]

prange = numba.prange if numba is not None else range

# sources per block: a (block, N) key matrix of float64
_BLOCK = 1024


class Intruders:
    """The mined intruders: ``table`` (N, limit) node ids, closest first (-1 beyond ``count``),
    ``count`` (N,) how many each source has."""

    def __init__(self, table: torch.Tensor, count: torch.Tensor):
        self.table, self.count = table, count

    def sample(self, sources: torch.Tensor, fallback: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """(B, M) intruders of ``sources`` (B,), drawn uniformly among each source's; ``fallback``
        (B, M) where a source has none."""
        shape = fallback.shape
        src = sources[:, None].expand(shape)
        count = self.count[src]
        pick = (torch.rand(shape, generator=gen, dtype=torch.float64) * count).long()
        pick = pick.clamp_(max=self.table.shape[1] - 1)
        return torch.where(count > 0, self.table[src, pick], fallback)

    def state_dict(self) -> dict:
        return {"table": self.table.to(torch.int32), "count": self.count.to(torch.int32)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Intruders":
        return cls(state["table"].long(), state["count"].long())


def mine_intruders(points: torch.Tensor, hierarchy: Hierarchy, manifold: str, curvature: float = 1.0,
                   limit: int = 64, engine: str = "auto") -> Intruders:
    """The (at most ``limit`` closest) intruders of every node under ``points`` (N, coords) on
    ``manifold`` ("poincare", "lorentz" or "euclidean"). ``engine``: "numba", "torch" or
    "auto" (numba for CPU points when it is installed)."""
    if manifold not in numba_engine.KINDS:
        raise UsageError(f"unknown manifold {manifold!r} (expected one of {', '.join(numba_engine.KINDS)})")
    if engine not in ("auto", "numba", "torch"):
        raise UsageError(f"unknown mining engine {engine!r} (expected auto, numba or torch)")
    if engine == "numba" and not numba_engine.available():
        raise UsageError("mining with engine 'numba' needs numba: pip install numba (or geomir[fast]), or use 'torch'")
    n = hierarchy.num_nodes
    edges = torch.as_tensor(np.array(hierarchy.edges))
    up_start = torch.as_tensor(np.array(hierarchy.offsets))
    by_target = torch.argsort(edges[:, 1], stable=True)
    down = edges[by_target, 0]
    down_start = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(edges[:, 1], minlength=n), 0)])
    limit = min(limit, n)
    points = points.detach()
    if engine == "numba" or (engine == "auto" and points.device.type == "cpu" and numba_engine.available()):
        table = np.full((n, limit), -1, dtype=np.int64)
        count = np.zeros(n, dtype=np.int64)
        _mine(points.cpu().numpy().astype(np.float64), numba_engine.KINDS[manifold], float(curvature),
              up_start.numpy(), edges[:, 1].numpy().copy(), down_start.numpy(), down.numpy(), table, count,
              4 * numba.get_num_threads())
        return Intruders(torch.from_numpy(table), torch.from_numpy(count))
    keys = make_distance(manifold, curvature).pairwise
    table = torch.full((n, limit), -1, dtype=torch.long)
    count = torch.zeros(n, dtype=torch.long)
    up_start, edges, down_start, down = (t.to(points.device) for t in (up_start, edges, down_start, down))
    for lo in range(0, n, _BLOCK):
        src = torch.arange(lo, min(n, lo + _BLOCK), device=points.device)
        d = keys(points[src], points)
        rows = torch.arange(src.numel(), device=points.device)
        ups = _ranges(up_start, src)
        up_row, up = torch.repeat_interleave(rows, ups[1]), edges[ups[0], 1]
        threshold = torch.full((src.numel(),), -torch.inf, dtype=d.dtype, device=points.device)
        threshold.scatter_reduce_(0, up_row, d[up_row, up], "amax")
        d[up_row, up] = torch.inf
        downs = _ranges(down_start, src)
        d[torch.repeat_interleave(rows, downs[1]), down[downs[0]]] = torch.inf
        d[rows, src] = torch.inf
        closest, index = torch.topk(d, limit, largest=False, sorted=True)
        inside = closest < threshold[:, None]  # a tie does not push an ancestor down
        table[lo:lo + src.numel()] = torch.where(inside, index, -1).cpu()
        count[lo:lo + src.numel()] = inside.sum(1).cpu()
    return Intruders(table, count)


def _ranges(start: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions start[s]..start[s+1]-1 of every s in ``src`` (consecutive ids), and each
    one's length."""
    first, last = start[src], start[src + 1]
    return torch.arange(int(first[0]), int(last[-1]), device=src.device), last - first


@numba_engine._jit
def _within(sorted_ids, lo, hi, w):
    """Whether ``w`` is in ``sorted_ids[lo:hi]`` (increasing)."""
    end = hi
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_ids[mid] < w:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and sorted_ids[lo] == w


@numba_engine._jit
def _keys(P, PT, u, kind, inv, out):
    """``out[w]``: an increasing function of d(P[u], P[w]) over all w (the pairwise keys of
    metrics.py), one coordinate at a time so that the loop over w vectorizes."""
    out[:] = 0.0
    for i in range(PT.shape[0]):
        x, row = P[u, i], PT[i]
        if kind == 1:  # Lorentz: -<x, y>_L
            if i == 0:
                for w in range(out.shape[0]):
                    out[w] += x * row[w]
            else:
                for w in range(out.shape[0]):
                    out[w] -= x * row[w]
        else:
            for w in range(out.shape[0]):
                t = x - row[w]
                out[w] += t * t
    if kind == 0:  # Poincaré: |x - y|^2 / (1 - c|y|^2)
        for w in range(out.shape[0]):
            out[w] *= inv[w]


@numba_engine._jit_parallel
def _mine(P, kind, c, up_start, ups, down_start, downs, table, count, chunks):
    n, limit = table.shape
    PT = np.ascontiguousarray(P.T)
    inv = np.ones(n)
    if kind == 0:
        for w in range(n):
            inv[w] = 1.0 / max(1.0 - c * np.sum(P[w] * P[w]), 1e-300)
    for chunk in prange(chunks):
        key = np.empty(n)  # one row of keys per thread, reused
        keys = np.empty(limit)
        ids = np.empty(limit, dtype=np.int64)
        for u in range(chunk, n, chunks):
            a0, a1, d0, d1 = up_start[u], up_start[u + 1], down_start[u], down_start[u + 1]
            if a0 == a1:
                continue
            _keys(P, PT, u, kind, inv, key)
            threshold = -np.inf
            for e in range(a0, a1):
                threshold = max(threshold, key[ups[e]])
            m = 0
            for w in range(n):
                k = key[w]
                if not k < threshold or w == u or (m == limit and k >= keys[m - 1]):
                    continue
                if _within(ups, a0, a1, w) or _within(downs, d0, d1, w):
                    continue
                j = m if m < limit else limit - 1  # insert after equal keys: ties in node order
                while j > 0 and keys[j - 1] > k:
                    keys[j], ids[j] = keys[j - 1], ids[j - 1]
                    j -= 1
                keys[j], ids[j] = k, w
                m = min(m + 1, limit)
            for j in range(m):
                table[u, j] = ids[j]
            count[u] = m
