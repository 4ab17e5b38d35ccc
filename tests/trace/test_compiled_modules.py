"""Compiled modules: each compile is an independent module object, and a generated model
checks its params and inputs at each call (a clear error naming the model, the argument,
what it declares and what it was given)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import geomir as g  # noqa: E402
from geomir.backends.common.autodiff import ModelInputError  # noqa: E402

SRC = "model U(x: R[4]) -> R[2] {\n  return tanh(linear(x, 4 -> 2))\n}\n"


@g.trace(x=g.R(3))
def U(x):
    return g.linear(g.tanh(x), 2)


@g.trace(x=g.R(3))
def V(x):
    return g.tanh(x) * 2.0  # elementwise: nothing in the model itself checks the shape


def test_each_compile_is_a_fresh_module(tmp_path):
    a = g.compile(SRC, target="torch", cache_dir=tmp_path)
    a.PARAMS.clear()
    a.marker = 1
    b = g.compile(SRC, target="torch", cache_dir=tmp_path)
    assert a is not b and not hasattr(b, "marker")
    assert sorted(b.init_params(0)) == ["U.linear0.bias", "U.linear0.weight"]
    assert U.compile("torch") is not U.compile("torch")


def test_an_explicit_precision_holds_for_a_new_compile(tmp_path, monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    a = g.compile(SRC, target="triton", cache_dir=tmp_path)
    a.PRECISION = "bf16"
    b = g.compile(SRC, target="triton", precision="ieee", cache_dir=tmp_path)
    assert b.PRECISION == "ieee"
    assert b.U.__globals__ is vars(b)  # the checked model reads its module's PRECISION (triton/graphs.py)


@pytest.mark.parametrize("case", ["shape", "elementwise-shape", "dtype", "missing", "none", "numpy", "arity"])
def test_wrong_arguments_name_the_model_and_the_argument(case):
    m, mv = U.compile("torch"), V.compile("torch")
    p = m.init_params(0)
    call, message = {
        "shape": (lambda: m.U(p, torch.randn(5, 4)), r"U: input 'x' \(!geo.point<euclidean, 3, f32>\) needs shape "
                                                     r"\(\.\.\., 3\), found \(5, 4\)"),
        "elementwise-shape": (lambda: mv.V({}, torch.randn(5, 4)), r"V: input 'x' .* needs shape \(\.\.\., 3\)"),
        "dtype": (lambda: m.U(p, torch.randn(5, 3, dtype=torch.float64)), "U: input 'x' .* is float64, the parameters float32"),
        "missing": (lambda: m.U({k: v for k, v in p.items() if "bias" not in k}, torch.randn(5, 3)),
                    "U: params lacks 1 parameter.*U.linear0.bias"),
        "none": (lambda: m.U(None, torch.randn(5, 3)), r"U\(params, \.\.\.\): params must be a dict"),
        "numpy": (lambda: m.U(p, torch.randn(5, 3).numpy()), "U: input 'x' .* must be a torch tensor, found ndarray"),
        "arity": (lambda: m.U(p), r"U takes 1 input\(s\) after params \(x\), found 0"),
    }[case]
    with pytest.raises(ModelInputError, match=message):
        call()


def test_inputs_in_the_parameters_dtype_and_the_module_form_still_run():
    m = U.compile("torch")
    p64 = m.init_params(0, torch.float64)
    assert m.U(p64, torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64
    assert V.compile("torch").V({}, torch.randn(2, 3, dtype=torch.float64)).shape == (2, 3)
    assert m.UModule(seed=0)(torch.randn(2, 3)).shape == (2, 2)
    assert torch.func.vmap(lambda x: m.U(p64, x))(torch.randn(4, 3, dtype=torch.float64)).shape == (4, 2)


def test_jax_models_check_their_arguments_under_jit():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    m = U.compile("jax")
    p = m.init_params(0)
    assert jax.jit(m.U)(p, jnp.ones((2, 3), jnp.float32)).shape == (2, 2)
    with pytest.raises(ModelInputError, match=r"U: input 'x' .* needs shape \(\.\.\., 3\), found \(2, 4\)"):
        jax.jit(m.U)(p, jnp.ones((2, 4), jnp.float32))


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_init_params_needs_a_floating_dtype_and_a_list_of_names(target):
    if target == "jax":
        pytest.importorskip("jax")
        import jax.numpy as jnp

        integer = jnp.int32
    else:
        integer = torch.int64
    m = U.compile(target)
    with pytest.raises(ModelInputError, match="init_params: dtype must be a floating"):
        m.init_params(0, integer)
    with pytest.raises(ModelInputError, match="names must be a list of parameter names, found the string 'W'"):
        m.init_params(0, names="W")


def test_a_deep_copied_module_keeps_its_parameters_manifolds(tmp_path):
    """copy.deepcopy of an nn.Module form keeps each parameter's .manifold and .constraint
    (nn.Parameter.__deepcopy__ dropped them: the copy's ball biases trained as Euclidean)."""
    import copy
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    m = g.compile(root / "examples" / "hyperbolic_classifier.geo", target="torch", cache_dir=tmp_path)
    net = m.ClassifierModule(seed=0)
    twin = copy.deepcopy(net)
    for (name, p), q in zip(net.params.items(), twin.params.values()):
        assert getattr(q, "manifold", None) is getattr(p, "manifold", None), name
        assert getattr(q, "constraint", None) == getattr(p, "constraint", None), name
        assert q is not p and torch.equal(q, p)
    assert any(getattr(q, "manifold", None) is not None for q in twin.params.values())


@g.trace(x=g.R(3), y=g.R(3, "f64"))
def Mixed(x, y):
    return g.linear(g.tanh(y), 2)  # a model of mixed element types: its parameters are f64


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_an_input_in_its_declared_dtype_with_parameters_built_in_another_is_refused(target):
    """f32 x with init_params(0, float64): the input's declared dtype no longer holds for
    the parameters declared like it (the call failed inside the generated matmul)."""
    import contextlib

    if target == "jax":
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        f32, f64, ones, x64 = jnp.float32, jnp.float64, jnp.ones, jax.enable_x64(True)
    else:
        f32, f64, ones, x64 = torch.float32, torch.float64, torch.ones, contextlib.nullcontext()
    with x64:
        m = U.compile(target)
        with pytest.raises(ModelInputError, match="U: input 'x' .* is float32, the parameters float64"):
            m.U(m.init_params(0, f64), ones((2, 3), dtype=f32))
        mixed = Mixed.compile(target)
        p = mixed.init_params(0)  # f64, as declared
        assert mixed.Mixed(p, ones((2, 3), dtype=f32), ones((2, 3), dtype=f64)).shape == (2, 2)
        with pytest.raises(ModelInputError, match="Mixed: input 'y' .* is float32, the parameters float64"):
            mixed.Mixed(p, ones((2, 3), dtype=f32), ones((2, 3), dtype=f32))
