"""softplus is log(1 + e^x) on every target: torch.nn.functional.softplus returns x above
its threshold 20, a step down of up to 2e-9 that broke a proved @monotone model
(examples/lipschitz_classifier.geo DoseResponse decreased between two doses) and
disagreed with the JAX target and the jets' coefficient 0."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import geomir

torch = pytest.importorskip("torch")

SOURCE = "model S(x: R[1]) -> R[1] { return softplus(x) }\n"
XS = [-800.0, -50.0, -1.0, 0.0, 1.0, 19.9, 20.0, 20.5, 34.17323829442358, 34.173238294433574, 60.0, 800.0]


def test_torch_softplus_is_log1p_exp_everywhere_and_monotone():
    m = geomir.compile(SOURCE, target="torch")
    x = torch.tensor(XS, dtype=torch.float64)[:, None]
    got = m.S({}, x)[:, 0].tolist()
    want = [float(mpmath.log1p(mpmath.exp(mpmath.mpf(v)))) for v in XS]
    np.testing.assert_allclose(got, want, rtol=2e-16, atol=0)
    dense = torch.linspace(19.0, 40.0, 200001, dtype=torch.float64)[:, None]
    assert bool(torch.all(torch.diff(m.S({}, dense)[:, 0]) >= 0))


def test_torch_and_jax_softplus_agree_bitwise_close():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    tm, jm = geomir.compile(SOURCE, target="torch"), geomir.compile(SOURCE, target="jax")
    x = np.array(XS)[:, None]
    np.testing.assert_allclose(tm.S({}, torch.tensor(x))[:, 0].numpy(), np.asarray(jm.S({}, jax.numpy.asarray(x)))[:, 0],
                               rtol=2e-16, atol=0)
