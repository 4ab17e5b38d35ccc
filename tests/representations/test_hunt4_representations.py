"""Hunt 4 (representations): distances of close points, Lorentz ranking of near ties far out,
edge lists whose first edge is id1 -> id2, masks of the wrong length, sample values, and a
boundary_eps below the dtype's ball margin. Each failed on the old code."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from geomir.representations.hierarchy import Hierarchy, HierarchyError
from geomir.representations.metrics import EvaluationError, make_distance, reconstruction
from geomir.representations.train import TrainConfig

mpmath.mp.dps = 40


def _ball_distance(x, y, c=1.0):
    X, Y = [mpmath.mpf(float(t)) for t in x], [mpmath.mpf(float(t)) for t in y]
    sq = sum((a - b) ** 2 for a, b in zip(X, Y))
    den = (1 - c * sum(a * a for a in X)) * (1 - c * sum(b * b for b in Y))
    return float(mpmath.acosh(1 + 2 * c * sq / den) / mpmath.sqrt(c))


def _lift(s):
    return np.concatenate([[np.sqrt(1 + s @ s)], s])


@pytest.mark.parametrize("h", [1e-9, 1e-6, 1e-2])
def test_poincare_distance_of_close_points_is_accurate(h):
    """arcosh(1 + t) gave 0.0 for points 1e-9 apart (mpmath: 2.3e-9)."""
    x = np.array([0.3, 0.1, 0.2])
    y = x + h * np.array([1.0, 0.0, 0.0])
    got = float(make_distance("poincare")(torch.tensor(x), torch.tensor(y)))
    assert got == pytest.approx(_ball_distance(x, y), rel=1e-9)


def test_lorentz_distance_far_out_is_accurate():
    """arcosh(-c<x, y>_L) was 0.8% off at radius 10 for points 1e-3 apart."""
    d = np.array([1.0, 2.0, 2.0]) / 3
    x = np.sinh(10.0) * d
    y = x + 1e-3 * np.array([0.0, 1.0, -1.0]) / np.sqrt(2)
    X, Y = _lift(x), _lift(y)
    exact = _ball_distance(x / (1 + X[0]), y / (1 + Y[0]))
    got = float(make_distance("lorentz")(torch.tensor(X), torch.tensor(Y)))
    assert got == pytest.approx(exact, rel=1e-6)


def test_lorentz_ranking_of_near_ties_far_out():
    """The key -<a, b>_L cancelled: MAP 0.5 where the exact ranking gives 1.0 (114 of 200)."""
    rng = np.random.default_rng(0)
    h = Hierarchy.from_pairs([("u", "v")], names=["u", "v", "w"])
    for _ in range(20):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        us = np.sinh(11.0) * d
        t1 = np.cross(d, rng.normal(size=3))
        t1 /= np.linalg.norm(t1)
        t2 = np.cross(d, t1)
        points = np.stack([_lift(us), _lift(us + 1e-3 * t1), _lift(us + 1.05e-3 * t2)])
        assert reconstruction(torch.tensor(points), h, "lorentz").map == 1.0


def test_an_edge_list_whose_first_edge_is_id1_id2_reads_back(tmp_path):
    h = Hierarchy(("id1", "id2", "x"), np.array([[0, 1], [2, 1]]))
    for header in (False, True):
        h.write_tsv(tmp_path / "e.tsv", header=header)
        back = Hierarchy.read_tsv(tmp_path / "e.tsv", closure=False)
        assert back.names == h.names and back.edges.tolist() == h.edges.tolist()


@pytest.mark.parametrize("n", [1, 4])
def test_a_mask_of_the_wrong_length_is_a_hierarchy_error(n):
    h = Hierarchy(("a", "b", "c"), np.array([[0, 1]]))
    with pytest.raises(HierarchyError, match=r"one entry per node \(3\)"):
        h.restrict(np.ones(n, dtype=bool))


@pytest.mark.parametrize("sample", [2.5, True, 0])
def test_sample_must_be_a_positive_integer(sample):
    h = Hierarchy(("a", "b", "c"), np.array([[0, 1], [2, 1]]))
    with pytest.raises(EvaluationError, match="sample must be a positive integer"):
        reconstruction(torch.zeros(3, 2), h, "euclidean", sample=sample)


def test_a_boundary_eps_below_the_ball_margin_warns():
    with pytest.warns(UserWarning, match="below float32's ball margin 1e-05"):
        TrainConfig(manifold="poincare", dtype="float32", boundary_eps=1e-8)
