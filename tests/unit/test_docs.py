"""The docs describe what the code does: the grammar copy, every builtin, contract and derivative."""

from __future__ import annotations

import re
from pathlib import Path

from geomir.frontends.dsl.builtins import BUILTINS
from geomir.frontends.dsl.contracts import CONTRACT_RULES, GROUPS
from geomir.frontends.dsl.derive import DERIVATIVES

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE = (ROOT / "docs" / "language.md").read_text()


def test_grammar_copy_in_docs_matches_the_grammar_file() -> None:
    block = re.search(r"```lark\n(.*?)```", LANGUAGE, re.S)
    assert block, "docs/language.md has no ```lark block"
    assert block.group(1) == (ROOT / "frontends" / "dsl" / "geo.lark").read_text()


def test_every_builtin_contract_and_derivative_is_documented() -> None:
    for name in list(BUILTINS) + [f"@{c}" for c in CONTRACT_RULES] + list(GROUPS) + list(DERIVATIVES):
        assert re.search(rf"(?<![\w@]){re.escape(name)}(?!\w)", LANGUAGE), f"docs/language.md does not mention {name}"
