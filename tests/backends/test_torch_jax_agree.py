"""Backends as interchangeable functors of one IR: every example, every function, the same
numbers (and gradients) from the generated PyTorch and JAX code."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import geomir

from .helpers import EXAMPLES, functions, inputs_for

jax.config.update("jax_enable_x64", True)

CASES = [(path, f.sym_name.data) for path in EXAMPLES for f in functions(path)]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}
JAX_DTYPE = {torch.float32: jnp.float32, torch.float64: jnp.float64}


def _flat(out):
    return [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    cache = tmp_path_factory.mktemp("geomir-cache")
    return {
        path: (geomir.compile(path, target="torch", cache_dir=cache), geomir.compile(path, target="jax", cache_dir=cache))
        for path in EXAMPLES
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("path,name", CASES, ids=[f"{p.stem}:{n}" for p, n in CASES])
def test_values_and_gradients_agree(compiled, path, name, dtype) -> None:
    tm, jm = compiled[path]
    f = next(f for f in functions(path) if f.sym_name.data == name)
    xs = inputs_for(f, dtype=dtype)
    tparams = tm.init_params(seed=3, dtype=dtype, names=tm.FUNCTION_PARAMS[name])
    jparams = jm.init_params(seed=3, dtype=JAX_DTYPE[dtype], names=jm.FUNCTION_PARAMS[name])
    for key in tparams:  # same initial parameters on both backends
        np.testing.assert_allclose(np.asarray(jparams[key]), tparams[key].numpy(), **TOL[dtype])

    tparams = {k: v.requires_grad_() for k, v in tparams.items()}
    tout = getattr(tm, name)(tparams, *xs)
    jxs = [jnp.asarray(x.numpy()) for x in xs]
    jf = getattr(jm, name)

    def summary(out):
        return sum((o * o).sum() for o in (out if isinstance(out, tuple) else (out,)))

    # One jit for the outputs and the gradient of a scalar summary (XLA compiles once).
    @jax.jit
    def value_and_param_grad(params):
        out = jf(params, *jxs)
        return out, (jax.grad(lambda p: summary(jf(p, *jxs)))(params) if params else {})

    jout, jgrads = value_and_param_grad(jparams)
    for a, b in zip(_flat(tuple(t.detach() for t in (tout if isinstance(tout, tuple) else (tout,)))), _flat(jout)):
        assert np.all(np.isfinite(a)), f"{name}: non-finite torch output"
        np.testing.assert_allclose(b, a, **TOL[dtype])

    # Gradient of the summary w.r.t. the parameters.
    if not tparams:
        return
    tgrads = torch.autograd.grad(summary(tout), list(tparams.values()), allow_unused=True)
    for key, tg in zip(tparams, tgrads):
        tg = np.zeros(tparams[key].shape) if tg is None else tg.numpy()
        assert np.all(np.isfinite(tg)), f"{name}: non-finite gradient for {key}"
        jg = np.asarray(jgrads[key])
        # Norm-wise relative error: entries of a gradient that cancel to ~0 carry no digits.
        err = np.linalg.norm(jg - tg) / max(np.linalg.norm(tg), 1e-300)
        assert err <= TOL[dtype]["rtol"], f"{name}: gradient of {key} differs by {err:.2e} (relative, norm-wise)"


def test_jax_functions_jit_and_grad(compiled) -> None:
    tm, jm = compiled[next(p for p in EXAMPLES if p.stem == "hyperbolic_mlp")]
    params = jm.init_params(seed=0)
    x = jnp.asarray(np.random.default_rng(0).uniform(-0.1, 0.1, (4, 16)), dtype=jnp.float32)
    y = jax.jit(jm.HyperbolicMLP)(params, x)
    assert y.shape == (4, 8) and bool(jnp.all(jnp.linalg.norm(y, axis=-1) < 1))
    g = jax.jit(jax.grad(lambda p: jnp.sum(jm.HyperbolicMLP(p, x) ** 2)))(params)
    assert set(g) == set(params) and all(bool(jnp.all(jnp.isfinite(v))) for v in g.values())
