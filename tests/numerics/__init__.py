"""Shared helpers for the manifold numerics tests: point samplers (NumPy, float64),
manifold factories, and calling any runtime method on either backend with its gradients."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from geomir.backends.jax import runtime as J
from geomir.backends.torch import runtime as R

CURVATURES = (0.3, 1.0, 2.5)
DTYPES = ("float32", "float64")
TORUS_PERIODS = (2.0 * math.pi, 1.0)

# (kind, parameter) for every manifold of the runtime
MANIFOLDS = (
    [("euclidean", None)]
    + [("poincare", c) for c in CURVATURES]
    + [("lorentz", c) for c in CURVATURES]
    + [("sphere", None)]
    + [("torus", p) for p in TORUS_PERIODS]
)


def manifold_id(spec) -> str:
    kind, p = spec
    return kind if p is None else f"{kind}-{p:.3g}"


def make(runtime, kind: str, param=None):
    """The manifold ``kind`` from a runtime module (torch or jax)."""
    return {
        "euclidean": lambda: runtime.Euclidean(),
        "poincare": lambda: runtime.PoincareBall(param),
        "lorentz": lambda: runtime.Lorentz(param),
        "sphere": lambda: runtime.Sphere(),
        "torus": lambda: runtime.Torus(param),
    }[kind]()


def unit(rng, n: int, dim: int) -> np.ndarray:
    u = rng.standard_normal((n, dim))
    return u / np.linalg.norm(u, axis=-1, keepdims=True)


def ball_points(rng, n: int, dim: int, c: float, max_radius: float) -> np.ndarray:
    """Points of the Poincaré ball with hyperbolic distance to 0 uniform in [0, max_radius]."""
    rho = rng.uniform(0.0, max_radius, (n, 1))
    return np.tanh(math.sqrt(c) * rho / 2.0) / math.sqrt(c) * unit(rng, n, dim)


def lorentz_points(rng, n: int, dim: int, c: float, max_radius: float) -> np.ndarray:
    """Hyperboloid points (dim ambient coordinates) at distance <= max_radius from the origin."""
    rho = math.sqrt(c) * rng.uniform(0.0, max_radius, (n, 1))
    sc = math.sqrt(c)
    return np.concatenate([np.cosh(rho) / sc, np.sinh(rho) / sc * unit(rng, n, dim - 1)], -1)


def sphere_points(rng, n: int, dim: int) -> np.ndarray:
    return unit(rng, n, dim)


def points(rng, kind: str, param, n: int, dim: int, radius: float = 3.0) -> np.ndarray:
    """Points of any manifold (float64), spread over a region of the given radius."""
    if kind == "poincare":
        return ball_points(rng, n, dim, param, radius)
    if kind == "lorentz":
        return lorentz_points(rng, n, dim, param, radius)
    if kind == "sphere":
        return sphere_points(rng, n, dim)
    if kind == "torus":
        return rng.uniform(0.0, param, (n, dim))
    return rng.standard_normal((n, dim)) * radius


def tangents(rng, kind: str, param, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Tangent vectors at x (float64) with Riemannian norm about ``scale`` (at most, for the
    torus and the sphere, short enough that logmap inverts expmap)."""
    n, dim = x.shape
    v = rng.standard_normal((n, dim))
    if kind == "poincare":
        lam = 2.0 / (1.0 - param * np.sum(x * x, -1, keepdims=True))
        return v / np.sqrt(dim) * scale / lam
    if kind == "lorentz":
        ip = -x[:, :1] * v[:, :1] + np.sum(x[:, 1:] * v[:, 1:], -1, keepdims=True)
        v = v + param * ip * x
        nv = np.sqrt(np.maximum(-v[:, :1] ** 2 + np.sum(v[:, 1:] ** 2, -1, keepdims=True), 1e-300))
        return v / nv * scale * rng.uniform(0.2, 1.0, (n, 1))
    if kind == "sphere":
        v = v - np.sum(x * v, -1, keepdims=True) * x
        return v / np.linalg.norm(v, axis=-1, keepdims=True) * min(scale, 3.0) * rng.uniform(0.1, 1.0, (n, 1))
    if kind == "torus":
        return rng.uniform(-0.45, 0.45, (n, dim)) * param
    return v * scale


@pytest.fixture(scope="module")
def x64():
    """Enable jax float64 for one test module, restoring the previous setting afterwards
    (the runtime itself never touches the flag)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def methods(kind: str) -> list[str]:
    """Every public method of a manifold kind."""
    common = ["origin_like", "proj", "expmap", "logmap", "expmap0", "logmap0", "dist", "proju",
              "inner", "norm", "egrad2rgrad", "transp", "retr"]
    if kind == "poincare":
        common += ["mobius_add", "mobius_scalar", "mobius_matvec", "gyration", "lambda_x"]
    return common


def call(m, name, x, y, v, r, W):
    """m.<name> on points x, y, tangent v at x, scalars r (..., 1) and a matrix W (m, n)."""
    return {
        "origin_like": lambda: m.origin_like(x), "proj": lambda: m.proj(x),
        "expmap": lambda: m.expmap(x, v), "logmap": lambda: m.logmap(x, y),
        "expmap0": lambda: m.expmap0(v), "logmap0": lambda: m.logmap0(y), "dist": lambda: m.dist(x, y),
        "proju": lambda: m.proju(x, v), "inner": lambda: m.inner(x, v, v), "norm": lambda: m.norm(x, v),
        "egrad2rgrad": lambda: m.egrad2rgrad(x, v), "transp": lambda: m.transp(x, y, v),
        "retr": lambda: m.retr(x, v), "mobius_add": lambda: m.mobius_add(x, y),
        "mobius_scalar": lambda: m.mobius_scalar(r, x), "mobius_matvec": lambda: m.mobius_matvec(W, x),
        "gyration": lambda: m.gyration(x, y, v), "lambda_x": lambda: m.lambda_x(x),
    }[name]()


def run_backend(backend: str, kind: str, p, dtype: str, name: str, x, y, v, r, W):
    """Value of method ``name`` on NumPy inputs (cast to ``dtype``) and the gradients of
    sum(value * weights) w.r.t. every input x, y, v, r, W, as NumPy arrays (zeros for an
    unused input; {} for a constant result)."""
    args = {"x": x, "y": y, "v": v, "r": r, "W": W}
    if backend == "torch":
        m = make(R, kind, p)
        tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
        ts = {k: torch.tensor(a, dtype=tdt, requires_grad=True) for k, a in args.items()}
        out = call(m, name, ts["x"], ts["y"], ts["v"], ts["r"], ts["W"])
        assert out.dtype == tdt, f"{name} returned {out.dtype} for {dtype} inputs"
        loss = (out * torch.linspace(0.5, 1.5, out.shape[-1], dtype=out.dtype)).sum()
        if not loss.requires_grad:  # origin_like: a constant
            return out.detach().numpy(), {}
        gs = torch.autograd.grad(loss, list(ts.values()), allow_unused=True)
        return out.detach().numpy(), {
            k: (np.zeros(ts[k].shape, dtype=dtype) if g is None else g.numpy()) for k, g in zip(ts, gs)}
    m = make(J, kind, p)
    js = {k: jnp.asarray(a, dtype=dtype) for k, a in args.items()}

    def f(a):
        out = call(m, name, a["x"], a["y"], a["v"], a["r"], a["W"])
        return (out * jnp.linspace(0.5, 1.5, out.shape[-1], dtype=out.dtype)).sum(), out

    (_, out), g = jax.value_and_grad(f, has_aux=True)(js)
    assert out.dtype == jnp.dtype(dtype), f"{name} returned {out.dtype} for {dtype} inputs (x64 off?)"
    return np.asarray(out), {k: np.asarray(a) for k, a in g.items()}
