"""Mutated example programs never crash the frontend.

Each example in ``examples/`` is tokenised with the grammar's own lexer and mutated by
deleting a token, swapping two adjacent tokens, duplicating a token, or replacing a token
with another token of the program. Whitespace and comments between tokens are kept, so
the mutant keeps the example's lines. A mutant must either compile (to IR that passes
``verify_module``, which geomc runs on the frontend's output) or raise a :class:`GeomirError`; a :class:`SourceError` must point inside the text and
render. A deterministic sweep covers every third token with each kind of mutation; a
hypothesis search stacks a few random mutations (replacements may also use a few edge
literals such as ``1e400``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark

from geomir.diagnostics import GeomirError, SourceError
from geomir.frontends.dsl import compile_source
from geomir.verify import verify_module

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.geo"))
KINDS = ("delete", "swap", "duplicate", "replace")
# Literals and names at the edges of what the checker must reject cleanly; the random
# search may also put these in place of a token.
EDGE_NUMBERS = ("0", "0.0", "1", "1e400", "1e-320", "9" * 400)
EDGE_TOKENS = EDGE_NUMBERS + ("f64", "tangent", "R", "true", "order", "wrt")
FILENAME = "mutant.geo"


@cache
def _lexer() -> Lark:
    grammar = resources.files("geomir.frontends.dsl").joinpath("geo.lark").read_text()
    return Lark(grammar, start="module", parser="lalr", lexer="basic")


@dataclass(frozen=True)
class Tokens:
    """A program as tokens and the text around them: gaps[k] precedes texts[k]."""

    gaps: tuple[str, ...]
    texts: tuple[str, ...]
    tail: str

    @staticmethod
    def of(text: str) -> Tokens:
        gaps, texts, pos = [], [], 0
        for tok in _lexer().lex(text):
            gaps.append(text[pos : tok.start_pos])
            texts.append(str(tok))
            pos = tok.end_pos
        return Tokens(tuple(gaps), tuple(texts), text[pos:])

    def render(self) -> str:
        return "".join(g + t for g, t in zip(self.gaps, self.texts)) + self.tail

    def mutate(self, kind: str, i: int, other: str | None = None) -> Tokens:
        gaps, texts = list(self.gaps), list(self.texts)
        if kind == "delete":
            texts[i] = ""
        elif kind == "swap":
            j = i + 1 if i + 1 < len(texts) else i - 1
            texts[i], texts[j] = texts[j], texts[i]
        elif kind == "duplicate":
            gaps.insert(i + 1, " ")
            texts.insert(i + 1, texts[i])
        elif kind == "replace":
            assert other is not None
            texts[i] = other
        else:  # pragma: no cover
            raise ValueError(kind)
        return Tokens(tuple(gaps), tuple(texts), self.tail)


@cache
def _tokens(path: Path) -> Tokens:
    return Tokens.of(path.read_text())


def _vocabulary(tokens: Tokens) -> list[str]:
    return sorted(set(tokens.texts))


def _check_span(span, text: str, what: str) -> None:
    lines = text.split("\n")
    assert 1 <= span.line <= len(lines) + 1, f"{what} line {span.line} outside the text ({len(lines)} lines)"
    assert span.column >= 1, f"{what} column {span.column}"
    line = lines[span.line - 1] if span.line <= len(lines) else ""
    assert span.column <= len(line) + 1, f"{what} column {span.column} past the end of line {span.line}: {line!r}"


def check_mutant(text: str) -> None:
    """The frontend contract for any text: compile, or a GeomirError that renders."""
    try:
        module = compile_source(text, FILENAME)
    except SourceError as err:
        if err.span is not None:
            _check_span(err.span, text, "error")
        for note in err.notes:
            if note.span is not None:
                _check_span(note.span, text, "note")
        rendered = err.render()
        if err.span is not None:
            assert rendered.startswith(f"{FILENAME}:{err.span.line}:{err.span.column}: error: "), rendered
        assert "Traceback" not in rendered
    except GeomirError as err:
        assert err.render()
    except Exception as err:  # noqa: BLE001 - any other exception is the bug under test
        raise AssertionError(f"{type(err).__name__}: {err}\n--- mutant ---\n{text}") from err
    else:
        try:
            verify_module(module)  # what geomc runs on the frontend's output (else it exits 3)
        except Exception as err:  # noqa: BLE001
            raise AssertionError(f"accepted, but the IR does not verify: {err}\n--- mutant ---\n{text}") from err


def test_examples_are_tokenised_faithfully() -> None:
    assert len(EXAMPLES) >= 5
    for path in EXAMPLES:
        tokens = _tokens(path)
        assert len(tokens.texts) > 10
        assert tokens.render() == path.read_text()
        check_mutant(tokens.render())  # the unmutated example compiles


# --- deterministic sweep ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_sweep_every_third_token(example: Path, kind: str) -> None:
    tokens = _tokens(example)
    vocabulary = _vocabulary(tokens)
    rng = random.Random(f"{example.name}:{kind}")
    offset = KINDS.index(kind) % 3  # different kinds start at different tokens
    for i in range(offset, len(tokens.texts), 3):
        if kind == "replace":
            others = [t for t in vocabulary if t != tokens.texts[i]]
            for other in rng.sample(others, 3):
                check_mutant(tokens.mutate(kind, i, other).render())
        else:
            check_mutant(tokens.mutate(kind, i).render())


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_sweep_edge_numbers(example: Path) -> None:
    """Every number of the example replaced by zero, overflowing and underflowing literals."""
    tokens = _tokens(example)
    numbers = [i for i, t in enumerate(tokens.texts) if t[0].isdigit() or t[0] == "."]
    assert numbers
    for i in numbers:
        for edge in EDGE_NUMBERS:
            check_mutant(tokens.mutate("replace", i, edge).render())


# --- random search ---------------------------------------------------------------------


@st.composite
def mutants(draw) -> str:
    example = draw(st.sampled_from(EXAMPLES))
    tokens = _tokens(example)
    vocabulary = _vocabulary(tokens) + list(EDGE_TOKENS)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(KINDS))
        i = draw(st.integers(0, len(tokens.texts) - 1))
        other = draw(st.sampled_from(vocabulary)) if kind == "replace" else None
        tokens = tokens.mutate(kind, i, other)
    return tokens.render()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_random_mutants(text: str) -> None:
    check_mutant(text)
