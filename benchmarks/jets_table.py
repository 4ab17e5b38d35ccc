"""The Markdown tables of benchmarks/README.md from bench_jets.py JSON files: one row per
timed method, sorted by median within each task, with TFLOP/s and the share of the fp32
peak, then the goals. Rows of a second file (e.g. a run with CUDA-graph rows) are marked †.

    python benchmarks/jets_table.py results/bench_jets-cuda-A-H100.json
    python benchmarks/jets_table.py run-A.json --extra run-graphs.json --extra-match graph --size A
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TASKS = ("forward", "d2", "d4", "lap")


def _runs(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return data["runs"] if "runs" in data else [data]


def _run(path: Path, size: str | None) -> dict:
    runs = _runs(path)
    chosen = [r for r in runs if size is None or r["settings"]["size"] == size]
    if not chosen:
        raise SystemExit(f"jets_table: {path} has no run of size {size!r} "
                         f"(it has {', '.join(r['settings']['size'] for r in runs)})")
    return chosen[0]


def _rows(run: dict, mark: str = "", match: str | None = None) -> list[tuple]:
    out = []
    for e in run["methods"].values():
        if match is not None and match not in e["method"]:
            continue
        if e.get("status") == "ok" and e.get("median_ms"):
            share = e.get("share_of_fp32_peak")
            out.append((e["task"], e["median_ms"], f"{e['backend']}: {e['method']}{mark}",
                        e.get("tflops_per_s"), share))
    return out


def markdown(run: dict, extra: dict | None = None, extra_match: str | None = None) -> str:
    """The methods table and the goals of ``run`` (and the † rows of ``extra``: those whose
    method name contains ``extra_match``, or all)."""
    rows = _rows(run) + (_rows(extra, " †", extra_match) if extra else [])
    lines = ["| task | method | median ms | TFLOP/s | share of fp32 peak |", "|---|---|---|---|---|"]
    for task, ms, label, tflops, share in sorted(rows, key=lambda r: (TASKS.index(r[0]), r[1])):
        lines.append(f"| {task} | {label} | {ms:.3f} | {'' if tflops is None else f'{tflops:.1f}'} | "
                     f"{'' if share is None else f'{100 * share:.0f}%'} |")
    if run.get("goals"):
        lines += ["", "| goal | ratio | target | met |", "|---|---|---|---|"]
        for g in run["goals"]:
            ratio = "n/a" if g["ratio"] is None else f"{g['ratio']:.2f}"
            met = "n/a" if g["passed"] is None else ("yes" if g["passed"] else "no")
            lines.append(f"| {g['goal']} | {ratio} | {g['op']} {g['target']} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path)
    ap.add_argument("--extra", type=Path, help="a second run's JSON: its rows are marked †")
    ap.add_argument("--extra-match", help="only the --extra rows whose method contains this (e.g. graph)")
    ap.add_argument("--size", help="the setting to show when a file holds several (A, B, ...)")
    args = ap.parse_args(argv)
    extra = _run(args.extra, args.size) if args.extra else None
    sys.stdout.write(markdown(_run(args.json, args.size), extra, args.extra_match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
