"""Differential fuzzing of the compiler over a range of program-generator seeds.

    python tools/fuzz_programs.py 7760 7800                  # jets vs autodiff, torch and JAX
    python tools/fuzz_programs.py 9700 9760 --check triton   # Triton (interpreter) vs torch
    python tools/fuzz_programs.py 0 2000 --only holonomy_angle --out findings.jsonl

Each seed gives one random well-typed program (tests/unit/geo_programs.py,
``generate_program(random.Random(seed))``, the generator the property tests draw from). The
program goes through the check the property tests make (tests/unit/program_checks.py):
``jets`` compiles it with Taylor-mode jets for PyTorch and JAX and compares every model and
derive request with the autodiff reference; ``triton`` runs the Triton target's kernels under
TRITON_INTERPRET=1 against the torch target. Unlike the tests, the fuzzer goes on after a
finding. Each finding is one JSON line (seed, kind, message, program) on stdout or in
``--out``; the summary goes to stderr. Exit status 1 if there was a finding.

Kinds: ``mismatch`` (the check's assertion: different numbers, non-finite where the
reference is finite, a shape), ``rejected`` (the compiler refused a program the generator
calls well-typed: a disagreement between the two type models), ``crash`` (any other
exception: a compiler or runtime bug). ``--show`` prints the programs of the seeds instead of
checking them (``python tools/fuzz_programs.py 9411 9412 --show > p.geo`` to reproduce one).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lo", type=int, help="first generator seed")
    ap.add_argument("hi", type=int, help="one past the last seed")
    ap.add_argument("--check", choices=("jets", "triton"), default="jets")
    ap.add_argument("--only", metavar="WORD", help="only programs whose source contains WORD (e.g. holonomy_angle)")
    ap.add_argument("--show", action="store_true", help="print the seeds' programs, check nothing")
    ap.add_argument("--out", type=Path, help="append the findings (JSON lines) here instead of stdout")
    args = ap.parse_args(argv)
    if args.check == "triton":
        os.environ["TRITON_INTERPRET"] = "1"  # before triton decorates the kernels
        os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    sys.path.insert(0, str(TESTS))
    import warnings

    from geomir.diagnostics import GeomirError
    from unit import program_checks
    from unit.geo_programs import generate_program

    warnings.simplefilter("ignore")  # fallback and overflow warnings: the check judges the numbers
    check = {"jets": program_checks.check_jets, "triton": program_checks.check_triton}[args.check]
    out = args.out.open("a") if args.out else sys.stdout
    counts = {"checked": 0, "skipped": 0, "mismatch": 0, "rejected": 0, "crash": 0}
    t0 = time.perf_counter()
    for seed in range(args.lo, args.hi):
        source = generate_program(random.Random(seed)).source
        if args.only and args.only not in source:
            counts["skipped"] += 1
            continue
        if args.show:
            print(f"// seed {seed}\n{source}")
            continue
        counts["checked"] += 1
        try:
            check(source)
            continue
        except AssertionError as e:
            kind, message = "mismatch", str(e).split("\n--- generated.geo")[0]
        except GeomirError as e:
            kind, message = "rejected", str(e)
        except Exception:  # noqa: BLE001 - a finding, not the fuzzer's failure
            kind, message = "crash", traceback.format_exc(limit=-6)
        counts[kind] += 1
        out.write(json.dumps({"seed": seed, "check": args.check, "kind": kind, "message": message,
                              "program": source}) + "\n")
        out.flush()
        print(f"seed {seed}: {kind}: {message.splitlines()[0] if message else ''}", file=sys.stderr)
    found = counts["mismatch"] + counts["rejected"] + counts["crash"]
    print(f"{args.check}: seeds {args.lo}..{args.hi - 1}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
