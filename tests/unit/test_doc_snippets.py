"""The code blocks of README.md and docs/*.md run as written and print what the docs say.

Users copy these blocks; a block that does not run, or prints something else than the
page claims, is a bug in the docs (or in the code). One test per runnable block, named
``PAGE[INDEX]:LINE`` (INDEX counts every fenced block of the page from 0, LINE is the
line of its opening fence).

Which blocks run
----------------
* ```` ```python ````: the block is a script, run in a fresh interpreter.
* ```` ```bash ```` / ```` ```sh ```` / ```` ```shell ````: the block is a shell script,
  run command by command in one ``bash`` (so ``cd`` and ``export`` carry on). Each command
  must exit 0.
* ```` ```geo ````: a `.geo` program; it must compile (``geomir.to_ir``, the default
  pipeline, as ``geomc FILE --emit=ir``).
* ```` ```console ````, or an unlabeled block whose first line starts with ``$ ``: a
  transcript. The ``$ `` lines are run in one ``bash``; the lines after each are the
  output it must print (stdout and stderr together).
* Other blocks (IR, YAML, unlabeled text: tables, excerpts, outputs without a command) are
  not run.

Where they run
--------------
In a new temporary directory holding a copy of ``examples/`` and ``benchmarks/``, with
the venv's ``bin/`` first on ``PATH`` (``python``, ``geomc``, ``apel``),
``TRITON_INTERPRET=1`` (Triton on the CPU) and a private ``GEOMIR_CACHE_DIR``. A literal
``/tmp/`` in a block means that directory, so blocks never share scratch files.

Markers
-------
HTML comments on the lines right before the opening fence (any number, in any order):

* ``<!-- snippet: skip (REASON) -->``: not run (needs a CUDA GPU, the network, the
  WordNet data, minutes of training; or a fragment: a signature, ``...`` for arguments).
* ``<!-- snippet: slow (REASON) -->``: runs only with ``GEOMIR_SLOW_SNIPPETS=1`` (it
  works but takes too long for the unit suite).
* ``<!-- snippet: xfail (REASON) -->``: a known bug in the code: the block must fail
  (strict: once the bug is fixed the test says so, and the marker must go).
* ``<!-- snippet: continues -->`` (python): the block continues the page's previous
  python block; they run in order in one interpreter (a chain of such blocks may be any
  length).
* ``<!-- snippet: loose (REASON) -->`` (shell, transcript): numbers in the expected output
  match any number, and runs of spaces any run (timings, sizes; table columns that move).
* ``<!-- snippet: file NAME -->`` (any block): the block's text is written to ``NAME`` in
  the working directory of every block of the page (e.g. a ``.geo`` or ``.apel`` program
  that a transcript compiles, before or after it). Such a block is not run itself.

A runnable block without ``skip``/``slow``/``xfail`` that fails fails the test: a broken
snippet cannot be added unnoticed.

Expected output
---------------
* Python: a ``# -> TEXT`` comment at the end of an expression statement. For ``print(...)``
  TEXT is what it prints; for any other expression, the ``repr`` of its value.
* Shell: ``# -> TEXT`` lines after a command: lines its output must contain, in this
  order (other lines may come between). ``# -> exit N``: its exit status must be N.
* Transcript: the lines after ``$ COMMAND``, exactly (trailing spaces aside).
In all three ``...`` matches any text (in python and transcripts also across lines), and
TEXT ends at a further ``  # `` (a comment on the expectation).

Shell commands that install packages (``pip install ...``, also as the ``pip install X &&``
head of a chain) are dropped: the environment under test is the one already installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COPIED = ["examples", "benchmarks"]
TIMEOUT_S = 120
SLOW = os.environ.get("GEOMIR_SLOW_SNIPPETS") == "1"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")
MARKER_KINDS = {"skip", "slow", "xfail", "continues", "file", "loose"}
SHELL_LANGS = {"bash", "sh", "shell", "zsh"}
TRANSCRIPT_LANGS = {"console", "shell-session"}
EXPECT = re.compile(r"#\s*->\s?(?P<text>.*)$")


@dataclass
class Block:
    page: Path
    index: int  # among all fenced blocks of the page
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    markers: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def rel(self) -> str:
        return self.page.relative_to(ROOT).as_posix()

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line}"

    @property
    def kind(self) -> str | None:
        """python, geo, shell or transcript: how the block runs; None: not run."""
        if "file" in self.markers:
            return None
        if self.lang in {"python", "geo"}:
            return self.lang
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang in TRANSCRIPT_LANGS or (self.lang == "" and self.text.lstrip().startswith("$ ")):
            return "transcript"
        return None


def parse_page(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence[0] * len(fence)) and lines[j].strip().strip(fence[0]) == ""
        ):
            j += 1
        body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1 : j]]
        block = Block(page, len(blocks), i + 1, info.split()[0].lower() if info else "", "\n".join(body) + "\n")
        k = i - 1
        while k >= 0 and lines[k].strip().startswith("<!--"):
            mm = MARKER.match(lines[k])
            if mm:
                kind, arg = mm["kind"], mm["arg"]
                if kind not in MARKER_KINDS:
                    block.problems.append(f"line {k + 1}: unknown snippet marker {kind!r} (known: {sorted(MARKER_KINDS)})")
                elif kind in {"skip", "slow", "xfail", "loose"} and not re.fullmatch(r"\(.+\)", arg):
                    block.problems.append(f"line {k + 1}: '{kind}' needs a reason in parentheses")
                block.markers[kind] = arg.strip("()")
            elif "snippet" in lines[k]:
                block.problems.append(f"line {k + 1}: malformed snippet marker {lines[k].strip()!r}")
            k -= 1
        blocks.append(block)
        i = j + 1
    for b in blocks:
        if "continues" in b.markers and (b.lang != "python" or not _previous_python(blocks, b)):
            b.problems.append("'continues' on a block that is not python or has no python block before it")
        if "file" in b.markers and not b.markers["file"]:
            b.problems.append("'file' needs a file name")
        if "loose" in b.markers and b.kind not in {"shell", "transcript"}:
            b.problems.append("'loose' applies to shell blocks and transcripts only")
        if b.kind is None and set(b.markers) & {"skip", "slow", "xfail", "continues"}:
            b.problems.append(f"marker on a block that is not run (```{b.lang})")
    return blocks


def _previous_python(blocks: list[Block], block: Block) -> Block | None:
    for b in reversed(blocks[: block.index]):
        if b.kind == "python":
            return b
    return None


ALL_BLOCKS = {page: parse_page(page) for page in PAGES}
RUNNABLE = [b for blocks in ALL_BLOCKS.values() for b in blocks if b.kind]


# ----------------------------------------------------------------------------- the checks


def test_snippet_markers_are_valid() -> None:
    problems = [f"{b.where}: {p}" for blocks in ALL_BLOCKS.values() for b in blocks for p in b.problems]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.rel}[{b.index}]:{b.line}" for b in RUNNABLE])
def test_doc_snippet(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if "skip" in block.markers:
        pytest.skip(f"{block.where}: {block.markers['skip']}")
    if "slow" in block.markers and not SLOW:
        pytest.skip(f"{block.where}: slow ({block.markers['slow']}); GEOMIR_SLOW_SNIPPETS=1 runs it")
    if "xfail" in block.markers:
        request.applymarker(pytest.mark.xfail(reason=f"{block.where}: {block.markers['xfail']}", strict=True))
    if block.kind == "geo":
        return _run_geo(block)
    work = _workdir(block, tmp_path)
    env = _env(work)
    run = {"python": _run_python, "shell": _run_shell, "transcript": _run_transcript}[block.kind]
    run(block, work, env)


# ----------------------------------------------------------------------------- environment


def _workdir(block: Block, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name in COPIED:
        shutil.copytree(
            ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", ".apel", "*.sqlite", "*.pyc")
        )
    for b in ALL_BLOCKS[block.page]:
        if "file" in b.markers:
            (work / b.markers["file"]).write_text(b.text)
    return work


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APEL_", "GEOMIR_", "ORDER_", "PYTEST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TRITON_INTERPRET"] = "1"
    env["GEOMIR_CACHE_DIR"] = str(work / ".geomir-cache")
    env["TMPDIR"] = str(work)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "200"
    env.pop("PYTHONPATH", None)
    return env


def _localize(text: str, work: Path) -> str:
    """A literal /tmp/ in a block is the block's own directory."""
    return re.sub(r"(?<![\w./])/tmp/", f"{work}/", text)


def _execute(argv: list[str], work: Path, env: dict[str, str], block: Block) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{block.where}: still running after {TIMEOUT_S} s\n{e.stdout or ''}{e.stderr or ''}")


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _pattern(expected: str, multiline: bool = False, loose: bool = False) -> re.Pattern[str]:
    """TEXT with ``...`` matching anything (within a line, or across lines when multiline),
    spaces next to it included (``{ ... }`` also matches a body on several lines). Loose:
    any number matches any number, and a run of spaces any run of spaces."""

    def literal(text: str) -> str:
        if not loose:
            return re.escape(text)
        out, pos = [], 0
        for m in re.finditer(rf"{NUMBER.pattern}| +", text):
            out += [re.escape(text[pos : m.start()]), " *" if m[0].startswith(" ") else NUMBER.pattern]
            pos = m.end()
        return "".join(out) + re.escape(text[pos:])

    parts = expected.split("...")
    if len(parts) > 1:
        parts = [p.rstrip(" ") if i == 0 else p.strip(" ") if i < len(parts) - 1 else p.lstrip(" ") for i, p in enumerate(parts)]
    return re.compile((r"(?s:.*?)" if multiline else r".*?").join(literal(p) for p in parts))


def _strip_comment(text: str) -> str:
    return text.split("  # ", 1)[0].rstrip()


# ----------------------------------------------------------------------------- python

DRIVER = textwrap.dedent(
    r'''
    # Runs a chain of python blocks in one namespace, each compiled with its page's line
    # numbers; records what each '# ->' expression gives, for the test to compare.
    import ast, contextlib, io, json, re, sys, tokenize

    chain = json.load(open(sys.argv[1]))
    results = []

    def __snippet_expect__(where, source, thunk, expected, is_print):
        if is_print:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                thunk()
            got = buf.getvalue()
            sys.stdout.write(got)
            got = got.rstrip("\n")
        else:
            got = repr(thunk())
        results.append({"where": where, "source": source, "expected": expected, "got": got})
        json.dump(results, open(sys.argv[2], "w"))

    class Expect(ast.NodeTransformer):
        def __init__(self, rel, offset, text, expects):
            self.rel, self.offset, self.text, self.expects = rel, offset, text, expects
            self.used = set()

        def visit_Expr(self, node):
            line = node.end_lineno
            if line not in self.expects:
                return node
            self.used.add(line)
            is_print = isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "print"
            call = ast.Call(
                func=ast.Name("__snippet_expect__", ast.Load()),
                args=[
                    ast.Constant(f"{self.rel}:{line + self.offset}"),
                    ast.Constant(ast.get_source_segment(self.text, node)),
                    ast.Lambda(ast.arguments([], [], None, [], [], None, []), node.value),
                    ast.Constant(self.expects[line]),
                    ast.Constant(is_print),
                ],
                keywords=[],
            )
            return ast.copy_location(ast.Expr(call), node)

    namespace = {"__name__": "__main__", "__snippet_expect__": __snippet_expect__}
    for part in chain:
        text, rel, offset = part["text"], part["rel"], part["offset"]
        expects = {}
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                m = re.match(r"#\s*->\s?(.*)$", tok.string)
                if m:
                    expects[tok.start[0]] = m.group(1).split("  # ", 1)[0].rstrip()
        tree = ast.parse(text)
        expect = Expect(rel, offset, text, expects)
        tree = ast.fix_missing_locations(expect.visit(tree))
        for line in sorted(set(expects) - expect.used):
            sys.exit(f"{rel}:{line + offset}: '# ->' is not on the last line of an expression statement")
        ast.increment_lineno(tree, offset)
        exec(compile(tree, rel, "exec"), namespace)
    '''
)


def _run_python(block: Block, work: Path, env: dict[str, str]) -> None:
    chain = [block]
    while "continues" in chain[0].markers:
        chain.insert(0, _previous_python(ALL_BLOCKS[block.page], chain[0]))
    blocks, results = work / ".snippet-blocks.json", work / ".snippet-results.json"
    blocks.write_text(json.dumps([{"text": _localize(b.text, work), "rel": b.rel, "offset": b.line} for b in chain]))
    # the blocks' lines are numbered as in the page, so a traceback names the doc's line
    proc = _execute([sys.executable, "-c", DRIVER, str(blocks), str(results)], work, env, block)
    if proc.returncode != 0:
        pytest.fail(
            f"{block.where}: the block fails (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-6000:]}",
            pytrace=False,
        )
    wrong = [
        f"{r['where']}: {r['source']}\n    the doc says: {r['expected']}\n    it gives:     {r['got']}"
        for r in (json.loads(results.read_text()) if results.exists() else [])
        if not _pattern(r["expected"], multiline=True).fullmatch(r["got"].strip())
    ]
    if wrong:
        pytest.fail(f"{block.where}: the output differs from the doc:\n" + "\n".join(wrong), pytrace=False)


# ----------------------------------------------------------------------------- .geo


def _run_geo(block: Block) -> None:
    import geomir

    try:
        geomir.to_ir(block.text)
    except geomir.GeomirError as e:
        pytest.fail(f"{block.where}: the program does not compile (lines counted from the block's first):\n{e.render()}", pytrace=False)


# ----------------------------------------------------------------------------- shell


@dataclass
class Command:
    line: int  # line in the page
    text: str
    expects: list[str] = field(default_factory=list)
    exit: int = 0


def _drop_installs(cmd: str) -> str:
    parts = [p for p in re.split(r"\s*&&\s*", cmd) if not re.match(r"(python3? -m )?pip3? install\b", p.strip())]
    return " && ".join(parts)


def _shell_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        start, ln = i, lines[i]
        i += 1
        stripped = ln.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            m = EXPECT.match(stripped)
            if m and commands:
                text = _strip_comment(m["text"])
                em = re.fullmatch(r"exit (\d+)", text)
                if em:
                    commands[-1].exit = int(em[1])
                else:
                    commands[-1].expects.append(text)
            continue
        while ln.rstrip().endswith("\\") and i < len(lines):
            ln = ln.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
        commands.append(Command(block.line + 1 + start, ln))
    return commands


def _run_commands(
    block: Block, commands: list[Command], work: Path, env: dict[str, str], check_exit: bool = True
) -> list[tuple[Command, str, int]]:
    """Run the commands in one bash; return each with its output and exit status, up to the
    first that exits other than expected (with check_exit)."""
    script = ["exec 2>&1"]
    for n, c in enumerate(commands):
        script += [
            _localize(c.text, work),
            f"__rc=$?; printf '\\n@@snippet-end {n} %s\\n' $__rc",
        ]
        if check_exit:
            script.append(f"[ $__rc -eq {c.exit} ] || exit 0")
    proc = _execute(["bash", "-c", "\n".join(script)], work, env, block)
    out = proc.stdout
    results = []
    for n, c in enumerate(commands):
        m = re.search(rf"\n?@@snippet-end {n} (\d+)\n", out)
        if not m:
            results.append((c, out, -1))
            break
        results.append((c, out[: m.start()], int(m[1])))
        out = out[m.end() :]
    return results


def _run_shell(block: Block, work: Path, env: dict[str, str]) -> None:
    commands = [c for c in _shell_commands(block) if _drop_installs(c.text)]
    for c in commands:
        c.text = _drop_installs(c.text)
    assert commands, f"{block.where}: nothing to run once the installs are dropped; mark it skip"
    for c, out, rc in _run_commands(block, commands, work, env):
        where = f"{block.rel}:{c.line}"
        if rc != c.exit:
            pytest.fail(f"{where}: `{c.text}` exits {rc} (the doc expects {c.exit}):\n{out[-6000:]}", pytrace=False)
        lines = out.splitlines()
        k = 0
        for expected in c.expects:
            pat = _pattern(expected, loose="loose" in block.markers)
            while k < len(lines) and not pat.fullmatch(lines[k].rstrip()):
                k += 1
            if k == len(lines):
                pytest.fail(f"{where}: `{c.text}` does not print (in order) the line the doc shows:\n    {expected}\nIt prints:\n{out[-6000:]}", pytrace=False)
            k += 1


# ----------------------------------------------------------------------------- transcripts


def _run_transcript(block: Block, work: Path, env: dict[str, str]) -> None:
    commands: list[Command] = []
    for n, ln in enumerate(block.text.splitlines()):
        if ln.startswith("$ "):
            commands.append(Command(block.line + 1 + n, ln[2:]))
        elif commands:
            commands[-1].expects.append(ln)
    # any exit status: the output is the check
    for c, out, _rc in _run_commands(block, commands, work, env, check_exit=False):
        expected = "\n".join(ln.rstrip() for ln in c.expects).strip("\n")
        actual = "\n".join(ln.rstrip() for ln in out.splitlines()).strip("\n")
        if not _pattern(expected, multiline=True, loose="loose" in block.markers).fullmatch(actual):
            pytest.fail(
                f"{block.rel}:{c.line}: `{c.text}` prints something else than the doc shows.\n"
                f"--- the doc\n{expected}\n--- the output\n{actual[-8000:]}",
                pytrace=False,
            )

