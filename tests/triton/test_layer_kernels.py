"""The fused Triton kernels of ``jet.layer`` (backends/triton) against the torch kernels
(``geomir.backends.torch.taylor.layer``), run on CPU under the Triton interpreter, plus a
FileCheck of their TTIR compiled for sm_90 without a GPU (tests/triton/ttir_check.py, in a
subprocess without TRITON_INTERPRET)."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")
tl = triton.language

from geomir.backends.torch import taylor
from geomir.backends.triton import layer as tl_layer

ROOT = Path(__file__).resolve().parents[2]
RTOL = 1e-4  # relative to max |ref| of each coefficient / part


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def _assert_close(y: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert y.shape == ref.shape, (what, y.shape, ref.shape)
    assert y.dtype == ref.dtype
    for k in range(ref.shape[0]):
        err = _rel_err(y[k], ref[k])
        assert err <= RTOL, f"{what}[{k}]: relative error {err:.2e}"


def _params(n: int, m: int, bias: bool, scale: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = scale * torch.randn(m, n, generator=g) / n**0.5
    b = 0.5 * torch.randn(m, generator=g) if bias else None
    return w, b


ALL_ACTIVATIONS = [None, "geo.tanh", "geo.sigmoid", "geo.relu", "geo.softplus", "geo.sin",
                   "geo.cos", "geo.exp", "geo.log", "geo.sqrt", "geo.neg"]


POSITIVE = {"geo.log", "geo.sqrt"}
"""Activations defined for positive pre-activations only (NaN elsewhere: the NaN tests)."""


def _in_domain(activation, x0: torch.Tensor, w: torch.Tensor, b):
    """(x0, w, b) with W x0 + b > 0 for log and sqrt (x0, W, b positive); unchanged otherwise."""
    if activation not in POSITIVE:
        return x0, w, b
    return x0.abs() + 0.1, w.abs(), None if b is None else b.abs()


@pytest.mark.parametrize("K", [0, 1, 2, 4])
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_jet_layer_matches_torch(K, activation, bias):
    N, n, m = 32, 16, 16
    g = torch.Generator().manual_seed(K)
    x = torch.randn(K + 1, N, n, generator=g)
    w, b = _params(n, m, bias, scale=2.0)
    x[0], w, b = _in_domain(activation, x[0], w, b)
    y = tl_layer.jet_layer(x, w, b, activation)
    _assert_close(y, taylor.layer(x, w, b, activation), f"jet K={K} {activation} bias={bias}")


def test_jet_layer_batch_axes_and_ragged_tiles():
    """Several batch axes, sizes that are not multiples of the tiles, saturated tanh."""
    K, n, m = 3, 20, 24
    x = torch.randn(K + 1, 5, 7, n, generator=torch.Generator().manual_seed(1))
    w, b = _params(n, m, True, scale=8.0, seed=1)
    y = tl_layer.jet_layer(x, w, b, "tanh")
    assert torch.isfinite(y).all()
    _assert_close(y, taylor.layer(x, w, b, "geo.tanh"), "ragged")


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_laplacian_layer_matches_torch(activation, bias):
    D, N, n, m = 4, 32, 16, 16
    g = torch.Generator().manual_seed(3)
    f0 = torch.randn(N, n, generator=g)
    f1, f2 = torch.randn(D, N, n, generator=g), torch.randn(N, n, generator=g)
    w, b = _params(n, m, bias, scale=2.0, seed=3)
    f0, w, b = _in_domain(activation, f0, w, b)
    lap = taylor.LaplacianJet(f0, f1, f2)
    out = tl_layer.laplacian_layer(lap, w, b, activation)
    ref = taylor.layer(lap, w, b, activation)
    for name, y, r in zip(("f0", "f1", "f2"), out, ref):
        _assert_close(y[None], r[None], f"laplacian {activation} bias={bias} {name}")


def _same_nans_then_close(y: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert torch.equal(y.isnan(), ref.isnan()), f"{what}: NaN at {y.isnan().nonzero().tolist()}, torch {ref.isnan().nonzero().tolist()}"
    ok = ~ref.isnan()
    assert torch.equal(y.isinf() & ok, ref.isinf() & ok), what
    fin = torch.isfinite(ref)
    assert float((y[fin] - ref[fin]).abs().max()) <= RTOL * float(ref[fin].abs().max().clamp_min(1.0)), what


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy, on the NaN the interpreter computes
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_nan_inputs_give_nan_where_torch_does(activation):
    """A NaN in an input coefficient, weight or direction gives NaN exactly where the torch
    rules give it (relu kept NaN as 0 in the kernels: u > 0 is false for NaN); the other
    rows stay as they were."""
    K, N, n, m = 3, 8, 16, 16
    g = torch.Generator().manual_seed(5)
    x = torch.randn(K + 1, N, n, generator=g)
    x[0, 1, 3] = float("nan")  # a value
    x[2, 4, 0] = float("nan")  # a second-order coefficient
    w, b = _params(n, m, True, scale=2.0, seed=5)
    _same_nans_then_close(tl_layer.jet_layer(x, w, b, activation), taylor.layer(x, w, b, activation),
                          f"jet {activation}")
    lap = taylor.LaplacianJet(x[0], x[1:3], x[3])
    lap.f1[1, 6, 2] = float("nan")  # a direction of row 6
    for name, y, r in zip(("f0", "f1", "f2"), tl_layer.laplacian_layer(lap, w, b, activation),
                          taylor.layer(lap, w, b, activation)):
        _same_nans_then_close(y, r, f"laplacian {activation} {name}")


@pytest.mark.parametrize("dirs", [1, 2, 4, 8])
@pytest.mark.parametrize("D, n", [(1, 16), (5, 40), (7, 128)])
def test_laplacian_direction_groups(monkeypatch, dirs, D, n):
    """DIRS directions share each W tile; D not a multiple of DIRS (the padded directions
    are masked), n a multiple of BLOCK_K or not (EVEN_K). Every DIRS gives the same bits:
    the same dots, and sq summed in the order d = 0..D-1."""
    monkeypatch.setattr(tl_layer, "_INTERP_DIRS", dirs)
    g = torch.Generator().manual_seed(D)
    lap = taylor.LaplacianJet(torch.randn(40, n, generator=g), torch.randn(D, 40, n, generator=g),
                              torch.randn(40, n, generator=g))
    w, b = _params(n, 24, True, scale=2.0, seed=D)
    out = tl_layer.laplacian_layer(lap, w, b, "tanh")
    ref = taylor.layer(lap, w, b, "geo.tanh")
    for name, y, r in zip(("f0", "f1", "f2"), out, ref):
        _assert_close(y[None], r[None], f"laplacian DIRS={dirs} D={D} n={n} {name}")
    monkeypatch.setattr(tl_layer, "_INTERP_DIRS", 1)
    for y, one in zip(out, tl_layer.laplacian_layer(lap, w, b, "tanh")):
        assert torch.equal(y, one)


def test_even_k_drops_only_the_k_masks():
    """n = 128 (a multiple of the interpreter's BLOCK_K = 64: EVEN_K) against n = 120
    zero-padded to 128: the same numbers."""
    K, N, m = 2, 24, 16
    g = torch.Generator().manual_seed(21)
    x = torch.randn(K + 1, N, 120, generator=g)
    w, b = _params(120, m, True, seed=21)
    padded = tl_layer.jet_layer(torch.nn.functional.pad(x, (0, 8)), torch.nn.functional.pad(w, (0, 8)), b, "tanh")
    assert tl_layer._even_k({"n": 128, "BLOCK_K": 64}) and not tl_layer._even_k({"n": 120, "BLOCK_K": 64})
    _assert_close(padded, tl_layer.jet_layer(x, w, b, "tanh"), "even_k")
    _assert_close(padded, taylor.layer(x, w, b, "geo.tanh"), "even_k")


def _mlp(sizes, seed=7):
    return [_params(a, c, True, scale=1.5, seed=seed + i) for i, (a, c) in enumerate(itertools.pairwise(sizes))]


ACTS = ["geo.tanh", "geo.tanh", None]


def test_jet_mlp_chain_matches_torch():
    """A 3-layer tanh MLP 16 -> 32 -> 32 -> 4 on an order-4 jet, layer by layer in Triton."""
    layers = _mlp([16, 32, 32, 4])
    x = taylor.seed(torch.randn(32, 16, generator=torch.Generator().manual_seed(5)),
                    torch.randn(32, 16, generator=torch.Generator().manual_seed(6)), 4)
    y, ref = x, x
    for (w, b), act in zip(layers, ACTS):
        y, ref = tl_layer.jet_layer(y, w, b, act), taylor.layer(ref, w, b, act)
    _assert_close(y, ref, "jet mlp")


def test_laplacian_mlp_chain_matches_torch():
    """The same MLP on the forward Laplacian of a (32, 4) input (D = 4), against
    ``taylor.laplacian_of`` of the torch chain."""
    layers = _mlp([4, 32, 32, 1])
    lap = taylor.laplacian_seed(torch.randn(32, 4, generator=torch.Generator().manual_seed(8)))
    y, ref = lap, lap
    for (w, b), act in zip(layers, ACTS):
        y, ref = tl_layer.laplacian_layer(y, w, b, act), taylor.layer(ref, w, b, act)
    for name, a, r in zip(("f0", "f1", "f2"), y, ref):
        _assert_close(a[None], r[None], f"laplacian mlp {name}")
    _assert_close(taylor.laplacian_of(y)[None], taylor.laplacian_of(ref)[None], "laplacian")


@pytest.mark.parametrize("activation", ["geo.sigmoid", "geo.softplus", "geo.exp", "geo.sin"])
def test_saturated_and_large_preactivations(activation):
    """Pre-activations up to ~±30 (exp: ±8): finite, and the same numbers as torch."""
    K, n, m = 3, 16, 16
    x = torch.randn(K + 1, 32, n, generator=torch.Generator().manual_seed(11))
    w, b = _params(n, m, True, scale=8.0 if activation != "geo.exp" else 2.0, seed=11)
    y = tl_layer.jet_layer(x, w, b, activation)
    assert torch.isfinite(y).all()
    _assert_close(y, taylor.layer(x, w, b, activation), f"large {activation}")


def test_sqrt_layers_at_rest_give_zero_and_moving_at_zero_nan():
    """sqrt(W relu(x)) with W > 0 and no bias: rows of x that are all negative rest at 0 (the
    jet and the Laplacian jet are 0 there) and give exactly 0, as the torch rules do (the
    Laplacian kernel overwrites the NaN phi' it stored for the directions, D = 16 > DIRS);
    a jet at 0 that moves gives NaN in both; the other rows match."""
    g = torch.Generator().manual_seed(13)
    x = torch.randn(24, 16, generator=g)
    x[:5] = -x[:5].abs()
    x[20:] = x[20:].abs() + 0.1
    w = torch.rand(16, 16, generator=g) + 0.1
    lap = taylor.collapsed.relu(taylor.laplacian_seed(x))
    out, ref = tl_layer.laplacian_layer(lap, w, None, "sqrt"), taylor.layer(lap, w, None, "geo.sqrt")
    for name, y, r in zip(("f0", "f1", "f2"), out, ref):
        rows = y[..., :5, :]
        assert torch.equal(rows, torch.zeros_like(rows)), name
        assert torch.isfinite(y).all(), name
        _assert_close(y[None], r[None], f"sqrt at rest {name}")
    moving = taylor.laplacian_seed(torch.zeros(3, 16))
    out, ref = tl_layer.laplacian_layer(moving, w, None, "sqrt"), taylor.layer(moving, w, None, "geo.sqrt")
    assert torch.equal(out.f0, ref.f0) and out.f1.isnan().all() and out.f2.isnan().all()
    assert ref.f1.isnan().all() and ref.f2.isnan().all()
    jet = torch.randn(4, 24, 16, generator=g)
    jet[:, :5] = 0.0  # rows resting at 0
    jet[:, 5:8, :] = 0.0
    jet[2, 5:8, :] = 1.0  # rows at 0 that move at order 2: NaN from y_2 on
    jet[0, 8:] = jet[0, 8:].abs() + 0.1
    y, r = tl_layer.jet_layer(jet, w, None, "sqrt"), taylor.layer(jet, w, None, "geo.sqrt")
    assert torch.equal(y[:, :5], torch.zeros_like(y[:, :5]))
    assert torch.equal(y[:2, 5:8], torch.zeros_like(y[:2, 5:8])) and y[2:, 5:8].isnan().all()
    assert torch.equal(y.isnan(), r.isnan())
    _assert_close(y[:, 8:], r[:, 8:], "sqrt jet")


def test_log_of_a_negative_or_zero_preactivation_matches_torch():
    """log: NaN in every coefficient where W x + b < 0 (the rule, not finite derivatives of
    an undefined function), -inf value and infinite derivatives at 0, as torch."""
    w = torch.eye(4)
    x = torch.tensor([[-1.0, 0.0, 2.0, 0.5]]).expand(3, 1, 4).clone()
    x[1:] = torch.tensor([0.3, -0.2, 1.0, 0.0])
    y, r = tl_layer.jet_layer(x, w, None, "log"), taylor.layer(x, w, None, "geo.log")
    assert torch.equal(y.isnan(), r.isnan()) and y[:, 0, 0].isnan().all()
    assert torch.equal(y.isinf(), r.isinf()) and y[0, 0, 1] == -float("inf")
    fin = torch.isfinite(r)
    assert torch.allclose(y[fin], r[fin], rtol=1e-6)
    lap = taylor.LaplacianJet(x[0], x[1:2], x[2])
    for name, a, b in zip(("f0", "f1", "f2"), tl_layer.laplacian_layer(lap, w, None, "log"),
                          taylor.layer(lap, w, None, "geo.log")):
        assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.isinf(), b.isinf()), name
        assert torch.allclose(a[torch.isfinite(b)], b[torch.isfinite(b)], rtol=1e-6), name


def test_relu_at_its_kink_is_zero_like_autodiff():
    x = torch.zeros(3, 8, 4)
    x[1:] = torch.randn(2, 8, 4)
    w = torch.eye(4)
    y = tl_layer.jet_layer(x, w, None, "geo.relu")
    assert torch.equal(y, torch.zeros_like(y))
    assert torch.equal(y, taylor.layer(x, w, None, "geo.relu"))


def test_autotune_candidates_fit_the_accumulators_in_registers():
    """The early prune keeps the tiles whose K+1 accumulators fit (and never none)."""
    def area(cfgs):
        return sorted({c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_M"] for c in cfgs})

    assert area(tl_layer._prune_jet(tl_layer.CONFIGS, {}, K=0)) == [1024, 2048, 4096, 8192, 16384]
    assert area(tl_layer._prune_jet(tl_layer.CONFIGS, {}, K=4)) == [1024, 2048, 4096, 8192]
    assert area(tl_layer._prune_jet(tl_layer.CONFIGS, {"K": 8})) == [1024, 2048, 4096]
    assert area(tl_layer._prune_jet(tl_layer.CONFIGS, {}, K=40)) == [1024]
    lap = tl_layer.LAPLACIAN_CONFIGS
    assert tl_layer._prune_laplacian(lap, {}) == lap  # 4 + DIRS tiles fit in every candidate
    assert {c.kwargs["DIRS"] for c in lap} == {1, 2, 4}
    big = [triton.Config({"BLOCK_N": 128, "BLOCK_M": 128, "BLOCK_K": 32, "DIRS": 4}), lap[0]]
    assert tl_layer._prune_laplacian(big, {}) == [lap[0]]
    assert {c.kwargs["BLOCK_K"] for c in tl_layer.CONFIGS + lap} == {32}


class _Recorder:
    """A stand-in for a jit function or its autotuner: records the launches."""

    def __init__(self, best_config=None):
        self.calls, self.best_config = [], best_config

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((grid, args, kwargs))


@pytest.mark.parametrize("n, even_k", [(512, True), (100, False)])
def test_tuned_config_is_launched_directly_after_the_first_call(monkeypatch, n, even_k):
    """Off the interpreter the first launch of a key goes through the autotuner; later ones
    call the jit function with the chosen config's options and EVEN_K, skipping the
    autotuner's and the heuristics' Python. The interpreter always goes through."""
    config = triton.Config({"BLOCK_N": 64, "BLOCK_M": 32, "BLOCK_K": 32}, num_warps=4, num_stages=3)
    tuned, kernel = _Recorder(config), _Recorder()
    monkeypatch.setattr(tl_layer, "_TUNED", {})
    monkeypatch.setattr(tl_layer, "INTERPRET", False)
    args, kwargs, key = ("X", "W", 7), {"K": 2, "PRECISION": 0}, ("jet", 7, n, 3, 2, 0, 1, torch.float32)
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, key, n)
    assert tuned.calls == [("grid", args, kwargs)] and kernel.calls == []
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, key, n)
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, key, n)
    assert len(tuned.calls) == 1 and len(kernel.calls) == 2
    grid, got_args, got_kwargs = kernel.calls[0]
    assert grid == "grid" and got_args == args
    assert got_kwargs == {**kwargs, **config.all_kwargs(), "EVEN_K": even_k}
    other = key[:2] + (n + 1,) + key[3:]
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, other, n + 1)  # a new key tunes again
    assert len(tuned.calls) == 2
    assert tl_layer.tuned_configs()[f"jet 7 {n} 3 2 0 1 torch.float32"] == {**config.all_kwargs(), "EVEN_K": even_k}
    poincare = ("poincare",) + key[1:]  # a kernel without EVEN_K (n=None)
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, poincare)
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, poincare)
    assert len(tuned.calls) == 3 and kernel.calls[-1][2] == {**kwargs, **config.all_kwargs()}
    monkeypatch.setattr(tl_layer, "INTERPRET", True)
    tl_layer._launch(tuned, kernel, "grid", args, kwargs, key, n)
    assert len(tuned.calls) == 4 and len(kernel.calls) == 3


def test_autotuning_off_launches_the_first_fitting_candidate(monkeypatch):
    """GEOMIR_TRITON_AUTOTUNE=0 (set_autotune(False)): a new key launches the 64x64 candidate
    that fits, with EVEN_K, without the autotuner; the choice is recorded like a tuned one."""
    tuned, kernel = _Recorder(), _Recorder()
    monkeypatch.setattr(tl_layer, "_TUNED", {})
    monkeypatch.setattr(tl_layer, "INTERPRET", False)
    monkeypatch.setattr(tl_layer, "AUTOTUNE", [True])
    tl_layer.set_autotune(False)
    args, kwargs = ("X", "W", 7), {"K": 8, "PRECISION": 0}
    for K, n in [(2, 512), (8, 100)]:
        untuned = tl_layer._untuned(tl_layer._prune_jet(tl_layer.CONFIGS, {}, K=K))
        first = untuned[0].all_kwargs()
        assert (first["BLOCK_N"], first["BLOCK_M"]) == (64, 64)
        assert first["BLOCK_N"] * first["BLOCK_M"] * (K + 1) <= tl_layer.MAX_ACC_ELEMENTS
        key = ("jet", 7, n, 3, K, 0, 1, torch.float32)
        tl_layer._launch(tuned, kernel, "grid", args, kwargs, key, n, lambda: untuned)
        assert tuned.calls == [] and kernel.calls[-1] == ("grid", args, {**kwargs, **first, "EVEN_K": n == 512})
        assert tl_layer.tuned_configs()[" ".join(map(str, key))] == {**first, "EVEN_K": n == 512}
    lap = tl_layer._untuned(tl_layer._prune_laplacian(tl_layer.LAPLACIAN_CONFIGS, {}))
    assert (lap[0].kwargs["BLOCK_N"], lap[0].kwargs["BLOCK_M"]) == (64, 64)
    tl_layer.set_autotune(True)
    key = ("jet", 9, 512, 3, 2, 0, 1, torch.float32)
    tl_layer._launch(_Recorder(triton.Config({"BLOCK_N": 32, "BLOCK_M": 32, "BLOCK_K": 32})), kernel, "grid",
                     args, kwargs, key, 512, lambda: untuned)
    assert len(kernel.calls) == 2  # autotuning on: the autotuner launched, not the kernel


def test_autotuning_keys_on_precision_and_activation():
    """3xTF32 and IEEE dots (and epilogues) favour different tiles: each gets its own tuning."""
    for key in (tl_layer._JET_KEY, tl_layer._LAPLACIAN_KEY):
        assert {"N", "n", "m", "PRECISION", "ACTIVATION"} <= set(key)
    assert "K" in tl_layer._JET_KEY


@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 3e-2), (torch.float16, 3e-3)])
def test_half_precision_tensors(dtype, tol):
    """bf16/f16 storage: loaded as fp32, stored rounded; against the float64 rules."""
    K, n, m = 2, 16, 16
    x = torch.randn(K + 1, 32, n, generator=torch.Generator().manual_seed(12))
    w, b = _params(n, m, True, seed=12)
    y = tl_layer.jet_layer(x.to(dtype), w.to(dtype), b.to(dtype), "tanh")
    ref = taylor.layer(x.to(dtype).double(), w.to(dtype).double(), b.to(dtype).double(), "geo.tanh")
    assert y.dtype == dtype
    assert max(_rel_err(y[k].double(), ref[k]) for k in range(K + 1)) < tol
    lap = taylor.laplacian_seed(torch.randn(32, n, generator=torch.Generator().manual_seed(13)))
    out = tl_layer.laplacian_layer(taylor.LaplacianJet(*(p.to(dtype) for p in lap)), w.to(dtype), b.to(dtype), "tanh")
    ref = taylor.layer(taylor.LaplacianJet(*(p.to(dtype).double() for p in lap)), w.to(dtype).double(),
                       b.to(dtype).double(), "geo.tanh")
    for a, r in zip(out, ref):
        assert a.dtype == dtype and _rel_err(a.double(), r) < tol


def test_results_are_deterministic():
    x = torch.randn(5, 40, 24, generator=torch.Generator().manual_seed(2))
    w, b = _params(24, 40, True, seed=2)
    assert torch.equal(tl_layer.jet_layer(x, w, b, "tanh"), tl_layer.jet_layer(x, w, b, "tanh"))


def test_precision_options():
    K, n, m = 2, 32, 16
    x = torch.randn(K + 1, 32, n, generator=torch.Generator().manual_seed(4))
    w, b = _params(n, m, True, seed=4)
    ref = taylor.layer(x, w, b, "geo.tanh")
    y = tl_layer.jet_layer(x, w, b, "tanh", precision="tf32")
    errs = [_rel_err(y[k], ref[k]) for k in range(K + 1)]
    assert 1e-4 < max(errs) < 5e-3, errs  # operands truncated to TF32 (10-bit mantissa), emulated on CPU
    _assert_close(tl_layer.jet_layer(x, w, b, "tanh", precision="tf32x3"), ref, "tf32x3")
    y = tl_layer.jet_layer(x, w, b, "tanh", precision="bf16")
    errs = [_rel_err(y[k], ref[k]) for k in range(K + 1)]
    assert 1e-5 < max(errs) < 3e-2, errs  # operands rounded to bf16 (8-bit mantissa)
    with pytest.raises(ValueError, match="precision 'fp8'"):
        tl_layer.jet_layer(x, w, b, "tanh", precision="fp8")


@triton.jit
def _split_kernel(X, HI, LO, N: tl.constexpr):
    i = tl.arange(0, N)
    hi, lo = tl_layer._k._operand(tl.load(X + i), 4)
    tl.store(HI + i, hi)
    tl.store(LO + i, lo)


def test_tf32x3_split():
    """3xTF32's operand split: hi and lo are TF32 numbers (low 13 mantissa bits zero), hi is
    x rounded to nearest with ties away (cvt.rna.tf32.f32), hi + lo = x to 2^-21 relative;
    subnormals to TF32's spacing there (2^-136); inf and NaN keep their hi with lo = 0 (no
    NaN from inf - inf)."""
    g = torch.Generator().manual_seed(5)
    x = torch.cat([torch.randn(1000, generator=g) * 10.0 ** torch.randint(-30, 30, (1000,), generator=g),
                   torch.tensor([0.0, -0.0, 1.0, 1 + 2.0**-11, 1 + 3 * 2.0**-11, float("inf"), float("-inf"),
                                 float("nan"), 3.0e38, 1e-40])]).float()
    x = torch.nn.functional.pad(x, (0, 1024 - x.numel()))
    hi, lo = torch.empty_like(x), torch.empty_like(x)
    _split_kernel[(1,)](x, hi, lo, N=1024)
    low_bits = 0x1FFF
    assert ((hi.view(torch.int32) & low_bits) == 0).all() and ((lo.view(torch.int32) & low_bits) == 0).all()
    finite = torch.isfinite(x)
    err = ((hi + lo).double() - x.double()).abs()[finite]
    assert (err <= 2.0**-21 * x.double().abs()[finite] + 2.0**-136).all()
    assert hi[1002] == 1.0 and hi[1003] == 1 + 2.0**-10  # ties (1 + half a TF32 ulp) away from zero
    assert hi[1004] == 1 + 2 * 2.0**-10 and lo[1004] == -(2.0**-11)
    assert torch.equal(hi[1005:1007], x[1005:1007]) and (lo[1005:1008] == 0).all() and hi[1007].isnan()


def test_unsupported_activation_raises():
    x = torch.randn(2, 4, 16)
    w, _ = _params(16, 16, False)
    with pytest.raises(NotImplementedError, match=r"'geo.atanh' has no fused Triton kernel \(supported: .*geo.sqrt"):
        tl_layer.jet_layer(x, w, None, "geo.atanh")
    with pytest.raises(NotImplementedError, match="geo.atanh"):
        tl_layer.laplacian_layer(taylor.laplacian_seed(torch.randn(4, 16)), w, None, "geo.atanh")


# -- TTIR ---------------------------------------------------------------------------------

JET_CHECKS = """\
CHECK-LABEL: tt.func public @jet_layer_kernel
CHECK-NOT: tt.dot
CHECK-NOT: tt.store
CHECK: scf.for %i = {{.*}} iter_args({{.*}}) -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
CHECK-COUNT-5: tt.dot {{.*}} : tensor<64x32xf32> * tensor<32x64xf32> -> tensor<64x64xf32>
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.dot
CHECK-NOT: tt.store
CHECK: tt.load
CHECK-NOT: tt.load
CHECK-NOT: tt.store
CHECK: math.exp
CHECK-NOT: tt.load
CHECK-NOT: tt.store
CHECK: arith.divf
CHECK-NOT: tt.load
CHECK-NOT: tt.store
CHECK: arith.mulf
CHECK-NOT: tt.load
CHECK-COUNT-5: tt.store {{.*}} : tensor<64x64x!tt.ptr<f32>>
CHECK-NOT: tt.store
CHECK-NOT: tt.load
CHECK: tt.return
CHECK-NOT: tt.func
"""

LAPLACIAN_CHECKS = """\
CHECK-LABEL: tt.func public @laplacian_layer_kernel
CHECK-NOT: tt.store
CHECK: scf.for %i
CHECK-COUNT-2: tt.dot {{.*}} -> tensor<64x64xf32>
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.store
CHECK-NOT: tt.dot
CHECK: math.exp
CHECK-NOT: tt.dot
CHECK: tt.store {{.*}} : tensor<64x64x!tt.ptr<f32>>
CHECK-NOT: tt.store
CHECK: scf.for %d0 = {{.*}} to %D step %c2_i32
CHECK-NOT: tt.store
CHECK: scf.for %i
CHECK-COUNT-2: tt.dot {{.*}} -> tensor<64x64xf32>
CHECK-NOT: tt.dot
CHECK: scf.yield
CHECK-NOT: tt.load
CHECK-NOT: tt.dot
CHECK: arith.mulf
CHECK-NOT: tt.load
CHECK-COUNT-2: tt.store {{.*}} : tensor<64x64x!tt.ptr<f32>>
CHECK-NOT: tt.store
CHECK: scf.yield
CHECK-NOT: tt.load
CHECK-NOT: tt.dot
CHECK: arith.mulf
CHECK: tt.store {{.*}} : tensor<64x64x!tt.ptr<f32>>
CHECK-NOT: tt.store
CHECK-NOT: tt.load
CHECK: tt.return
CHECK-NOT: tt.func
"""


@pytest.fixture(scope="module")
def ttir(tmp_path_factory) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path_factory.mktemp("triton-cache"))
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "triton" / "ttir_check.py")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def _section(text: str, name: str) -> str:
    return text.split(f"// ==== {name}\n", 1)[1].split("// ==== ", 1)[0]


def _filecheck(text: str, checks: str, tmp_path: Path) -> None:
    check_file = tmp_path / "checks.txt"
    check_file.write_text(checks)
    proc = subprocess.run([sys.executable, "-m", "filecheck", str(check_file)], input=text,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_ttir_jet_kernel(ttir, tmp_path):
    """K=4 tanh: 5 dots in the n-loop, the tanh epilogue after it in the same function,
    one store per coefficient tile, no other global traffic."""
    body = _section(ttir, "jet")
    _filecheck(body, JET_CHECKS, tmp_path)
    assert body.count("tt.dot ") == 5 and body.count("tt.store ") == 5
    assert body.count("tt.load ") == 5 + 1 + 1  # X[k] tiles, the W tile, the bias
    assert body.count("tt.func ") == 1 and "tt.call" not in body
    assert "tf32" not in body  # IEEE fp32 dots


def test_ttir_laplacian_kernel(ttir, tmp_path):
    """D runtime: the f0 and f2 dots share one n-loop, then DIRS = 2 directions per n-step
    of the d-loop; g0 stored after the first loop, DIRS g1 stores per group, g2 at the end;
    the tanh coefficients computed once."""
    body = _section(ttir, "laplacian")
    _filecheck(body, LAPLACIAN_CHECKS, tmp_path)
    assert body.count("tt.dot ") == 4 and body.count("tt.store ") == 4
    assert body.count("math.exp ") == 1
    assert body.count("tt.func ") == 1 and "tt.call" not in body
    assert "tf32" not in body


@pytest.mark.parametrize("section, marker", [("jet-sin", "math.sin"), ("jet-softplus", "math.log"),
                                             ("jet-log", "math.log"), ("jet-sqrt", "math.sqrt")])
def test_ttir_other_activations_keep_one_kernel(ttir, section, marker, tmp_path):
    """Other epilogues: still K+1 dots in the loop, the recurrence after it, K+1 stores."""
    body = _section(ttir, section)
    assert body.count("tt.dot ") == 5 and body.count("tt.store ") == 5
    assert body.count("tt.func ") == 1 and "tt.call" not in body
    loop_end = body.index("scf.yield")
    assert marker in body[loop_end:] and "tt.load" not in body[body.index(marker, loop_end):]


def test_ttir_laplacian_sqrt_zeroes_rest_in_the_same_kernel(ttir):
    """sqrt: after the direction loop, a barrier and one masked g1 store per direction (the
    rest case, in a runtime loop over D), then g2: still one kernel, 4 dots, no reload."""
    body = _section(ttir, "laplacian-sqrt")
    assert body.count("tt.func ") == 1 and "tt.call" not in body
    assert body.count("tt.dot ") == 4 and body.count("tt.store ") == 5
    assert body.count("ttg.barrier ") == 1 and body.count("math.sqrt ") == 1
    tail = body[body.index("ttg.barrier "):]
    assert "tt.dot" not in tail and "tt.load" not in tail and tail.count("tt.store ") == 2
    assert "barrier" not in _section(ttir, "laplacian")  # the other epilogues: none


def test_ttir_laplacian_neg_is_linear(ttir):
    """neg: -y1 and -y2, no sum of squares over the directions (no mulf in the epilogue)."""
    body = _section(ttir, "laplacian-neg")
    assert body.count("tt.dot ") == 4 and body.count("tt.store ") == 4
    assert "math." not in body and "arith.mulf" not in body and "barrier" not in body


def test_ttir_precision_options(ttir):
    tf32, bf16, ieee = _section(ttir, "jet-tf32"), _section(ttir, "jet-bf16"), _section(ttir, "jet")
    assert "inputPrecision = tf32" in tf32 and body_dots(tf32) == 3
    assert "tf32" not in ieee and "bf16" not in ieee
    assert re.search(r"tt\.dot .* : tensor<64x32xbf16> \* tensor<32x64xbf16> -> tensor<64x64xf32>", bf16)
    assert body_dots(bf16) == 3
    # 3xTF32 by hand: three TF32 dots per coefficient; every tile split into TF32 halves
    # once per k-step (two roundings, two bitcasts each), the W tile once for all K+1 dots
    tf32x3 = _section(ttir, "jet-tf32x3")
    assert "tf32x3" not in tf32x3 and tf32x3.count("inputPrecision = tf32") == body_dots(tf32x3) == 3 * 3
    assert tf32x3.count("tt.bitcast ") == 4 * (3 + 1)


def body_dots(body: str) -> int:
    return body.count("tt.dot ")
