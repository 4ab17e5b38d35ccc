"""Reconstruction of WordNet hierarchies by Poincaré, Lorentz and Euclidean embeddings
(geomir.representations), against Nickel & Kiela's published numbers.

    python benchmarks/bench_hierarchy.py                         # mammals, d = 5 and 10, all three spaces
    python benchmarks/bench_hierarchy.py --data nouns --dims 10 --manifolds poincare --epochs 50 --device cuda
    python benchmarks/bench_hierarchy.py --data tree:6:4 --epochs 20 --quick
    python benchmarks/bench_hierarchy.py --manifolds poincare --dims 5 --engines torch numba   # engines side by side

Every run trains from scratch with the given settings, then evaluates mean rank and MAP
over the whole closure (or a random sample of source nodes with --eval-sample). It writes
JSON (default benchmarks/results/bench_hierarchy-<data>.json) with the machine, the
settings, and for every (space, dim): MAP, mean rank, training and evaluation seconds, and
the loss per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geomir.representations.cli import epoch_list, load_data  # noqa: E402
from geomir.representations.train import TrainConfig, train  # noqa: E402

# Nickel & Kiela 2017, Table 1 (WordNet nouns, reconstruction): (mean rank, MAP).
PUBLISHED = {
    ("nouns", "poincare", 5): (4.9, 0.823), ("nouns", "poincare", 10): (4.02, 0.851),
    ("nouns", "euclidean", 10): (3311.1, 0.059),
}
GOALS = {("mammals", "poincare", 5): "MAP >= 0.95 and mean rank <= 1.3",
         ("nouns", "poincare", 10): "MAP > 0.851"}


def machine(device: str) -> dict:
    info = {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "device": device, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def goal_met(key, rec) -> bool | None:
    if key == ("mammals", "poincare", 5):
        return rec["map"] >= 0.95 and rec["mean_rank"] <= 1.3
    if key == ("nouns", "poincare", 10):
        return rec["map"] > 0.851
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="mammals", help="mammals, nouns, tree:DEPTH:BRANCHING or an edge list")
    p.add_argument("--manifolds", nargs="+", default=["poincare", "lorentz", "euclidean"])
    p.add_argument("--dims", nargs="+", type=int, default=[5, 10])
    p.add_argument("--epochs", type=int, default=600)
    p.add_argument("--lr", type=float, default=1.5)
    p.add_argument("--optimizer", default="rsgd", choices=["rsgd", "radagrad", "radam"])
    p.add_argument("--adagrad-init", type=float, default=0.0,
                   help="radagrad: every point's starting accumulator (caps its rate at lr / sqrt(this))")
    p.add_argument("--adagrad-restart", type=int, default=0,
                   help="radagrad: restart the accumulators every N epochs after burn-in (0: only at its end)")
    p.add_argument("--hard-negatives", type=int, default=0,
                   help="of the negatives, this many (after burn-in) among each source's mined intruders")
    p.add_argument("--mine-every", type=int, default=2, help="mine the intruders again every N epochs")
    p.add_argument("--engines", nargs="+", default=["auto"], choices=["auto", "torch", "numba"],
                   help="trainer engines to run, each on every (space, dim) (default auto: numba on CPU if installed)")
    p.add_argument("--negatives", type=int, default=50)
    p.add_argument("--burnin", type=int, default=20)
    p.add_argument("--lr-milestones", type=epoch_list, default=(),
                   help="comma-separated epochs where lr is multiplied by --lr-gamma")
    p.add_argument("--lr-gamma", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: small steps)")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval-sample", type=int, default=None)
    p.add_argument("--checkpoint-dir", type=Path,
                   help="write each run's checkpoint here every 10 epochs")
    p.add_argument("--warm-start", type=Path, metavar="PATH",
                   help="start every run from the points of this saved embedding or checkpoint (its time is not counted)")
    p.add_argument("--resume", action="store_true",
                   help="continue each run from its checkpoint in --checkpoint-dir (where there is one) up to --epochs")
    p.add_argument("--out", type=Path)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = load_data(args.data)
    load_s = time.perf_counter() - t0
    label = args.data if args.data in ("mammals", "nouns") or args.data.startswith("tree:") else Path(args.data).stem
    runs = []
    for manifold, dim, engine in ((m, d, e) for m in args.manifolds for d in args.dims for e in args.engines):
        lr = args.lr
        config = TrainConfig(manifold=manifold, dim=dim, epochs=args.epochs, lr=lr, optimizer=args.optimizer,
                             negatives=args.negatives, burnin=min(args.burnin, args.epochs),
                             batch_size=args.batch_size, dtype=args.dtype, seed=args.seed, engine=engine,
                             lr_milestones=args.lr_milestones, lr_gamma=args.lr_gamma, adagrad_init=args.adagrad_init,
                             adagrad_restart=args.adagrad_restart, hard_negatives=args.hard_negatives,
                             mine_every=args.mine_every)
        if args.checkpoint_dir:
            args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            config.checkpoint = str(args.checkpoint_dir / f"{label.replace(':', '_')}-{manifold}-d{dim}-{engine}.ckpt")
        resume = config.checkpoint if args.resume and config.checkpoint and Path(config.checkpoint).exists() else None
        t1 = time.perf_counter()
        emb = train(data, config, progress=not args.quiet, device=args.device, resume=resume,
                    warm_start=None if resume else args.warm_start)
        # every epoch's own time, those before a resume included
        train_s = sum(h["seconds"] for h in emb.history) if resume else time.perf_counter() - t1
        t2 = time.perf_counter()
        rec = emb.evaluate(data, sample=args.eval_sample)
        row = {"manifold": manifold, "dim": dim, "engine": emb.history[-1]["engine"], "map": rec.map,
               "mean_rank": rec.mean_rank, "seconds_per_epoch": train_s / max(1, len(emb.history)),
               "train_seconds": train_s, "eval_seconds": time.perf_counter() - t2, "lr": lr,
               "final_loss": emb.history[-1]["loss"], "loss_per_epoch": [h["loss"] for h in emb.history]}
        key = (label, manifold, dim)
        if key in PUBLISHED:
            row["published_mean_rank"], row["published_map"] = PUBLISHED[key]
        if key in GOALS:
            row["goal"], row["goal_met"] = GOALS[key], goal_met(key, row)
        runs.append(row)
        if not args.quiet:
            print(f"{label} {manifold:9s} d={dim:<3d} {row['engine']:5s} MAP {rec.map:.4f}  "
                  f"mean rank {rec.mean_rank:.3f}  train {train_s:.1f} s" + (f"  goal met: {row['goal_met']}" if "goal" in row else ""))
    result = {"benchmark": "hierarchy_reconstruction", "data": label, "nodes": data.num_nodes,
              "edges": data.num_edges, "load_seconds": load_s, "machine": machine(args.device),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "runs": runs}
    out = args.out or ROOT / "benchmarks" / "results" / f"bench_hierarchy-{label.replace(':', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
