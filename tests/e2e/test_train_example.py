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


def _usage_error(example, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        example.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--steps", "0"], "--steps: must be >= 1"),  # was an IndexError after "training" nothing
    (["--steps", "-3"], "--steps: must be >= 1"),
    (["--lr", "0"], "--lr: must be a finite number > 0"),  # was the optimizer's ValueError traceback
    (["--lr", "nan"], "--lr: must be a finite number > 0"),
])
def test_bad_options_are_usage_errors(argv, message, capsys) -> None:
    assert message in _usage_error(_load_example(), argv, capsys)


def test_a_bad_compiled_module_is_a_usage_error_saying_how_to_write_it(tmp_path: Path, capsys) -> None:
    import geomir

    example = _load_example()
    jax_module = geomir.compile(ROOT / "examples" / "hyperbolic_classifier.geo", target="jax", cache_dir=tmp_path)
    not_python = tmp_path / "weights.npz"
    not_python.write_bytes(b"PK")
    broken = tmp_path / "broken.py"
    broken.write_text("def broken(:\n")
    for path, message in [(tmp_path / "missing.py", "no such file"),  # was FileNotFoundError from importlib
                          (not_python, "not a Python module"),  # was AttributeError: 'NoneType' ... 'loader'
                          (broken, "importing it failed: SyntaxError"),
                          (jax_module.__file__, "has no PyTorch ClassifierModule")]:  # was AttributeError
        err = _usage_error(example, ["--steps", "1", "--compiled", str(path)], capsys)
        assert message in err and "geomc examples/hyperbolic_classifier.geo --target=torch -o" in err


def test_a_missing_weights_folder_is_reported_before_training(tmp_path: Path, capsys) -> None:
    example = _load_example()
    calls = []
    example.load = lambda path: calls.append(path)  # training must not start
    err = _usage_error(example, ["--steps", "1", "--save-weights", str(tmp_path / "nope" / "w.npz")], capsys)
    assert "does not exist" in err and not calls


def test_a_diverging_run_says_so_and_exits_1(capsys) -> None:
    from geomir.backends.torch.optim import NonFiniteStepError

    example = _load_example()

    def diverging(*args, **kwargs):
        raise NonFiniteStepError("RiemannianAdam: the step of parameter 3 ... made the new point non-finite")

    example.train = diverging
    assert example.main(["--lr", "1000"]) == 1
    assert "training diverged: RiemannianAdam" in capsys.readouterr().err


def test_training_is_deterministic_for_a_seed() -> None:
    example = _load_example()
    first = example.train(steps=4, seed=1, progress=False)
    assert example.train(steps=4, seed=1, progress=False) == first
    assert example.train(steps=4, seed=2, progress=False)[0] != first[0]
