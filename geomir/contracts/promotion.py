"""Promotion stages and the online router of a kernel contract.

:class:`Router` is a callable that serves a model's calls while moving its candidate
kernel through the contract's ``promotion`` stages:

=========  ================================================================================
offline    ``geomc contract check`` on the contract's inputs; passing starts the next stage
shadow     the reference answers; the candidate runs beside it on every call and is compared
canary     the candidate answers a ``fraction`` of the calls, each compared with the reference
full       the candidate answers; a ``observability.sample_rate`` share of calls is compared,
           and the ``escalation`` policy applies: warn, fall back to the reference (from the
           next window until one ends without a violation), block the candidate (a
           violation that reaches no step: logged)
=========  ================================================================================

Each live stage analyses windows of ``stages.<stage>.window`` calls, in the manner of Argo
Rollouts' analysis runs: a compared call *fails* when a numerical clause is violated on it;
more failures than ``failure_limit`` fail the stage at once (the candidate is blocked; in
``full``, escalation decides, on the strongest step the window's failed calls reached);
at the window's end every clause (numerical, statistical, runtime p99) is evaluated on
the window's compared calls: all hold and at least ``min_samples`` calls were compared:
the stage passes (the next starts); too few compared calls: *inconclusive*, the
promotion pauses (``geomc contract promote --resume``). A candidate output with NaN or
inf rows is an event (``nonfinite``) on every call, compared or not.

State (stage, status, counters, the current window's compared outputs), every stage event
and every routing decision are kept in SQLite (``<contract>.state.sqlite`` by default), so
a restarted process continues where the last one stopped. The state is kept for a
:func:`fingerprint` of what was checked (the contract's fields, the model file, the weights
file): when any of them changed, the promotion starts again at the first stage (event
``restarted``).

The runtime p99 of a live window leaves out the first candidate call of each input shape
in the process: it compiles (JAX's jit, Triton's autotuning) and is not the kernel's
latency (its decision still records it).
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geomir.diagnostics import UsageError

from .check import (REJECT, Kernels, build_kernels, evaluate, inputs_hash, is_logits, nonfinite_rows, resolve,
                    strongest)
from .spec import Contract, contract_file

LIVE = ("shadow", "canary", "full")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (contract TEXT PRIMARY KEY, stage TEXT, status TEXT, calls INTEGER,
    compared INTEGER, failures INTEGER, window INTEGER, fallback INTEGER, started REAL, updated REAL,
    fingerprint TEXT, worst TEXT);
CREATE TABLE IF NOT EXISTS window (contract TEXT, y_ref BLOB, y_cand BLOB, latency_ms REAL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, ts REAL, contract TEXT, stage TEXT, kind TEXT,
    detail TEXT);
CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY, ts REAL, contract TEXT, stage TEXT, call INTEGER,
    answered_by TEXT, compared INTEGER, failed INTEGER, max_error REAL, inputs_hash TEXT, latency_ms REAL,
    metrics TEXT);
"""


def _blob(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _array(b: bytes) -> np.ndarray:
    return np.load(io.BytesIO(b), allow_pickle=False)


def fingerprint(contract: Contract, base: Path) -> str:
    """A digest of what a promotion checks: the contract's fields, and the contents of its
    model and weights files (relative to ``base``)."""
    h = hashlib.sha256(contract.model_dump_json().encode())
    for name in (contract.model, contract.weights):
        if name is not None:
            try:
                h.update((base / name).read_bytes())
            except OSError:
                h.update(b"(unreadable)")
    return h.hexdigest()[:16]


@dataclass
class State:
    stage: str  # one of the contract's promotion stages
    status: str  # "running", "paused" (inconclusive), "blocked"
    calls: int = 0  # calls in the current window
    compared: int = 0
    failures: int = 0
    window: int = 0  # windows completed in this stage
    fallback: bool = False  # full stage: the reference answers this window (escalation)
    total: int = 0  # calls served in all
    started: float = 0.0  # when the current window started (time.time())
    worst: str = ""  # the strongest escalation action of the window's failed calls


class Store:
    """The promotion's SQLite file; a file that cannot be used is a UsageError."""

    def __init__(self, path: str | Path, contract: str, fingerprint: str | None = None):
        self.path = Path(path)
        self.contract = contract
        self.fingerprint = fingerprint
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        problem = "it is a directory" if self.path.is_dir() else \
            f"directory '{self.path.parent}' does not exist" if not self.path.parent.is_dir() else None
        if problem is None:
            try:
                db = sqlite3.connect(self.path)
                db.executescript(_SCHEMA)
                columns = [row[1] for row in db.execute("PRAGMA table_info(state)")]
                for column in ("fingerprint", "worst"):  # a file written by an older geomir lacks them
                    if column not in columns:
                        db.execute(f"ALTER TABLE state ADD COLUMN {column} TEXT")
                return db
            except sqlite3.Error as err:
                problem = f"{err} (not a promotion state file?)"
        raise UsageError(f"contract: cannot use the state file '{self.path}': {problem}; give another --state")

    def load(self) -> tuple[State, str | None] | None:
        """The saved state and the fingerprint it was saved for, or None."""
        row = self.db.execute("SELECT stage, status, calls, compared, failures, window, fallback, started, "
                              "fingerprint, worst FROM state WHERE contract = ?", (self.contract,)).fetchone()
        if row is None:
            return None
        total = self.db.execute("SELECT COUNT(*) FROM decisions WHERE contract = ?", (self.contract,)).fetchone()[0]
        return (State(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), total, row[7] or time.time(),
                      row[9] or ""), row[8])

    def save(self, s: State) -> None:
        self.db.execute("INSERT OR REPLACE INTO state (contract, stage, status, calls, compared, failures, window, "
                        "fallback, started, updated, fingerprint, worst) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (self.contract, s.stage, s.status, s.calls, s.compared, s.failures, s.window, int(s.fallback),
                         s.started, time.time(), self.fingerprint, s.worst))
        self.db.commit()

    def event(self, stage: str, kind: str, detail: dict | str = "") -> None:
        text = detail if isinstance(detail, str) else json.dumps(detail)
        self.db.execute("INSERT INTO events (ts, contract, stage, kind, detail) VALUES (?, ?, ?, ?, ?)",
                        (time.time(), self.contract, stage, kind, text))
        self.db.commit()

    def decision(self, stage, call, answered_by, compared, failed, max_error, digest, latency, metrics=None) -> None:
        self.db.execute("INSERT INTO decisions (ts, contract, stage, call, answered_by, compared, failed, max_error, "
                        "inputs_hash, latency_ms, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (time.time(), self.contract, stage, call, answered_by, int(compared), int(failed), max_error,
                         digest, latency, json.dumps(metrics) if metrics else None))

    def add_to_window(self, y_ref, y_cand, latency) -> None:
        self.db.execute("INSERT INTO window VALUES (?, ?, ?, ?)", (self.contract, _blob(y_ref), _blob(y_cand), latency))

    def window_outputs(self):
        rows = self.db.execute("SELECT y_ref, y_cand, latency_ms FROM window WHERE contract = ?",
                               (self.contract,)).fetchall()
        if not rows:
            return None, None, []
        return (np.concatenate([_array(r[0]) for r in rows]), np.concatenate([_array(r[1]) for r in rows]),
                [r[2] for r in rows])

    def clear_window(self) -> None:
        """Empty the window (committed with the next :meth:`save`, so state and window agree)."""
        self.db.execute("DELETE FROM window WHERE contract = ?", (self.contract,))

    def events(self) -> list[dict]:
        rows = self.db.execute("SELECT stage, kind, detail FROM events WHERE contract = ? ORDER BY id",
                               (self.contract,)).fetchall()
        return [{"stage": s, "kind": k, "detail": d} for s, k, d in rows]

    def decisions(self) -> list[dict]:
        rows = self.db.execute("SELECT stage, call, answered_by, compared, failed, max_error, inputs_hash, latency_ms, "
                               "metrics FROM decisions WHERE contract = ? ORDER BY id", (self.contract,)).fetchall()
        keys = ("stage", "call", "answered_by", "compared", "failed", "max_error", "inputs_hash", "latency_ms")
        return [dict(zip(keys, r[:-1]), metrics=json.loads(r[-1]) if r[-1] else {}) for r in rows]

    def reset(self, tables=("state", "window", "events", "decisions")) -> None:
        for table in tables:
            self.db.execute(f"DELETE FROM {table} WHERE contract = ?", (self.contract,))  # noqa: S608 (our names)
        self.db.commit()


def default_state(source, contract: Contract) -> Path:
    """The state file of a contract given as ``source`` (a path, YAML text or a
    :class:`Contract`): ``<file without suffix>.state.sqlite`` beside a contract file,
    else ``<contract name>.state.sqlite`` in the working directory."""
    path = None if isinstance(source, Contract) else contract_file(source)
    return Path(str(path.with_suffix("")) + ".state.sqlite") if path is not None else \
        Path(f"{contract.contract}.state.sqlite")


class Router:
    """Serve calls (float64 numpy inputs -> outputs) while promoting the candidate."""

    def __init__(self, contract, state: str | Path | None = None, candidate=None, seed: int = 0,
                 kernels: Kernels | None = None, base: str | Path | None = None):
        """``contract``: a path, YAML text or :class:`Contract`; ``base``: where its relative
        paths start (default: the contract file's directory, else the working directory)."""
        self.contract, base = resolve(contract, base)
        self.store = Store(state or default_state(contract, self.contract), self.contract.contract,
                           fingerprint(self.contract, base))
        self.kernels = kernels or build_kernels(self.contract, base, candidate)
        self._count_launches = self.contract.candidate.target == "triton" and candidate is None
        self.rng = np.random.default_rng(seed)
        self._compiled: set[tuple] = set()  # input shapes the candidate ran on in this process
        numerical_only = {"statistical": None, "runtime": None}
        self._per_call = self.contract.model_copy(update=numerical_only)
        runtime = self.contract.runtime
        live_runtime = runtime.model_copy(update={"max_memory_mb": None}) if runtime is not None else None
        self._per_window = self.contract.model_copy(update={"runtime": live_runtime})
        self.state = self._saved()
        if self.state is None:
            self._start()

    def _saved(self) -> State | None:
        """The saved state, unless it was saved for another contract, model or weights (or
        in a stage this contract has not): then an event says so and None (start again)."""
        saved = self.store.load()
        if saved is None:
            return None
        state, digest = saved
        if digest is None:
            why = f"the saved state (in stage {state.stage}) has no fingerprint: an older geomir wrote it"
        elif digest != self.store.fingerprint:
            why = (f"the contract, its model or its weights changed since the state was saved (in stage {state.stage}, "
                   f"{state.status})")
        elif state.stage not in self.contract.promotion:
            why = f"the saved stage {state.stage} is not in the contract's promotion ({', '.join(self.contract.promotion)})"
        else:
            return state
        self.store.reset(("state", "window"))
        self.store.event(state.stage, "restarted", f"{why}: the promotion starts again at {self.contract.promotion[0]}")
        return None

    # -- stages ----------------------------------------------------------------------------
    def _stages(self) -> list[str]:
        return list(self.contract.promotion)

    def _start(self) -> None:
        stages = self._stages()
        self.state = State(stages[0], "running", started=time.time())
        if stages[0] == "offline":
            self._offline()
        self.store.save(self.state)

    def _offline(self) -> None:
        from .check import run_check

        report = run_check(self.contract, self.kernels, count_launches=self._count_launches)
        failed = [c.clause for c in report.clauses if c.verdict == "FAIL" or c.action in REJECT]
        detail = {"clauses": {c.clause: [c.measured, c.bound, c.verdict, c.action] for c in report.clauses}}
        if report.notes:  # e.g. a Triton candidate that ran torch's code: never passed unknowingly
            detail["notes"] = report.notes
        if "triton_launches" in report.percentiles:
            detail["triton_launches"] = report.percentiles["triton_launches"]
        if not report.passed:
            self.state.status = "blocked"
            self.store.event("offline", "blocked", {"failed": failed, **detail})
        else:
            self.store.event("offline", "passed", detail)
            self._advance()

    def _advance(self) -> None:
        stages = self._stages()
        i = stages.index(self.state.stage)
        if i + 1 < len(stages):
            self.state = State(stages[i + 1], "running", total=self.state.total, started=time.time())
            self.store.clear_window()
            self.store.save(self.state)  # the new stage and its empty window in one commit
            self.store.event(self.state.stage, "started")
        else:  # the last stage keeps monitoring, window after window
            self._new_window()

    def _new_window(self) -> None:
        s = self.state
        s.calls = s.compared = s.failures = 0
        s.worst = ""
        s.window += 1
        s.started = time.time()
        self.store.clear_window()
        self.store.save(s)

    @property
    def stage(self) -> str:
        return self.state.stage

    @property
    def status(self) -> str:
        return self.state.status

    def resume(self) -> None:
        """Continue a paused (inconclusive) promotion with a fresh window."""
        if self.state.status == "paused":
            self.state.status = "running"
            self._new_window()
            self.store.event(self.state.stage, "resumed")
            self.store.save(self.state)

    # -- serving ---------------------------------------------------------------------------
    def _who(self) -> tuple[str, bool]:
        """(who answers, whether the call is compared)."""
        s = self.state
        if s.status != "running" or s.stage == "offline":
            return "reference", False
        if s.stage == "shadow":
            return "reference", True
        if s.stage == "canary":
            canary = self.rng.random() < self.contract.stages["canary"].fraction
            return ("candidate", True) if canary else ("reference", False)
        compared = self.rng.random() < self.contract.observability.sample_rate
        return ("reference" if s.fallback else "candidate"), compared

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        xs = [np.asarray(x, dtype=np.float64) for x in inputs]
        s = self.state
        who, compared = self._who()
        k = self.kernels
        latency = None
        y_ref = k.reference(xs) if (who == "reference" or compared) else None
        y_cand = None
        compiling = False
        if who == "candidate" or compared:
            shapes = tuple(x.shape for x in xs)
            compiling = shapes not in self._compiled
            self._compiled.add(shapes)
            start = time.perf_counter()
            y_cand = k.candidate(xs)
            latency = (time.perf_counter() - start) * 1e3
            self._report_nonfinite(y_cand, who, compared)
        failed, max_error, action, metrics = False, None, "", {}
        if compared:
            metrics = self._metrics(xs, y_ref, y_cand, latency)
            clauses, pct, _ = evaluate(self._per_call, y_ref, y_cand, k.output_type)
            failed = any(c.verdict == "FAIL" for c in clauses)
            action = strongest(c.action for c in clauses)
            max_error = pct["error"]["max"]
            s.compared += 1
            if failed:
                s.failures += 1
                s.worst = strongest((s.worst, action))
            self.store.add_to_window(y_ref, y_cand, None if compiling else latency)  # compiling: not in the p99
        self.store.decision(s.stage, s.total, who, compared, failed, max_error, inputs_hash(xs), latency, metrics)
        s.total += 1
        if s.status == "running" and s.stage in LIVE:
            s.calls += 1
            limit = self.contract.stages[s.stage]
            if s.failures > limit.failure_limit:
                self._fail(f"{s.failures} failed calls > failure_limit {limit.failure_limit}", s.worst)
            elif s.calls >= limit.window or (limit.seconds is not None and time.time() - s.started >= limit.seconds):
                self._close_window()
        self.store.save(self.state)  # not ``s``: closing the window may have started a new stage
        return y_cand if who == "candidate" else y_ref

    def _report_nonfinite(self, y_cand: np.ndarray, who: str, compared: bool) -> None:
        """A ``nonfinite`` event for a candidate output with NaN or inf rows, compared or not,
        whatever the escalation does with it: no NaN the router sees goes unreported."""
        bad = int(nonfinite_rows(y_cand).sum())
        if bad:
            served = "served" if who == "candidate" else "not served"
            self.store.event(self.state.stage, "nonfinite",
                             f"call {self.state.total}: {bad} of {len(y_cand)} candidate output rows are NaN or inf "
                             f"({served}, {'compared' if compared else 'not compared'})")

    def _metrics(self, xs, y_ref, y_cand, latency) -> dict:
        """The ``observability.record`` fields of a compared call (probabilities: softmax
        of the outputs, for logits)."""
        from .check import kl_divergence, sample_errors, softmax

        record = self.contract.observability.record
        errors = sample_errors(y_ref, y_cand, self.kernels.output_type, self.contract.numerical.metric)
        out = {"inputs_hash": inputs_hash(xs), "max_error": float(np.max(errors)), "mean_error": float(np.mean(errors)),
               "latency_ms": latency}
        logits = is_logits(self.kernels.output_type, y_ref.shape[-1])
        if logits and any(k in record for k in ("kl", "top1", "pearson", "max_prob_diff", "mean_prob_diff")):
            p, q = softmax(y_ref), softmax(y_cand)
            with np.errstate(invalid="ignore", divide="ignore"):
                pearson = float(np.corrcoef(p.ravel(), q.ravel())[0, 1]) if p.size > 1 else 1.0
            out.update(kl=float(np.mean(kl_divergence(y_ref, y_cand))), max_prob_diff=float(np.max(np.abs(p - q))),
                       mean_prob_diff=float(np.mean(np.abs(p - q))),
                       top1=float(np.mean(np.argmax(y_ref, -1) == np.argmax(y_cand, -1))), pearson=pearson)
        return {k: out[k] for k in record if k in out}

    def _fail(self, why: str, action: str = "block") -> None:
        """A violation: shadow and canary block; in full, ``action`` (the escalation step the
        violation reaches, "" for none: logged as ``violated``) decides."""
        s = self.state
        if s.stage != "full" or action == "block":
            s.status = "blocked"
            self.store.event(s.stage, "blocked", why)
            return
        if action == "fallback":
            s.fallback = True
        self.store.event(s.stage, action or "violated", why)
        self._new_window()

    def _close_window(self) -> None:
        s = self.state
        limit = self.contract.stages[s.stage]
        y_ref, y_cand, latencies = self.store.window_outputs()
        compared = len(latencies)  # the compared calls stored for this window: what is judged
        lat = [x for x in latencies if x is not None]  # not the calls that compiled
        if compared < limit.min_samples:
            why = f"{compared} compared calls < min_samples {limit.min_samples}"
            if s.stage == "full":  # monitoring continues; nothing to judge this window
                self.store.event(s.stage, "inconclusive", why)
                s.fallback = False
                self._new_window()
                return
            s.status = "paused"
            self.store.event(s.stage, "inconclusive", why)
            return
        timing = None
        if self.contract.runtime is not None and lat:
            timing = {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                      "calls": len(lat), "rows": int(y_ref.shape[0] / max(len(lat), 1)), "device": "live",
                      "memory_mb": 0.0, "memory_how": "not measured live"}
        clauses, _, _ = evaluate(self._per_window, y_ref, y_cand, self.kernels.output_type, timing)
        failed = [c for c in clauses if c.verdict == "FAIL" or c.action in REJECT]  # violated, or a step rejects it
        detail = {c.clause: [c.measured, c.bound, c.verdict, c.action] for c in clauses}
        if not failed:
            warned = [c.clause for c in clauses if c.action == "warn"]
            if warned:
                self.store.event(s.stage, "warn", {"window": s.window, "warned": warned, "clauses": detail})
            self.store.event(s.stage, "window passed", {"window": s.window, "clauses": detail})
            if s.stage == "full":
                s.fallback = False
                self._new_window()
            else:
                self._advance()
            return
        action = strongest(c.action for c in failed)
        self._fail(json.dumps({"failed": [c.clause for c in failed], "clauses": detail}), action)

    def events(self) -> list[dict]:
        return self.store.events()

    def decisions(self) -> list[dict]:
        self.store.db.commit()
        return self.store.decisions()


def promote(contract_path, calls: int, rows: int = 16, state=None, reset: bool = False, resume: bool = False,
            on_event=None) -> Router:
    """Drive a :class:`Router` with ``calls`` synthetic calls of ``rows`` rows drawn from the
    contract's input distribution (fresh draws after a restart)."""
    from .check import _entry, draw_inputs

    contract, base = resolve(contract_path)
    path = Path(state) if state else default_state(contract_path, contract)
    store = Store(path, contract.contract)
    if reset:
        store.reset()
    before = len(store.events())  # events of earlier runs are not shown again
    store.db.close()
    router = Router(contract_path, state=path)
    if resume:
        router.resume()
    _, f = _entry((base / contract.model).resolve(), contract.entry)
    seen = before
    last = contract.promotion[-1]

    def report():
        nonlocal seen
        events = router.events()
        if on_event is not None:
            for e in events[seen:]:
                on_event(e)
        seen = len(events)

    for _ in range(calls):
        report()
        if router.status != "running" or router.stage == last:
            break
        seed = contract.inputs.seed + 1 + router.state.total
        xs = draw_inputs(f, rows, seed, contract.inputs.distribution, contract.inputs.scale)
        router(*xs)
    report()
    return router


def promoted(router: Router) -> bool:
    """Whether the candidate reached the contract's last stage and is not blocked."""
    return router.stage == router.contract.promotion[-1] and router.status == "running"
