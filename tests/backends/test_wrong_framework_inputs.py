"""A torch module given JAX parameters or inputs, or a JAX module given torch tensors, says
so: it said "is float32, the parameters float32: give both the same dtype" (JAX arrays
passed torch's dtype comparison as unequal), or took a torch tensor for a JAX array."""

from __future__ import annotations

import pytest
import torch

import geomir
from geomir.backends.common.autodiff import ModelInputError

jnp = pytest.importorskip("jax.numpy")

SRC = "model U(x: R[3]) -> R[1] { return linear(tanh(linear(x, 3 -> 4)), 4 -> 1) }\nderive lap = laplacian(U)\n"


@pytest.fixture(scope="module")
def mods():
    return geomir.compile(SRC, target="torch"), geomir.compile(SRC, target="jax")


@pytest.mark.parametrize("name", ["U", "lap"])
def test_params_of_the_other_framework(mods, name):
    mt, mj = mods
    with pytest.raises(ModelInputError, match=r"parameter 'U.linear0.weight' must be a torch tensor, found ArrayImpl"):
        getattr(mt, name)(mj.init_params(0), torch.ones(2, 3))
    with pytest.raises(ModelInputError, match=r"parameter 'U.linear0.weight' must be a JAX array, found Tensor"):
        getattr(mj, name)(mt.init_params(0), jnp.ones((2, 3)))


@pytest.mark.parametrize("name", ["U", "lap"])
def test_inputs_of_the_other_framework(mods, name):
    mt, mj = mods
    with pytest.raises(ModelInputError, match=r"input 'x' .* must be a JAX array, found Tensor"):
        getattr(mj, name)(mj.init_params(0), torch.ones(2, 3))
    with pytest.raises(ModelInputError, match=r"input 'x' .* must be a torch tensor, found ArrayImpl"):
        getattr(mt, name)(mt.init_params(0), jnp.ones((2, 3)))


def test_numpy_inputs_still_reach_jax(mods):
    import numpy as np

    _, mj = mods
    out = mj.U(mj.init_params(0), np.ones((2, 3), np.float32))
    assert out.shape == (2, 1)
