"""The static checks of APEL IR (``geomc workflow.apel --check``), one function per check
in :data:`CHECKS`. Each returns every problem it finds as a located :class:`SourceError`
(file:line:col from the op's location), so one run reports them all.

- ``types``: connected agents agree: every argument fits its parameter (records by name,
  manifold values by geometry and dimension), compensations and sub-workflows too, a
  ``receive`` expects the type its ``send`` gives, and an agent bound to a geomir model
  declares the model's signature.
- ``compensation``: every call of an agent with side effects has a compensation, unless
  the agent is declared ``idempotent`` (or ``pure``) and delegates to no agent that has them.
- ``loops``: every ``while`` has a bound; no workflow runs itself through sub-workflows;
  no delegation cycle between agents without a ``depth`` budget on each.
- ``deadlock``: within a ``parallel``, no cycle in the waits-for graph of sends and
  receives (a branch waiting for an event that is only sent after it is received).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute, Operation, SSAValue

from geomir.diagnostics import GeomirError, Note, SourceError, op_span
from geomir.dialects import apel

from .types import assignable, describe, mismatch


class WorkflowCheckError(SourceError):
    """A problem the static checks found in a workflow."""


def _error(message: str, op: Operation, notes: list[Note] | None = None) -> WorkflowCheckError:
    return WorkflowCheckError(message, op_span(op), notes)


def _note(message: str, op: Operation) -> Note:
    return Note(message, op_span(op))


def symbols(module: ModuleOp) -> tuple[dict[str, apel.AgentOp], dict[str, apel.WorkflowOp]]:
    agents = {op.sym_name.data: op for op in module.ops if isinstance(op, apel.AgentOp)}
    workflows = {op.sym_name.data: op for op in module.ops if isinstance(op, apel.WorkflowOp)}
    return agents, workflows


def _producer(value: SSAValue, sets: dict[str, Operation]) -> Operation | None:
    """The step whose result ``value`` is (directly, or read back from a context slot)."""
    owner = value.owner
    if isinstance(owner, apel.GetOp):
        owner = sets.get(owner.slot.data)
    return owner if isinstance(owner, (apel.CallOp, apel.RunOp, apel.ReceiveOp)) else None


def _what(step: Operation) -> str:
    if isinstance(step, apel.CallOp):
        return f"agent '{step.agent.root_reference.data}'"
    if isinstance(step, apel.RunOp):
        return f"workflow '{step.workflow.root_reference.data}'"
    return f"event '{step.event.data}'"


# --- types --------------------------------------------------------------------------------


def check_types(module: ModuleOp) -> list[SourceError]:
    agents, workflows = symbols(module)
    errors: list[SourceError] = []
    for wf in workflows.values():
        sets: dict[str, Operation] = {}  # slot -> the step that last wrote it, in program order
        for op in wf.walk():
            if isinstance(op, apel.SetOp) and isinstance(op.value.owner, (apel.CallOp, apel.RunOp, apel.ReceiveOp)):
                sets[op.slot.data] = op.value.owner
            if isinstance(op, (apel.CallOp, apel.CompensateOp)):
                agent = agents.get(op.agent.root_reference.data)
                if agent is not None:
                    errors += _arguments(op, list(op.args), agent.params(), f"agent '{agent.sym_name.data}'", sets)
            elif isinstance(op, apel.RunOp):
                target = workflows.get(op.workflow.root_reference.data)
                if target is not None:
                    errors += _arguments(op, list(op.args), target.params(), f"workflow '{target.sym_name.data}'", sets)
        errors += _events(wf)
    for agent in agents.values():
        if agent.model is not None:
            errors += _model_signature(agent)
    return errors


def _arguments(op: Operation, args: list[SSAValue], params: list[tuple[str, Attribute]], owner: str,
               sets: dict[str, Operation]) -> list[SourceError]:
    errors = []
    for value, (name, want) in zip(args, params):
        if assignable(value.type, want):
            continue
        producer = _producer(value, sets)
        notes = [_note(f"{_what(producer)} produces it here", producer)] if producer is not None else []
        source = f" from {_what(producer)}" if producer is not None else ""
        errors.append(_error(f"{mismatch(value.type, want)}: {owner} parameter '{name}' receives "
                             f"{describe(value.type)}{source}", op, notes))
    return errors


def _events(wf: apel.WorkflowOp) -> list[SourceError]:
    sends: dict[str, list[apel.SendOp]] = {}
    for op in wf.walk():
        if isinstance(op, apel.SendOp):
            sends.setdefault(op.event.data, []).append(op)
    errors = []
    for op in wf.walk():
        if not isinstance(op, apel.ReceiveOp):
            continue
        for send in sends.get(op.event.data, []):
            sent = send.value.type if send.value is not None else apel.ValueType("none")
            if not assignable(sent, op.result.type):
                errors.append(_error(f"{mismatch(sent, op.result.type)}: receive '{op.event.data}' expects "
                                     f"{describe(op.result.type)}, but it is sent {describe(sent)}", op,
                                     [_note("sent here", send)]))
    return errors


def _model_signature(agent: apel.AgentOp) -> list[SourceError]:
    """An agent bound to a geomir model must declare the model's input and output types."""
    from geomir.apel.agents import model_signature

    try:
        inputs, output = model_signature(agent.model.data, _base_dir(agent))
    except GeomirError as err:
        return [_error(f"agent '{agent.sym_name.data}': {err.message if hasattr(err, 'message') else err}", agent,
                       model_notes(err, agent.model.data))]
    declared = agent.params()
    name = agent.sym_name.data
    if len(inputs) != len(declared):
        return [_error(f"agent '{name}' declares {len(declared)} parameters, but model '{agent.model.data}' takes "
                       f"{len(inputs)}", agent)]
    errors = []
    for (pname, want), got in zip(declared, inputs):
        if want != got:
            errors.append(_error(f"{mismatch(got, want)}: agent '{name}' parameter '{pname}' is declared "
                                 f"{describe(want)}, model '{agent.model.data}' takes {describe(got)}", agent))
    if output != agent.result_type:
        errors.append(_error(f"{mismatch(output, agent.result_type)}: agent '{name}' is declared to return "
                             f"{describe(agent.result_type)}, model '{agent.model.data}' returns {describe(output)}", agent))
    return errors


def model_notes(err: GeomirError, model: str) -> list[Note]:
    """Where in the model's own file an error of model ``model`` is (file:line:col and its
    caret, then that error's notes): the .geo frontend's error, as ``geomc`` on the file says it."""
    if not isinstance(err, SourceError) or err.span is None:
        return []
    return [Note(f"in model '{model}'", err.span), *err.notes]


def _base_dir(op: Operation) -> Path:
    span = op_span(op)
    return Path(span.source.name).parent if span is not None else Path.cwd()


# --- compensation ------------------------------------------------------------------------------


def check_compensation(module: ModuleOp) -> list[SourceError]:
    agents, workflows = symbols(module)
    errors = []
    for wf in workflows.values():
        for op in wf.walk():
            if not isinstance(op, apel.CallOp):
                continue
            chain = _effect_chain(agents, op.agent.root_reference.data)
            if chain is None or op.compensation.blocks:
                continue
            name, effectful = chain[0], agents[chain[-1]]
            if len(chain) == 1:
                errors.append(_error(
                    f"step '{op.step.data}' calls agent '{name}', which has side effects, without a "
                    f"compensation: add 'compensate AGENT(...)' to undo it, or declare the agent 'idempotent' or 'pure'",
                    op, [_note(f"agent '{name}' is declared here", effectful)]))
                continue
            errors.append(_error(
                f"step '{op.step.data}' calls agent '{name}', which may delegate to '{chain[-1]}' "
                f"({' → '.join(chain)}), which has side effects, without a compensation: add 'compensate "
                f"AGENT(...)' to undo it, or declare '{chain[-1]}' 'idempotent' or 'pure'",
                op, [_note(f"agent '{a}' delegates to '{b}'", agents[a]) for a, b in zip(chain, chain[1:])]
                + [_note(f"agent '{chain[-1]}' is declared here", effectful)]))
    return errors


def _effect_chain(agents: dict[str, apel.AgentOp], start: str) -> list[str] | None:
    """The shortest delegation chain from agent ``start`` to an agent with side effects
    (``[start]`` when it has them itself), or None: a call may have the side effects of
    any agent it delegates to, whatever its own declaration says."""
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for name in frontier:
            agent = agents.get(name)
            if agent is None:
                continue
            if agent.effect.data == "effectful":
                chain = [name]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1]
            for d in agent.delegates.data:
                if d.data not in parent:
                    parent[d.data] = name
                    nxt.append(d.data)
        frontier = nxt
    return None


# --- loops --------------------------------------------------------------------------------------


def check_loops(module: ModuleOp) -> list[SourceError]:
    agents, workflows = symbols(module)
    errors = []
    for wf in workflows.values():
        for op in wf.walk():
            if isinstance(op, apel.WhileOp) and op.max is None:
                errors.append(_error("unbounded loop: this 'while' has no bound; give it one ('while COND max N "
                                     "{ ... }') so a run cannot spin forever", op))
    runs = {name: [op for op in wf.walk() if isinstance(op, apel.RunOp)] for name, wf in workflows.items()}
    for cycle in _cycles({n: [r.workflow.root_reference.data for r in rs] for n, rs in runs.items()}):
        first = next(r for r in runs[cycle[0]] if r.workflow.root_reference.data == cycle[1 % len(cycle)])
        notes = [_note(f"workflow '{a}' runs '{b}' here",
                       next(r for r in runs[a] if r.workflow.root_reference.data == b))
                 for a, b in zip(cycle[1:], cycle[2:] + cycle[:1])]
        errors.append(_error(f"delegation cycle: {' → '.join(cycle + [cycle[0]])} runs without a bound "
                             "(a workflow may not run itself through sub-workflows)", first, notes))
    graph = {n: [d.data for d in a.delegates.data] for n, a in agents.items()}
    for cycle in _cycles(graph):
        unbounded = [a for a in cycle if agents[a].budget_value("depth") is None]
        if unbounded:
            errors.append(_error(
                f"delegation cycle: {' → '.join(cycle + [cycle[0]])} has no bound; give "
                f"{', '.join(repr(a) for a in unbounded)} a 'budget depth = N'", agents[unbounded[0]],
                [_note(f"agent '{a}' delegates to '{b}'", agents[a]) for a, b in zip(cycle, cycle[1:] + cycle[:1])]))
    return errors


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of nodes that has one (self-loops
    included), groups in declaration order (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            groups.append(group)

    for node in graph:
        if node not in index:
            connect(node)
    order = {n: i for i, n in enumerate(graph)}
    found = []
    for group in sorted(groups, key=lambda g: min(order[n] for n in g)):
        members = set(group)
        start = min(group, key=order.__getitem__)
        if len(group) == 1 and start not in graph.get(start, []):
            continue
        parent: dict[str, str] = {}
        frontier, end = [start], None
        while end is None:  # breadth-first inside the group, back to the start
            nxt_frontier = []
            for node in frontier:
                for nxt in graph[node]:
                    if nxt == start:
                        end = node
                        break
                    if nxt in members and nxt not in parent:
                        parent[nxt] = node
                        nxt_frontier.append(nxt)
                if end is not None:
                    break
            frontier = nxt_frontier
        path = [end]
        while path[-1] != start:
            path.append(parent[path[-1]])
        found.append(path[::-1])
    return found


# --- deadlock ------------------------------------------------------------------------------------


def check_deadlock(module: ModuleOp) -> list[SourceError]:
    errors = []
    for wf in symbols(module)[1].values():
        for op in wf.walk():
            if isinstance(op, apel.ParallelOp):
                errors += _parallel_deadlock(op)
    return errors


def _own_ops(region):
    """The ops of a branch in program order, not looking into nested ``parallel`` blocks
    (their branches run at the same time, and are checked on their own)."""
    for op in region.block.ops:
        yield op
        if not isinstance(op, apel.ParallelOp):
            for inner in op.regions:
                if inner.blocks:
                    yield from _own_ops(inner)


def _parallel_deadlock(par: apel.ParallelOp) -> list[SourceError]:
    """Nodes: the sends and receives of each branch. Edges: program order within a
    branch, and send(e) → receive(e) across branches. A cycle means every branch on it
    waits for another: the run could never finish."""
    names = [n.data for n in par.branch_names.data]
    order: list[list[Operation]] = [[op for op in _own_ops(region) if isinstance(op, (apel.SendOp, apel.ReceiveOp))]
                                    for region in par.branches]
    senders: dict[str, list[Operation]] = {}
    for ops in order:
        for op in ops:
            if isinstance(op, apel.SendOp):
                senders.setdefault(op.event.data, []).append(op)
    edges: dict[Operation, list[Operation]] = {}
    branch_of: dict[Operation, str] = {}
    for name, ops in zip(names, order):
        for a, b in zip(ops, ops[1:]):
            edges.setdefault(a, []).append(b)
        for op in ops:
            branch_of[op] = name
            if isinstance(op, apel.ReceiveOp):
                for send in senders.get(op.event.data, []):
                    edges.setdefault(send, []).append(op)
    # A receive waits for *a* send, so it is blocked only if every sender of its event is
    # blocked: keep the edge send→receive only when the event has one sender.
    for ops in order:
        for op in ops:
            if isinstance(op, apel.ReceiveOp) and len(senders.get(op.event.data, [])) > 1:
                for send in senders[op.event.data]:
                    edges[send].remove(op)
    ids = {op: f"n{i}" for i, op in enumerate(branch_of)}
    back = {v: k for k, v in ids.items()}
    for cycle in _cycles({ids[a]: [ids[b] for b in bs] for a, bs in edges.items()} | {ids[o]: [] for o in branch_of if o not in edges}):
        ops = [back[c] for c in cycle]
        receive = next(o for o in ops if isinstance(o, apel.ReceiveOp))
        waits = []
        for op in ops:
            if isinstance(op, apel.ReceiveOp):
                waits.append(f"branch '{branch_of[op]}' waits for '{op.event.data}'")
        notes = [_note(f"branch '{branch_of[o]}' {'sends' if isinstance(o, apel.SendOp) else 'waits for'} "
                       f"'{o.event.data}' here", o) for o in ops if o is not receive]
        errors = [_error(f"deadlock between parallel branches: {'; '.join(waits)}, each sent only after "
                         "another of these waits ends", receive, notes)]
        return errors
    return []


CHECKS: dict[str, Callable[[ModuleOp], list[SourceError]]] = {
    "types": check_types,
    "compensation": check_compensation,
    "loops": check_loops,
    "deadlock": check_deadlock,
}
"""The static checks, by name, in the order ``--check`` runs them."""


def run_checks(module: ModuleOp, names: list[str] | None = None) -> list[SourceError]:
    """Every problem the named checks (default: all) find, in source order per check."""
    return [e for name in (names or list(CHECKS)) for e in CHECKS[name](module)]

