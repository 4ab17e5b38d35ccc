"""Mined intruders (hard negatives) against a brute-force reading of their definition: the
nodes other than the source, its ancestors and its descendants that are strictly closer to
it than its farthest ancestor, the closest ``limit`` of them; and sampling draws only them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomir.representations import numba_engine
from geomir.representations.hierarchy import Hierarchy, generated_tree
from geomir.representations.intruders import Intruders, mine_intruders
from geomir.representations.train import NegativeSampler, make_space


def _brute_force(points: torch.Tensor, h: Hierarchy, manifold: str, limit: int) -> list[list[int]]:
    space = make_space(manifold, points.shape[1] - (manifold == "lorentz"))
    d = space.distance(points[:, None, :], points[None, :, :])
    out = []
    for u, name in enumerate(h.names):
        ups = [h.id_of(a) for a in h.ancestors(name)]
        if not ups:
            out.append([])
            continue
        skip = set(ups) | {h.id_of(w) for w in h.descendants(name)} | {u}
        far = max(float(d[u, a]) for a in ups)
        inside = sorted((float(d[u, w]), w) for w in range(h.num_nodes) if w not in skip and float(d[u, w]) < far)
        out.append([w for _, w in inside[:limit]])
    return out


def _dag() -> Hierarchy:
    # "d" has two parents, so its descendants and ancestors are not one chain
    return Hierarchy.from_pairs([("a", "r"), ("b", "r"), ("c", "a"), ("d", "a"), ("d", "b"), ("e", "b"),
                                 ("f", "d"), ("g", "c"), ("h", "e"), ("i", "e")])


ENGINES = ["torch", pytest.param("numba", marks=pytest.mark.skipif(not numba_engine.available(), reason="no numba"))]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("manifold", ["poincare", "lorentz", "euclidean"])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), limit=st.sampled_from([2, 4, 64]))
def test_mined_intruders_are_the_closest_nodes_that_outrank_an_ancestor(manifold, engine, seed, limit):
    h = _dag()
    gen = torch.Generator().manual_seed(seed)
    space = make_space(manifold, 3)
    points = space.init(h.num_nodes, 1.5 if manifold != "poincare" else 0.5, gen, torch.float64)
    mined = mine_intruders(points, h, manifold, limit=limit, engine=engine)
    expected = _brute_force(points, h, manifold, limit)
    for u in range(h.num_nodes):
        got = mined.table[u, :int(mined.count[u])].tolist()
        assert got == expected[u], (h.names[u], got, expected[u])
        assert bool((mined.table[u, int(mined.count[u]):] == -1).all())


@pytest.mark.parametrize("engine", ENGINES)
def test_mining_a_larger_tree(monkeypatch, engine):
    from geomir.representations import intruders as module

    monkeypatch.setattr(module, "_BLOCK", 7)  # torch: blocks that split the sources unevenly
    h = generated_tree(depth=3, branching=3, seed=1)
    points = make_space("poincare", 2).init(h.num_nodes, 0.7, torch.Generator().manual_seed(3), torch.float64)
    mined = mine_intruders(points, h, "poincare", limit=5, engine=engine)
    expected = _brute_force(points, h, "poincare", 5)
    assert [mined.table[u, :int(mined.count[u])].tolist() for u in range(h.num_nodes)] == expected
    assert int(mined.count.sum()) > 0 and int((mined.count == 5).sum()) > 0  # some sources hit the limit


def test_sampling_draws_each_intruder_uniformly_and_falls_back_without_any():
    table = torch.tensor([[3, 5, -1], [-1, -1, -1], [1, 2, 4]])
    mined = Intruders(table, torch.tensor([2, 0, 3]))
    gen = torch.Generator().manual_seed(0)
    draws = mined.sample(torch.tensor([0, 1, 2]).repeat(20_000), torch.full((60_000, 2), 9), gen).view(20_000, 3, 2)
    assert set(draws[:, 0].flatten().tolist()) == {3, 5}
    assert bool((draws[:, 1] == 9).all())  # no intruders: the fallback
    share = np.bincount(draws[:, 2].flatten().numpy(), minlength=5)[[1, 2, 4]] / 40_000
    assert np.allclose(share, 1 / 3, atol=0.01)
    # the sampler puts them first among the negatives, after burn-in only, masked like any other
    h = _dag()
    sampler = NegativeSampler(h.num_nodes, torch.tensor(h.edges), torch.as_tensor(h.degree_counts()))
    u = torch.full((500,), h.id_of("f"))
    intruders = Intruders(torch.tensor([[h.id_of("d"), h.id_of("g")]] * h.num_nodes), torch.full((h.num_nodes,), 2))
    neg, valid = sampler.sample(u, 6, False, gen, hard=3, intruders=intruders)
    assert set(neg[:, :3].flatten().tolist()) == {h.id_of("d"), h.id_of("g")}
    assert bool((valid[:, :3] == (neg[:, :3] != h.id_of("d"))).all())  # "d" is an ancestor of "f"
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(sampler.sample(u, 6, True, g1, hard=3, intruders=intruders)[0], sampler.sample(u, 6, True, g2)[0])


def test_state_round_trip():
    mined = mine_intruders(torch.rand(10, 2) * 0.3, _dag(), "poincare", limit=3)
    back = Intruders.from_state_dict(mined.state_dict())
    assert torch.equal(back.table, mined.table) and torch.equal(back.count, mined.count)


def test_bad_arguments_are_usage_errors(monkeypatch):
    from geomir.diagnostics import UsageError

    points = torch.rand(10, 2) * 0.3
    with pytest.raises(UsageError, match="unknown manifold 'sphere'"):
        mine_intruders(points, _dag(), "sphere")
    with pytest.raises(UsageError, match="unknown mining engine 'cuda'"):
        mine_intruders(points, _dag(), "poincare", engine="cuda")
    monkeypatch.setattr(numba_engine, "numba", None)
    with pytest.raises(UsageError, match="needs numba"):
        mine_intruders(points, _dag(), "poincare", engine="numba")
    assert int(mine_intruders(points, _dag(), "poincare").count.sum()) >= 0  # auto falls back to torch
