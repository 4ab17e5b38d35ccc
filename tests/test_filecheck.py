"""Golden IR tests: every file under tests/filecheck/ with ``// RUN:`` lines (lit style).

``%s`` is the file itself, ``%examples`` the examples/ folder, and ``filecheck`` the
Python filecheck package. Each RUN line runs in a shell and must exit 0.

The two common shapes, ``geomc ARGS | CHECK`` and ``( geomc ARGS; test $? -eq N ) 2>&1 |
CHECK``, run geomc's ``main`` in this process (the same code as the console script, without
an interpreter start-up per line) and pipe what it printed into CHECK in the shell; any other
RUN line runs in the shell as written. ``lit tests/filecheck`` runs them all as written.
"""

from __future__ import annotations

import contextlib
import io
import re
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


def paths(text: str, path: Path, tmp: Path | None = None, quote=lambda p: p) -> str:
    """``%examples``, ``%s`` and (with tmp) lit's ``%t``, a path prefix of this test's own,
    replaced by those paths, passed through ``quote``."""
    text = text.replace("%examples", quote(str(ROOT / "examples"))).replace("%s", quote(str(path)))
    return text if tmp is None else text.replace("%t", quote(str(tmp / path.stem)))


def substitute(cmd: str, path: Path, tmp: Path | None = None) -> str:
    python = shlex.quote(sys.executable)
    cmd = paths(cmd, path, tmp, shlex.quote)
    cmd = cmd.replace("not filecheck", "! filecheck")
    words = cmd.split(" ")
    words = [f"{python} -m filecheck" if w == "filecheck" else f"{python} -m geomir.driver" if w == "geomc" else w for w in words]
    return " ".join(words)


_PLAIN = re.compile(r"geomc ([^|;&<>()$`]+?) \| (.+)")
_EXPECT = re.compile(r"\( geomc ([^|;&<>()$`]+?); test \$\? -eq (\d+) \) 2>&1 \| (.+)")


def in_process(cmd: str) -> tuple[list[str], bool, int, str] | None:
    """A RUN line of one of the two common shapes as (geomc argv, with stderr, expected exit
    code, the checking rest of the pipe); None for anything else."""
    if m := _PLAIN.fullmatch(cmd):
        return shlex.split(m[1]), False, 0, m[2]
    if m := _EXPECT.fullmatch(cmd):
        return shlex.split(m[1]), True, int(m[2]), m[3]
    return None


def run_line(cmd: str, path: Path, tmp: Path) -> subprocess.CompletedProcess:
    """Run one RUN line; a non-zero return code is a failure."""
    shape = in_process(cmd)
    if shape is None:
        return subprocess.run(["bash", "-o", "pipefail", "-c", substitute(cmd, path, tmp)],
                              capture_output=True, text=True, cwd=ROOT)
    from geomir.driver import main

    words, with_stderr, expected, rest = shape
    argv = [paths(w, path, tmp) for w in words]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out if with_stderr else err):
        code = main(argv)
    if code != expected:
        return subprocess.CompletedProcess(argv, 1, out.getvalue(), f"geomc exited {code}, not {expected}\n"
                                           + err.getvalue())
    return subprocess.run(["bash", "-o", "pipefail", "-c", substitute(rest, path, tmp)], input=out.getvalue(),
                          capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FILECHECK_DIR)) for p in FILES])
def test_filecheck(path: Path, tmp_path: Path) -> None:
    lines = run_lines(path)
    assert lines, f"{path} has no RUN line"
    for cmd in lines:
        proc = run_line(cmd, path, tmp_path)
        assert proc.returncode == 0, f"RUN: {cmd}\n$ {substitute(cmd, path, tmp_path)}\n--- stdout\n{proc.stdout}\n" \
                                     f"--- stderr\n{proc.stderr}"


def test_every_example_has_a_golden_test() -> None:
    examples = sorted(p.name for p in (ROOT / "examples").glob("*.geo"))
    covered = {p.name for p in (FILECHECK_DIR / "examples").glob("*.geo")}
    assert examples and set(examples) <= covered, f"examples without a golden test: {set(examples) - covered}"
