"""The JAX trainer (geomir.representations.train_jax): sharded over 4 simulated CPU devices
it really splits every batch 4 ways (and the compiled step all-reduces) and reaches the
1-device result; it learns the tree about as well as the torch trainer (Poincaré, Lorentz;
RSGD and RAdam); a hopeless learning rate stops with a TrainingError naming the step;
float64 without JAX's x64 mode falls back to float32 and says so; runs are deterministic.

JAX fixes the device count when it starts, so the sharded runs happen in a subprocess that
runs this file as a script with XLA_FLAGS=--xla_force_host_platform_device_count=4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

from geomir.diagnostics import UsageError  # noqa: E402
from geomir.representations.hierarchy import generated_tree  # noqa: E402
from geomir.representations.train import TrainConfig, TrainingError, train  # noqa: E402
from geomir.representations.train_jax import HostSampler, JaxTrainer, PrecisionFallbackWarning, train_jax  # noqa: E402

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
# 104 nodes, 355 closure edges: 6 steps of 64 edges an epoch. lr 10 with batches of 64 (the
# loss is a batch mean) reaches MAP ~0.92 in 20 epochs on either backend (random points: ~0.08).
TREE = dict(depth=4, branching=4, seed=0)
FAST = dict(dim=5, epochs=20, burnin=2, lr=10.0, negatives=20, batch_size=64, dtype="float32", seed=0)


@pytest.fixture(scope="module")
def tree():
    return generated_tree(**TREE)


@pytest.fixture(scope="module")
def random_map(tree):
    """MAP of the initial (untrained) points: what a random embedding scores."""
    return train_jax(tree, TrainConfig(**{**FAST, "epochs": 0, "burnin": 0})).evaluate(tree).map


# --- 4 devices against 1 (subprocess) ------------------------------------------------------------


def _sharded_runs() -> dict:
    """Run in the subprocess: train Poincaré and Lorentz on 4 devices and on 1."""
    from geomir.representations.train_jax import JaxTrainer

    tree = generated_tree(**TREE)
    out = {"jax_devices": len(jax.devices())}
    for manifold in ("poincare", "lorentz"):
        for ndev in (4, 1):
            trainer = JaxTrainer(tree, TrainConfig(manifold=manifold, **FAST), devices=jax.devices()[:ndev])
            emb = trainer.run()
            rec = emb.evaluate(tree)
            index = trainer.last_batch[0]
            hlo = "" if ndev == 1 else trainer._step.lower(trainer.points, trainer.state, *trainer.last_batch,
                                                           1.0).compile().as_text()
            out[f"{manifold}/{ndev}"] = {
                "map": rec.map, "mean_rank": rec.mean_rank, "loss": emb.history[-1]["loss"],
                "mesh_devices": int(trainer.mesh.devices.size), "history_devices": emb.history[-1]["devices"],
                "batch_devices": len(index.sharding.device_set), "batch_shape": list(index.shape),
                "shard_rows": sorted({s.data.shape[0] for s in index.addressable_shards}),
                "points_replicated": bool(trainer.points.sharding.is_fully_replicated),
                "all_reduce": "all-reduce" in hlo,
                "seconds": sum(h["seconds"] for h in emb.history),
            }
    return out


@pytest.fixture(scope="module")
def sharded():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()}
    proc = subprocess.run([sys.executable, str(HERE)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_four_devices_shard_each_batch_and_match_one_device(sharded, manifold, random_map):
    assert sharded["jax_devices"] == 4
    four, one = sharded[f"{manifold}/4"], sharded[f"{manifold}/1"]
    assert four["mesh_devices"] == 4 and four["history_devices"] == 4
    assert four["batch_devices"] == 4 and four["shard_rows"] == [16] and four["batch_shape"] == [64, 22]
    assert four["points_replicated"] and four["all_reduce"]  # XLA sums the 4 partial gradients
    assert one["mesh_devices"] == 1 and one["batch_devices"] == 1 and one["shard_rows"] == [64]
    assert abs(four["map"] - one["map"]) <= 0.01, (four, one)
    assert abs(four["loss"] - one["loss"]) <= 1e-3 * abs(one["loss"]), (four, one)
    for run in (four, one):
        assert run["map"] > 0.8 and run["map"] > random_map + 0.5, (run, random_map)


# --- against the torch trainer ------------------------------------------------------------------


@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_jax_and_torch_trainers_reach_similar_map(tree, manifold, random_map):
    config = TrainConfig(manifold=manifold, **FAST)
    ours = train_jax(tree, config)
    theirs = train(tree, config, progress=False)
    a, b = ours.evaluate(tree), theirs.evaluate(tree)
    assert a.map > 0.8 and a.map > random_map + 0.5, (a.map, random_map)
    assert abs(a.map - b.map) <= 0.05, (a.map, b.map)
    assert abs(ours.history[-1]["loss"] - theirs.history[-1]["loss"]) <= 0.1, (ours.history[-1], theirs.history[-1])
    assert type(ours) is type(theirs) and ours.names == theirs.names
    assert ours.points.dtype == torch.float32 and ours.points.device.type == "cpu"
    assert ours.points.shape == theirs.points.shape
    assert [h["epoch"] for h in ours.history] == list(range(1, 21))
    assert ours.history[0]["lr"] == pytest.approx(1.0) and ours.history[-1]["lr"] == pytest.approx(10.0)
    if manifold == "poincare":
        assert float((ours.points.double() ** 2).sum(-1).max()) < 1.0
    else:
        x = ours.points.double()
        minkowski = -x[:, 0] ** 2 + (x[:, 1:] ** 2).sum(-1)
        assert ((minkowski + 1).abs() <= 1e-5 * (1 + x[:, 0] ** 2)).all()  # on the hyperboloid, to float32 rounding


def test_radam_and_euclidean_train(tree, random_map):
    config = TrainConfig(manifold="poincare", **{**FAST, "optimizer": "radam", "lr": 0.1})
    assert train_jax(tree, config).evaluate(tree).map > 0.8
    euclid = train_jax(tree, TrainConfig(manifold="euclidean", **FAST)).evaluate(tree).map
    assert random_map + 0.2 < euclid


def test_the_step_schedule_sets_each_epochs_lr(tree):
    config = TrainConfig(manifold="poincare", **{**FAST, "epochs": 5, "burnin": 1, "lr_milestones": (2, 4),
                                                 "lr_gamma": 0.5})
    emb = train_jax(tree, config)
    assert [h["lr"] for h in emb.history] == pytest.approx([1.0, 10.0, 5.0, 5.0, 2.5])


# --- failures, precision, determinism --------------------------------------------------------------


@pytest.mark.parametrize("manifold", ["lorentz", "euclidean"])
def test_absurd_learning_rate_stops_with_the_step(tree, manifold):
    config = TrainConfig(manifold=manifold, **{**FAST, "lr": 1e30, "burnin": 0, "epochs": 3})
    with pytest.raises(TrainingError, match=r"epoch 1, step \d+: the loss or an updated point is not finite"):
        train_jax(tree, config)


def test_poincare_stays_finite_at_an_absurd_learning_rate(tree):
    """On the ball the step saturates (tanh) and proj keeps points inside, so even lr = 1e30
    gives finite points: there is no NaN to report (the torch trainer behaves the same)."""
    emb = train_jax(tree, TrainConfig(manifold="poincare", **{**FAST, "lr": 1e30, "burnin": 0, "epochs": 2}))
    assert bool(torch.isfinite(emb.points).all()) and float(emb.points.double().norm(dim=-1).max()) < 1.0


def test_float64_without_x64_computes_in_float32_and_says_so(tree):
    config = TrainConfig(manifold="lorentz", **{**FAST, "dtype": "float64", "epochs": 2, "burnin": 1})
    if jax.config.jax_enable_x64:
        emb = train_jax(tree, config)
        assert emb.points.dtype == torch.float64 and emb.history[-1]["dtype"] == "float64"
        return
    with pytest.warns(PrecisionFallbackWarning, match="x64 mode is off"):
        emb = train_jax(tree, config)
    assert emb.points.dtype == torch.float32
    assert [h["dtype"] for h in emb.history] == ["float32", "float32"]
    assert "computed in float32" in emb.history[0]["notes"][0]
    assert emb.config.dtype == "float64"  # the config as asked; the history says what ran


def test_same_seed_same_points_other_seed_other_points(tree, monkeypatch):
    import geomir.representations.train_jax as module

    config = TrainConfig(manifold="poincare", **{**FAST, "epochs": 3, "burnin": 1})
    a = train_jax(tree, config)
    monkeypatch.setattr(module, "_CHUNK", 4)  # the per-step losses read back in chunks of 4, 2
    b = train_jax(tree, config)
    c = train_jax(tree, TrainConfig(manifold="poincare", **{**FAST, "epochs": 3, "burnin": 1, "seed": 1}))
    assert torch.equal(a.points, b.points) and a.history[-1]["loss"] == b.history[-1]["loss"]
    assert not torch.equal(a.points, c.points)


def test_checkpoints_are_refused(tree, tmp_path):
    with pytest.raises(UsageError, match="does not write checkpoints"):
        train_jax(tree, TrainConfig(**{**FAST, "checkpoint": str(tmp_path / "ck.pt")}))
    with pytest.raises(UsageError, match="runs optimizer 'rsgd' or 'radam', not 'radagrad'"):
        train_jax(tree, TrainConfig(**{**FAST, "optimizer": "radagrad"}))
    with pytest.raises(UsageError, match="uniform negatives only"):
        train_jax(tree, TrainConfig(**{**FAST, "hard_negatives": 2}))


def test_batches_are_padded_to_the_device_multiple_and_masked(tree):
    trainer = JaxTrainer(tree, TrainConfig(**{**FAST, "batch_size": 50}), devices=jax.devices()[:1])
    batches = list(trainer.epoch_batches(burn=False))
    assert len(batches) == -(-tree.num_edges // 50)
    for index, valid, weight in batches:
        assert index.shape == (50, 22) and valid.shape == (50, 21) and weight.shape == (50,)
    index, valid, weight = batches[-1]
    real = tree.num_edges - 50 * (len(batches) - 1)
    assert np.all(weight[:real] == np.float32(1.0 / real)) and np.all(weight[real:] == 0)
    assert valid[:, 0].all() and not valid[real:, 1:].any()
    edges = {tuple(e) for e in np.asarray(tree.edges).tolist()}
    seen = [tuple(r) for r in np.concatenate([b[0][b[2] > 0, :2] for b in batches]).tolist()]
    assert sorted(seen) == sorted(edges)  # every closure edge once an epoch


def test_sampler_masks_true_edges_and_the_source(tree):
    edges = np.asarray(tree.edges)
    sampler = HostSampler(tree.num_nodes, edges, np.asarray(tree.degree_counts()))
    rng = np.random.default_rng(0)
    truth = {tuple(e) for e in edges.tolist()}
    for burn in (True, False):
        src = edges[:200, 0]
        neg, valid = sampler.sample(src, 30, burn, rng)
        assert neg.shape == valid.shape == (200, 30) and 0 <= neg.min() and neg.max() < tree.num_nodes
        for u, row, ok in zip(src.tolist(), neg.tolist(), valid.tolist()):
            for v, good in zip(row, ok):
                assert good == ((u, v) not in truth and u != v)
    counts = np.maximum(np.asarray(tree.degree_counts(), dtype=float), 1.0) ** 0.75
    draws = sampler.sample(np.zeros(20000, dtype=np.int64), 5, True, rng)[0].ravel()
    freq = np.bincount(draws, minlength=tree.num_nodes) / draws.size
    assert np.abs(freq - counts / counts.sum()).max() < 0.01  # burn-in: unigram^(3/4)


if __name__ == "__main__":  # the subprocess of `sharded` (4 simulated devices)
    print(json.dumps(_sharded_runs()))
