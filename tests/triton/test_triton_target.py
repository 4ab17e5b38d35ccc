"""The Triton target end to end: every example compiled with ``target="triton"`` computes
what the torch target computes (float32, relative error <= 1e-4), every launch site of
KERNELS runs its Triton kernel (under TRITON_INTERPRET=1 on CPU), and what cannot run a
kernel falls back to torch visibly (STATS, a warning, or an error in strict mode)."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import geomir
from geomir.diagnostics import UsageError
from geomir.backends.triton import runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared backend helpers
from backends.helpers import EXAMPLES, functions, inputs_for  # noqa: E402  (tests/backends, as pytest names it)

RTOL = 1e-4
TOUR = Path(__file__).parent / "models" / "kernels_tour.geo"  # every site kind and activation
MODELS = [*EXAMPLES, TOUR]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) if b.numel() else 0.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("triton-target")


def _both(path, cache):
    return (geomir.compile(path, target="torch", cache_dir=cache),
            geomir.compile(path, target="triton", cache_dir=cache))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_model_matches_the_torch_target(path, cache):
    ref_mod, mod = _both(path, cache)
    params = mod.init_params(seed=0, dtype=torch.float32)
    sites = {entry["function"] for entry in mod.KERNELS}
    for f in functions(path):
        name = f.sym_name.data
        xs = inputs_for(f, batch=5, dtype=torch.float32)
        runtime.STATS.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error", runtime.TritonFallbackWarning)  # no silent torch
            out = getattr(mod, name)(params, *xs)
        ref = getattr(ref_mod, name)(params, *xs)
        outs, refs = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
        for o, r in zip(outs, refs):
            assert o.shape == r.shape and o.dtype == r.dtype
            assert torch.isfinite(o).all()
            assert _rel(o, r) <= RTOL, f"{path.stem}.{name}: relative error {_rel(o, r):.2e}"
        fell_back = {key for key in runtime.STATS if key[0] == "torch" and key[2] != "autograd"}
        assert not fell_back, (name, fell_back)
        if name in sites and not any(key[2] == "autograd" for key in runtime.STATS):
            assert any(key[0] == "triton" for key in runtime.STATS), (name, runtime.STATS)


def test_pinn_sites_are_the_fused_layers(cache):
    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    mod = geomir.compile(path, target="triton", cache_dir=cache)
    kinds = {(e["function"], e["kernel"]) for e in mod.KERNELS}
    assert {("U", "dense"), ("lap_u", "laplacian"), ("d4_u", "jet_layer")} <= kinds
    assert {e["K"] for e in mod.KERNELS if e["function"] == "d4_u"} == {4}
    assert mod.PRECISION == "ieee"


def test_hyperbolic_layers_are_one_poincare_launch_each(cache):
    path = next(p for p in EXAMPLES if p.stem == "hyperbolic_mlp")
    mod = geomir.compile(path, target="triton", cache_dir=cache)
    mlp = [e for e in mod.KERNELS if e["function"] == "HyperbolicMLP"]
    assert [(e["kernel"], e["activation"], e["n"], e["m"]) for e in mlp] == [
        ("poincare", "geo.tanh", 16, 32), ("poincare", None, 32, 8)]


def test_float64_falls_back_to_torch_with_a_warning(cache):
    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    ref_mod, mod = _both(path, cache)
    params = mod.init_params(seed=0, dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64)
    runtime.STATS.clear()
    runtime._WARNED.clear()
    with pytest.warns(runtime.TritonFallbackWarning, match="float64"):
        y = mod.lap_u(params, x)
    assert torch.equal(y, ref_mod.lap_u(params, x))
    assert runtime.STATS["torch", "laplacian", "dtype"] == 4


def test_strict_mode_raises_instead_of_falling_back(cache):
    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    mod = geomir.compile(path, target="triton", cache_dir=cache)
    params = mod.init_params(seed=0, dtype=torch.float64)
    runtime.set_strict(True)
    try:
        with pytest.raises(runtime.TritonFallbackError, match="float64"):
            mod.U(params, torch.randn(4, 2, dtype=torch.float64))
    finally:
        runtime.set_strict(False)


def test_gradients_flow_through_the_torch_path(cache):
    """Training: parameters that require grad take the differentiable torch code, with the
    torch target's gradients."""
    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    ref_mod, mod = _both(path, cache)
    x = torch.randn(6, 2)
    grads = []
    for m in (mod, ref_mod):
        net = m.UModule(seed=0)
        loss = net(x).square().sum() + m.lap_u(net.named_geo_parameters(), x).square().sum()
        loss.backward()
        grads.append([p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        assert _rel(a, b) <= RTOL


def test_precision_option_reaches_the_module(cache):
    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    mod = geomir.compile(path, target="triton", cache_dir=cache, precision="bf16")
    ref = geomir.compile(path, target="torch", cache_dir=cache)
    assert mod.PRECISION == "bf16"
    params = mod.init_params(seed=0, dtype=torch.float32)
    x = torch.randn(8, 2)
    y, y_ref = mod.U(params, x), ref.U(params, x)
    assert 0 < _rel(y, y_ref) < 6e-2  # bf16 operands (8-bit mantissa) in 4 layers
    mod.PRECISION = "ieee"  # read at each call
    assert _rel(mod.U(params, x), y_ref) <= RTOL
    with pytest.raises(UsageError, match="precision 'fp8'"):
        geomir.compile(path, target="triton", cache_dir=cache, precision="fp8")
    with pytest.raises(UsageError, match="target 'torch' has no option 'precision'"):
        geomir.compile(path, target="torch", cache_dir=cache, precision="tf32")


def test_check_finite_runs_with_the_kernels(cache):
    """check_finite=True: the fused layers' results are checked like any op's; a finite call
    gives the unchecked numbers, a NaN input is named at the request's line."""
    from geomir.diagnostics import NonFiniteError

    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    mod = geomir.compile(path, target="triton", cache_dir=cache, check_finite=True)
    plain = geomir.compile(path, target="triton", cache_dir=cache)
    params = mod.init_params(seed=0, dtype=torch.float32)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mod.lap_u(params, x), plain.lap_u(params, x))
    x[2, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"pinn_laplacian.geo:11:8: input 'x' in @lap_u gave 1 NaN of 10 values, "
                                             r"the first at index \[2, 1\]"):
        mod.lap_u(params, x)


def test_too_wide_poincare_layer_falls_back_to_torch(cache):
    source = """manifold H = poincare(c = 1.0)
model Wide(x: H[4]) -> H[1100] {
  return mobius_linear(x, 4 -> 1100)
}
"""
    ref_mod = geomir.compile(source, target="torch", cache_dir=cache)
    mod = geomir.compile(source, target="triton", cache_dir=cache)
    params = mod.init_params(seed=0, dtype=torch.float32)
    x = mod.poincare_c1.expmap0(0.1 * torch.randn(3, 4))
    runtime.STATS.clear()
    runtime._WARNED.clear()
    with pytest.warns(runtime.TritonFallbackWarning, match="output width 1100 > 1024"):
        y = mod.Wide(params, x)
    assert torch.equal(y, ref_mod.Wide(params, x))
    assert runtime.STATS == {("torch", "poincare", "width"): 1}


def test_graphed_calls_through_on_cpu_and_keys_on_precision(cache):
    """runtime.graphed replays CUDA graphs on a GPU (timed and checked by bench_jets
    --device cuda); on CPU tensors it is the function itself, same numbers, no graph."""
    path = next(p for p in EXAMPLES if p.stem == "pinn_laplacian")
    mod = geomir.compile(path, target="triton", cache_dir=cache)
    params = mod.init_params(seed=0, dtype=torch.float32)
    x = torch.randn(8, 2)
    fast = mod.runtime.graphed(mod.lap_u)
    assert fast.__name__ == "lap_u" and fast.__doc__ == mod.lap_u.__doc__
    assert torch.equal(fast(params, x), mod.lap_u(params, x))
    assert fast.graphs == {}  # nothing recorded for CPU tensors
    key = fast._signature(params, (x,))
    mod.PRECISION = "tf32x3"
    try:
        assert fast._signature(params, (x,)) != key  # a new precision records a new graph
    finally:
        mod.PRECISION = "ieee"
    with torch.inference_mode():
        assert fast._signature(params, (x,)) != key


def test_jet_constants_are_made_once():
    """to_derivatives' factorials come from a cache: no host-to-device copy per call (which
    a CUDA graph could not record)."""
    from geomir.backends.torch import taylor

    jet = torch.randn(5, 3, 2)
    a = taylor.OPS.coeffs([1.0, 1.0, 2.0, 6.0, 24.0], jet[0])
    assert a is taylor.OPS.coeffs([1.0, 1.0, 2.0, 6.0, 24.0], jet[0])
    assert a.shape == (5, 1, 1) and not a.is_inference()
    with torch.inference_mode():
        assert not taylor.OPS.coeffs([1.0, 2.0], jet[0]).is_inference()
    assert torch.equal(taylor.to_derivatives(jet)[4], 24 * jet[4])


REVERSE = """
model M(x: R[3], w: R[4]) -> R[1] {
  let h = tanh(linear(w, 4 -> 3))
  return linear(x * h, 3 -> 1)
}
derive g = grad(M)
derive vj = vjp(M)
derive hv = hvp(M)
"""


@pytest.mark.parametrize("name", ["g", "vj", "hv"])
def test_reverse_mode_takes_torch_inside_the_transform(name, cache):
    """grad, vjp and hvp run torch.func over the model: in there every tensor a function
    makes is wrapped (the layer on w, which is not differentiated, too), so its sites take
    torch, counted as "autograd", with the torch target's numbers."""
    mod = geomir.compile(REVERSE, target="triton", cache_dir=cache)
    ref = geomir.compile(REVERSE, target="torch", cache_dir=cache)
    (f,) = (f for f in functions(REVERSE) if f.sym_name.data == name)
    xs = inputs_for(f, batch=4, dtype=torch.float32)
    params = mod.init_params(seed=0, dtype=torch.float32)
    runtime.STATS.clear()
    got, want = getattr(mod, name)(params, *xs), getattr(ref, name)(params, *xs)
    assert _rel(got, want) <= RTOL
    assert runtime.STATS["torch", "dense", "autograd"] >= 1 and not any(k[0] == "triton" for k in runtime.STATS)
