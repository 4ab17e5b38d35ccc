"""APEL execution traces: spans written by a Tracer, read back, and drawn as a timeline."""

from __future__ import annotations

import io
import json
import multiprocessing
import threading

import pytest
from rich.console import Console

from geomir.apel.tracing import (
    JsonFileSpanExporter,
    TraceError,
    Tracer,
    correlation_ids,
    read_spans,
    render_timeline,
    step_order,
)

RUN = {"run_id": "run-1", "correlation_id": "corr-1"}


@pytest.fixture
def trace_path(tmp_path):
    return tmp_path / "traces" / "apel.jsonl"  # the parent folder does not exist yet


def _write_spans(path, run_id: str, count: int) -> None:
    """Worker for the multi-process test: many large spans appended to one file."""
    tracer = Tracer(path)
    with tracer.span("run", run_id=run_id, correlation_id=run_id, kind="run"):
        for i in range(count - 1):
            with tracer.span(f"s{i}", run_id=run_id, correlation_id=run_id, kind="step",
                             step_id=f"s{i}", attributes={"payload": "x" * 4096}):
                pass
    tracer.shutdown()


def test_spans_read_back_with_nesting_attributes_status_and_events(trace_path):
    tracer = Tracer(trace_path, service_name="apel-test")
    with tracer.span("wf", kind="run", **RUN) as run:
        run.set("apel.workflow", "wf")
        with tracer.span("fetch", kind="step", step_id="fetch", attributes={"n": 3}, **RUN) as s:
            s.set("tags", ["a", "b"])
            s.set("config", {"k": 1})  # not an attribute type: stored as str()
            s.event("cache.miss", key="k1", size=2)
            with tracer.span("choose", kind="decision", **RUN) as d:
                d.set("apel.choice", "left")
        with tracer.span("undo-fetch", kind="compensation", step_id="fetch", **RUN) as c:
            c.fail("cannot undo")
    tracer.shutdown()

    spans = {s.name: s for s in read_spans(trace_path)}
    assert list(spans) == ["wf", "fetch", "choose", "undo-fetch"]  # by start time
    wf, fetch, choose, undo = spans.values()
    assert wf.parent_id is None
    assert fetch.parent_id == wf.span_id and undo.parent_id == wf.span_id
    assert choose.parent_id == fetch.span_id
    assert {s.trace_id for s in spans.values()} == {wf.trace_id}
    assert len(wf.trace_id) == 32 and len(wf.span_id) == 16
    assert int(wf.trace_id, 16) and int(wf.span_id, 16)

    assert fetch.attributes["n"] == 3 and fetch.attributes["tags"] == ["a", "b"]
    assert fetch.attributes["config"] == "{'k': 1}"
    assert (fetch.run_id, fetch.correlation_id, fetch.kind, fetch.step_id) == (
        "run-1", "corr-1", "step", "fetch")
    assert wf.step_id is None and wf.attributes["apel.workflow"] == "wf"
    assert choose.attributes["apel.choice"] == "left"
    assert [(e["name"], e["attributes"]) for e in fetch.events] == [
        ("cache.miss", {"key": "k1", "size": 2})]
    assert fetch.events[0]["time_ns"] >= fetch.start_ns

    assert (wf.status, fetch.status) == ("OK", "OK")
    assert (undo.status, undo.status_message) == ("ERROR", "cannot undo")
    assert wf.resource["service.name"] == "apel-test"
    assert wf.start_ns <= fetch.start_ns <= fetch.end_ns <= wf.end_ns
    assert wf.duration_ms >= fetch.duration_ms >= 0


def test_exception_in_block_sets_error_and_is_reraised(trace_path):
    tracer = Tracer(trace_path)
    with pytest.raises(ValueError, match="boom"):
        with tracer.span("wf", kind="run", **RUN):
            with tracer.span("flaky", kind="step", step_id="flaky", **RUN):
                raise ValueError("boom")
    tracer.shutdown()

    flaky, wf = sorted(read_spans(trace_path), key=lambda s: s.name)
    for span in (flaky, wf):
        assert span.status == "ERROR" and span.status_message == "ValueError: boom"
        (event,) = span.events
        assert event["name"] == "exception"
        assert event["attributes"]["exception.type"] == "ValueError"
        assert event["attributes"]["exception.message"] == "boom"


def test_disabled_tracer_is_a_no_op(tmp_path):
    tracer = Tracer(None)
    assert not tracer.enabled
    with tracer.span("wf", kind="run", **RUN) as run:
        run.set("k", object())
        run.event("e", a=1)
        run.fail("nothing recorded")
        with tracer.span("s", kind="step", step_id="s", parent=run, **RUN):
            pass
    with pytest.raises(KeyError):
        with tracer.span("s", kind="step", **RUN):
            raise KeyError("still raised")
    tracer.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_unknown_kind_is_rejected(trace_path):
    tracer = Tracer(trace_path)
    with pytest.raises(ValueError, match="unknown span kind 'stepp'"):
        with tracer.span("s", kind="stepp", **RUN):
            pass


def test_explicit_exporter_and_exporter_shutdown(trace_path):
    exporter = JsonFileSpanExporter(trace_path)
    tracer = Tracer(None, exporter=exporter)
    assert tracer.enabled
    with tracer.span("wf", kind="run", **RUN):
        pass
    tracer.shutdown()
    with tracer.span("late", kind="run", **RUN):  # after shutdown: dropped, no error
        pass
    assert [s.name for s in read_spans(trace_path)] == ["wf"]


def test_two_processes_appending_to_one_file(trace_path):
    ctx = multiprocessing.get_context("spawn")
    count = 300
    procs = [ctx.Process(target=_write_spans, args=(trace_path, f"run-{i}", count))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    lines = trace_path.read_text().splitlines()
    assert len(lines) == 2 * count
    assert all(json.loads(line)["name"] for line in lines)
    for i in range(2):
        spans = read_spans(trace_path, run_id=f"run-{i}")
        assert len(spans) == count
        assert step_order(spans) == [f"s{j}" for j in range(count - 1)]


def _write_lines(path, lines: list[str], end: str = "\n") -> None:
    path.write_text("\n".join(lines) + end)


def _one_span_lines(trace_path, n: int = 3) -> list[str]:
    tracer = Tracer(trace_path)
    for i in range(n):
        with tracer.span(f"s{i}", kind="step", step_id=f"s{i}", **RUN):
            pass
    tracer.shutdown()
    return trace_path.read_text().splitlines()


def test_truncated_last_line_is_skipped(trace_path):
    lines = _one_span_lines(trace_path)
    _write_lines(trace_path, lines[:2] + [lines[2][:57]], end="")  # writer killed mid-line
    assert [s.name for s in read_spans(trace_path)] == ["s0", "s1"]


def test_corrupt_line_raises_naming_file_and_line(trace_path):
    lines = _one_span_lines(trace_path)
    _write_lines(trace_path, [lines[0], lines[1][:40], lines[2]])
    with pytest.raises(TraceError, match=rf"{trace_path}:2: corrupt trace line"):
        read_spans(trace_path)
    # a bad last line that ends with a newline is corrupt, not truncated
    _write_lines(trace_path, lines[:2] + ['{"name": "x"}'])
    with pytest.raises(TraceError, match=rf"{trace_path}:3:"):
        read_spans(trace_path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(TraceError, match="trace file not found"):
        read_spans(tmp_path / "nope.jsonl")


def test_read_spans_filters_by_run_and_sorts_by_start(trace_path):
    tracer = Tracer(trace_path)
    with tracer.span("a", kind="run", run_id="A", correlation_id="cA"):
        with tracer.span("b", kind="run", run_id="B", correlation_id="cB"):
            with tracer.span("a1", kind="step", step_id="a1", run_id="A", correlation_id="cA"):
                pass
    tracer.shutdown()
    # children end (and are written) before their parents
    assert [json.loads(line)["name"] for line in trace_path.read_text().splitlines()] == [
        "a1", "b", "a"]
    assert [s.name for s in read_spans(trace_path)] == ["a", "b", "a1"]
    assert [s.name for s in read_spans(trace_path, run_id="A")] == ["a", "a1"]
    assert [s.name for s in read_spans(trace_path, run_id="B")] == ["b"]
    assert read_spans(trace_path, run_id="C") == []
    assert correlation_ids(read_spans(trace_path)) == {"cA", "cB"}


def test_step_order_across_threads_with_explicit_parent(trace_path):
    tracer = Tracer(trace_path)
    turn = threading.Condition()
    next_step = [0]
    order = ["extract", "embed", "embed", "index"]  # embed is retried

    def worker(index: int, run) -> None:
        with turn:
            turn.wait_for(lambda: next_step[0] == index)
        with tracer.span(order[index], kind="step", step_id=order[index], parent=run, **RUN):
            with tracer.span("check", kind="decision", **RUN):  # nests in this thread
                pass
        with turn:
            next_step[0] += 1
            turn.notify_all()

    with tracer.span("wf", kind="run", **RUN) as run:
        threads = [threading.Thread(target=worker, args=(i, run)) for i in reversed(range(4))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    tracer.shutdown()

    spans = read_spans(trace_path, run_id="run-1")
    wf = spans[0]
    steps = [s for s in spans if s.kind == "step"]
    assert step_order(spans) == order
    assert all(s.parent_id == wf.span_id and s.trace_id == wf.trace_id for s in steps)
    step_ids = {s.span_id for s in steps}
    assert all(s.parent_id in step_ids for s in spans if s.kind == "decision")
    assert correlation_ids(spans) == {"corr-1"}


def _render(spans) -> str:
    out = io.StringIO()
    render_timeline(spans, Console(file=out, width=160, color_system=None))
    return out.getvalue()


def test_render_timeline(trace_path):
    tracer = Tracer(trace_path)
    with tracer.span("wf", kind="run", **RUN):
        with tracer.span("charge-card", kind="step", step_id="charge", **RUN):
            with tracer.span("[retry 1]", kind="retry", step_id="charge", **RUN) as r:
                r.fail("declined")
        with tracer.span("refund", kind="compensation", step_id="charge", **RUN):
            pass
    tracer.shutdown()

    text = _render(read_spans(trace_path, run_id="run-1"))
    header, *rows = text.splitlines()
    assert "run run-1" in header and "correlation corr-1" in header
    assert "1 compensation, 1 retry, 1 run, 1 step" in header
    for name in ("wf", "charge-card", "[retry 1]", "refund"):
        assert name in text
    assert "    [retry 1]" in text  # indented two levels
    assert "ERROR declined" in text
    bars = [row for row in rows if "█" in row]
    assert len(bars) == 4
    assert "█" * 40 in bars[0]  # the run span covers the whole time range
    assert _render([]).strip() == "no spans"
