"""``apel``: run, resume and inspect durable agent workflows.

    apel run workflow.apel --input in.json        start a run (and finish it, or leave it waiting)
    apel run workflow.apel --input in.json --queue   queue it for the workers instead
    apel resume RUN_ID                            continue a run after a crash, from its last committed step
    apel send CORRELATION_ID EVENT --data '"ok"'  deliver an event; the waiting run it belongs to resumes
    apel worker [--once]                          run queued runs, runs whose worker died and timed-out
                                                  receives, then keep doing so (many workers may share a store)
    apel runs                                     the runs in the store
    apel trace RUN_ID                             a run's spans as a timeline

The store is ``--store`` (a SQLite path, or ``postgresql://...``), else $APEL_STORE, else
``.apel/runs.sqlite``; traces go to ``--trace``, $APEL_TRACE, else ``.apel/traces.jsonl``.
Exit codes: 0 completed (or waiting), 1 compensated or failed or a user error, 2 usage,
3 an internal error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from geomir.diagnostics import GeomirError, UsageError, add_debug_option, cli_main, read_text_file


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apel", description="Durable agent workflows (APEL).",
                                epilog="Exit codes: 0 completed or waiting, 1 compensated, failed or an error in the "
                                "workflow, 2 usage error, 3 internal error.")
    p.add_argument("--store", help="SQLite file or postgresql:// URL (default $APEL_STORE or .apel/runs.sqlite)")
    p.add_argument("--trace", help="span file, JSON lines (default $APEL_TRACE or .apel/traces.jsonl)")
    p.add_argument("--lease", type=float, default=30.0, help="seconds a worker owns a run between heartbeats (default 30)")
    add_debug_option(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a run of a workflow")
    run.add_argument("file", help="the .apel file")
    run.add_argument("--input", help="a JSON file (or - for stdin) with the workflow's inputs by name")
    run.add_argument("--workflow", help="which workflow of the file (default: the one top-level "
                     "workflow, which no other workflow runs; a usage error when there are several)")
    run.add_argument("--run-id", help="the run id (default: random)")
    run.add_argument("--correlation", help="the correlation id events use to find this run (default: the run id)")
    run.add_argument("--agents", action="append", default=[], metavar="MODULE",
                     help="import this module first (it registers agents with @geomir.apel.agent)")
    run.add_argument("--queue", action="store_true",
                     help="only queue the run (inputs checked): an 'apel worker' runs it; prints its id")
    resume = sub.add_parser("resume", help="continue a run from its last committed step")
    resume.add_argument("run_id")
    resume.add_argument("--agents", action="append", default=[], metavar="MODULE")
    send = sub.add_parser("send", help="deliver an event to the runs with this correlation id")
    send.add_argument("correlation_id")
    send.add_argument("event")
    send.add_argument("--data", default="null", help="the event's payload, JSON (default null)")
    send.add_argument("--agents", action="append", default=[], metavar="MODULE")
    worker = sub.add_parser("worker", help="run queued runs, runs whose worker died (lease expired) and waiting "
                            "runs whose receive timed out")
    worker.add_argument("--once", action="store_true", help="until nothing is left to claim, then exit")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between passes (default 1)")
    worker.add_argument("--agents", action="append", default=[], metavar="MODULE")
    sub.add_parser("runs", help="list the runs in the store")
    trace = sub.add_parser("trace", help="show a run's spans as a timeline")
    trace.add_argument("run_id")
    for command in sub.choices.values():  # `apel run x.apel --debug` too
        add_debug_option(command)
    return p


def _store_url(args) -> str:
    return args.store or os.environ.get("APEL_STORE") or ".apel/runs.sqlite"


def _trace_path(args) -> str:
    return args.trace or os.environ.get("APEL_TRACE") or ".apel/traces.jsonl"


def _import_agents(modules: list[str]) -> None:
    import importlib

    sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UsageError(f"--agents {name}: {err}") from None


def _engine(args, store, file: str, worker: str | None = None):
    from geomir.apel import load
    from geomir.apel.engine import Engine, Limits
    from geomir.apel.tracing import Tracer

    if not 0 < args.lease < math.inf:
        raise UsageError(f"--lease must be a positive number of seconds, found {args.lease:g}")
    sys.path.insert(0, str(Path(file).resolve().parent))  # impl "module:function" next to the workflow file
    return Engine(load(file), store, tracer=Tracer(_trace_path(args)), limits=Limits(lease_s=args.lease),
                  worker=worker)


def _file_of(store, run_id: str) -> str:
    from geomir.apel import state_codec

    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run '{run_id}' in the store")
    return state_codec.decode(record.input)["file"]


def _show(result) -> int:
    line = {"run_id": result.run_id, "status": result.status, "correlation_id": result.correlation_id}
    if result.status == "completed":
        line["output"] = result.output
    if result.error:
        line["error"] = result.error
    if result.waiting_for:
        line["waiting_for"] = result.waiting_for
    sys.stdout.write(json.dumps(_jsonable(line), allow_nan=False) + "\n")
    return 0 if result.status in ("completed", "waiting") else 1


def _jsonable(value):
    """``value`` as JSON data: arrays and tensors as lists, a float that is not finite (only
    a ``json`` value holds one) as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``,
    anything else JSON lacks as its ``str``."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def _read_input(spec: str | None) -> dict:
    if spec is None:
        return {}
    text = sys.stdin.read() if spec == "-" else read_text_file(spec)  # not UTF-8: an error at the byte
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{spec}:{err.lineno}:{err.colno}: not JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{spec}: expected a JSON object with the workflow's inputs by name")
    return data


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from geomir.apel.store import open_store

    if args.command == "trace":
        from rich.console import Console

        from geomir.apel.tracing import read_spans, render_timeline

        spans = read_spans(_trace_path(args), args.run_id)
        if not spans:
            raise UsageError(f"no spans of run '{args.run_id}' in {_trace_path(args)}")
        render_timeline(spans, Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160, highlight=False))
        return 0
    with open_store(_store_url(args)) as store:
        if args.command == "runs":
            for r in store.list_runs():
                extra = f" waiting for '{r.waiting_for}'" if r.waiting_for else (f": {r.error}" if r.error else "")
                sys.stdout.write(f"{r.run_id}  {r.workflow:<16} {r.status:<11} correlation {r.correlation_id}{extra}\n")
            return 0
        _import_agents(args.agents)
        if args.command == "run":
            engine = _engine(args, store, args.file)
            inputs = _read_input(args.input)
            how = engine.submit if args.queue else engine.start
            result = how(inputs, args.workflow, args.run_id, args.correlation, file=str(Path(args.file).resolve()))
            if args.queue:
                sys.stdout.write(json.dumps({"run_id": result, "status": "queued"}) + "\n")
                return 0
            return _show(result)
        if args.command == "resume":
            return _show(_engine(args, store, _file_of(store, args.run_id)).resume(args.run_id))
        if args.command == "send":
            return _send(args, store)
        if args.command == "worker":
            return _work(args, store)
    return 0


def _send(args, store) -> int:
    """Post the event, then resume the runs waiting for it, each with its own workflow file.
    The event is posted first, so that a run going to wait meanwhile finds it."""
    from geomir.apel import state_codec

    try:
        payload = json.loads(args.data)
    except json.JSONDecodeError as err:
        raise UsageError(f"--data is not JSON: {err.msg}") from None
    store.post_event(args.correlation_id, args.event, state_codec.encode(payload))
    waiting = store.list_runs(status="waiting", correlation_id=args.correlation_id)
    targets = [r for r in waiting if args.event in (r.waiting_for or "").split(",")]
    if not targets:
        others = "; ".join(f"run {r.run_id} waits for {_quoted(r.waiting_for)}" for r in waiting)
        sys.stdout.write(f"event '{args.event}' stored for correlation id {args.correlation_id} "
                         f"(no run is waiting for it yet{': ' + others if others else ''})\n")
        return 0
    files: dict[str, list[str]] = {}
    for r in targets:
        files.setdefault(_file_of(store, r.run_id), []).append(r.run_id)
    code = 0
    for file, run_ids in files.items():
        try:
            results = _engine(args, store, file).wake(args.correlation_id, args.event)
        except GeomirError as err:  # this file is broken: the others' runs still get the event
            sys.stderr.write("".join(f"run {run_id}: {err.render()}\n" for run_id in run_ids))
            code = 1
            continue
        code = max([code] + [_show(r) for r in results])
        for run_id in sorted(set(run_ids) - {r.run_id for r in results}):  # another worker resumed it meanwhile
            sys.stdout.write(f"event '{args.event}' stored for correlation id {args.correlation_id} (run {run_id} "
                             "is busy; it takes the event when it next waits)\n")
    return code


def _quoted(names: str | None) -> str:
    return ", ".join(f"'{n}'" for n in (names or "").split(",") if n)


def _work(args, store) -> int:
    """Claim one run at a time (so that workers sharing the store share the runs) and run it."""
    from geomir.apel.engine import worker_name

    if not 0 < args.poll < math.inf:
        raise UsageError(f"--poll must be a positive number of seconds, found {args.poll:g}")
    me = worker_name()
    engines: dict[str, object] = {}
    broken: set[str] = set()
    internal = False  # a run hit a bug in the runtime (exit 3 with --once)
    while True:
        claimed = store.claim_expired(me, args.lease, 1) or store.claim_due(me, args.lease, 1)
        if not claimed:
            if args.once:
                return 3 if internal else 1 if broken else 0
            time.sleep(args.poll)
            continue
        run_id = claimed[0]
        if run_id in broken and args.once:
            store.release(run_id, me)
            return 1
        file = _file_of(store, run_id)
        try:
            if file not in engines:
                engines[file] = _engine(args, store, file, worker=me)
            _show(engines[file].resume(run_id))
        except GeomirError as err:  # its file or agents are broken: say so and serve the others
            sys.stderr.write(f"run {run_id}: {err.render()}\n")
            broken.add(run_id)  # the lease is left to expire: it is tried again after --lease seconds
        except Exception as err:  # noqa: BLE001 - a bug in the runtime: one run must not stop every worker
            sys.stderr.write(f"run {run_id}: internal error: {type(err).__name__}: {err}\n")
            broken.add(run_id)
            internal = True


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
