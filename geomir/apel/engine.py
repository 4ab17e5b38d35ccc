"""The APEL runtime: executes ``apel`` IR durably.

Every step's outcome is committed to the store (journal) before the next step starts.
Resuming a run replays the workflow from the top: steps found in the journal return their
recorded results without calling anything, so completed side effects are never redone;
the first step not in the journal runs for real. A replay that reaches steps in a
different order than recorded, or calls an agent with other arguments, stops with
:class:`NonDeterminismError`.

Attempts are journaled before they run, so attempts a crash cut short count against the
step's ``retry`` budget (and its agent's ``budget calls``) when the run is resumed; a step
whose attempts keep crashing the worker fails at ``max(retry + 1, Limits.crash_attempts)``
attempts instead of being retried forever.

Failure semantics: a step that fails (after its retries) makes the run unwind: the
failure is journaled (``unwind:run``), then the compensations of the completed steps run in
reverse completion order, each exactly once (journaled under ``compensate:<step>``), and
the run ends ``compensated`` with the cause recorded. A run resumed while unwinding replays
only its completed steps and goes on unwinding. Runs are owned by one worker at a time through a lease renewed by a heartbeat;
a lost lease stops the worker without committing anything more.
"""

from __future__ import annotations

import concurrent.futures as cf
import collections
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Region

from geomir.diagnostics import GeomirError, SourceError, UsageError, op_span
from geomir.dialects import apel

from . import agents as agents_mod
from . import checks
from . import state_codec
from .store import LeaseLost, RunExists, RunRecord, Store
from .tracing import Tracer

# --- limits and errors ----------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Run-time guards (docs/apel.md, "Limits"). Each is a hard stop with an error."""

    max_repeats: int = 3
    """Identical calls (same agent, same input digest) allowed per run; one more is a loop."""
    max_delegation_depth: int = 8
    """Delegations in one step's chain (an agent's ``budget depth`` may lower it)."""
    max_steps: int = 10_000
    """Journaled steps per run."""
    max_iterations: int = 100_000
    """Loop iterations per run, of all ``while`` and ``repeat`` loops together (loops whose
    bodies journal nothing do not count against ``max_steps``)."""
    lease_s: float = 30.0
    """How long a worker's ownership of a run lasts without a heartbeat."""
    internal_wait_s: float = 60.0
    """How long a branch waits for an event another branch sends, unless the receive has a timeout."""
    crash_attempts: int = 10
    """Attempts a step may make in all when a crash cut its last attempt short, if its ``retry``
    allows fewer (1: a cut-short attempt counts like a failed one, with no allowance). A
    resumed run redoes the cut-short step first, so a crash loop of the workers (an OOM
    killer, a rolling restart) lands on that step again and again: the allowance keeps such
    crashes from failing a step that did nothing wrong, and still ends a step that crashes
    its worker every time."""

    def __post_init__(self) -> None:
        least = {"max_repeats": 1, "max_delegation_depth": 0, "max_steps": 1, "max_iterations": 1,
                 "crash_attempts": 1}
        bad = [f"{name} must be an integer >= {low}, found {getattr(self, name)!r}" for name, low in least.items()
               if not _is_int(getattr(self, name)) or getattr(self, name) < low]
        bad += [f"{name} must be a number of seconds > 0, found {getattr(self, name)!r}"
                for name in ("lease_s", "internal_wait_s")
                if not _is_number(getattr(self, name)) or not 0 < getattr(self, name) < float("inf")]
        if bad:
            raise UsageError("Limits: " + "; ".join(bad))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class RunError(GeomirError):
    """A run stopped with an error (the cause recorded on the run)."""


class StepFailed(RunError):
    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class LoopDetected(StepFailed):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class BudgetExceeded(StepFailed):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class DeadlockError(StepFailed):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class NonDeterminismError(RunError):
    """A resumed run took a different path than the one recorded."""


class WorkflowFailed(StepFailed):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class AgentUnavailable(SourceError):
    """An agent's implementation cannot be loaded (a deployment error, not a step failure):
    the run stops where it is, uncompensated, and is retried when its lease expires."""


class _Suspend(Exception):
    """The run waits for external events; ``wake_at``: when the earliest receive timeout ends."""

    def __init__(self, events: list[str], wake_at: float | None):
        self.events, self.wake_at = events, wake_at

    @staticmethod
    def merge(suspends: list[_Suspend]) -> _Suspend:
        events = list(dict.fromkeys(e for s in suspends for e in s.events))
        wakes = [s.wake_at for s in suspends if s.wake_at is not None]
        return _Suspend(events, min(wakes) if wakes else None)


class _Cancelled(Exception):
    pass


class _Unwind(Exception):
    """A resumed run that was unwinding reached a step it had not finished: replay stops here
    (without cancelling other branches, so that they replay their completed steps too)."""


@dataclass
class RunResult:
    run_id: str
    status: str  # completed | compensated | failed | waiting | lost
    output: object = None
    error: str | None = None
    correlation_id: str = ""
    waiting_for: str | None = None


# --- the program ------------------------------------------------------------------------------


class Program:
    """A checked APEL module ready to run: its agents, workflows, schemas and source hash."""

    def __init__(self, module: ModuleOp, source_text: str = "", filename: str = "<string>",
                 implementations: Mapping[str, Callable] | None = None):
        self.module = module
        self.filename = filename
        self.base_dir = Path(filename).parent if filename != "<string>" else Path.cwd()
        self.source_hash = hashlib.sha256(source_text.encode()).hexdigest()[:16]
        self.agents = {op.sym_name.data: op for op in module.ops if isinstance(op, apel.AgentOp)}
        self.workflows = {op.sym_name.data: op for op in module.ops if isinstance(op, apel.WorkflowOp)}
        self.schemas = agents_mod.Schemas({op.sym_name.data: op for op in module.ops if isinstance(op, apel.RecordOp)})
        self.overrides = dict(implementations or {})
        self._impls: dict[str, Callable] = {}
        self._sent: dict[str, frozenset[str]] = {}

    def implementation(self, name: str) -> Callable:
        if name not in self._impls:
            self._impls[name] = agents_mod.resolve(self.agents[name], self.base_dir, self.overrides)
        return self._impls[name]

    def sent_events(self, workflow: str) -> frozenset[str]:
        """The events a run of ``workflow`` sends itself (in it or the sub-workflows it runs):
        its receives of them are internal, of any other event external."""
        if workflow not in self._sent:
            seen, todo = set(), [workflow]
            while todo:
                name = todo.pop()
                if name not in seen:
                    seen.add(name)
                    todo += [op.workflow.root_reference.data for op in self.workflows[name].walk()
                             if isinstance(op, apel.RunOp)]
            self._sent[workflow] = frozenset(op.event.data for name in seen for op in self.workflows[name].walk()
                                             if isinstance(op, apel.SendOp))
        return self._sent[workflow]

    def workflow(self, name: str | None) -> apel.WorkflowOp:
        if name is None:  # the workflow no other workflow runs, if there is one
            called = {op.workflow.root_reference.data for wf in self.workflows.values() for op in wf.walk()
                      if isinstance(op, apel.RunOp)}
            top = [w for n, w in self.workflows.items() if n not in called]
            if not self.workflows:
                raise UsageError("the file declares no workflow (only a 'workflow NAME(...) -> T { ... }' can be run)")
            if not top:
                raise UsageError(f"the file has no top-level workflow (each is run by another); name one "
                                 f"({', '.join(self.workflows)})")
            if len(top) != 1:
                raise UsageError(f"the file has {len(top)} top-level workflows; name one "
                                 f"({', '.join(w.sym_name.data for w in top)})")
            return top[0]
        if name not in self.workflows:
            raise UsageError(f"no workflow '{name}' (workflows: {', '.join(self.workflows) or 'none'})")
        return self.workflows[name]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- one execution of a run -----------------------------------------------------------------------


@dataclass
class _Compensation:
    seq: float  # when the step completed (compensations run latest first)
    step_id: str
    call: apel.CallOp
    result: object
    context: agents_mod.Context


@dataclass
class _Frame:
    """Where a thread of execution is: its step-id prefix, its branch, its context."""

    prefix: str
    branch: str
    context: agents_mod.Context
    values: dict = field(default_factory=dict)
    span: object = None
    """The span its steps belong to (the run, a sub-workflow or a branch), for threads' parents."""


class _Execution:
    def __init__(self, engine: Engine, record: RunRecord, owner: str):
        self.engine, self.program, self.store, self.tracer = engine, engine.program, engine.store, engine.tracer
        self.limits = engine.limits
        self.run_id, self.corr, self.owner = record.run_id, record.correlation_id, owner
        self.lock = threading.RLock()
        self.journal = {s.step_id: s for s in self.store.journal(self.run_id)}
        self.replayed: set[str] = set()
        self.pending = _recorded_order(self.journal.values())
        self.unwinding = _unwinding_cause(self.journal.values())
        """The cause of the failure this run was unwinding from when it was resumed (else None)."""
        self.iterations = 0
        self.seq = max((s.seq for s in self.journal.values()), default=0)
        self.compensations: list[_Compensation] = []
        self.calls: dict[str, int] = {}
        self.repeats: dict[tuple[str, str], list[str]] = {}
        self.cancelled = threading.Event()
        self.channels: dict[str, list] = {}
        self.channel_cv = threading.Condition(self.lock)
        self.active = 1
        self.blocked: dict[str, str] = {}  # branch -> event it waits for
        self.suspended = 0  # branches that stopped to wait for an outside event
        self.event_lock = threading.Lock()
        self.handed_out: set[int] = set()  # outside events given to a receive in this execution
        self.lost = threading.Event()
        self.sent_events = self.program.sent_events(record.workflow)
        """Events this run sends itself: a receive of one waits for its send (internal)."""

    # -- journal
    def next_seq(self, bounded: bool = True) -> int:
        """The next journal position; past ``Limits.max_steps`` raises unless not ``bounded``."""
        with self.lock:
            self.seq += 1
            if bounded and self.seq > self.limits.max_steps:
                raise self.too_many_steps()
            return self.seq

    def too_many_steps(self) -> BudgetExceeded:
        return BudgetExceeded(f"the run took more than {self.limits.max_steps} steps (Limits.max_steps)")

    def recorded(self, step_id: str, frame: _Frame):
        """The journaled record of ``step_id`` if the run has been here before; checks that
        the replay follows the recorded order in its branch. A run resumed while unwinding
        stops replaying (:class:`_Unwind`) at the first step it had not completed."""
        with self.lock:
            rec = self.journal.get(step_id)
            if step_id.startswith(_COMPENSATE):
                return rec
            finished = rec is not None and rec.status != "started"
            queue = self.pending.get(_branch_of(step_id), [])
            if queue and (not finished or queue[0] != step_id):
                raise NonDeterminismError(
                    f"run {self.run_id} is not deterministic: the recorded run went to step '{queue[0]}' "
                    f"here, this replay reached step '{step_id}' (was the workflow file changed, or does a decision "
                    "depend on something outside the journal?)")
            if self.unwinding is not None and (rec is None or rec.status != "completed"):
                raise _Unwind()
            if finished:
                queue.popleft()
                self.replayed.add(step_id)
            return rec  # finished, or None, or a step that started but did not finish

    def journal_unwinding(self, cause: str) -> None:
        """Record that the run unwinds (and why) before any compensation runs, so that a
        resumed run keeps unwinding instead of replaying past the failure."""
        if _UNWIND not in self.journal:
            self.store.fail_step(self.run_id, self.owner, self.next_seq(bounded=False), _UNWIND, "unwind", cause)
        self.unwinding = cause

    def commit(self, seq: int, step_id: str, kind: str, value) -> None:
        self.store.complete_step(self.run_id, self.owner, seq, step_id, kind, state_codec.encode(value))
        self.replayed.add(step_id)

    def count_calls(self, calls: Mapping[str, int]) -> None:
        """Add a replayed step's agent calls (attempts and delegations) to the budgets."""
        with self.lock:
            for name, n in calls.items():
                self.calls[name] = self.calls.get(name, 0) + n

    # -- the interpreter
    def run_region(self, region: Region, frame: _Frame):
        for op in region.block.ops:
            if self.cancelled.is_set():
                raise _Cancelled()
            if self.lost.is_set():
                raise LeaseLost(f"run {self.run_id}: the lease was lost")
            handler = _HANDLERS.get(type(op))
            if handler is None:
                raise RunError(f"the runtime cannot execute {op.name}")
            out = handler(self, op, frame)
            if isinstance(out, _Returned):
                return out
        return None

    # -- steps
    def call_agent(self, op: apel.CallOp, frame: _Frame, step_id: str, args: list, agent_name: str, kind: str,
                   retries: int, parent_span=None):
        agent_op = self.program.agents[agent_name]
        rec = self.recorded(step_id, frame)
        named = dict(zip([n for n, _ in agent_op.params()], args))
        digest = self.input_digest(agent_op, named)
        if kind == "call":
            self.count_repeat(agent_name, digest, step_id)
        if rec is not None and rec.status == "completed":
            value, calls, recorded_input = _unwrap_calls(state_codec.decode(rec.result), agent_name, rec.attempt)
            if kind == "call" and recorded_input not in (None, digest):
                raise NonDeterminismError(
                    f"run {self.run_id} is not deterministic: step '{step_id}' called agent '{agent_name}' with "
                    f"other arguments when recorded (input digest {recorded_input[:12]}, now {digest[:12]})")
            self.count_calls(calls)  # replayed calls count against the budget as they did when they ran
            return value
        if rec is not None and rec.status == "failed":
            raise StepFailed(rec.error, retryable=False)
        seq = rec.seq if rec is not None else self.next_seq(bounded=False)
        # Attempts are journaled (begin_step) before the agent is called, so a step found
        # "started" made `before` attempts already, the last cut short (the worker crashed or
        # lost its lease during it): they count against the budgets as if they had failed.
        before = rec.attempt if rec is not None else 0
        attempt = before
        allowed = retries + 1  # attempts in all, whichever process made them
        # compensations may pass Limits.max_steps: a stopped run must still be undone
        over = rec is None and kind != "compensation" and seq > self.limits.max_steps
        error: StepFailed | None = self.too_many_steps() if over else None
        used: dict[str, int] = {}  # this step's calls per agent (retries, delegations)
        if before:
            used[agent_name] = before  # each cut-short attempt called the agent (its delegations are unknown)
            self.count_calls(used)
            after_crash = max(allowed, self.limits.crash_attempts)
            if before >= after_crash:
                error = StepFailed(
                    f"attempt budget exhausted: {before} of {after_crash} attempts made, the last cut short by a "
                    f"crash (the worker stopped during it); the step's retry allows {allowed} attempt"
                    f"{'s' if allowed != 1 else ''}, Limits.crash_attempts = {self.limits.crash_attempts} "
                    "after a crash", retryable=False)
            elif before >= allowed:
                allowed = before + 1  # one more attempt for the crash; if it fails, it is not retried
        with self.tracer.span(f"{kind} {step_id}", run_id=self.run_id, correlation_id=self.corr,
                              kind="compensation" if kind == "compensation" else "step", step_id=step_id,
                              attributes={"apel.agent": agent_name, "apel.input_hash": digest,
                                          "apel.context_version": frame.context.version},
                              parent=parent_span) as span:
            while error is None or (error.retryable and attempt < allowed):
                attempt += 1
                self.store.begin_step(self.run_id, self.owner, seq, step_id, kind, attempt)
                try:
                    if attempt > 1:
                        span.event("retry", attempt=attempt, error=str(error) if error is not None
                                   else "the previous attempt was cut short by a crash")
                    result = self.attempt(agent_op, named, step_id, attempt, frame, used)
                except StepFailed as err:
                    error = err
                    continue
                except AgentUnavailable:
                    # a deployment error, not the step's: the attempt is not counted (the run
                    # stops here and is tried again when its lease expires)
                    self.store.begin_step(self.run_id, self.owner, seq, step_id, kind, attempt - 1)
                    raise
                self.commit(seq, step_id, kind, {_CALLS: used, "value": result, _INPUT: digest})
                span.set("apel.output_hash", state_codec.digest(result))
                span.set("apel.attempts", attempt)
                return result
            message = f"step '{step_id}' failed: {error.message}"
            self.store.fail_step(self.run_id, self.owner, seq, step_id, kind, message)
            self.replayed.add(step_id)
            span.set("apel.attempts", attempt)
            span.fail(message)
        raise StepFailed(message, retryable=False)

    def input_digest(self, agent_op: apel.AgentOp, named: dict) -> str:
        """The digest of a call's agent and arguments, converted to the declared parameter
        types as the agent receives them (so ``1`` and ``1.0`` for a ``float`` are the same)."""
        typed = dict(named)
        for pname, ptype in agent_op.params():
            try:
                typed[pname] = self.program.schemas.coerce(named[pname], ptype, f"argument '{pname}'")
            except agents_mod.ContractViolation:
                break  # the call itself reports it
        else:
            named = typed
        return state_codec.digest([agent_op.sym_name.data, named])

    def count_iteration(self, loop) -> None:
        """One more loop iteration; past ``Limits.max_iterations`` the run stops (a located error)."""
        with self.lock:
            self.iterations += 1
            if self.iterations > self.limits.max_iterations:
                raise BudgetExceeded(_located(loop, f"the run made more than {self.limits.max_iterations} loop "
                                                    "iterations (Limits.max_iterations)"))

    def count_repeat(self, agent_name: str, digest: str, step_id: str) -> None:
        with self.lock:
            seen = self.repeats.setdefault((agent_name, digest), [])
            seen.append(step_id)
            if len(seen) > self.limits.max_repeats:
                raise LoopDetected(
                    f"loop detected: agent '{agent_name}' called {len(seen)} times with the same input "
                    f"(digest {digest[:12]}) in steps {' → '.join(seen)} (Limits.max_repeats = {self.limits.max_repeats})")

    def attempt(self, agent_op: apel.AgentOp, named: dict, step_id: str, attempt: int, frame: _Frame,
                used: dict[str, int]):
        """One call of an agent (and the agents it delegates to), checked against contracts;
        ``used`` counts the calls per agent."""
        chain: list[tuple[str, str]] = []
        name, args = agent_op.sym_name.data, named
        while True:
            op = self.program.agents[name]
            self.check_call(op, args, chain)
            used[name] = used.get(name, 0) + 1
            chain.append((name, self.input_digest(op, args)))
            call = agents_mod.AgentCall(self.run_id, self.corr, step_id, f"{self.run_id}/{step_id}", attempt,
                                        agents_mod.context_view(frame.context), tuple(n for n, _ in chain),
                                        frame.context.version)
            typed = {k: self.program.schemas.to_agent(args[k], t) for k, t in op.params()}
            impl = self.implementation(op)
            out = self.timed(op, lambda: agents_mod.invoke(impl, typed, call))
            if not isinstance(out, agents_mod.Delegate):
                return self.checked_result(op, out)
            allowed = [d.data for d in op.delegates.data]
            if out.to not in allowed:
                raise StepFailed(f"agent '{name}' delegated to '{out.to}', which its contract does not allow "
                                 f"(delegates: {', '.join(allowed) or 'none'})", retryable=False)
            name, args = out.to, _delegated_args(name, out, self.program.agents[out.to])

    def implementation(self, op: apel.AgentOp) -> Callable:
        """The agent's callable; :class:`AgentUnavailable` (at its declaration) if it cannot be loaded."""
        name = op.sym_name.data
        try:
            return self.program.implementation(name)
        except GeomirError as err:
            notes = checks.model_notes(err, op.model.data) if op.model is not None else []  # the .geo file's place
            raise AgentUnavailable(f"agent '{name}' cannot be loaded: {err.message} (the run is left as it is, "
                                   "to be resumed once the agent loads)", op_span(op), notes) from None

    def checked_result(self, op: apel.AgentOp, out):
        """An agent's result, coerced to its declared type and known to be storable."""
        what = f"the result of agent '{op.sym_name.data}'"
        try:
            value = self.program.schemas.coerce(out, op.result_type, what)
        except agents_mod.ContractViolation as err:
            raise StepFailed(err.message) from None
        try:
            state_codec.digest(value)
        except (state_codec.StateCodecError, ValueError) as err:
            raise StepFailed(f"{what} cannot be stored: {getattr(err, 'message', err)}") from None
        return value

    def check_call(self, op: apel.AgentOp, args: dict, chain: list[tuple[str, str]]) -> None:
        """Check a call of ``op`` with ``args`` (one per parameter, by name; converted in
        place to the declared types) against loops, depth, budget, contract and preconditions."""
        name = op.sym_name.data
        key = (name, self.input_digest(op, args))
        path = " → ".join([n for n, _ in chain] + [name])
        if key in chain:
            raise LoopDetected(f"delegation loop detected: {path} (agent '{name}' was already asked the same thing "
                               "in this chain)")
        depth = min(self.limits.max_delegation_depth, op.budget_value("depth") or self.limits.max_delegation_depth)
        if len(chain) > depth:
            raise LoopDetected(f"delegation depth {len(chain)} exceeds the budget of {depth}: {path}")
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            budget = op.budget_value("calls")
            if budget is not None and self.calls[name] > budget:
                raise BudgetExceeded(f"agent '{name}' exceeded its budget of {budget} calls in this run")
        for pname, ptype in op.params():
            try:
                args[pname] = self.program.schemas.coerce(args[pname], ptype, f"argument '{pname}' of agent '{name}'")
            except agents_mod.ContractViolation as err:
                raise StepFailed(err.message, retryable=False) from None
        requires = op.requires.block
        frame = _Frame("", "", {}, values={arg: args[pname] for arg, (pname, _) in zip(requires.args, op.params())})
        for check in requires.ops:
            if isinstance(check, apel.CheckOp):
                if not frame.values[check.cond]:
                    shown = ", ".join(f"{k} = {_short(v)}" for k, v in args.items())
                    raise StepFailed(f"precondition of agent '{name}' does not hold: {check.text.data} ({shown})",
                                     retryable=False)
            else:
                _HANDLERS[type(check)](self, check, frame)

    def timed(self, op: apel.AgentOp, fn: Callable):
        seconds = op.budget_value("seconds")
        try:
            if seconds is None:
                return fn()
            pool = cf.ThreadPoolExecutor(1)
            try:
                return pool.submit(fn).result(timeout=seconds)
            except cf.TimeoutError:
                raise StepFailed(f"agent '{op.sym_name.data}' took longer than its budget of {seconds:g} s") from None
            finally:
                pool.shutdown(wait=False)
        except (StepFailed, LeaseLost):
            raise
        except GeomirError as err:
            raise StepFailed(f"agent '{op.sym_name.data}': {err.message}") from None
        except Exception as err:  # an agent's own failure: recorded, retried, compensated
            raise StepFailed(f"agent '{op.sym_name.data}' raised {type(err).__name__}: {err}") from None

    # -- compensation
    def compensate(self) -> dict[str, str]:
        """Run the compensations of the completed calls, latest first; one that fails does
        not stop the others. The steps left undone, with why."""
        failed: dict[str, str] = {}
        for comp in sorted(self.compensations, key=lambda c: c.seq, reverse=True):
            try:
                self.compensate_one(comp)
            except StepFailed as err:
                failed[comp.step_id] = err.message
        return failed

    def compensate_one(self, comp: _Compensation) -> None:
        region = comp.call.compensation
        frame = _Frame("", "", comp.context.copy(), values={region.block.args[0]: comp.result})
        for op in region.block.ops:
            if isinstance(op, apel.CompensateOp):
                name = op.agent.root_reference.data
                args = [frame.values[a] for a in op.args]
                agent = self.program.agents[name]
                sid = f"{_COMPENSATE}{comp.step_id}"
                self.call_agent(comp.call, frame, sid, args, name, "compensation", agent.retry.data + 2)
            else:
                _HANDLERS[type(op)](self, op, frame)


def _delegated_args(name: str, out: agents_mod.Delegate, target: apel.AgentOp) -> dict:
    """The arguments of a :class:`Delegate` bound to ``target``'s parameters by name; a
    missing or unknown name fails the step (not retried)."""
    where = f"agent '{name}' delegated to '{out.to}'"
    if not isinstance(out.args, Mapping):
        raise StepFailed(f"{where} with {type(out.args).__name__} arguments; give them as a dict by parameter name",
                         retryable=False)
    params = [p for p, _ in target.params()]
    missing = [p for p in params if p not in out.args]
    unknown = [repr(k) for k in out.args if k not in params]
    if missing or unknown:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                   ([f"unknown {', '.join(unknown)}"] if unknown else [])
        raise StepFailed(f"{where} with arguments that are not its parameters ({', '.join(params) or 'none'}, by "
                         f"name): {'; '.join(problems)}", retryable=False)
    return {p: out.args[p] for p in params}


@dataclass
class _Returned:
    value: object
    op: object = None
    """The ``return`` op (its location names a result of the wrong type)."""


_CALLS = "apel.calls"
"""Key of a call step's journaled result: the step's calls per agent, next to its ``value``."""
_INPUT = "apel.input"
"""Key of a call step's journaled result: the digest of its agent and arguments (replay compares it)."""


def _unwrap_calls(recorded, agent_name: str, attempts: int) -> tuple[object, dict[str, int], str | None]:
    """A call step's ``(value, calls per agent, input digest)``; a journal written before
    calls were recorded counts its attempts against the agent called (and has no digest)."""
    if isinstance(recorded, dict) and set(recorded) - {_INPUT} == {_CALLS, "value"}:
        return recorded["value"], recorded[_CALLS], recorded.get(_INPUT)
    return recorded, {agent_name: max(attempts, 1)}, None


_COMPENSATE = "compensate:"
"""Prefix of a compensation's step id."""
_UNWIND = "unwind:run"
"""The journal row of a run that started unwinding, its error the cause (no workflow step id has this form)."""


def _recorded_order(steps) -> dict[str, collections.deque]:
    """The finished workflow steps of a journal, per branch, in the order they were reached."""
    order: dict[str, collections.deque] = {}
    for s in sorted(steps, key=lambda s: s.seq):
        if s.status != "started" and not s.step_id.startswith(_COMPENSATE) and s.step_id != _UNWIND:
            order.setdefault(_branch_of(s.step_id), collections.deque()).append(s.step_id)
    return order


def _unwinding_cause(steps) -> str | None:
    """Why the journaled run was unwinding (its unwind row, else its first failed step), or None."""
    steps = sorted(steps, key=lambda s: s.seq)
    marks = [s.error for s in steps if s.step_id == _UNWIND]
    failed = [s.error for s in steps if s.status == "failed" and not s.step_id.startswith(_COMPENSATE)]
    return (marks + failed + [None])[0]


def _branch_of(step_id: str) -> str:
    """The parallel branch a step id belongs to (its last ``name@branch/`` segment)."""
    head, sep, _ = step_id.rpartition("@")
    if not sep:
        return ""
    return head + "@" + step_id[len(head) + 1:].split("/", 1)[0]


def _plural(n: int, noun: str) -> str:
    return noun if n == 1 else f"{n} {noun}s"


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width] + "..."


# --- op handlers: one per op ------------------------------------------------------------------------


def _get(ex: _Execution, op: apel.GetOp, frame: _Frame):
    slot = op.slot.data
    if slot not in frame.context:
        raise StepFailed(f"'{slot}' is read before any step set it", retryable=False)
    frame.values[op.result] = frame.context[slot]


def _set(ex: _Execution, op: apel.SetOp, frame: _Frame):
    with ex.lock:
        frame.context.set(op.slot.data, frame.values[op.value])


def _const(ex, op: apel.ConstOp, frame):
    frame.values[op.result] = op.python_value()


def _field(ex, op: apel.FieldOp, frame):
    record = frame.values[op.record]
    name = op.field_name.data
    if not isinstance(record, Mapping) or name not in record:
        raise StepFailed(f"value has no field '{name}': {_short(record)}", retryable=False)
    frame.values[op.result] = record[name]


_BINARY = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "and": lambda a, b: bool(a) and bool(b),
    "or": lambda a, b: bool(a) or bool(b),
}


_EVALUATION_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError)
"""What Python raises for an operation a value does not support (the step fails)."""


def _binop(ex, op: apel.BinaryOp, frame):
    a, b = frame.values[op.lhs], frame.values[op.rhs]
    try:
        out = _equal(a, b, op.op.data) if op.op.data in ("==", "!=") else _BINARY[op.op.data](a, b)
    except _EVALUATION_ERRORS as err:
        raise StepFailed(f"cannot evaluate {_short(a)} {op.op.data} {_short(b)}: {err}", retryable=False) from None
    frame.values[op.result] = out


def _equal(a, b, op: str) -> bool:
    """``a == b`` (or ``!=``) as one bool."""
    same = _same(a, b)
    return same if op == "==" else not same


def _same(a, b) -> bool:
    """Whether two values are equal: arrays (manifold values) when their shapes and values
    are, records and lists when their fields and items are, at any depth."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _unop(ex, op: apel.UnaryOp, frame):
    v = frame.values[op.operand]
    try:
        frame.values[op.result] = (not v) if op.op.data == "not" else -v
    except _EVALUATION_ERRORS as err:
        raise StepFailed(f"cannot evaluate {op.op.data}{_short(v)}: {err}", retryable=False) from None


def _new(ex, op: apel.NewOp, frame):
    frame.values[op.result] = {n.data: frame.values[v] for n, v in zip(op.field_names.data, op.values)}


def _list(ex, op: apel.ListOp, frame):
    frame.values[op.result] = [frame.values[v] for v in op.items]


def _builtin(ex, op: apel.BuiltinOp, frame):
    fn = {"len": len, "abs": abs, "str": str, "int": int, "float": float}[op.callee.data]
    arg = frame.values[op.args[0]]
    try:
        frame.values[op.result] = fn(arg)
    except _EVALUATION_ERRORS as err:
        raise StepFailed(f"{op.callee.data}({_short(arg)}) failed: {err}", retryable=False) from None


def _located(op, message: str) -> str:
    """``message`` prefixed with the op's ``file:line:col``, when it has one."""
    span = op_span(op)
    return f"{span.location}: {message}" if span is not None else message


def _expression(handler: Callable) -> Callable:
    """An expression op's handler whose failures (a value the operation does not support)
    fail the step, not retried, at the op's source location."""
    def evaluate(ex, op, frame):
        try:
            return handler(ex, op, frame)
        except StepFailed as err:
            raise StepFailed(_located(op, err.message), retryable=False) from None
        except _EVALUATION_ERRORS as err:
            raise StepFailed(_located(op, f"cannot evaluate {op.name}: {type(err).__name__}: {err}"),
                             retryable=False) from None
    return evaluate


def _call(ex: _Execution, op: apel.CallOp, frame: _Frame):
    step_id = frame.prefix + op.step.data
    name = op.agent.root_reference.data
    agent = ex.program.agents[name]
    args = [frame.values[a] for a in op.args]
    retries = op.retry.data if op.retry is not None else agent.retry.data
    result = ex.call_agent(op, frame, step_id, args, name, "call", retries)
    frame.values[op.result] = result
    if op.compensation.blocks:
        with ex.lock:
            rec = ex.journal.get(step_id)
            seq = rec.finished if rec is not None and rec.finished is not None else time.time()
            ex.compensations.append(_Compensation(seq, step_id, op, result, frame.context.copy()))


def _run(ex: _Execution, op: apel.RunOp, frame: _Frame):
    target = ex.program.workflows[op.workflow.root_reference.data]
    context = frame.context.copy()  # the caller's context flows in; the sub-workflow's writes stay inside
    for (name, t), value in zip(target.params(), [frame.values[a] for a in op.args]):
        context.set(name, value)
    sub = _Frame(frame.prefix + op.step.data + "/", frame.branch, context)
    with ex.tracer.span(f"subworkflow {target.sym_name.data}", run_id=ex.run_id, correlation_id=ex.corr,
                        kind="subworkflow", step_id=frame.prefix + op.step.data, parent=frame.span) as span:
        sub.span = span
        out = ex.run_region(target.body, sub)
    name = target.sym_name.data
    if out is None:
        raise StepFailed(_located(op, f"workflow '{name}' ended without 'return'"), retryable=False)
    try:
        frame.values[op.result] = ex.program.schemas.coerce(out.value, target.result_type,
                                                            f"the result of workflow '{name}'")
    except agents_mod.ContractViolation as err:
        raise StepFailed(_located(out.op or op, err.message), retryable=False) from None


def _send(ex: _Execution, op: apel.SendOp, frame: _Frame):
    step_id = frame.prefix + op.step.data
    value = frame.values[op.value] if op.value is not None else None
    rec = ex.recorded(step_id, frame)
    if rec is None or rec.status != "completed":
        seq = rec.seq if rec is not None else ex.next_seq()
        with ex.tracer.span(f"send {op.event.data}", run_id=ex.run_id, correlation_id=ex.corr, kind="event",
                            step_id=step_id):
            ex.store.begin_step(ex.run_id, ex.owner, seq, step_id, "send")
            ex.commit(seq, step_id, "send", value)
    with ex.channel_cv:
        ex.channels.setdefault(op.event.data, []).append(value)
        ex.channel_cv.notify_all()


def _receive(ex: _Execution, op: apel.ReceiveOp, frame: _Frame):
    step_id = frame.prefix + op.step.data
    event = op.event.data
    rec = ex.recorded(step_id, frame)
    internal = event in ex.sent_events
    if rec is not None and rec.status == "completed":
        if internal:  # consume what the replayed send put in the channel
            if _wait_internal(ex, event, frame.branch, ex.limits.internal_wait_s) is _SUSPENDED:
                raise _Suspend([], None)
            frame.values[op.result] = state_codec.decode(rec.result)
        else:
            frame.values[op.result] = state_codec.decode(rec.result)["value"]
        return
    if rec is not None and rec.status == "failed":
        raise StepFailed(rec.error, retryable=False)
    seq = rec.seq if rec is not None else ex.next_seq()
    if rec is None:
        ex.store.begin_step(ex.run_id, ex.owner, seq, step_id, "event")
        started = time.time()
    else:
        started = rec.started
    timeout = op.timeout.value.data if op.timeout is not None else None
    with ex.tracer.span(f"receive {event}", run_id=ex.run_id, correlation_id=ex.corr, kind="event",
                        step_id=step_id) as span:
        value = _receive_value(ex, op, step_id, seq, started, timeout, span)
        if value is _SUSPENDED:
            span.event("suspended", event=event)
    if value is _SUSPENDED:  # an internal receive waits for a branch that waits outside: no timer of its own
        external = not internal
        raise _Suspend([event] if external else [], started + timeout if external and timeout is not None else None)
    frame.values[op.result] = value


_SUSPENDED = object()


def _receive_value(ex: _Execution, op: apel.ReceiveOp, step_id: str, seq: int, started: float, timeout, span):
    """The event's value, committed to the journal; ``_SUSPENDED`` when it has not come yet."""
    event = op.event.data
    internal = event in ex.sent_events
    event_id = None
    if internal:
        try:
            value = _wait_internal(ex, event, _branch_of(step_id),
                                   timeout if timeout is not None else ex.limits.internal_wait_s)
        except StepFailed as err:  # a timeout or a deadlock: journaled like any failed step
            message = f"step '{step_id}' failed: {err.message}"
            ex.store.fail_step(ex.run_id, ex.owner, seq, step_id, "event", message)
            span.fail(message)
            raise StepFailed(message, retryable=False) from None
        if value is _SUSPENDED:
            return _SUSPENDED
    else:
        taken = _take_event(ex, event)
        if taken is None:
            if timeout is not None and time.time() - started >= timeout:
                message = f"step '{step_id}' failed: no event '{event}' for correlation id {ex.corr} within {timeout:g} s"
                ex.store.fail_step(ex.run_id, ex.owner, seq, step_id, "event", message)
                span.fail(message)
                raise StepFailed(message, retryable=False)
            return _SUSPENDED
        value, event_id = state_codec.decode(taken.payload), taken.event_id
    try:
        value = ex.program.schemas.coerce(value, op.result.type, f"event '{event}'")
    except agents_mod.ContractViolation as err:
        message = f"step '{step_id}' failed: {err.message}"
        ex.store.fail_step(ex.run_id, ex.owner, seq, step_id, "event", message)
        raise StepFailed(message, retryable=False) from None
    ex.commit(seq, step_id, "event", value if internal else {"event_id": event_id, "value": value})
    return value


def _take_event(ex: _Execution, event: str):
    """The outside event for a receive: an orphan of this run, else the oldest untaken one;
    each goes to one receive of this execution (None: none has come)."""
    with ex.event_lock:
        taken = _orphan_event(ex, event) or ex.store.take_event(ex.corr, event, ex.run_id)
        if taken is not None:
            ex.handed_out.add(taken.event_id)
        return taken


def _orphan_event(ex: _Execution, event: str):
    """An event this run took but did not journal (the worker died in between): it is this
    receive's, so it is not lost. Events already given to a receive of this execution are not orphans."""
    mine = [e for e in ex.store.events(ex.corr) if e.consumed_by == ex.run_id and e.name == event
            and e.event_id not in ex.handed_out]
    if not mine:
        return None
    used = {state_codec.decode(s.result).get("event_id") for s in ex.store.journal(ex.run_id)
            if s.kind == "event" and s.status == "completed" and s.result is not None
            and isinstance(state_codec.decode(s.result), dict) and "event_id" in state_codec.decode(s.result)}
    return next((e for e in mine if e.event_id not in used), None)


def _wait_internal(ex: _Execution, event: str, branch: str, timeout: float):
    """The next value another branch sent as ``event``; ``_SUSPENDED`` when every running
    branch waits but some branch stopped to wait for an outside event (it may send later)."""
    deadline = time.monotonic() + timeout
    with ex.channel_cv:
        while not ex.channels.get(event):
            ex.blocked[branch] = event
            try:
                if len(ex.blocked) >= ex.active and ex.suspended:
                    return _SUSPENDED
                if len(ex.blocked) >= ex.active:
                    waits = "; ".join(f"branch '{b.rpartition('@')[2] or 'main'}' waits for '{e}'"
                                      for b, e in sorted(ex.blocked.items()))
                    raise DeadlockError(f"deadlock: every running branch is waiting ({waits}) and none can send")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StepFailed(f"no '{event}' from another branch within {timeout:g} s", retryable=False)
                ex.channel_cv.wait(min(left, 0.05))
                if ex.cancelled.is_set():
                    raise _Cancelled()
            finally:
                ex.blocked.pop(branch, None)
        return ex.channels[event].pop(0)


def _parallel(ex: _Execution, op: apel.ParallelOp, frame: _Frame):
    names = [n.data for n in op.branch_names.data]
    base = frame.prefix + op.step.data
    frames = [_Frame(f"{base}@{n}/", f"{base}@{n}", frame.context) for n in names]
    parent = frame.span or ex.run_span
    errors: list[BaseException] = []

    def branch(region: Region, sub: _Frame):
        try:
            with ex.tracer.span(f"branch {sub.branch}", run_id=ex.run_id, correlation_id=ex.corr, kind="branch",
                                parent=parent) as span:
                sub.span = span
                out = ex.run_region(region, sub)
            if isinstance(out, _Returned):
                raise StepFailed("'return' inside a parallel branch", retryable=False)
        except BaseException as err:  # noqa: BLE001 - collected and re-raised below
            with ex.channel_cv:
                errors.append(err)
                ex.suspended += isinstance(err, _Suspend)
                if not _lets_others_go_on(ex, err):
                    ex.cancelled.set()
                ex.channel_cv.notify_all()
        finally:
            with ex.channel_cv:
                ex.active -= 1
                ex.channel_cv.notify_all()

    with ex.channel_cv:
        ex.active += len(names) - 1  # this thread waits; its branches run
    threads = [threading.Thread(target=branch, args=(r, f), name=f.branch, daemon=True)
               for r, f in zip(op.branches, frames)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with ex.channel_cv:
        ex.active += 1
    real = [e for e in errors if not isinstance(e, (_Suspend, _Cancelled, _Unwind))]
    if real:
        raise real[0]
    if any(isinstance(e, _Unwind) for e in errors):
        raise _Unwind()
    suspended = [e for e in errors if isinstance(e, _Suspend)]
    if suspended:
        raise _Suspend.merge(suspended)


def _lets_others_go_on(ex: _Execution, err: BaseException) -> bool:
    """Whether a branch that stopped with ``err`` leaves the other branches running: it
    waits outside, was cancelled, or the run replays its way back to a failure (then every
    branch must replay its completed steps, so that all of them are compensated)."""
    if isinstance(err, (_Suspend, _Cancelled, _Unwind)):
        return True
    return ex.unwinding is not None and isinstance(err, StepFailed)


def _while(ex: _Execution, op: apel.WhileOp, frame: _Frame):
    bound = op.max.data if op.max is not None else None
    i = 0
    while True:
        cond_frame = frame
        for inner in op.cond.block.ops:
            if isinstance(inner, apel.YieldOp):
                going = bool(frame.values[inner.value])
                break
            _HANDLERS[type(inner)](ex, inner, cond_frame)
        if not going:
            return None
        i += 1
        if bound is not None and i > bound:
            raise LoopDetected(f"loop '{op.loop.data}' is still running after its bound of {bound} iterations")
        ex.count_iteration(op)
        sub = _Frame(f"{frame.prefix}{op.loop.data}[{i}]/", frame.branch, frame.context, frame.values, frame.span)
        out = ex.run_region(op.body, sub)
        if out is not None:
            return out


def _repeat(ex: _Execution, op: apel.RepeatOp, frame: _Frame):
    for i in range(1, op.count.data + 1):
        ex.count_iteration(op)
        sub = _Frame(f"{frame.prefix}{op.loop.data}[{i}]/", frame.branch, frame.context, frame.values, frame.span)
        out = ex.run_region(op.body, sub)
        if out is not None:
            return out
    return None


def _if(ex: _Execution, op: apel.IfOp, frame: _Frame):
    step_id = frame.prefix + op.step.data
    taken = bool(frame.values[op.cond])
    rec = ex.recorded(step_id, frame)
    if rec is not None and rec.status == "completed":
        recorded = state_codec.decode(rec.result)
        if recorded != taken:
            raise NonDeterminismError(f"run {ex.run_id} is not deterministic: decision '{step_id}' was {recorded} "
                                      f"when recorded and is {taken} on replay")
    else:
        seq = ex.next_seq()
        with ex.tracer.span(f"decision {step_id}", run_id=ex.run_id, correlation_id=ex.corr, kind="decision",
                            step_id=step_id, attributes={"apel.taken": "then" if taken else "else"}):
            ex.store.begin_step(ex.run_id, ex.owner, seq, step_id, "decision")
            ex.commit(seq, step_id, "decision", taken)
    return ex.run_region(op.then_region if taken else op.else_region, frame)


def _return(ex, op: apel.ReturnOp, frame):
    return _Returned(frame.values[op.value], op)


def _fail(ex, op: apel.FailOp, frame):
    span = op_span(op)
    where = f" ({span.location})" if span else ""
    raise WorkflowFailed(f"the workflow failed: {op.message.data}{where}")


_HANDLERS: dict[type, Callable] = {
    apel.GetOp: _expression(_get), apel.SetOp: _set, apel.ConstOp: _const, apel.FieldOp: _expression(_field),
    apel.BinaryOp: _expression(_binop), apel.UnaryOp: _expression(_unop), apel.NewOp: _new, apel.ListOp: _list,
    apel.BuiltinOp: _expression(_builtin), apel.CallOp: _call,
    apel.RunOp: _run, apel.SendOp: _send, apel.ReceiveOp: _receive, apel.ParallelOp: _parallel,
    apel.WhileOp: _while, apel.RepeatOp: _repeat, apel.IfOp: _if, apel.ReturnOp: _return, apel.FailOp: _fail,
}
"""How the runtime executes each op (one rule per op)."""


# --- the engine ----------------------------------------------------------------------------------


class Engine:
    """Runs workflows of one program against one store; one worker identity. It may be
    shared between threads: it executes each run in one thread at a time."""

    def __init__(self, program: Program, store: Store, *, tracer: Tracer | None = None, limits: Limits | None = None,
                 worker: str | None = None):
        self.program, self.store = program, store
        self.tracer = tracer or Tracer(None)
        self.limits = limits or Limits()
        self.worker = worker or worker_name()
        self._executing: set[str] = set()
        """Runs this engine executes now: the store's lease is per worker, and this engine's
        threads share its worker id, so it keeps them from executing one run twice at once."""
        self._guard = threading.Lock()

    def start(self, inputs: Mapping, workflow: str | None = None, run_id: str | None = None,
              correlation_id: str | None = None, file: str | None = None) -> RunResult:
        """Start a run (validating ``inputs`` against the workflow's parameters) and run it.
        ``file``: the workflow file, recorded so that ``apel resume`` finds it."""
        with self._guard:  # created leased to this worker: claimed before another thread can claim it
            record = self._create(inputs, workflow, run_id, correlation_id, file, owner=self.worker)
            self._executing.add(record.run_id)
        return self._execute(record.run_id, record)

    def _create(self, inputs, workflow, run_id, correlation_id, file, owner) -> RunRecord:
        wf = self.program.workflow(workflow)
        params = wf.params()
        missing = [n for n, _ in params if n not in inputs]
        extra = [k for k in inputs if k not in dict(params)]
        if missing or extra:
            raise UsageError(f"workflow '{wf.sym_name.data}' takes {', '.join(n for n, _ in params) or 'no inputs'}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(extra)}" if extra else ""))
        checked = {}
        for name, t in params:
            try:
                checked[name] = self.program.schemas.coerce(inputs[name], t, f"input '{name}'")
            except agents_mod.ContractViolation as err:
                raise UsageError(err.message) from None
        run_id = uuid.uuid4().hex[:12] if run_id is None else _checked_id("run id", run_id)
        corr = run_id if correlation_id is None else _checked_id("correlation id", correlation_id)
        payload = state_codec.encode({"workflow": wf.sym_name.data, "inputs": checked,
                                      "file": _absolute(file or self.program.filename)})
        try:
            return self.store.create_run(run_id, wf.sym_name.data, self.program.source_hash, payload, corr,
                                         owner, self.limits.lease_s)
        except RunExists:
            raise UsageError(f"run '{run_id}' already exists in the store; give the new run another id") from None

    def resume(self, run_id: str) -> RunResult:
        """Continue a run from its last committed step (after a crash, or when its event came)."""
        record = self.store.get_run(run_id)
        if record is None:
            raise UsageError(f"no run '{run_id}' in the store")
        if record.status in ("completed", "compensated", "failed"):
            return self._result(record)
        if not self.owns(record):
            raise UsageError(f"run {run_id} is a run of {_file(record)}, not of this program ({self.program.filename}); "
                             "resume it with its own program ('apel resume' finds it)")
        if not self._claim(run_id):
            if self._busy(run_id):
                raise RunError(f"run {run_id} is being executed by this engine (in another thread); it goes on "
                               "there, with any event that came meanwhile")
            owner, until = self.store.holder(run_id) or ("?", 0.0)
            raise RunError(f"run {run_id} is owned by worker {owner} for {max(0.0, until - time.time()):.1f} s more "
                           "(its lease); it is resumed when the lease expires")
        return self._execute(run_id)

    def deliver(self, correlation_id: str, event: str, payload) -> list[RunResult]:
        """Post an event for a correlation id and resume this program's runs waiting for it."""
        self.store.post_event(correlation_id, event, state_codec.encode(payload))
        return self.wake(correlation_id, event)

    def wake(self, correlation_id: str, event: str) -> list[RunResult]:
        """Resume this program's runs of a correlation id that wait for ``event`` (already
        posted); runs of other programs are left to theirs."""
        results = []
        for record in self.store.list_runs(status="waiting", correlation_id=correlation_id):
            waits = (record.waiting_for or "").split(",")
            if event in waits and self.owns(record) and self._claim(record.run_id):
                results.append(self._execute(record.run_id))
        return results

    def owns(self, record: RunRecord) -> bool:
        """Whether a run is of this engine's program: the same source, or started from its file
        (an edited file still owns its runs; replay then reports any difference)."""
        if record.source_hash == self.program.source_hash:
            return True
        return self.program.filename != "<string>" and _file(record) == _absolute(self.program.filename)

    def submit(self, inputs: Mapping, workflow: str | None = None, run_id: str | None = None,
               correlation_id: str | None = None, file: str | None = None) -> str:
        """Queue a run (inputs checked now) for whichever worker claims it first; its id."""
        return self._create(inputs, workflow, run_id, correlation_id, file, owner=None).run_id

    def recover(self, limit: int = 100) -> list[RunResult]:
        """Take over this program's runs nobody owns (queued, or their worker died: lease
        expired) and its waiting runs whose receive timed out, and finish them (or leave
        them waiting). Runs of other programs are not touched."""
        results: list[RunResult] = []
        for record in self._claimable():
            if len(results) >= limit:
                break
            if not self.owns(record) or not self._claim(record.run_id):
                continue
            current = self.store.get_run(record.run_id)
            if current.status == "waiting" and not _due(current, time.time()):  # resumed by its event meanwhile
                self.store.release(record.run_id, self.worker)
                self._unclaim(record.run_id)
                continue
            results.append(self._execute(current.run_id, current))
        return results

    def _claimable(self) -> list[RunRecord]:
        """Unowned or expired running runs, oldest first, then due waiting runs, earliest first."""
        now = time.time()
        free = [r for r in self.store.list_runs(status="running") if _unowned(r, now)]
        due = [r for r in self.store.list_runs(status="waiting") if _due(r, now) and _unowned(r, now)]
        return free + sorted(due, key=lambda r: r.wake_at)

    # -- internals
    def _result(self, record: RunRecord) -> RunResult:
        output = state_codec.decode(record.output) if record.output is not None else None
        return RunResult(record.run_id, record.status, output, record.error, record.correlation_id, record.waiting_for)

    def _claim(self, run_id: str) -> bool:
        """Lease ``run_id`` to this worker, unless this engine executes it now (in another thread)."""
        with self._guard:
            if run_id in self._executing or not self.store.acquire(run_id, self.worker, self.limits.lease_s):
                return False
            self._executing.add(run_id)
            return True

    def _unclaim(self, run_id: str) -> None:
        with self._guard:
            self._executing.discard(run_id)

    def _busy(self, run_id: str) -> bool:
        with self._guard:
            return run_id in self._executing

    def _execute(self, run_id: str, record: RunRecord | None = None) -> RunResult:
        """Run ``run_id`` (leased to this worker and claimed by :meth:`_claim`; ``record``: its
        row, if just read). A run that goes to wait while an event it waits for is already
        stored (it came while the run was busy) goes on at once: the check follows the
        unclaim, so an event whose delivery found the run busy is seen here."""
        while True:
            try:
                record = record or self.store.get_run(run_id)
                result = self._execute_once(record)
            finally:
                self._unclaim(run_id)
            if not (result.status == "waiting" and self._has_event(record.correlation_id, result.waiting_for)
                    and self._claim(run_id)):
                return result
            record = None

    def _has_event(self, correlation_id: str, waiting_for: str | None) -> bool:
        names = set((waiting_for or "").split(","))
        return any(e.consumed_by is None and e.name in names for e in self.store.events(correlation_id))

    def _execute_once(self, record: RunRecord) -> RunResult:
        spec = state_codec.decode(record.input)
        wf = self.program.workflow(spec["workflow"])
        if record.status == "waiting":  # resumed by its event: running again, so a crash now is recovered
            self.store.set_status(record.run_id, self.worker, "running")
        ex = _Execution(self, record, self.worker)
        ex.run_span = None
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ex, stop), daemon=True)
        beat.start()
        try:
            with self.tracer.span(f"run {wf.sym_name.data}", run_id=record.run_id, correlation_id=record.correlation_id,
                                  kind="run", attributes={"apel.workflow": wf.sym_name.data,
                                                          "apel.worker": self.worker}) as span:
                ex.run_span = span
                try:
                    return self._drive(ex, wf, spec["inputs"], span)
                except LeaseLost:
                    span.set("apel.status", "lost")
                    span.fail("another worker took over this run")
                    return RunResult(record.run_id, "lost", None, "another worker took over this run",
                                     record.correlation_id)
        finally:
            stop.set()
            beat.join()

    def _drive(self, ex: _Execution, wf: apel.WorkflowOp, inputs: dict, span) -> RunResult:
        frame = _Frame("", "", agents_mod.Context(inputs), span=span)
        try:
            out = ex.run_region(wf.body, frame)
            if ex.unwinding is not None:  # replayed to where it failed: the run still unwinds
                raise _Unwind()
            if out is None:
                raise WorkflowFailed(f"workflow '{wf.sym_name.data}' ended without 'return'")
            try:
                value = self.program.schemas.coerce(out.value, wf.result_type, f"the result of workflow '{wf.sym_name.data}'")
            except agents_mod.ContractViolation as err:
                raise WorkflowFailed(_located(out.op, err.message)) from None
            unreplayed = [s for s in ex.journal.values() if s.step_id not in ex.replayed and s.status != "started"]
            if unreplayed:
                raise NonDeterminismError(f"run {ex.run_id} is not deterministic: recorded step "
                                          f"'{unreplayed[0].step_id}' was not reached on replay")
            self.store.set_status(ex.run_id, ex.owner, "completed", output=state_codec.encode(value))
            span.set("apel.status", "completed")
            return RunResult(ex.run_id, "completed", value, None, ex.corr)
        except _Suspend as s:
            if ex.unwinding is not None:
                return self._unwind(ex, ex.unwinding, span)
            waiting_for = ",".join(s.events)
            self.store.set_status(ex.run_id, ex.owner, "waiting", waiting_for=waiting_for, wake_at=s.wake_at)
            span.set("apel.status", "waiting")
            return RunResult(ex.run_id, "waiting", None, None, ex.corr, waiting_for)
        except _Unwind:
            return self._unwind(ex, ex.unwinding, span)
        except NonDeterminismError as err:
            return self._failed(ex, err.message, span)
        except StepFailed as err:
            return self._unwind(ex, ex.unwinding or err.message, span)

    def _unwind(self, ex: _Execution, cause: str, span) -> RunResult:
        """Journal the failure, then compensate the completed steps; the run ends
        ``compensated``, or ``failed`` if a compensation fails (the others still run), its
        error naming the steps left undone."""
        ex.cancelled.clear()
        ex.journal_unwinding(cause)
        span.event("compensating", cause=cause)
        failed = ex.compensate()
        if failed:
            return self._failed(ex, f"{cause}; {_plural(len(failed), 'compensation')} failed, left undone: "
                                    f"{', '.join(failed)} ({'; '.join(failed.values())})", span)
        self.store.set_status(ex.run_id, ex.owner, "compensated", error=cause)
        span.set("apel.status", "compensated")
        span.set("apel.cause", cause)
        return RunResult(ex.run_id, "compensated", None, cause, ex.corr)

    def _failed(self, ex: _Execution, message: str, span) -> RunResult:
        self.store.set_status(ex.run_id, ex.owner, "failed", error=message)
        span.set("apel.status", "failed")
        span.set("apel.cause", message)
        span.fail(message)
        return RunResult(ex.run_id, "failed", None, message, ex.corr)

    def _heartbeat(self, ex: _Execution, stop: threading.Event) -> None:
        period = self.limits.lease_s / 3
        while not stop.wait(period):
            try:
                if not self.store.renew(ex.run_id, ex.owner, self.limits.lease_s):
                    ex.lost.set()
                    return
            except GeomirError:
                ex.lost.set()
                return


def _checked_id(what: str, value: str) -> str:
    """A run or correlation id given by the user: not empty; a run id without '/', which
    separates the parts of idempotency keys (``run/step``) and so must not occur in one."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"the {what} must be a non-empty string, found {value!r}")
    if what == "run id" and "/" in value:
        raise UsageError(f"the run id {value!r} contains '/', which separates the run id from the step id in "
                         "idempotency keys; use another character")
    return value


def _absolute(file: str) -> str:
    """A workflow file's absolute path (``<string>`` for a program not read from a file)."""
    return file if file == "<string>" else str(Path(file).resolve())


def _file(record: RunRecord) -> str:
    """The workflow file a run was started from."""
    return _absolute(state_codec.decode(record.input).get("file") or "<string>")


def _unowned(record: RunRecord, now: float) -> bool:
    return record.owner is None or record.lease_until is None or record.lease_until <= now


def _due(record: RunRecord, now: float) -> bool:
    return record.wake_at is not None and record.wake_at <= now
