"""Golden IR tests: every file under tests/filecheck/ with ``// RUN:`` lines (lit style).

``%s`` is the file itself, ``%examples`` the examples/ folder, and ``filecheck`` the
Python filecheck package. Each RUN line runs in a shell and must exit 0.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILECHECK_DIR = ROOT / "tests" / "filecheck"
FILES = sorted(p for p in FILECHECK_DIR.rglob("*") if p.suffix in (".geo", ".mlir") and "Output" not in p.parts)  # lit writes Output/


def run_lines(path: Path) -> list[str]:
    lines, current = [], ""
    for line in path.read_text().splitlines():
        if "RUN:" not in line:
            continue
        part = line.split("RUN:", 1)[1].strip()
        if part.endswith("\\"):
            current += part[:-1] + " "
            continue
        lines.append(current + part)
        current = ""
    return lines


def substitute(cmd: str, path: Path, tmp: Path | None = None) -> str:
    python = shlex.quote(sys.executable)
    cmd = cmd.replace("%examples", shlex.quote(str(ROOT / "examples")))
    cmd = cmd.replace("%s", shlex.quote(str(path)))
    if tmp is not None:  # lit's %t: a path prefix of this test's own
        cmd = cmd.replace("%t", shlex.quote(str(tmp / path.stem)))
    cmd = cmd.replace("not filecheck", "! filecheck")
    words = cmd.split(" ")
    words = [f"{python} -m filecheck" if w == "filecheck" else f"{python} -m geomir.driver" if w == "geomc" else w for w in words]
    return " ".join(words)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FILECHECK_DIR)) for p in FILES])
def test_filecheck(path: Path, tmp_path: Path) -> None:
    lines = run_lines(path)
    assert lines, f"{path} has no RUN line"
    for cmd in lines:
        shell = substitute(cmd, path, tmp_path)
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, f"RUN: {cmd}\n$ {shell}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_every_example_has_a_golden_test() -> None:
    examples = sorted(p.name for p in (ROOT / "examples").glob("*.geo"))
    covered = {p.name for p in (FILECHECK_DIR / "examples").glob("*.geo")}
    assert examples and set(examples) <= covered, f"examples without a golden test: {set(examples) - covered}"
