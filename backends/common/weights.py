"""Weight transforms recorded on ``geo.param`` ops and applied wherever weights are made.

A transform is a string, as ``geomc --quantize`` / ``--prune`` spell it:

    quantize:int8           symmetric int8 with one scale per output row (per tensor for a
                            vector): w -> round(w / s) * s, s = max|row| / 127
    quantize:bf16           round to the nearest bfloat16 (ties to even)
    prune:magnitude:F       zero the floor(F * size) entries of smallest |w| in the tensor
    constrain:nonnegative   |w|: the constraint of ``linear(..., nonnegative = true)``, which
                            geomir's optimizers keep by projecting each step onto w >= 0

``geo.param`` ops carry them in the attribute ``weight_transforms`` (in order); the
backends' ``init_params`` and the ``verify-contracts`` pass both apply them to the float64
draw (geomir.backends.common.init.draw), so the contracts are proved on exactly the
weights the compiled model runs with. The values stay float64 (dequantized): rounding
them to the parameter's dtype is exact for bf16 values in float32 but not for int8 ones
(q s with s = max|row|/127 in float64); ``verify-contracts`` proves on the values rounded
once by ``as_element_type``, and every backend casts those (``for_dtype``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

ATTR_NAME = "weight_transforms"
"""``geo.param`` attribute: the transforms (strings) applied to the parameter's value."""

NONNEGATIVE = "constrain:nonnegative"
"""The transform of a weight constrained to be >= 0 (monotone layers)."""

QUANTIZE_MODES = ("int8", "bf16")
PRUNE_METHODS = ("magnitude",)


def _int8(w: np.ndarray) -> np.ndarray:
    rows = w.reshape(w.shape[0], -1) if w.ndim == 2 else w.reshape(1, -1)
    scale = np.abs(rows).max(axis=1, keepdims=True) / 127.0
    safe = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(rows / safe), -127, 127) * safe
    return np.where(scale > 0, q, rows).reshape(w.shape)


_BF16_BITS = 8  # significant bits of a bfloat16 (7 stored)
_BF16_MIN_EXPONENT = -126  # below 2**-126 the bfloat16 values are subnormal: spaced 2**-133
_BF16_OVERFLOW = 2.0**128  # rounding reaches it: beyond the largest bfloat16, inf


def _bf16(w: np.ndarray) -> np.ndarray:
    """``w`` rounded to the nearest bfloat16 (ties to even) in one step from float64, back in
    float64: the multiple of the spacing of bfloat16 values at |w| nearest to w (scaling by
    a power of two and np.rint are exact). Beyond the bfloat16 range: inf, which
    verify-contracts reports at the layer."""
    w = np.asarray(w, dtype=np.float64)
    finite = np.isfinite(w)
    exponent = np.frexp(np.where(finite, w, 0.0))[1] - 1  # floor(log2 |w|) (0 -> -1, any spacing works)
    spacing = np.ldexp(1.0, np.maximum(exponent, _BF16_MIN_EXPONENT) - (_BF16_BITS - 1))
    rounded = np.rint(np.where(finite, w, 0.0) / spacing) * spacing
    rounded = np.where(np.abs(rounded) >= _BF16_OVERFLOW, np.copysign(np.inf, w), rounded)
    return np.where(finite, rounded, w)


def _magnitude(w: np.ndarray, fraction: float) -> np.ndarray:
    k = math.floor(fraction * w.size)
    if k == 0:
        return w.copy()
    flat = w.reshape(-1).copy()
    flat[np.argsort(np.abs(flat), kind="stable")[:k]] = 0.0
    return flat.reshape(w.shape)


def parse(transform: str) -> Callable[[np.ndarray], np.ndarray]:
    """The function of one transform string; ValueError saying what was expected."""
    kind, _, rest = transform.partition(":")
    if kind == "quantize":
        if rest == "int8":
            return _int8
        if rest == "bf16":
            return _bf16
        raise ValueError(f"unknown quantization '{rest}' (expected one of {', '.join(QUANTIZE_MODES)})")
    if kind == "prune":
        method, _, amount = rest.partition(":")
        if method not in PRUNE_METHODS:
            raise ValueError(f"unknown pruning method '{method}' (expected magnitude:F, F the fraction to zero)")
        try:
            fraction = float(amount)
        except ValueError:
            raise ValueError(f"the pruning fraction must be a number in [0, 1), found '{amount}'") from None
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"the pruning fraction must be in [0, 1), found {fraction:g}")
        return lambda w: _magnitude(w, fraction)
    if transform == NONNEGATIVE:
        return np.abs
    raise ValueError(f"unknown weight transform '{transform}' (expected quantize:MODE, prune:magnitude:F "
                     f"or {NONNEGATIVE})")


def as_element_type(value: np.ndarray, elt: str) -> np.ndarray:
    """``value`` (float64) rounded to the element type ``elt`` ('f64', 'f32', 'f16', 'bf16')
    in one correctly rounded step (to nearest, ties to even), back in float64: what the
    compiled model multiplies by. Values beyond the type's range become inf (the prover
    refuses them). The backends cast this value (:func:`for_dtype`), which every framework
    then does exactly (torch rounds float64 to float16 and bfloat16 through float32)."""
    if elt == "f64":
        return value
    if elt == "bf16":
        return _bf16(value)
    with np.errstate(over="ignore"):
        return np.asarray(value, dtype={"f32": np.float32, "f16": np.float16}[elt]).astype(np.float64)


ELEMENT_TYPES = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16"}
"""The element type of each floating dtype name (NumPy / JAX ``dtype.name``; torch's without
its ``torch.`` prefix)."""


def for_dtype(value: np.ndarray, dtype_name: str) -> np.ndarray:
    """``value`` (float64) as :func:`as_element_type` rounds it for the dtype named
    ``dtype_name`` ('bfloat16', 'torch.float16', ...): a framework's cast of the result is
    exact, so every backend holds the numbers the prover proved. Other dtypes: unchanged."""
    elt = ELEMENT_TYPES.get(str(dtype_name).removeprefix("torch."))
    return value if elt is None else as_element_type(np.asarray(value, dtype=np.float64), elt)


def deployed(transforms: Sequence[str]) -> tuple[str, ...]:
    """The transforms that apply to trained weights too: quantization and pruning. The
    nonnegativity constraint is kept by the optimizer, not imposed on given weights (the
    proofs check the weights as they are)."""
    return tuple(t for t in transforms if t != NONNEGATIVE)


def apply(value: np.ndarray, transforms: Sequence[str]) -> np.ndarray:
    """``value`` after each transform in order (unchanged when there are none)."""
    for t in transforms:
        value = parse(t)(np.asarray(value, dtype=np.float64))
    return value
