"""Helpers shared by the APEL tests."""

from __future__ import annotations

from pathlib import Path

from geomir.apel.engine import Program
from geomir.apel import compile_file


def program(path: Path, text: str, agents: dict | None = None) -> Program:
    """The workflow ``text``, written to ``path`` and loaded (with ``agents`` as overrides)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    module, source = compile_file(path)
    return Program(module, source, str(path), agents)
