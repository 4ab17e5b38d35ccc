"""Hunt 5 findings fixed by the lead: dump file names, and what a generated module says
about the weights its contracts were proved on."""
from __future__ import annotations

import numpy as np

from geomir.driver import main

SOURCE = "@lipschitz(10.0)\nmodel F(x: R[4]) -> R[2] {\n  return linear(tanh(linear(x, 4 -> 8)), 8 -> 2)\n}\n"


def _weights(path) -> None:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{"F.linear0.weight": 0.1 * rng.standard_normal((8, 4)), "F.linear0.bias": np.zeros(8),
                      "F.linear1.weight": 0.1 * rng.standard_normal((2, 8)), "F.linear1.bias": np.zeros(2)})


def test_dumps_are_named_after_the_pass_without_its_options(tmp_path, monkeypatch) -> None:
    """A --weights path with a folder made the verify-contracts dump 'NN-verify-contracts{weights="w/w.npz"}.mlir',
    a path into a missing folder: 'cannot write', exit 2, after two dumps."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.geo").write_text(SOURCE)
    _weights(tmp_path / "weights" / "w.npz")
    for weights in ("weights/w.npz", str(tmp_path / "weights" / "w.npz")):
        assert main(["m.geo", "--weights", weights, "--dump-ir-after-all", "--dump-dir", "dumps", "-o", "out.mlir"]) == 0
        names = sorted(p.name for p in (tmp_path / "dumps").iterdir())
        assert names[:3] == ["00-input.mlir", "01-insert-transport.mlir", "02-verify-contracts.mlir"], names
        assert all("{" not in n for n in names)
