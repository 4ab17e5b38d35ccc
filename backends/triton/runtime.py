"""Host side of generated Triton code: each kernel launch site of the emitted module calls
one function here, which launches the fused Triton kernel or, when it cannot, computes the
same thing with the torch runtime (the torch backend's numbers).

=====================  ==================================================================
``dense``              ``activation(x W^T + b)``: the jet-layer kernel at K = 0
``poincare_layer``     ``mobius_add(mobius_matvec(W, x), b)`` (→ expmap0(act(logmap0)))
``jet_layer``          ``jet.layer`` on a jet or a LaplacianJet (``taylor.layer``)
=====================  ==================================================================

A launch runs the kernel when the tensors are CUDA tensors (or CPU tensors with
``TRITON_INTERPRET=1`` set before the first kernel import), the dtype is float32, bfloat16
or float16, and the kernel covers the case (activation, width). Otherwise it runs the
torch code and warns once per site kind and reason (:class:`TritonFallbackWarning`):

* ``autograd`` -- a derivative is being taken: an input requires grad (with grad mode on),
  an input is a forward-mode dual tensor (``torch.autograd.forward_ad``), or a torch.func
  gradient transform (grad, vjp, jvp, jacrev, jacfwd, hessian) is active. The kernels are
  forward-only, so the differentiable torch code runs, with the same numbers. No warning,
  and no error in strict mode: this is the training path by design.
* ``transform`` -- a torch.func transform that takes no derivative (vmap, functionalize) is
  active: its wrapped tensors cannot go to a kernel.
* ``device``, ``dtype`` (float64, or tensors of several dtypes: the torch code then raises
  what the torch target raises), ``activation``, ``width``, ``size`` (a tensor of 2^31
  elements or more: the kernels' offsets are int32), ``triton`` (not installed).

``STATS`` counts launches by (path, site kind, reason); ``GEOMIR_TRITON_STRICT=1`` (or
``set_strict(True)``) turns every warned fallback (all but ``autograd``) into a
:class:`TritonFallbackError`.
``GEOMIR_TRITON_AUTOTUNE=0`` (or ``set_autotune(False)``) launches a fixed tile per kernel
instead of autotuning each new shape: no tuning at start-up, the same sums. Both switches
are read by :func:`geomir.backends.triton.env_flag` (1/true/yes/on, 0/false/no/off).
Precision (``geomir.backends.triton.PRECISIONS``): ``"ieee"`` fp32 dot products (default),
``"tf32"``, ``"tf32x3"`` or ``"bf16"`` operands, fp32 accumulation always; the emitted module
passes its ``PRECISION``, and every function of it checks ``PRECISION`` when called
(:func:`check_precision`), whether it has a launch site or not.
"""

from __future__ import annotations

import collections
import functools
import math
import warnings

import torch
import torch.autograd.forward_ad as _forward_ad

from geomir.backends.torch import runtime as _torch
from geomir.backends.torch import taylor as _taylor
from geomir.backends.triton import PRECISIONS, env_flag

__all__ = ["STATS", "TritonFallbackError", "TritonFallbackWarning", "check_precision", "dense", "graphed",
           "jet_layer", "poincare_layer", "set_autotune", "set_strict"]

STATS: collections.Counter = collections.Counter()
"""(path, kind, reason) -> launches: path "triton" (reason "") or "torch"."""

_STRICT = [env_flag("GEOMIR_TRITON_STRICT", False)]
_SILENT = frozenset({"autograd"})
"""Fallback reasons that are the design, not a limitation: no warning, no strict-mode error."""
_WARNED: set[tuple[str, str]] = set()
_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MAX_ELEMENTS = 2**31 - 1
"""The most elements a tensor a kernel reads or writes may have: the kernels compute element
offsets (row * stride, k * stride) in int32, which wrap past this (a wrong address, not an
error), so larger launches run the torch code (reason ``size``)."""


class TritonFallbackWarning(UserWarning):
    """A launch site ran the torch code instead of its Triton kernel (the message says why)."""


class TritonFallbackError(RuntimeError):
    """Strict mode: a launch site could not run its Triton kernel."""


def set_strict(strict: bool = True) -> None:
    """Raise :class:`TritonFallbackError` instead of falling back to torch."""
    _STRICT[0] = bool(strict)


def set_autotune(on: bool = True) -> None:
    """Autotune each new kernel key (the default), or launch a fixed fitting tile (no tuning)."""
    _layer().set_autotune(on)


def graphed(fn):
    """``fn(params, *inputs)`` replayed from CUDA graphs (:mod:`geomir.backends.triton.graphs`):
    one launch per call instead of one per layer."""
    from geomir.backends.triton.graphs import graphed as _graphed

    return _graphed(fn)


def __getattr__(name: str):
    """Everything else (manifold classes, helpers) is the torch runtime's."""
    return getattr(_torch, name)


# --- dispatch ----------------------------------------------------------------------------


@functools.cache
def _layer():
    """The host wrappers, imported on first use (triton reads TRITON_INTERPRET when the
    kernels are decorated)."""
    from geomir.backends.triton import layer

    return layer


@functools.cache
def _poincare():
    from geomir.backends.triton import poincare

    return poincare


def _transformed(tensors) -> tuple[str, str] | None:
    """("autograd", message) when a derivative is being taken through ``tensors``,
    ("transform", message) inside a torch.func transform that takes none (vmap), else None.
    The launch sites and :func:`graphed` ask this before a kernel or a graph replay."""
    # Inside a torch.func transform every tensor made in the function is wrapped, the
    # kernels' outputs too, even when no input is: Triton cannot take those.
    if torch._C._are_functorch_transforms_active():
        stack = torch._C._functorch.get_interpreter_stack() or []
        keys = [i.key() for i in stack]
        kinds = torch._C._functorch.TransformType
        if any(k in (kinds.Grad, kinds.Jvp) for k in keys):
            return "autograd", ("a derivative is being taken (a torch.func gradient transform is active) "
                                "and the kernels are forward-only")
        names = ", ".join(sorted({str(k).rsplit(".", 1)[-1].lower() for k in keys})) or "a transform"
        return "transform", (f"torch.func {names} is active: its wrapped tensors cannot go to a kernel "
                             "(call the function outside the transform to run the kernels)")
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return "autograd", "a gradient is being taken (an input requires grad) and the kernels are forward-only"
    if _forward_ad._current_level >= 0 and torch._C._is_fwd_grad_enabled() and any(
        _forward_ad.unpack_dual(t).tangent is not None for t in tensors
    ):
        return "autograd", ("a forward-mode derivative is being taken (a dual tensor, torch.autograd.forward_ad) "
                            "and the kernels are forward-only")
    return None


def _blocker(kind: str, module, tensors, activation: str | None, width: int | None,
             elements: int = 0) -> tuple[str, str] | None:
    """(reason, message) why a kernel cannot run, or None (``elements``: the most elements of
    a tensor the kernel reads or writes, outputs and materialized broadcasts included)."""
    why = _transformed(tensors)
    if why is not None:
        return why
    try:
        host = module()
    except ImportError as err:
        return "triton", f"triton is not importable ({err})"
    x = tensors[0]
    if any(t.device != x.device for t in tensors):
        return "device", f"tensors on several devices ({', '.join(sorted({str(t.device) for t in tensors}))})"
    if not (x.is_cuda or (host.INTERPRET and x.device.type == "cpu")):
        return "device", (f"tensors on {x.device}: the kernels need CUDA tensors "
                          "(or TRITON_INTERPRET=1 set before the first import)")
    if x.dtype not in _KERNEL_DTYPES:
        return "dtype", f"{x.dtype}: the kernels take float32, bfloat16 or float16"
    if any(t.dtype != x.dtype for t in tensors):  # the torch code raises (or promotes) as torch does
        return "dtype", f"tensors of several dtypes ({', '.join(sorted({str(t.dtype) for t in tensors}))})"
    name = activation.removeprefix("geo.") if activation else None
    if name not in host.ACTIVATIONS:
        return "activation", f"activation {activation} has no {kind} kernel"
    if width is not None and width > host.MAX_WIDTH:  # the Poincaré kernel holds whole rows
        return "width", f"output width {width} > {host.MAX_WIDTH}"
    largest = max([elements, *(t.numel() for t in tensors)])
    if largest > MAX_ELEMENTS:
        return "size", f"a tensor of {largest} elements > 2^31 - 1 (the kernels' offsets are int32)"
    return None


def check_precision(precision) -> None:
    """ValueError unless ``precision`` is one of PRECISIONS. Every function of a generated
    module calls it on its ``PRECISION`` (with a launch site or without), and every launch
    site on its ``precision``, whether a kernel runs or not."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"geomir triton: precision {precision!r} (expected one of {', '.join(PRECISIONS)})")


def _rows(x: torch.Tensor) -> int:
    """The number of rows of x (*batch, n): the product of its batch axes."""
    return math.prod(x.shape[:-1])


def _launch(kind: str, module, tensors, activation, kernel, reference, width=None, elements: int = 0):
    """``kernel()`` if the kernel can run on ``tensors``, else ``reference()`` (see module)."""
    tensors = [t for t in tensors if t is not None]
    why = _blocker(kind, module, tensors, activation, width, elements)
    if why is None:
        STATS["triton", kind, ""] += 1
        return kernel()
    reason, message = why
    if reason not in _SILENT:
        if _STRICT[0]:
            raise TritonFallbackError(f"triton {kind}: {message}")
        if (kind, reason) not in _WARNED:
            _WARNED.add((kind, reason))
            warnings.warn(f"geomir triton: {kind} runs with torch: {message}", TritonFallbackWarning,
                          stacklevel=3)
    STATS["torch", kind, reason] += 1
    return reference()


# --- launch sites ------------------------------------------------------------------------

_ELEMENTWISE = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "softplus": _torch.softplus, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "sin": torch.sin, "cos": torch.cos, "neg": torch.neg,
}


def _apply(activation: str | None, y: torch.Tensor) -> torch.Tensor:
    return y if activation is None else _ELEMENTWISE[activation.removeprefix("geo.")](y)


def dense(x, w, b=None, activation=None, precision="ieee"):
    """``activation(x @ w.T + b)`` on plain points x (*batch, n)."""

    def reference():
        y = x @ w.T
        return _apply(activation, y if b is None else y + b)

    def kernel():
        return _layer().jet_layer(x[None], w, b, activation, precision=precision)[0]

    check_precision(precision)
    return _launch("dense", _layer, (x, w, b), activation, kernel, reference, elements=_rows(x) * w.shape[0])


@functools.cache
def _ball(c: float):
    return _torch.PoincareBall(c=c)


def poincare_layer(x, w, b=None, c=1.0, activation=None, precision="ieee"):
    """``mobius_add(mobius_matvec(w, x), b)`` on the ball of curvature -c, then
    ``expmap0(activation(logmap0(.)))`` if an activation is given."""

    def reference():
        ball = _ball(c)
        y = ball.mobius_matvec(w, x)
        if b is not None:
            y = ball.mobius_add(y, b)
        return y if activation is None else ball.expmap0(_apply(activation, ball.logmap0(y)))

    def kernel():
        return _poincare().poincare_layer(x, w, b, c=c, activation=activation, precision=precision)

    check_precision(precision)
    return _launch("poincare", _poincare, (x, w, b), activation, kernel, reference, width=w.shape[0],
                   elements=_rows(x) * w.shape[0])


def jet_layer(x, w, b=None, activation=None, precision="ieee"):
    """``jet.layer``: ``activation(W x + b)`` on a jet (K+1, *batch, n) or a LaplacianJet."""
    collapsed = isinstance(x, _taylor.LaplacianJet)
    kind = "laplacian" if collapsed else "jet_layer"

    def kernel():
        layer = _layer()
        if collapsed:
            return layer.laplacian_layer(x, w, b, activation, precision=precision)
        return layer.jet_layer(x, w, b, activation, precision=precision)

    tensors = (*x, w, b) if collapsed else (x, w, b)
    # the largest kernel tensor: the output jet, or the directions (f1 is materialized to D rows)
    rows = _rows(x.f0) * x.f1.shape[0] if collapsed else _rows(x)
    elements = rows * max(w.shape[0], x.f0.shape[-1] if collapsed else 0)
    check_precision(precision)
    return _launch(kind, _layer, tensors, activation, kernel, lambda: _taylor.layer(x, w, b, activation),
                   elements=elements)
