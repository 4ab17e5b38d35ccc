"""benchmarks/bench_hierarchy.py runs on a small tree: both engines side by side reach the
same reconstruction, the schedule reaches the config, and the JSON holds what the README
says (machine, settings, per run MAP, mean rank, seconds, engine)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]


def test_engines_side_by_side_on_a_tree(tmp_path):
    out = tmp_path / "h.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_hierarchy.py"), "--data", "tree:3:3",
                           "--epochs", "4", "--burnin", "1", "--dims", "3", "--manifolds", "poincare",
                           "--engines", "torch", "numba", "--lr", "5", "--lr-milestones", "3", "--quiet",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["settings"]["lr_milestones"] == [3] and result["machine"]["cpu_count"] >= 1
    torch_run, numba_run = result["runs"]
    assert (torch_run["engine"], numba_run["engine"]) == ("torch", "numba")
    assert torch_run["map"] == pytest.approx(numba_run["map"], abs=1e-9)
    assert len(numba_run["loss_per_epoch"]) == 4 and numba_run["seconds_per_epoch"] > 0


def _bench_main():
    """benchmarks/bench_hierarchy.py's main, loaded in this process (the numba kernels
    compile once for the runs below; the script itself runs in the test above)."""
    spec = importlib.util.spec_from_file_location("bench_hierarchy", ROOT / "benchmarks" / "bench_hierarchy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_adagrad_run_stops_and_resumes_from_its_checkpoint(tmp_path):
    """--checkpoint-dir then --resume --epochs N continues the run (its hard negatives, mined before
    epoch 2, come back with the checkpoint); train time counts every epoch."""
    main = _bench_main()
    base = ["--data", "tree:3:3", "--burnin", "1",
            "--dims", "3", "--manifolds", "poincare", "--optimizer", "radagrad", "--lr", "0.5", "--adagrad-init", "1e-4",
            "--adagrad-restart", "2", "--hard-negatives", "2", "--mine-every", "3", "--quiet",
            "--checkpoint-dir", str(tmp_path / "ck")]
    for epochs, extra in (("3", []), ("5", ["--resume"])):
        assert main(base + ["--epochs", epochs, "--out", str(tmp_path / f"{epochs}.json")] + extra) == 0
    first, (run,) = json.loads((tmp_path / "3.json").read_text())["runs"], json.loads((tmp_path / "5.json").read_text())["runs"]
    assert len(run["loss_per_epoch"]) == 5 and run["loss_per_epoch"][:3] == first[0]["loss_per_epoch"]
    assert run["train_seconds"] >= first[0]["train_seconds"] * 0.5 and 0 < run["map"] <= 1
    assert json.loads((tmp_path / "5.json").read_text())["settings"]["hard_negatives"] == 2
    # a new run from those points (no burn-in): it starts where the first one ended
    assert main(base[:2] + ["--burnin", "0"] + base[4:] + ["--epochs", "1", "--warm-start",
                str(tmp_path / "ck" / "tree_3_3-poincare-d3-auto.ckpt"), "--out", str(tmp_path / "w.json")]) == 0
    warm = json.loads((tmp_path / "w.json").read_text())
    assert len(warm["runs"][0]["loss_per_epoch"]) == 1 and warm["settings"]["warm_start"].endswith("auto.ckpt")
    assert warm["runs"][0]["loss_per_epoch"][0] < run["loss_per_epoch"][0]


def test_the_recorded_noun_closure_run_meets_the_goal_over_the_whole_closure():
    """The committed result of the third noun run (docs/representations.md, "The noun closure"):
    evaluated on every source, not a sample, from the second run's points, with hard negatives."""
    result = json.loads((ROOT / "benchmarks" / "results" / "bench_hierarchy-nouns-hard-phase3.json").read_text())
    (run,) = result["runs"]
    assert result["nodes"] == 82115 and result["edges"] == 743086 and result["settings"]["eval_sample"] is None
    assert result["settings"]["hard_negatives"] == 3 and result["settings"]["warm_start"].endswith("numba.ckpt")
    assert run["dim"] == 10 and run["manifold"] == "poincare" and run["goal_met"] is True
    assert run["map"] > run["published_map"] == 0.851
