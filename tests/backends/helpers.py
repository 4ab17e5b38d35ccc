"""Shared by the backend tests: compile an example for both targets, sample valid inputs."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import torch
from xdsl.dialects import func

import geomir
from geomir.backends.common.pyemit import manifold_ctor
from geomir.backends.torch import runtime as torch_runtime
from geomir.dialects import geo, jet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.geo"))


def functions(path: Path) -> list[func.FuncOp]:
    """The program's functions after the default pipeline, without the private helpers
    that passes add (jet-expand's ``<model>__jvp_wrt<k>``)."""
    return [op for op in geomir.to_ir(path).ops if isinstance(op, func.FuncOp) and op.sym_visibility is None]


def torch_manifold(attr):
    return eval(manifold_ctor(attr), {"runtime": torch_runtime, "math": math})  # noqa: S307


def sample(t, rng: np.random.Generator, batch: int, dtype: torch.dtype, scale: float = 0.25) -> torch.Tensor:
    """A batch of valid values of IR type ``t`` (points on their manifold, or tangents):
    tangent coordinates ~ N(0, scale²), points = expmap0 of such a tangent."""
    if isinstance(t, jet.JetType):
        raise TypeError("jets are results, not inputs")
    v = torch.tensor(rng.normal(0.0, scale, (batch, t.dim_value)), dtype=dtype)
    m = torch_manifold(t.manifold)
    if isinstance(t, geo.TangentType) or isinstance(t.manifold, geo.EuclideanAttr):
        return v
    return m.expmap0(m.proju(m.origin_like(v), v))


def inputs_for(f: func.FuncOp, seed: int = 0, batch: int = 3, dtype=torch.float64) -> list[torch.Tensor]:
    """Deterministic inputs for ``f`` (seeded by the function's name and ``seed``)."""
    rng = np.random.default_rng([seed, zlib.crc32(f.sym_name.data.encode())])
    return [sample(t, rng, batch, dtype) for t in f.function_type.inputs.data]
