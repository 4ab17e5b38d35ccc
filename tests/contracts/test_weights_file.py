"""Contracts of trained weights: ``geomc --weights=FILE`` / ``verify-contracts{weights=...}``
proves the contracts of a saved parameter dict instead of the seed-0 initialisation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func

import geomir
from geomir.diagnostics import UsageError
from geomir.passes.verify_contracts import ContractError, lipschitz_contracts
from geomir.pipeline import with_weight_transforms
from geomir.weights_file import WeightFile, save_weights

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lipschitz_classifier.geo"


def _proved(module) -> dict[str, list[str]]:
    return {op.sym_name.data: [str(a) for a in op.attributes.get("proved", [])] for op in module.ops if isinstance(op, func.FuncOp)}


def _verify(path, weights=None, quantize=None):
    return geomir.to_ir(path, passes=with_weight_transforms("", quantize=quantize, weights_file=weights))


@pytest.fixture(scope="module")
def compiled():
    return geomir.compile(EXAMPLE, target="torch")


def test_the_seed_0_weights_saved_prove_what_seed_0_proves(compiled, tmp_path):
    path = save_weights(compiled.init_params(seed=0, dtype=torch.float64), tmp_path / "init.npz")
    assert _proved(_verify(EXAMPLE, path)) == _proved(geomir.to_ir(EXAMPLE, passes="verify-contracts"))


def test_scaled_weights_break_the_contract_and_the_note_names_the_file(compiled, tmp_path):
    params = {k: v * 1.3 for k, v in compiled.init_params(seed=0, dtype=torch.float64).items()}
    path = save_weights(params, tmp_path / "scaled.npz")
    with pytest.raises(ContractError) as info:
        _verify(EXAMPLE, path)
    text = info.value.render()
    (_, _, before), = [x for x in lipschitz_contracts(geomir.to_ir(EXAMPLE, passes=[]))]
    assert f"the proved bound is {before.bound * 1.3**3:.6g}" in text  # three layers, each 1.3x
    assert f"(weights of {path})" in text


def test_a_state_dict_of_the_compiled_module_is_read(compiled, tmp_path):
    net = compiled.RobustClassifierModule(seed=0)
    dose = compiled.DoseResponseModule(seed=0)
    path = tmp_path / "state.pt"
    torch.save({**net.state_dict(), **dose.state_dict()}, path)
    got, want = _proved(_verify(EXAMPLE, path)), _proved(geomir.to_ir(EXAMPLE, passes="verify-contracts"))
    assert got["DoseResponse"] == want["DoseResponse"]
    bound = lambda text: float(text.split("<")[1].rstrip(">"))  # noqa: E731
    # the module holds float32 weights: the bound of the rounded weights, within 1e-6
    assert bound(got["RobustClassifier"][0]) == pytest.approx(bound(want["RobustClassifier"][0]), rel=1e-6)


def test_weights_trained_with_the_projection_stay_monotone_and_without_it_do_not(compiled, tmp_path):
    from geomir.backends.torch.optim import RiemannianAdam

    results = {}
    for optimizer in ("geomir", "plain"):
        net = compiled.DoseResponseModule(seed=0, dtype=torch.float64)
        opt = RiemannianAdam(net.parameters(), lr=0.3) if optimizer == "geomir" else torch.optim.Adam(net.parameters(), lr=0.3)
        g = torch.Generator().manual_seed(1)
        dose, cov = torch.randn(64, 1, generator=g, dtype=torch.float64), torch.randn(64, 4, generator=g, dtype=torch.float64)
        target = -2.0 * dose  # a decreasing target: training pushes the dose weights negative
        for _ in range(20):
            opt.zero_grad()
            ((net(dose, cov) - target) ** 2).mean().backward()
            opt.step()
        params = {**compiled.init_params(seed=0, names=[n for n in compiled.PARAMS if n.startswith("RobustClassifier")]),
                  **net.named_geo_parameters()}
        path = save_weights(params, tmp_path / f"{optimizer}.npz")
        try:
            _verify(EXAMPLE, path)
            results[optimizer] = "proved"
        except ContractError as err:
            results[optimizer] = err.render()
    assert results["geomir"] == "proved"
    assert "cannot prove @monotone(dose, increasing) for model DoseResponse: weights of mixed sign" in results["plain"]
    assert "(weights of " in results["plain"]


def test_trained_weights_are_quantized_close_to_the_init(compiled, tmp_path):
    """A float64 file is rounded to the f32 parameters first, as the module holds it, then
    quantized (the seed proof quantizes the float64 draw): the bounds agree to f32 rounding."""
    path = save_weights(compiled.init_params(seed=0, dtype=torch.float64), tmp_path / "init.npz")
    with_file = _proved(_verify(EXAMPLE, path, quantize="int8"))
    seed = _proved(_verify(EXAMPLE, None, quantize="int8"))
    assert with_file.keys() == seed.keys()
    for name in seed:
        assert len(with_file[name]) == len(seed[name])
        for a, b in zip(with_file[name], seed[name]):
            bound = [float(s) for s in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", a)]
            expected = [float(s) for s in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", b)]
            assert a.split("<")[0] == b.split("<")[0] and bound == pytest.approx(expected, rel=1e-6)


def test_bad_weights_files_are_usage_errors(compiled, tmp_path):
    params = {k: v.numpy().astype(np.float64) for k, v in compiled.init_params(seed=0).items()}
    missing = save_weights({k: v for k, v in params.items() if "linear2" not in k}, tmp_path / "missing.npz")
    with pytest.raises(UsageError, match=r"has no parameter 'RobustClassifier.linear2.weight'"):
        _verify(EXAMPLE, missing)
    shaped = save_weights({**params, "RobustClassifier.linear0.weight": np.zeros((3, 3))}, tmp_path / "shape.npz")
    with pytest.raises(UsageError, match=r"'RobustClassifier.linear0.weight' has shape \(3, 3\), the model expects \(64, 32\)"):
        _verify(EXAMPLE, shaped)
    nan = dict(params)
    nan["RobustClassifier.linear1.bias"] = np.full(64, np.nan)
    with pytest.raises(UsageError, match="contains NaN or inf"):
        _verify(EXAMPLE, save_weights(nan, tmp_path / "nan.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="cannot read weights file"):
        WeightFile(tmp_path / "junk.npz")
    # complex lost its imaginary part, bool became 0/1, strings crashed (a ValueError)
    for bad, dtype in [(params["RobustClassifier.linear1.bias"] + 1j, "complex128"),
                       (params["RobustClassifier.linear1.bias"] > 0, "bool"), (np.full(64, "a"), "str32")]:
        np.savez(tmp_path / "bad.npz", **{**params, "RobustClassifier.linear1.bias": bad})
        with pytest.raises(UsageError, match=f"'RobustClassifier.linear1.bias' holds {dtype} values; weights are real"):
            WeightFile(tmp_path / "bad.npz")
    ints = {**params, "RobustClassifier.linear1.bias": np.arange(64)}
    np.savez(tmp_path / "ints.npz", **ints)
    assert WeightFile(tmp_path / "ints.npz").arrays["RobustClassifier.linear1.bias"].dtype == np.float64


def test_geomc_weights(compiled, tmp_path):
    path = save_weights(compiled.init_params(seed=0), tmp_path / "w.npz")
    run = subprocess.run([sys.executable, "-m", "geomir.driver", str(EXAMPLE), f"--weights={path}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "proved = [#contract.lipschitz<3.52" in run.stdout
    run = subprocess.run([sys.executable, "-m", "geomir.driver", str(EXAMPLE), f"--weights={tmp_path / 'nope.npz'}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_transform_params_gives_the_weights_the_proof_saw(target, tmp_path):
    """Trained weights + --quantize/--prune: the module's transform_params applies the
    recorded transforms (not the init-only nonnegativity) to them."""
    pytest.importorskip(target)
    from geomir.backends.common import weights

    mod = geomir.compile(EXAMPLE, target=target, passes=with_weight_transforms(None, quantize="int8", prune="magnitude:0.5"))
    trained = {k: v * 1.1 for k, v in mod.init_params(seed=4).items()}
    deployed = mod.transform_params(trained)
    w = np.asarray(trained["RobustClassifier.linear1.weight"], dtype=np.float64)
    expected = weights.apply(w, ["prune:magnitude:0.5", "quantize:int8"])
    assert np.allclose(np.asarray(deployed["RobustClassifier.linear1.weight"], dtype=np.float64), expected, rtol=1e-6, atol=1e-7)
    bias = "RobustClassifier.linear1.bias"
    assert np.array_equal(np.asarray(deployed[bias]), np.asarray(trained[bias]))  # int8 keeps biases
    dose = "DoseResponse.linear0.weight"  # constrained: pruned and quantized, never abs()'d
    assert np.allclose(np.asarray(deployed[dose], dtype=np.float64),
                       weights.apply(np.asarray(trained[dose], dtype=np.float64), ["prune:magnitude:0.5", "quantize:int8"]),
                       rtol=1e-6, atol=1e-7)


def test_keys_are_ir_names_and_state_dict_keys_decode_exactly(tmp_path):
    """An .npz key is the IR name as written ('__' included: a model may be named M__x);
    a state_dict key inverts param_key; two keys naming one parameter are refused (the
    last one used to win silently, proving a decreasing model @monotone)."""
    from geomir.backends.torch.model import param_key
    from geomir.weights_file import ir_name

    for name in ["M.linear0.weight", "My__Net.linear0.weight", "A.b_c.w", "Wé.x", "a_.b", "M__linear0.weight"]:
        assert ir_name("params." + param_key(name)) == name
        assert ir_name(name) == name
    src = "model M(x: R[1]) -> R[1] { return linear(x, 1 -> 1) }\n"
    np.savez(tmp_path / "w.npz", **{"M.linear0.weight": [[-1.0]], "M.linear0.bias": [0.0], "M__linear0.weight": [[1.0]]})
    w = WeightFile(tmp_path / "w.npz")
    assert w.arrays["M.linear0.weight"].tolist() == [[-1.0]] and w.arrays["M__linear0.weight"].tolist() == [[1.0]]
    torch.save({"params.M__linear0__weight": torch.ones(1, 1), "M.linear0.weight": torch.ones(1, 1)}, tmp_path / "t.pt")
    with pytest.raises(UsageError, match="both name the parameter 'M.linear0.weight'"):
        WeightFile(tmp_path / "t.pt")
    compiled = geomir.compile(src.replace("model M", "model My__Net"), target="torch")
    torch.save(compiled.My__NetModule(seed=1).state_dict(), tmp_path / "net.pt")
    assert set(WeightFile(tmp_path / "net.pt").arrays) == {"My__Net.linear0.weight", "My__Net.linear0.bias"}
