"""Derivative requests by the framework's own autodiff, written once for every backend.

This is the reference lowering of ``jet.*`` requests (``derive`` in .geo): forward-mode
``jvp`` nested for higher orders, ``vjp`` for pull-backs. The jet passes replace it with
one Taylor-mode propagation; tests and benchmarks compare the two.

A jet value is the stacked array of directional derivatives ``d^k/dt^k f(x + t v)`` at
t = 0 for k = 0..K (leading axis K+1): the derivative convention of jax.experimental.jet.
Inputs are batched along leading axes; models act on the last axis, so batch rows are
independent and basis directions broadcast over the batch.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AutodiffOps:
    """The framework primitives: jvp(f, x, v) -> (f(x), df), vjp, grad of a scalar, stack, basis."""

    jvp: Callable
    vjp: Callable  # (f, x, w) -> wᵀ J
    grad: Callable  # (f: x -> scalar) -> (x -> gradient)
    stack: Callable
    basis: Callable  # (x, i) -> e_i broadcast to x's shape


def _along(f, params, inputs: Sequence, wrt: int):
    """x -> f(params, *inputs with input ``wrt`` replaced by x)."""

    def g(x):
        args = list(inputs)
        args[wrt] = x
        return f(params, *args)

    return g


class Derivatives:
    """The request ops (``derivatives.jvp(U, params, (x,), v, wrt=0)`` in emitted code)."""

    def __init__(self, ops: AutodiffOps):
        self.ops = ops

    def jvp(self, f, params, inputs, v, wrt=0):
        """(f(x), J v)."""
        return self.ops.jvp(_along(f, params, inputs, wrt), inputs[wrt], v)

    def vjp(self, f, params, inputs, w, wrt=0):
        """wᵀ J."""
        return self.ops.vjp(_along(f, params, inputs, wrt), inputs[wrt], w)

    def grad(self, f, params, inputs, wrt=0):
        """∇f of a scalar model (per batch row: rows are independent, so the gradient of
        the sum over rows)."""
        g = _along(f, params, inputs, wrt)
        return self.ops.grad(lambda x: g(x).sum())(inputs[wrt])

    def hvp(self, f, params, inputs, v, wrt=0):
        """H v of a scalar model (per batch row): forward-over-reverse."""
        g = _along(f, params, inputs, wrt)
        gradient = self.ops.grad(lambda x: g(x).sum())
        return self.ops.jvp(gradient, inputs[wrt], v)[1]

    def directional(self, f, params, inputs, v, wrt=0, order=1):
        """Stacked d^k/dt^k f(x + t v) at 0, k = 0..order, by nested jvp (2^order passes)."""
        stages = self._stages(_along(f, params, inputs, wrt), v, order)
        return self.ops.stack(list(stages(inputs[wrt])))

    def _stages(self, g, v, order: int):
        """x -> (f, f', ..., f^(order)) along v: each level is the jvp of the previous one."""
        fn = lambda x: (g(x),)  # noqa: E731
        for _ in range(order):
            fn = self._lift(fn, v)
        return fn

    def _lift(self, fn, v):
        def lifted(x):
            primals, tangents = self.ops.jvp(fn, x, v)
            return (*primals, tangents[-1])

        return lifted

    def second(self, g, x, e):
        """d²/dt² g(x + t e) at 0."""
        return self._stages(g, e, 2)(x)[2]

    def laplacian(self, f, params, inputs, wrt=0):
        """Σ_i ∂²f/∂x_i², per output component."""
        return self._laplacian(_along(f, params, inputs, wrt), inputs[wrt])

    def _laplacian(self, g, x):
        total = None
        for i in range(x.shape[-1]):
            term = self.second(g, x, self.ops.basis(x, i))
            total = term if total is None else total + term
        return total

    def biharmonic(self, f, params, inputs, wrt=0):
        """Δ²f = Δ(Δf), per output component."""
        g = _along(f, params, inputs, wrt)
        return self._laplacian(lambda x: self._laplacian(g, x), inputs[wrt])


# -- call-time checks of a generated model's arguments (one per argument per call) --------------


class ModelInputError(ValueError):
    """A generated model was called with an argument that does not fit its signature."""


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a generated model: its name, last-axis size, element type
    (a framework dtype), whether it is a path (shape (..., T, n)) and its IR type text."""

    name: str
    dim: int
    dtype: object
    path: bool
    text: str


def checked_function(function, check: Callable):
    """``function`` calling ``check(params, args)`` first, on the inputs it returns (the
    same, or broadcast to one batch shape); the wrapper's ``check`` attribute is
    ``check`` (geomir.categorical checks a request's arguments with it). The wrapper keeps
    ``function``'s globals (the generated module's: backends/triton/graphs.py reads PRECISION
    there). Inputs may be passed by name, as ``function``'s signature spells them."""

    signature, error = inspect.signature(function), ModelInputError  # closure cells: `call` runs in function's globals

    def call(params, *args, **named):
        if named:  # inputs by name, as the generated function's signature spells them
            unknown = [n for n in named if n not in signature.parameters]
            if unknown:
                renamed = [p for p in signature.parameters if p.rstrip("_") == f"v_{unknown[0]}"]
                hint = f" (an input named like a global of the module is renamed: '{renamed[0]}')" if renamed else ""
                raise error(f"{function.__name__}{signature}: no input named '{unknown[0]}'{hint}")
            try:
                args = signature.bind(params, *args, **named).args[1:]
            except TypeError as e:
                raise error(f"{function.__name__}{signature}: {e}") from None
        return function(params, *check(params, args))

    wrapper = types.FunctionType(call.__code__, function.__globals__, function.__name__, None, call.__closure__)
    wrapper = functools.update_wrapper(wrapper, function)
    wrapper.check = check
    return wrapper


def check_call(model: str, declared: Mapping[str, object], inputs: Sequence[InputSpec], is_array: Callable,
               is_float: Callable, array: str, broadcast_to: Callable, params, args) -> tuple:
    """The inputs ``args``, checked: raise :class:`ModelInputError` naming ``model``, the
    argument, what it declares and what was found, for a params dict that lacks a parameter,
    a wrong number of inputs, an input that is not a floating ``array`` with the declared
    last axis, or inputs whose batch axes (all but the last; a path's last two) do not
    broadcast. Inputs with different batch shapes that broadcast are returned broadcast to
    one (``broadcast_to(x, shape)``: views in torch), so that every function sees each row
    as one point: a derivative's jets and directions then line up as the forward model's
    elementwise broadcasting does. ``declared`` maps the model's parameters to their
    declared dtypes (None: unknown).

    An input may have another dtype than declared if the parameters do
    (``init_params(seed, dtype)``): the parameters declared in the input's element type
    give the dtype it must have, and where none is, the input has its declared dtype or
    one of the parameters'."""
    if not hasattr(params, "keys") or not hasattr(params, "__getitem__"):
        raise ModelInputError(f"{model}(params, ...): params must be a dict of parameters (init_params(seed)), "
                              f"found {type(params).__name__}")
    missing = [n for n in declared if n not in params]
    if missing:
        raise ModelInputError(f"{model}: params lacks {len(missing)} parameter(s) the model reads: "
                              f"{', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}")
    for name in declared:
        if not is_array(params[name]):
            raise ModelInputError(f"{model}: parameter '{name}' must be a {array}, found {type(params[name]).__name__} "
                                  "(init_params of this module makes them)")
    if len(args) != len(inputs):
        names = ", ".join(s.name for s in inputs)
        raise ModelInputError(f"{model} takes {len(inputs)} input(s) after params ({names}), found {len(args)}")
    for spec, x in zip(inputs, args):
        _check_input(model, spec, x, is_array, is_float, array)
        _check_input_dtype(model, spec, x, declared, params)
    return _common_batch(model, inputs, args, broadcast_to)


def _common_batch(model: str, inputs: Sequence[InputSpec], args: tuple, broadcast_to: Callable) -> tuple:
    """``args`` with their batch axes broadcast to one shape (``args`` itself when they
    already share it: no work on the usual call)."""
    cut = [len(x.shape) - (2 if spec.path else 1) for spec, x in zip(inputs, args)]
    batches = [tuple(x.shape[:n]) for x, n in zip(args, cut)]
    if len(set(batches)) <= 1:
        return args
    try:
        batch = np.broadcast_shapes(*batches)
    except ValueError:
        found = ", ".join(f"'{spec.name}' {b}" for spec, b in zip(inputs, batches))
        raise ModelInputError(f"{model}: the inputs' batch axes do not broadcast ({found}); "
                              "each row is one point, so give every input the same rows (or one row, or none)") from None
    return tuple(x if b == batch else broadcast_to(x, (*batch, *x.shape[n:]))
                 for x, b, n in zip(args, batches, cut))


def _check_input(model: str, spec: InputSpec, x, is_array: Callable, is_float: Callable, array: str) -> None:
    what = f"{model}: input '{spec.name}' ({spec.text})"
    if not is_array(x):
        raise ModelInputError(f"{what} must be a {array}, found {type(x).__name__}")
    shape, need = tuple(x.shape), 2 if spec.path else 1
    if len(shape) < need or shape[-1] != spec.dim:
        expected = f"(..., T, {spec.dim})" if spec.path else f"(..., {spec.dim})"
        raise ModelInputError(f"{what} needs shape {expected}, found {shape}")
    if spec.path and shape[-2] == 0:
        raise ModelInputError(f"{what} needs shape (..., T, {spec.dim}) with T >= 1 (a path has at least one "
                              f"point), found {shape}")
    if not is_float(x.dtype):
        raise ModelInputError(f"{what} needs a floating dtype ({_dtype(spec.dtype)}), found {_dtype(x.dtype)}")


def _check_input_dtype(model: str, spec: InputSpec, x, declared: Mapping[str, object], params) -> None:
    if not declared:  # no parameters: any floating dtype
        return
    alike = {getattr(params[n], "dtype", None) for n, d in declared.items() if d is not None and d == spec.dtype}
    every = {getattr(params[n], "dtype", None) for n in declared}
    if not any(x.dtype == d for d in (alike or every | {spec.dtype})):  # ==: a JAX array's dtype is numpy's
        found = ", ".join(sorted(_dtype(d) for d in alike or every))
        raise ModelInputError(f"{model}: input '{spec.name}' ({spec.text}) is {_dtype(x.dtype)}, the parameters "
                              f"{found}: give both the same dtype (init_params(seed, dtype) builds the parameters "
                              "in another one)")


def _dtype(dtype) -> str:
    return str(getattr(dtype, "__name__", dtype)).removeprefix("torch.")
