"""Torus topology: unwrapping trajectories, winding vectors and certified margins.

A trajectory is an array of shape ``(..., T, m)``: T points on the torus T^m (angles of a
recurrent state over time, phases of oscillators), as a torch tensor (CPU or GPU), a jax
array or anything NumPy takes. ``winding(traj)`` returns its winding vector w in Z^m, the
unwrapped displacement, the end position and the certified margin: for every per-point
perturbation smaller than the margin (in max-norm, hence also in L2), w cannot change.
The math and its proof are in ``geomir.backends.common.winding``; docs/winding.md has the
user guide.

Eager calls check their input and refuse, with a :class:`WindingError` that says where,
what cannot be unwrapped: non-finite angles, a step within rounding of half a period
(its direction is ambiguous; the rounding bound is local to the step, 5·eps·(|x_t| +
|x_{t+1}| + P), so it does not grow with the trajectory's length: docs/winding.md derives
it) and, for ``lifted=True`` trajectories (continuous angles such
as cumulative phases, not wrapped), a raw step of half a period or more, or within that
rounding bound of it (unwrapping would silently drop whole turns, or take the step the
wrong way: sample more finely), and a trajectory that crosses the angles'
cut 2^p - 1 times or more (2^p = 2/eps: 2^24 for float32), which its dtype cannot count
exactly. Under ``jax.jit`` the checks cannot run; an ambiguous step or an inexact count
then shows as a margin of 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from geomir.backends.common import winding as _w
from geomir.backends.common.manifolds import Torus
from geomir.diagnostics import GeomirError

Array = Any

PERIODS = {"radians": 2.0 * math.pi, "turns": 1.0}


class WindingError(GeomirError):
    """A trajectory that cannot be unwrapped, or a winding margin that is too small."""


@dataclass(frozen=True)
class Winding:
    """The topology of a batch of trajectories (leading axes ``...`` as given)."""

    winding: Array  # (..., m) integers (int64 for torch and numpy, int32 for jax without x64)
    displacement: Array  # (..., m) the unwrapped displacement, in the angle units
    end: Array  # (..., m) the last point, wrapped to [0, P)
    margin: Array  # (...,) certified: no per-point perturbation below it changes ``winding``
    period: float


def period_of(period: float | str) -> float:
    """2π for "radians", 1 for "turns", else the positive number given."""
    if isinstance(period, str):
        if period not in PERIODS:
            raise WindingError(f"unknown period {period!r} (expected 'radians', 'turns' or a positive number)")
        return PERIODS[period]
    import numpy as np

    if isinstance(period, (bool, np.bool_)):
        raise WindingError(f"the period must be a positive number, found {period!r}")
    try:
        p = float(period)
    except (TypeError, ValueError):
        raise WindingError(f"the period must be a positive number, found {period!r}") from None
    if not (math.isfinite(p) and p > 0):
        raise WindingError(f"the period must be a positive number, found {period!r}")
    return p


def ops_for(x: Array):
    """The ArrayOps of ``x``'s library and ``x`` as that library's array."""
    module = type(x).__module__
    if module.startswith("torch"):
        from geomir.backends.torch.runtime import OPS

        return OPS, x
    if module.startswith(("jax", "jaxlib")):
        from geomir.backends.jax.runtime import OPS

        return OPS, x
    import numpy as np

    from geomir.backends.common.numpy_runtime import OPS

    arr = np.asarray(x)
    _refuse_complex(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return OPS, arr


def _refuse_complex(a) -> None:
    import numpy as np

    if np.iscomplexobj(a):
        raise WindingError(f"angles are real numbers, found a {a.dtype} array")


def _is_traced(x: Array) -> bool:
    if not type(x).__module__.startswith(("jax", "jaxlib")):
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def _to_numpy(x: Array):
    import numpy as np

    if type(x).__module__.startswith("torch"):
        import torch

        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()  # NumPy has no bfloat16
    return np.asarray(x)


def _check(x: Array, period: float, lifted: bool) -> None:
    """Refuse what cannot be unwrapped (module docstring), naming the batch item, step and coordinate."""
    import numpy as np

    if len(x.shape) < 2 or x.shape[-2] < 1 or x.shape[-1] < 1:
        raise WindingError(f"a trajectory has shape (..., T, m) with T >= 1 points of m >= 1 angles, "
                           f"found shape {tuple(x.shape)}")
    if _is_traced(x):
        return
    a = _to_numpy(x)
    _refuse_complex(a)
    if not np.all(np.isfinite(a)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise WindingError(f"the trajectory has a non-finite angle at index {where}: {a[where]}")
    if a.shape[-2] < 2:
        return
    half = period / 2
    tol = step_rounding(a, period, _eps(x))
    if lifted:  # the raw step is the true one: it must be below half a period, by the same rounding band
        d = np.diff(a, axis=-2)
    else:
        from geomir.backends.common.numpy_runtime import OPS as NUMPY

        d = _w.steps(NUMPY, a, period)
    bad = np.abs(d) >= half - tol
    if bad.any():
        *batch, t, j = (int(i) for i in np.argwhere(bad)[0])
        step = float(d[(*batch, t, j)])
        if lifted and abs(step) >= half:
            raise WindingError(
                f"{_item(batch)}step {t} -> {t + 1} moves {step / period:+.3f} periods in coordinate {j}; "
                "unwrapping is exact only for steps below half a period: sample the trajectory more finely")
        raise WindingError(_ambiguous(a[(*batch, ..., j)], batch, t, j, step, float(tol[(*batch, t, j)]), period,
                                      _dtype_name(x), lifted))
    _check_count(a, period, _eps(x), _dtype_name(x))


def _check_count(a, period: float, eps: float, dtype: str) -> None:
    """Refuse a trajectory whose branches k_t and k_e (the chord's) total 2^p - 1 or more in
    magnitude: the runtimes sum them in the dtype, exactly only below 2^p = 2/eps (the
    chord's branch, unchecked, may differ by one here; backends.common.winding)."""
    import numpy as np

    from geomir.backends.common.numpy_runtime import OPS as NUMPY

    wide = a.astype(np.float64)
    k = np.abs(_w.branches(NUMPY, wide, period)).astype(np.int64).sum(-2)
    k += np.abs(np.floor((wide[..., -1, :] - wide[..., 0, :]) / period + 0.5)).astype(np.int64)
    limit = round(2.0 / eps)
    bad = k >= limit - 1
    if bad.any():
        *batch, j = (int(i) for i in np.argwhere(bad)[0])
        fix = "use float64" if dtype != "float64" else "split it into shorter trajectories (D adds up over them)"
        raise WindingError(f"{_item(batch)}coordinate {j} crosses the angles' cut {int(k[(*batch, j)])} times; {dtype} "
                           f"counts turns exactly only below {limit} (2^{limit.bit_length() - 1}), so the winding "
                           f"could be wrong: {fix}")


STEP_ROUNDING = _w.STEP_ROUNDING
"""c in the per-step rounding bound c·eps·(|x_t| + |x_{t+1}| + P): docs/winding.md shows that
eps·(4S + 2.25P) suffices for the branch (S = |x_t| + |x_{t+1}|, a runtime dividing by a
rounded 1/P included); 5 leaves room. The certified margin subtracts three of these bounds
from each step and from the chord x_0 -> x_T (backends.common.winding)."""


def step_rounding(a, period: float, eps: float):
    """For each step t of ``a`` (..., T, m), a bound on the floating-point error of the
    computed shortest step d_t when its branch is right; a step whose |d_t| is below
    P/2 minus it has the branch of exact arithmetic (docs/winding.md), shape (..., T-1, m)."""
    import numpy as np

    size = np.abs(a[..., :-1, :]).astype(np.float64) + np.abs(a[..., 1:, :])
    return STEP_ROUNDING * eps * (size + period)


def _eps(x: Array) -> float:
    """finfo(dtype).eps of ``x`` as given (bfloat16 included, not of its float32 NumPy copy)."""
    import numpy as np

    try:
        if type(x).__module__.startswith("torch"):
            import torch

            return float(torch.finfo(x.dtype).eps)
        if type(x).__module__.startswith(("jax", "jaxlib")):
            import jax.numpy as jnp

            return float(jnp.finfo(x.dtype).eps)
        return float(np.finfo(x.dtype).eps)
    except (TypeError, ValueError):
        raise WindingError(f"angles are floating-point numbers, found a {_dtype_name(x)} array "
                           "(convert it to float32 or float64)") from None


def _dtype_name(x: Array) -> str:
    return str(x.dtype).removeprefix("torch.")


def _ambiguous(angles, batch: list[int], t: int, j: int, step: float, tol: float, period: float,
               dtype: str, lifted: bool = False) -> str:
    """Why step t -> t+1 of coordinate j (``angles``: that coordinate's T values) cannot be
    unwrapped: it is near half a period, or its angles are so large that the rounding error
    of the step (``tol``, which depends on this step's two angles only) reaches half a period."""
    where = f"{_item(batch)}step {t} -> {t + 1} in coordinate {j}"
    a, b = float(angles[t]), float(angles[t + 1])
    if tol < period / 8:
        return (f"{where} is half a period ({step:+.6g}) up to rounding (the {dtype} error of this step, between "
                f"angles {a:.6g} and {b:.6g}, can reach {tol:.3g}): its direction is ambiguous, so the winding is "
                "undefined; sample the trajectory more finely")
    fixes = []
    if max(abs(a), abs(b)) > period:
        fixes.append(f"wrap the angles to [0, {period:.6g}) first" + (" (and pass lifted=False)" if lifted else ""))
    if dtype != "float64":
        fixes.append("use float64")
    fix = " or ".join(fixes) or "use smaller angles"
    return (f"{where} moves {step:+.6g}, but its angles ({a:.6g} and {b:.6g}) are so large that the {dtype} "
            f"rounding error of the step can reach {tol:.3g}, so it cannot be told from half a period "
            f"({period / 2:.6g}): {fix}")


def _item(batch: list[int]) -> str:
    return f"trajectory {tuple(batch) if len(batch) > 1 else batch[0]}: " if batch else ""


def _as_int(x: Array) -> Array:
    module = type(x).__module__
    if module.startswith("torch"):
        import torch

        return x.to(torch.int64)
    if module.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return x.astype(jnp.int64 if x.dtype.itemsize == 8 else jnp.int32)
    return x.astype("int64")


def winding(trajectory: Array, period: float | str = "radians", *, lifted: bool = False) -> Winding:
    """The winding vector, displacement, end position and certified margin of each trajectory."""
    p = period_of(period)
    ops, x = ops_for(trajectory)
    _check(x, p, lifted)
    disp = _w.displacement(ops, x, p)
    w = _w.winding(ops, x, p)  # k_e - K: exact, not round(disp / p) (docs/winding.md)
    end = Torus(ops, p).proj(x[..., -1, :])
    return Winding(_as_int(w), disp, end, _w.margin(ops, x, p)[..., 0], p)


def unwrap(trajectory: Array, period: float | str = "radians", *, lifted: bool = False) -> Array:
    """The trajectory lifted to R^m (x_0, then x_0 plus the running sum of shortest steps),
    like ``numpy.unwrap`` along axis -2, but refusing what it cannot unwrap."""
    p = period_of(period)
    ops, x = ops_for(trajectory)
    _check(x, p, lifted)
    return _w.unwrap(ops, x, p)


def certified_margin(trajectory: Array, period: float | str = "radians", *, lifted: bool = False) -> Array:
    """The certified margin of each trajectory, shape (...)."""
    p = period_of(period)
    ops, x = ops_for(trajectory)
    _check(x, p, lifted)
    return _w.margin(ops, x, p)[..., 0]


def require_margin(result: Winding, epsilon: float, what: str = "input") -> None:
    """Raise :class:`WindingError` unless every margin in ``result`` exceeds ``epsilon``."""
    import numpy as np

    m = _to_numpy(result.margin)
    low = np.argwhere(~(m > epsilon))  # shape (k, m.ndim): k refused, also for a 0-d margin
    if low.shape[0]:
        first = tuple(int(i) for i in low[0])
        where = f" (item {first[0] if len(first) == 1 else first})" if first else ""
        raise WindingError(f"{what}{where}: winding margin {float(m[first]):.4g} is not above the required "
                           f"{epsilon:.4g}: a perturbation that small could change its winding class "
                           f"({low.shape[0]} of {max(m.size, 1)} refused)")


__all__ = ["Winding", "WindingError", "winding", "unwrap", "certified_margin", "require_margin", "period_of"]
