"""Property tests: random well-typed .geo programs compile, and their IR round-trips.

Programs come from ``geo_programs.well_typed_programs()`` (random manifolds, models
built from the builtin table, contracts and derive requests that fit). For each:

1. the frontend accepts it (a rejection means the generator or the type checker is
   wrong about the language: the falsifying program says which);
2. custom syntax: print -> parse -> print is a fixed point, the re-parsed module is
   structurally equivalent, and both verify;
3. the same in MLIR's generic form;
4. after ``inline-models,cse,dce`` the IR still verifies and round-trips, with no
   ``func.call`` left (and, on a fixed sample, the passes give the same result on the
   re-parsed IR);
5. compiling the same source twice gives identical IR (determinism), also across two
   processes with different string-hash seeds (on a fixed sample of seeds).

The breadth test runs the underlying deterministic generator over fixed seeds and
checks every builtin, manifold kind, contract and derivative request shows up.
``GEOMIR_SHRINK=1`` turns hypothesis' shrinking back on to minimise a failing program.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from xdsl.dialects import func

import geomir
from geomir.frontends.dsl import compile_source
from geomir.frontends.dsl.builtins import BUILTINS
from geomir.frontends.dsl.contracts import CONTRACT_RULES, GROUPS
from geomir.frontends.dsl.derive import DERIVATIVES
from geomir.frontends.dsl.types import MANIFOLD_KINDS, TORUS_UNITS
from geomir.pipeline import run_pipeline

from .geo_programs import generate_program, listing, program_features, well_typed_programs

from geomir.verify import verify_module as _verify_module

PASSES = ["insert-transport", "jet-expand", "jet-fuse", "inline-models", "cse", "dce"]

# Shrinking a failing program can take minutes (every attempt compiles and parses); it is
# off unless GEOMIR_SHRINK=1, and the unshrunk falsifying program is reported either way.
_PHASES = tuple(Phase) if os.environ.get("GEOMIR_SHRINK") == "1" else tuple(p for p in Phase if p is not Phase.shrink)

# 50 programs per property and run (hypothesis draws new ones every run); more with
# GEOMIR_PROPERTY_EXAMPLES=N
PROPERTY = settings(
    max_examples=int(os.environ.get("GEOMIR_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    phases=_PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _compile(source: str):
    """Compile a generated program; a rejection fails with the program and the diagnostic."""
    try:
        return compile_source(source, "generated.geo")
    except geomir.SourceError as err:
        raise AssertionError(
            f"the frontend rejects a generated program (is the generator or the type checker "
            f"wrong?)\n{err.render()}\n{listing(source)}"
        ) from None


def _verify(module) -> None:
    """The op verifiers and the whole-module checks that parse_ir and the pipeline run."""
    module.verify()
    _verify_module(module)


def _assert_round_trips(module, what: str) -> None:
    """Custom and generic syntax both print -> parse -> print to a fixed point."""
    _verify(module)
    text = geomir.print_ir(module)
    reparsed = geomir.parse_ir(text, f"{what}.mlir")  # parses and verifies
    _verify(reparsed)
    assert geomir.print_ir(reparsed) == text, f"{what}: printing the re-parsed IR changed it"
    assert reparsed.is_structurally_equivalent(module), f"{what}: re-parsed IR is not equivalent"
    assert module.is_structurally_equivalent(reparsed)

    generic = geomir.print_ir(module, generic=True)
    from_generic = geomir.parse_ir(generic, f"{what}.generic.mlir")
    _verify(from_generic)
    assert from_generic.is_structurally_equivalent(module), f"{what}: generic form does not parse back equivalent"
    assert geomir.print_ir(from_generic, generic=True) == generic, f"{what}: generic form is not a fixed point"
    assert geomir.print_ir(from_generic) == text, f"{what}: generic and custom forms disagree"


# ----------------------------------------------------------------------------------------
# 1 + 5. every generated program compiles, and compiles to the same IR every time
# ----------------------------------------------------------------------------------------


@PROPERTY
@given(well_typed_programs())
def test_generated_programs_compile_deterministically(source):
    module = _compile(source)
    _verify(module)
    names = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    declared = set(re.findall(r"^(?:@\S+\s+)*model\s+(\w+)", source, re.M))
    declared |= set(re.findall(r"^derive\s+(\w+)", source, re.M))
    assert names == declared, "one func.func per model and per derive request"
    # Determinism: a second compilation prints the same, in both syntaxes. (Across
    # processes, and for the passes: test_compilation_is_deterministic_across_processes.)
    again = _compile(source)
    assert geomir.print_ir(again) == geomir.print_ir(module)
    assert geomir.print_ir(again, generic=True) == geomir.print_ir(module, generic=True)


# ----------------------------------------------------------------------------------------
# 2 + 3. custom and generic syntax round-trip
# ----------------------------------------------------------------------------------------


@PROPERTY
@given(well_typed_programs())
def test_ir_round_trips_custom_syntax(source):
    module = _compile(source)
    _verify(module)
    text = geomir.print_ir(module)
    reparsed = geomir.parse_ir(text)
    _verify(reparsed)
    assert geomir.print_ir(reparsed) == text
    assert reparsed.is_structurally_equivalent(module)
    assert module.is_structurally_equivalent(reparsed)


@PROPERTY
@given(well_typed_programs())
def test_ir_round_trips_generic_syntax(source):
    module = _compile(source)
    generic = geomir.print_ir(module, generic=True)
    reparsed = geomir.parse_ir(generic)
    _verify(reparsed)
    assert reparsed.is_structurally_equivalent(module)
    assert geomir.print_ir(reparsed, generic=True) == generic
    assert geomir.print_ir(reparsed) == geomir.print_ir(module)


# ----------------------------------------------------------------------------------------
# 4. inline-models, cse, dce keep the IR valid and round-tripping
# ----------------------------------------------------------------------------------------


@PROPERTY
@given(well_typed_programs())
def test_passes_keep_ir_valid_and_round_tripping(source):
    optimized = geomir.to_ir(source, passes=PASSES)
    _assert_round_trips(optimized, "after inline-models,cse,dce")
    calls = [op for op in optimized.walk() if isinstance(op, func.CallOp)]
    assert not calls, "inline-models guarantees no func.call remains"


# ----------------------------------------------------------------------------------------
# The generator itself: deterministic, and broad
# ----------------------------------------------------------------------------------------

SEEDS = range(200)


@pytest.fixture(scope="module")
def seeded_programs():
    return [generate_program(random.Random(seed)).source for seed in SEEDS]


def test_generator_is_deterministic(seeded_programs):
    assert [generate_program(random.Random(seed)).source for seed in SEEDS[:20]] == seeded_programs[:20]


_DUMP_SCRIPT = """
import random, sys
sys.path.insert(0, sys.argv[1])
import geomir
from geo_programs import generate_program
for seed in range(int(sys.argv[2])):
    source = generate_program(random.Random(seed)).source
    print("=== SOURCE ===")
    print(source)
    print("=== IR ===")
    print(geomir.print_ir(geomir.to_ir(source, passes=[])))
    print(geomir.print_ir(geomir.to_ir(source, passes=sys.argv[3])))
"""

CROSS_PROCESS_SEEDS = 30


def test_compilation_is_deterministic_across_processes(seeded_programs):
    """The IR of the seeded programs (before and after the passes) does not depend on the
    process: string hashing (set/dict order) is randomized differently in each run."""
    here = str(Path(__file__).parent)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _DUMP_SCRIPT, here, str(CROSS_PROCESS_SEEDS), ",".join(PASSES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        for hash_seed in ("1", "2")
    ]
    outputs = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        outputs.append(out)
    here_too = "".join(
        f"=== SOURCE ===\n{source}\n=== IR ===\n"
        + geomir.print_ir(_compile(source)) + "\n" + geomir.print_ir(geomir.to_ir(source, passes=PASSES)) + "\n"
        for source in seeded_programs[:CROSS_PROCESS_SEEDS]
    )
    sources = [re.findall(r"=== SOURCE ===\n(.*?)\n=== IR ===", out, re.S) for out in (*outputs, here_too)]
    assert sources[0] == sources[1] == sources[2], "the generator itself depends on the process (hash order)"
    assert outputs[0] == outputs[1], "the IR differs between two processes (PYTHONHASHSEED 1 vs 2)"
    assert outputs[0] == here_too, "the IR differs between a subprocess and this process"


def test_passes_agree_on_frontend_and_parsed_ir(seeded_programs):
    """The passes give the same IR whether they start from the frontend's module or from
    its printed text parsed back (nothing depends on how the module was built)."""
    for seed, source in zip(SEEDS, seeded_programs[:CROSS_PROCESS_SEEDS]):
        direct = geomir.to_ir(source, passes=PASSES)
        from_text = run_pipeline(geomir.parse_ir(geomir.print_ir(_compile(source))), PASSES)
        assert geomir.print_ir(from_text) == geomir.print_ir(direct), f"seed {seed}"


def test_generator_covers_the_language(seeded_programs):
    feats: set[str] = set()
    calls_models = 0
    for source in seeded_programs:
        feats |= program_features(source)
        if re.search(r"(?<!model )\b[A-Z]\w*\(", source):
            calls_models += 1

    missing = sorted(set(BUILTINS) - feats)
    assert not missing, f"builtins never generated: {missing}"
    missing = sorted(k for k in MANIFOLD_KINDS if k not in feats)
    assert not missing, f"manifold kinds never declared: {missing}"
    missing = sorted(u for u in TORUS_UNITS if f"units:{u}" not in feats)
    assert not missing, f"torus units never used: {missing}"
    missing = sorted(f"@{c}" for c in CONTRACT_RULES if f"@{c}" not in feats)
    missing += sorted(f"group:{g}" for g in GROUPS if f"group:{g}" not in feats)
    missing += sorted(f"monotone:{d}" for d in ("increasing", "decreasing") if f"monotone:{d}" not in feats)
    assert not missing, f"contracts never generated: {missing}"
    missing = sorted(d for d in DERIVATIVES if d not in feats)
    assert not missing, f"derive requests never generated: {missing}"
    missing = sorted(f for f in ("dtype:f64", "dtype:f16", "dtype:bf16", "tangent", "bias=false") if f not in feats)
    assert not missing, f"never generated: {missing}"
    assert calls_models >= 20, f"only {calls_models} programs call a model from another"


def test_generated_programs_stay_small(seeded_programs):
    for source in seeded_programs:
        models = re.split(r"^(?:@.*\n)*model ", source, flags=re.M)[1:]
        assert len(models) <= 6
        for body in models:
            assert body.count("\n  let ") <= 10
