"""Generated modules, third hunt: JAX refuses float64 arguments it would compute in
float32 (x64 off), init_params checks its seed on both backends, a path of zero points is
a ModelInputError, and transform_params under jax.jit says what to do."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import geomir
from geomir.backends.common.autodiff import ModelInputError

SOURCE = """
manifold T = torus(units = radians)
model U(x: R[3]) -> R[1] { return linear(tanh(x), 3 -> 1) }
model F(x: R[3, f64]) -> R[1, f64] { return linear(tanh(x), 3 -> 1) }
model G(x: R[3]) -> R[3] { return tanh(x) }
model Winding(p: path T[2]) -> R[2] { return winding(p) }
model Margin(p: path T[2]) -> R[1] { return winding_margin(p) }
"""


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {t: geomir.compile(SOURCE, target=t, cache_dir=cache) for t in ("torch", "jax")}


def test_float64_arguments_without_x64_are_refused(mods):
    """F(float64 params, float64 x) with x64 off returned float32 silently (JAX converts),
    though init_params refuses to build those params. (``.check`` is the call's check alone.)"""
    jm = mods["jax"]
    x64, x32 = np.ones((2, 3)), np.ones((2, 3), np.float32)
    with jax.enable_x64(True):
        p64 = {k: np.asarray(v) for k, v in jm.init_params(0, names=["F.linear0.weight", "F.linear0.bias"]).items()}
        jm.F.check(p64, (x64,))
    with jax.enable_x64(False):
        with pytest.raises(ModelInputError, match=r"F: parameter 'F.linear0.weight' is float64, which needs 64-bit JAX"):
            jm.F(p64, x64)
        with pytest.raises(ModelInputError, match=r"G: input 'x' \(!geo.point<euclidean, 3, f32>\) is float64, which "
                                                  r"needs 64-bit JAX .* compute in float32"):
            jm.G({}, x64)  # no parameters: any floating dtype, but not one JAX truncates
        p32 = {k: v.astype(np.float32) for k, v in p64.items()}
        jm.F.check(p32, (x32,))  # float32 on purpose (init_params(seed, dtype)) stays fine
        jm.G.check({}, (x32,))


BAD_SEEDS = {
    "PRNGKey": (lambda: jax.random.PRNGKey(0), "found a JAX array .*PRNG key is not a seed"),
    "key": (lambda: jax.random.key(0), "found a JAX array .*PRNG key is not a seed"),
    "jnp int": (lambda: jnp.asarray(3), r"found a JAX array \(int\d+, shape \(\)\)"),
    "negative": (lambda: -1, "found -1"),
    "None": (lambda: None, "found None"),
    "bool": (lambda: True, "found True"),
    "list": (lambda: [1, 2], "found list"),
    "float": (lambda: 1.0, "found 1.0"),
}


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("case", BAD_SEEDS)
def test_init_params_checks_its_seed(mods, target, case):
    """A JAX key or integer array failed inside NumPy ('len() of unsized object'), -1 with
    NumPy's words, True was seed 1 and [1, 2] a seed."""
    make, words = BAD_SEEDS[case]
    with pytest.raises(ModelInputError, match=f"init_params: seed must be a non-negative integer, {words}"):
        mods[target].init_params(make())


def test_numpy_integer_seeds_are_seeds(mods):
    w = ["U.linear0.weight"]
    for target, m in mods.items():
        assert np.array_equal(np.asarray(m.init_params(np.int64(3), names=w)[w[0]]),
                              np.asarray(m.init_params(3, names=w)[w[0]])), target
    with pytest.raises(ModelInputError, match="found True"):
        mods["torch"].UModule(seed=True)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_path_of_no_points_is_a_model_input_error(mods, target):
    """Shape (3, 0, 2) passed the check and failed inside the generated code (IndexError,
    ValueError); docs/language.md: a path has T >= 1 points."""
    m = mods[target]
    empty = np.zeros((3, 0, 2), np.float32)
    arg = torch.tensor(empty) if target == "torch" else jnp.asarray(empty)
    for name in ("Winding", "Margin"):
        with pytest.raises(ModelInputError, match=fr"{name}: input 'p' \(.*\) needs shape \(\.\.\., T, 2\) with T >= 1"):
            getattr(m, name)({}, arg)
    one = np.zeros((3, 1, 2), np.float32)
    m.Winding.check({}, (torch.tensor(one) if target == "torch" else jnp.asarray(one),))  # one point is a path


def test_transform_params_under_jit_says_to_call_it_outside(tmp_path):
    """It failed with JAX's TracerArrayConversionError (the transforms run in NumPy)."""
    from geomir.pipeline import with_weight_transforms

    jm = geomir.compile("model M(x: R[3]) -> R[2] { return linear(x, 3 -> 2) }", target="jax",
                        passes=with_weight_transforms(None, quantize="int8"), cache_dir=tmp_path)
    p = jm.init_params(0)
    assert np.asarray(jm.transform_params(p)["M.linear0.weight"]).shape == (2, 3)
    with pytest.raises(ModelInputError, match="transform_params: parameter 'M.linear0.weight' is traced by a JAX "
                                              "transformation .* outside it"):
        jax.jit(jm.transform_params)(p)
