"""WordNet 3.0 nouns read without nltk: names, counts of the noun and mammal closures as
poincare-embeddings builds them, and a tiny hand-written database for the rules."""

from __future__ import annotations

import numpy as np
import pytest

from geomir.representations import wordnet as wn
from geomir.representations.hierarchy import HierarchyError

needs_wordnet = pytest.mark.skipif(
    not wn.wordnet_available(), reason="WordNet 3.0 is not installed: apt-get install wordnet-base "
    "(or set WNSEARCHDIR to a WordNet dict directory)")


@pytest.fixture(scope="module")
def nouns():
    # read_nouns and noun_closure cache per directory: the parse runs once per session
    return wn.noun_closure()


# --------------------------------------------------------------------------- WordNet 3.0


@needs_wordnet
def test_synset_names_as_nltk_gives_them() -> None:
    syn = wn.read_nouns()
    assert len(syn) == wn.NOUN_SYNSETS == 82_115
    assert len(set(syn.names)) == len(syn)
    # offset -> name, as nltk 3.10's WordNetCorpusReader names them on the same files
    known = {1740: "entity.n.01", 1861778: "mammal.n.01", 2084071: "dog.n.01", 9213565: "bank.n.01",
             10954498: "einstein.n.01", 5539454: "attic.n.03", 15253895: "golden_age.n.02",
             3138128: "crotchet.n.04", 8416652: "right.n.04", 237869: "creation.n.05",
             413554: "americanism.n.03", 275751: "gram's_method.n.01"}
    offsets = syn.offsets.tolist()
    for offset, name in known.items():
        assert syn.names[offsets.index(offset)] == name
    dog = syn.id_of("dog.n.01")
    assert syn.lemmas[dog] == ("dog", "domestic_dog", "Canis_familiaris")
    assert [syn.names[h] for h in syn.hypernyms[dog]] == ["canine.n.02", "domestic_animal.n.01"]
    einstein = syn.id_of("einstein.n.01")
    assert syn.hypernyms[einstein] == ()
    assert [syn.names[h] for h in syn.instance_hypernyms[einstein]] == ["physicist.n.01"]
    with pytest.raises(HierarchyError, match="no noun synset"):
        syn.id_of("dog.n.99")


@needs_wordnet
def test_noun_closure_counts(nouns) -> None:
    assert nouns.num_nodes == wn.NOUN_SYNSETS
    assert nouns.num_edges == wn.NOUN_CLOSURE_EDGES == 743_086
    full = wn.noun_closure(variant="full")
    assert full.num_nodes == wn.NOUN_SYNSETS
    assert full.num_edges == wn.NOUN_FULL_CLOSURE_EDGES == 743_241  # Nickel & Kiela's count
    assert full.is_closed() and not nouns.is_closed()
    assert full.names == nouns.names
    n = nouns.num_nodes
    ref, all_ = nouns.edges @ [n, 1], full.edges @ [n, 1]
    assert np.isin(ref, all_).all()
    more = np.setdiff1d(all_, ref)
    assert more.size == 155
    names = nouns.names
    assert ("alabama.n.01", "geographical_area.n.01") in {(names[k // n], names[k % n]) for k in more.tolist()}
    assert wn.noun_closure() is nouns  # cached


@needs_wordnet
def test_known_ancestors(nouns) -> None:
    dog = set(nouns.ancestors("dog.n.01"))
    assert {"canine.n.02", "carnivore.n.01", "placental.n.01", "mammal.n.01", "entity.n.01"} <= dog
    einstein = set(nouns.ancestors("einstein.n.01"))
    assert {"physicist.n.01", "scientist.n.01", "person.n.01", "entity.n.01"} <= einstein
    assert nouns.ancestors("entity.n.01") == []
    # the 155 pairs the reference misses cut 18 synsets off entity.n.01; the closure has all
    assert len(nouns.descendants("entity.n.01")) == wn.NOUN_SYNSETS - 1 - 18
    assert len(wn.noun_closure(variant="full").descendants("entity.n.01")) == wn.NOUN_SYNSETS - 1


@needs_wordnet
def test_mammal_closure_counts(nouns) -> None:
    m = wn.mammal_closure()
    assert (m.num_nodes, m.num_edges) == (wn.MAMMAL_NODES, wn.MAMMAL_EDGES) == (1_180, 6_540)
    assert m.is_closed()
    assert "mammal.n.01" in m.names and "dog.n.01" in m.names
    assert "tusker.n.01" not in m.names and "female_mammal.n.01" not in m.names
    assert set(m.ancestors("dog.n.01")) == {"canine.n.02", "carnivore.n.01", "placental.n.01", "mammal.n.01"}
    parents = {m.names[a] for a in m.edges[:, 1].tolist()}
    assert parents.isdisjoint(wn.MAMMAL_FILTER_PARENTS)
    make = wn.mammal_closure(variant="makefile")
    assert (make.num_nodes, make.num_edges) == (wn.MAMMAL_MAKEFILE_NODES, wn.MAMMAL_MAKEFILE_EDGES) == (1_181, 6_541)
    assert set(make.names) - set(m.names) == {"pack_animal.n.01"}
    assert make.descendants("pack_animal.n.01") == ["packhorse.n.01"]
    # the whole subtree, before the filter (the 1,182 / 6,542)
    sub = nouns.subtree("mammal.n.01")
    assert (sub.num_nodes, sub.num_edges) == (1_182, 6_542)
    assert set(sub.names) - set(m.names) == {"tusker.n.01", "female_mammal.n.01"}


# --------------------------------------------------------------------------- no WordNet


def test_missing_wordnet_says_how_to_install(tmp_path) -> None:
    assert not wn.wordnet_available(tmp_path)
    with pytest.raises(HierarchyError, match="apt-get install wordnet-base"):
        wn.noun_closure(tmp_path)
    with pytest.raises(HierarchyError, match="apt-get install wordnet-base"):
        wn.mammal_closure(tmp_path / "nowhere")


HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def write_db(path, synsets: dict[int, tuple[list[str], list[tuple[str, int]]]]) -> None:
    """A data.noun / index.noun pair: offset -> (lemmas, [(pointer, target offset)])."""
    data, senses = [HEADER], {}
    for off, (lemmas, ptrs) in synsets.items():
        words = " ".join(f"{w} 0" for w in lemmas)
        pointers = " ".join(f"{s} {t:08d} n 0000" for s, t in ptrs)
        data.append(f"{off:08d} 03 n {len(lemmas):02x} {words} {len(ptrs):03d} {pointers} | a gloss  \n")
        for w in lemmas:
            senses.setdefault(w.lower(), []).append(off)
    index = [HEADER] + [f"{w} n {len(o)} 0 {len(o)} 0 {' '.join(f'{x:08d}' for x in o)}  \n"
                        for w, o in sorted(senses.items())]
    (path / "data.noun").write_text("".join(data))
    (path / "index.noun").write_text("".join(index))


def test_rules_on_a_tiny_database(tmp_path) -> None:
    # thing <- place <- country <- (instance) Spain <- (hypernym!) Castile-like region;
    # a second sense of "place" comes second in index.noun
    write_db(tmp_path, {
        100: (["thing"], [("~", 200), ("~", 250)]),
        200: (["place", "spot"], [("@", 100), ("~", 300)]),
        250: (["Place"], [("@", 100)]),
        300: (["country"], [("@", 200), ("~i", 400)]),
        400: (["Spain"], [("@i", 300), ("~", 500)]),
        500: (["Old_Castile"], [("@", 400)]),
    })
    syn = wn.read_nouns(tmp_path)
    assert syn.names == ("thing.n.01", "place.n.01", "place.n.02", "country.n.01", "spain.n.01",
                         "old_castile.n.01")
    ref = wn.noun_closure(tmp_path)
    assert ref.ancestors("spain.n.01") == ["country.n.01", "place.n.01", "thing.n.01"]
    # the reference follows only @ from a class: old_castile reaches spain, not spain's @i
    assert ref.ancestors("old_castile.n.01") == ["spain.n.01"]
    assert not ref.is_closed()
    full = wn.noun_closure(tmp_path, variant="full")
    assert full.ancestors("old_castile.n.01") == ["country.n.01", "place.n.01", "spain.n.01", "thing.n.01"]
    assert full.is_closed()
    with pytest.raises(HierarchyError, match="variant"):
        wn.noun_closure(tmp_path, variant="other")


def test_tiny_mammals(tmp_path) -> None:
    write_db(tmp_path, {
        1: (["entity"], []),
        2: (["animal"], [("@", 1)]),
        3: (["mammal"], [("@", 2)]),
        4: (["pack_animal"], [("@", 2)]),
        5: (["llama"], [("@", 3), ("@", 4)]),
        6: (["tusker"], [("@", 3)]),
        7: (["baby_llama"], [("@", 5)]),
    })
    m = wn.mammal_closure(tmp_path)
    assert m.names == ("baby_llama.n.01", "llama.n.01", "mammal.n.01")
    assert m.ancestors("baby_llama.n.01") == ["llama.n.01", "mammal.n.01"]
    make = wn.mammal_closure(tmp_path, variant="makefile")
    assert make.names == ("baby_llama.n.01", "llama.n.01", "mammal.n.01", "pack_animal.n.01")
    assert make.ancestors("baby_llama.n.01") == ["llama.n.01", "mammal.n.01", "pack_animal.n.01"]


def test_malformed_database(tmp_path) -> None:
    write_db(tmp_path, {1: (["entity"], []), 2: (["thing"], [("@", 1)])})
    data = (tmp_path / "data.noun").read_text().splitlines(keepends=True)
    (tmp_path / "data.noun").write_text("".join(data[:2] + ["00000002 03 n 01 thing\n"]))
    with pytest.raises(HierarchyError, match=r"data\.noun:3: malformed"):
        wn.read_nouns(tmp_path)
    write_db(tmp_path, {1: (["entity"], []), 2: (["thing"], [("@", 9)])})
    with pytest.raises(HierarchyError, match="missing offset 00000009"):
        wn.read_nouns(tmp_path)
    write_db(tmp_path, {1: (["entity"], []), 2: (["thing"], [("@", 1), ("@", 3)]), 3: (["x"], [("@", 2)])})
    with pytest.raises(HierarchyError, match="cycle"):
        wn.noun_closure(tmp_path)
