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

Mining scans every source against every node (as a full evaluation does) in blocks, with
the distances' order-preserving ``pairwise`` keys, and keeps the ``limit`` closest intruders
of each source.
"""

from __future__ import annotations

import numpy as np
import torch

from .hierarchy import Hierarchy
from .metrics import make_distance

__all__ = ["Intruders", "mine_intruders"]

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
                   limit: int = 64) -> Intruders:
    """The (at most ``limit`` closest) intruders of every node under ``points`` (N, coords) on
    ``manifold`` ("poincare", "lorentz" or "euclidean")."""
    n = hierarchy.num_nodes
    keys = make_distance(manifold, curvature).pairwise
    edges = torch.as_tensor(np.array(hierarchy.edges))
    up_start = torch.as_tensor(np.array(hierarchy.offsets))
    by_target = torch.argsort(edges[:, 1], stable=True)
    down = edges[by_target, 0]
    down_start = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(edges[:, 1], minlength=n), 0)])
    limit = min(limit, n)
    table = torch.full((n, limit), -1, dtype=torch.long)
    count = torch.zeros(n, dtype=torch.long)
    points = points.detach().cpu()
    for lo in range(0, n, _BLOCK):
        src = torch.arange(lo, min(n, lo + _BLOCK))
        d = keys(points[src], points)
        rows = torch.arange(src.numel())
        ups = _ranges(up_start, src)
        up_row, up = torch.repeat_interleave(rows, ups[1]), edges[ups[0], 1]
        threshold = torch.full((src.numel(),), -torch.inf, dtype=d.dtype)
        threshold.scatter_reduce_(0, up_row, d[up_row, up], "amax")
        d[up_row, up] = torch.inf
        downs = _ranges(down_start, src)
        d[torch.repeat_interleave(rows, downs[1]), down[downs[0]]] = torch.inf
        d[rows, src] = torch.inf
        closest, index = torch.topk(d, limit, largest=False, sorted=True)
        inside = closest < threshold[:, None]  # a tie does not push an ancestor down
        table[src] = torch.where(inside, index, -1)
        count[src] = inside.sum(1)
    return Intruders(table, count)


def _ranges(start: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions start[s]..start[s+1]-1 of every s in ``src`` (consecutive ids), and each
    one's length."""
    first, last = start[src], start[src + 1]
    return torch.arange(int(first[0]), int(last[-1])), last - first
