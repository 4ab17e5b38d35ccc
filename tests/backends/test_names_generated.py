"""User names in generated modules: a value named like a module global (``sphere``,
``torch``, ``jnp``) is renamed; a model named like one, or not an identifier, is a clear
error; parameter keys of the torch ``nn.Module`` form are injective."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

import geomir as g  # noqa: E402
from geomir.backends.torch.model import param_key  # noqa: E402
from geomir.diagnostics import UsageError  # noqa: E402

S = g.Sphere()


@g.trace(x=S.point(3))
def near(x):
    sphere = g.expmap0(g.logmap0(x))  # the name of the runtime's sphere object
    return g.dist(sphere, x)


@g.trace(x=g.R(3))
def shadows(x):
    torch = g.tanh(x)  # noqa: F841 - the framework's name
    jnp = g.sigmoid(torch)
    init_params = g.linear(jnp, 2)
    return init_params


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_locals_named_like_module_globals_are_renamed(target):
    if target == "jax":
        pytest.importorskip("jax")
    x = torch.nn.functional.normalize(torch.randn(2, 3, dtype=torch.float64), dim=-1)
    conv = (lambda t: t) if target == "torch" else (lambda t: __import__("jax.numpy").numpy.asarray(t.numpy()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = near.compile(target)
        assert float(abs(torch.as_tensor(m.near({}, conv(x.float())).tolist())).max()) < 1e-3
        h = shadows.compile(target)
        assert tuple(h.shadows(h.init_params(0), conv(x.float())).shape) == (2, 2)


def _geo_let(name):
    return f"model A(x: R[3]) -> R[3] {{\n  let {name} = tanh(x)\n  return {name} * 2.0\n}}\n"


@pytest.mark.parametrize("name", ["torch", "sphere", "runtime", "taylor", "PARAMS"])
def test_geo_lets_named_like_module_globals_run(name):
    m = g.compile(_geo_let(name), target="torch")
    assert f"v_{name} = torch.tanh(x)" in g.emit_source(_geo_let(name), "torch")
    x = torch.randn(2, 3)
    assert torch.allclose(m.A({}, x), torch.tanh(x) * 2.0)


@pytest.mark.parametrize("name", ["init_params", "model", "torch", "runtime", "sphere"])
def test_models_named_like_module_globals_are_rejected(name):
    def body(x):
        return g.tanh(g.linear(x, 2))

    body.__name__ = body.__qualname__ = name
    traced = g.trace(x=g.R(3))(body)
    with pytest.raises(UsageError, match=f"a model cannot be named '{name}' on the torch target: the generated "
                                         f"module already defines '{name}'; rename the model"):
        traced.compile("torch")


def test_a_model_named_like_another_models_class_is_rejected():
    src = ("model X(x: R[3]) -> R[3] {\n  return tanh(x)\n}\n"
           "model XModule(x: R[3]) -> R[3] {\n  return tanh(x)\n}\n")
    with pytest.raises(UsageError, match="a model cannot be named 'XModule'.*the model X has a class 'XModule'"):
        g.compile(src, target="torch")


def test_parameter_keys_are_injective():
    names = ["A.linear0.weight", "A.linear0__weight", "A__linear0.weight", "A.linear0_weight", "A._w", "A.w_", "a%2E"]
    keys = [param_key(n) for n in names]
    assert len(set(keys)) == len(keys) and not any("." in k for k in keys)
    assert keys[0] == "A__linear0__weight" and keys[3] == "A__linear0_weight"  # the usual names keep their keys


def test_a_let_named_like_a_layer_parameter_keeps_its_own_tensor():
    """hunt_cli finding 1: `let linear0__weight` and the layer's `linear0.weight` were one
    nn.Parameter in the module form (keys A__linear0__weight), so AModule and A disagreed."""
    src = ("model A(x: R[2]) -> R[2] {\n  let linear0__weight = param(2, 2, init = zeros)\n"
           "  let y = linear(x, 2 -> 2)\n  return linear(y, linear0__weight)\n}\n")
    m = g.compile(src, target="torch")
    x = torch.ones(1, 2)
    net = m.AModule(seed=0)
    assert len(list(net.parameters())) == 3
    assert torch.equal(net(x), m.A(m.init_params(0), x))
    assert set(net.named_geo_parameters()) == set(m.PARAMS)
