"""Hierarchy: the transitive closure against a Floyd-Warshall oracle, cycles, edge-list files,
generated trees."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomir.diagnostics import GeomirError
from geomir.representations.hierarchy import Hierarchy, HierarchyError, generated_tree


def oracle_closure(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """reach[u, a]: a is reachable from u by >= 1 child -> parent step (Floyd-Warshall)."""
    reach = np.zeros((n, n), dtype=bool)
    for c, p in pairs:
        reach[c, p] = True
    for k in range(n):
        reach |= reach[:, k:k + 1] & reach[k:k + 1, :]
    return reach


@st.composite
def dags(draw, max_nodes: int = 11):
    """Random DAGs: pairs (j, i) with i < j are child j -> parent i, under shuffled names."""
    n = draw(st.integers(1, max_nodes))
    possible = [(j, i) for j in range(n) for i in range(j)]
    pairs = draw(st.lists(st.sampled_from(possible), max_size=3 * n) if possible else st.just([]))
    perm = draw(st.permutations(range(n)))
    names = [f"v{perm[i]}" for i in range(n)]
    return n, names, pairs


@settings(max_examples=150, deadline=None)
@given(dags())
def test_closure_matches_floyd_warshall(dag) -> None:
    n, names, pairs = dag
    h = Hierarchy.from_pairs([(names[c], names[p]) for c, p in pairs], names=names)
    reach = oracle_closure(n, pairs)
    assert h.names == tuple(names)
    assert h.edges.dtype == np.int64 and h.edges.shape == (int(reach.sum()), 2)
    assert {tuple(e) for e in h.edges.tolist()} == {tuple(e) for e in np.argwhere(reach).tolist()}
    key = h.edges[:, 0] * n + h.edges[:, 1]
    assert np.all(np.diff(key) > 0)  # sorted, unique
    assert not np.any(h.edges[:, 0] == h.edges[:, 1])
    assert h.is_closed()
    for u, nb in enumerate(h.neighbors()):
        assert nb.tolist() == np.flatnonzero(reach[u]).tolist()
    assert h.degree_counts().tolist() == reach.sum(axis=0).tolist()
    # direct pairs as given
    raw = Hierarchy.from_pairs([(names[c], names[p]) for c, p in pairs], closure=False, names=names)
    assert {tuple(e) for e in raw.edges.tolist()} == set(pairs)
    assert raw.is_closed() == (set(pairs) == {tuple(e) for e in np.argwhere(reach).tolist()})
    # subtree of each root-ish node: itself and its descendants, the closure restricted
    for r in range(n):
        keep = reach[:, r].copy()
        keep[r] = True
        sub = h.subtree(names[r])
        assert sub.names == tuple(x for x, k in zip(names, keep) if k)
        want = {(names[u], names[a]) for u, a in np.argwhere(reach & keep[:, None] & keep[None, :]).tolist()}
        assert {(sub.names[u], sub.names[a]) for u, a in sub.edges.tolist()} == want


@settings(max_examples=60, deadline=None)
@given(dags(max_nodes=8))
def test_default_node_order_is_sorted_and_canonical(dag) -> None:
    n, names, pairs = dag
    named = [(names[c], names[p]) for c, p in pairs]
    h = Hierarchy.from_pairs(named)
    assert list(h.names) == sorted({x for pair in named for x in pair})
    assert Hierarchy.from_pairs(list(reversed(named))) == h


def test_small_example_and_queries() -> None:
    h = Hierarchy.from_pairs([("dog", "canine"), ("canine", "carnivore"), ("cat", "feline"),
                              ("feline", "carnivore"), ("carnivore", "mammal")])
    assert h.num_nodes == 6 and h.num_edges == 3 + 3 + 2 + 2 + 1
    assert h.ancestors("dog") == ["canine", "carnivore", "mammal"]
    assert sorted(h.descendants("carnivore")) == ["canine", "cat", "dog", "feline"]
    assert h.subtree("feline").names == ("cat", "feline")
    assert h.subtree("feline").num_edges == 1
    assert h.degree_counts()[h.id_of("mammal")] == 5
    assert h.offsets.tolist()[-1] == h.num_edges
    assert repr(h) == "Hierarchy(6 nodes, 11 edges)"
    with pytest.raises(HierarchyError, match="no node 'wolf'"):
        h.id_of("wolf")
    with pytest.raises(ValueError):
        h.edges[0, 0] = 1  # read-only
    assert isinstance(HierarchyError("x"), GeomirError)


def test_cycles_are_errors_naming_a_node_on_the_cycle() -> None:
    with pytest.raises(HierarchyError, match="cycle") as e:
        Hierarchy.from_pairs([("tail", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("x", "tail")])
    msg = e.value.message
    assert "must be a DAG" in msg
    assert any(f"through '{x}'" in msg for x in "abc")
    assert "'tail'" not in msg and "'x'" not in msg  # only the cycle, not what hangs below it
    with pytest.raises(HierarchyError, match="cycle through 'a'"):
        Hierarchy.from_pairs([("a", "a")])
    with pytest.raises(HierarchyError, match="cycle"):
        Hierarchy.from_pairs([("a", "b"), ("b", "a")], closure=False)


def test_long_chains_need_no_recursion() -> None:
    n = 1500  # beyond Python's default recursion limit of 1000
    names = [f"n{i}" for i in range(n)]
    h = Hierarchy.from_ids(names, [(i + 1, i) for i in range(n - 1)])
    assert h.num_edges == n * (n - 1) // 2
    assert h.neighbors()[n - 1].tolist() == list(range(n - 1))
    long = Hierarchy.from_ids([f"n{i}" for i in range(200_000)], [(i + 1, i) for i in range(199_999)],
                              closure=False)
    assert long.num_edges == 199_999
    with pytest.raises(HierarchyError, match="cycle"):
        Hierarchy.from_ids(names, [(i + 1, i) for i in range(n - 1)] + [(0, n - 1)])


def test_bad_pairs() -> None:
    with pytest.raises(HierarchyError, match="two names"):
        Hierarchy.from_pairs([("a", 1)])
    with pytest.raises(HierarchyError, match="not in names"):
        Hierarchy.from_pairs([("a", "b")], names=["a"])
    with pytest.raises(HierarchyError, match="out of range"):
        Hierarchy.from_ids(["a"], [(0, 1)])
    with pytest.raises(HierarchyError, match="sorted"):
        Hierarchy(("a", "b", "c"), np.array([[0, 2], [0, 1]]))
    empty = Hierarchy.from_pairs([])
    assert empty.num_nodes == 0 and empty.num_edges == 0 and empty.edges.shape == (0, 2)
    lone = Hierarchy.from_pairs([], names=["solo"])
    assert lone.num_nodes == 1 and lone.neighbors()[0].size == 0


def test_tsv_round_trip(tmp_path) -> None:
    h = generated_tree(depth=4, branching=3, seed=2)
    for header in (False, True):
        path = tmp_path / f"tree{header}.tsv"
        h.write_tsv(path, header=header)
        lines = path.read_text().splitlines()
        assert len(lines) == h.num_edges + header
        back = Hierarchy.read_tsv(path)
        assert back == Hierarchy.from_pairs([(h.names[u], h.names[a]) for u, a in h.edges.tolist()])
        assert set(back.names) == set(h.names)
        assert Hierarchy.read_tsv(path, closure=False) == back  # it was closed already
    # direct edges only: reading closes them
    direct = tmp_path / "direct.tsv"
    direct.write_text("id1\tid2\tweight\ndog\tcanine\t1\ncanine \tmammal\t1.0\n\n")
    assert Hierarchy.read_tsv(direct).ancestors("dog") == ["canine", "mammal"]
    assert Hierarchy.read_tsv(direct, closure=False).ancestors("dog") == ["canine"]


def test_reads_the_poincare_embeddings_csv(tmp_path) -> None:
    path = tmp_path / "mammal_closure.csv"
    path.write_text("id1,id2,weight\r\nlion.n.01,big_cat.n.01,1\r\nbig_cat.n.01,feline.n.01,1\r\n"
                    "\"o'brien,x.n.01\",feline.n.01,1\r\n")
    h = Hierarchy.read_tsv(path)
    assert h.ancestors("lion.n.01") == ["big_cat.n.01", "feline.n.01"]
    assert h.ancestors("o'brien,x.n.01") == ["feline.n.01"]


@pytest.mark.parametrize("text, line, what", [
    ("a\tb\nc\n", 2, "got 1 field"),
    ("a\tb\nc\td\te\tf\n", 2, "got 4 fields"),
    ("a\tb\n\tb\n", 2, "empty node name"),
    ("id1\tid2\tweight\na\tb\tx\n", 2, "not a number"),
    ("a\tb\nb\tb\n", 2, "self loop on 'b'"),
    ("a,b\nc,\"d\n", 2, "malformed CSV"),
    ("x,y\nz\n", 2, "child,parent"),
])
def test_malformed_lines_report_file_and_line(tmp_path, text, line, what) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(HierarchyError) as e:
        Hierarchy.read_tsv(path)
    assert e.value.message.startswith(f"{path}:{line}: ")
    assert what in e.value.message


def test_file_errors(tmp_path) -> None:
    with pytest.raises(HierarchyError, match="cannot write the node name 'a b '"):
        Hierarchy.from_pairs([("a b ", "c")]).write_tsv(tmp_path / "x.tsv")
    with pytest.raises(HierarchyError, match="cannot write"):
        Hierarchy.from_pairs([("a\tb", "c")]).write_tsv(tmp_path / "x.tsv")
    with pytest.raises(HierarchyError, match="cannot read"):
        Hierarchy.read_tsv(tmp_path / "missing.tsv")
    cyc = tmp_path / "cycle.tsv"
    cyc.write_text("a\tb\nb\ta\n")
    with pytest.raises(HierarchyError, match=r"cycle\.tsv:1: .*cycle"):
        Hierarchy.read_tsv(cyc)
    (tmp_path / "bin.tsv").write_bytes(b"a\tb\n\xff\tc\n")
    with pytest.raises(HierarchyError, match="not UTF-8"):
        Hierarchy.read_tsv(tmp_path / "bin.tsv")


def test_generated_tree() -> None:
    h = generated_tree(depth=4, branching=4, seed=0)
    assert h == generated_tree(depth=4, branching=4, seed=0)
    assert h != generated_tree(depth=4, branching=4, seed=1)
    assert h.names[0] == "r"
    depth = {x: x.count(".") for x in h.names}
    assert max(depth.values()) == 4
    # a tree: every node's ancestors are its path prefixes
    for x in h.names:
        parts = x.split(".")
        assert h.ancestors(x) == [".".join(parts[:i]) for i in range(1, len(parts))]
    assert h.num_edges == sum(depth.values())
    children = {}
    for x in h.names[1:]:
        children.setdefault(x.rsplit(".", 1)[0], []).append(x)
    assert all(1 <= len(c) <= 4 for c in children.values())
    assert all(x in children for x in h.names if depth[x] < 4)  # leaves only at the bottom
    assert generated_tree(0, 3).num_nodes == 1
    assert generated_tree(3, 1).num_edges == 6  # a chain
    with pytest.raises(HierarchyError):
        generated_tree(2, 0)


def test_restrict_keeps_order() -> None:
    h = generated_tree(3, 3, seed=4)
    keep = [x for x in h.names if not x.endswith(".0")]
    sub = h.restrict(keep)
    assert sub.names == tuple(keep)
    assert sub.num_edges == sum(1 for u, a in h.edges.tolist() if h.names[u] in keep and h.names[a] in keep)


def test_the_constructor_refuses_a_cycle() -> None:
    """Hierarchy(names, edges) accepted sorted, unique edges that form a cycle, though the
    docs say it checks its edges as from_ids does."""
    with pytest.raises(HierarchyError, match=r"^the child -> ancestor edges have a cycle through 'a': 'a' -> 'b' -> 'a' "
                                             r"\(a hierarchy must be a DAG\)$"):
        Hierarchy(("a", "b"), np.array([[0, 1], [1, 0]]))
    with pytest.raises(HierarchyError, match=r"cycle through '(b|c|d)': .*'(b|c|d)'.*'(b|c|d)'") as e:
        Hierarchy(("a", "b", "c", "d"), np.array([[0, 1], [1, 2], [2, 3], [3, 1]]))  # 'a' hangs below it
    assert "'a'" not in e.value.message
    chain = np.array([[i + 1, i] for i in range(50_000)])  # long acyclic: linear time, no recursion
    assert Hierarchy(tuple(f"n{i}" for i in range(50_001)), chain).num_edges == 50_000


def test_names_are_non_empty_and_a_duplicate_is_named() -> None:
    """from_pairs accepted an empty name that read_tsv refuses; "names are not unique" did
    not say which."""
    with pytest.raises(HierarchyError, match=r"a pair must be two names \(non-empty str\), got \('', 'a'\)"):
        Hierarchy.from_pairs([("", "a")])
    with pytest.raises(HierarchyError, match=r"node 1: a node name must be a non-empty string, got ''"):
        Hierarchy.from_pairs([("a", "b")], names=["a", "", "b"])
    with pytest.raises(HierarchyError, match=r"node 0: a node name must be a non-empty string, got ''"):
        Hierarchy(("", "a"), np.zeros((0, 2), np.int64))
    with pytest.raises(HierarchyError, match=r"^node names are not unique: 'b' is node 1 and node 3$"):
        Hierarchy.from_pairs([("a", "b")], names=["a", "b", "c", "b"])
    with pytest.raises(HierarchyError, match=r"^node names are not unique: 'x' is node 0 and node 1$"):
        Hierarchy(("x", "x"), np.zeros((0, 2), np.int64))
