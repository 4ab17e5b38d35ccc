"""A step's attempt budget holds across crashes: every attempt is journaled before its agent
runs, so attempts that a crash cut short count when the run is resumed, and a step that
kills its worker on every attempt fails (its run is compensated) instead of being retried
forever. A crash is simulated by an agent that raises a BaseException the engine does not
catch (as SystemExit or KeyboardInterrupt would), leaving the step "started" in the store;
one test kills a real worker process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geomir.apel import compile_file
from geomir.apel.engine import AgentUnavailable, Engine, Limits, Program
from geomir.apel.store import open_store

WORKFLOW = """
type Order = {{ id: int }}
agent reserve(o: Order) -> str
idempotent agent release(r: str) -> bool
agent boom(o: Order) -> str {{ {clauses} }}
workflow W(o: Order) -> str {{
  let r = call reserve(o) compensate release(r)
  let x = call boom(o) compensate release(x)
  return x
}}
"""


class Crash(BaseException):
    """The worker process dies: nothing after the agent's call runs, nothing is journaled."""


class Agents:
    """reserve/release, and boom: crashes its first ``crashes`` attempts, then raises
    ``then`` (an exception) or returns."""

    def __init__(self, crashes: int, then: Exception | None = None):
        self.crashes, self.then = crashes, then
        self.attempts: list[int] = []  # boom's apel.attempt, call by call
        self.released: list[str] = []

    def mapping(self) -> dict:
        def reserve(o, apel):
            return f"reserved {o.id}"

        def release(r, apel):
            self.released.append(r)
            return True

        def boom(o, apel):
            self.attempts.append(apel.attempt)
            if len(self.attempts) <= self.crashes:
                raise Crash(f"worker killed during attempt {apel.attempt}")
            if self.then is not None:
                raise self.then
            return "done"

        return {"reserve": reserve, "release": release, "boom": boom}


def make_program(tmp_path: Path, agents: Agents, clauses: str = "") -> Program:
    path = tmp_path / "w.apel"
    path.write_text(WORKFLOW.format(clauses=clauses))
    module, source = compile_file(path)
    return Program(module, source, str(path), agents.mapping())


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "runs.sqlite") as s:
        yield s


def crash_and_resume(program: Program, store, limits: Limits | None = None, most: int = 15):
    """Start run r1 and resume it after each crash, as a restarted worker would (each time a
    new engine with the same worker name, so no lease has to expire); at most ``most`` runs
    of the worker. The final result and how many times the worker crashed."""
    crashes = 0
    for i in range(most):
        engine = Engine(program, store, limits=limits, worker="worker-1")
        try:
            return (engine.start({"o": {"id": 1}}, run_id="r1") if i == 0 else engine.resume("r1")), crashes
        except Crash:
            crashes += 1
    raise AssertionError(f"the run was still going after {most} crashes of its worker: the budget was not honoured")


def step(store, step_id: str):
    return next(s for s in store.journal("r1") if s.step_id == step_id)


def test_a_step_that_crashes_every_attempt_fails_at_its_budget_and_is_compensated(tmp_path, store):
    agents = Agents(crashes=1000)
    result, crashes = crash_and_resume(make_program(tmp_path, agents), store)
    # retry 0 allows 1 attempt; a crash allows up to Limits.crash_attempts = 10 in all
    assert agents.attempts == list(range(1, 11)) and crashes == 10
    assert result.status == "compensated"
    assert result.error == (
        "step 'x' failed: attempt budget exhausted: 10 of 10 attempts made, the last cut short by a crash (the worker "
        "stopped during it); the step's retry allows 1 attempt, Limits.crash_attempts = 10 after a crash")
    assert agents.released == ["reserved 1"]  # the completed step before it is undone, once
    x = step(store, "x")
    assert (x.status, x.attempt, x.error) == ("failed", 10, result.error)
    # resuming the finished run again changes nothing
    assert Engine(make_program(tmp_path, agents), store, worker="w2").resume("r1").status == "compensated"
    assert agents.attempts == list(range(1, 11))


@pytest.mark.parametrize("retry, crash_attempts, made", [(0, 1, 1), (1, 1, 2), (4, 3, 5), (1, 4, 4)])
def test_the_budget_counts_crashed_attempts(tmp_path, store, retry, crash_attempts, made):
    """retry N: N + 1 attempts in all, cut-short ones included; Limits.crash_attempts only
    raises that for a step whose attempts crash (1: no allowance at all)."""
    agents = Agents(crashes=1000)
    result, crashes = crash_and_resume(make_program(tmp_path, agents, f"retry {retry}"), store,
                                       Limits(crash_attempts=crash_attempts))
    assert agents.attempts == list(range(1, made + 1)) and crashes == made
    assert result.status == "compensated"
    allowed = retry + 1
    assert (f"attempt budget exhausted: {made} of {made} attempts made, the last cut short by a crash"
            in result.error)
    assert (f"the step's retry allows {allowed} attempt{'s' if allowed > 1 else ''}, "
            f"Limits.crash_attempts = {crash_attempts} after a crash") in result.error


def test_a_step_that_crashes_a_few_times_then_succeeds_completes(tmp_path, store):
    agents = Agents(crashes=2)
    result, crashes = crash_and_resume(make_program(tmp_path, agents), store)
    assert (result.status, result.output, crashes) == ("completed", "done", 2)
    assert agents.attempts == [1, 2, 3]  # apel.attempt counts on across the crashes
    assert step(store, "x").attempt == 3 and agents.released == []


def test_failures_after_a_crash_are_retried_only_within_the_budget(tmp_path, store):
    """retry 2: three attempts. The first crashes; on resume two more fail with an error the
    engine retries, and then the step fails (before the fix it got three more)."""
    agents = Agents(crashes=1, then=RuntimeError("still down"))
    result, crashes = crash_and_resume(make_program(tmp_path, agents, "retry 2"), store)
    assert agents.attempts == [1, 2, 3] and crashes == 1
    assert result.status == "compensated"
    assert result.error == "step 'x' failed: agent 'boom' raised RuntimeError: still down"


def test_a_crash_allowance_attempt_that_fails_is_not_retried(tmp_path, store):
    """retry 0 and a crash: the crash allowance gives one attempt more, but an ordinary failure of
    it is final, as it would be without the crash."""
    agents = Agents(crashes=1, then=RuntimeError("down"))
    result, _ = crash_and_resume(make_program(tmp_path, agents), store)
    assert agents.attempts == [1, 2] and result.status == "compensated"
    assert result.error == "step 'x' failed: agent 'boom' raised RuntimeError: down"


def test_crashed_attempts_count_against_the_agents_calls_budget(tmp_path, store):
    """budget calls = 2: a third call of the agent in the run is refused, even when the first
    two were cut short by crashes (they are in the journal, not in a completed step's record)."""
    agents = Agents(crashes=1000)
    result, crashes = crash_and_resume(make_program(tmp_path, agents, "retry 5  budget calls = 2"), store,
                                       Limits(crash_attempts=10))
    assert agents.attempts == [1, 2] and crashes == 2
    assert result.status == "compensated"
    assert result.error == "step 'x' failed: agent 'boom' exceeded its budget of 2 calls in this run"


def test_a_completed_step_journals_its_crashed_calls_for_the_budget_on_replay(tmp_path, store):
    """A step that crashed once and then completed journals both calls, so a later resume that
    replays it counts both against ``budget calls``."""
    agents = Agents(crashes=1)
    program = make_program(tmp_path, agents, "budget calls = 2")
    result, _ = crash_and_resume(program, store)
    assert result.status == "completed"
    from geomir.apel import state_codec

    assert state_codec.decode(step(store, "x").result)["apel.calls"] == {"boom": 2}


def test_an_unloadable_agent_does_not_use_up_the_budget(tmp_path, store):
    """An agent that cannot be loaded is a deployment error: the run stays where it is, however
    often a worker tries it, until the agent loads (its attempts are not counted)."""
    agents = Agents(crashes=0)
    path = tmp_path / "w.apel"
    path.write_text(WORKFLOW.format(clauses='impl "nosuchmodule:boom"'))
    module, source = compile_file(path)
    mapping = agents.mapping()
    del mapping["boom"]
    broken = Program(module, source, str(path), mapping)
    for i in range(5):
        engine = Engine(broken, store, worker="worker-1")
        with pytest.raises(AgentUnavailable, match="agent 'boom' cannot be loaded"):
            engine.start({"o": {"id": 1}}, run_id="r1") if i == 0 else engine.resume("r1")
    assert store.get_run("r1").status == "running" and step(store, "x").attempt == 0
    fixed = Program(module, source, str(path), agents.mapping())  # the deployment is fixed
    result = Engine(fixed, store, worker="worker-1").resume("r1")
    assert result.status == "completed" and agents.attempts == [1]


DRIVER = """
import os, sys
from geomir.apel import load
from geomir.apel.engine import Engine, Limits
from geomir.apel.store import open_store

def boom(o, apel):
    with open(os.environ["ATTEMPTS"], "a") as f:
        f.write(f"{apel.attempt}\\n")
    os._exit(137)  # the process dies in the middle of the attempt

program = load(sys.argv[1], agents={"boom": boom, "reserve": lambda o: "r", "release": lambda r: True})
with open_store(sys.argv[2]) as store:
    engine = Engine(program, store, worker="worker-1", limits=Limits(crash_attempts=2))
    r = engine.start({"o": {"id": 1}}, run_id="r1") if store.get_run("r1") is None else engine.resume("r1")
    print(r.status, r.error)
"""


def test_a_worker_process_killed_by_its_step_stops_retrying_it(tmp_path):
    """The same with a real process exit (os._exit in the agent): two runs of the worker die,
    the third fails the step (retry 0, Limits.crash_attempts = 2) and compensates the run."""
    (tmp_path / "w.apel").write_text(WORKFLOW.format(clauses=""))
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    env = dict(os.environ, ATTEMPTS=str(tmp_path / "attempts"))
    outs = []
    for _ in range(4):
        proc = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "w.apel"),
                               str(tmp_path / "runs.sqlite")], env=env, capture_output=True, text=True, timeout=120)
        outs.append((proc.returncode, proc.stdout.strip()))
        if proc.returncode == 0:
            break
    assert [code for code, _ in outs] == [137, 137, 0], outs
    assert outs[-1][1].startswith("compensated step 'x' failed: attempt budget exhausted: 2 of 2 attempts made")
    assert (tmp_path / "attempts").read_text().split() == ["1", "2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"crash_attempts": 0}, "crash_attempts must be an integer >= 1, found 0"),
    ({"max_steps": 2.5}, "max_steps must be an integer >= 1, found 2.5"),
    ({"max_repeats": True}, "max_repeats must be an integer >= 1, found True"),
    ({"lease_s": 0}, "lease_s must be a number of seconds > 0, found 0"),
    ({"internal_wait_s": "5"}, "internal_wait_s must be a number of seconds > 0, found '5'"),
])
def test_limits_refuse_values_that_mean_nothing(kwargs, message):
    """Limits(crash_attempts=0) behaved like 1, a string wait failed deep in a run."""
    from geomir.diagnostics import UsageError

    with pytest.raises(UsageError, match=re.escape(message)):
        Limits(**kwargs)
    assert Limits(max_delegation_depth=0, lease_s=0.5).lease_s == 0.5
