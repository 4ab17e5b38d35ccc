"""``geomc``: the command-line compiler.

    geomc model.geo --emit=ir                       IR after the default pipeline
    geomc model.geo --passes=inline-models,cse      run chosen passes ('' for none)
    geomc model.geo --dump-ir-after-all --dump-dir out/
    geomc --list-passes
    geomc model.geo --target=torch -o model.py      PyTorch code (also: jax, triton)
    geomc model.geo --target=triton --precision=tf32   Triton kernels with TF32 dot products
    geomc model.geo --target=torch --check-finite   code that raises at the source line of the first NaN/inf
    geomc model.geo --report=jets [--model M]       per-layer jet health (vanishing/exploding derivatives)
    geomc contract check hyp.yaml                   kernel contract: candidate vs reference kernel, clause by clause
    geomc model.geo --plot=holonomy --model M -o holonomy.png
                                                    curvature/holonomy heatmap of the model's pull-back geometry
    geomc model.geo --quantize=int8 --prune=magnitude:0.5 --target=torch
                                                    transformed weights, contracts re-proved
    geomc workflow.apel --emit=ir                   an APEL workflow's apel dialect IR
    geomc workflow.apel --check                     its static checks (types, compensation, loops, deadlock)

Exit codes: 0 success, 1 error in the user's program, 2 bad usage or a target that is not
built, 3 internal compiler error. User errors never print a Python traceback
(``--debug`` shows one for compiler bugs).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from geomir.diagnostics import UsageError, add_debug_option, cli_main, require_installed

EMITS = ("ir", "ir-generic")
REPORTS = ("jets", "contracts", "holonomy")  # --report kinds
PLOTS = ("holonomy",)  # --plot kinds


class _Once(argparse._StoreAction):
    """argparse's ``store``, but an option given twice is a usage error (argparse would
    silently keep the last value), as an option repeated inside a pass's braces is."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given", {})
        if self.dest in given:
            raise argparse.ArgumentError(self, f"given twice ({given[self.dest]}, then {option_string} {values}): "
                                               "give it once")
        given[self.dest] = f"{option_string} {values}"
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its subcommands' parsers) whose options may be given once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)
        self.register("action", "store", _Once)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="geomc",
        description="Compile a .geo model (or .mlir IR) with geomir.",
        epilog="Exit codes: 0 ok, 1 error in the program, 2 usage error or target not built, 3 compiler bug.",
    )
    p.add_argument("input", nargs="?", help="a .geo program or a .mlir IR file")
    p.add_argument("--emit", choices=EMITS, help="what to write: ir (default) or ir-generic (MLIR generic form)")
    p.add_argument("--target", help="code-generation target: torch, jax or triton")
    p.add_argument("--precision", choices=("ieee", "tf32", "tf32x3", "bf16"),
                   help="triton: dot-product precision of the kernels (default ieee fp32; tf32x3 is fp32-accurate "
                   "on tensor cores; accumulation is fp32)")
    p.add_argument("--check-finite", action="store_true",
                   help="with --target: the generated code checks every input, parameter and op result and raises "
                   "NonFiniteError at the source line of the first NaN or inf (a debugging mode: a sync per op)")
    p.add_argument("-o", "--output", help="write the result to this file instead of stdout (not the input file)")
    p.add_argument("--passes", help="comma-separated pass pipeline replacing the default ('' runs none)")
    p.add_argument("--quantize", choices=("int8", "bf16"),
                   help="quantize the weights (int8: per-row symmetric; bf16) and re-prove the contracts")
    p.add_argument("--prune", metavar="magnitude:F",
                   help="zero the fraction F of smallest weights of each matrix and re-prove the contracts")
    p.add_argument("--weights", metavar="FILE",
                   help="prove the contracts of these trained weights (.npz by parameter name, or a .pt state dict) instead of seed 0")
    p.add_argument("--check", action="store_true", help=".apel workflows: run the static checks (agent types and "
                   "manifolds, compensations, loop bounds and delegation cycles, deadlocks) and report every problem")
    p.add_argument("--list-passes", action="store_true", help="list the registered passes and exit")
    p.add_argument("--dump-ir-after-all", action="store_true", help="write the IR after every pass")
    p.add_argument("--dump-dir", help="directory for --dump-ir-after-all files (default: stderr)")
    p.add_argument("--debug-info", action="store_true", help='print each op\'s source location, loc("file":line:col)')
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    r = p.add_argument_group("reports", "run the model on a seeded batch and report on it (needs torch)")
    r.add_argument("--report", choices=REPORTS, help="jets: per-layer sizes of the order-2 jet, flagging vanishing, exploding, NaN; "
                   "contracts: declared vs proved Lipschitz bounds and their tightness")
    r.add_argument("--model", help="report on this model only (default: every model)")
    r.add_argument("--wrt", help="the input to differentiate, by name or index (default: the first)")
    r.add_argument("--batch", type=int, help="inputs in the batch (default 256)")
    r.add_argument("--seed", type=int, help="seed of the parameters, inputs and directions (default 0)")
    r.add_argument("--jets-vanish", type=float, metavar="R", help="VANISHING below this median |∂f|/|v| (default 1e-6)")
    r.add_argument("--jets-explode", type=float, metavar="R", help="EXPLODING above this max |∂f|/|v| or |∂²f|/|v|² (default 1e6)")
    r.add_argument("--holonomy-max", type=float, metavar="RAD", help="holonomy: flag loops whose holonomy rotates tangents "
                   "by more than this (default 0.1 rad)")
    r.add_argument("--steps", type=int, metavar="T", help="holonomy: iterations of a recurrent block (default 8)")
    r.add_argument("--fail-on-flags", action="store_true", help="exit 1 when a layer is flagged (jets), a contract fails "
                   "(contracts) or a loop is flagged (holonomy)")
    g = p.add_argument_group("plots", "draw a picture of a model (needs torch and matplotlib); --model, --wrt, --seed "
                             "and --weights apply")
    g.add_argument("--plot", choices=PLOTS, help="holonomy: the Gaussian curvature (holonomy angle / area of small loops) "
                   "of the model's pull-back metric over a 2-D slice of its input, written to -o")
    g.add_argument("--plot-axes", metavar="A,B", help="the two input coordinates spanning the slice (default 0,1; "
                   "1,2 on the sphere and hyperboloid)")
    g.add_argument("--plot-extent", type=float, metavar="R", help="the slice is [-R, R]^2 around the origin "
                   "(default 1; 0.7/sqrt(c) for ball points, where cells outside the ball are left blank)")
    g.add_argument("--plot-grid", type=int, metavar="N", help="N x N cells (default 32)")
    return p


_PLOT_ONLY = ("plot_axes", "plot_extent", "plot_grid")
_REPORT_ONLY = ("model", "wrt", "batch", "seed", "jets_vanish", "jets_explode", "fail_on_flags", "holonomy_max", "steps")


def _console(args):
    """(console, finish): stdout, or a buffer written to -o by ``finish()``."""
    import io

    from rich.console import Console

    if args.output:
        buffer = io.StringIO()
        return Console(file=buffer, width=1000, color_system=None, highlight=False), lambda: _write(args.output, buffer.getvalue())
    wide = None if sys.stdout.isatty() else 1000  # files and pipes: no wrapping (rows are as wide as they need)
    return Console(file=sys.stdout, width=wide, highlight=False), lambda: None


def _report_contracts(args) -> None:
    """Run ``--report=contracts``; with --fail-on-flags, exit 1 when a contract fails."""
    from geomir import contract_report

    bad = [o for o in ("wrt", "batch", "seed", "jets_vanish", "jets_explode", "holonomy_max", "steps")
           if getattr(args, o) is not None]
    if bad:
        owner = "holonomy" if bad[0] in ("holonomy_max", "steps") else "jets"
        raise UsageError(f"--{bad[0].replace('_', '-')} is an option of --report={owner}")
    rows = contract_report.report_contracts(Path(args.input), args.model)
    console, finish = _console(args)
    contract_report.render(rows, console)
    finish()
    failing = [r for r in rows if not r.holds or not r.sound]
    if args.fail_on_flags and failing:
        raise contract_report.ContractReportError("contract report: " + "; ".join(
            f"{r.model}{f' ({r.where})' if r.where else ''}: proved {r.proved:.4g}, declared {r.declared:g}"
            for r in failing), None)


def _report_holonomy(args) -> None:
    """Run ``--report=holonomy``; with --fail-on-flags, exit 1 when a loop is flagged."""
    from geomir import holonomy_check as hc

    bad = [o for o in ("wrt", "jets_vanish", "jets_explode") if getattr(args, o) is not None]
    if bad:
        raise UsageError(f"--{bad[0].replace('_', '-')} is an option of --report=jets")
    threshold = hc.THRESHOLD if args.holonomy_max is None else args.holonomy_max
    reports = hc.check_holonomy(
        Path(args.input), args.model, threshold, hc.BATCH if args.batch is None else args.batch,
        0 if args.seed is None else args.seed, hc.STEPS if args.steps is None else args.steps, args.weights,
    )
    console, finish = _console(args)
    hc.render(reports, console, threshold)
    finish()
    flagged = [r for r in reports if r.flagged]
    if args.fail_on_flags and flagged:
        # one line per flagged loop, each "error: holonomy report: ..."
        raise hc.HolonomyFlagError("\nerror: ".join(f"holonomy report: {r.summary()}" for r in flagged))


def _report(args) -> None:
    """Run ``--report=jets``: print the tables (stdout or -o); raise on flags if asked."""
    if args.report == "contracts":
        _report_contracts(args)
        return
    if args.report == "holonomy":
        _report_holonomy(args)
        return
    extra = [o for o in ("holonomy_max", "steps") if getattr(args, o) is not None]
    if extra:
        raise UsageError(f"--{extra[0].replace('_', '-')} is an option of --report=holonomy")
    import io

    from rich.console import Console

    from geomir import jet_report

    def given(value, default):
        return default if value is None else value

    reports = jet_report.report_jets(
        Path(args.input), args.model, args.wrt, given(args.batch, 256), given(args.seed, 0),
        given(args.jets_vanish, jet_report.VANISH), given(args.jets_explode, jet_report.EXPLODE),
    )
    if args.output:
        buffer = io.StringIO()
        jet_report.render(reports, Console(file=buffer, width=1000, color_system=None, highlight=False))
        _write(args.output, buffer.getvalue())
    else:
        wide = None if sys.stdout.isatty() else 1000  # files and pipes: no wrapping (rows are as wide as they need)
        jet_report.render(reports, Console(file=sys.stdout, width=wide, highlight=False))
    flagged = [r for r in reports if r.flagged]
    if args.fail_on_flags and flagged:
        raise jet_report.JetHealthError("jet report: " + "; ".join(jet_report.summary(r) for r in flagged))


def _plot(args) -> None:
    """Run ``--plot=holonomy``: compute the map, save the figure, print a summary line."""
    from geomir import holonomy_map

    clash = [o for o, on in (("--emit", args.emit), ("--target", args.target), ("--passes", args.passes),
                             ("--quantize", args.quantize), ("--prune", args.prune), ("--report", args.report),
                             ("--dump-ir-after-all", args.dump_ir_after_all), ("--check-finite", args.check_finite))
             if on not in (None, False)]
    if clash:
        raise UsageError(f"--plot draws a picture; drop {', '.join(clash)}")
    if not args.output:
        raise UsageError("--plot needs -o FILE (.png, .pdf or .svg)")
    bad = [o for o in ("batch", "jets_vanish", "jets_explode", "fail_on_flags") if getattr(args, o) not in (None, False)]
    if bad:
        raise UsageError(f"--{bad[0].replace('_', '-')} is an option of --report=jets")
    axes = None
    if args.plot_axes is not None:
        try:
            a, b = (int(x) for x in args.plot_axes.split(","))
        except ValueError:
            raise UsageError(f"--plot-axes takes two coordinate indices like 0,1, not '{args.plot_axes}'") from None
        axes = (a, b)
    require_installed("matplotlib", "--plot needs")  # before the map is computed, not after
    hmap = holonomy_map.holonomy_map(
        Path(args.input), args.model, args.wrt, axes, args.plot_extent,
        holonomy_map.GRID if args.plot_grid is None else args.plot_grid,
        0 if args.seed is None else args.seed, args.weights,
    )
    import matplotlib.pyplot as plt

    plt.close(holonomy_map.plot(hmap, args.output))
    sys.stdout.write(f"wrote {args.output}: {hmap.summary()}\n")


def _workflow(args) -> int:
    """``geomc workflow.apel --emit=ir`` / ``--check``."""
    from geomir.apel import compile_file
    from geomir.apel.checks import run_checks
    from geomir.ir import print_ir

    used = [o for o, on in (("--target", args.target), ("--passes", args.passes), ("--report", args.report),
                            ("--quantize", args.quantize), ("--prune", args.prune), ("--weights", args.weights),
                            ("--dump-ir-after-all", args.dump_ir_after_all), ("--check-finite", args.check_finite))
            if on not in (None, False)]
    if used:
        raise UsageError(f"{', '.join(used)} do not apply to .apel workflows (use --emit=ir or --check)")
    module, _ = compile_file(args.input)
    if args.check:
        problems = run_checks(module)
        for problem in problems:
            sys.stderr.write(problem.render() + "\n")
        if problems:
            sys.stderr.write(f"{len(problems)} problem{'s' * (len(problems) > 1)} in {args.input}\n")
            return 1
        sys.stdout.write(f"{args.input}: ok (types, compensation, loops, deadlock)\n")
        return 0
    text = print_ir(module, generic=args.emit == "ir-generic", debug_info=args.debug_info)
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one existing file (another spelling, a symlink or
    a hard link of it included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _overwritten_input(args, target) -> str | None:
    """What input ``target`` would overwrite ("the input file ('x.geo')"), or None."""
    for what, source in (("the input file", args.input), ("the --weights file", args.weights)):
        if source is not None and _same_file(target, source):
            return f"{what} ('{source}')"
    return None


def _check_paths(args) -> None:
    """Usage errors for an empty path, and for an output that would overwrite an input:
    ``-o`` naming the program (or the --weights file) is refused before anything is
    compiled or written."""
    for option, value in (("input", args.input), ("-o", args.output), ("--dump-dir", args.dump_dir),
                          ("--weights", args.weights)):
        if value == "":
            what = "input path" if option == "input" else f"path given to {option}"
            raise UsageError(f"empty {what}" + (" (try: geomc examples/hyperbolic_mlp.geo --emit=ir)"
                                                  if option == "input" else ""))
    overwritten = None if args.output is None else _overwritten_input(args, args.output)
    if overwritten is not None:
        raise UsageError(f"-o {args.output} is {overwritten}; it would be overwritten: "
                         "write the output to another file")


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise UsageError(f"cannot write '{path}': {err.strerror}") from None


def _list_passes() -> str:
    from geomir.pipeline import DEFAULT_PIPELINE, available_passes

    passes = available_passes()
    width = max(len(n) for n in passes)
    lines = [f"{name:<{width}}  {doc}" for name, doc in passes.items()]
    lines.append(f"\ndefault pipeline: {','.join(DEFAULT_PIPELINE)}")
    return "\n".join(lines) + "\n"


def _dumper(args, passes=None):
    """The ``--dump-ir-after-all`` callback (None without it); ``passes``: the pipeline, whose
    dump files (``NN-<pass>.mlir`` under --dump-dir) are checked not to be an input first."""
    if not args.dump_ir_after_all:
        return None
    from geomir.ir import print_ir
    from geomir.pipeline import DEFAULT_PIPELINE, parse_pipeline

    generic = args.emit == "ir-generic"
    directory = Path(args.dump_dir) if args.dump_dir else None

    def check(target: Path) -> None:
        overwritten = _overwritten_input(args, target)
        if overwritten is not None:
            raise UsageError(f"--dump-dir {args.dump_dir}: the dump '{target}' is {overwritten}; "
                             "it would be overwritten: dump to another directory")
        if args.output is not None and (_same_file(args.output, target)
                                        or Path(args.output).resolve() == target.resolve()):
            raise UsageError(f"-o {args.output} is the dump '{target}' of --dump-dir {args.dump_dir}; one would "
                             "overwrite the other: write the output or the dumps elsewhere")

    if directory is not None:
        names = ["input", *(DEFAULT_PIPELINE if passes is None else parse_pipeline(passes))]
        for index, name in enumerate(names):  # before anything is written
            check(directory / _dump_file(index, name))
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create dump directory '{directory}': {err.strerror}") from None
        _remove_stale_dumps(args, directory, {_dump_file(index, name) for index, name in enumerate(names)})

    def dump(index: int, name: str, module) -> None:
        text = print_ir(module, generic, args.debug_info)
        if directory is None:
            label = "IR Dump Before Any Pass" if index == 0 else f"IR Dump After {name}"
            sys.stderr.write(f"// -----// {label} //----- //\n{text}\n")
        else:
            target = directory / _dump_file(index, name)
            check(target)
            _write(target, text)

    return dump


def _dump_file(index: int, name: str) -> str:
    """The dump file of stage ``index``: ``NN-<pass>.mlir``, the pass without its options
    (``verify-contracts{weights="w/t.npz"}`` -> ``02-verify-contracts.mlir``)."""
    return f"{index:02d}-{name.split('{', 1)[0].strip()}.mlir"


def _remove_stale_dumps(args, directory: Path, written: set[str]) -> None:
    """Remove the dumps of an earlier run from ``directory``: files named as geomc names its
    dumps (``NN-input.mlir``, ``NN-<pass>.mlir``, the pass with its options) that this run
    does not write, unless one is an input or the -o file. Other files are left alone."""
    import re

    from geomir.pipeline import available_passes

    stages = "|".join(re.escape(n) for n in ("input", *available_passes()))
    dump_name = re.compile(rf"\d{{2,}}-(?:{stages})(?:\{{.*\}})?\.mlir")
    for path in sorted(directory.iterdir()):
        if (path.name in written or not dump_name.fullmatch(path.name) or not path.is_file()
                or _overwritten_input(args, path) is not None
                or (args.output is not None and _same_file(args.output, path))):
            continue
        try:
            path.unlink()
        except OSError as err:
            raise UsageError(f"cannot remove the earlier dump '{path}': {err.strerror}") from None


def _contract_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="geomc contract",
        description="Kernel contracts: bound how far an inference kernel may drift from the training kernel.",
        epilog="Exit codes: check: 0 the contract holds, 1 it is violated, an escalation step (fallback, block) "
        "rejects the candidate, or the file is wrong; promote: 0 the candidate reached the last stage, 1 it is "
        "blocked, 4 not yet (paused as inconclusive, or out of calls); 2 usage error (a model, weights or state "
        "file that cannot be used).",
    )
    add_debug_option(p)
    sub = p.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run the reference and the candidate kernel and evaluate every clause")
    check.add_argument("contract", help="the contract file (.yaml)")
    check.add_argument("-o", "--output", help="write the JSON report here (default: <contract>.report.json)")
    add_debug_option(check)
    promote = sub.add_parser("promote", help="move the candidate through the contract's promotion stages on "
                             "synthetic calls (state kept in SQLite; a rerun continues)")
    promote.add_argument("contract", help="the contract file (.yaml)")
    promote.add_argument("--calls", type=int, default=2000, help="calls to serve at most in this run (default 2000)")
    promote.add_argument("--rows", type=int, default=16, help="rows per call (default 16)")
    promote.add_argument("--state", help="the SQLite state file (default: <contract>.state.sqlite)")
    promote.add_argument("--reset", action="store_true", help="forget the saved state and start from offline (a "
                         "changed contract, model or weights file restarts by itself)")
    promote.add_argument("--resume", action="store_true", help="continue a promotion paused as inconclusive")
    add_debug_option(promote)
    add_debug_option(sub.add_parser("schema", help="print the contract file's JSON schema"))
    return p


def _contract_inputs(path: str) -> list[tuple[str, str]]:
    """(what, path) of the files a contract reads: the contract, and when it loads, its model
    and weights (resolved against the contract's directory). A contract that does not load
    reads nothing else: the command reports why before writing anything."""
    from geomir.contracts.spec import load_contract
    from geomir.diagnostics import SourceError

    inputs = [("the contract file", path)]
    try:
        contract, base = load_contract(Path(path))
    except (SourceError, UsageError):
        return inputs
    inputs.append(("the contract's model", str(base / contract.model)))
    if contract.weights is not None:
        inputs.append(("the contract's weights file", str(base / contract.weights)))
    return inputs


def _check_contract_outputs(args) -> None:
    """Usage errors for an empty -o / --state, and for one naming a file the contract reads
    (it would be overwritten), before anything runs."""
    given = [(flag, getattr(args, option, None)) for flag, option in (("-o", "output"), ("--state", "state"))]
    given = [(flag, value) for flag, value in given if value is not None]
    for flag, value in given:
        if value == "":
            raise UsageError(f"empty path given to {flag}")
    inputs = _contract_inputs(args.contract) if given else []
    for flag, value in given:
        for what, source in inputs:
            if _same_file(value, source):
                raise UsageError(f"{flag} {value} is {what} ('{source}'); it would be overwritten: give another file")


def _event_notes(detail: str) -> list[str]:
    """The ``notes`` of a promotion event's JSON detail (the offline check's), or []."""
    import json

    try:
        data = json.loads(detail)
    except ValueError:
        return []
    return [str(n) for n in data.get("notes", [])] if isinstance(data, dict) else []


def run_contract(argv: list[str]) -> int:
    """``geomc contract check FILE`` / ``geomc contract schema``."""
    args = _contract_parser().parse_args(argv)
    import json

    if getattr(args, "contract", None) == "":
        raise UsageError("empty contract path")
    _check_contract_outputs(args)

    from geomir.contracts import check, spec

    if args.command == "schema":
        sys.stdout.write(json.dumps(spec.json_schema(), indent=2) + "\n")
        return 0
    check.require_torch()  # before a promotion's state is touched
    if args.command == "promote":
        from geomir.contracts import promotion

        if args.calls < 1 or args.rows < 1:
            raise UsageError("--calls and --rows must be at least 1")

        def show(e):
            detail = e["detail"] if len(e["detail"]) < 300 else e["detail"][:300] + "..."
            sys.stdout.write(f"[{e['stage']}] {e['kind']}{': ' + detail if detail else ''}\n")
            for note in _event_notes(e["detail"]):  # in full, however long the detail
                sys.stdout.write(f"note: {note}\n")

        router = promotion.promote(Path(args.contract), args.calls, args.rows, args.state, args.reset, args.resume, show)
        s = router.state
        sys.stdout.write(f"stage {s.stage}, {s.status}; {s.total} calls served, state in {router.store.path}\n")
        if promotion.promoted(router):
            return 0
        return 1 if s.status == "blocked" else 4
    report = check.check_contract(Path(args.contract))
    from rich.console import Console

    wide = None if sys.stdout.isatty() else 1000
    check.render(report, Console(file=sys.stdout, width=wide, highlight=False))
    out = args.output or str(Path(args.contract).with_suffix("")) + ".report.json"
    check.write_json(report, out)
    sys.stdout.write(f"report: {out}\n")
    return 0 if report.passed else 1


def run(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if [a for a in argv if a != "--debug"][:1] == ["contract"]:  # `geomc --debug contract ...` too
        return run_contract(argv[argv.index("contract") + 1:])
    args = _parser().parse_args(argv)
    if args.list_passes:
        sys.stdout.write(_list_passes())
        return 0
    if args.input is None:
        raise UsageError("no input file (try: geomc examples/hyperbolic_mlp.geo --emit=ir)")
    _check_paths(args)
    if args.dump_dir and not args.dump_ir_after_all:
        raise UsageError("--dump-dir needs --dump-ir-after-all")
    if args.input.endswith(".apel"):
        return _workflow(args)
    if args.check:
        raise UsageError("--check applies to .apel workflows (models: --report=contracts)")
    if args.plot is not None:
        _plot(args)
        return 0
    plot_only = [o for o in _PLOT_ONLY if getattr(args, o) is not None]
    if plot_only:
        raise UsageError(f"--{plot_only[0].replace('_', '-')} needs --plot")
    if args.target is not None and args.emit is not None:
        raise UsageError("give either --emit or --target, not both")
    if args.report is not None:
        weights = args.weights if args.report != "holonomy" else None  # the holonomy report runs trained weights
        clash = [o for o, on in (("--emit", args.emit), ("--target", args.target), ("--passes", args.passes),
                                 ("--quantize", args.quantize), ("--prune", args.prune), ("--weights", weights),
                                 ("--dump-ir-after-all", args.dump_ir_after_all),
                                 ("--check-finite", args.check_finite)) if on not in (None, False)]
        if clash:
            raise UsageError(f"--report runs its own pipeline; drop {', '.join(clash)}")
        _report(args)
        return 0
    if args.precision is not None and args.target != "triton":
        raise UsageError("--precision applies to --target=triton only")
    if args.check_finite and args.target is None:
        raise UsageError("--check-finite applies to generated code: add --target=torch, jax or triton")
    given = [o for o in _REPORT_ONLY if getattr(args, o) not in (None, False)]
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')} needs --report")

    from geomir.compiler import emit_source, to_ir
    from geomir.ir import print_ir
    from geomir.pipeline import with_weight_transforms

    passes = args.passes
    if args.quantize is not None or args.prune is not None or args.weights is not None:
        passes = with_weight_transforms(passes, args.quantize, args.prune, args.weights)
    if args.target is not None:
        options = {"precision": args.precision} if args.precision else {}
        if args.check_finite:
            options["check_finite"] = True
        text = _with_notes(lambda: emit_source(Path(args.input), args.target, passes, _dumper(args, passes),
                                               **options))
    else:
        module = to_ir(Path(args.input), passes=passes, dump=_dumper(args, passes))
        text = print_ir(module, generic=args.emit == "ir-generic", debug_info=args.debug_info)
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _with_notes(emit):
    """``emit()``, with each UncheckedProofWarning it raises printed as ``note: ...`` on stderr."""
    import warnings

    from geomir.compiler import UncheckedProofWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncheckedProofWarning)
        text = emit()
    for w in caught:
        if issubclass(w.category, UncheckedProofWarning):
            sys.stderr.write(f"note: {w.message}\n")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return text


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "internal compiler error")


if __name__ == "__main__":
    sys.exit(main())
