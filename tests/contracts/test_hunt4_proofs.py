"""Soundness fixes of the contract prover and the IR verifier (bug hunt 4): the proof sees
the weights the compiled module runs with (a weights file rounded to the element type
before its transforms; bf16 and f16 rounded once, by every backend alike), the layered
bound carries the rounding of its float64 products, weight transforms only on tensor
parameters, and IR dimensions bounded as in .geo."""

from __future__ import annotations

import contextlib
import io
from fractions import Fraction

import numpy as np
import pytest

import geomir
from geomir import certify
from geomir.backends.common import weights
from geomir.backends.common.init import ParamSpec, draw
from geomir.dialects import contract
from geomir.driver import main
from geomir.pipeline import with_weight_transforms

torch = pytest.importorskip("torch")


def _proved(module, name: str) -> float:
    f = next(op for op in module.ops if getattr(op, "sym_name", None) and op.sym_name.data == name)
    (attr,) = [c for c in f.attributes["proved"].data if isinstance(c, contract.LipschitzAttr)]
    return attr.bound_value


def _geomc(tmp_path, text: str, *options: str) -> tuple[int, str]:
    path = tmp_path / "input.mlir"
    path.write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(path), *options])
    return rc, err.getvalue()


# -- 1. a float64 weights file of an f32 model, quantized ----------------------------------------


def test_a_float64_weights_file_is_quantized_from_the_values_the_f32_module_holds(tmp_path):
    """0.5 - 1e-12 is 0.5 in float32: int8 code 63.5 -> 64 (ties to even) in the module, but
    63 from the float64 value: the prover proved 1.11628 < 1.1198, the deployed constant."""
    from geomir.backends.torch.model import transform_params

    w = np.array([[1.0, 0.5 - 1e-12]])
    path = tmp_path / "w.npz"
    np.savez(path, **{"L.linear0.weight": w, "L.linear0.bias": np.zeros(1)})
    source = "@lipschitz(2.0)\nmodel L(x: R[2]) -> R[1] {\n  return linear(x, 2 -> 1)\n}\n"
    module = geomir.to_ir(source, passes=with_weight_transforms("", quantize="int8", weights_file=str(path)))
    held = {"L.linear0.weight": torch.from_numpy(w).float()}  # the trained file loaded into the module
    spec = ParamSpec((1, 2), "glorot_uniform", dtype=torch.float32, transforms=("quantize:int8",))
    deployed = transform_params({"L.linear0.weight": spec}, held)["L.linear0.weight"].double().numpy()
    assert deployed[0, 1] == pytest.approx(64 / 127, rel=1e-6)
    assert _proved(module, "L") >= np.linalg.norm(deployed, 2)


def test_a_ball_point_that_rounds_onto_the_boundary_is_a_usage_error(tmp_path):
    """|b| = 1 - 1e-9 is on the ball in float64 but 1.0 in the f32 module: no proof."""
    from geomir.diagnostics import UsageError

    path = tmp_path / "w.npz"
    np.savez(path, **{"M.mobius_linear0.weight": np.eye(2), "M.mobius_linear0.bias": np.array([1 - 1e-9, 0.0])})
    source = ("manifold H = poincare(c = 1.0)\n@lipschitz(1e9, radius = 0.1)\n"
              "model M(x: H[2]) -> H[2] {\n  return mobius_linear(x, 2 -> 2)\n}\n")
    with pytest.raises(UsageError, match="'M.mobius_linear0.bias' is not a point of the Poincaré ball once rounded"):
        geomir.to_ir(source, passes=with_weight_transforms("", weights_file=str(path)))


# -- 2. the layered bound's float64 products -----------------------------------------------------


def test_the_layered_bound_carries_the_rounding_of_its_products():
    """W2 W1 = 2^60 + 128 - 2^60 = 128 exactly, 0 in float64: the bound was 0."""
    w1, w2 = np.array([[2.0**60], [128.0], [-(2.0**60)]]), np.array([[1.0, 1.0, 1.0]])
    exact = abs(sum(Fraction(a) * Fraction(b) for a, b in zip(w2[0], w1[:, 0])))
    assert exact == 128
    assert certify.layered_lipschitz_bound([w1, w2], [(1.0, 1.0)]) >= 128
    assert certify.layered_lipschitz_bound([w1, w2], [(0.0, 1.0)]) >= 64  # c = 1/2 on the merged block


def test_the_layered_bound_stays_tight_on_ordinary_layers():
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((16, 16)) / 4 for _ in range(3)]
    bound = certify.layered_lipschitz_bound(mats, [(1.0, 1.0)] * 2)
    exact = np.linalg.norm(mats[2] @ mats[1] @ mats[0], 2)
    assert exact <= bound <= exact * (1 + 1e-9)


# -- 3. bf16 (and f16) rounded once, alike in the prover, torch and JAX --------------------------

TIES = {"bf16": (1 + 2**-8 + 2**-30, 1.0078125), "f16": (1 + 2**-11 + 2**-40, 1 + 2**-10)}
"""A float64 value whose rounding through float32 lands on the other neighbour: the nearest."""


@pytest.mark.parametrize("elt", sorted(TIES))
def test_the_prover_rounds_float64_to_the_nearest_value(elt):
    value, nearest = TIES[elt]
    assert weights.as_element_type(np.array([value]), elt)[0] == nearest
    if elt == "bf16":
        assert weights.apply(np.array([value]), ["quantize:bf16"])[0] == nearest


def test_bf16_rounding_edges():
    big = 3.3895313892515355e38  # the largest bfloat16
    values = np.array([-0.0, big, 3.3961e38, -1e39, 2.0**-133, 2.0**-134, 3 * 2.0**-134, np.nan, -np.inf])
    out = weights.as_element_type(values, "bf16")
    expected = [-0.0, big, big, -np.inf, 2.0**-133, 0.0, 2.0**-132, np.nan, -np.inf]
    np.testing.assert_array_equal(out, expected)
    assert np.signbit(out[0])


def _backends():
    from geomir.backends.torch import model as torch_model

    out = [(torch_model, {"bf16": torch.bfloat16, "f16": torch.float16}, lambda t: t.double().numpy())]
    with contextlib.suppress(ImportError):
        import jax.numpy as jnp

        from geomir.backends.jax import model as jax_model

        out.append((jax_model, {"bf16": jnp.bfloat16, "f16": jnp.float16}, lambda a: np.asarray(a, np.float64)))
    return out


@pytest.mark.parametrize("elt", sorted(TIES))
def test_every_backend_initialises_the_values_the_prover_proved(elt, monkeypatch):
    value, nearest = TIES[elt]
    spec = {"F.w": ParamSpec((1,), "zeros")}
    for backend, dtypes, numpy_of in _backends():
        monkeypatch.setattr(backend, "draw", lambda name, spec, seed: np.array([value]))
        assert numpy_of(backend.init_params(spec, dtype=dtypes[elt])["F.w"])[0] == nearest, backend.__name__


def test_a_bf16_model_runs_the_proved_weights_in_every_backend():
    """The int8 codes of a bf16 layer (dequantized in float64, then rounded to bf16): JAX
    rounded once, torch and the prover through float32, on 18 of these entries; the same
    for trained bf16 weights through ``transform_params``."""
    name, ts = "Enc.linear0.weight", ("quantize:int8",)
    spec = ParamSpec((512, 512), "glorot_uniform", transforms=ts)
    proved = weights.as_element_type(draw(name, spec, 0), "bf16")
    trained = weights.as_element_type(draw(name, ParamSpec(spec.shape, spec.init), 0), "bf16")
    proved_trained = weights.as_element_type(weights.apply(trained, ts), "bf16")  # verify-contracts{weights=...}
    for backend, dtypes, numpy_of in _backends():
        specs = {name: ParamSpec(spec.shape, spec.init, dtype=dtypes["bf16"], transforms=ts)}
        np.testing.assert_array_equal(numpy_of(backend.init_params(specs)[name]), proved, err_msg=backend.__name__)
        held = backend.init_params({name: ParamSpec(spec.shape, spec.init, dtype=dtypes["bf16"])})
        np.testing.assert_array_equal(numpy_of(held[name]), trained, err_msg=backend.__name__)
        deployed = numpy_of(backend.transform_params(specs, held)[name])
        np.testing.assert_array_equal(deployed, proved_trained, err_msg=backend.__name__)


# -- 4. weight transforms on a point parameter -----------------------------------------------------

BALL = "!geo.point<poincare<1.0>, 2, f32>"


def test_weight_transforms_on_a_point_parameter_are_refused(tmp_path):
    text = (f"builtin.module {{\n  func.func @M(%x: {BALL}) -> {BALL} {{\n"
            f'    %b = geo.param "M.b" init "zeros" {{weight_transforms = ["quantize:bf16"]}} : {BALL}\n'
            f"    %y = geo.mobius_add %x, %b : {BALL}, {BALL} -> {BALL}\n    func.return %y : {BALL}\n  }}\n}}\n")
    rc, err = _geomc(tmp_path, text, "--passes=")
    assert rc == 1 and "Traceback" not in err, err
    assert "input.mlir:3:5: error:" in err
    assert "'M.b': 'weight_transforms' apply to tensor parameters only, found them on !geo.point" in err


# -- 5. dimensions past 2**31 - 1 in the IR -------------------------------------------------------


@pytest.mark.parametrize("kind", ["point", "tangent", "path"])
def test_a_type_of_too_large_a_dimension_is_refused(kind, tmp_path):
    manifold = "torus<radians>" if kind == "path" else "euclidean"
    t = f"!geo.{kind}<{manifold}, {10**23}, f32>"
    text = f"builtin.module {{\n  func.func @M(%x: {t}) -> {t} {{\n    func.return %x : {t}\n  }}\n}}\n"
    rc, err = _geomc(tmp_path, text, "--passes=")
    assert rc == 1 and "Traceback" not in err, err
    assert (f"input.mlir:2:20: error: geo.{kind}: the dimension is too large: the largest dimension is "
            "2147483647 (2**31 - 1), found a 24-digit number") in err


def test_a_parameter_tensor_of_too_large_a_dimension_is_refused(tmp_path):
    t = "!geo.point<euclidean, 2, f32>"
    text = (f"builtin.module {{\n  func.func @M(%x: {t}) -> {t} {{\n"
            f'    %w = geo.param "M.w" init "zeros" : tensor<2x99999999999999999999xf32>\n'
            f"    func.return %x : {t}\n  }}\n}}\n")
    rc, err = _geomc(tmp_path, text, "--passes=")
    assert rc == 1 and "Traceback" not in err, err
    assert ("input.mlir:3:5: error:" in err and "'M.w': dimension 1 of its tensor type is too large: the largest "
            "dimension is 2147483647 (2**31 - 1), found 99999999999999999999") in err


def test_the_largest_dimension_is_accepted():
    from geomir.dialects import geo

    geo.PointType(geo.EuclideanAttr(), 2**31 - 1).verify()
    with pytest.raises(Exception, match="too large"):
        geo.PointType(geo.EuclideanAttr(), 2**31)
