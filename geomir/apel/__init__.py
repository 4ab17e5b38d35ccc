"""APEL: agent workflows as a language (``.apel``) and an IR (the ``apel`` dialect), run
durably: compensation, correlation, loop and deadlock detection, checkpoint/resume in
SQLite or PostgreSQL, and OpenTelemetry traces. See docs/apel.md.

    import geomir.apel as apel
    program = apel.load("order.apel")                 # parse, lower, check
    result = apel.run(program, {"order": {...}}, store="runs.sqlite")
"""

from __future__ import annotations

from pathlib import Path

from .agents import AgentCall, ContractViolation, Delegate, agent, register


def compile_file(path: str | Path):
    """The ``apel`` IR of a workflow file (unchecked)."""
    from .irgen import compile_workflow_source

    import sys

    from geomir.diagnostics import read_text_file

    path = Path(path)
    text = read_text_file(path)  # as every geomir tool: not UTF-8 is an error at the first bad byte
    here = str(path.resolve().parent)  # 'import type X from "models:X"' finds models.py next to the file
    sys.path.insert(0, here)
    try:
        return compile_workflow_source(text, str(path)), text
    finally:
        sys.path.remove(here)


def load(path: str | Path, agents=None, check: bool = True):
    """A runnable :class:`~geomir.apel.engine.Program` from a ``.apel`` file; with ``check``
    (default) the static checks run first and the first problem is raised."""
    from .checks import run_checks
    from .engine import Program

    module, text = compile_file(path)
    if check:
        problems = run_checks(module)
        if problems:
            raise problems[0]
    return Program(module, text, str(path), agents)


def run(program, inputs: dict, store: str | Path = "apel.sqlite", workflow: str | None = None,
        trace: str | Path | None = None, run_id: str | None = None, correlation_id: str | None = None, limits=None):
    """Start one run and return its :class:`~geomir.apel.engine.RunResult`."""
    from .engine import Engine
    from .store import open_store
    from .tracing import Tracer

    if not hasattr(program, "workflows"):
        program = load(program)
    tracer = Tracer(trace)
    with open_store(store) as s:
        try:
            return Engine(program, s, tracer=tracer, limits=limits).start(inputs, workflow, run_id, correlation_id)
        finally:
            tracer.shutdown()


__all__ = ["AgentCall", "ContractViolation", "Delegate", "agent", "compile_file", "load", "register", "run"]
