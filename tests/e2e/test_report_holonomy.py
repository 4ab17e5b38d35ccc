"""``geomc --report=holonomy``: the table, the threshold, --fail-on-flags and misuse."""

from __future__ import annotations


import pytest

pytest.importorskip("torch")

from geomir.driver import main  # noqa: E402

LOOPS = """\
manifold H = poincare(c = 1.0)

model Step(h: H[2]) -> H[2] {
  return mobius_tanh(mobius_linear(h, 2 -> 2))
}

model Flat(x: R[2]) -> R[2] {
  return tanh(linear(x, 2 -> 2))
}
"""


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "loops.geo"
    path.write_text(LOOPS)
    return path


def test_the_table_lists_curved_loops_and_flags_above_the_threshold(source, tmp_path, capsys):
    out = tmp_path / "report.txt"
    assert main([str(source), "--report=holonomy", "--holonomy-max", "0.01", "-o", str(out)]) == 0
    text = out.read_text()
    assert "@Step" in text and "recurrent block" in text and f"{source}:3:7" in text and "FLAG" in text
    assert "@Flat" not in text
    assert main([str(source), "--report=holonomy", "--holonomy-max", "4", "--fail-on-flags"]) == 0
    assert main([str(source), "--report=holonomy", "--holonomy-max", "0.01", "--fail-on-flags", "--steps", "4"]) == 1
    err = capsys.readouterr().err
    assert "error: holonomy report: @Step (recurrent block at" in err and "> 0.01" in err


AWAY = """\
manifold H = poincare(c = 1.0)
model Away(x: H[4], y: H[4], z: H[4]) -> H[4] {
  let m = logmap(y, x) + logmap(z, x)
  return expmap(x, scale(m, 0.5))
}
"""


def test_loops_that_run_off_the_ball_are_lost_rows_not_numbers(tmp_path, capsys):
    """Iterating a step that pushes x away from y and z reaches |x| = 1 - 1e-15, where
    transport stops being an isometry in float64: those rows are reported lost (and the
    loop flagged), never turned into an angle."""
    from geomir import holonomy_check as hc

    src = tmp_path / "away.geo"
    src.write_text(AWAY)
    (r,) = hc.check_holonomy(src, batch=8)
    assert r.lost == 8 and r.flagged and "8 of 8 rows lost" in r.summary()
    assert main([str(src), "--report=holonomy", "--batch", "8", "--fail-on-flags"]) == 1
    captured = capsys.readouterr()
    assert "8/8" in captured.out and "nan" not in captured.out
    assert "rows lost (transport is no longer an isometry there" in captured.err


@pytest.mark.parametrize("argv,message", [
    (["--steps", "4"], "--steps needs --report"),
    (["--report=jets", "--holonomy-max", "1"], "--holonomy-max is an option of --report=holonomy"),
    (["--report=contracts", "--steps", "3"], "--steps is an option of --report=holonomy"),
    (["--report=holonomy", "--steps", "1"], "need --batch >= 1, --steps >= 2"),
    (["--report=holonomy", "--holonomy-max", "-1"], "--holonomy-max must be a non-negative number"),
    (["--report=holonomy", "--model", "Nope"], "no model 'Nope'"),
    (["--report=holonomy", "--wrt", "h"], "--wrt is an option of --report=jets"),
])
def test_misuse_is_one_clear_line(source, argv, message, capsys):
    assert main([str(source), *argv]) == 2  # geomc's main, in this process: an exception would escape
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3, err


NAN_POINTS = """\
manifold H = poincare(c = 1.0)
model Tri(x: H[2], y: H[2]) -> tangent H[2] {
  let z = expmap0(sqrt(logmap0(y)))
  return holonomy(logmap(x, y), x, y, z)
}
"""


def test_loop_points_the_model_makes_nan_are_reported_as_nan_not_as_the_boundary(tmp_path, capsys):
    """sqrt of a negative coordinate makes the loop point z NaN in some rows: those rows are
    lost, and the note says the model computes NaN/inf points there (before, it blamed the
    ball's boundary); the other rows keep their angles, and a batch of one NaN row does not
    break the computation."""
    import numpy as np

    from geomir import holonomy_check as hc

    src = tmp_path / "nan.geo"
    src.write_text(NAN_POINTS)
    (r,) = hc.check_holonomy(src, batch=64)
    assert 0 < r.nonfinite == r.lost < 64 and r.flagged
    assert np.isfinite(r.angles).sum() == 64 - r.nonfinite and r.max > 0
    assert f"{r.nonfinite} of 64 rows have NaN/inf loop points" in r.summary()
    assert "boundary" not in r.summary()
    assert main([str(src), "--report=holonomy", "--fail-on-flags"]) == 1
    assert "NaN/inf loop points" in capsys.readouterr().err


NAN_STEP = """\
manifold H = poincare(c = 1.0)
model Step(x: H[2]) -> H[2] {
  return expmap0(sqrt(logmap0(x)))
}
model Good(x: H[2]) -> H[2] {
  return mobius_tanh(mobius_linear(x, 2 -> 2))
}
"""


def test_a_recurrent_block_that_makes_nan_loses_those_rows_and_the_other_models_are_reported(tmp_path, capsys):
    """@Step is NaN after one step in the rows with a negative coordinate: those rows are
    lost as NaN points (before: one error for the whole program, 'lower --steps', which
    cannot help at step 1, and no line for @Good)."""
    from geomir import holonomy_check as hc

    src = tmp_path / "nanstep.geo"
    src.write_text(NAN_STEP)
    step, good = hc.check_holonomy(src, batch=32)
    assert (step.model, good.model) == ("Step", "Good")
    assert 0 < step.nonfinite == step.lost < 32 and step.flagged and "NaN/inf loop points" in step.summary()
    assert good.lost == 0 and good.nonfinite == 0
    assert main([str(src), "--report=holonomy"]) == 0
    out = capsys.readouterr().out
    assert "@Good" in out and "lower --steps" not in out
