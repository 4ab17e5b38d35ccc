"""docs/winding.md: its Python examples run as written, in order, in one namespace (the
channel example failed: its classes were not disjoint, finding 12a)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("torch")

DOC = Path(__file__).resolve().parents[2] / "docs" / "winding.md"


def test_the_python_examples_run_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)  # the memory example saves mem.npz
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), scope)  # noqa: S102 (our own docs)
    assert scope["r"].found.all() and scope["mem"].read(scope["traj"], channel="tenant-a").value.tolist() == [1.0]
    assert list(scope["mem"].channels) == ["tenant-a", "tenant-b", "agent-c"]
