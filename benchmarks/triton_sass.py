"""What geomir's Triton kernels compile to, without a GPU (issue 6): each autotuning
candidate of the jet-layer kernel (K = 0, 2, 4) and of the Laplacian kernel, compiled for
sm_90 by ``triton.compile`` at the benchmark's hidden width (n = 512, so EVEN_K), with

* the registers and spill bytes ptxas reports, and the shared memory;
* for each innermost loop of the SASS (``cuobjdump -sass``), its instruction count, how
  many are FFMA (fp32 FMA) or tensor-core MMAs, and its local-memory loads and stores
  (register spills on the loop's path). The hot loop is the last loop with math: the jet
  kernel's only n-loop, the Laplacian kernel's direction loop (it runs D / DIRS times per
  program; the f0/f2 loop once).

The hot loop's FFMA share bounds the share of the fp32 FMA peak an IEEE kernel can issue
(every other instruction takes an issue slot), and local loads in it wait on memory. These
are static facts, not timings: ``bench_jets.py --device cuda`` and ``triton_profile.py``
measure on a GPU. The tools (ptxas, cuobjdump) ship in the triton wheel.

    python benchmarks/triton_sass.py --out benchmarks/results/triton_sass.json
    python benchmarks/triton_sass.py --kernels laplacian --precision ieee tf32x3
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # a kernel decorated under the interpreter cannot compile
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

MATH = ("FFMA", "HMMA", "HGMMA")
WIDTH = 512


def _tools() -> tuple[str, str]:
    """(ptxas, cuobjdump) of the triton wheel."""
    from triton.backends.nvidia.compiler import get_ptxas

    ptxas = get_ptxas(90).path
    return ptxas, str(Path(ptxas).with_name("cuobjdump"))


def _sass(cubin: bytes, cuobjdump: str) -> list[tuple[int, str]]:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([cuobjdump, "-sass", f.name], capture_output=True, text=True,
                              check=True).stdout
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*/\*([0-9a-f]+)\*/\s+(.*?)\s*;", line)
        if m:
            out.append((int(m.group(1), 16), m.group(2)))
    return out


def _opcode(instruction: str) -> str:
    return re.sub(r"^@!?U?P\w+\s+", "", instruction).split()[0].split(".")[0]


def loops(sass: list[tuple[int, str]]) -> list[dict]:
    """The innermost loops (backward branches containing no other) and their mix."""
    spans = []
    for addr, text in sass:
        m = re.search(r"\bBRA (0x[0-9a-f]+)", text)
        if m and int(m.group(1), 16) < addr:
            spans.append((int(m.group(1), 16), addr))
    inner = [s for s in spans if not any(o != s and s[0] <= o[0] and o[1] <= s[1] for o in spans)]
    out = []
    for start, end in sorted(inner):
        ops = collections.Counter(_opcode(t) for a, t in sass if start <= a <= end)
        n = sum(ops.values())
        out.append({"start": hex(start), "instructions": n,
                    **{op.lower(): ops[op] for op in (*MATH, "LDS", "LDSM", "LDL", "STL", "LDGSTS")},
                    "ffma_share": round(ops["FFMA"] / n, 3)})
    return out


def _ptxas_usage(ptx: str, ptxas: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        err = subprocess.run([ptxas, "-v", "-arch=sm_90a", str(src), "-o", str(Path(tmp) / "k.cubin")],
                             capture_output=True, text=True, check=True).stderr
    regs = re.search(r"Used (\d+) registers", err)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", err)
    return {"registers": int(regs.group(1)) if regs else None,
            "spill_store_bytes": int(spills.group(1)) if spills else None,
            "spill_load_bytes": int(spills.group(2)) if spills else None}


def compile_row(kind: str, config, precision: str, K: int = 0) -> dict:
    """Compile one specialization; its static report."""
    from geomir.backends.triton import layer
    from geomir.backends.triton.ttir import compile_kernel

    blocks = dict(config.kwargs)
    even_k = layer._even_k({"n": WIDTH, **blocks})
    if kind == "jet":
        spec = layer.jet_layer_spec(K, "tanh", True, precision, blocks=blocks, even_k=even_k)
    else:
        spec = layer.laplacian_layer_spec("tanh", True, precision, blocks=blocks, even_k=even_k)
    ptxas, cuobjdump = _tools()
    t0 = time.perf_counter()
    compiled = compile_kernel(*spec, options={"num_warps": config.num_warps, "num_stages": config.num_stages})
    row = {"kernel": kind, "K": K if kind == "jet" else None, "precision": precision,
           "config": {**blocks, "num_warps": config.num_warps, "num_stages": config.num_stages},
           "compile_s": round(time.perf_counter() - t0, 2), "shared_bytes": compiled.metadata.shared,
           **_ptxas_usage(compiled.asm["ptx"], ptxas)}
    row["loops"] = loops(_sass(compiled.asm["cubin"], cuobjdump))
    with_math = [lp for lp in row["loops"] if any(lp[op.lower()] for op in MATH)]
    row["hot_loop"] = with_math[-1] if with_math else None
    return row


def candidates(kind: str, K: int = 0) -> list:
    """The autotuner's candidates for this kernel after its register prune."""
    from geomir.backends.triton import layer

    if kind == "jet":
        return layer._prune_jet(layer.CONFIGS, {}, K=K)
    return layer._prune_laplacian(layer.LAPLACIAN_CONFIGS, {})


def _line(row: dict) -> str:
    c, hot = row["config"], row["hot_loop"] or {}
    spill = row["spill_store_bytes"] if row["spill_store_bytes"] is not None else -1
    label = f"{row['kernel']}{'' if row['K'] is None else ' K=%d' % row['K']} {row['precision']}"
    tile = f"{c['BLOCK_N']}x{c['BLOCK_M']}x{c['BLOCK_K']}" + (f" dirs={c['DIRS']}" if "DIRS" in c else "")
    return (f"{label:22s} {tile:18s} w{c['num_warps']} s{c['num_stages']}  regs {row['registers']}"
            f"  spill {spill:5d} B  hot loop {hot.get('instructions', 0):5d} instr"
            f"  FFMA {100 * hot.get('ffma_share', 0):5.1f}%  MMA {hot.get('hgmma', 0) + hot.get('hmma', 0):4d}"
            f"  LDL {hot.get('ldl', 0):4d}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", nargs="+", choices=["jet", "laplacian"], default=["jet", "laplacian"])
    ap.add_argument("--orders", nargs="+", type=int, default=[0, 2, 4], help="jet orders K")
    ap.add_argument("--precision", nargs="+", default=["ieee"], help="ieee, tf32, tf32x3, bf16")
    ap.add_argument("--tiles", nargs="+", help="only these tiles, BLOCK_NxBLOCK_M (e.g. 64x64)")
    ap.add_argument("--warps", nargs="+", type=int, help="only configs with these num_warps")
    ap.add_argument("--limit", type=int, default=None, help="at most this many configs per kernel")
    ap.add_argument("--out", type=Path, default=Path("triton_sass.json"))
    args = ap.parse_args(argv)

    import triton

    rows = []
    for precision in args.precision:
        for kind in args.kernels:
            for K in (args.orders if kind == "jet" else [0]):
                chosen = [c for c in candidates(kind, K)
                          if (args.tiles is None or f"{c.kwargs['BLOCK_N']}x{c.kwargs['BLOCK_M']}" in args.tiles)
                          and (args.warps is None or c.num_warps in args.warps)]
                for config in chosen[:args.limit]:
                    row = compile_row(kind, config, precision, K)
                    rows.append(row)
                    print(_line(row), flush=True)
    result = {"target": "sm_90 (compiled without a GPU)", "width": WIDTH, "triton": triton.__version__,
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
