"""Pass registry and pipeline on xDSL's ModulePass.

Passes register by name with :func:`register_pass`; the pipeline runs them in order,
verifies the IR after every pass (a failure is an internal compiler error naming the
pass), and can hand each intermediate module to a dump callback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from geomir.diagnostics import InternalCompilerError, UsageError
from geomir.dialects import make_context
from geomir.base_points import verify_base_points
from geomir.verify import verify_module

PASSES: dict[str, type[ModulePass]] = {}

# Run by geomc when --passes is not given: tangents at different points are transported to
# a common one, the contracts are proved (a program whose contract fails does not build),
# then every derivative request becomes Taylor-mode code.
DEFAULT_PIPELINE: tuple[str, ...] = ("insert-transport", "verify-contracts", "jet-expand", "jet-fuse", "cse", "dce")

# The default pipeline without the proofs: to run a model whose contracts are measured
# (geomc --report=contracts, numeric checks in tests) rather than proved.
UNCHECKED_PIPELINE: tuple[str, ...] = tuple(p for p in DEFAULT_PIPELINE if p != "verify-contracts")


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    """Class decorator: make a ModulePass available by its ``name``."""
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass '{cls.name}' registered twice")
    PASSES[cls.name] = cls
    return cls


def _load_passes() -> None:
    import geomir.passes  # noqa: F401  (registers the built-in passes)


def available_passes() -> dict[str, str]:
    """Pass name -> first line of its docstring."""
    _load_passes()
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in sorted(PASSES.items())}


def parse_pipeline(spec: str | Sequence[str]) -> list[str]:
    """``"a,b{k=v}"`` or ``["a", "b{k=v}"]`` -> checked pass specs (empty string: no
    passes). A pass takes options in MLIR's syntax: ``prune-weights{method=magnitude
    fraction=0.5}``."""
    _load_passes()
    if not isinstance(spec, str) and not (isinstance(spec, Sequence) and all(isinstance(i, str) for i in spec)):
        raise UsageError(f"passes must be a string (\"a,b{{k=v}}\") or a list of pass strings, found {spec!r}")
    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        for arg in _arg_specs(item):
            _make(arg)  # checks the name and the options
            out.append(_spec_text(arg))
    return out


def _arg_specs(text: str):
    from xdsl.utils.arg_spec import parse_pipeline as parse_specs
    from xdsl.utils.exceptions import ArgSpecParseError  # a BaseException

    out = []
    for part in _split(text):
        try:
            out += list(parse_specs(part))
            repeated = _repeated_option(part)
        except (ArgSpecParseError, ValueError) as err:
            detail = str(err).strip().splitlines()[-1].strip()
            raise UsageError(f"cannot parse the pass '{part}': {detail}") from None
        if repeated is not None:
            raise UsageError(f"pass '{part}': option '{repeated}' is given more than once")
    return out


def _repeated_option(part: str) -> str | None:
    """The first option name given twice in the braces of pass spec ``part`` (xDSL's parser
    keeps the last value and drops the others), else None."""
    from xdsl.utils.arg_spec import PipelineLexer, SpecTokenKind

    lexer = PipelineLexer(part)
    seen: set[str] = set()
    depth, expect_key = 0, False
    while (token := lexer.lex()).kind is not SpecTokenKind.EOF:
        kind = token.kind
        if kind is SpecTokenKind.L_BRACE:
            depth += 1
            expect_key = True
            continue
        if kind is SpecTokenKind.R_BRACE:
            depth -= 1
            if depth == 0:
                seen.clear()  # the next pass's options
        elif kind is SpecTokenKind.SPACE and depth == 1:
            expect_key = True
            continue
        elif kind is SpecTokenKind.IDENT and depth == 1 and expect_key:
            name = token.span.text
            if name in seen:
                return name
            seen.add(name)
        expect_key = False
    return None


def _split(text: str) -> list[str]:
    """The comma-separated pass specs of ``text`` (commas inside ``{...}`` kept), empty ones dropped."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _make(arg) -> ModulePass:
    if arg.name not in PASSES:
        known = ", ".join(sorted(PASSES))
        raise UsageError(f"unknown pass '{arg.name}' (available: {known}; see geomc --list-passes)")
    try:
        return PASSES[arg.name].from_pass_spec(_ints_as_floats(PASSES[arg.name], arg))
    except Exception as err:
        raise UsageError(f"bad options for pass '{arg.name}': {err}") from None


def _ints_as_floats(cls, arg):
    """``arg`` with integer values given to float options as floats: xDSL's spec parser reads
    ``fraction=0`` as an int, which its type check then refuses for a ``float`` field."""
    import typing

    hints = typing.get_type_hints(cls)
    for key, values in list(arg.parameters.items()):
        if hints.get(key) is float:
            arg.parameters[key] = tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values)
    return arg


def _value_text(v) -> str:
    return json.dumps(v) if isinstance(v, str) else str(v)


def _spec_text(arg) -> str:
    if not arg.parameters:
        return arg.name
    opts = " ".join(f"{k}={','.join(_value_text(v) for v in vals)}" for k, vals in arg.parameters.items())
    return f"{arg.name}{{{opts}}}"


def with_weight_transforms(passes: str | Sequence[str] | None, quantize: str | None = None,
                           prune: str | None = None, weights_file: str | None = None) -> list[str]:
    """``passes`` (the default pipeline when None) behind verify-contracts, the weight
    transforms (prune first, then quantize) and verify-contracts again: a contract that held
    before and fails after names the transform and by how much (``geomc --quantize/--prune``).
    ``weights_file``: every verify-contracts proves the contracts of these trained weights."""
    from geomir.backends.common import weights

    verify = f"verify-contracts{{weights={json.dumps(str(weights_file))}}}" if weights_file else "verify-contracts"
    head = [verify]
    if prune is not None:
        method, _, fraction = prune.partition(":")
        try:
            weights.parse(f"prune:{prune}")
        except ValueError as err:
            raise UsageError(f"--prune={prune}: {err}") from None
        head.append(f"prune-weights{{method={method} fraction={float(fraction)!r}}}")
    if quantize is not None:
        try:
            weights.parse(f"quantize:{quantize}")
        except ValueError as err:
            raise UsageError(f"--quantize={quantize}: {err}") from None
        head.append(f"quantize-weights{{mode={quantize}}}")
    base = list(DEFAULT_PIPELINE) if passes is None else parse_pipeline(passes)
    first = [p for p in base[:1] if p == "insert-transport"]  # the contracts are of the transported IR
    rest = [p for p in base[len(first):] if not p.startswith("verify-contracts")]
    if len(head) == 1:  # only a weights file: verify once
        return parse_pipeline([*first, verify, *rest])
    return parse_pipeline([*first, *head, verify, *rest])


DumpCallback = Callable[[int, str, ModuleOp], None]


def run_pipeline(module: ModuleOp, names: Sequence[str], dump: DumpCallback | None = None) -> ModuleOp:
    """Run passes in place, verifying after each; ``dump(i, name, module)`` sees each stage."""
    _load_passes()
    ctx = make_context()
    _verify(module, "the frontend")
    check_no_recursion(module)
    if dump:
        dump(0, "input", module)
    for index, name in enumerate(names, start=1):
        (arg,) = _arg_specs(name)
        _make(arg).apply(ctx, module)
        _verify(module, f"pass '{name}'")
        if dump:
            dump(index, name, module)
    if names:  # a pipeline's output never mixes base points; no passes = the raw dump
        verify_base_points(module)
    return module


def check_no_recursion(module: ModuleOp) -> None:
    """Models cannot call themselves, directly or through others (the .geo front end says so;
    hand-written IR is checked here, before any pass or code generator sees it): an error at
    the call that closes the cycle, naming it."""
    from xdsl.dialects import func

    from geomir.diagnostics import IRError, SourceError, op_span

    calls = {f.sym_name.data: [o for o in f.walk() if isinstance(o, func.CallOp)]
             for f in module.ops if isinstance(f, func.FuncOp)}
    done: set[str] = set()
    for name in calls:
        cycle = None if name in done else _cycle_from(name, calls, done)
        if cycle is not None:
            call, names = cycle
            message = (f"models call each other in a cycle: {' -> '.join('@' + n for n in names)} "
                       "(recursive models are not supported)")
            span = op_span(call)
            raise SourceError(message, span) if span else IRError(message)


def _cycle_from(name: str, calls: dict[str, list], done: set[str]):
    """The first cycle of calls reached from function ``name`` (depth first, a loop: a chain
    of calls may be long): ``(the call that closes it, the names around it)``, else None.
    Adds the functions found free of cycles to ``done``."""
    stack = [(name, iter(calls[name]))]
    path = {name: 0}  # the functions on the stack -> their depth
    while stack:
        caller, pending = stack[-1]
        call = next(pending, None)
        if call is None:
            stack.pop()
            del path[caller]
            done.add(caller)
            continue
        callee = call.callee.string_value()
        if callee in path:
            return call, [f for f, _ in stack[path[callee]:]] + [callee]
        if callee not in done and callee in calls:
            path[callee] = len(stack)
            stack.append((callee, iter(calls[callee])))
    return None


def _verify(module: ModuleOp, after: str) -> None:
    try:
        verify_module(module)
    except VerifyException as err:
        raise InternalCompilerError(f"IR after {after} does not verify: {err}") from err
