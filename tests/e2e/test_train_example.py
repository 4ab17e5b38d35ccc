"""examples/train_hyperbolic.py: the loss falls by a clear margin, quickly, on CPU."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _load_example():
    spec = importlib.util.spec_from_file_location("train_hyperbolic", ROOT / "examples" / "train_hyperbolic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("optimizer", ["radam", "rsgd"])
def test_training_lowers_the_loss_within_a_minute(optimizer: str) -> None:
    example = _load_example()
    start = time.perf_counter()
    losses, accuracy = example.train(steps=150, optimizer=optimizer, progress=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"training took {elapsed:.1f} s"
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.3 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    assert accuracy > 0.9


def test_the_ball_biases_move_on_the_ball(tmp_path: Path) -> None:
    import geomir
    from geomir.backends.torch.optim import RiemannianAdam

    example = _load_example()
    m = geomir.compile(ROOT / "examples" / "hyperbolic_classifier.geo", target="torch", cache_dir=tmp_path)
    net = m.ClassifierModule(seed=0)
    bias = net.named_geo_parameters()["Encoder.mobius_linear0.bias"]
    assert bias.manifold is not None and torch.count_nonzero(bias) == 0  # starts at the origin
    x, y = example.make_data(256, seed=0)
    opt = RiemannianAdam(net.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    assert 0 < bias.detach().norm(dim=-1).max() < 1
