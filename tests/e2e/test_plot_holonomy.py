"""``geomc --plot=holonomy``: the documented example (train the hyperbolic classifier,
save its weights, draw the holonomy map of its encoder) runs and writes a PNG whose
picture holds the map's real values."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from geomir import holonomy_map as hm  # noqa: E402
from geomir.driver import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hyperbolic_classifier.geo"


def _train(tmp_path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("train_hyperbolic", ROOT / "examples" / "train_hyperbolic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = tmp_path / "trained.npz"
    losses, _ = module.train(steps=150, progress=False, save_weights=str(weights))
    assert losses[-1] < 0.3 * losses[0]
    return weights


def test_the_documented_heatmap_example_writes_a_png_of_the_trained_encoder(tmp_path, capsys, monkeypatch):
    weights = _train(tmp_path)
    png = tmp_path / "holonomy.png"
    argv = [str(EXAMPLE), "--plot=holonomy", "--model", "Encoder", "--weights", str(weights),
            "--plot-grid", "8", "-o", str(png)]
    drawn, compute = [], hm.holonomy_map  # keep the map geomc draws
    monkeypatch.setattr(hm, "holonomy_map", lambda *a, **k: drawn.append(compute(*a, **k)) or drawn[-1])
    assert main(argv) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out

    (trained,) = drawn
    initial = compute(EXAMPLE, "Encoder", grid=8)
    for r in (trained, initial):
        assert np.isfinite(r.curvature).all() and not r.blank
        assert np.all(r.stretch > 0)
    # training bends the representation: the maps differ, and not by rounding
    assert np.max(np.abs(trained.curvature - initial.curvature)) > 1e-2
    # what the picture shows is the map: the curvature panel's array, the stretch panel's
    fig = hm.plot(trained)
    try:
        left, right = fig.axes[:2]  # then the two colorbars
        assert np.array_equal(np.asarray(left.images[0].get_array()), trained.curvature)
        assert np.array_equal(np.asarray(right.images[0].get_array()), trained.stretch)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_blank_cells_are_masked_and_counted(tmp_path, capsys):
    """A relu layer with a flat region: cells where the Jacobian has rank < 2 are blank
    in the picture and counted in the summary, never drawn as numbers."""
    src = tmp_path / "dead.geo"
    src.write_text("model Dead(x: R[2, f64]) -> R[2, f64] {\n  return relu(x)\n}\n")
    r = hm.holonomy_map(src, grid=8)
    dead = (r.s[None, :] < 0) | (r.t[:, None] < 0)  # relu kills a coordinate there
    assert np.array_equal(r.degenerate, dead)
    assert np.all(np.isnan(r.curvature[dead])) and np.all(r.curvature[~dead] == 0)
    assert main([str(src), "--plot=holonomy", "--plot-grid", "8", "-o", str(tmp_path / "d.png")]) == 0
    assert f"{int(dead.sum())} degenerate cell(s) left blank" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--plot=holonomy"], "--plot needs -o FILE"),
    (["--plot=holonomy", "--target=torch", "-o", "x.png"], "--plot draws a picture; drop --target"),
    (["--plot-grid", "8"], "--plot-grid needs --plot"),
    (["--plot=holonomy", "--model", "Encoder", "--plot-axes", "0", "-o", "x.png"], "--plot-axes takes two coordinate"),
    (["--plot=holonomy", "--model", "Classifier", "-o", "x.png", "--plot-axes", "0,2"], "input 'x' has 2 coordinates"),
    (["--plot=holonomy", "-o", "x.png"], "defines 2 models (Encoder, Classifier); name one with --model"),
])
def test_cli_misuse_is_a_clear_error(tmp_path, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(EXAMPLE), *argv]) == 2  # geomc's main, in this process: an exception would escape
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "x.png").exists()
