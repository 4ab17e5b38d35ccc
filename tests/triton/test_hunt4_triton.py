"""Fixes of the Triton backend found by bug hunt 4, on CPU under the Triton interpreter
(TRITON_INTERPRET=1, tests/triton/conftest.py):

* ``precision="tf32"`` is emulated there (operands truncated to TF32, as a TF32 tensor-core
  dot reads them), not silently computed as IEEE fp32;
* ``TRITON_INTERPRET`` is read as triton reads it, and geomir's own switches
  (``GEOMIR_TRITON_STRICT``, ``GEOMIR_TRITON_AUTOTUNE``) take 1/true/yes/on or 0/false/no/off,
  anything else being an error;
* ``runtime.graphed(f)`` takes inputs by name, as ``f`` does.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # read when @triton.jit decorates: before the imports

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from geomir.backends.torch import taylor  # noqa: E402
from geomir.backends.triton import env_flag, graphs, poincare, runtime  # noqa: E402
from geomir.backends.triton import layer as tl_layer  # noqa: E402
from geomir.diagnostics import UsageError  # noqa: E402


def _tf32(t: torch.Tensor) -> torch.Tensor:
    """t (float32) truncated to TF32: the low 13 of its 23 mantissa bits cleared."""
    return (t.contiguous().view(torch.int32) & ~0x1FFF).view(torch.float32)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


# -- 1. TF32 under the interpreter -------------------------------------------------------


def test_tf32_drops_the_bits_tf32_cannot_hold():
    """1 + 2^-20 and 1 + 3 * 2^-12 are not TF32 numbers: a TF32 dot reads both as 1 (the
    second also shows truncation, not rounding to nearest, which gives 1 + 2^-10). IEEE
    and 3xTF32 keep them (the interpreter computed IEEE for tf32 before the fix)."""
    x = torch.tensor([1.0 + 2.0**-20, 1.0 + 3 * 2.0**-12]).reshape(1, 2, 1)
    w = torch.ones(1, 1)
    assert tl_layer.jet_layer(x, w, precision="tf32").flatten().tolist() == [1.0, 1.0]
    for precision in ("ieee", "tf32x3"):
        assert torch.equal(tl_layer.jet_layer(x, w, precision=precision), x)


def test_tf32_layers_match_a_torch_emulation():
    """A tiny jet layer under tf32 is the float64 layer of the TF32-truncated operands (to
    fp32 summation), and the kernel on pre-truncated operands with IEEE dots, bit for bit;
    so are the Laplacian and Poincaré kernels (on the ball, x is already TF32: the kernel
    takes |x|^2 from the fp32 x)."""
    g = torch.Generator().manual_seed(0)
    K, N, n, m = 1, 6, 12, 5
    x = torch.randn(K + 1, N, n, generator=g)
    w = torch.randn(m, n, generator=g) / n**0.5
    b = 0.5 * torch.randn(m, generator=g)
    y = tl_layer.jet_layer(x, w, b, "tanh", precision="tf32")
    ref = taylor.layer(_tf32(x).double(), _tf32(w).double(), b.double(), "geo.tanh")
    assert _rel(y, ref) < 2e-6
    assert _rel(tl_layer.jet_layer(x, w, b, "tanh"), ref) > 2e-5  # IEEE dots differ from TF32
    assert torch.equal(y, tl_layer.jet_layer(_tf32(x), _tf32(w), b, "tanh"))

    lap = taylor.LaplacianJet(x[0], torch.randn(2, N, n, generator=g), x[1])
    out = tl_layer.laplacian_layer(lap, w, b, "tanh", precision="tf32")
    emulated = tl_layer.laplacian_layer(taylor.LaplacianJet(*map(_tf32, lap)), _tf32(w), b, "tanh")
    assert all(torch.equal(a, e) for a, e in zip(out, emulated))

    p = _tf32(0.3 * torch.randn(N, n, generator=g) / n**0.5)
    y = poincare.poincare_layer(p, w, None, c=1.0, activation="tanh", precision="tf32")
    assert torch.equal(y, poincare.poincare_layer(p, _tf32(w), None, c=1.0, activation="tanh"))
    assert not torch.equal(y, poincare.poincare_layer(p, w, None, c=1.0, activation="tanh"))


# -- 2. boolean switches -----------------------------------------------------------------


@pytest.mark.parametrize(("value", "default", "expected"), [
    ("1", False, True), ("TRUE", False, True), (" yes ", False, True), ("on", False, True),
    ("0", True, False), ("false", True, False), ("No", True, False), ("off", True, False),
    (None, True, True), ("", False, False), ("  ", True, True),
])
def test_env_flag_reads_the_usual_spellings(monkeypatch, value, default, expected):
    if value is None:
        monkeypatch.delenv("GEOMIR_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("GEOMIR_TEST_FLAG", value)
    assert env_flag("GEOMIR_TEST_FLAG", default) is expected


def test_env_flag_refuses_other_values(monkeypatch):
    monkeypatch.setenv("GEOMIR_TEST_FLAG", "maybe")
    with pytest.raises(UsageError, match=r"GEOMIR_TEST_FLAG='maybe': expected 1, true, yes or on, "
                                         r"or 0, false, no or off \(unset: on\)"):
        env_flag("GEOMIR_TEST_FLAG", True)


def test_false_means_off_for_triton_and_geomir_switches():
    """TRITON_INTERPRET=false: triton compiles for a GPU, so geomir does not take CPU tensors
    to the kernels (it crashed with '0 active drivers'): the documented ``device`` fallback.
    GEOMIR_TRITON_STRICT=false is not strict, GEOMIR_TRITON_AUTOTUNE=false does not tune.
    One process: TRITON_INTERPRET is read when the kernels are decorated."""
    code = ("import warnings, torch\n"
            "from geomir.backends.triton import layer, runtime\n"
            "warnings.simplefilter('ignore')\n"
            "runtime.dense(torch.ones(2, 3), torch.ones(4, 3))\n"
            "print(layer.INTERPRET, runtime._STRICT[0], layer.AUTOTUNE[0], dict(runtime.STATS))\n")
    env = {**os.environ, "TRITON_INTERPRET": "false", "GEOMIR_TRITON_STRICT": "false",
           "GEOMIR_TRITON_AUTOTUNE": "false"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[0] == "False False False {('torch', 'dense', 'device'): 1}"


# -- 3. graphed takes inputs by name -----------------------------------------------------


def _model(params, x, v):
    """A generated function's form: params, then the inputs (by position or by name)."""
    return params["w"] * x + v


def test_graphed_takes_inputs_by_name():
    params = {"w": torch.tensor(2.0)}
    x, v = torch.ones(3), torch.arange(3.0)
    fast = runtime.graphed(_model)
    expected = _model(params, x, v)
    for call in (lambda: fast(params, x, v), lambda: fast(params, x, v=v), lambda: fast(params, v=v, x=x)):
        assert torch.equal(call(), expected)
    assert fast._positional(params, (), {"v": v, "x": x}) == (x, v)  # one graph for every spelling
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):  # f's own error
        fast(params, x, y=v)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        fast(params, x, x=x)


def test_graphed_passes_an_input_named_self():
    """The wrapper's own parameters are positional-only: any input name reaches ``f``."""
    def f(params, self):
        return 2 * self

    assert torch.equal(graphs.graphed(f)({}, self=torch.ones(1)), torch.full((1,), 2.0))
