"""The compile entry points shared by the Python API and the geomc CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from geomir.diagnostics import UsageError
from geomir.ir import parse_ir
from geomir.pipeline import DEFAULT_PIPELINE, DumpCallback, parse_pipeline, run_pipeline


def read_source(source: str | Path) -> tuple[str, str]:
    """``(text, filename)`` from a path to a .geo/.mlir file, or from source text itself."""
    if isinstance(source, Path) or (
        "\n" not in source and "{" not in source and source.endswith((".geo", ".mlir"))
    ):
        path = Path(source)
        try:
            return path.read_text(encoding="utf-8"), str(source)
        except OSError as err:
            raise UsageError(f"cannot read '{source}': {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise UsageError(f"cannot read '{source}': not UTF-8 text") from None
    return source, "<string>"


def frontend(text: str, filename: str) -> ModuleOp:
    """IR straight from the frontend: .mlir text is parsed, anything else is .geo."""
    if filename.endswith(".mlir"):
        return parse_ir(text, filename)
    from geomir.frontends.dsl import compile_source

    return compile_source(text, filename)


def to_ir(
    source: str | Path,
    passes: str | Sequence[str] | None = None,
    dump: DumpCallback | None = None,
) -> ModuleOp:
    """Compile a .geo program (path or text) to IR and run ``passes`` (default pipeline if None)."""
    text, filename = read_source(source)
    names = list(DEFAULT_PIPELINE) if passes is None else parse_pipeline(passes)
    return run_pipeline(frontend(text, filename), names, dump)
