"""Hierarchies as the transitive closure of a DAG, the data Poincaré and Lorentz embeddings
learn (Nickel & Kiela 2017, 2018).

A :class:`Hierarchy` has ``names`` (node id = index) and ``edges``, an ``(E, 2)`` int64 array
of (child, ancestor) pairs: every pair (u, a) such that a is reachable from u by one or
more child -> parent steps. Edges are sorted by (child, ancestor), unique, and never a
self loop; a cycle in the input is an error (a hierarchy must be a DAG).

Constructors: :meth:`Hierarchy.from_pairs` (direct child -> parent pairs of names),
:meth:`Hierarchy.from_ids`, :meth:`Hierarchy.read_tsv` (an edge-list file, TSV or the
``id1,id2,weight`` CSV of the poincare-embeddings repository) and :func:`generated_tree`
(a random tree for tests). ``closure=False`` keeps the given pairs as the edges (for a file
that already holds a closure); the graph must still be acyclic.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from geomir.diagnostics import GeomirError

__all__ = ["Hierarchy", "HierarchyError", "generated_tree"]


class HierarchyError(GeomirError):
    """A hierarchy that cannot be built: a cycle, a malformed edge-list line, missing data."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class NamedNodes:
    """Node ids by name for a class with a ``names`` tuple (id = position)."""

    _missing = "no node {!r}"  # the message when a name is absent

    @cached_property
    def index(self) -> dict[str, int]:
        """name -> node id."""
        return {x: i for i, x in enumerate(self.names)}

    def id_of(self, name: str) -> int:
        try:
            return self.index[name]
        except KeyError:
            raise HierarchyError(self._missing.format(name)) from None


@dataclass(frozen=True, eq=False)
class Hierarchy(NamedNodes):
    """The transitive closure of a DAG over named nodes (module docstring).

    ``names[i]`` is the name of node i; ``edges[k] = (child, ancestor)``. Use the
    constructors rather than building one directly: ``__post_init__`` checks the shape,
    order and range of ``edges`` but not that they are closed (:meth:`is_closed`).
    """

    names: tuple[str, ...]
    edges: np.ndarray
    _missing = "no node {!r} in this hierarchy"

    def __post_init__(self) -> None:
        names = tuple(self.names)
        edges = np.ascontiguousarray(_id_pairs(self.edges, "edge", ("child", "ancestor")))
        n = len(names)
        _check_names(names)
        if edges.size:
            if edges.min() < 0 or edges.max() >= n:
                raise HierarchyError(f"edge ids out of range 0..{n - 1}")
            if np.any(edges[:, 0] == edges[:, 1]):
                u = int(edges[edges[:, 0] == edges[:, 1]][0, 0])
                raise HierarchyError(f"self loop on {names[u]!r}")
            key = edges[:, 0] * n + edges[:, 1]
            if np.any(np.diff(key) <= 0):
                raise HierarchyError("edges must be sorted by (child, ancestor) and unique")
            _topological_order(n, edges[:, 0], edges[:, 1], names, "child -> ancestor edges")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "edges", _readonly(edges))

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_ids(cls, names: Sequence[str], pairs: np.ndarray | Sequence[tuple[int, int]],
                 closure: bool = True) -> "Hierarchy":
        """A hierarchy on ``names`` from direct (child id, parent id) pairs.

        With ``closure=True`` the edges are the transitive closure of the pairs; with
        ``closure=False`` the pairs themselves (deduplicated and sorted). Either way the
        pairs must form a DAG: a cycle (or a self loop) raises :class:`HierarchyError`
        naming the nodes on it.

        Ids are node indices: integers (Python or NumPy), or floats with no fractional part
        (``2.0``, as NumPy reads numbers from text). Anything else (``1.7``, NaN, a bool, a
        string) raises :class:`HierarchyError` naming the value and its pair, never truncated.
        """
        names = tuple(names)
        n = len(names)
        p = _id_pairs(pairs, "pair", ("child", "parent"))
        if p.size and (p.min() < 0 or p.max() >= n):
            raise HierarchyError(f"pair ids out of range 0..{n - 1}")
        p = np.unique(p[:, 0] * max(n, 1) + p[:, 1]) if p.size else np.zeros(0, np.int64)
        child, parent = (p // max(n, 1), p % max(n, 1))
        order = _topological_order(n, child, parent, names)
        if closure:
            child, parent = _closure(n, child, parent, order)
        return cls(names, np.stack([child, parent], axis=1))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], closure: bool = True,
                   names: Sequence[str] | None = None) -> "Hierarchy":
        """A hierarchy from direct (child, parent) pairs of names.

        Node ids follow ``names`` if given (it must contain every name in ``pairs``; extra
        names are isolated nodes), else the sorted names of ``pairs``, so equal edge sets
        give equal hierarchies.
        """
        pairs = [tuple(p) for p in pairs]
        for p in pairs:
            if len(p) != 2 or not all(isinstance(x, str) and x for x in p):
                raise HierarchyError(f"a pair must be two names (non-empty str), got {p!r}")
        if names is None:
            names = sorted({x for p in pairs for x in p})
        names = tuple(names)
        _check_names(names)
        index = {x: i for i, x in enumerate(names)}
        try:
            ids = np.array([(index[a], index[b]) for a, b in pairs], dtype=np.int64).reshape(-1, 2)
        except KeyError as e:
            raise HierarchyError(f"pair names {e.args[0]!r}, which is not in names") from None
        return cls.from_ids(names, ids, closure=closure)

    @classmethod
    def read_tsv(cls, path: str | os.PathLike, closure: bool = True) -> "Hierarchy":
        """Read an edge list, one ``child<TAB>parent`` per line.

        Also accepted: a header ``id1<TAB>id2`` or ``id1<TAB>id2<TAB>weight``, a third
        column of weights (numbers; ignored), comma-separated lines (the
        ``noun_closure.csv`` of the poincare-embeddings repository: the file is CSV when its
        first line has no tab) and blank lines. Fields are stripped of surrounding spaces. A
        malformed line raises :class:`HierarchyError` as ``file:line: ...``.
        """
        from geomir.diagnostics import EncodingError, decode_text

        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise HierarchyError(f"{path}: cannot read: {e.strerror or e}") from None
        try:
            text = decode_text(data, str(path))  # as every geomir tool; a byte-order mark is dropped
        except EncodingError as e:
            raise HierarchyError(str(e)) from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        first = next((ln for ln in lines if ln.strip()), "")
        sep = "\t" if "\t" in first else ","
        pairs: list[tuple[str, str]] = []
        where: dict[tuple[str, str], int] = {}  # each pair's first line, for a cycle's message
        header_possible = True  # only the first line that is not blank may be the header
        for lineno, raw in enumerate(lines, 1):
            line = raw.removesuffix("\r")
            if not line.strip():
                continue
            maybe_header, header_possible = header_possible, False
            if sep == "\t":
                fields = line.split("\t")
            else:
                try:
                    fields = next(csv.reader([line], strict=True))
                except csv.Error as e:
                    raise HierarchyError(f"{path}:{lineno}: malformed CSV line: {e}") from None
            fields = [f.strip() for f in fields]
            if maybe_header and fields[:2] == ["id1", "id2"] and fields[2:] in ([], ["weight"]):
                continue  # the header
            what = "child,parent[,weight]" if sep == "," else "child<TAB>parent[<TAB>weight]"
            if len(fields) not in (2, 3):
                raise HierarchyError(f"{path}:{lineno}: expected {what}, got {len(fields)} "
                                     f"field{'s' if len(fields) != 1 else ''}: {line!r}")
            if not fields[0] or not fields[1]:
                raise HierarchyError(f"{path}:{lineno}: empty node name: {line!r}")
            if len(fields) == 3:
                try:
                    float(fields[2])
                except ValueError:
                    raise HierarchyError(f"{path}:{lineno}: the weight {fields[2]!r} is not a number") from None
            if fields[0] == fields[1]:
                raise HierarchyError(f"{path}:{lineno}: self loop on {fields[0]!r} (a hierarchy must be a DAG)")
            pairs.append((fields[0], fields[1]))
            where.setdefault(pairs[-1], lineno)
        try:
            return cls.from_pairs(pairs, closure=closure)
        except HierarchyError as e:
            cycle = getattr(e, "cycle", None)
            at = f":{where[cycle[0], cycle[1]]}" if cycle and (cycle[0], cycle[1]) in where else ""
            raise HierarchyError(f"{path}{at}: {e.message}") from None

    # ----------------------------------------------------------------- output

    def write_tsv(self, path: str | os.PathLike, header: bool = False) -> None:
        """Write the edges as ``child<TAB>ancestor`` lines (``header``: an ``id1<TAB>id2``
        first line; written anyway when the first edge is ``id1 -> id2``, which
        :meth:`read_tsv` would take for one). Isolated nodes (no edge) are not written. A name
        that would not read back (empty, with a tab or line break, or surrounding spaces) is
        an error."""
        used = np.unique(self.edges)
        for x in (self.names[i] for i in used.tolist()):
            if not x or x != x.strip() or any(c in x for c in "\t\n\r"):
                raise HierarchyError(f"cannot write the node name {x!r} to an edge-list file")
        first = [self.names[i] for i in self.edges[0].tolist()] if self.num_edges else []
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            if header or first == ["id1", "id2"]:
                f.write("id1\tid2\n")
            names = self.names
            f.writelines(f"{names[u]}\t{names[a]}\n" for u, a in self.edges.tolist())

    # ----------------------------------------------------------------- queries

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    @cached_property
    def offsets(self) -> np.ndarray:
        """CSR offsets: the edges of node u are ``edges[offsets[u]:offsets[u + 1]]``."""
        return _readonly(np.searchsorted(self.edges[:, 0], np.arange(self.num_nodes + 1)).astype(np.int64))

    def neighbors(self) -> list[np.ndarray]:
        """For each node u, the sorted ids of its ancestors (what reconstruction ranks)."""
        return np.split(self.edges[:, 1], self.offsets[1:-1])

    def ancestors(self, name: str) -> list[str]:
        """The names of the ancestors of ``name``, sorted by id."""
        u = self.id_of(name)
        o = self.offsets
        return [self.names[a] for a in self.edges[o[u]:o[u + 1], 1].tolist()]

    def descendants(self, name: str) -> list[str]:
        """The names of the descendants of ``name``, sorted by id."""
        a = self.id_of(name)
        return [self.names[u] for u in self.edges[self.edges[:, 1] == a, 0].tolist()]

    def degree_counts(self) -> np.ndarray:
        """How often each node is the ancestor of an edge (int64, one per node).

        These are the "unigram" counts of the reference implementation's negative
        sampler (poincare-embeddings ``BatchedDataset``: ``counts[h] += weight`` over the
        edges (t, h) with unit weights; it then samples proportionally to counts**0.75).
        """
        return np.bincount(self.edges[:, 1], minlength=self.num_nodes).astype(np.int64)

    def subtree(self, root: str) -> "Hierarchy":
        """The hierarchy restricted to ``root`` and its descendants (node order kept)."""
        r = self.id_of(root)
        keep = np.zeros(self.num_nodes, dtype=bool)
        keep[r] = True
        keep[self.edges[self.edges[:, 1] == r, 0]] = True
        return self.restrict(keep)

    def restrict(self, keep: np.ndarray | Sequence[str]) -> "Hierarchy":
        """The hierarchy induced on a subset of nodes (a boolean mask or names), node
        order kept. The restriction of a closure is a closure."""
        if not (isinstance(keep, np.ndarray) and keep.dtype == bool):
            mask = np.zeros(self.num_nodes, dtype=bool)
            mask[[self.id_of(x) for x in keep]] = True
            keep = mask
        if keep.shape != (self.num_nodes,):
            raise HierarchyError(f"restrict: a boolean mask needs one entry per node ({self.num_nodes}), "
                                 f"found shape {keep.shape}")
        new_id = np.cumsum(keep) - 1
        e = self.edges[keep[self.edges[:, 0]] & keep[self.edges[:, 1]]]
        names = tuple(x for x, k in zip(self.names, keep.tolist()) if k)
        return Hierarchy(names, new_id[e])

    def is_closed(self) -> bool:
        """Whether the edges are transitively closed: (u, a), (a, b) edges imply (u, b)."""
        n, o = self.num_nodes, self.offsets
        u, a = self.edges[:, 0], self.edges[:, 1]
        counts = o[a + 1] - o[a]
        starts = np.repeat(o[a], counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        need = np.repeat(u, counts) * n + self.edges[starts + within, 1]
        have = u * n + a  # sorted: the edges are
        at = np.searchsorted(have, need).clip(max=max(have.size - 1, 0))
        return bool(need.size == 0 or np.array_equal(have[at], need))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hierarchy):
            return NotImplemented
        return self.names == other.names and np.array_equal(self.edges, other.edges)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Hierarchy({self.num_nodes} nodes, {self.num_edges} edges)"


# --------------------------------------------------------------------------- ids


def _id_pairs(values, what: str, roles: tuple[str, str]) -> np.ndarray:
    """``values`` as an ``(k, 2)`` int64 array of node ids. Integers pass; floats pass only if
    finite and integral; any other value (1.7, NaN, a bool, a string) is a HierarchyError
    naming it and its position (``what`` k, the ``roles`` of the two columns), not truncated."""
    try:
        a = np.asarray(values)
    except (TypeError, ValueError) as e:  # ragged rows
        raise HierarchyError(f"{what}s must be (id, id) pairs: {e}") from None
    if a.size % 2:
        raise HierarchyError(f"{what}s must be ({roles[0]} id, {roles[1]} id) pairs, got {a.size} ids "
                             f"(shape {a.shape})")
    a = a.reshape(-1, 2)
    if a.dtype.kind in "iuf" and not isinstance(values, np.ndarray) and a.size:
        # a Python bool among numbers became 0 or 1: look at the values as given
        given = np.asarray(values, dtype=object).reshape(-1, 2)
        bools = _is_bool(given).astype(bool)
        if bools.any():
            _not_an_id(given, np.argwhere(bools)[0], what, roles)
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            bad = np.argwhere(a > np.iinfo(np.int64).max)[0]
            raise HierarchyError(f"{what} {bad[0]}: the {roles[bad[1]]} id {a[tuple(bad)]} is out of range")
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "f":
        ok = np.isfinite(a)
        ok[ok] = (a[ok] == np.floor(a[ok])) & (np.abs(a[ok]) < 2.0 ** 63)
        if not ok.all():
            _not_an_id(a, np.argwhere(~ok)[0], what, roles)
        return a.astype(np.int64)
    out = np.empty(a.shape, dtype=np.int64)
    for k, row in enumerate(a.tolist()):  # bools, strings, objects: value by value
        for j, x in enumerate(row):
            if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
                if not -2 ** 63 <= x < 2 ** 63:
                    raise HierarchyError(f"{what} {k}: the {roles[j]} id {x} is out of range")
                out[k, j] = int(x)
            elif isinstance(x, (float, np.floating)) and math.isfinite(x) and x == math.floor(x) \
                    and abs(x) < 2.0 ** 63:
                out[k, j] = int(x)
            else:
                _not_an_id(a, (k, j), what, roles)
    return out


_is_bool = np.frompyfunc(lambda x: isinstance(x, (bool, np.bool_)), 1, 1)


def _not_an_id(a: np.ndarray, at, what: str, roles: tuple[str, str]):
    k, j = int(at[0]), int(at[1])
    x = a[k, j]
    x = x.item() if isinstance(x, np.generic) else x
    kind = type(x).__name__
    raise HierarchyError(f"{what} {k}: the {roles[j]} id {x!r} ({kind}) is not an integer node id "
                         f"(ids must be integers, or floats with no fractional part)")


# --------------------------------------------------------------------------- closure


def _check_names(names: tuple) -> None:
    """Node names are non-empty strings (as in an edge-list file), each used once."""
    for i, x in enumerate(names):
        if not isinstance(x, str) or not x:
            raise HierarchyError(f"node {i}: a node name must be a non-empty string, got {x!r}")
    if len(set(names)) != len(names):
        seen: dict[str, int] = {}
        for i, x in enumerate(names):
            if x in seen:
                raise HierarchyError(f"node names are not unique: {x!r} is node {seen[x]} and node {i}")
            seen[x] = i


def _topological_order(n: int, child: np.ndarray, parent: np.ndarray, names: Sequence[str],
                       what: str = "child -> parent pairs") -> np.ndarray:
    """Node ids with every parent before its children (Kahn, iterative, O(N + E)); a cycle
    raises, naming the nodes on it (``what`` names the input in the message)."""
    by_parent = np.argsort(parent, kind="stable")
    starts = np.searchsorted(parent[by_parent], np.arange(n + 1)).tolist()
    kids = child[by_parent].tolist()
    remaining = np.bincount(child, minlength=n).tolist()  # parents not yet placed
    order = [u for u in range(n) if remaining[u] == 0]
    for u in order:  # grows while it is walked
        for c in kids[starts[u]:starts[u + 1]]:
            remaining[c] -= 1
            if remaining[c] == 0:
                order.append(c)
    if len(order) < n:
        message, cycle = _cycle_message(n, child, parent, np.asarray(remaining), names, what)
        err = HierarchyError(message)
        err.cycle = [names[i] for i in cycle]  # the nodes on it, the first repeated last
        raise err
    return np.asarray(order, dtype=np.int64)


def _cycle_message(n, child, parent, remaining, names, what) -> tuple[str, list[int]]:
    """A cycle among the nodes Kahn's algorithm could not place (each has an unplaced
    parent, so walking to unplaced parents must revisit a node)."""
    stuck = remaining > 0
    up: dict[int, int] = {}
    for c, p in zip(child.tolist(), parent.tolist()):
        if stuck[c] and stuck[p] and c not in up:
            up[c] = p
    u = int(np.flatnonzero(stuck)[0])
    seen: dict[int, int] = {}
    path: list[int] = []
    while u not in seen:
        seen[u] = len(path)
        path.append(u)
        u = up[u]
    cycle = path[seen[u]:] + [u]
    shown = " -> ".join(repr(names[i]) for i in cycle[:12]) + (" -> ..." if len(cycle) > 12 else "")
    return (f"the {what} have a cycle through {names[u]!r}: {shown} (a hierarchy must be a DAG)",
            cycle)


def _closure(n: int, child: np.ndarray, parent: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The transitive closure of a DAG as sorted (child, ancestor) arrays (iterative)."""
    parents: list[list[int]] = [[] for _ in range(n)]
    for c, p in zip(child.tolist(), parent.tolist()):
        parents[c].append(p)
    anc: list[frozenset[int] | None] = [None] * n
    empty: frozenset[int] = frozenset()
    for u in order.tolist():
        ps = parents[u]
        if not ps:
            anc[u] = empty
        elif len(ps) == 1:
            p = ps[0]
            anc[u] = anc[p] | {p}
        else:
            s = set(ps)
            for p in ps:
                s |= anc[p]
            anc[u] = frozenset(s)
    counts = np.fromiter((len(s) for s in anc), dtype=np.int64, count=n)
    flat = np.fromiter((a for s in anc for a in s), dtype=np.int64, count=int(counts.sum()))
    key = np.sort(np.repeat(np.arange(n, dtype=np.int64), counts) * max(n, 1) + flat)
    return key // max(n, 1), key % max(n, 1)


# --------------------------------------------------------------------------- generated


def generated_tree(depth: int, branching: int, seed: int = 0) -> Hierarchy:
    """The closure of a random rooted tree: every node above ``depth`` has 1..``branching``
    children (uniform), so leaves are at depth ``depth``. Names are paths: ``"r"``, ``"r.0"``,
    ``"r.0.1"``, ... For tests and examples when WordNet is absent."""
    if depth < 0 or branching < 1:
        raise HierarchyError(f"generated_tree needs depth >= 0 and branching >= 1, got {depth}, {branching}")
    rng = np.random.default_rng(seed)
    names = ["r"]
    pairs: list[tuple[int, int]] = []
    level = [0]
    for _ in range(depth):
        nxt = []
        for p in level:
            for k in range(int(rng.integers(1, branching + 1))):
                names.append(f"{names[p]}.{k}")
                pairs.append((len(names) - 1, p))
                nxt.append(len(names) - 1)
        level = nxt
    return Hierarchy.from_ids(names, np.array(pairs, dtype=np.int64).reshape(-1, 2))
