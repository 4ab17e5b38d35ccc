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

from collections.abc import Callable, Sequence
from dataclasses import dataclass


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
