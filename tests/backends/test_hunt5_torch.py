"""Generated torch modules, fifth hunt: Taylor-mode layers under ``torch.func.vmap`` over a
bias, ``.manifold``/``.constraint`` through ``load_state_dict(assign=True)`` and swapped
conversions, and ``transform_params`` under torch.func and autograd."""

from __future__ import annotations

import copy

import pytest
import torch

import geomir
from geomir.backends.common.autodiff import ModelInputError
from geomir.backends.torch.model import GeoParameter
from geomir.pipeline import with_weight_transforms

JETS = """
model U(a: R[2, f64]) -> R[1, f64] {
  return linear(softplus(linear(tanh(linear(a, 2 -> 3)), 3 -> 3)), 3 -> 1)
}
derive lapU = laplacian(U)
derive dU = directional(U, order = 3)
"""

PARAMS = """
manifold H = poincare(c = 1.0)
model Net(x: H[2]) -> H[2] {
  return mobius_linear(expmap0(linear(logmap0(x), 2 -> 2, nonnegative = true)), 2 -> 2)
}
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.filterwarnings("error:There is a performance drop")  # no per-example fallback loop either
@pytest.mark.parametrize("name", ["lapU", "dU"])
def test_taylor_layers_under_vmap_over_a_bias_match_the_nested_jvp_lowering(cache, name):
    """The fused jet layer added the bias in place into the unbatched matmul output:
    ``output with shape [4, 3] doesn't match the broadcast shape [2, 4, 3]``; its in-place
    ``addcmul_`` (no vmap batching rule) ran one example at a time."""
    fused = geomir.compile(JETS, target="torch", cache_dir=cache)
    nested = geomir.compile(JETS, target="torch", passes="cse,dce", cache_dir=cache)
    p = fused.init_params(seed=0)
    x = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64).reshape(4, 2)
    args = (x, torch.ones_like(x)) if name == "dU" else (x,)
    for key in [k for k in p if k.endswith(".bias")]:
        biases = torch.stack([p[key], p[key] + 0.1])

        def call(mod, b):
            out = getattr(mod, name)({**p, key: b}, *args)
            return out[-1] if isinstance(out, tuple) else out

        got = torch.func.vmap(lambda b: call(fused, b))(biases)
        torch.testing.assert_close(got, torch.func.vmap(lambda b: call(nested, b))(biases), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got[1], call(fused, biases[1]), rtol=0, atol=0)


def test_manifold_and_constraint_survive_assign_and_swapped_conversions(cache):
    """``load_state_dict(assign=True)`` and ``.double()`` under swap_module_params_on_conversion
    put plain nn.Parameters in place: the ball bias lost ``.manifold`` (RiemannianAdam then took
    Euclidean steps off the ball) and the monotone weight ``.constraint``."""
    from geomir.backends.torch.optim import RiemannianAdam

    m = geomir.compile(PARAMS, target="torch", cache_dir=cache)

    def check(net):
        for mod in (net, copy.deepcopy(net)):
            ball, = [p for n, p in mod.named_parameters() if n.endswith("Net__mobius_linear0__bias")]
            mono, = [p for n, p in mod.named_parameters() if n.endswith("Net__linear0__weight")]
            assert type(ball) is GeoParameter and ball.manifold is m.poincare_c1
            assert mono.constraint == "nonnegative"

    net = m.NetModule(seed=0)
    net.load_state_dict(m.NetModule(seed=1).state_dict(), assign=True)
    check(net)
    opt = RiemannianAdam(net.parameters(), lr=0.5)
    x = m.poincare_c1.expmap0(torch.tensor([[0.3, -0.2], [0.1, 0.4]]))
    for _ in range(5):
        opt.zero_grad()
        (-net(x)[:, 0].sum()).backward()
        opt.step()
    bias, = [p for n, p in net.named_parameters() if n.endswith("mobius_linear0__bias")]
    assert bias.norm() < 1.0  # on the ball
    previous = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        net = m.NetModule(seed=0)
        held = list(net.parameters())
        net.double()
        assert [p.dtype for p in net.parameters()] == [torch.float64] * 4
        assert all(a is b for a, b in zip(held, net.parameters()))  # swapped in place: the optimizer's objects
        check(net)
        net.load_state_dict(m.NetModule(seed=1).state_dict())
        check(net)
    finally:
        torch.__future__.set_swap_module_params_on_conversion(previous)


def test_transform_params_under_torch_func_and_autograd(cache):
    """Under torch.func.grad/vmap it failed inside torch (``Cannot access data pointer of
    Tensor that doesn't have storage``); under autograd the weights' .grad was silently None."""
    m = geomir.compile("model M(x: R[3]) -> R[2] { return linear(x, 3 -> 2) }", target="torch",
                       passes=with_weight_transforms(None, quantize="int8"), cache_dir=cache)
    p = m.init_params(0)
    x = torch.ones(4, 3)
    deployed = m.transform_params(p)
    for transform in (torch.func.grad, torch.func.vmap):
        with pytest.raises(ModelInputError, match="transform_params: parameter 'M.linear0.weight' is traced by a "
                                                  "torch.func transformation .* outside it"):
            if transform is torch.func.grad:
                transform(lambda q: m.M(m.transform_params(q), x).sum())(p)
            else:
                transform(lambda w: m.transform_params({**p, "M.linear0.weight": w})["M.linear0.weight"])(
                    torch.stack([p["M.linear0.weight"]] * 2))
    trained = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    out = m.transform_params(trained)
    torch.testing.assert_close(out["M.linear0.weight"].detach(), deployed["M.linear0.weight"], rtol=0, atol=0)
    with pytest.raises(ModelInputError, match="parameter 'M.linear0.weight' has no gradient through its transforms"):
        m.M(out, x).sum().backward()
    xg = x.clone().requires_grad_(True)  # a gradient that does not pass through the transforms
    assert torch.autograd.grad(m.M(m.transform_params(trained), xg).sum(), xg)[0].shape == (4, 3)
    with torch.no_grad():
        assert not m.transform_params(trained)["M.linear0.weight"].requires_grad
