"""When the launch sites run the torch code instead of a kernel, and what they say about it:
derivatives of every kind (reverse mode, forward-mode dual tensors, torch.func) take the
differentiable torch code silently, also in strict mode; a vmap says so; CUDA-graph replay
follows the same check; check_finite reports what the torch target reports; PRECISION is
checked by every function; log layers make no numpy warnings from their padding lanes."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import torch.autograd.forward_ad as fwAD  # noqa: E402

import geomir  # noqa: E402
from geomir.backends.triton import runtime  # noqa: E402
from geomir.diagnostics import NonFiniteError, UsageError  # noqa: E402

SOURCE = """manifold H = poincare(c = 1.0)
model M(x: R[5]) -> R[1] {
  let h = tanh(linear(x, 5 -> 7))
  return linear(h, 7 -> 1)
}
model P(x: H[5]) -> H[3] {
  return mobius_linear(x, 5 -> 3)
}
derive g = grad(M)
derive hv = hvp(M)
"""


pytestmark = pytest.mark.usefixtures("fresh_runtime")


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    cache = tmp_path_factory.mktemp("fallback-policy")
    return (geomir.compile(SOURCE, target="torch", cache_dir=cache),
            geomir.compile(SOURCE, target="triton", cache_dir=cache))


def _inputs(mod):
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(4, 5, generator=g)
    return x, torch.randn(4, 5, generator=g), mod.poincare_c1.expmap0(0.1 * torch.randn(4, 5, generator=g))


def _close(a, b):
    return float((a - b).abs().max()) <= 1e-4 * float(b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("strict", [False, True])
def test_forward_mode_dual_tensors_keep_their_tangent(mods, strict):
    """A dual input (torch.autograd.forward_ad) went into the kernels as its primal: the
    output had no tangent, silently. It takes the torch code ("autograd"), with the torch
    target's tangent, no warning, and no error in strict mode."""
    ref, mod = mods
    params = mod.init_params(seed=0)
    x, v, p = _inputs(mod)
    runtime.set_strict(strict)
    for name, arg in (("M", x), ("P", p)):
        tangents = []
        for m in (ref, mod):
            with warnings.catch_warnings():
                warnings.simplefilter("error", runtime.TritonFallbackWarning)
                with fwAD.dual_level():
                    y = getattr(m, name)(params, fwAD.make_dual(arg, v))
                    tangents.append(fwAD.unpack_dual(y).tangent)
        assert tangents[1] is not None and _close(tangents[1], tangents[0]), name
    assert runtime.STATS == {("torch", "dense", "autograd"): 2, ("torch", "poincare", "autograd"): 1}
    assert mod.M(params, x).shape == (4, 1)  # outside the dual level: the kernels again
    assert runtime.STATS["triton", "dense", ""] == 2


def test_strict_mode_raises_only_for_warned_fallbacks(mods):
    """Strict mode turned the by-design autograd path into TritonFallbackError: the grad and
    hvp requests and any training forward (the nn.Module's parameters require grad) could not
    run. They run (torch target's numbers); a vmap, which takes no derivative, is a warned
    fallback naming vmap (an error in strict mode), not "a gradient is being taken"."""
    ref, mod = mods
    params = mod.init_params(seed=0)
    x, v, _ = _inputs(mod)
    runtime.set_strict(True)
    assert _close(mod.g(params, x), ref.g(params, x))
    assert _close(mod.hv(params, x, v), ref.hv(params, x, v))
    grads = []
    for m in (mod, ref):
        net = m.MModule(seed=0)
        net(x).square().sum().backward()
        grads.append([q.grad for q in net.parameters()])
    assert all(_close(a, b) for a, b in zip(*grads, strict=True))
    assert not any(key[0] == "triton" for key in runtime.STATS)
    with pytest.raises(runtime.TritonFallbackError, match=r"torch\.func vmap is active") as err:
        torch.func.vmap(lambda r: mod.M(params, r))(x)
    assert "gradient" not in str(err.value)
    runtime.set_strict(False)
    with pytest.warns(runtime.TritonFallbackWarning, match="vmap"):
        y = torch.func.vmap(lambda r: mod.M(params, r))(x)
    assert _close(y, ref.M(params, x))
    assert runtime.STATS["torch", "dense", "transform"] == 2


class _FakeCuda(torch.Tensor):
    """A CPU tensor that says it is a CUDA tensor: graphed's eligibility without a GPU."""

    @property
    def is_cuda(self):
        return True


def test_graph_replay_is_refused_where_the_sites_take_torch():
    """graphed() replayed a CUDA graph for dual tensors and inside torch.func transforms
    (it asked only requires_grad): a replay has no tangent, no autograd graph and no batch
    axis. It asks the launch sites' check."""

    def fn(params, x):
        return x

    fast = runtime.graphed(fn)
    params = {"w": torch.randn(3).as_subclass(_FakeCuda)}
    x = torch.randn(2, 3).as_subclass(_FakeCuda)
    assert fast._eligible(params, (x,))
    assert not fast._eligible(params, (torch.randn(2, 3),))  # a CPU tensor
    assert not fast._eligible(params, (x.clone().requires_grad_(),))
    with torch.no_grad():
        assert fast._eligible(params, (x.clone().requires_grad_(),))
    with fwAD.dual_level():
        assert not fast._eligible(params, (fwAD.make_dual(x, torch.ones(2, 3)),))
        assert fast._eligible(params, (x,))
    seen = []

    def probe(r):
        seen.append(fast._eligible(params, (x,)))  # x itself is not wrapped: the transform is active
        return r.sum()

    torch.func.vmap(probe)(torch.randn(2, 3))
    torch.func.grad(probe)(torch.randn(3))
    torch.func.jvp(probe, (torch.randn(3),), (torch.randn(3),))
    assert seen == [False, False, False]


CHECKED = """model U(x: R[3]) -> R[3] {
  let h = linear(x, 3 -> 3)
  let g = tanh(h)
  return g
}
manifold H = poincare(c = 1.0)
model P(x: H[3]) -> H[3] {
  let h = mobius_linear(x, 3 -> 3)
  let t = logmap0(h)
  let s = sqrt(t)
  return expmap0(s)
}
"""


@pytest.mark.filterwarnings("ignore:overflow encountered in matmul:RuntimeWarning")  # U's input, on purpose
def test_check_finite_reports_what_the_torch_target_reports(tmp_path):
    """A fused dense or Poincaré group was checked only at its last op: an inf made by the
    linear map and squashed by tanh went unreported, and a NaN made by sqrt inside a Poincaré
    layer was blamed on expmap0 with another count. With check_finite every kernel is one op,
    so the error is the torch target's, word for word; finite calls give the same numbers."""
    ref = geomir.compile(CHECKED, target="torch", cache_dir=tmp_path, check_finite=True)
    mod = geomir.compile(CHECKED, target="triton", cache_dir=tmp_path, check_finite=True)
    params = mod.init_params(seed=0)
    overflow = dict(params, **{"U.linear0.weight": params["U.linear0.weight"].abs()})
    g = torch.Generator().manual_seed(0)
    errors = {}
    for name, ps, x in (("U", overflow, torch.full((1, 3), 3e38)),
                        ("P", params, 0.1 * torch.rand(2, 3, generator=g))):
        with pytest.raises(NonFiniteError) as want:
            getattr(ref, name)(ps, x)
        with pytest.raises(NonFiniteError) as got:
            getattr(mod, name)(ps, x)
        assert str(got.value) == str(want.value), name
        errors[name] = str(got.value)
    assert errors["U"].startswith("<string>:2:11: geo.linear in @U gave 2 inf of 3 values")
    assert errors["P"].startswith("<string>:10:11: geo.sqrt in @P gave ")
    # the kernels still run: one op each (the bias, Möbius addition and activations in torch)
    assert [(e["kernel"], e["activation"], e["bias"]) for e in mod.KERNELS] == [
        ("dense", None, False), ("poincare", None, False)]
    x = 0.3 * torch.rand(4, 3, generator=g) + 0.1
    positive = {k: v.abs() for k, v in params.items()}  # P: sqrt of positive tangents
    runtime.STATS.clear()
    for name, arg in (("U", x), ("P", mod.poincare_c1.expmap0(x))):
        assert _close(getattr(mod, name)(positive, arg), getattr(ref, name)(positive, arg))
    assert runtime.STATS == {("triton", "dense", ""): 1, ("triton", "poincare", ""): 1}


def test_precision_is_checked_by_every_function(tmp_path):
    """PRECISION was checked only at launch sites: a function without one took any value.
    Every function checks it on entry; precision=None at compile time is a UsageError as
    every other bad value is (it was a ValueError from the emitter)."""
    source = """model A(x: R[4]) -> R[4] {
  return tanh(x) * x
}
model C(x: R[4]) -> R[4] {
  return tanh(linear(x, 4 -> 4))
}
derive lapA = laplacian(A)
"""
    mod = geomir.compile(source, target="triton", cache_dir=tmp_path)
    params, x = mod.init_params(seed=0), torch.randn(2, 4)
    for precision in ("ieee", "tf32", "tf32x3", "bf16"):
        mod.PRECISION = precision
        mod.A(params, x), mod.lapA(params, x)
    for bad in ("bogus", None, "IEEE"):
        mod.PRECISION = bad
        for name in ("A", "lapA", "C"):
            with pytest.raises(ValueError, match=f"precision {bad!r}"):
                getattr(mod, name)(params, x)
            with pytest.raises(ValueError, match=f"precision {bad!r}"):
                getattr(mod, f"{name}Module")()(x)
    for bad in (None, "fp8", 3):
        with pytest.raises(UsageError, match=f"precision {bad!r}"):
            geomir.compile(source, target="triton", cache_dir=tmp_path, precision=bad)


def test_log_layers_make_no_numpy_warnings_in_their_padding():
    """Under the interpreter a log layer's padding lanes (rows and columns past the tensor,
    never stored) computed log(0) and 1/0: numpy warned "divide by zero" (an error under -W
    error) though every input was positive. The kernels give those lanes 1."""
    source = """manifold H = poincare(c = 1.0)
model L(x: R[3]) -> R[5] {
  return log(linear(x, 3 -> 5))
}
model B(x: H[3]) -> H[5] {
  return expmap0(log(logmap0(mobius_linear(x, 3 -> 5))))
}
derive d2 = directional(L, order = 2)
derive lap = laplacian(L)
"""
    mod = geomir.compile(source, target="triton")
    ref = geomir.compile(source, target="torch")
    params = {k: v.abs() + 0.1 for k, v in mod.init_params(seed=0).items()}
    g = torch.Generator().manual_seed(0)
    x, v = torch.rand(3, 3, generator=g) + 0.1, torch.rand(3, 3, generator=g)
    runtime.set_strict(True)
    for name, args in (("L", (x,)), ("d2", (x, v)), ("lap", (x,)), ("B", (mod.poincare_c1.expmap0(0.1 * x),))):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            got = getattr(mod, name)(params, *args)
        want = getattr(ref, name)(params, *args)
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,),
                        strict=True):
            assert torch.isfinite(a).all() and _close(a, b), name
    assert {k[1] for k in runtime.STATS} == {"dense", "jet_layer", "laplacian", "poincare"}
