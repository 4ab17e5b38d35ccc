"""The launch sites' guards (``geomir.backends.triton.runtime``): what a kernel cannot
compute correctly runs the torch code (or raises what the torch target raises), never a
wrong answer; a bad ``precision`` is an error on every call."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import geomir
from geomir.backends.torch import taylor
from geomir.backends.triton import runtime

BIG = 2**31  # elements: past the kernels' int32 offsets


pytestmark = pytest.mark.usefixtures("fresh_runtime")


def _huge(*shape):
    """A CPU tensor of ``shape`` that takes no memory (one element, expanded)."""
    return torch.zeros((1,) * len(shape)).expand(*shape)


def test_tensors_past_int32_offsets_take_the_torch_code():
    """The kernels compute element offsets (row * stride, k * stride) in int32: a jet of
    9 coefficients of 2^28 values wraps k * stride_xk on the GPU (a wrong address, no
    error). Every kernel tensor, outputs and materialized directions included, must fit."""
    w, b = torch.randn(4, 8), torch.randn(4)
    layer = runtime._layer
    jet = _huge(9, 2**25, 8)  # 2^31 + 2^28 elements in (K+1, N, n)
    assert runtime._blocker("jet_layer", layer, [jet, w, b], "tanh", None)[0] == "size"
    # the input fits, the output (K+1, N, m) does not: m > n
    wide = torch.randn(64, 8)
    assert runtime._blocker("jet_layer", layer, [_huge(9, 2**22, 8), wide], None, None,
                            elements=9 * 2**22 * 64)[0] == "size"
    assert runtime._blocker("jet_layer", layer, [_huge(9, 2**22, 8), wide], None, None,
                            elements=9 * 2**22 * 64 // 2) is None
    # what the launch sites pass: the dense output, the Laplacian's materialized f1 (D, N, n)
    runtime.set_strict(True)
    with pytest.raises(runtime.TritonFallbackError, match="int32"):
        runtime.dense(_huge(2**25, 8), wide)  # x: 2^28 elements, y (N, m): 2^31
    lap = taylor.LaplacianJet(_huge(2**25, 8), _huge(1, 1, 8), _huge(2**25, 8))
    lap = taylor.LaplacianJet(lap.f0, torch.zeros(1, 1, 8).expand(8, 2**25, 8), lap.f2)
    with pytest.raises(runtime.TritonFallbackError, match="int32"):
        runtime.jet_layer(lap, w, b, "geo.tanh")
    with pytest.raises(runtime.TritonFallbackError, match="int32"):
        runtime.poincare_layer(_huge(2**25, 8), torch.randn(64, 8))
    assert runtime.MAX_ELEMENTS == BIG - 1


def test_tensors_of_several_dtypes_fail_as_on_the_torch_target():
    """float32 inputs with bfloat16 (or float64) parameters: both targets' models refuse
    them with the same message; the launch sites, called so, raise what torch's matmul
    raises (the kernels used to cast the weights to the input's dtype and answer)."""
    source = """model M(x: R[5]) -> R[3] {
  return tanh(linear(x, 5 -> 3))
}
derive d2 = directional(M, order = 2)
derive lap = laplacian(M)
"""
    ref = geomir.compile(source, target="torch")
    mod = geomir.compile(source, target="triton")
    x, v = torch.randn(4, 5), torch.randn(4, 5)
    for dtype in (torch.bfloat16, torch.float64):
        params = mod.init_params(seed=0, dtype=dtype)
        for name, args in (("M", (x,)), ("d2", (x, v)), ("lap", (x,))):
            with pytest.raises(ValueError, match="input 'x' .* is float32, the parameters") as want:
                getattr(ref, name)(params, *args)
            with pytest.raises(ValueError) as got:
                getattr(mod, name)(params, *args)
            assert str(got.value) == str(want.value)
        w, b = params["M.linear0.weight"], params["M.linear0.bias"]
        with pytest.raises(RuntimeError) as want:
            torch.tanh(x @ w.T + b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", runtime.TritonFallbackWarning)
            with pytest.raises(type(want.value)):
                runtime.dense(x, w, b, "geo.tanh")
    assert not any(key[0] == "triton" for key in runtime.STATS)
    assert runtime.STATS["torch", "dense", "dtype"] == 2
    # a float64 bias on float32 points: torch promotes the result to float64
    w, b = torch.randn(3, 5), torch.randn(3, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.TritonFallbackWarning)
        y = runtime.dense(x, w, b, "geo.tanh")
    assert y.dtype == torch.float64 and torch.equal(y, torch.tanh(x @ w.T + b))


def test_a_bad_precision_fails_on_every_call():
    """An unknown PRECISION was only noticed when a kernel launched: a float64 call, an
    empty batch or a gradient took it silently."""
    w = torch.randn(3, 5)
    for x in (torch.randn(4, 5, dtype=torch.float64), torch.randn(0, 5), torch.randn(4, 5)):
        with pytest.raises(ValueError, match="precision 'TF32'"):
            runtime.dense(x, w.to(x.dtype), precision="TF32")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        runtime.jet_layer(torch.randn(3, 0, 5), w, precision="fp8")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        runtime.jet_layer(taylor.laplacian_seed(torch.randn(2, 5, dtype=torch.float64)), w.double(),
                          precision="fp8")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        runtime.poincare_layer(torch.zeros(0, 5), w, precision="fp8")
    for precision in ("ieee", "tf32", "tf32x3", "bf16"):
        assert runtime.dense(torch.randn(0, 5), w, precision=precision).shape == (0, 3)


def test_every_unary_op_after_a_layer_runs_in_its_kernel():
    """Every unary op has a kernel epilogue (log, sqrt and neg too): selection absorbs the
    first one after a dense or Poincaré layer, the kernel runs it (strict mode: no torch
    fallback), and a second unary op (log after softplus) runs in torch after the kernel,
    with the torch target's numbers and NaNs."""
    from geomir.backends.triton import kernels
    from geomir.backends.triton.select import _UNARY

    assert _UNARY == {f"geo.{a}" for a in kernels.ACTIVATIONS if a}
    source = """manifold H = poincare(c = 1.0)
model M(x: R[5]) -> R[3] {
  let h = -linear(x, 5 -> 4)
  let h = log(softplus(linear(h, 4 -> 6)))
  return sqrt(linear(exp(h), 6 -> 3, bias = false))
}
model B(x: H[4]) -> H[3] {
  return expmap0(-logmap0(mobius_linear(x, 4 -> 3)))
}
"""
    ref = geomir.compile(source, target="torch")
    mod = geomir.compile(source, target="triton")
    assert [(e["kernel"], e["activation"]) for e in mod.KERNELS] == [
        ("dense", "geo.neg"), ("dense", "geo.softplus"), ("dense", "geo.sqrt"), ("poincare", "geo.neg")]
    params = mod.init_params(seed=0, dtype=torch.float32)
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    p = mod.poincare_c1.expmap0(0.3 * torch.randn(7, 4, generator=torch.Generator().manual_seed(1)))
    runtime.set_strict(True)
    for name, arg in (("M", x), ("B", p)):
        got, want = getattr(mod, name)(params, arg), getattr(ref, name)(params, arg)
        assert torch.equal(got.isnan(), want.isnan())
        ok = ~want.isnan()
        assert float((got[ok] - want[ok]).abs().max()) <= 1e-4 * float(want[ok].abs().max())
    assert runtime.STATS == {("triton", "dense", ""): 3, ("triton", "poincare", ""): 1}


def test_fused_sqrt_and_log_layers_run_their_kernels_in_compiled_derivatives():
    """The collapsed layer fused into its sqrt (jet-fuse) and K-jets through log layers run
    as Triton kernels (strict: no torch fallback) with the torch target's numbers; rows where
    relu masks every input rest at 0 and give the Laplacian's exact 0 there too."""
    source = """model U(x: R[3]) -> R[4] {
  return sqrt(linear(relu(x), 3 -> 4, bias = false))
}
model L(x: R[3]) -> R[2] {
  return linear(log(linear(x, 3 -> 5)), 5 -> 2)
}
derive lap = laplacian(U)
derive d3 = directional(L, order = 3)
"""
    ref = geomir.compile(source, target="torch")
    mod = geomir.compile(source, target="triton")
    assert {(e["function"], e["kernel"], e["activation"]) for e in mod.KERNELS} >= {
        ("lap", "laplacian", "geo.sqrt"), ("d3", "jet_layer", "geo.log")}
    g = torch.Generator().manual_seed(2)
    params = {k: p.abs() + 0.1 for k, p in mod.init_params(seed=2, dtype=torch.float32).items()}
    x = torch.randn(9, 3, generator=g)
    x[:3] = -x[:3].abs()  # relu masks every input: U is 0 near these rows
    x[3:] = x[3:].abs() + 0.1  # positive: log is defined (W, b > 0)
    v = torch.randn(9, 3, generator=g)
    runtime.set_strict(True)
    lap, want = mod.lap(params, x), ref.lap(params, x)
    assert torch.isfinite(lap).all() and torch.equal(lap[:3], torch.zeros_like(lap[:3]))
    assert float((lap - want).abs().max()) <= 1e-4 * float(want.abs().max())
    got, want = mod.d3(params, x[3:], v[3:]), ref.d3(params, x[3:], v[3:])
    for a, b in zip(got, want, strict=True):
        assert float((a - b).abs().max()) <= 1e-4 * float(b.abs().max())
    assert runtime.STATS["triton", "laplacian", ""] >= 1 and runtime.STATS["triton", "jet_layer", ""] >= 1
    assert not any(key[0] == "torch" for key in runtime.STATS)
