"""@equivariant(G) acts by one and the same group element on every input the group acts on
(docs/language.md). A model whose acted inputs have different dimensions cannot be acted on
by one permutation / rotation / shift, so the type checker refuses the annotation
(geomir.dialects.contract.signature_problem, also the IR verifier's rule); it used to be
proved with the differently sized inputs silently held fixed, which a tester permuting every
Euclidean input found broken. The prover (geomir.equivariance.inputs_problem) and the
numeric checker keep the same rule as a backstop. so2 is one angle for every coordinate
pair, so mixed even sizes stay proved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func

import geomir
from geomir import equivariance
from geomir.diagnostics import ContractAnnotationError, UsageError
from geomir.dialects import contract
from geomir.passes.verify_contracts import ContractError
from geomir.pipeline import UNCHECKED_PIPELINE

ROOT = Path(__file__).resolve().parents[2]

PERM_MIXED = """@equivariant(perm)
model A(x: R[3], y: R[2]) -> R[1] { return dist(x, x) + linear(y, 2 -> 1) }
"""

# Invariant under any permutation of x and any permutation of y (|x| and |y|): the rule
# refuses it all the same, since it is about the signature: one permutation cannot act on both.
PERM_MIXED_INVARIANT = """@equivariant(perm)
model B(x: R[3], y: R[2]) -> R[1] { return linear(dist(x, 2.0 * x), 1 -> 1) + dist(y, 3.0 * y) }
"""

PERM_SAME_SIZE = PERM_MIXED_INVARIANT.replace("y: R[2]", "y: R[3]")

BALL_MIXED = """manifold H = poincare(c = 1.0)

@equivariant(ball_rotation)
model Ball(x: H[3], y: H[2]) -> R[1] {
  return dist(x, expmap0(0.5 * logmap0(x))) + linear(coords(y), 2 -> 1)
}
"""

TORUS_MIXED = """manifold T = torus(units = radians)

@equivariant(torus_translation)
model Torus(a: T[3], b: T[2]) -> R[1] {
  return dist(a, a) + linear(sin(coords(b)), 2 -> 1)
}
"""

# Handled per the rule: perm acts on the Euclidean points only (one size), the ball point h
# is held fixed, as documented; so2 rotates every pair of p and q by one angle; one rotation
# acts on balls of two curvatures, one shift of the angles on tori of two periods.
HANDLED = """manifold H = poincare(c = 1.0)
manifold K = poincare(c = 0.3)
manifold T = torus(units = radians)
manifold Turns = torus(units = turns)

@equivariant(ball_rotation)
model Curvatures(x: H[3], y: K[3]) -> R[1] {
  return dist(x, expmap0(0.5 * logmap0(x))) * tanh(dist(y, mobius_add(y, y)))
}

@equivariant(torus_translation)
model Periods(a: T[2], b: T[2], c: Turns[2], d: Turns[2]) -> R[1] {
  return sin(dist(a, b)) + linear(dist(c, d), 1 -> 1)
}

@equivariant(perm)
model Conditioned(x: R[3], y: R[3], h: H[2]) -> R[1] {
  return linear(dist(x, y), 1 -> 1) + linear(coords(h), 2 -> 1)
}

@equivariant(so2)
model Pairs(p: R[2], q: R[4]) -> R[1] {
  return tanh(linear(dist(p, 0.5 * p), 1 -> 1)) + dist(q, 2.0 * q) * dist(q, -1.0 * q)
}
"""

# A fixed offset added to a permuted vector, with every Euclidean input of one size (the
# proposed replacement of the Offset case of tests/contracts/test_verify_equivariance.py).
OFFSET = """@equivariant(perm)
model Offset(x: R[4], b: R[4]) -> R[4] {
  return x + linear(exp(dist(x, b)), 1 -> 4)
}
"""


def _funcs(source: str) -> dict[str, func.FuncOp]:
    module = geomir.to_ir(source, passes=[])
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def _proved(source: str) -> dict[str, list]:
    module = geomir.to_ir(source, passes=["verify-contracts"])
    return {op.sym_name.data: list(op.attributes.get("proved", [])) for op in module.ops if isinstance(op, func.FuncOp)}


def _refusal(source: str) -> str:
    with pytest.raises(ContractAnnotationError) as info:
        geomir.to_ir(source, passes=["verify-contracts"])
    return info.value.render()


def _plain(source: str) -> str:
    """The source without its @equivariant line: the model itself, to run it."""
    return "\n".join(line for line in source.splitlines() if not line.startswith("@equivariant"))


def _model_types(source: str, name: str):
    f = _funcs(_plain(source))[name]
    return f.function_type.inputs.data, [a.name_hint for a in f.body.block.args]


def test_equivariant_perm_with_inputs_of_different_sizes_is_refused_at_the_annotation():
    text = _refusal(PERM_MIXED)
    assert text.startswith("<string>:1:14: error: @equivariant(perm) acts by one group element on all its "
                           "Euclidean inputs, so they need one dimension; found dimensions 3, 2"), text
    # the prover's backstop, on the model's types: the same rule
    types, names = _model_types(PERM_MIXED, "A")
    assert equivariance.inputs_problem("perm", types, names) == (
        "perm acts by one and the same permutation of the coordinates on every Euclidean input, "
        "so they need one dimension; x is R[3], y is R[2]")


def test_equivariant_perm_mixed_sizes_cli_exits_with_a_located_error(tmp_path):
    path = tmp_path / "perm.geo"
    path.write_text(PERM_MIXED)
    run = subprocess.run([sys.executable, "-m", "geomir.driver", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1, run.stdout
    assert f"{path}:1:14: error: @equivariant(perm) acts by one group element" in run.stderr
    assert "found dimensions 3, 2" in run.stderr
    assert "proved" not in run.stdout and "Traceback" not in run.stderr


def test_equivariant_perm_mixed_model_is_not_invariant_when_every_input_is_permuted():
    """Why the old 'proved' was wrong: permuting both inputs, as the contract reads, moves
    the output (the tester's f(x, y) = -f(Px, Py))."""
    torch = pytest.importorskip("torch")
    m = geomir.compile(_plain(PERM_MIXED), target="torch", passes=UNCHECKED_PIPELINE)
    p = m.init_params(seed=0, dtype=torch.float64)
    x = torch.tensor([[0.3, -1.2, 0.7]], dtype=torch.float64)
    y = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    before = m.A(p, x, y)
    after = m.A(p, x[:, [2, 0, 1]], y[:, [1, 0]])
    assert float((before - after).abs().max()) > 1e-3


@pytest.mark.parametrize("source,name,group,found,annotation", [
    (BALL_MIXED, "Ball", "ball_rotation",
     "one and the same rotation on every input on the Poincaré ball, so they "
     "need one dimension; x is poincare<1.0>[3], y is poincare<1.0>[2]", "inputs on the Poincaré ball"),
    (TORUS_MIXED, "Torus", "torus_translation",
     "one and the same shift of the angles on every input on a torus, so "
     "they need one dimension; a is torus<radians>[3], b is torus<radians>[2]", "inputs on a torus"),
], ids=["ball", "torus"])
def test_equivariant_ball_and_torus_with_inputs_of_different_dimensions_are_refused(source, name, group, found,
                                                                                     annotation):
    types, names = _model_types(source, name)
    assert found in equivariance.inputs_problem(group, types, names)
    text = _refusal(source)
    assert f"<string>:3:14: error: @equivariant({group}) acts by one group element on all its {annotation}" in text


def test_equivariant_ball_mixed_model_is_not_invariant_when_both_points_rotate():
    torch = pytest.importorskip("torch")
    m = geomir.compile(_plain(BALL_MIXED), target="torch", passes=UNCHECKED_PIPELINE)
    p = m.init_params(seed=0, dtype=torch.float64)
    ball = m.poincare_c1
    x = ball.expmap0(torch.tensor([[0.2, -0.1, 0.3]], dtype=torch.float64))
    y = ball.expmap0(torch.tensor([[0.4, 0.1]], dtype=torch.float64))
    q3 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    q2 = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    assert float((m.Ball(p, x, y) - m.Ball(p, x @ q3.T, y @ q2.T)).abs().max()) > 1e-3


def test_equivariant_the_checker_refuses_with_the_provers_rule():
    """equivariance_error on a model without the annotation, asked for the group: the
    prover's words, a UsageError."""
    pytest.importorskip("torch")
    from geomir.equivariance_check import equivariance_error

    for source, name, group in [(PERM_MIXED, "A", "perm"), (BALL_MIXED, "Ball", "ball_rotation"),
                                (TORUS_MIXED, "Torus", "torus_translation")]:
        types, names = _model_types(source, name)
        why = equivariance.inputs_problem(group, types, names)
        with pytest.raises(UsageError) as info:
            equivariance_error(_plain(source), name, group)
        assert why in info.value.message


def test_equivariant_a_genuinely_invariant_mixed_model_is_refused_by_the_same_rule():
    torch = pytest.importorskip("torch")
    text = _refusal(PERM_MIXED_INVARIANT)
    assert "found dimensions 3, 2" in text
    # it is invariant under separate permutations of x and y: the refusal is conservative, not wrong
    m = geomir.compile(_plain(PERM_MIXED_INVARIANT), target="torch", passes=UNCHECKED_PIPELINE)
    p = m.init_params(seed=0, dtype=torch.float64)
    rng = np.random.default_rng(1)
    x, y = (torch.tensor(rng.normal(size=(8, n))) for n in (3, 2))
    torch.testing.assert_close(m.B(p, x[:, [1, 2, 0]], y[:, [1, 0]]), m.B(p, x, y), rtol=1e-12, atol=1e-12)
    # and with one size it is proved, and the checker agrees
    from geomir.equivariance_check import equivariance_error

    assert contract.EquivariantAttr("perm") in _proved(PERM_SAME_SIZE)["B"]
    assert equivariance_error(PERM_SAME_SIZE, "B", "perm") < 1e-10


@pytest.mark.parametrize("name,group,acted", [
    ("Conditioned", "perm", [True, True, False]), ("Pairs", "so2", [True, True]),
    ("Curvatures", "ball_rotation", [True, True]), ("Periods", "torus_translation", [True] * 4),
])
def test_equivariant_mixed_models_within_the_rule_are_proved_and_hold(name, group, acted):
    pytest.importorskip("torch")
    from geomir.equivariance_check import equivariance_error

    assert contract.EquivariantAttr(group) in _proved(HANDLED)[name]
    assert equivariance.acted_inputs(group, _funcs(HANDLED)[name].function_type.inputs.data) == acted
    assert equivariance_error(HANDLED, name, group) < 1e-10


def test_equivariant_perm_fixed_offset_of_one_size_breaks_where_it_combines():
    pytest.importorskip("torch")
    from geomir.equivariance_check import equivariance_error

    with pytest.raises(ContractError) as info:
        geomir.to_ir(OFFSET, passes=["verify-contracts"])
    text = info.value.render()
    assert "combines a value that moves with the group and one that does not" in text
    assert "<string>:3:" in text
    assert equivariance_error(OFFSET, "Offset", "perm") > 1e-3
