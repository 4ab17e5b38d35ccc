"""Equivariance by construction (geomir.equivariance, run by verify-contracts): every
proved model passes the numeric check f(g·x) = g·f(x) (1e-10 in float64, 1e-5 in float32),
and a layer that does not commute with the group is rejected at its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects import func

import geomir
from geomir import equivariance
from geomir.dialects import contract
from geomir.passes.verify_contracts import ContractError

torch = pytest.importorskip("torch")
from geomir.equivariance_check import equivariance_error  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}

PROVED = """manifold H = poincare(c = 0.5)
manifold T = torus(units = radians)
manifold Turns = torus(units = turns)

@equivariant(ball_rotation)
model Geodesic(x: H[6], y: H[6], t: R[1]) -> H[6] {
  let minus_x = expmap0(-logmap0(x))
  return mobius_add(x, mobius_scalar(t, mobius_add(minus_x, y)))
}

@equivariant(ball_rotation)
model BallTransport(x: H[4], y: H[4]) -> H[4] {
  let v = parallel_transport(x, y, logmap(x, y))
  return proj(expmap(y, 0.5 * v - logmap(y, x)))
}

@equivariant(ball_rotation)
model BallKernel(x: H[5], y: H[5], w: R[3]) -> R[1] {
  let d = dist(x, y)
  return tanh(linear(tanh(linear(w, 3 -> 4) + linear(d, 1 -> 4)), 4 -> 1))
}

@equivariant(ball_rotation)
model TransportedSum(x: H[3], y: H[3]) -> H[3] {
  return expmap(x, logmap(x, y) + logmap0(y))   // insert-transport adds the origin: R fixes it
}

@equivariant(ball_rotation)
model BallLine(x: H[1]) -> H[1] {               // SO(1) is the identity: any model holds
  return expmap0(tanh(logmap0(x)))
}

@equivariant(perm)
model OneCoordinate(x: R[1], y: R[1]) -> R[1] {  // S_1 too (was refused: "must be invariant")
  return tanh(x) * y
}

@equivariant(so2)
model PairForce(p: R[4], q: R[4]) -> R[4] {
  let d = dist(p, q)
  let r = exp(-1.0 * d * d)
  return 0.5 * (p - q) + 0.25 * p
}

@equivariant(so2)
model PairEnergy(p: R[2], q: R[2]) -> R[1] {
  let d = dist(p, q)
  return d * d
}

@equivariant(perm)
model SetMap(x: R[6], y: R[6]) -> R[6] {
  return tanh(2.0 * x) * sigmoid(y) + pow(x, 2.0) / exp(y)
}

@equivariant(perm)
model SetDistance(x: R[5], y: R[5]) -> R[1] {
  return softplus(linear(dist(x, y), 1 -> 1))
}

@equivariant(torus_translation)
model TorusStep(theta: T[4], target: T[4]) -> T[4] {
  let v = logmap(theta, target)
  return proj(expmap(theta, 0.5 * tanh(linear(v, 4 -> 4))))
}

@equivariant(torus_translation)
model TurnsKernel(a: Turns[3], b: Turns[3]) -> R[2] {
  let d = dist(a, b)
  return linear(exp(-0.5 * d * d), 1 -> 2)
}
"""

MODELS = [("Geodesic", "ball_rotation"), ("BallTransport", "ball_rotation"), ("BallKernel", "ball_rotation"),
          ("TransportedSum", "ball_rotation"), ("BallLine", "ball_rotation"), ("OneCoordinate", "perm"),
          ("PairForce", "so2"), ("PairEnergy", "so2"), ("SetMap", "perm"), ("SetDistance", "perm"),
          ("TorusStep", "torus_translation"), ("TurnsKernel", "torus_translation")]


def _funcs(source: str) -> dict[str, func.FuncOp]:
    module = geomir.to_ir(source, passes=[])
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def _verify(source: str) -> dict[str, list]:
    module = geomir.to_ir(source, passes=["insert-transport", "verify-contracts"])
    return {op.sym_name.data: list(op.attributes.get("proved", [])) for op in module.ops if isinstance(op, func.FuncOp)}


def test_proved_models_are_recorded():
    proved = _verify(PROVED)
    for name, group in MODELS:
        assert contract.EquivariantAttr(group) in proved[name], name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,group", MODELS, ids=[m for m, _ in MODELS])
def test_proved_models_commute_with_the_group(name, group, dtype):
    assert equivariance.equivariant(_funcs(PROVED)[name], _funcs(PROVED), group)[0]
    assert equivariance_error(PROVED, name, group, dtype=dtype) < TOL[dtype]


def _example_contracts():
    for path in sorted((ROOT / "examples").glob("*.geo")):
        for name, f in _funcs(path.read_text()).items():
            for c in contract.get_contracts(f):
                if isinstance(c, contract.EquivariantAttr):
                    yield pytest.param(path, name, c.group.data, id=f"{path.stem}-{name}")


@pytest.mark.parametrize("path,name,group", list(_example_contracts()))
def test_example_equivariance_contracts_hold(path, name, group):
    proved = _verify(path.read_text())
    assert contract.EquivariantAttr(group) in proved[name]
    for dtype in TOL:
        assert equivariance_error(path, name, group, dtype=dtype) < TOL[dtype]


BROKEN = [
    # (group, model text, what the message says, the line it points at)
    ("ball_rotation", """manifold H = poincare(c = 0.5)
@equivariant(ball_rotation)
model MobiusTanh(x: H[8], y: H[8]) -> H[8] {
  let s = mobius_add(x, y)
  return mobius_tanh(s)
}""", "tanh acts coordinatewise and does not commute with rotations", 5),
    ("ball_rotation", """manifold H = poincare(c = 1.0)
@equivariant(ball_rotation)
model HypLinear(x: H[4]) -> H[4] {
  return mobius_linear(x, 4 -> 4)
}""", "a learned matrix W does not commute with rotations", 4),
    ("so2", """@equivariant(so2)
model Shifted(p: R[2]) -> R[2] {
  let h = 2.0 * p
  return linear(h, 2 -> 2)
}""", "a learned weight matrix does not commute with rotations", 4),
    ("perm", """@equivariant(perm)
model Mixer(x: R[4]) -> R[4] {
  let h = tanh(x)
  return linear(h, 4 -> 4)
}""", "a learned weight matrix mixes coordinates", 4),
    ("perm", """@equivariant(perm)
model Offset(x: R[4], b: R[4]) -> R[4] {
  return x + linear(exp(dist(x, b)), 1 -> 4)
}""", "combines a value that moves with the group and one that does not", 3),
    ("torus_translation", """manifold T = torus(units = radians)
@equivariant(torus_translation)
model Readout(theta: T[3]) -> R[1] {
  let s = sin(coords(theta))
  return linear(s, 3 -> 1)
}""", "the coordinates of a torus point shift with the translation", 4),
    ("so2", """@equivariant(so2)
model Frozen(p: R[2], q: R[2]) -> R[2] {
  let d = dist(p, q)
  return linear(d, 1 -> 2)
}""", "its output is invariant under so2 but must be equivariant", 2),
]


@pytest.mark.parametrize("group,source,why,line", BROKEN, ids=[s.split("model ")[1].split("(")[0] for _, s, _, _ in BROKEN])
def test_a_layer_that_does_not_commute_is_rejected_at_its_line(group, source, why, line):
    name = source.split("model ")[1].split("(")[0]
    with pytest.raises(ContractError) as info:
        geomir.to_ir(source, passes=["verify-contracts"])
    text = info.value.render() if hasattr(info.value, "render") else str(info.value)
    assert f"cannot prove @equivariant({group}) for model {name}" in text
    assert why in text
    assert f":{line}:" in text
    # and the rejection is right: the compiled model does not commute with the group
    assert equivariance_error(source, name, group) > 1e-3


def test_the_cli_rejects_with_file_line_col(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bad.geo"
    path.write_text(BROKEN[0][1])
    run = subprocess.run([sys.executable, "-m", "geomir.driver", str(path), "--passes=verify-contracts"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert f"{path}:3:7: error: cannot prove @equivariant(ball_rotation) for model MobiusTanh" in run.stderr
    assert f"{path}:5:10: note: here" in run.stderr
    assert "Traceback" not in run.stderr


# --- soundness over random programs --------------------------------------------------------------

_PERM_STEPS = ["tanh({v})", "sigmoid({v})", "softplus({v})", "relu({v})", "sin({v})", "2.5 * {v}",
               "{v} * {u}", "{v} + {u}", "{v} - x", "{v} / exp({u})", "pow({v}, 2.0)",
               "linear({v}, 4 -> 4)", "{v} + linear(z, 4 -> 4)"]
_BALL_STEPS = ["mobius_add({v}, {u})", "mobius_scalar(t, {v})", "expmap0(0.5 * logmap0({v}))",
               "expmap({v}, logmap({v}, {u}))", "proj({v})", "mobius_add({v}, expmap0(-logmap0({u})))",
               "mobius_tanh({v})", "mobius_matvec({v}, 4 -> 4)", "mobius_add({v}, mobius_linear({u}, 4 -> 4))"]
_PROGRAMS = {
    "perm": ("", "model F(x: R[4], y: R[4], z: R[4]) -> R[4]", "x", "y"),
    "ball_rotation": ("manifold H = poincare(c = 1.0)\n", "model F(x: H[4], y: H[4], t: R[1], z: R[2]) -> H[4]", "x", "y"),
}


@settings(max_examples=25, deadline=None)
@given(data=st.data(), group=st.sampled_from(sorted(_PROGRAMS)))
def test_random_programs_proved_equivariant_are_equivariant(data, group):
    header, signature, first, second = _PROGRAMS[group]
    steps = _PERM_STEPS if group == "perm" else _BALL_STEPS
    lines, v, u = [], first, second
    for i in range(data.draw(st.integers(1, 4))):
        step = data.draw(st.sampled_from(steps))
        lines.append(f"  let h{i} = {step.format(v=v, u=u)}")
        v, u = f"h{i}", v
    source = f"{header}@equivariant({group})\n{signature} {{\n" + "\n".join(lines) + f"\n  return {v}\n}}\n"
    f = _funcs(source)["F"]
    holds, _, broken = equivariance.equivariant(f, {"F": f}, group)
    if holds:
        assert equivariance_error(source, "F", group, trials=3, batch=8) < 1e-10, source
    else:
        assert broken is not None and broken.why, source
