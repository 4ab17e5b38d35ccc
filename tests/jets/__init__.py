"""Shared by the jet tests: oracles (nested jvp in torch, jax.experimental.jet), plain
array namespaces with the rule names (so one test program runs on jets and on arrays),
random programs over the primitives, and the error measure."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.func as tf

from geomir.backends.common import taylor as common
from geomir.backends.jax import taylor as JT
from geomir.backends.torch import taylor as TT


@pytest.fixture(scope="module")
def x64():
    """JAX float64 for the module (restored afterwards)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


# --- error measure -----------------------------------------------------------------------


def rel_err(a, b) -> float:
    """Relative error of the jet ``a`` against the reference ``b`` (derivative convention,
    axis 0 = order k): the max over k of max|a_k - b_k| / max|b_k|, where the scale of
    order k is floored at 1e-6 of the largest NORMALIZED coefficient times k! (an order
    that is exactly 0 in exact arithmetic is then measured against the jet's size)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    fact = [math.factorial(k) for k in range(b.shape[0])]
    size = max(max(np.abs(bk).max() / f for bk, f in zip(b, fact)), 1e-300)
    err = 0.0
    for ak, bk, f in zip(a, b, fact):
        scale = max(np.abs(bk).max(), 1e-6 * size * f)
        err = max(err, np.abs(ak - bk).max() / scale)
    return err


# --- oracles -----------------------------------------------------------------------------


def horner(coeffs, t):
    """sum_k coeffs[k] t^k (coeffs stacked along axis 0; trailing zero coefficients skipped,
    since under K nested jvp every product with t costs 2^K evaluations)."""
    top = max([k for k in range(coeffs.shape[0]) if bool(coeffs[k].any())] or [0])
    out = coeffs[top]
    for k in range(top - 1, -1, -1):
        out = coeffs[k] + t * out
    return out


def torch_nested(f, jets, K):
    """d^k/dt^k f(x_1(t), ...) at 0, k = 0..K, by K nested torch.func.jvp in t, where
    x_i(t) = sum_k jets[i][k] t^k (normalized coefficients). Stacked along axis 0."""

    def g(t):
        return f(*(horner(j, t) for j in jets))

    fn = lambda t: (g(t),)
    for _ in range(K):
        def lifted(t, fn=fn):
            p, tg = tf.jvp(fn, (t,), (torch.ones_like(t),))
            return (*p, tg[-1])

        fn = lifted
    return torch.stack(fn(torch.zeros((), dtype=jets[0].dtype)))


def jax_jet(f, jets, jit: bool = False):
    """jax.experimental.jet of f at derivative-convention jets (numpy, axis 0 = order).
    ``jit``: trace it under one jax.jit (eagerly, every jnp call inside the jet trace
    compiles on its own: cheaper for one primitive, dearer for a program)."""
    from jax.experimental.jet import jet

    primals = tuple(jnp.asarray(j[0]) for j in jets)
    series = tuple([jnp.asarray(t) for t in j[1:]] for j in jets)
    run = (lambda p, s: jet(f, p, s))
    p, s = (jax.jit(run) if jit else run)(primals, series)
    return np.stack([np.asarray(p)] + [np.asarray(t) for t in s])


# --- plain namespaces with the rule names --------------------------------------------------


class Plain:
    """The primitives on plain arrays, named like the rules, for oracles: ``xp`` is torch
    or jax.numpy. softplus is log1p(exp) on JAX (jax.nn.softplus is a custom_jvp, which
    jax.experimental.jet does not trace); sigmoid and tanh are written so that their
    derivatives stay accurate when saturated (see ``_sigmoid``)."""

    def __init__(self, backend: str, dtype=None):
        self.backend = backend
        self.torch = backend == "torch"
        self.xp = torch if self.torch else jnp
        self.dtype = dtype

    def const(self, a):
        if self.torch:
            return torch.tensor(np.asarray(a), dtype=self.dtype or torch.float64)
        return jnp.asarray(np.asarray(a), dtype=self.dtype or jnp.float64)

    add = staticmethod(lambda a, b: a + b)
    sub = staticmethod(lambda a, b: a - b)
    neg = staticmethod(lambda x: -x)
    mul = staticmethod(lambda a, b: a * b)
    div = staticmethod(lambda a, b: a / b)
    scale = staticmethod(lambda x, factor: x * factor)
    bias = staticmethod(lambda x, b: x + b)
    pow = staticmethod(lambda x, exponent: x ** exponent)

    def linear(self, x, w):
        return x @ w.T

    def sum_last(self, x):
        return x.sum(-1, keepdims=True) if not self.torch else x.sum(-1, keepdim=True)

    def sqnorm(self, x):
        return self.sum_last(x * x)

    def _sigmoid(self, x):
        """sigma(x), and 1 - sigma(-x) for x > 0: both frameworks differentiate sigmoid as
        y (1 - y), which loses the relative accuracy of sigma' once 1 - y rounds."""
        s = torch.sigmoid if self.torch else jax.nn.sigmoid
        return self.xp.where(x > 0, 1.0 - s(-x), s(x))

    def _tanh(self, x):
        """tanh x = sign(x) (1 - 2 sigma(-2|x|)): accurate derivatives when saturated (the
        frameworks differentiate tanh as 1 - y^2)."""
        s = torch.sigmoid if self.torch else jax.nn.sigmoid
        return self.xp.where(x > 0, 1.0 - 2.0 * s(-2.0 * x), 2.0 * s(2.0 * x) - 1.0)

    def __getattr__(self, name):
        xp = self.xp
        table = {
            "exp": xp.exp, "log": xp.log, "sqrt": xp.sqrt, "tanh": self._tanh, "sin": xp.sin,
            "cos": xp.cos, "sigmoid": self._sigmoid,
            "softplus": (lambda x: torch.logaddexp(x, torch.zeros_like(x))) if self.torch
            else (lambda x: jnp.log1p(jnp.exp(x))),
            "relu": torch.relu if self.torch else (lambda x: jnp.maximum(x, 0.0)),
            "asinh": torch.asinh if self.torch else jnp.arcsinh,
            "atanh": torch.atanh if self.torch else jnp.arctanh,
            "atan2": torch.atan2 if self.torch else jnp.arctan2,
        }
        if name in table:
            return table[name]
        raise AttributeError(name)


def algebra(backend: str, collapsed: bool = False, dtype=None):
    """The rule table bound to a backend, with a ``const`` for weights (like Plain)."""
    mod = TT if backend == "torch" else JT
    A = common.Algebra(mod.OPS, common.COLLAPSED_RULES if collapsed else common.RULES)
    A.const = Plain(backend, dtype).const
    return A


# --- random programs ------------------------------------------------------------------------

UNARY = ("tanh", "sigmoid", "softplus", "sin", "cos", "neg", "relu", "asinh")
DOMAIN = ("exp", "log", "sqrt", "pow", "atanh")
BINARY = ("add", "sub", "mul", "div")
OTHER = ("linear", "scale", "sum_last", "sqnorm")
KINDS = UNARY + DOMAIN + BINARY + OTHER


def random_program(rng: np.random.Generator, n_in: int, depth: int, kinds=KINDS):
    """``depth`` steps acting on the current value h (dimension tracked), each a primitive
    or a short composition keeping it in its domain; binary steps combine h with a fresh
    linear map of the input."""
    steps, dim = [], n_in
    for _ in range(depth):
        kind = str(rng.choice(kinds))
        if kind == "linear":
            m = int(rng.integers(1, 5))
            w = rng.normal(size=(m, dim)) / math.sqrt(dim)
            b = rng.normal(size=m) * 0.5 if rng.random() < 0.5 else None
            steps.append((kind, w, b))
            dim = m
        elif kind in BINARY:
            steps.append((kind, rng.normal(size=(dim, n_in)) / math.sqrt(n_in)))
        elif kind == "pow":
            steps.append((kind, float(rng.choice([-1.5, -1.0, 0.5, 1.7, 2.0, 3.0]))))
        elif kind == "scale":
            steps.append((kind, float(rng.uniform(-2, 2))))
        else:
            steps.append((kind,))
            if kind in ("sum_last", "sqnorm"):
                dim = 1
    return steps


def run_program(steps, A, x):
    """Evaluate a random program on jets (A an Algebra) or arrays (A a Plain)."""
    h = x
    for step in steps:
        kind = step[0]
        if kind == "linear":
            h = A.linear(h, A.const(step[1]))
            if step[2] is not None:
                h = A.bias(h, A.const(step[2]))
        elif kind in BINARY:
            u = A.linear(x, A.const(step[1]))
            if kind == "div":
                h = A.div(h, A.bias(A.mul(u, u), 0.5))
            else:
                h = getattr(A, kind)(h, u)
        elif kind == "scale":
            h = A.scale(h, step[1])
        elif kind == "exp":
            h = A.exp(A.scale(h, 0.5))
        elif kind in ("log", "sqrt"):
            h = getattr(A, kind)(A.bias(A.mul(h, h), 0.5))
        elif kind == "pow":
            h = A.pow(A.bias(A.mul(h, h), 0.5), step[1])
        elif kind == "atanh":
            h = A.atanh(A.scale(A.tanh(h), 0.8))
        else:
            h = getattr(A, kind)(h)
    return h


def random_jet(rng: np.random.Generator, K: int, shape, scale: float = 0.5, domain: str = "any"):
    """Normalized coefficients (K+1, *shape): x_0 in the domain, the others ~ N(0, scale^2)."""
    j = rng.normal(size=(K + 1, *shape)) * scale
    if domain == "any":
        j[0] = rng.normal(size=shape)
    elif domain == "pos":
        j[0] = rng.uniform(0.5, 2.0, size=shape)
    elif domain == "unit":
        j[0] = rng.uniform(-0.8, 0.8, size=shape)
    return j
