"""Training hierarchy embeddings with the torch trainer: it learns (Poincaré and Lorentz
beat Euclidean at low dimension), it never produces NaN/Inf (float32 and float64; and it
stops with the place when it would), a stopped and resumed run equals an uninterrupted one
bit for bit, data-parallel training with torchrun (2 gloo processes) matches one process,
and a .geo model takes the points only when its input type matches."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geomir.diagnostics import GeoTypeError, UsageError
from geomir.representations.consume import check_model, model_inputs
from geomir.representations.hierarchy import generated_tree
from geomir.representations.train import Embedding, RowwiseRAdagrad, TrainConfig, TrainingError, make_space, train

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(dim=5, epochs=20, burnin=2, batch_size=64, negatives=20, lr=10.0)


@pytest.fixture(scope="module")
def tree():
    return generated_tree(depth=4, branching=4, seed=0)


@pytest.fixture(scope="module")
def trained(tree):
    return {m: train(tree, TrainConfig(manifold=m, **FAST), progress=False) for m in ("poincare", "lorentz", "euclidean")}


def test_hyperbolic_embeddings_reconstruct_the_tree_better_than_euclidean(tree, trained):
    scores = {m: e.evaluate(tree) for m, e in trained.items()}
    assert scores["poincare"].map > 0.85 and scores["lorentz"].map > 0.85, scores
    assert scores["poincare"].map > scores["euclidean"].map + 0.05, scores
    assert scores["poincare"].mean_rank < scores["euclidean"].mean_rank, scores
    for m, e in trained.items():
        assert e.points.shape == (tree.num_nodes, 6 if m == "lorentz" else 5)
        assert [h["epoch"] for h in e.history] == list(range(1, 21))
        assert e.history[-1]["loss"] < e.history[0]["loss"]
    ball = trained["poincare"].points
    assert float((ball * ball).sum(-1).max()) < 1.0  # inside the ball
    hyperboloid = trained["lorentz"].points.double()
    minkowski = -hyperboloid[:, 0] ** 2 + (hyperboloid[:, 1:] ** 2).sum(-1)
    assert torch.allclose(minkowski, torch.full_like(minkowski, -1.0), atol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_no_nan_or_inf_at_any_step(tree, dtype, manifold):
    seen = []
    emb = train(tree, TrainConfig(manifold=manifold, dtype=dtype, **{**FAST, "epochs": 15}),
                progress=False, on_epoch=seen.append)
    assert emb.points.dtype == getattr(torch, dtype) and bool(torch.isfinite(emb.points).all())
    assert all(math.isfinite(r["loss"]) for r in seen) and len(seen) == 15


@pytest.mark.parametrize("engine, dtype, lr", [("torch", "float32", 1e38), ("torch", "float64", 1e300),
                                               ("numba", "float64", 1e300)])
def test_a_non_finite_step_stops_with_the_place(tree, engine, dtype, lr):
    if engine == "numba":
        pytest.importorskip("numba")
    hint = r"lower lr \(1e\+38\) or use float64" if dtype == "float32" else r"lower lr \(1e\+300\)$"
    with pytest.raises(TrainingError, match=r"epoch 1, step \d+: the loss or an updated point is not finite .*" + hint):
        train(tree, TrainConfig(manifold="euclidean", dtype=dtype, engine=engine, **{**FAST, "lr": lr, "burnin": 0}),
              progress=False)


@pytest.mark.parametrize("optimizer, engine", [("radam", "torch"), ("rsgd", "torch"), ("rsgd", "auto"),
                                               ("radagrad", "torch"), ("radagrad", "auto")])
def test_stop_and_resume_equals_an_uninterrupted_run(tree, tmp_path, optimizer, engine):
    # Adagrad restarts at the end of burn-in (epoch 3) and at epochs 5 and 7, one right at the resume
    extra = {"adagrad_restart": 2, "adagrad_init": 1e-4} if optimizer == "radagrad" else {}
    config = TrainConfig(**{**FAST, "epochs": 8, "burnin": 3}, optimizer=optimizer, engine=engine,
                         checkpoint=str(tmp_path / "c.pt"), checkpoint_every=2, **extra)
    whole = train(tree, TrainConfig(**{**FAST, "epochs": 8, "burnin": 3}, optimizer=optimizer, engine=engine, **extra),
                  progress=False)
    first = train(tree, config, progress=False, stop_after=5)  # across the end of burn-in
    assert len(first.history) == 5
    rest = train(tree, config, progress=False, resume=tmp_path / "c.pt")
    assert torch.equal(rest.points, whole.points)
    assert [h["loss"] for h in rest.history] == [h["loss"] for h in whole.history]
    with pytest.raises(TrainingError, match=r"checkpoint .* is of another run \(lr: 10.0 there, 0.1 here"):
        train(tree, TrainConfig(**{**FAST, "epochs": 8, "burnin": 3, "lr": 0.1}, optimizer=optimizer, **extra),
              progress=False, resume=tmp_path / "c.pt")
    with pytest.raises(TrainingError, match="no checkpoint at"):
        train(tree, config, progress=False, resume=tmp_path / "missing.pt")


@pytest.mark.parametrize("manifold", ["poincare", "lorentz", "euclidean"])
def test_adagrad_moves_each_point_its_rate_times_its_gradient_size(manifold):
    """One Riemannian Adagrad step moves a point the geodesic distance rate * |rgrad|_x, with
    rate = lr / sqrt(acc + |rgrad|_x^2): a hub's long history shrinks its steps, a start of
    adagrad_init caps them."""
    space = make_space(manifold, 3, 0.7)
    gen = torch.Generator().manual_seed(5)
    x = space.init(4, 0.5, gen, torch.float64)
    g = torch.randn(4, space.coords, generator=gen, dtype=torch.float64)
    opt = RowwiseRAdagrad(torch.nn.Parameter(x.clone()), 0.3, init=0.05)
    if manifold != "euclidean":
        opt.manifold = space.manifold
    opt.acc[2] = 40.0  # a long history
    rows = torch.arange(4)
    y = opt.moved(x, g, rows)
    m = space.manifold
    rg = g if manifold == "euclidean" else m.egrad2rgrad(x, g)
    size = m.inner(x, rg)[..., 0]
    before = torch.tensor([0.05, 0.05, 40.0, 0.05], dtype=torch.float64)
    torch.testing.assert_close(opt.acc, before + size)
    torch.testing.assert_close(space.distance(x, y), 0.3 * size.sqrt() / (before + size).sqrt())


@pytest.mark.parametrize("engine", ["torch", "auto"])
def test_adagrad_restarts_forget_the_history(tree, tmp_path, engine):
    """The accumulators start again at the end of burn-in and every adagrad_restart epochs:
    an epoch that restarts does not depend on the saved history, one that does not does."""
    cfg = dict(**{**FAST, "epochs": 6, "burnin": 2, "lr": 0.5}, optimizer="radagrad", adagrad_init=1e-3,
               adagrad_restart=3, engine=engine, checkpoint=str(tmp_path / "c.pt"))
    for start, restarts in ((2, True), (3, False), (5, True)):
        train(tree, TrainConfig(**cfg), progress=False, stop_after=start)
        ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
        assert float(ckpt["optimizer"]["acc"].min()) > 1e-3  # a history
        kept = train(tree, TrainConfig(**cfg), progress=False, resume=tmp_path / "c.pt", stop_after=1).points
        ckpt["optimizer"]["acc"].fill_(123.0)
        torch.save(ckpt, tmp_path / "c.pt")
        other = train(tree, TrainConfig(**cfg), progress=False, resume=tmp_path / "c.pt", stop_after=1).points
        assert torch.equal(kept, other) == restarts, start


def test_warm_start_begins_a_run_at_saved_points(trained, tree, tmp_path):
    emb = trained["poincare"]
    emb.save(tmp_path / "e.pt")
    same = train(tree, TrainConfig(manifold="poincare", **{**FAST, "epochs": 0, "burnin": 0}), progress=False,
                 warm_start=tmp_path / "e.pt")
    assert torch.equal(same.points, emb.points) and same.history == []
    more = train(tree, TrainConfig(manifold="poincare", **{**FAST, "epochs": 3, "burnin": 0, "lr": 1.0},
                                   optimizer="radagrad", adagrad_init=1e-4), progress=False, warm_start=tmp_path / "e.pt")
    assert len(more.history) == 3 and more.evaluate(tree).map > emb.evaluate(tree).map - 0.05
    with pytest.raises(TrainingError, match=r"embedding or checkpoint .* is of another run \(manifold: 'poincare' there, 'lorentz'"):
        train(tree, TrainConfig(manifold="lorentz", **FAST), progress=False, warm_start=tmp_path / "e.pt")
    with pytest.raises(UsageError, match="give one of them"):
        train(tree, TrainConfig(**FAST), progress=False, warm_start=tmp_path / "e.pt", resume=tmp_path / "e.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(TrainingError, match="cannot read embedding or checkpoint"):
        train(tree, TrainConfig(**FAST), progress=False, warm_start=tmp_path / "junk.pt")


def test_save_and_load(trained, tmp_path):
    emb = trained["lorentz"]
    emb.save(tmp_path / "e.pt")
    back = Embedding.load(tmp_path / "e.pt")
    assert torch.equal(back.points, emb.points) and back.names == emb.names
    assert back.space.name == "lorentz" and back.config == emb.config
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(TrainingError, match="cannot read an embedding"):
        Embedding.load(tmp_path / "junk.pt")


@pytest.mark.parametrize("engine", ["torch", "auto"])
def test_training_with_hard_negatives_resumes_bit_for_bit(tree, tmp_path, engine):
    # intruders mined at epochs 2, 4, 6 (burn-in 2, every 2); the resume at 5 needs the saved ones
    config = TrainConfig(**{**FAST, "epochs": 7}, hard_negatives=5, checkpoint=str(tmp_path / "c.pt"),
                         checkpoint_every=5, engine=engine)
    whole = train(tree, TrainConfig(**{**FAST, "epochs": 7}, hard_negatives=5, engine=engine), progress=False)
    train(tree, config, progress=False, stop_after=5)
    rest = train(tree, config, progress=False, resume=tmp_path / "c.pt")
    assert torch.equal(rest.points, whole.points)
    plain = train(tree, TrainConfig(**{**FAST, "epochs": 7}, engine=engine), progress=False)
    assert not torch.equal(plain.points, whole.points)  # the hard negatives changed the run
    assert all(math.isfinite(h["loss"]) for h in whole.history)
    with pytest.raises(TrainingError, match=r"is of another run \(hard_negatives: 5 there, 0 here"):
        train(tree, TrainConfig(**{**FAST, "epochs": 7}), progress=False, resume=tmp_path / "c.pt")


def test_invalid_configuration():
    with pytest.raises(UsageError, match="manifold must be one of poincare, lorentz, euclidean.*negatives must be"):
        TrainConfig(manifold="sphere", negatives=0).validate()
    with pytest.raises(UsageError, match=r"lr_milestones must be increasing positive epochs, found \[5, 3\]"):
        TrainConfig(lr_milestones=(5, 3)).validate()
    with pytest.raises(UsageError, match="lr_gamma must be a positive number"):
        TrainConfig(lr_gamma=0.0).validate()
    with pytest.raises(UsageError, match=r"hard_negatives must be between 0 and negatives \(50\), found 51"):
        TrainConfig(hard_negatives=51).validate()
    with pytest.raises(UsageError, match="mine_every must be positive"):
        TrainConfig(mine_every=0).validate()


@pytest.mark.parametrize("engine", ["torch", "auto"])
def test_the_step_schedule_sets_each_epochs_lr(tree, engine, tmp_path):
    """Burn-in at lr * burnin_factor, then lr, times lr_gamma from each milestone on; a
    stop and resume across a milestone keeps the schedule."""
    config = TrainConfig(**{**FAST, "epochs": 6, "burnin": 1, "lr_milestones": (3, 5), "lr_gamma": 0.5},
                         engine=engine)
    assert [config.epoch_lr(e) for e in range(6)] == [1.0, 10.0, 10.0, 5.0, 5.0, 2.5]
    whole = train(tree, config, progress=False)
    assert [h["lr"] for h in whole.history] == [1.0, 10.0, 10.0, 5.0, 5.0, 2.5]
    ck = TrainConfig(**{**vars(config), "checkpoint": str(tmp_path / "s.pt"), "checkpoint_every": 1})
    train(tree, ck, progress=False, stop_after=4)
    rest = train(tree, ck, progress=False, resume=tmp_path / "s.pt")
    assert torch.equal(rest.points, whole.points)
    with pytest.raises(TrainingError, match=r"lr_milestones: \(3, 5\) there, \(3,\) here"):
        train(tree, TrainConfig(**{**vars(ck), "lr_milestones": (3,)}), progress=False, resume=tmp_path / "s.pt")


def _cli(*args: str, env=None, module: str = "geomir.representations"):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _cli_here(capsys, *args: str):
    """The same command line run in this process (no interpreter and torch start-up): what
    ``python -m geomir.representations`` would exit with and print."""
    from geomir.representations.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def test_torchrun_two_gloo_processes_match_one_process(tmp_path):
    args = ["train", "--data", "tree:4:4", "--dim", "5", "--epochs", "20", "--burnin", "2", "--batch-size", "64",
            "--negatives", "20", "--lr", "10", "--quiet"]
    one = _cli(*args, "--json", str(tmp_path / "one.json"))
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "geomir.representations", *args, "--distributed", "--json",
                          str(tmp_path / "two.json")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert a["world_size"] == 1 and b["world_size"] == 2
    assert a["map"] > 0.8 and abs(a["map"] - b["map"]) <= 0.01, (a, b)


def test_cli_train_eval_and_errors(tmp_path, capsys):
    # the module entry point, in a fresh interpreter; the other command lines in this one
    out = tmp_path / "emb.pt"
    run = _cli("train", "--data", "tree:3:3", "--epochs", "5", "--burnin", "1", "--quiet", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "map" in json.loads(run.stdout.splitlines()[-1])
    ev = _cli_here(capsys, "eval", str(out), "--data", "tree:3:3")
    assert ev.returncode == 0 and json.loads(ev.stdout)["map"] > 0
    # a time-boxed part of a long run, then the rest
    ck = str(tmp_path / "run.ckpt")
    part = _cli_here(capsys, "train", "--data", "tree:3:3", "--epochs", "5", "--burnin", "1", "--quiet", "--no-eval",
                     "--checkpoint", ck, "--stop-after", "2")
    assert part.returncode == 0 and json.loads(part.stdout)["epochs_done"] == 2, part.stderr
    rest = _cli_here(capsys, "train", "--data", "tree:3:3", "--epochs", "5", "--burnin", "1", "--quiet", "--checkpoint", ck,
                     "--resume", ck, "--out", str(tmp_path / "resumed.pt"))
    assert rest.returncode == 0 and json.loads(rest.stdout.splitlines()[-1])["epochs_done"] == 5, rest.stderr
    assert torch.equal(Embedding.load(tmp_path / "resumed.pt").points, Embedding.load(out).points)
    sched = _cli_here(capsys, "train", "--data", "tree:3:3", "--epochs", "4", "--burnin", "1", "--lr-milestones", "2,3",
                      "--lr-gamma", "0.5", "--quiet", "--no-eval")
    assert sched.returncode == 0 and json.loads(sched.stdout)["config"]["lr_milestones"] == [2, 3], sched.stderr
    bad = _cli_here(capsys, "train", "--data", "tree:3:3", "--lr-milestones", "ten")
    assert bad.returncode == 2 and "expected comma-separated epochs" in bad.stderr
    bad = _cli_here(capsys, "train", "--data", "tree:3:3", "--stop-after", "0")
    assert bad.returncode == 2 and "--stop-after must be positive" in bad.stderr
    bad = _cli_here(capsys, "train", "--data", "nope.tsv")
    assert bad.returncode == 2 and "no such file" in bad.stderr
    bad = _cli_here(capsys, "train", "--data", "tree:3:3", "--manifold", "sphere")
    assert bad.returncode == 2 and "manifold must be one of" in bad.stderr


def test_a_geo_model_takes_the_points_when_the_types_match(trained, tmp_path):
    import geomir

    ball = trained["poincare"]
    path = ROOT / "examples" / "hierarchy" / "mammal_scorer.geo"
    assert str(check_model(ball, path, "Scorer")) == "H[5]"
    module = geomir.compile(path, target="torch")
    x = model_inputs(ball, ball.names[:7], torch.float32)
    y = module.Scorer(module.init_params(0), x)
    assert y.shape == (7, 1) and bool(torch.isfinite(y).all())
    # The Lorentz embedding has 6 coordinates on another manifold: refused, located.
    with pytest.raises(GeoTypeError, match=r"model Scorer takes x: H\[5\] \(a point on poincare\(c=1\)\), but the "
                                           r"embedding's points are on lorentz\(c=1\)"):
        check_model(trained["lorentz"], path, "Scorer")
    wrong = tmp_path / "wrong.geo"
    wrong.write_text("manifold H = poincare(c = 1.0)\nmodel M(x: H[10]) -> R[1] {\n"
                     "  return coords(linear(logmap0(x), 10 -> 1))\n}\n")
    with pytest.raises(GeoTypeError) as err:
        check_model(ball, wrong, "M")
    assert "wrong.geo:2:12" in err.value.render() and "the embedding has 5 coordinates per point" in err.value.render()
    assert "declare it as H[5]" in err.value.render()
    with pytest.raises(UsageError, match="no model 'Nope'"):
        check_model(ball, path, "Nope")


@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_points_stay_within_the_radius_bound(manifold):
    from geomir.representations.train import make_space

    space = make_space(manifold, 3, curvature=2.0)
    # four random directions at tangent norm 40, far beyond the bound (a raw randn * 40 could
    # land inside it: once in a few thousand runs, one did)
    directions = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    tangent = 40 * directions / directions.norm(dim=-1, keepdim=True)
    far = space.manifold.expmap0(torch.cat([torch.zeros(4, 1, dtype=torch.float64), tangent], 1)
                                 if manifold == "lorentz" else tangent)
    near = space.manifold.expmap0(torch.cat([torch.zeros(1, 1), torch.full((1, 3), 0.1, dtype=torch.float64)], 1)
                                  if manifold == "lorentz" else torch.full((1, 3), 0.1, dtype=torch.float64))
    x = space.clamp_radius(torch.cat([far, near]), 1e-5)
    origin = space.manifold.origin_like(x)
    radius = space.distance(origin, x)
    r_max = 2 * math.atanh(1 - 1e-5) / math.sqrt(2.0)
    assert torch.all(radius[:4] <= r_max + 1e-6) and torch.all(radius[:4] >= r_max - 1e-6)
    assert torch.equal(x[4], near[0])  # inside: untouched
    if manifold == "lorentz":
        minkowski = -x[:, 0] ** 2 + (x[:, 1:] ** 2).sum(-1)
        assert torch.allclose(minkowski, torch.full_like(minkowski, -1 / 2.0))


def test_radam_near_the_boundary_stays_finite(tree):
    # A large Adam step drives points to the radius bound every step: the moments stay finite.
    emb = train(tree, TrainConfig(**{**FAST, "epochs": 30, "lr": 0.5}, optimizer="radam"), progress=False)
    assert bool(torch.isfinite(emb.points).all())
    assert float(emb.points.norm(dim=-1).max()) <= 1 - 1e-5 + 1e-12
