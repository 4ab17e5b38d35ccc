"""Train a small Poincaré-ball classifier compiled by geomir, with a Riemannian optimizer.

    python examples/train_hyperbolic.py --steps 300 --optimizer radam
    geomc examples/hyperbolic_classifier.geo --target=torch -o classifier_torch.py
    python examples/train_hyperbolic.py --compiled classifier_torch.py
    python examples/train_hyperbolic.py --save-weights trained.npz
    geomc examples/hyperbolic_classifier.geo --plot=holonomy --model Encoder --weights trained.npz -o holonomy.png

The data: four classes of points on the Poincaré disk, each a cloud around its own
geodesic ray from the origin (a depth-2 hierarchy: the closer to the boundary, the
deeper). The model (examples/hyperbolic_classifier.geo) is compiled to PyTorch; its
Möbius biases are points on the ball, updated by Riemannian SGD or Adam (gradient
rescaling, expmap retraction, parallel transport of momentum).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import torch

import geomir
from geomir.backends.torch import runtime
from geomir.backends.torch.optim import RiemannianAdam, RiemannianSGD
from geomir.diagnostics import UsageError

HERE = Path(__file__).resolve().parent


def make_data(n: int, seed: int, dtype=torch.float32):
    """(points on the disk, labels): class k lies along angle 2πk/4, at hyperbolic radius ≈ 1..3."""
    g = torch.Generator().manual_seed(seed)
    ball = runtime.PoincareBall(c=1.0)
    labels = torch.randint(0, 4, (n,), generator=g)
    angle = labels.to(torch.float64) * (2 * math.pi / 4) + 0.25 * torch.randn(n, generator=g, dtype=torch.float64)
    radius = 1.0 + 2.0 * torch.rand(n, generator=g, dtype=torch.float64)
    # A tangent vector at the origin of norm r/2 maps to hyperbolic distance r (c = 1).
    v = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1) * (radius / 2).unsqueeze(-1)
    return ball.expmap0(v).to(dtype), labels


def load(compiled_path: str | None):
    """The compiled model module: a file written by geomc, or compiled now by geomir.compile.
    A missing file, a file that is not a Python module, or a module without the torch
    ``ClassifierModule`` raises :class:`UsageError` saying how to write the right one."""
    if compiled_path is None:
        return geomir.compile(HERE / "hyperbolic_classifier.geo", target="torch")
    path = Path(compiled_path)
    how = "write it with: geomc examples/hyperbolic_classifier.geo --target=torch -o classifier_torch.py"
    if not path.is_file():
        raise UsageError(f"--compiled {compiled_path}: no such file ({how})")
    spec = importlib.util.spec_from_file_location("classifier_torch", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--compiled {compiled_path}: not a Python module ({how})")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any failure of a foreign file is a usage error here
        raise UsageError(f"--compiled {compiled_path}: importing it failed: {type(err).__name__}: {err} ({how})") from err
    if not isinstance(getattr(module, "ClassifierModule", None), type):
        raise UsageError(f"--compiled {compiled_path}: the module has no PyTorch ClassifierModule; it was not compiled "
                         f"from examples/hyperbolic_classifier.geo with --target=torch ({how})")
    return module


def train(steps: int = 300, optimizer: str = "radam", lr: float = 0.05, seed: int = 0, progress: bool = True,
          compiled_path: str | None = None, save_weights: str | None = None):
    """Train; returns (losses, one per step; final training accuracy). ``save_weights``:
    write the trained parameters there (.npz by IR name, what geomc --weights reads)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UsageError(f"steps must be a whole number >= 1, found {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise UsageError(f"lr must be a finite number > 0, found {lr!r}")
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, found {optimizer!r}")
    if save_weights is not None and not Path(save_weights).resolve().parent.is_dir():
        raise UsageError(f"--save-weights {save_weights}: the folder {Path(save_weights).resolve().parent} does not exist")
    compiled = load(compiled_path)
    net = compiled.ClassifierModule(seed=seed)
    x, y = make_data(512, seed)
    opt_cls = OPTIMIZERS[optimizer]
    kwargs = {"momentum": 0.9} if optimizer == "rsgd" else {}
    opt = opt_cls(net.parameters(), lr=lr, **kwargs)
    losses = []
    bar = _progress(progress)
    with bar:
        task = bar.add_task(f"training ({optimizer})", total=steps)
        for step in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step + 1}: the loss is {loss.item()} (lower --lr)")
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.update(task, advance=1, description=f"training ({optimizer}) loss {losses[-1]:.4f}")
    accuracy = (net(x).argmax(-1) == y).float().mean().item()
    if save_weights is not None:
        from geomir.weights_file import save_weights as save

        save(net, save_weights)
    return losses, accuracy


OPTIMIZERS = {"radam": RiemannianAdam, "rsgd": RiemannianSGD}


def _steps(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, found {value}")
    return value


def _lr(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, found {text}")
    return value


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=_steps, default=300)
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="radam")
    p.add_argument("--lr", type=_lr, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compiled", help="a module written by geomc --target=torch (default: compile now)")
    p.add_argument("--save-weights", metavar="FILE.npz", help="write the trained parameters (for geomc --weights)")
    args = p.parse_args(argv)
    try:
        losses, accuracy = train(args.steps, args.optimizer, args.lr, args.seed, compiled_path=args.compiled,
                                 save_weights=args.save_weights)
    except UsageError as err:
        p.error(str(err))  # exit status 2
    except FloatingPointError as err:  # a NaN/inf loss, or the optimizer's NonFiniteStepError
        print(f"{p.prog}: training diverged: {err}", file=sys.stderr)
        return 1
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} after {args.steps} steps; training accuracy {accuracy:.1%}")
    return 0 if losses[-1] < losses[0] else 1


if __name__ == "__main__":
    sys.exit(main())
