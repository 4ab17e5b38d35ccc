"""Execution traces for APEL runs: OpenTelemetry spans in a JSON-lines file.

Every run, step, retry, compensation and decision is a span carrying the run id, the
correlation id and its kind as ``apel.*`` attributes. :class:`Tracer` writes them with
:class:`JsonFileSpanExporter` (one JSON object a line, safe for several processes
appending to one file); :func:`read_spans` reads them back and :func:`render_timeline`
draws them for ``apel trace RUN_ID``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode
from rich.console import Console
from rich.table import Table
from rich.text import Text

from geomir.diagnostics import GeomirError

KINDS = ("run", "step", "retry", "compensation", "decision", "event", "subworkflow", "branch")
_PRIMITIVES = (str, bool, int, float)
_BAR_WIDTH = 40


class TraceError(GeomirError):
    """A trace file is missing or corrupt."""


def _span_json(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "resource": dict(span.resource.attributes),
    }


class JsonFileSpanExporter(SpanExporter):
    """Appends each finished span to ``path`` as one JSON line.

    The file is opened with ``O_APPEND`` and each line goes out in one unbuffered
    ``write``, so lines from several processes never interleave.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._fd is None:
            return SpanExportResult.FAILURE
        for span in spans:
            os.write(self._fd, (json.dumps(_span_json(span)) + "\n").encode())
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every line is written unbuffered

    def shutdown(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _attr(value: Any) -> Any:
    """An OpenTelemetry attribute value: a primitive, a one-type list of them, or str()."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, (list, tuple)) and len({type(v) for v in value}) <= 1:
        if all(isinstance(v, _PRIMITIVES) for v in value):
            return list(value)
    return str(value)


class SpanHandle:
    """What ``Tracer.span`` yields: set attributes, add events, mark the span failed."""

    def __init__(self, span: trace.Span):
        self._span = span

    def set(self, key: str, value: Any) -> None:
        self._span.set_attribute(key, _attr(value))

    def event(self, name: str, **attrs: Any) -> None:
        self._span.add_event(name, {k: _attr(v) for k, v in attrs.items()})

    def fail(self, message: str) -> None:
        self._span.set_status(Status(StatusCode.ERROR, message))


class Tracer:
    """Spans for the APEL runtime, on a private ``TracerProvider``.

    ``path=None`` with no ``exporter`` disables tracing: ``span`` still works as a
    context manager, but records nothing.
    """

    def __init__(
        self,
        path: str | Path | None,
        service_name: str = "apel",
        exporter: SpanExporter | None = None,
    ):
        if exporter is None and path is not None:
            exporter = JsonFileSpanExporter(path)
        self._provider: TracerProvider | None = None
        if exporter is not None:
            resource = Resource.create({"service.name": service_name})
            # Simple (not batching) so each span is on disk when it ends: workers get killed.
            self._provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
            self._tracer = self._provider.get_tracer("geomir.apel")

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @contextmanager
    def span(
        self,
        name: str,
        *,
        run_id: str,
        correlation_id: str,
        kind: str,
        step_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        parent: SpanHandle | None = None,
    ) -> Iterator[SpanHandle]:
        """A span, child of ``parent`` if given, else of the current span in this thread.

        An exception escaping the block is recorded, sets status ERROR and propagates;
        a block that ends normally without ``fail`` gets status OK.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown span kind {kind!r}; expected one of {', '.join(KINDS)}")
        if self._provider is None:
            yield SpanHandle(trace.INVALID_SPAN)
            return
        attrs = {"apel.run_id": run_id, "apel.correlation_id": correlation_id, "apel.kind": kind}
        if step_id is not None:
            attrs["apel.step_id"] = step_id
        attrs.update({k: _attr(v) for k, v in (attributes or {}).items()})
        context = trace.set_span_in_context(parent._span) if parent is not None else None
        with self._tracer.start_as_current_span(
            name, context=context, attributes=attrs,
            record_exception=False, set_status_on_exception=False,
        ) as span:
            try:
                yield SpanHandle(span)
            except BaseException as exc:
                span.record_exception(exc, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise
            if span.status.status_code is StatusCode.UNSET:
                span.set_status(Status(StatusCode.OK))

    def shutdown(self) -> None:
        """Flush and close the exporter; later spans are dropped."""
        if self._provider is not None:
            self._provider.shutdown()


@dataclass(frozen=True)
class SpanRecord:
    """One span as read back from a trace file."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    resource: dict[str, Any]

    @property
    def run_id(self) -> str | None:
        return self.attributes.get("apel.run_id")

    @property
    def correlation_id(self) -> str | None:
        return self.attributes.get("apel.correlation_id")

    @property
    def kind(self) -> str | None:
        return self.attributes.get("apel.kind")

    @property
    def step_id(self) -> str | None:
        return self.attributes.get("apel.step_id")

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def read_spans(path: str | Path, run_id: str | None = None) -> list[SpanRecord]:
    """The spans in a trace file (of one run if ``run_id`` is given), by start time.

    An unterminated last line that does not parse (a writer killed mid-line) is skipped;
    any other bad line raises :class:`TraceError` naming ``file:line``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise TraceError(f"trace file not found: {path}") from None
    except OSError as exc:
        raise TraceError(f"cannot read trace file {path}: {exc.strerror}") from None
    lines = text.split("\n")
    spans = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = SpanRecord(**json.loads(line))
        except (ValueError, TypeError) as exc:
            if number == len(lines):  # no newline after it: truncated by a killed writer
                continue
            raise TraceError(f"{path}:{number}: corrupt trace line: {exc}") from None
        if run_id is None or record.run_id == run_id:
            spans.append(record)
    return sorted(spans, key=lambda s: s.start_ns)


def step_order(spans: Sequence[SpanRecord]) -> list[str]:
    """The step ids of all step spans (every attempt), in start order."""
    ordered = sorted(spans, key=lambda s: s.start_ns)
    return [s.step_id for s in ordered if s.kind == "step" and s.step_id is not None]


def correlation_ids(spans: Sequence[SpanRecord]) -> set[str]:
    return {s.correlation_id for s in spans if s.correlation_id is not None}


def _tree_order(spans: Sequence[SpanRecord]) -> list[tuple[SpanRecord, int]]:
    """Spans depth-first with their nesting depth; siblings by start time."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for s in sorted(spans, key=lambda s: s.start_ns):
        children.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    out: list[tuple[SpanRecord, int]] = []
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        out.append((span, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(span.span_id, [])))
    return out


def _bar(start: int, end: int, t0: int, total: int) -> str:
    left = min(_BAR_WIDTH - 1, (start - t0) * _BAR_WIDTH // total)
    right = max(left + 1, min(_BAR_WIDTH, -(-(end - t0) * _BAR_WIDTH // total)))
    return " " * left + "█" * (right - left) + " " * (_BAR_WIDTH - right)


def render_timeline(spans: Sequence[SpanRecord], console: Console) -> None:
    """Print the spans as an indented timeline table under a one-line summary."""
    if not spans:
        console.print("no spans")
        return
    t0 = min(s.start_ns for s in spans)
    t1 = max(s.end_ns for s in spans)
    total = max(t1 - t0, 1)
    runs = ", ".join(sorted({s.run_id for s in spans if s.run_id})) or "?"
    cids = ", ".join(sorted(correlation_ids(spans))) or "?"
    kinds = Counter(s.kind or "?" for s in spans)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    console.print(Text(
        f"run {runs}  correlation {cids}  total {(t1 - t0) / 1e6:.2f} ms  spans: {counts}"
    ))
    table = Table(box=None, header_style="bold")
    table.add_column("offset ms", justify="right")
    table.add_column("duration ms", justify="right")
    table.add_column("kind")
    table.add_column("name", overflow="fold")
    table.add_column("step", overflow="fold")
    table.add_column("status", max_width=30, overflow="ellipsis", no_wrap=True)
    table.add_column("timeline", min_width=_BAR_WIDTH, no_wrap=True)
    for span, depth in _tree_order(spans):
        status = span.status + (f" {span.status_message}" if span.status_message else "")
        style = "red" if span.status == "ERROR" else "yellow" if span.kind == "compensation" else None
        table.add_row(
            f"{(span.start_ns - t0) / 1e6:.2f}",
            f"{span.duration_ms:.2f}",
            Text(span.kind or "?"),
            Text("  " * depth + span.name),
            Text(span.step_id or ""),
            Text(status),
            _bar(span.start_ns, span.end_ns, t0, total),
            style=style,
        )
    console.print(table)
