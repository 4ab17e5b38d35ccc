"""Reconstruction mean rank and MAP against independent oracles: a brute-force rank loop,
scikit-learn's average_precision_score, and a port of the reference reconstruction_worker."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomir.representations import metrics
from geomir.representations.hierarchy import Hierarchy, generated_tree
from geomir.representations.metrics import (EvaluationError, make_distance, poincare_distance,
                                            reconstruction, reconstruction_from_distances)

average_precision_score = pytest.importorskip("sklearn.metrics").average_precision_score


def oracle(dist: np.ndarray, h: Hierarchy) -> tuple[float, float, int]:
    """Brute force: rank = 1 + #{non-ancestor w != u closer than v}; AP by sklearn with
    u scored -1e12 as the reference does (the distances must be finite)."""
    n = h.num_nodes
    ranks, aps = [], []
    for u, nb in enumerate(h.neighbors()):
        if nb.size == 0:
            continue
        positives = set(nb.tolist())
        for v in nb.tolist():
            ranks.append(1 + sum(1 for w in range(n) if w != u and w not in positives and dist[u, w] < dist[u, v]))
        labels = np.zeros(n)
        labels[nb] = 1
        scores = -dist[u].astype(np.float64)
        scores[u] = -1e12
        aps.append(average_precision_score(labels, scores))
    return float(np.mean(ranks)), float(np.mean(aps)), len(ranks)


def reference_worker(dist: np.ndarray, h: Hierarchy) -> tuple[float, float]:
    """poincare-embeddings hype/graph.py reconstruction_worker on a distance matrix."""
    ranksum = nranks = ap_scores = iters = 0
    labels = np.empty(h.num_nodes)
    for obj, neighbors in enumerate(h.neighbors()):
        if neighbors.size == 0:
            continue
        labels.fill(0)
        dists = torch.tensor(dist[obj], dtype=torch.float64)
        dists[obj] = 1e12
        _, sorted_idx = dists.sort()
        ranks, = np.where(np.isin(sorted_idx.numpy(), neighbors))
        ranks += 1
        n = ranks.shape[0]
        ranksum += ranks.sum() - (n * (n - 1) / 2)
        nranks += ranks.shape[0]
        labels[neighbors] = 1
        ap_scores += average_precision_score(labels, -dists.numpy())
        iters += 1
    return float(ranksum) / nranks, float(ap_scores) / iters


@pytest.fixture(params=[0.0, math.inf], ids=["all", "below-only"])
def path(request, monkeypatch):
    """Both ways of locating the negatives: all of them, or those below the farthest ancestor."""
    monkeypatch.setattr(metrics, "_COMPACT", request.param)
    return request.param


@st.composite
def hierarchies(draw):
    n = draw(st.integers(2, 12))
    pairs = draw(st.lists(st.sampled_from([(j, i) for j in range(n) for i in range(j)]), min_size=1, max_size=2 * n))
    return Hierarchy.from_ids([f"v{i}" for i in range(n)], pairs)


@settings(max_examples=60, deadline=None)
@given(hierarchies(), st.integers(0, 2**32 - 1), st.sampled_from([2, 4, 1000]), st.sampled_from([1, 3, None]))
def test_matches_brute_force_and_sklearn_with_ties(h, seed, levels, batch_size) -> None:
    # few distinct values: many ties between ancestors, non-ancestors and both
    dist = np.random.default_rng(seed).integers(0, levels, size=(h.num_nodes, h.num_nodes)).astype(np.float64)
    want = oracle(dist, h)
    default = metrics._COMPACT
    for compact in (0.0, math.inf):
        metrics._COMPACT = compact
        try:
            got = reconstruction_from_distances(dist, h, batch_size=batch_size)
        finally:
            metrics._COMPACT = default
        assert got.num_pairs == want[2] == h.num_edges
        assert got.mean_rank == pytest.approx(want[0], rel=1e-12)
        assert got.map == pytest.approx(want[1], rel=1e-12)


def test_random_points_match_the_reference_worker(path) -> None:
    h = generated_tree(depth=4, branching=4, seed=3)
    y = torch.randn(h.num_nodes, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = 0.95 * y / (1 + y.norm(dim=1, keepdim=True))  # inside the ball
    dist = poincare_distance(x[:, None], x[None]).numpy()
    ref_rank, ref_map = reference_worker(dist, h)
    got = reconstruction(x, h, "poincare", batch_size=5)
    assert got.mean_rank == pytest.approx(ref_rank, rel=1e-12)
    assert got.map == pytest.approx(ref_map, rel=1e-12)
    assert got.num_sources == h.num_nodes - 1 and got.num_pairs == h.num_edges
    # the broadcast callable and the precomputed matrix agree with the pairwise key
    for other in (reconstruction(x, h, lambda a, b: poincare_distance(a, b)),
                  reconstruction_from_distances(torch.as_tensor(dist), h),
                  reconstruction_from_distances(lambda src: dist[src.numpy()], h, batch_size=7)):
        assert (other.mean_rank, other.num_pairs, other.num_sources) == (got.mean_rank, got.num_pairs, got.num_sources)
        assert other.map == pytest.approx(got.map, rel=1e-14)


def test_near_perfect_embedding_and_sklearn(path) -> None:
    # ancestors near, the rest far, plus noise: most negatives lie beyond the farthest ancestor
    h = generated_tree(depth=5, branching=3, seed=1)
    rng = np.random.default_rng(5)
    n = h.num_nodes
    dist = rng.random((n, n)) + 3.0
    for u, nb in enumerate(h.neighbors()):
        dist[u, nb] = rng.random(nb.size) * 3.2
    want = oracle(dist, h)
    got = reconstruction_from_distances(dist, h, batch_size=16)
    assert (got.mean_rank, got.map, got.num_pairs) == pytest.approx(want, rel=1e-12)


def test_perfect_embedding(path) -> None:
    h = generated_tree(depth=4, branching=3, seed=0)
    dist = np.ones((h.num_nodes, h.num_nodes))
    for u, nb in enumerate(h.neighbors()):
        dist[u, nb] = 0.5
    got = reconstruction_from_distances(dist, h)
    assert got.mean_rank == 1.0 and got.map == 1.0


def test_hyperbolic_tree_embedding_is_perfect() -> None:
    # a star: the root at the origin, leaves spread on a circle near the boundary
    names = ["root"] + [f"leaf{i}" for i in range(12)]
    h = Hierarchy.from_pairs([(x, "root") for x in names[1:]], names=names)
    angle = torch.arange(12, dtype=torch.float64) * (2 * math.pi / 12)
    x = torch.cat([torch.zeros(1, 2, dtype=torch.float64), 0.9 * torch.stack([angle.cos(), angle.sin()], 1)])
    got = reconstruction(x, h, "poincare")
    assert (got.mean_rank, got.map, got.num_sources, got.num_pairs) == (1.0, 1.0, 12, 12)


def test_infinite_distances() -> None:
    # +inf distances are allowed (points on the boundary): u and the non-ancestors at inf
    # tie with an ancestor at inf; ranks count only strictly closer non-ancestors
    h = Hierarchy.from_pairs([("a", "b"), ("a", "c")], names=["a", "b", "c", "d", "e"])
    inf = math.inf
    dist = np.array([[0, 1, inf, inf, 0.5]] + [[1.0] * 5] * 4)
    got = reconstruction_from_distances(dist, h)
    # b (at 1): rank 1 + #{e} = 2, precision 1/2 (b, e at <= 1)
    # c (at inf): rank 1 + #{e} = 2 (d at inf is not closer), precision 2/5 (all five nodes,
    # u included, are at <= inf)
    assert got.mean_rank == 2.0
    assert got.map == pytest.approx((1 / 2 + 2 / 5) / 2)


def test_lorentz_and_euclidean(path) -> None:
    h = generated_tree(depth=3, branching=4, seed=2)
    g = torch.Generator().manual_seed(1)
    for curvature in (1.0, 0.5):
        y = torch.randn(h.num_nodes, 3, dtype=torch.float64, generator=g)
        x = torch.cat([((1 / curvature) + y.pow(2).sum(1, keepdim=True)).sqrt(), y], 1)
        lor = make_distance("lorentz", curvature)
        want = oracle(lor(x[:, None], x[None]).numpy(), h)
        got = reconstruction(x, h, lor)
        assert (got.mean_rank, got.map, got.num_pairs) == pytest.approx(want, rel=1e-9)
        ball = make_distance("poincare", curvature)
        p = 0.5 * y / (1 + y.norm(dim=1, keepdim=True)) / math.sqrt(curvature)
        want = oracle(ball(p[:, None], p[None]).numpy(), h)
        got = reconstruction(p.numpy(), h, ball)
        assert (got.mean_rank, got.map) == pytest.approx(want[:2], rel=1e-9)
    y = torch.randn(h.num_nodes, 4, dtype=torch.float64, generator=g)
    want = oracle(torch.cdist(y, y).numpy(), h)
    assert reconstruction(y, h, "euclidean").map == pytest.approx(want[1], rel=1e-9)


def test_distances_agree_with_their_pairwise_order() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(5, 3, dtype=torch.float64, generator=g) * 0.4
    b = torch.randn(40, 3, dtype=torch.float64, generator=g) * 0.4
    for d, pa, pb in [(make_distance("poincare", 0.7), a, b),
                      (make_distance("euclidean"), a, b),
                      (make_distance("lorentz"), *(torch.cat([(1 + v.pow(2).sum(1, keepdim=True)).sqrt(), v], 1)
                                                  for v in (a, b)))]:
        full = d(pa[:, None], pb[None])
        assert torch.equal(full.argsort(dim=1), d.pairwise(pa, pb).argsort(dim=1)), d


def test_sample_and_float32() -> None:
    h = generated_tree(depth=5, branching=4, seed=7)
    x = torch.randn(h.num_nodes, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.2
    full = reconstruction(x, h, "poincare")
    assert full.num_sources == h.num_nodes - 1
    a = reconstruction(x, h, "poincare", sample=50, seed=1)
    assert a.num_sources == 50 and a == reconstruction(x, h, "poincare", sample=50, seed=1)
    assert a != reconstruction(x, h, "poincare", sample=50, seed=2)
    assert reconstruction(x, h, "poincare", sample=10**6) == full
    # the sampled sources, checked against the oracle on just those rows
    sources = np.sort(np.random.default_rng(1).choice(np.flatnonzero(np.diff(h.offsets) > 0), 50, replace=False))
    keep = np.zeros(h.num_nodes, bool)
    keep[sources] = True
    sub = Hierarchy(h.names, h.edges[keep[h.edges[:, 0]]])
    dist = poincare_distance(x[:, None], x[None]).numpy()
    want = oracle(dist, sub)
    assert (a.mean_rank, a.map, a.num_pairs) == pytest.approx(want, rel=1e-12)
    # float32 points: the same up to rounding
    single = reconstruction(x.float(), h, "poincare")
    assert single.mean_rank == pytest.approx(full.mean_rank, rel=1e-3)
    assert single.map == pytest.approx(full.map, rel=1e-3)


def test_errors() -> None:
    h = generated_tree(2, 2)
    n = h.num_nodes
    with pytest.raises(EvaluationError, match="NaN"):
        reconstruction_from_distances(np.full((n, n), np.nan), h)
    with pytest.raises(EvaluationError, match="matrix must be"):
        reconstruction_from_distances(np.zeros((n, n + 1)), h)
    with pytest.raises(EvaluationError, match="points must be"):
        reconstruction(torch.zeros(n + 1, 2), h, "poincare")
    with pytest.raises(EvaluationError, match="unknown distance"):
        reconstruction(torch.zeros(n, 2), h, "hyperbolic")
    with pytest.raises(EvaluationError, match="rows must be"):
        reconstruction_from_distances(lambda src: torch.zeros(len(src), n - 1), h)
    with pytest.raises(EvaluationError, match="curvature"):
        make_distance("poincare", 0.0)
    # no edges: the metrics are undefined, an error rather than NaN (docs/representations.md)
    with pytest.raises(EvaluationError, match="no edges .* undefined"):
        reconstruction_from_distances(np.zeros((1, 1)), Hierarchy.from_pairs([], names=["a"]))


def test_integer_and_half_distances() -> None:
    h = generated_tree(3, 3, seed=5)
    dist = np.random.default_rng(0).integers(0, 5, size=(h.num_nodes,) * 2)
    want = oracle(dist.astype(float), h)
    assert reconstruction_from_distances(dist, h).map == pytest.approx(want[1])
    assert reconstruction_from_distances(torch.as_tensor(dist).half(), h).map == pytest.approx(want[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    h = generated_tree(depth=5, branching=4, seed=1)
    x = torch.randn(h.num_nodes, 5, dtype=torch.float64) * 0.2
    assert reconstruction(x.cuda(), h, "poincare") == reconstruction(x, h, "poincare")
