"""``python -m geomir.representations``: train and evaluate hierarchy embeddings.

    python -m geomir.representations train --data mammals --manifold poincare --dim 5 --out mammals.pt
    python -m geomir.representations train --data edges.tsv --manifold lorentz --dim 10 --checkpoint run.ckpt
    python -m geomir.representations train ... --resume run.ckpt            # continue a stopped run
    torchrun --nproc-per-node 2 -m geomir.representations train ... --distributed
    python -m geomir.representations eval mammals.pt --data mammals

``--data``: ``mammals`` or ``nouns`` (WordNet 3.0 from --wordnet, default
/usr/share/wordnet: ``apt-get install wordnet-base``), ``tree:DEPTH:BRANCHING`` (a
generated tree), or a TSV/CSV edge list (child, parent). Exit codes: 0 done, 1 an error in
the data or the run, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields

from geomir.diagnostics import UsageError, add_debug_option, cli_main, require_installed



def load_data(spec: str, wordnet: str | None = None):
    """A Hierarchy from a --data spec (module docstring)."""
    from . import hierarchy as h
    from . import wordnet as wn

    where = wordnet or "/usr/share/wordnet"
    if spec == "mammals":
        return wn.mammal_closure(where)
    if spec == "nouns":
        return wn.noun_closure(where)
    if spec.startswith("tree:"):
        try:
            _, depth, branching = spec.split(":")
            return h.generated_tree(int(depth), int(branching))
        except ValueError:
            raise UsageError(f"--data {spec}: expected tree:DEPTH:BRANCHING, e.g. tree:5:4") from None
    if not os.path.exists(spec):
        raise UsageError(f"--data {spec}: no such file (or use mammals, nouns, tree:DEPTH:BRANCHING)")
    return h.Hierarchy.read_tsv(spec)


def _parser() -> argparse.ArgumentParser:
    from .train import TrainConfig

    p = argparse.ArgumentParser(prog="python -m geomir.representations",
                                description="Hierarchy embeddings on the Poincaré ball or the Lorentz model.")
    add_debug_option(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an embedding")
    train.add_argument("--data", required=True, help="mammals, nouns, tree:DEPTH:BRANCHING or an edge-list file")
    train.add_argument("--wordnet", help="the WordNet 3.0 dict directory (default /usr/share/wordnet)")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name in ("checkpoint",):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = type(getattr(defaults, f.name))
        if kind is tuple:
            train.add_argument(flag, type=epoch_list, default=getattr(defaults, f.name), metavar="E1,E2,...",
                               help="comma-separated epochs (default none)")
            continue
        train.add_argument(flag, type=kind if kind in (int, float) else str, default=getattr(defaults, f.name),
                           help=f"(default {getattr(defaults, f.name)})")
    train.add_argument("--checkpoint", help="write a checkpoint here every --checkpoint-every epochs")
    train.add_argument("--resume", help="continue from this checkpoint")
    train.add_argument("--warm-start", metavar="PATH",
                       help="start from the points of this saved embedding or checkpoint (same space; a new run)")
    train.add_argument("--stop-after", type=int, metavar="N",
                       help="stop after N epochs of this call (a time-boxed part of a long run; with --checkpoint, "
                            "continue later with --resume)")
    train.add_argument("--out", help="save the embedding here (.pt)")
    train.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    train.add_argument("--distributed", action="store_true",
                       help="data parallel over the processes torchrun started (gloo on CPU, NCCL on CUDA)")
    train.add_argument("--no-eval", action="store_true", help="skip the final reconstruction evaluation")
    train.add_argument("--eval-sample", type=int, help="evaluate on this many random source nodes")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--json", help="write the final metrics and timings to this JSON file")
    ev = sub.add_parser("eval", help="reconstruction mean rank and MAP of a saved embedding")
    ev.add_argument("embedding")
    ev.add_argument("--data", required=True)
    ev.add_argument("--wordnet")
    ev.add_argument("--sample", type=int)
    for command in sub.choices.values():  # `... train --debug` too
        add_debug_option(command)
    return p


def epoch_list(text: str) -> tuple[int, ...]:
    """argparse type: "100,150" -> (100, 150)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs such as 100,150, found {text!r}") from None


def _check_counts(args) -> None:
    """The count options must be positive: checked before any data is read or any training
    runs (--eval-sample 0 used to fail only after the whole run, with exit 1)."""
    counts = (("--sample", "sample"),) if args.command == "eval" else (("--eval-sample", "eval_sample"),
                                                                      ("--stop-after", "stop_after"))
    for flag, name in counts:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be positive, found {value}")


def run(argv: list[str] | None = None) -> int:
    require_installed("torch", "python -m geomir.representations needs")  # the trainers and the Embedding are torch's
    args = _parser().parse_args(argv)
    from .train import Embedding, TrainConfig, train

    _check_counts(args)
    if args.command == "eval":
        emb = Embedding.load(args.embedding)
        data = load_data(args.data, args.wordnet)
        if list(data.names) != list(emb.names):
            raise UsageError(f"{args.embedding} embeds {len(emb.names)} nodes, not the {data.num_nodes} of --data "
                             f"{args.data} (in the same order)")
        rec = emb.evaluate(data, sample=args.sample)
        print(json.dumps({"mean_rank": rec.mean_rank, "map": rec.map}))
        return 0
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    device = args.device
    if args.distributed:
        import torch

        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    try:
        data = load_data(args.data, args.wordnet)
        import time

        t0 = time.perf_counter()
        # refuse unwritable outputs before the run, not after it
        from .train import _check_writable

        for flag, path in (("--out", args.out), ("--json", args.json)):
            if path:
                _check_writable(path, f"{flag} file")
        emb = train(data, config, progress=not args.quiet, resume=args.resume, device=device,
                    stop_after=args.stop_after, warm_start=args.warm_start)
        seconds = time.perf_counter() - t0
        rank = _rank()
        if rank == 0:
            result = {"data": args.data, "nodes": data.num_nodes, "edges": data.num_edges,
                      "epochs_done": emb.history[-1]["epoch"] if emb.history else 0,
                      "config": {f.name: getattr(config, f.name) for f in fields(TrainConfig)},
                      "train_seconds": seconds, "world_size": _world(), "warm_start": args.warm_start}
            if args.out:
                emb.save(args.out)
            if not args.no_eval:
                t1 = time.perf_counter()
                rec = emb.evaluate(data, sample=args.eval_sample)
                result.update(mean_rank=rec.mean_rank, map=rec.map, eval_seconds=time.perf_counter() - t1)
            print(json.dumps(result))
            if args.json:
                try:
                    with open(args.json, "w") as f:
                        json.dump(result, f, indent=2)
                except OSError as err:
                    raise UsageError(f"cannot write --json {args.json}: {err.strerror or err}") from None
        if args.distributed:
            # the ranks leave together after rank 0 has evaluated and written: no rank tears
            # down its gloo connections while a peer still holds them (on an error a rank
            # leaves at once, and torchrun stops the others)
            import torch

            torch.distributed.barrier()
    finally:
        if args.distributed:
            import torch

            torch.distributed.destroy_process_group()
    return 0


def _rank() -> int:
    import torch

    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _world() -> int:
    import torch

    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv)