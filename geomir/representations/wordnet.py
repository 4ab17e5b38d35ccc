"""The WordNet 3.0 noun hierarchy, read from the database files (no nltk).

``data.noun`` and ``index.noun`` of a WordNet 3.0 ``dict`` directory (Debian/Ubuntu:
``apt-get install wordnet-base`` puts them in /usr/share/wordnet) give every noun synset,
its ``@`` (hypernym) and ``@i`` (instance hypernym) pointers, and the names nltk gives it:
``f"{first_lemma.lower()}.n.{sense:02d}"``, where ``sense`` is the 1-based position of the
synset's offset in the ``index.noun`` entry of that lemma.

:func:`noun_closure` and :func:`mammal_closure` build the data sets of Nickel & Kiela
(2017) as the poincare-embeddings repository builds them (``wordnet/transitive_closure.py``
and its older ``Makefile``); docs/representations.md ("Data") gives the counts and how the
variants differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from .hierarchy import Hierarchy, HierarchyError, NamedNodes, _topological_order

__all__ = [
    "DEFAULT_WORDNET_DIR", "NounSynsets", "read_nouns", "wordnet_available", "noun_closure",
    "mammal_closure", "MAMMAL_FILTER_PARENTS", "MAMMAL_FILTER_CHILDREN",
    "NOUN_SYNSETS", "NOUN_CLOSURE_EDGES", "NOUN_FULL_CLOSURE_EDGES",
    "MAMMAL_NODES", "MAMMAL_EDGES", "MAMMAL_MAKEFILE_NODES", "MAMMAL_MAKEFILE_EDGES",
]

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"

# Counts on WordNet 3.0 (Debian wordnet-base 1:3.0), checked by tests/representations/test_wordnet.py.
NOUN_SYNSETS = 82_115
NOUN_CLOSURE_EDGES = 743_086  # transitive_closure.py (as run with nltk): variant="reference"
NOUN_FULL_CLOSURE_EDGES = 743_241  # the closure of @ and @i, the paper's count: variant="full"
MAMMAL_NODES, MAMMAL_EDGES = 1_180, 6_540  # transitive_closure.py; the paper's counts
MAMMAL_MAKEFILE_NODES, MAMMAL_MAKEFILE_EDGES = 1_181, 6_541  # the 2017 Makefile

# wordnet/mammals_filter.txt of poincare-embeddings: edges to these parents, and edges
# from these children, are left out of the mammal closure.
MAMMAL_FILTER_PARENTS = (
    "living_thing.n.01", "object.n.01", "organism.n.01", "animal.n.01", "entity.n.01",
    "physical_entity.n.01", "whole.n.02", "vertebrate.n.01", "chordate.n.01",
    "beast_of_burden.n.01", "work_animal.n.01", "female.n.01", "fissipedia.n.01", "pup.n.01",
    "abstraction.n.06", "group.n.01", "cub.n.03", "young.n.01", "young_mammal.n.01",
    "domestic_animal.n.01", "racer.n.03", "male.n.01",
)
MAMMAL_FILTER_CHILDREN = ("tusker.n.01", "female_mammal.n.01")

_INSTALL = "install WordNet 3.0 with `apt-get install wordnet-base` (files in /usr/share/wordnet)"


def _resolve(wordnet_dir: str | os.PathLike | None) -> Path:
    if wordnet_dir is None:
        wordnet_dir = os.environ.get("WNSEARCHDIR") or DEFAULT_WORDNET_DIR
    return Path(wordnet_dir)


def wordnet_available(wordnet_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``wordnet_dir`` (default: $WNSEARCHDIR, else /usr/share/wordnet) has
    ``data.noun`` and ``index.noun``."""
    d = _resolve(wordnet_dir)
    return (d / "data.noun").is_file() and (d / "index.noun").is_file()


@dataclass(frozen=True, eq=False)
class NounSynsets(NamedNodes):
    """The noun synsets of ``data.noun`` in file order (id = index).

    ``hypernyms[i]`` and ``instance_hypernyms[i]`` are the ids of the ``@`` and ``@i``
    pointer targets of synset i; ``instance_hyponyms[i]`` those of its ``~i`` pointers."""

    names: tuple[str, ...]
    offsets: np.ndarray
    lemmas: tuple[tuple[str, ...], ...]
    hypernyms: tuple[tuple[int, ...], ...]
    instance_hypernyms: tuple[tuple[int, ...], ...]
    instance_hyponyms: tuple[tuple[int, ...], ...]

    _missing = "no noun synset {!r}"

    def __len__(self) -> int:
        return len(self.names)


def read_nouns(wordnet_dir: str | os.PathLike | None = None) -> NounSynsets:
    """Parse ``data.noun`` and ``index.noun`` (cached per directory and file times)."""
    d = _resolve(wordnet_dir)
    if not wordnet_available(d):
        raise HierarchyError(f"WordNet 3.0 not found: {d} has no data.noun and index.noun; {_INSTALL}")
    stamp = tuple((s.st_mtime_ns, s.st_size) for s in ((d / f).stat() for f in ("data.noun", "index.noun")))
    return _read_nouns(str(d.resolve()), stamp)


@lru_cache(maxsize=4)
def _read_nouns(d: str, stamp: tuple) -> NounSynsets:
    index_path, data_path = Path(d) / "index.noun", Path(d) / "data.noun"
    # index.noun: lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset...
    senses: dict[str, list[int]] = {}
    with open(index_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith(" "):
                continue  # the license header
            fields = line.split()
            try:
                count, npointers = int(fields[2]), int(fields[3])
                offs = [int(x) for x in fields[6 + npointers:]]
            except (IndexError, ValueError):
                raise HierarchyError(f"{index_path}:{lineno}: malformed index line") from None
            if len(offs) != count:
                raise HierarchyError(f"{index_path}:{lineno}: {count} senses announced, {len(offs)} given")
            senses[fields[0]] = offs
    # data.noun: offset lex_filenum ss_type w_cnt [word lex_id]... p_cnt [ptr offset pos src/tgt]... | gloss
    offsets: list[int] = []
    lemmas: list[tuple[str, ...]] = []
    pointers: list[list[tuple[str, int]]] = []
    with open(data_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith(" "):
                continue
            fields = line.split(" | ", 1)[0].split()
            try:
                nwords = int(fields[3], 16)
                words = tuple(fields[4:4 + 2 * nwords:2])
                p = 4 + 2 * nwords
                nptr = int(fields[p])
                ptrs = [(fields[p + 1 + 4 * k], int(fields[p + 2 + 4 * k])) for k in range(nptr)
                        if fields[p + 3 + 4 * k] == "n"]
                offsets.append(int(fields[0]))
            except (IndexError, ValueError):
                raise HierarchyError(f"{data_path}:{lineno}: malformed data line") from None
            if len(words) != nwords or not words:
                raise HierarchyError(f"{data_path}:{lineno}: malformed data line")
            lemmas.append(words)
            pointers.append(ptrs)
    id_of = {o: i for i, o in enumerate(offsets)}
    names = []
    for i, (o, words) in enumerate(zip(offsets, lemmas)):
        lemma = words[0].lower()  # as nltk: the first lemma, lowercased; nouns carry no (a)/(p) marker
        try:
            sense = senses[lemma].index(o) + 1
        except (KeyError, ValueError):
            raise HierarchyError(f"{index_path}: no sense of {lemma!r} at offset {o:08d}") from None
        names.append(f"{lemma}.n.{sense:02d}")

    def targets(symbol: str) -> tuple[tuple[int, ...], ...]:
        try:
            return tuple(tuple(id_of[t] for s, t in ptrs if s == symbol) for ptrs in pointers)
        except KeyError as e:
            raise HierarchyError(f"{data_path}: a {symbol!r} pointer to the missing offset {e.args[0]:08d}") from None

    return NounSynsets(tuple(names), np.asarray(offsets, dtype=np.int64), tuple(lemmas),
                       targets("@"), targets("@i"), targets("~i"))


# --------------------------------------------------------------------------- closures


def _ancestor_sets(names: tuple[str, ...], parents: tuple[tuple[int, ...], ...]) -> list[frozenset[int]]:
    """For each node, the set of nodes reachable by >= 1 step along ``parents`` (a DAG)."""
    n = len(names)
    child = np.fromiter((c for c, ps in enumerate(parents) for _ in ps), np.int64)
    parent = np.fromiter((p for ps in parents for p in ps), np.int64)
    order = _topological_order(n, child, parent, names)
    anc: list[frozenset[int]] = [frozenset()] * n
    for u in order.tolist():
        ps = parents[u]
        if len(ps) == 1:
            anc[u] = anc[ps[0]] | {ps[0]}
        elif ps:
            s = set(ps)
            for p in ps:
                s |= anc[p]
            anc[u] = frozenset(s)
    return anc


def _hierarchy(names: tuple[str, ...], anc: list) -> Hierarchy:
    """A Hierarchy on the nodes with at least one edge, names sorted, from ancestor sets."""
    n = len(names)
    counts = np.fromiter((len(s) for s in anc), np.int64, count=n)
    child = np.repeat(np.arange(n, dtype=np.int64), counts)
    parent = np.fromiter((a for s in anc for a in s), np.int64, count=int(counts.sum()))
    used = np.zeros(n, dtype=bool)
    used[child] = True
    used[parent] = True
    ids = np.flatnonzero(used)
    order = sorted(ids.tolist(), key=names.__getitem__)
    new_id = np.empty(n, np.int64)
    new_id[order] = np.arange(len(order))
    key = np.sort(new_id[child] * len(order) + new_id[parent])
    edges = np.stack([key // max(len(order), 1), key % max(len(order), 1)], axis=1)
    return Hierarchy(tuple(names[i] for i in order), edges)


def noun_closure(wordnet_dir: str | os.PathLike | None = None,
                 variant: Literal["reference", "full"] = "reference") -> Hierarchy:
    """The WordNet noun hierarchy: 82,115 synsets.

    ``variant="reference"`` (743,086 edges) is what poincare-embeddings'
    ``wordnet/transitive_closure.py`` writes: for every synset s, (s, h) for h in the
    closure of s over hypernyms (``@``); for every instance i (a ``~i`` target), (i, h) for
    h in the closure of i over instance hypernyms (``@i``) and (i, h') for h' in the
    hypernym closure of each such h. Its hypernym closures never follow ``@i``, so it misses
    the 155 pairs of the full closure whose path goes on from a synset with ``@i`` pointers
    (e.g. alabama.n.01 -@-> south.n.01 -@i-> geographical_area.n.01) and is not
    transitively closed. ``variant="full"`` (743,241 edges, the count Nickel & Kiela
    report) is the transitive closure of ``@`` and ``@i`` together.
    """
    wn = read_nouns(wordnet_dir)
    return _noun_closure(wn, variant)


_closure_cache: dict[tuple[int, str], tuple[NounSynsets, Hierarchy]] = {}


def _noun_closure(wn: NounSynsets, variant: str) -> Hierarchy:
    key = (id(wn), variant)
    hit = _closure_cache.get(key)
    if hit is not None and hit[0] is wn:
        return hit[1]
    if variant == "full":
        parents = tuple(h + i for h, i in zip(wn.hypernyms, wn.instance_hypernyms))
        anc = _ancestor_sets(wn.names, parents)
    elif variant == "reference":
        hyper = _ancestor_sets(wn.names, wn.hypernyms)
        inst = _ancestor_sets(wn.names, wn.instance_hypernyms)
        anc = list(hyper)
        instances = {i for targets in wn.instance_hyponyms for i in targets}
        for i in instances:
            s = set(hyper[i])
            for h in inst[i]:
                s.add(h)
                s |= hyper[h]
            anc[i] = s
    else:
        raise HierarchyError(f"noun_closure: variant must be 'reference' or 'full', got {variant!r}")
    h = _hierarchy(wn.names, anc)
    if len(_closure_cache) >= 8:
        _closure_cache.clear()
    _closure_cache[key] = (wn, h)
    return h


def mammal_closure(wordnet_dir: str | os.PathLike | None = None,
                   variant: Literal["reference", "makefile"] = "reference") -> Hierarchy:
    """The mammal subtree of :func:`noun_closure` (the ``"reference"`` variant) as the
    poincare-embeddings repository filters it.

    ``variant="reference"`` (1,180 nodes, 6,540 edges: the paper's counts) is today's
    ``transitive_closure.py``: M = {c : (c, mammal.n.01) is an edge} plus mammal.n.01;
    the edges with both ends in M, less those whose child is tusker.n.01 or
    female_mammal.n.01 (its parent patterns never match there).

    ``variant="makefile"`` (1,181 nodes, 6,541 edges) is the 2017 ``wordnet/Makefile``:
    the edges whose child has an edge to mammal.n.01 (any parent), less those whose parent
    is in :data:`MAMMAL_FILTER_PARENTS` or whose child is in
    :data:`MAMMAL_FILTER_CHILDREN`; it keeps pack_animal.n.01 (a parent of packhorse.n.01 that
    the filter does not name).

    Nodes are the names on the remaining edges, sorted.
    """
    nouns = noun_closure(wordnet_dir, "reference")
    names, e = nouns.names, nouns.edges
    mammal = nouns.id_of("mammal.n.01")
    is_mammal = np.zeros(nouns.num_nodes, dtype=bool)
    is_mammal[e[e[:, 1] == mammal, 0]] = True
    drop_child = np.zeros(nouns.num_nodes, dtype=bool)
    drop_child[[nouns.index[x] for x in MAMMAL_FILTER_CHILDREN if x in nouns.index]] = True
    drop_parent = np.zeros(nouns.num_nodes, dtype=bool)
    drop_parent[[nouns.index[x] for x in MAMMAL_FILTER_PARENTS if x in nouns.index]] = True
    if variant == "reference":
        is_mammal[mammal] = True
        keep = is_mammal[e[:, 0]] & is_mammal[e[:, 1]]
    elif variant == "makefile":
        keep = is_mammal[e[:, 0]]
    else:
        raise HierarchyError(f"mammal_closure: variant must be 'reference' or 'makefile', got {variant!r}")
    keep &= ~drop_child[e[:, 0]] & ~drop_parent[e[:, 1]]
    kept = e[keep]
    used = np.zeros(nouns.num_nodes, dtype=bool)
    used[kept.ravel()] = True
    # nouns' names are sorted, so restricting keeps them sorted
    return Hierarchy(tuple(x for x, u in zip(names, used.tolist()) if u), (np.cumsum(used) - 1)[kept])
