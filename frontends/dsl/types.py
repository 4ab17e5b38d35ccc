"""Types of the .geo language, as the type checker sees them.

A value is a point or a tangent vector on a declared manifold, with a dimension (the
number of representation coordinates) and an element type; an input may also be a path
(``path T[3]``: a sequence of any length >= 1 of points on a torus), which only the
winding builtins take. Two manifolds are the same
type when their geometry is the same (kind and parameters), whatever they are named.
Number literals have :class:`ScalarType` and are folded at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geomir.diagnostics import GeoTypeError, Span

MANIFOLD_KINDS = ("euclidean", "poincare", "lorentz", "sphere", "torus")
DTYPES = ("f32", "f64", "f16", "bf16")
TORUS_UNITS = ("radians", "turns")
MAX_DIM = 2**31 - 1
"""The largest dimension (or parameter size) a program may declare: an int32 size, which
every backend can index (a model that large still needs the memory for its weights)."""


def dim_text(n: int) -> str:
    """``n`` for a message: its digits, or how many there are when they would not fit a line."""
    return str(n) if n < 10**20 else f"a {len(str(n))}-digit number"


def check_dim(n: int, what: str, span: Span) -> int:
    """``n`` if it is at most :data:`MAX_DIM`; else a located error naming ``what``."""
    if n > MAX_DIM:
        raise GeoTypeError(f"{what} is too large: the largest dimension is {MAX_DIM} (2**31 - 1), found {dim_text(n)}", span)
    return n


def curvature_text(c: float) -> str:
    """``c`` short (``1``, ``0.5``), or exact where the short form would name another value
    (``0.30000000000000004`` is not ``0.3``: two manifolds must not read the same)."""
    short = f"{c:g}"
    return short if float(short) == c else repr(float(c))


@dataclass(frozen=True)
class Manifold:
    """A manifold declared in source (``manifold H = poincare(c = 1.0)``) or built in (R)."""

    kind: str
    c: float | None = None
    units: str | None = None
    name: str = field(default="", compare=False)

    def geometry(self) -> str:
        if self.kind in ("poincare", "lorentz"):
            return f"{self.kind}(c={curvature_text(self.c)})"
        if self.kind == "torus":
            return f"torus(units={self.units})"
        return f"{self.kind}"

    @property
    def min_dim(self) -> int:
        """Sphere and Lorentz points live in an ambient space of one more coordinate."""
        return 2 if self.kind in ("sphere", "lorentz") else 1

    def intrinsic_dim(self, coords: int) -> int:
        """The manifold's dimension for ``coords`` representation coordinates."""
        return coords - 1 if self.kind in ("sphere", "lorentz") else coords


EUCLIDEAN = Manifold("euclidean", name="R")


PATH_MANIFOLDS = ("torus",)
"""Manifolds whose paths (``path T[n]``) the language has: winding numbers need a torus."""


@dataclass(frozen=True)
class ValueType:
    """A point (``H[16]``), a tangent vector (``tangent H[16]``) or a path of points
    (``path T[16]``, any number >= 1 of points on a torus; only the winding builtins
    take one)."""

    manifold: Manifold
    dim: int
    dtype: str = "f32"
    tangent: bool = False
    path: bool = False

    def __str__(self) -> str:
        dtype = "" if self.dtype == "f32" else f", {self.dtype}"
        prefix = "tangent " if self.tangent else "path " if self.path else ""
        return f"{prefix}{self.manifold.name or self.manifold.kind}[{self.dim}{dtype}]"

    def describe(self) -> str:
        """``H[16] (a point on poincare(c=1.0))``: the type with its geometry spelled out."""
        what = "a tangent vector of" if self.tangent else "a path on" if self.path else "a point on"
        return f"{self} ({what} {self.manifold.geometry()})"

    @property
    def is_vector(self) -> bool:
        """Linear algebra is legal on tangent vectors and on Euclidean points."""
        return not self.path and (self.tangent or self.manifold.kind == "euclidean")

    @property
    def kind(self) -> str:
        return self.manifold.kind

    def as_tangent(self) -> ValueType:
        return ValueType(self.manifold, self.dim, self.dtype, True)

    def as_point(self) -> ValueType:
        return ValueType(self.manifold, self.dim, self.dtype, False)

    def with_dim(self, dim: int) -> ValueType:
        return ValueType(self.manifold, dim, self.dtype, self.tangent)

    def euclidean(self, dim: int | None = None) -> ValueType:
        return ValueType(EUCLIDEAN, self.dim if dim is None else dim, self.dtype, False)


@dataclass(frozen=True)
class WeightType:
    """A learned tensor declared by name (``let W = param(32, 16)``): a ``geo.param`` of
    this shape, used by the explicit-weight forms ``mobius_matvec(W, x)``, ``linear(x, W)``."""

    shape: tuple[int, ...]
    dtype: str = "f32"

    def __str__(self) -> str:
        dtype = "" if self.dtype == "f32" else f", {self.dtype}"
        return f"param[{', '.join(map(str, self.shape))}{dtype}]"

    def describe(self) -> str:
        return f"{self} (a learned tensor)"

    is_vector = False
    tangent = False
    kind = "weight"


@dataclass(frozen=True)
class ScalarType:
    """A compile-time number (literal, or arithmetic on literals)."""

    value: float
    is_int: bool = False

    def __str__(self) -> str:
        return f"number {self.value:g}"

    def describe(self) -> str:
        return f"a number ({self.value:g})"
