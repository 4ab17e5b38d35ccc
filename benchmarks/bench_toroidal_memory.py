"""Recall when many histories end at nearly the same point: toroidal memory against a flat
key-value memory of the same dimension and capacity.

Each stored item is a trajectory of ``--steps`` points on T^m, like the state of a
recurrent model: a random walk that starts within ``--start-spread`` radians of a common
initial state, winds a random number of turns w_i in {-W..W} around each axis, and ends
within ``--end-spread`` radians of one common point. Its value is its id. A query is the same
trajectory with every angle moved by up to ``--noise`` radians. The toroidal memory
(geomir.memory.ToroidalMemory) addresses by (end position, winding vector); the flat memory
keeps the end position, the recurrent state a flat model would have, as an m-dimensional
key and answers with the cosine nearest neighbour. Recall is the fraction of queries
answered with their own item, for growing numbers of stored items (the load).

    python benchmarks/bench_toroidal_memory.py                      # loads 16 .. 4096, m = 8
    python benchmarks/bench_toroidal_memory.py --loads 16 64 --quick

Writes JSON (default benchmarks/results/bench_toroidal_memory.json) and a PNG plot of
recall against load next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geomir import topology  # noqa: E402
from geomir.memory import ToroidalMemory  # noqa: E402

TAU = 2 * math.pi


def make_items(n: int, dims: int, steps: int, max_turns: int, end_spread: float, gen: torch.Generator,
               start_spread: float = 0.01):
    """(trajectories (n, steps, dims), winding vectors (n, dims)); module docstring. A
    ``start_spread`` of π or more makes the starts uniform on the torus."""
    w = torch.randint(-max_turns, max_turns + 1, (n, dims), generator=gen)
    end = 1.0 + (torch.rand(n, dims, generator=gen, dtype=torch.float64) * 2 - 1) * end_spread
    start = (torch.rand(n, dims, generator=gen, dtype=torch.float64) * 2 - 1) * min(start_spread, math.pi)
    gap = end - start
    gap = gap - TAU * torch.floor(gap / TAU + 0.5)
    total = w * TAU + gap  # the lifted displacement: round(total / 2π) = w
    noise = torch.randn(n, steps - 1, dims, generator=gen, dtype=torch.float64) * 0.2
    noise -= noise.mean(1, keepdim=True)
    increments = total[:, None, :] / (steps - 1) + noise
    lifted = torch.cat([start[:, None, :], start[:, None, :] + increments.cumsum(1)], 1)
    return torch.remainder(lifted, TAU), w


class FlatMemory:
    """Key-value memory in R^m: keys are the trajectories' end states, cosine nearest neighbour."""

    def __init__(self, dims: int, capacity: int, device: torch.device):
        self.keys = torch.zeros(capacity, dims, dtype=torch.float32, device=device)
        self.values = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.n = 0

    def write(self, trajectories, values):
        k = trajectories[:, -1, :].float()
        b = k.shape[0]
        self.keys[self.n:self.n + b] = torch.nn.functional.normalize(k, dim=-1)
        self.values[self.n:self.n + b] = values
        self.n += b

    def read(self, trajectories):
        q = torch.nn.functional.normalize(trajectories[:, -1, :].float(), dim=-1)
        return self.values[(q @ self.keys[: self.n].T).argmax(-1)]


def run_load(load: int, args, device: torch.device, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    items, w = make_items(load, args.dims, args.steps, args.max_turns, args.end_spread, gen, args.start_spread)
    queries = items + (torch.rand(items.shape, generator=gen, dtype=torch.float64) * 2 - 1) * args.noise
    items, queries = items.to(device, torch.float32), queries.to(device, torch.float32)
    ids = torch.arange(load, device=device)

    toroidal = ToroidalMemory(args.dims, load, device=device)
    t0 = time.perf_counter()
    toroidal.write(items, ids)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = toroidal.read(queries)
    t_read = time.perf_counter() - t0
    toroidal_recall = float(((got.value == ids) & got.found).float().mean())

    flat = FlatMemory(args.dims, load, device)
    t0 = time.perf_counter()
    flat.write(items, ids)
    flat_recall = float((flat.read(queries) == ids).float().mean())
    t_flat = time.perf_counter() - t0

    stats = toroidal.stats()
    margins = topology.winding(queries).margin
    return {
        "load": load,
        "toroidal_recall": toroidal_recall,
        "flat_recall": flat_recall,
        "chance": 1.0 / load,
        "toroidal_found": float(got.found.float().mean()),
        "queries_that_changed_class": int((topology.winding(queries).winding != w.to(device)).any(1).sum()),
        "winding_classes": stats.classes,
        "items_sharing_a_class": load - len(set(map(tuple, w.tolist()))),
        "collision_rate": stats.collision_rate,
        "occupancy": stats.occupancy,
        "query_margin_min": float(margins.min()),
        "query_margin_median": float(margins.median()),
        "queries_below_noise": int((margins <= args.noise).sum()),
        "toroidal_write_s": t_write,
        "toroidal_read_s": t_read,
        "flat_write_and_read_s": t_flat,
    }


def machine(device: torch.device) -> dict:
    info = {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "device": str(device), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def plot(runs: list[dict], path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = [r["load"] for r in runs]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(loads, [r["toroidal_recall"] for r in runs], "o-", label="toroidal memory (position, winding)")
    ax.plot(loads, [r["flat_recall"] for r in runs], "s-", label=f"flat memory R^{args.dims} (cosine)")
    ax.plot(loads, [r["chance"] for r in runs], "k:", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("stored items (load)")
    ax.set_ylabel("recall")
    ax.set_title(f"T^{args.dims}, {args.steps} steps, ends within {args.end_spread} rad, noise {args.noise} rad")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loads", type=int, nargs="+", default=[16, 64, 256, 1024, 4096])
    p.add_argument("--dims", type=int, default=8, help="torus dimension m (default 8)")
    p.add_argument("--steps", type=int, default=32, help="points per trajectory (default 32)")
    p.add_argument("--max-turns", type=int, default=3, help="windings drawn from -W..W per axis (default 3)")
    p.add_argument("--end-spread", type=float, default=0.002, help="ends lie within this many radians of one point")
    p.add_argument("--start-spread", type=float, default=0.01,
                   help="starts lie within this many radians of the initial state 0 (π: uniform starts)")
    p.add_argument("--noise", type=float, default=0.01, help="query noise per angle, radians (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_toroidal_memory.json")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    runs = []
    for i, load in enumerate(args.loads):
        r = run_load(load, args, device, args.seed + i)
        runs.append(r)
        if not args.quiet:
            print(f"load {load:6d}: toroidal {r['toroidal_recall']:.4f}  flat {r['flat_recall']:.4f}  "
                  f"chance {r['chance']:.4f}  classes shared by {r['items_sharing_a_class']} items  "
                  f"collisions {r['collision_rate']:.4f}  read {r['toroidal_read_s'] * 1e3:.1f} ms")
    near_chance = [r for r in runs if r["flat_recall"] <= 5 * r["chance"]]
    result = {
        "benchmark": "toroidal_memory_recall",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine(device),
        "runs": runs,
        "goal": "toroidal recall >= 0.99 where the flat memory is near chance (recall <= 5 x chance)",
        "goal_met": bool(near_chance) and all(r["toroidal_recall"] >= 0.99 for r in near_chance),
        "loads_where_flat_is_near_chance": [r["load"] for r in near_chance],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_plot:
        plot(runs, args.out.with_suffix(".png"), args)
    if not args.quiet:
        print(f"goal met: {result['goal_met']} (flat near chance at loads {result['loads_where_flat_is_near_chance']})")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
