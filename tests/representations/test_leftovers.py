"""Leftover defects of geomir.representations, each failed before its fix: ids truncated by
``from_ids``, TrainConfig values not checked from Python, checkpoints that did not record
their nodes, and NaN metrics for a hierarchy without edges."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geomir.diagnostics import UsageError
from geomir.representations.hierarchy import Hierarchy, HierarchyError, generated_tree
from geomir.representations.metrics import EvaluationError, reconstruction, reconstruction_from_distances
from geomir.representations.train import Embedding, TrainConfig, TrainingError, make_space, train

TINY = dict(dim=2, epochs=4, burnin=1, batch_size=8, negatives=5, engine="torch")


@pytest.fixture(scope="module")
def small():
    return generated_tree(depth=3, branching=3, seed=0)  # 14 nodes, 28 edges


# --- a. from_ids refuses ids that are not integers -----------------------------------------------

NAMES = ["a", "b", "c", "d"]


@pytest.mark.parametrize("pairs, message", [
    ([(1, 0), (2, 1.7)], "pair 1: the parent id 1.7 (float) is not an integer node id"),
    (np.array([[1.5, 0.0]]), "pair 0: the child id 1.5 (float) is not an integer node id"),
    ([(1, 0), (3, 2), (math.nan, 0)], "pair 2: the child id nan (float) is not an integer node id"),
    ([(1, 0), (2, math.inf)], "pair 1: the parent id inf (float)"),
    ([(1, True)], "pair 0: the parent id True (bool) is not an integer node id"),
    ([("1", "0")], "pair 0: the child id '1' (str) is not an integer node id"),
    ([(1, 0), (2, None)], "pair 1: the parent id None (NoneType)"),
    ([(1, 0, 2)], "pairs must be (child id, parent id) pairs, got 3 ids"),
    ([(1, 2 ** 70)], "pair 0: the parent id 1180591620717411303424 is out of range"),
])
def test_from_ids_refuses_ids_that_are_not_integers(pairs, message):
    """1.7 became node 1 (np.asarray(..., dtype=int64) truncates), silently."""
    with pytest.raises(HierarchyError, match=re.escape(message)):
        Hierarchy.from_ids(NAMES, pairs)


def test_integral_float_ids_are_accepted_as_documented():
    want = Hierarchy.from_ids(NAMES, [(1, 0), (2, 1), (3, 1)])
    assert Hierarchy.from_ids(NAMES, [(1.0, 0.0), (2, 1.0), (3, 1)]) == want
    assert Hierarchy.from_ids(NAMES, np.array([[1, 0], [2, 1], [3, 1]], dtype=np.float32)) == want
    assert Hierarchy.from_ids(NAMES, np.array([[1, 0], [2, 1], [3, 1]], dtype=np.uint8)) == want
    assert "floats with no fractional part" in Hierarchy.from_ids.__doc__


def test_direct_construction_refuses_fractional_edges_too():
    with pytest.raises(HierarchyError, match=r"edge 0: the ancestor id 0\.5 \(float\)"):
        Hierarchy(("a", "b"), np.array([[1.0, 0.5]]))


# --- b. TrainConfig checks types at construction ----------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"lr": "0.3"}, "lr must be a number (int or float), found '0.3' (str)"),
    ({"epochs": -1}, "epochs must be >= 0, found -1"),
    ({"batch_size": 5.0}, "batch_size must be an integer, found 5.0 (float)"),
    ({"dim": True}, "dim must be an integer, found True (bool)"),
    ({"negatives": "50"}, "negatives must be an integer, found '50' (str)"),
    ({"seed": None}, "seed must be an integer, found None (NoneType)"),
    ({"manifold": 3}, "manifold must be a string, found 3 (int)"),
    ({"lr_milestones": "100,150"}, "lr_milestones must be a tuple (or list) of integers, found '100,150' (str)"),
    ({"lr_milestones": (10, 20.5)}, "lr_milestones must be a tuple (or list) of integers, found (10, 20.5) (tuple)"),
    ({"checkpoint": 7}, "checkpoint must be a path (str or os.PathLike) or None, found 7 (int)"),
    ({"curvature": math.nan}, "curvature must be a positive number, found nan"),
    ({"batch_size": 0}, "batch_size must be positive, found 0"),
    ({"eval_every": -2}, "eval_every must be >= 0, found -2"),
])
def test_train_config_refuses_bad_values_at_construction(kwargs, message):
    """Only the command line (argparse) typed the values; from Python a string rate failed later
    with a TypeError inside validate(), and a float batch size or a negative seed deep in training."""
    with pytest.raises(UsageError, match="^invalid training configuration: .*" + re.escape(message)):
        TrainConfig(**kwargs)


def test_train_config_names_every_bad_field_and_normalises_good_ones(tmp_path):
    with pytest.raises(UsageError) as err:
        TrainConfig(lr="fast", batch_size=2.5)
    assert "lr must be a number" in err.value.message and "batch_size must be an integer" in err.value.message
    c = TrainConfig(seed=np.int64(3), lr=np.float32(0.5), lr_milestones=[5, 8], checkpoint=tmp_path / "c.pt")
    assert type(c.seed) is int and type(c.lr) is float and c.lr_milestones == (5, 8)
    assert c.checkpoint == str(tmp_path / "c.pt")  # a Path is kept as str (checkpoints save the config)
    assert TrainConfig(lr=1, curvature=2).lr == 1.0  # an int where a float is expected is fine


def test_a_field_set_after_construction_is_checked_by_train(small):
    config = TrainConfig(**TINY)
    config.lr = "0.3"
    with pytest.raises(UsageError, match="lr must be a number"):
        train(small, config, progress=False)


# --- c. checkpoints record their nodes --------------------------------------------------------------

def renamed(h: Hierarchy, suffix: str = "'") -> Hierarchy:
    return Hierarchy(tuple(x + suffix for x in h.names), h.edges)


@pytest.fixture(scope="module")
def checkpoint(small, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    train(small, TrainConfig(**TINY, checkpoint=str(path)), progress=False, stop_after=2)
    return path


def test_a_checkpoint_records_its_node_names(small, checkpoint):
    assert torch.load(checkpoint, weights_only=True)["names"] == list(small.names)


def test_resuming_with_another_hierarchy_is_refused(small, checkpoint):
    """A checkpoint of 14 nodes resumed on any hierarchy of 14 nodes, its points silently given
    to other nodes."""
    with pytest.raises(TrainingError, match=r"checkpoint .*run\.ckpt embeds other nodes than the hierarchy: node 0 is "
                                            r"'r' there, \"r'\" here \(14 of its 14 nodes are not in the hierarchy\)"):
        train(renamed(small), TrainConfig(**TINY), progress=False, resume=checkpoint)
    order = list(small.names)
    order[1], order[2] = order[2], order[1]
    shuffled = Hierarchy.from_pairs([(small.names[u], small.names[a]) for u, a in small.edges.tolist()],
                                    names=order, closure=False)
    with pytest.raises(TrainingError, match=r"node 1 is 'r\.0' there, 'r\.1' here \(the same nodes in another order\)"):
        train(shuffled, TrainConfig(**TINY), progress=False, resume=checkpoint)
    with pytest.raises(TrainingError, match="embeds other nodes than the hierarchy"):
        train(renamed(small), TrainConfig(**{**TINY, "burnin": 0}), progress=False, warm_start=checkpoint)
    # the right hierarchy resumes
    assert train(small, TrainConfig(**TINY), progress=False, resume=checkpoint).history[-1]["epoch"] == 4


def test_an_old_checkpoint_without_names_still_resumes_with_a_warning(small, checkpoint, tmp_path):
    from geomir.representations.train import UnnamedCheckpointWarning

    data = torch.load(checkpoint, weights_only=True)
    del data["names"]
    old = tmp_path / "old.ckpt"
    torch.save(data, old)
    with pytest.warns(UnnamedCheckpointWarning, match=r"old\.ckpt does not record its node names .*only their "
                                                      "number is checked"):
        resumed = train(small, TrainConfig(**TINY), progress=False, resume=old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = train(small, TrainConfig(**TINY), progress=False, resume=checkpoint)
    assert torch.equal(resumed.points, same.points)


def test_damaged_names_in_a_checkpoint_are_refused(small, checkpoint, tmp_path):
    data = torch.load(checkpoint, weights_only=True)
    data["names"] = data["names"][:-1]
    bad = tmp_path / "bad.ckpt"
    torch.save(data, bad)
    with pytest.raises(TrainingError, match="is damaged: its node names are not 14 strings"):
        train(small, TrainConfig(**TINY), progress=False, resume=bad)


# --- d. a hierarchy without edges -------------------------------------------------------------------

def test_metrics_of_a_hierarchy_without_edges_are_an_error_not_nan():
    """They were Reconstruction(nan, nan, 0, 0): a NaN in a JSON report (invalid JSON) and in
    any comparison, with no word about why."""
    edgeless = Hierarchy.from_pairs([], names=["a", "b", "c"])
    message = r"the hierarchy has no edges \(3 nodes\): mean rank and MAP are undefined"
    with pytest.raises(EvaluationError, match=message):
        reconstruction(torch.zeros(3, 2), edgeless, "poincare")
    with pytest.raises(EvaluationError, match=message):
        reconstruction_from_distances(np.ones((3, 3)), edgeless, sample=2)
    emb = Embedding(torch.zeros(3, 2), ["a", "b", "c"], make_space("poincare", 2), TrainConfig(dim=2))
    with pytest.raises(EvaluationError, match=message):
        emb.evaluate(edgeless)
    with pytest.raises(UsageError, match=r"the hierarchy has no edges to train on \(3 nodes, 0 edges\)"):
        train(edgeless, TrainConfig(**TINY), progress=False)
