"""Regression tests for bugs found in geomir.representations (each failed before its fix)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from geomir.representations.hierarchy import Hierarchy, generated_tree
from geomir.representations.train import EmbeddingLoss, TrainConfig, _torch_step, make_space


@pytest.fixture(scope="module")
def small():
    return generated_tree(depth=3, branching=3, seed=0)  # 14 nodes, 28 edges


# --- distributed: a rank's share of a batch -------------------------------------------------------


class _GradRecorder:
    """A stand-in optimizer for ``_torch_step``'s DDP path: keeps the gradient of each step."""

    def __init__(self, points):
        self.points, self.param_groups, self.grads = points, [{"lr": 0.0}], []

    def zero_grad(self, set_to_none=False):
        if self.points.grad is not None:
            self.points.grad.zero_()

    def step(self):
        self.grads.append(self.points.grad.detach().clone())


@pytest.mark.parametrize("batch", [5, 1])
def test_distributed_shares_average_to_the_global_batch_gradient(small, batch):
    """DDP averages the ranks' gradients, so each rank's loss must be scaled to the global
    batch: with shares of 3 and 2 edges the average of the two means was not the batch's
    gradient, and a batch of 1 edge (the end of an epoch: 28 edges in batches of 3) left rank 1
    an empty share whose mean was NaN, stopping the run with "not finite ... lower lr"."""
    space = make_space("poincare", 2)
    gen = torch.Generator().manual_seed(3)
    points = space.init(small.num_nodes, 0.3, gen, torch.float64)
    edges = torch.tensor(np.array(small.edges))[:batch]
    u = edges[:, 0]
    cand = torch.cat([edges[:, 1:], torch.randint(0, small.num_nodes, (batch, 4), generator=gen)], 1)
    ok = torch.ones_like(cand, dtype=torch.bool)
    config = TrainConfig(manifold="poincare", dim=2)

    def grad(rank, world):
        module = EmbeddingLoss(points.clone(), space)
        opt = _GradRecorder(module.points)
        value, moved = _torch_step(module, module, opt, space, config, u, cand, ok, "cpu", rank, world)
        assert math.isfinite(value) and bool(torch.isfinite(moved).all())
        return opt.grads[0]

    single = grad(0, 1)
    averaged = (grad(0, 2) + grad(1, 2)) / 2  # what DistributedDataParallel hands the optimizer
    torch.testing.assert_close(averaged, single, rtol=1e-12, atol=1e-15)


# --- JAX: the radius bound ----------------------------------------------------------------------


@pytest.mark.parametrize("manifold,optimizer", [("poincare", "rsgd"), ("poincare", "radam"), ("lorentz", "rsgd")])
def test_jax_trainer_keeps_points_within_the_radius_bound(small, manifold, optimizer):
    """The JAX trainer ignored ``boundary_eps``: points went past the radius bound the torch
    trainer keeps (float64 RAdam on a tree reached norm 0.999990480 > 1 - 1e-5)."""
    pytest.importorskip("jax")
    from geomir.representations.train_jax import train_jax

    eps = 0.1  # radius 2 artanh(0.9) = 2.94: far inside float32's own ball clamp
    config = TrainConfig(manifold=manifold, optimizer=optimizer, dim=2, epochs=6, burnin=0, lr=50.0, negatives=5,
                         batch_size=8, dtype="float32", boundary_eps=eps)
    emb = train_jax(small, config)
    points = emb.points.double()
    origin = torch.zeros_like(points[:1])
    if manifold == "lorentz":
        origin[0, 0] = 1.0
    radius = make_space(manifold, 2).distance(origin, points)
    r_max = 2 * math.atanh(1 - eps)
    assert float(radius.max()) <= r_max + 1e-4
    assert float(radius.max()) >= r_max - 1e-2  # the rate drives some point to the bound


# --- metrics ----------------------------------------------------------------------------------------


def test_reconstruction_refuses_points_outside_the_poincare_ball(small):
    """Points outside the ball were ranked as if all at +inf: mean rank 1.0 with MAP 0.24,
    silently; NaN points only said "the distances contain NaN"."""
    from geomir.representations.metrics import EvaluationError, make_distance, reconstruction

    x = torch.randn(small.num_nodes, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.2
    x[5] = torch.tensor([0.8, 0.8])
    with pytest.raises(EvaluationError, match=r"1 points are not inside the Poincaré ball .*node 5 has norm 1.13137"):
        reconstruction(x, small, "poincare")
    with pytest.raises(EvaluationError, match="curvature -4"):
        reconstruction(x * 0.5, small, make_distance("poincare", 4.0))
    assert reconstruction(x * 0.5, small, "poincare").num_pairs == small.num_edges  # inside: fine
    x[7] = math.nan
    with pytest.raises(EvaluationError, match="the points contain NaN .*node 7"):
        reconstruction(x * 0.5, small, "poincare")


def test_reconstruction_batch_size_must_be_positive(small):
    """batch_size 0 raised ValueError from range(), a negative one ZeroDivisionError."""
    from geomir.representations.metrics import EvaluationError, reconstruction, reconstruction_from_distances

    x = torch.zeros(small.num_nodes, 2)
    for bad in (0, -1, 2.5):
        with pytest.raises(EvaluationError, match="batch_size must be a positive integer"):
            reconstruction(x, small, "euclidean", batch_size=bad)
        with pytest.raises(EvaluationError, match="batch_size must be a positive integer"):
            reconstruction_from_distances(np.zeros((small.num_nodes,) * 2), small, batch_size=bad)


def test_a_nan_diagonal_is_ignored_and_half_points_evaluate(small):
    """The diagonal is documented as ignored (d(u, u) is +inf), but a NaN there raised
    "the distances contain NaN" (a 0/0 distance of a point to itself); half and integer points
    raised NotImplementedError / RuntimeError from torch.cdist."""
    from geomir.representations.metrics import EvaluationError, reconstruction, reconstruction_from_distances

    n = small.num_nodes
    d = np.random.default_rng(0).integers(1, 6, size=(n, n)).astype(float)
    want = reconstruction_from_distances(d, small)
    np.fill_diagonal(d, np.nan)
    assert reconstruction_from_distances(d, small) == want
    assert reconstruction_from_distances(lambda src: torch.as_tensor(d)[src], small) == want
    d[2, 3] = np.nan
    with pytest.raises(EvaluationError, match="NaN"):
        reconstruction_from_distances(d, small)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    want = reconstruction(x.half().float(), small, "poincare")
    assert reconstruction(x.half(), small, "poincare") == want
    assert reconstruction(x.bfloat16(), small, "euclidean").num_pairs == small.num_edges
    assert reconstruction((x * 10).round().int(), small, "euclidean").num_pairs == small.num_edges


# --- checkpoints, saved embeddings and outputs ---------------------------------------------------

TINY = dict(dim=2, epochs=3, burnin=1, batch_size=8, negatives=5)


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    from geomir.representations.train import train

    where = tmp_path_factory.mktemp("saved")
    emb = train(small, TrainConfig(**TINY, checkpoint=str(where / "run.ckpt")), progress=False)
    emb.save(where / "run.pt")
    return where


def _damaged(saved, tmp_path, name, change):
    data = torch.load(saved / name, weights_only=True)
    change(data)
    path = tmp_path / name
    torch.save(data, path)
    return path


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("rng"), "damaged: it has no rng"),
    (lambda d: d.pop("config"), "damaged: it has no config"),
    (lambda d: d["config"].update(future_setting=1), "settings this geomir does not know: future_setting"),
    (lambda d: d.update(points=d["points"][:, :1]), "its points have 1 coordinates, not the 2 of poincare"),
    (lambda d: d.update(points=d["points"] * math.nan), "its points are not all finite"),
    (lambda d: d.update(epoch=100), "at epoch 100, past this run's 5 epochs"),
    (lambda d: d.update(rng=torch.zeros(3, dtype=torch.uint8)), "its random state does not load"),
])
def test_a_damaged_checkpoint_is_refused_clearly(small, saved, tmp_path, change, message):
    """A checkpoint missing a key raised KeyError; one whose points had the wrong number of
    coordinates resumed silently (training a 1-D table as dimension 2); NaN points stopped at
    the next step with "lower lr"; a checkpoint past the run's epochs returned its points
    without a word; a bad random state raised RuntimeError."""
    from geomir.representations.train import TrainingError, train

    path = _damaged(saved, tmp_path, "run.ckpt", change)
    with pytest.raises(TrainingError, match=message):
        train(small, TrainConfig(**{**TINY, "epochs": 5}), progress=False, resume=path)


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("names"), "damaged: it has no names"),
    (lambda d: d.update(names=d["names"][:-1]), "14 points but 13 names"),
    (lambda d: d["config"].update(future_setting=1), "settings this geomir does not know"),
])
def test_a_damaged_embedding_is_refused_clearly(saved, tmp_path, change, message):
    from geomir.representations.train import Embedding, TrainingError

    with pytest.raises(TrainingError, match=message):
        Embedding.load(_damaged(saved, tmp_path, "run.pt", change))


def test_warm_start_refuses_an_embedding_of_other_nodes(saved, tmp_path):
    """An embedding records its node names; warm-starting a hierarchy of other nodes (of the
    same count) used its points as if they were this hierarchy's."""
    from geomir.representations.train import TrainingError, train

    other = Hierarchy.from_pairs([(f"x{i}", "x0") for i in range(1, 14)])  # 14 nodes too
    with pytest.raises(TrainingError, match="embeds other nodes than the hierarchy"):
        train(other, TrainConfig(**{**TINY, "burnin": 0}), progress=False, warm_start=saved / "run.pt")


def test_unwritable_outputs_and_unusable_devices_are_refused_before_training(small, tmp_path, capsys):
    """A checkpoint, --out or --json in a missing directory was an internal error (exit 3)
    after the training had run (the result lost); so was --device cuda without CUDA."""
    from geomir.diagnostics import UsageError
    from geomir.representations import cli
    from geomir.representations.train import train

    missing = tmp_path / "no" / "such"
    with pytest.raises(UsageError, match="the directory .* does not exist"):
        train(small, TrainConfig(**TINY, checkpoint=str(missing / "a.ckpt")), progress=False)
    with pytest.raises(UsageError, match="unknown device 'bogus'"):
        train(small, TrainConfig(**TINY), progress=False, device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no usable CUDA device"):
            train(small, TrainConfig(**TINY), progress=False, device="cuda")
    base = ["train", "--data", "tree:3:3", "--dim", "2", "--epochs", "2", "--burnin", "1", "--quiet", "--no-eval"]
    for extra, what in ((["--out", str(missing / "a.pt")], "--out file"),
                        (["--json", str(missing / "a.json")], "--json file"),
                        (["--out", str(tmp_path)], "it is a directory")):
        assert cli.main(base + extra) == 2
        assert what in capsys.readouterr().err


# --- edge-list files -----------------------------------------------------------------------------


@pytest.mark.parametrize("text,name", [("\ufeffid1\tid2\na\tb\n", "edges.tsv"),
                                       ("\ufeffid1,id2,weight\na,b,1\n", "edges.csv")])
def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path, text, name):
    """A file saved with a UTF-8 byte-order mark (Excel, Notepad): the TSV header became the
    nodes '\\ufeffid1' and 'id2' and an edge between them, silently; the CSV one failed with
    "the weight 'weight' is not a number"."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    h = Hierarchy.read_tsv(path)
    assert h.names == ("a", "b") and h.edges.tolist() == [[0, 1]]


def test_a_cycle_in_a_file_names_a_line_on_it(tmp_path):
    """Every user error in a file names file:line; a cycle only named the file."""
    from geomir.representations.hierarchy import HierarchyError

    path = tmp_path / "edges.tsv"
    path.write_text("x\ty\na\tb\nq\tr\nb\tc\nc\ta\n", encoding="utf-8")
    with pytest.raises(HierarchyError, match=rf"^{re.escape(str(path))}:2: the child -> parent pairs have a cycle "
                                             r"through 'a': 'a' -> 'b' -> 'c' -> 'a'"):
        Hierarchy.read_tsv(path)


def test_initial_points_outside_the_ball_are_refused(small):
    """init_scale 10 on the Poincaré ball started from points outside it (norm up to 14), which
    the trainer then treated with clamped conformal factors, silently."""
    from geomir.diagnostics import UsageError
    from geomir.representations.train import train

    with pytest.raises(UsageError, match=r"init_scale must be below .* = 0\.707\d+ on the Poincaré ball"):
        train(small, TrainConfig(**TINY, init_scale=10.0), progress=False)
    TrainConfig(**TINY, init_scale=10.0, manifold="lorentz").validate()  # expmap0: anywhere is fine
    TrainConfig(**TINY, init_scale=0.7).validate()


def test_radam_that_diverges_says_lower_lr():
    """The trainer checks each step itself (one host read); its RiemannianAdam runs with
    check_finite=False, so a diverging radam run still ends with the trainer's advice, not
    the optimizer's NonFiniteStepError."""
    from geomir.representations.train import TrainingError, train

    tree = generated_tree(depth=2, branching=3, seed=0)
    with pytest.raises(TrainingError, match="not finite .*lower lr"):
        train(tree, TrainConfig(manifold="lorentz", dim=3, optimizer="radam", lr=1e30, epochs=2, burnin=0,
                                dtype="float32"), progress=False)


# --- the CLI's counts are checked before training ---------------------------------------------------


@pytest.mark.parametrize("extra", [["--eval-sample", "0"], ["--eval-sample", "-2"], ["--stop-after", "0"]])
def test_cli_counts_are_usage_errors_before_training(tmp_path, capsys, monkeypatch, extra):
    """--eval-sample 0 was refused (exit 1, EvaluationError) only after the whole run, and
    --json was never written; the documentation says options are checked before training."""
    from geomir.representations import cli
    from geomir.representations import train as train_module

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "train", no_training)
    out = tmp_path / "r.json"
    argv = ["train", "--data", "tree:3:3", "--dim", "3", "--epochs", "4", "--burnin", "1", "--batch-size", "5",
            "--negatives", "5", "--quiet", "--json", str(out), *extra]
    assert cli.main(argv) == 2
    assert f"{extra[0]} must be positive, found {extra[1]}" in capsys.readouterr().err
    assert not out.exists()


def test_cli_eval_sample_is_a_usage_error(tmp_path, capsys):
    from geomir.representations import cli

    assert cli.main(["eval", str(tmp_path / "missing.pt"), "--data", "tree:2:2", "--sample", "0"]) == 2
    assert "--sample must be positive, found 0" in capsys.readouterr().err
