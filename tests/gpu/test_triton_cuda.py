"""The Triton kernels compiled for a real GPU, against the torch kernels on the same GPU.

CI has no GPU: this file is skipped there (tests/triton runs the same kernels under the
Triton interpreter). The device run executes it first (``benchmarks/device_run.sh``; or
``python -m pytest tests/gpu`` on any CUDA machine). What the interpreter cannot show is
checked here: the kernels as Triton compiles them for the GPU (its own fp32 rounding, FMA
contraction, the autotuned tiles and DIRS, EVEN_K), at sizes past one tile:

* the jet, Laplacian, dense and Poincaré kernels against the torch rules, f32 with TF32
  off, relative error <= 1e-4 per coefficient;
* NaN where torch gives NaN and nowhere else (a NaN value, coefficient, direction or
  weight; relu at its kink; saturated pre-activations);
* the Poincaré kernel near the boundary and at the origin (the runtime's clamps);
* the other dot precisions and 16-bit inputs within their bounds, repeat calls bitwise
  equal, CUDA-graph replay equal to the direct call;
* every example and a range of generated programs on the Triton target against the torch
  target (tests/unit/program_checks.py), with strict mode on so that no kernel site
  silently runs torch.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    # before triton is imported: in a full run this module is collected before
    # tests/triton/conftest.py sets TRITON_INTERPRET, and importing triton here first made
    # the kernels decorated there half compiled, half interpreted
    pytest.skip("no CUDA GPU (the Triton kernels are tested under the interpreter in tests/triton)",
                allow_module_level=True)
pytest.importorskip("triton")

import geomir  # noqa: E402
from geomir.backends.torch import runtime as torch_runtime  # noqa: E402
from geomir.backends.torch import taylor  # noqa: E402
from geomir.backends.triton import layer, poincare, runtime  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from unit.geo_programs import generate_program  # noqa: E402
from unit.program_checks import check_triton  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CUDA = torch.device("cuda")
RTOL = 1e-4
ACTIVATIONS = [None, "tanh", "sigmoid", "relu", "softplus", "sin", "cos", "exp", "log", "sqrt", "neg"]
POSITIVE = {"log", "sqrt"}  # defined where W x + b > 0: the numbers tests make inputs positive
# (N, n, m): ragged tiles with every activation; EVEN_K and setting A's layer with two
CASES = [((37, 23, 45), act) for act in ACTIVATIONS] + [
    (shape, act) for shape in [(300, 64, 128), (4096, 512, 512)] for act in ("tanh", "relu")]


@pytest.fixture(autouse=True)
def _fp32_strict_untuned():
    """fp32 dots (TF32 off) in torch; strict mode; one fixed tile per kernel (autotuning
    every key would compile every candidate: minutes; test_autotuned_kernels tunes)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    runtime.set_strict(True)
    runtime.set_autotune(False)
    yield
    runtime.set_strict(False)
    runtime.set_autotune(True)


def _params(n, m, bias=True, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = scale * torch.randn(m, n, generator=g) / n**0.5
    b = 0.5 * torch.randn(m, generator=g) if bias else None
    return w.to(CUDA), (b.to(CUDA) if bias else None)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(CUDA)


def _in_domain(activation, x0, w, b):
    """(x0, w, b) with W x0 + b > 0 for log and sqrt (all positive); unchanged otherwise."""
    if activation not in POSITIVE:
        return x0, w, b
    return x0.abs() + 0.1, w.abs(), None if b is None else b.abs()


def _close(y, ref, what, rtol=RTOL):
    assert y.shape == ref.shape and y.dtype == ref.dtype, (what, y.shape, ref.shape, y.dtype, ref.dtype)
    for k in range(ref.shape[0]):
        err = float((y[k].double() - ref[k].double()).abs().max() / ref[k].double().abs().max().clamp_min(1e-30))
        assert err <= rtol, f"{what}[{k}]: relative error {err:.2e}"


def _same_nans_then_close(y, ref, what):
    assert torch.equal(y.isnan(), ref.isnan()), \
        f"{what}: NaN at {y.isnan().nonzero().tolist()[:8]}, torch {ref.isnan().nonzero().tolist()[:8]}"
    ok = ~ref.isnan()
    assert torch.equal(y.isinf() & ok, ref.isinf() & ok), what
    fin = torch.isfinite(ref)
    assert float((y[fin] - ref[fin]).abs().max()) <= RTOL * float(ref[fin].abs().max().clamp_min(1.0)), what


@pytest.mark.parametrize("shape, activation", CASES)
@pytest.mark.parametrize("K", [0, 2, 4])
def test_jet_layer(shape, activation, K):
    N, n, m = shape
    x = _randn(K + 1, N, n, seed=K)
    w, b = _params(n, m, seed=n)
    x[0], w, b = _in_domain(activation, x[0], w, b)
    _close(layer.jet_layer(x, w, b, activation), taylor.layer(x, w, b, activation), f"jet K={K} {activation}")


@pytest.mark.parametrize("shape, activation", CASES)
@pytest.mark.parametrize("D", [1, 5, 16])
def test_laplacian_layer(shape, activation, D):
    N, n, m = shape
    w, b = _params(n, m, seed=D)
    f0, w, b = _in_domain(activation, _randn(N, n, seed=1), w, b)
    lap = taylor.LaplacianJet(f0, _randn(D, N, n, seed=2), _randn(N, n, seed=3))
    for name, y, r in zip(("f0", "f1", "f2"), layer.laplacian_layer(lap, w, b, activation),
                          taylor.layer(lap, w, b, activation)):
        _close(y[None], r[None], f"laplacian D={D} {activation} {name}")


def test_autotuned_kernels():
    """Setting A's layer (N = 4000: keys of its own) through the autotuner: every candidate
    that fits is compiled and timed; the chosen one computes the same numbers."""
    runtime.set_autotune(True)
    N, n, m = 4000, 512, 512
    w, b = _params(n, m, seed=9)
    for K in (2, 4):
        x = _randn(K + 1, N, n, seed=K)
        _close(layer.jet_layer(x, w, b, "tanh"), taylor.layer(x, w, b, "tanh"), f"tuned jet K={K}")
    lap = taylor.LaplacianJet(_randn(N, n, seed=1), _randn(16, N, n, seed=2), _randn(N, n, seed=3))
    for name, y, r in zip(("f0", "f1", "f2"), layer.laplacian_layer(lap, w, b, "tanh"), taylor.layer(lap, w, b, "tanh")):
        _close(y[None], r[None], f"tuned laplacian {name}")
    assert {key.split()[0] for key in layer.tuned_configs() if key.split()[1] == str(N)} == {"jet", "laplacian"}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_nan_where_torch_gives_nan(activation):
    K, N, n, m = 3, 64, 64, 64
    x = _randn(K + 1, N, n, seed=5)
    x[0, 1, 3] = float("nan")  # a value
    x[2, 4, 0] = float("nan")  # a second-order coefficient
    w, b = _params(n, m, seed=5)
    w[7, 9] = float("nan")  # a weight: output unit 7 of every row
    _same_nans_then_close(layer.jet_layer(x, w, b, activation), taylor.layer(x, w, b, activation),
                          f"jet {activation}")
    lap = taylor.LaplacianJet(x[0], x[1:3].clone(), x[3])
    lap.f1[1, 6, 2] = float("nan")  # a direction of row 6
    for name, y, r in zip(("f0", "f1", "f2"), layer.laplacian_layer(lap, w, b, activation),
                          taylor.layer(lap, w, b, activation)):
        _same_nans_then_close(y, r, f"laplacian {activation} {name}")


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "exp"])
def test_saturated_pre_activations(activation):
    K, N, n, m = 4, 128, 64, 64
    x = 40.0 * _randn(K + 1, N, n, seed=11)
    w, b = _params(n, m, scale=8.0, seed=11)
    _same_nans_then_close(layer.jet_layer(x, w, b, activation), taylor.layer(x, w, b, activation),
                          f"saturated {activation}")


@pytest.mark.parametrize("D", [3, 16])
def test_sqrt_laplacian_at_rest_is_zero(D):
    """sqrt(W relu(x)), W > 0, no bias: rows with every entry of x negative rest at 0. The
    kernel stored phi' = NaN times W f1 for their directions, then (after a barrier) the
    same program overwrites them with 0: on the GPU the second store must win everywhere."""
    N, n, m = 4096, D, 256
    x = _randn(N, n, seed=14)
    x[::3] = -x[::3].abs()  # a third of the rows at rest
    w = torch.rand(m, n, generator=torch.Generator().manual_seed(14)).to(CUDA) + 0.1
    lap = taylor.collapsed.relu(taylor.laplacian_seed(x))
    out, ref = layer.laplacian_layer(lap, w, None, "sqrt"), taylor.layer(lap, w, None, "sqrt")
    for name, y, r in zip(("f0", "f1", "f2"), out, ref):
        assert torch.isfinite(y).all(), name
        assert torch.equal(y[..., ::3, :], torch.zeros_like(y[..., ::3, :])), name
        _close(y[None], r[None], f"sqrt at rest D={D} {name}")


def test_relu_at_its_kink_is_zero_like_autodiff():
    x = torch.zeros(3, 64, 64, device=CUDA)
    x[1:] = _randn(2, 64, 64, seed=12)
    w, _ = _params(64, 64, seed=12)
    y = layer.jet_layer(x, w, None, "relu")
    assert torch.equal(y, torch.zeros_like(y))


def _ball_reference(x, w, b, c, activation):
    ball = torch_runtime.PoincareBall(c=c)
    y = ball.mobius_matvec(w, x)
    if b is not None:
        y = ball.mobius_add(y, b)
    return y if activation is None else ball.expmap0(getattr(torch, activation)(ball.logmap0(y)))


@pytest.mark.parametrize("c", [1.0, 0.5])
@pytest.mark.parametrize("activation", [None, "tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("N, n, m", [(40, 20, 24), (4096, 64, 256)])
def test_poincare_layer(c, activation, N, n, m):
    ball = torch_runtime.PoincareBall(c=c)
    x = ball.expmap0(0.1 * _randn(N, n, seed=N))
    w = _randn(m, n, seed=m) / n**0.5
    b = ball.expmap0(0.3 * _randn(m, seed=1))
    y = poincare.poincare_layer(x, w, b, c=c, activation=activation)
    ref32 = _ball_reference(x, w, b, c, activation)
    ref64 = _ball_reference(x.double(), w.double(), b.double(), c, activation)
    _close(y[None], ref32[None], f"poincare c={c} {activation}")
    err64 = float((y.double() - ref64).abs().max() / ref64.abs().max())
    assert err64 <= 2 * float((ref32.double() - ref64).abs().max() / ref64.abs().max()) + 1e-6


def test_poincare_layer_at_the_boundary_and_the_origin():
    g = _randn(64, 16, seed=5)
    near = (1 - 1e-4) * g / g.norm(dim=-1, keepdim=True)
    x = torch.cat([near, torch.zeros(4, 16, device=CUDA)])
    w = 3.0 * _randn(24, 16, seed=6) / 4
    for activation in (None, "tanh", "sigmoid"):
        y = poincare.poincare_layer(x, w, None, c=1.0, activation=activation)
        ref32 = _ball_reference(x, w, None, 1.0, activation)
        ref64 = _ball_reference(x.double(), w.double(), None, 1.0, activation)
        assert torch.isfinite(y).all(), activation
        assert (y.norm(dim=-1) <= (1 - 1e-5) * (1 + 1e-6)).all(), activation
        err = float((y.double() - ref64).abs().max() / ref64.abs().max())
        assert err <= 2 * float((ref32.double() - ref64).abs().max() / ref64.abs().max()) + 1e-4, activation
        assert float((y[64:] - ref32[64:]).abs().max()) <= 1e-6, activation  # the origin's rows


@pytest.mark.parametrize("precision, tol", [("tf32x3", 2e-5), ("tf32", 2e-2), ("bf16", 1e-1)])
def test_other_dot_precisions(precision, tol):
    K, N, n, m = 4, 512, 512, 512
    x = _randn(K + 1, N, n, seed=7)
    w, b = _params(n, m, seed=7)
    exact = layer.jet_layer(x, w, b, "tanh")
    _close(layer.jet_layer(x, w, b, "tanh", precision=precision), exact, f"jet {precision}", rtol=tol)
    lap = taylor.LaplacianJet(x[0], x[1:], x[0])
    for name, y, r in zip(("f0", "f1", "f2"), layer.laplacian_layer(lap, w, b, "tanh", precision=precision),
                          layer.laplacian_layer(lap, w, b, "tanh")):
        _close(y[None], r[None], f"laplacian {precision} {name}", rtol=tol)


@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 2e-2), (torch.float16, 2e-2)])
def test_half_precision_inputs(dtype, tol):
    K, N, n, m = 2, 256, 64, 64
    x = _randn(K + 1, N, n, seed=12)
    w, b = _params(n, m, seed=12)
    y = layer.jet_layer(x.to(dtype), w.to(dtype), b.to(dtype), "tanh")
    ref = taylor.layer(x.to(dtype).float(), w.to(dtype).float(), b.to(dtype).float(), "tanh")
    assert y.dtype == dtype
    _close(y.float(), ref, f"jet {dtype}", rtol=tol)


def test_repeat_calls_are_bitwise_equal():
    x = _randn(5, 4096, 512, seed=2)
    w, b = _params(512, 512, seed=2)
    first = layer.jet_layer(x, w, b, "tanh")
    assert all(torch.equal(first, layer.jet_layer(x, w, b, "tanh")) for _ in range(3))
    lap = taylor.LaplacianJet(x[0], x[1:], x[0])
    one = layer.laplacian_layer(lap, w, b, "tanh")
    two = layer.laplacian_layer(lap, w, b, "tanh")
    assert all(torch.equal(a, c) for a, c in zip(one, two))


@pytest.mark.parametrize("name", ["lap_u", "d4_u"])
def test_graph_replay_equals_the_direct_call(name):
    mod = geomir.compile(str(ROOT / "examples" / "pinn_laplacian.geo"), target="triton")
    params = {k: v.to(CUDA) for k, v in mod.init_params(seed=0).items()}
    x = _randn(256, 2, seed=3)
    args = (x,) if name == "lap_u" else (x, _randn(256, 2, seed=4))
    fn = getattr(mod, name)
    direct = fn(params, *args)
    replay = runtime.graphed(fn)
    for _ in range(3):
        again = replay(params, *args)
        assert all(torch.equal(a, b) for a, b in zip(again if isinstance(again, tuple) else (again,),
                                                     direct if isinstance(direct, tuple) else (direct,)))


def test_graph_replay_keeps_derivatives():
    """A graph replay has no tangent, autograd graph or batch axis: with a forward-mode dual
    input or inside a torch.func transform, graphed() calls the function (the sites take the
    torch code, silently also in strict mode) and records no graph."""
    import torch.autograd.forward_ad as fwAD

    mod = geomir.compile(str(ROOT / "examples" / "pinn_laplacian.geo"), target="triton")
    ref = geomir.compile(str(ROOT / "examples" / "pinn_laplacian.geo"), target="torch")
    params = {k: v.to(CUDA) for k, v in mod.init_params(seed=0).items()}
    x, v = _randn(64, 2, seed=5), _randn(64, 2, seed=6)
    replay = runtime.graphed(mod.U)
    tangents = []
    for fn in (replay, ref.U):
        with fwAD.dual_level():
            tangents.append(fwAD.unpack_dual(fn(params, fwAD.make_dual(x, v))).tangent)
    assert tangents[0] is not None and replay.graphs == {}
    assert float((tangents[0] - tangents[1]).abs().max()) <= RTOL * float(tangents[1].abs().max())
    got = torch.func.grad(lambda r: replay(params, r).sum())(x)
    want = torch.func.grad(lambda r: ref.U(params, r).sum())(x)
    assert replay.graphs == {}
    assert float((got - want).abs().max()) <= RTOL * float(want.abs().max())


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.geo")))
def test_examples_on_the_triton_target(example):
    source = (ROOT / "examples" / example).read_text()
    if "path " in source:
        pytest.skip("paths run on the torch and jax targets only")
    runtime.set_strict(False)  # float64 and autograd sites fall back by design; the check compares
    check_triton(source, device="cuda")


@pytest.mark.parametrize("seed", range(9000, 9020))
def test_generated_programs_on_the_triton_target(seed):
    runtime.set_strict(False)
    check_triton(generate_program(random.Random(seed)).source, device="cuda")
