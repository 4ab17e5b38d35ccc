"""Certified spectral-norm bounds (geomir.certify) against numpy's SVD: the upper bound is
never below sigma_1 (hypothesis over shapes, scales, ranks, adversarial structure), and it
is tight (Gram iteration converges like rank^(1/2^(t+1)))."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from geomir.certify import spectral_norm_bound, spectral_norm_lower


def _sigma(w) -> float:
    return float(np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False)[0]) if np.size(w) else 0.0


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(w=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24), elements=finite),
       scale=st.sampled_from([1.0, 1e-150, 1e-30, 1e30, 1e150]))
def test_upper_bound_is_never_below_sigma1(w, scale):
    w = w * scale
    sigma = _sigma(w)
    bound = spectral_norm_bound(w)
    assert bound >= sigma
    assert spectral_norm_lower(w) <= sigma * (1 + 1e-12)
    if sigma > 0:
        rank = np.linalg.matrix_rank(w)
        assert bound <= sigma * rank ** (1 / 2**15) * (1 + 1e-9)  # Gram iteration's convergence


@pytest.mark.parametrize("shape", [(512, 512), (512, 16), (1, 64), (300, 700)])
def test_tight_on_random_layers(shape):
    w = np.random.default_rng(0).standard_normal(shape) / np.sqrt(shape[1])
    sigma = _sigma(w)
    assert sigma <= spectral_norm_bound(w) <= 1.0003 * sigma
    assert 0.98 * sigma <= spectral_norm_lower(w) <= sigma


def test_structured_matrices():
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((64, 64)))
    assert 1.0 <= spectral_norm_bound(q) <= 64 ** (1 / 2**15) * (1 + 1e-9)  # orthogonal: the worst case
    assert 1.0 <= spectral_norm_bound(np.eye(7)) <= 7 ** (1 / 2**15) * (1 + 1e-9)
    d = np.diag([3.0, 3.0 - 1e-9, 1.0])  # a near-tie at the top
    assert spectral_norm_bound(d) >= 3.0
    outer = np.outer(np.arange(1.0, 6.0), np.ones(4))  # rank 1: the bound is exact at once
    assert _sigma(outer) <= spectral_norm_bound(outer) <= _sigma(outer) * (1 + 1e-9)
    assert spectral_norm_bound(np.zeros((3, 5))) == 0.0
    assert spectral_norm_bound(np.float32([[1e-3, 2.0], [0.5, -1.0]])) >= _sigma(np.float32([[1e-3, 2.0], [0.5, -1.0]]))


def test_bad_input():
    with pytest.raises(ValueError, match="2-D array"):
        spectral_norm_bound(np.ones(3))
    with pytest.raises(ValueError, match="non-finite"):
        spectral_norm_bound(np.array([[1.0, np.nan]]))
