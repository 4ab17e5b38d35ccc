"""Feeding trained embeddings to geomir models: the model's input type must be the
embedding's space and dimension.

A Poincaré embedding of dimension d trained with curvature c is a point of
``poincare(c = c)`` with d coordinates, so a model takes it as ``H[d]`` after
``manifold H = poincare(c = c)``; a Lorentz embedding of dimension d has d + 1
coordinates (``L[d+1]`` after ``manifold L = lorentz(c = c)``); a Euclidean one is ``R[d]``.
:func:`check_model` compares the declared parameter type of a .geo model with the
embedding's and raises a located type error (file:line:col of the parameter's type) naming
both when the geometry or the dimension differs. :func:`model_inputs` returns the points
of the given nodes in the model's dtype.
"""

from __future__ import annotations

from pathlib import Path

from geomir.diagnostics import GeoTypeError, UsageError


def embedding_type(embedding, dtype: str = "f32"):
    """The .geo ValueType of the embedding's points."""
    from geomir.frontends.dsl.types import EUCLIDEAN, Manifold, ValueType

    space = embedding.space
    if space.name == "euclidean":
        return ValueType(EUCLIDEAN, space.coords, dtype)
    return ValueType(Manifold(space.name, c=float(space.curvature)), space.coords, dtype)


def _model_param(path: str | Path, model: str, param: str | None):
    from geomir.compiler import read_source
    from geomir.frontends.dsl import ast, check_program, parse_program

    text, filename = read_source(str(path))
    program = check_program(parse_program(text, filename))
    models = {m.name: m for m in program.items if isinstance(m, ast.ModelDef)}
    if model not in models:
        raise UsageError(f"{filename} has no model '{model}' (models: {', '.join(models) or 'none'})")
    params = models[model].params
    if not params:
        raise UsageError(f"model '{model}' in {filename} takes no input")
    if param is None:
        return models[model], params[0]
    for p in params:
        if p.name == param:
            return models[model], p
    raise UsageError(f"model '{model}' in {filename} has no parameter '{param}' "
                     f"(parameters: {', '.join(p.name for p in params)})")


def check_model(embedding, path: str | Path, model: str, param: str | None = None):
    """Check that ``model`` in the .geo file ``path`` takes the embedding's points as its
    parameter ``param`` (default: the first); returns the parameter's type."""
    m, p = _model_param(path, model, param)
    have = p.type
    want = embedding_type(embedding, have.dtype)
    if have.tangent or have.manifold != want.manifold or have.dim != want.dim:
        if have.manifold != want.manifold or have.tangent:
            why = f"the embedding's points are on {want.manifold.geometry()}"
        else:
            why = f"the embedding has {want.dim} coordinates per point"
        extra = " (a Lorentz point of dimension d has d + 1 coordinates)" if embedding.space.name == "lorentz" else ""
        raise GeoTypeError(f"model {m.name} takes {p.name}: {have.describe()}, but {why}{extra}: "
                           f"declare it as {_spelled(want, p)}", p.type_expr.span)
    return have


def _spelled(want, p) -> str:
    name = p.type.manifold.name if p.type.manifold == want.manifold else None
    if want.manifold.kind == "euclidean":
        return f"R[{want.dim}]"
    decl = f"manifold M = {want.manifold.kind}(c = {want.manifold.c!r})"
    return f"{name}[{want.dim}]" if name else f"M[{want.dim}] with {decl}"


def model_inputs(embedding, names: list[str], dtype=None):
    """The points of ``names`` stacked, shape (len(names), coords), in ``dtype``."""
    import torch

    index = {n: i for i, n in enumerate(embedding.names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise UsageError(f"not in the embedding: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    points = embedding.points[torch.tensor([index[n] for n in names])]
    return points if dtype is None else points.to(dtype)
