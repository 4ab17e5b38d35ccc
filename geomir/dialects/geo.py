"""The ``geo`` dialect: manifolds, points and tangent vectors on them, and layer ops.

Types::

    !geo.point<poincare<1.0>, 16, f32>     a point on a manifold (its representation coordinates)
    !geo.tangent<euclidean, 4, f64>        a tangent vector (same coordinates as the point)
    !geo.path<torus<radians>, 3, f32>      a path: any number >= 1 of points on a torus

A *vector type* is a ``!geo.tangent`` or a ``!geo.point`` on ``euclidean``: the types on
which linear algebra (``geo.linear``, ``geo.add``, ``geo.tanh``, ...) is legal.

Every op except ``geo.param`` is ``Pure``. Op syntax is uniform::

    %r = geo.<op> %a, %b [keyword value]* [{attrs}] : type(a), type(b) -> type(r)
"""

from __future__ import annotations

import math
import re
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import StringIO
from typing import ClassVar, NoReturn

from xdsl.dialects.builtin import (
    ArrayAttr,
    DYNAMIC_INDEX,
    AnyFloat,
    Float64Type,
    FloatAttr,
    IntAttr,
    StringAttr,
    TensorType,
    bf16,
    f16,
    f32,
    f64,
)
from xdsl.ir import (
    Attribute,
    Dialect,
    Operation,
    ParametrizedAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    MessageConstraint,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    prop_def,
    var_operand_def,
    result_def,
    traits_def,
)
from xdsl.irdl.declarative_assembly_format import (
    AttributeVariable,
    CustomDirective,
    ParsingState,
    PrintingState,
    irdl_custom_directive,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import NoMemoryEffect, Pure
from xdsl.utils.exceptions import VerifyException

# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def format_float_literal(value: float) -> str:
    """Shortest text of ``value`` that round-trips and lexes as an MLIR float literal."""
    text = repr(float(value))
    mantissa, sep, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + sep + exponent


def _f64_attr(value: float | FloatAttr) -> FloatAttr:
    """A ``FloatAttr`` of type f64 from a Python number (or the attribute itself)."""
    if isinstance(value, FloatAttr):
        return value
    return FloatAttr(float(value), f64)


def parse_number_as_f64(parser: AttrParser, what: str) -> float:
    """An integer or float literal as a float; an integer beyond the range of f64 (which
    ``float()`` cannot convert) is a parse error at the literal, naming ``what``."""
    start = parser.pos
    value = parser.parse_number(context_msg=f" ({what})")
    try:
        return float(value)
    except OverflowError:
        parser.raise_error(f"{what} is out of the range of f64", start, parser.pos)


def op_error(op_name: str, message: str) -> NoReturn:
    """Raise the uniform ``<op>: <message>`` verification error."""
    raise VerifyException(f"{op_name}: {message}")


# --------------------------------------------------------------------------------------
# Manifold attributes
# --------------------------------------------------------------------------------------


class ManifoldAttr(ParametrizedAttribute, ABC):
    """Abstract base of all manifold attributes (``#geo.euclidean``, ``#geo.poincare<c>``, ...)."""

    @property
    def kind(self) -> str:
        """The manifold keyword: "euclidean", "poincare", "lorentz", "sphere" or "torus"."""
        return self.name.split(".", 1)[1]

    @property
    def curvature(self) -> float | None:
        """The curvature parameter ``c`` (sectional curvature -c), or None if there is none."""
        return None

    def short(self) -> str:
        """The text used inside ``!geo.point``/``!geo.tangent``, e.g. ``poincare<1.0>``."""
        stream = StringIO()
        printer = Printer(stream=stream)
        printer.print_string(self.kind)
        self.print_parameters(printer)
        return stream.getvalue()

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        """A manifold without parameters (``euclidean``, ``sphere``); the curved ones and
        the torus override this. A ``<`` after the keyword is an error at the ``<``."""
        start = parser.pos
        if parser.parse_optional_punctuation("<") is not None:
            parser.raise_error(f"{cls.name} takes no parameters", start, parser.pos)
        return ()


@irdl_attr_definition
class EuclideanAttr(ManifoldAttr):
    """Flat Euclidean space R^n."""

    name = "geo.euclidean"


@irdl_attr_definition
class SphereAttr(ManifoldAttr):
    """The unit sphere S^(n-1), embedded in R^n (``dim`` counts the n ambient coordinates)."""

    name = "geo.sphere"


# Undecorated bases that declare parameters must be dataclasses themselves, or the
# parameters are left out of the generated __eq__/__hash__ (every instance compares equal).
@dataclass(frozen=True, init=False)
class CurvedManifoldAttr(ManifoldAttr, ABC):
    """Base of the hyperbolic models, parametrized by a curvature magnitude ``c > 0``."""

    c: FloatAttr[Float64Type]

    def __init__(self, c: float | FloatAttr):
        super().__init__(_f64_attr(c))

    @property
    def curvature(self) -> float:
        """The curvature parameter ``c`` (the sectional curvature is ``-c``)."""
        return self.c.value.data

    def verify(self) -> None:
        c = self.c.value.data
        if not (math.isfinite(c) and c > 0):
            raise VerifyException(
                f"{self.name}: curvature c must be finite and > 0, found {c}"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            value = parse_number_as_f64(parser, f"the curvature c of {cls.name}")
        return (FloatAttr(value, f64),)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{format_float_literal(self.c.value.data)}>")


@irdl_attr_definition
class PoincareAttr(CurvedManifoldAttr):
    """The Poincaré ball of curvature -c: the open ball of radius 1/sqrt(c) in R^n."""

    name = "geo.poincare"


@irdl_attr_definition
class LorentzAttr(CurvedManifoldAttr):
    """The hyperboloid model of curvature -c in R^n (``dim`` counts ambient coordinates)."""

    name = "geo.lorentz"


TORUS_UNITS: dict[str, float] = {"radians": 2 * math.pi, "turns": 1.0}
"""Angle units of ``#geo.torus`` and the period of each coordinate."""


@irdl_attr_definition
class TorusAttr(ManifoldAttr):
    """The flat torus (S^1)^n; each coordinate is an angle in ``units`` (period 2π or 1)."""

    name = "geo.torus"

    units: StringAttr

    def __init__(self, units: str | StringAttr = "radians"):
        super().__init__(StringAttr(units) if isinstance(units, str) else units)

    @property
    def period(self) -> float:
        """The period of each angle coordinate."""
        return TORUS_UNITS[self.units.data]

    def verify(self) -> None:
        if self.units.data not in TORUS_UNITS:
            raise VerifyException(
                f"{self.name}: unknown units '{self.units.data}' "
                f"(expected one of {', '.join(TORUS_UNITS)})"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            units = parser.parse_identifier(" (the torus units)")
        return (StringAttr(units),)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.units.data}>")


MANIFOLDS: dict[str, type[ManifoldAttr]] = {
    cls.name.split(".", 1)[1]: cls
    for cls in (EuclideanAttr, PoincareAttr, LorentzAttr, SphereAttr, TorusAttr)
}
"""Manifold keyword -> attribute class."""

ELEMENT_TYPES: tuple[Attribute, ...] = (f16, bf16, f32, f64)
"""The float types a geo value (point, tangent, path) or a parameter tensor may hold: the
ones every backend has (f8 formats, f80, f128 and tf32 are rejected)."""


def element_type_problem(t: Attribute) -> str | None:
    """Why ``t`` is not an element type of geo values, or None when it is one."""
    if t in ELEMENT_TYPES:
        return None
    return f"element type must be one of {', '.join(str(e) for e in ELEMENT_TYPES)}, found {t}"


_MIN_DIM = {"sphere": 2, "lorentz": 2}
"""Manifolds whose ``dim`` counts ambient coordinates need at least two."""


def dim_size_problem(n: int, what: str) -> str | None:
    """Why ``n`` is too large for a dimension (``what`` names it), or None: the limit of the
    .geo front end (frontends.dsl.types.MAX_DIM, what every backend can index)."""
    from geomir.frontends.dsl.types import MAX_DIM, dim_text  # lazily: the front end imports this dialect

    if n <= MAX_DIM:
        return None
    return f"{what} is too large: the largest dimension is {MAX_DIM} (2**31 - 1), found {dim_text(n)}"


def parse_manifold(parser: AttrParser) -> ManifoldAttr:
    """Parse the short manifold form used inside types: ``keyword`` [``<params>``]."""
    start = parser.pos
    keyword = parser.parse_optional_identifier()
    if keyword not in MANIFOLDS:
        what = f"unknown manifold '{keyword}', expected" if keyword is not None else "expected a manifold,"
        parser.raise_error(f"{what} one of: {', '.join(MANIFOLDS)}", start, parser.pos)
    cls = MANIFOLDS[keyword]
    return cls.new(cls.parse_parameters(parser))


# --------------------------------------------------------------------------------------
# Point and tangent types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class GeoValueType(ParametrizedAttribute, TypeAttribute, ABC):
    """Base of ``!geo.point`` and ``!geo.tangent``: a manifold, a dimension and an element type."""

    manifold: ManifoldAttr
    dim: IntAttr
    element_type: AnyFloat

    def __init__(
        self,
        manifold: ManifoldAttr,
        dim: int | IntAttr,
        element_type: AnyFloat = f32,
    ):
        super().__init__(manifold, IntAttr(dim) if isinstance(dim, int) else dim, element_type)

    @property
    def dim_value(self) -> int:
        """The dimension (number of representation coordinates) as an int."""
        return self.dim.data

    @abstractmethod
    def is_vector_space(self) -> bool:
        """Whether linear algebra is legal on this type (a tangent, or a Euclidean point)."""

    def tangent(self) -> TangentType:
        """The tangent type with the same manifold, dimension and element type."""
        return TangentType(self.manifold, self.dim, self.element_type)

    def with_dim(self, dim: int) -> GeoValueType:
        """The same kind of type with another dimension."""
        return type(self)(self.manifold, dim, self.element_type)

    def same_space(self, other: Attribute) -> bool:
        """Whether ``other`` is a geo type with the same manifold, dimension and element type."""
        return (
            isinstance(other, GeoValueType)
            and other.manifold == self.manifold
            and other.dim == self.dim
            and other.element_type == self.element_type
        )

    def verify(self) -> None:
        if (problem := element_type_problem(self.element_type)) is not None:
            raise VerifyException(f"{self.name}: {problem}")
        minimum = _MIN_DIM.get(self.manifold.kind, 1)
        if self.dim.data < minimum:
            raise VerifyException(
                f"{self.name}: dimension must be >= {minimum} on {self.manifold.short()}, "
                f"found {self.dim.data}"
            )
        if (problem := dim_size_problem(self.dim.data, "the dimension")) is not None:
            raise VerifyException(f"{self.name}: {problem}")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            manifold = parse_manifold(parser)
            parser.parse_punctuation(",")
            dim = parser.parse_integer(allow_boolean=False, context_msg=" (the dimension)")
            parser.parse_punctuation(",")
            element_type = parser.parse_type()
        return (manifold, IntAttr(dim), element_type)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(f"{self.manifold.short()}, {self.dim.data}, ")
            printer.print_attribute(self.element_type)


@irdl_attr_definition
class PointType(GeoValueType):
    """A point on a manifold, stored as its ``dim`` representation coordinates."""

    name = "geo.point"

    def is_vector_space(self) -> bool:
        return isinstance(self.manifold, EuclideanAttr)


@irdl_attr_definition
class TangentType(GeoValueType):
    """A tangent vector of a manifold, stored in the coordinates of the ambient representation."""

    name = "geo.tangent"

    def is_vector_space(self) -> bool:
        return True

    def tangent(self) -> TangentType:
        return self


@irdl_attr_definition
class PathType(ParametrizedAttribute, TypeAttribute):
    """A path on a torus: any number T >= 1 of points, each ``dim`` angle coordinates,
    held as an array of shape ``(..., T, dim)`` (T is not part of the type). Written
    ``!geo.path<torus<radians>, 3, f32>`` (the parameters of ``!geo.point``). Not a
    :class:`GeoValueType`: only the winding ops (``geo.unwrap``, ``geo.winding``,
    ``geo.winding_margin``, ``geo.endpoint``) take one."""

    name = "geo.path"

    manifold: ManifoldAttr
    dim: IntAttr
    element_type: AnyFloat

    def __init__(self, manifold: ManifoldAttr, dim: int | IntAttr, element_type: AnyFloat = f32):
        super().__init__(manifold, IntAttr(dim) if isinstance(dim, int) else dim, element_type)

    @property
    def dim_value(self) -> int:
        """The number of angle coordinates of each point."""
        return self.dim.data

    def point(self) -> PointType:
        """The type of one point of the path."""
        return PointType(self.manifold, self.dim, self.element_type)

    def verify(self) -> None:
        if not isinstance(self.manifold, TorusAttr):
            raise VerifyException(
                f"{self.name}: paths are on torus manifolds, found {self.manifold.short()}"
            )
        if self.dim.data < 1:
            raise VerifyException(f"{self.name}: dimension must be >= 1, found {self.dim.data}")
        if (problem := dim_size_problem(self.dim.data, "the dimension")) is not None:
            raise VerifyException(f"{self.name}: {problem}")
        if (problem := element_type_problem(self.element_type)) is not None:
            raise VerifyException(f"{self.name}: {problem}")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        return GeoValueType.parse_parameters.__func__(cls, parser)

    def print_parameters(self, printer: Printer) -> None:
        GeoValueType.print_parameters(self, printer)


GeoValue = MessageConstraint(GeoValueType, "expected a !geo.point or !geo.tangent")
"""IRDL constraint of operands and results that are points or tangents."""


def is_vector_type(t: Attribute) -> bool:
    """True for the types where linear algebra is legal: tangents and Euclidean points."""
    return isinstance(t, GeoValueType) and t.is_vector_space()


def scalar_type(element_type: AnyFloat = f32) -> PointType:
    """``!geo.point<euclidean, 1, elt>``, the type of scalars (e.g. a distance)."""
    return PointType(EuclideanAttr(), 1, element_type)


# --------------------------------------------------------------------------------------
# Type-checking helpers shared by the op verifiers (each raises "<op>: ...")
# --------------------------------------------------------------------------------------


def _point(op: str, role: str, t: Attribute, kind: str | None = None) -> PointType:
    """``t`` as a PointType (on manifold ``kind`` if given)."""
    if not isinstance(t, PointType) or (kind is not None and t.manifold.kind != kind):
        expected = "a !geo.point" + (f" on {kind}" if kind else "")
        op_error(op, f"{role} must be {expected}, found {t}")
    return t


def _path(op: str, role: str, t: Attribute) -> PathType:
    """``t`` as a PathType (always on a torus: the type verifies that)."""
    if not isinstance(t, PathType):
        op_error(op, f"{role} must be a !geo.path on torus, found {t}")
    return t


def _tangent(op: str, role: str, t: Attribute) -> TangentType:
    """``t`` as a TangentType."""
    if not isinstance(t, TangentType):
        op_error(op, f"{role} must be a !geo.tangent, found {t}")
    return t


def _geo_value(op: str, role: str, t: Attribute) -> GeoValueType:
    """``t`` as a point or tangent type."""
    if not isinstance(t, GeoValueType):
        op_error(op, f"{role} must be a !geo.point or !geo.tangent, found {t}")
    return t


def _vector(op: str, role: str, t: Attribute) -> GeoValueType:
    """``t`` as a vector type (a tangent, or a point on euclidean)."""
    if not is_vector_type(t):
        op_error(
            op,
            f"{role} must be a vector type (a !geo.tangent or a !geo.point on euclidean), "
            f"found {t}",
        )
    assert isinstance(t, GeoValueType)
    return t


def _same_space(op: str, role: str, t: GeoValueType, base_role: str, base: GeoValueType):
    """Check ``t`` lives on the same manifold, dimension and element type as ``base``."""
    if not base.same_space(t):
        op_error(
            op,
            f"{role} {t} does not match {base_role} {base} "
            "(expected the same manifold, dimension and element type)",
        )


def _same_type(op: str, role: str, t: Attribute, base_role: str, base: Attribute):
    """Check ``t`` is exactly ``base``."""
    if t != base:
        op_error(op, f"{role} {t} does not match {base_role} {base} (expected the same type)")


def _weight(op: str, role: str, w: Attribute, rank: int, elt: Attribute) -> tuple[int, ...]:
    """Check ``w`` is a static float tensor of the given rank and element type; its shape."""
    shape = w.get_shape() if isinstance(w, TensorType) else ()
    if len(shape) != rank or DYNAMIC_INDEX in shape:
        dims = "m x n" if rank == 2 else "n"
        op_error(op, f"{role} must be a static rank-{rank} tensor<{dims} x {elt}>, found {w}")
    assert isinstance(w, TensorType)
    if w.element_type != elt:
        op_error(op, f"{role} {w} has element type {w.element_type}, expected {elt}")
    return shape


# --------------------------------------------------------------------------------------
# Op base classes
# --------------------------------------------------------------------------------------


def parse_f64_literal(parser: Parser) -> float:
    """A finite f64 written as MLIR writes one: a decimal (``-2.5``, ``1.0e-3``, ``3``) or a
    hexadecimal integer holding its bits (``0x3FF0000000000000`` is 1.0). A located error
    for a value out of range, not finite, or an exponent without a '.' (``1e3``)."""
    from xdsl.utils.mlir_lexer import MLIRTokenKind

    start = parser.pos
    negative = parser._parse_optional_token(MLIRTokenKind.MINUS) is not None
    token = parser._current_token
    if token.kind == MLIRTokenKind.INTEGER_LIT and token.text[:2] in ("0x", "0X"):
        if negative:
            parser.raise_error("a hexadecimal float literal (the bits of an f64) takes no '-'", start, token.span.end)
        parser._consume_token()
        bits = int(token.text, 16)
        if bits >= 2**64:
            parser.raise_error(f"hexadecimal float literal {token.text} does not fit an f64 (at most 16 hex digits)", token.span)
        value = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    else:
        number = parser.parse_optional_integer(allow_boolean=False, allow_negative=False)
        if number is None:
            number = parser.parse_optional_float(allow_negative=False)
        if number is None:
            parser.raise_error("expected a float literal (like 2.0, -1.5e-3 or 0x3FF0000000000000)")
        _no_bare_exponent(parser, token)
        value = float(number) if abs(number) < 2**1024 else math.inf
        if not math.isfinite(value):
            text = token.text if len(token.text) <= 24 else f"{token.text[:12]}... ({len(token.text)} characters)"
            parser.raise_error(f"float literal {text} is out of range for f64", token.span)
    if not math.isfinite(value):
        parser.raise_error(f"expected a finite f64, found {value} ({token.text})", token.span)
    return -value if negative else value


def _no_bare_exponent(parser: Parser, number) -> None:
    """``1e3`` lexes as the integer 1 and the name ``e3``: say what MLIR's float syntax needs."""
    from xdsl.utils.mlir_lexer import MLIRTokenKind

    token = parser._current_token
    if token.kind == MLIRTokenKind.BARE_IDENT and token.span.start == number.span.end and token.text[:1] in "eE":
        written = re.match(r"[0-9]+[eE][-+]?[0-9]+", parser.lexer.input.content[number.span.start:])
        if written is None:
            return
        mantissa, exponent = number.text, written.group()[len(number.text):]
        parser.raise_error(f"a float literal needs a '.' before its exponent: write {mantissa}.0{exponent}",
                           number.span.start, number.span.start + written.end())


@irdl_custom_directive
class FloatLiteral(CustomDirective):
    """Assembly-format directive printing an f64 ``FloatAttr`` property as a bare ``2.0``."""

    attr: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        self.attr.set(state, FloatAttr(parse_f64_literal(parser), f64))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        value = self.attr.get(op)
        assert isinstance(value, FloatAttr)
        printer.print_string(format_float_literal(value.value.data))


@irdl_custom_directive
class IntLiteral(CustomDirective):
    """Assembly-format directive printing an ``IntAttr`` property as a bare integer (``4``)."""

    attr: AttributeVariable

    def parse(self, parser: Parser, state: ParsingState) -> None:
        self.attr.set(state, IntAttr(parser.parse_integer(allow_boolean=False)))

    def print(self, printer: Printer, state: PrintingState, op: IRDLOperation) -> None:
        state.print_whitespace(printer)
        value = self.attr.get(op)
        assert isinstance(value, IntAttr)
        printer.print_string(str(value.data))


def op_syntax(*operands: str, keywords: Sequence[tuple[str, str]] = ()) -> str:
    """The assembly format shared by geo and jet ops.

    ``op_syntax("x", "v")`` is ``%x, %v attr-dict : type(x), type(v) -> type(result)``;
    each ``(name, directive)`` in ``keywords`` is a property printed as ``name value``
    after the operands, with the custom directive ``directive`` (``FloatLiteral``,
    ``IntLiteral``).
    """
    parts = [" `,` ".join(f"${o}" for o in operands)]
    parts += [f"`{name}` custom<{directive}>(${name})" for name, directive in keywords]
    parts.append("attr-dict `:`")
    parts.append(" `,` ".join(f"type(${o})" for o in operands))
    parts.append("`->` type($result)")
    return " ".join(p for p in parts if p)


class GeoOp(IRDLOperation, ABC):
    """Base of the pure geo ops: one result whose type is inferred from the operands.

    Subclasses implement :meth:`infer_result_type`; the constructor uses it to build the
    result type, and the verifier re-runs it and compares with the actual result type.
    """

    traits = traits_def(Pure())

    def __init__(
        self,
        *operands: Operation | SSAValue,
        properties: Mapping[str, Attribute] | None = None,
    ):
        expected = len(type(self).get_irdl_definition().operands)
        if len(operands) != expected:
            raise TypeError(f"{self.name} takes {expected} operands, got {len(operands)}")
        properties = dict(properties or {})
        types = tuple(SSAValue.get(o).type for o in operands)
        super().__init__(
            operands=operands,
            result_types=[self.infer_result_type(types, properties)],
            properties=properties,
        )

    @classmethod
    @abstractmethod
    def infer_result_type(
        cls, operand_types: tuple[Attribute, ...], properties: Mapping[str, Attribute]
    ) -> Attribute:
        """The result type for these operand types, or a VerifyException naming the op."""

    def verify_(self) -> None:
        expected = self.infer_result_type(tuple(self.operand_types), self.properties)
        found = self.results[0].type
        if found != expected:
            op_error(self.name, f"result type {found} does not match the expected {expected}")


class UnaryElementwiseOp(GeoOp, ABC):
    """Base of unary elementwise ops on a vector type; the result has the operand's type."""

    x = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x")

    def __init__(self, x: Operation | SSAValue):
        super().__init__(x)

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        return _vector(cls.name, "operand", operand_types[0])


class BinaryElementwiseOp(GeoOp, ABC):
    """Base of binary elementwise ops: two operands of the same vector type, result that type."""

    lhs = operand_def(GeoValue)
    rhs = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("lhs", "rhs")

    def __init__(self, lhs: Operation | SSAValue, rhs: Operation | SSAValue):
        super().__init__(lhs, rhs)

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        lhs, rhs = operand_types
        _vector(cls.name, "lhs", lhs)
        _same_type(cls.name, "rhs", rhs, "lhs", lhs)
        return lhs


class ScalarPropertyOp(GeoOp, ABC):
    """Base of unary ops on a vector type with one f64 property (``PROPERTY``)."""

    PROPERTY: ClassVar[str]

    custom_directives = (FloatLiteral,)

    x = operand_def(GeoValue)
    result = result_def(GeoValue)

    def __init__(self, x: Operation | SSAValue, value: float | FloatAttr):
        super().__init__(x, properties={self.PROPERTY: _f64_attr(value)})

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        value = properties.get(cls.PROPERTY)
        if isinstance(value, FloatAttr) and not math.isfinite(value.value.data):
            op_error(cls.name, f"{cls.PROPERTY} must be finite, found {value.value.data}")
        return _vector(cls.name, "operand", operand_types[0])


# --------------------------------------------------------------------------------------
# Manifold ops
# --------------------------------------------------------------------------------------


@irdl_op_definition
class ExpmapOp(GeoOp):
    """Exponential map at ``x``: follow the geodesic from ``x`` with initial velocity ``v``."""

    name = "geo.expmap"

    x = operand_def(GeoValue)
    v = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "v")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "base point", operand_types[0])
        v = _tangent(cls.name, "tangent", operand_types[1])
        _same_space(cls.name, "tangent", v, "base point", x)
        return x


@irdl_op_definition
class LogmapOp(GeoOp):
    """Logarithmic map at ``x``: the tangent vector at ``x`` pointing to ``y``."""

    name = "geo.logmap"

    x = operand_def(GeoValue)
    y = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "y")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "base point", operand_types[0])
        y = _point(cls.name, "target point", operand_types[1])
        _same_type(cls.name, "target point", y, "base point", x)
        return x.tangent()


@irdl_op_definition
class Expmap0Op(GeoOp):
    """Exponential map at the origin of the manifold."""

    name = "geo.expmap0"

    v = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("v")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        v = _tangent(cls.name, "operand", operand_types[0])
        return PointType(v.manifold, v.dim, v.element_type)


@irdl_op_definition
class Logmap0Op(GeoOp):
    """Logarithmic map at the origin of the manifold."""

    name = "geo.logmap0"

    y = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("y")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        return _point(cls.name, "operand", operand_types[0]).tangent()


@irdl_op_definition
class DistOp(GeoOp):
    """Geodesic distance between two points, as a ``!geo.point<euclidean, 1, elt>`` scalar."""

    name = "geo.dist"

    x = operand_def(GeoValue)
    y = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "y")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "x", operand_types[0])
        _same_type(cls.name, "y", operand_types[1], "x", x)
        return scalar_type(x.element_type)


@irdl_op_definition
class MobiusAddOp(GeoOp):
    """Möbius addition ``x ⊕ y`` on the Poincaré ball."""

    name = "geo.mobius_add"

    x = operand_def(GeoValue)
    y = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "y")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "x", operand_types[0], "poincare")
        _same_type(cls.name, "y", operand_types[1], "x", x)
        return x


@irdl_op_definition
class MobiusScalarOp(GeoOp):
    """Möbius scalar multiplication ``r ⊗ x`` with a scalar ``r: !geo.point<euclidean, 1>``."""

    name = "geo.mobius_scalar"

    r = operand_def(GeoValue)
    x = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("r", "x")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "x", operand_types[1], "poincare")
        if operand_types[0] != scalar_type(x.element_type):
            expected = scalar_type(x.element_type)
            op_error(cls.name, f"scalar r must be {expected}, found {operand_types[0]}")
        return x


@irdl_op_definition
class MobiusMatvecOp(GeoOp):
    """Möbius matrix-vector product ``expmap0(W logmap0(x))`` with ``W: tensor<m x n>``."""

    name = "geo.mobius_matvec"

    w = operand_def(TensorType)
    x = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("w", "x")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "x", operand_types[1], "poincare")
        m, n = _weight(cls.name, "weight", operand_types[0], 2, x.element_type)
        if n != x.dim_value:
            op_error(cls.name, f"weight {operand_types[0]} expects input dimension {n}, found {x}")
        return x.with_dim(m)


@irdl_op_definition
class ProjOp(GeoOp):
    """Projection of (numerically drifted) coordinates back onto the manifold."""

    name = "geo.proj"

    x = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        return _point(cls.name, "operand", operand_types[0])


@irdl_op_definition
class ParallelTransportOp(GeoOp):
    """Parallel transport of ``v`` (tangent at ``x``) along the geodesic from ``x`` to ``y``."""

    name = "geo.parallel_transport"

    x = operand_def(GeoValue)
    y = operand_def(GeoValue)
    v = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "y", "v")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _point(cls.name, "source point", operand_types[0])
        _same_type(cls.name, "target point", operand_types[1], "source point", x)
        v = _tangent(cls.name, "tangent", operand_types[2])
        _same_space(cls.name, "tangent", v, "source point", x)
        return v


@irdl_op_definition
class OriginOp(GeoOp):
    """The origin of the manifold of ``like`` (a point or tangent, which gives the shape):
    the base point of ``logmap0``/``expmap0`` tangents, as a value (insert-transport uses
    it to transport from or to the origin)."""

    name = "geo.origin"

    like = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("like")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        t = _geo_value(cls.name, "operand", operand_types[0])
        return PointType(t.manifold, t.dim, t.element_type)


INTRINSIC_DIM_OFFSET = {"sphere": 1, "lorentz": 1}
"""Manifolds whose points have one more coordinate than the manifold's dimension."""

FLAT = ("euclidean", "torus")
"""Manifolds whose parallel transport is the identity (the runtime's ``transp`` returns v)."""


def intrinsic_dim(t: GeoValueType) -> int:
    """The manifold's dimension (S^(n-1) and the n-coordinate hyperboloid: n - 1)."""
    return t.dim_value - INTRINSIC_DIM_OFFSET.get(t.manifold.kind, 0)


class _LoopOp(IRDLOperation, ABC):
    """Base of the holonomy ops: a closed geodesic polygon ``loop`` (at least 3 points of
    one type) and a tangent ``v`` at its first point, written
    ``geo.holonomy %v around %a, %b, %c : type(v) around type(a), ... -> type(result)``."""

    traits = traits_def(Pure())

    loop = var_operand_def(GeoValue)
    v = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = "$v `around` $loop attr-dict `:` type($v) `around` type($loop) `->` type($result)"

    def __init__(self, loop: Sequence[Operation | SSAValue], v: Operation | SSAValue):
        types = tuple(SSAValue.get(p).type for p in loop) + (SSAValue.get(v).type,)
        super().__init__(operands=[list(loop), v], result_types=[self.infer_result_type(types)])

    @classmethod
    def _check(cls, operand_types) -> PointType:
        *points, v = operand_types
        if len(points) < 3:
            op_error(cls.name, f"a loop needs at least 3 points, found {len(points)}")
        x = _point(cls.name, "loop point 0", points[0])
        for i, p in enumerate(points[1:], start=1):
            _same_type(cls.name, f"loop point {i}", p, "loop point 0", x)
        _same_space(cls.name, "tangent", _tangent(cls.name, "tangent", v), "loop point 0", x)
        return x

    @classmethod
    @abstractmethod
    def infer_result_type(cls, operand_types) -> Attribute: ...

    def verify_(self) -> None:
        expected = self.infer_result_type(tuple(self.operand_types))
        if self.result.type != expected:
            op_error(self.name, f"result type {self.result.type} does not match the expected {expected}")


@irdl_op_definition
class HolonomyOp(_LoopOp):
    """``v`` (tangent at ``loop[0]``) parallel-transported around the closed geodesic
    polygon loop[0] -> loop[1] -> ... -> loop[0]: the holonomy map applied to ``v``."""

    name = "geo.holonomy"

    @classmethod
    def infer_result_type(cls, operand_types, properties=None):
        return cls._check(operand_types).tangent()


@irdl_op_definition
class HolonomyAngleOp(_LoopOp):
    """The rotation angle of the holonomy around ``loop`` on a 2-dimensional manifold (the
    signed angle from ``v`` to its transport, in (-pi, pi]), as ``!geo.point<euclidean, 1>``;
    by Gauss-Bonnet the curvature integrated over the enclosed region."""

    name = "geo.holonomy_angle"

    @classmethod
    def infer_result_type(cls, operand_types, properties=None):
        x = cls._check(operand_types)
        if intrinsic_dim(x) != 2:
            op_error(cls.name, f"a rotation angle needs a 2-dimensional manifold, found {x} "
                               f"(dimension {intrinsic_dim(x)}); geo.holonomy gives the map in any dimension")
        return PointType(EuclideanAttr(), 1, x.element_type)


@irdl_op_definition
class CoordsOp(GeoOp):
    """The representation coordinates of a point or tangent, seen as a Euclidean vector."""

    name = "geo.coords"

    x = operand_def(GeoValue)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _geo_value(cls.name, "operand", operand_types[0])
        return PointType(EuclideanAttr(), x.dim, x.element_type)


# --------------------------------------------------------------------------------------
# Path ops: winding numbers on a torus (math: geomir.backends.common.winding)
# --------------------------------------------------------------------------------------


class _PathOp(GeoOp, ABC):
    """Base of the ops on one ``!geo.path`` operand."""

    p = operand_def()  # checked by infer_result_type, whose message names what was found
    result = result_def(GeoValue)

    assembly_format = op_syntax("p")

    def __init__(self, p: Operation | SSAValue):
        super().__init__(p)


@irdl_op_definition
class UnwrapOp(_PathOp):
    """The unwrapped displacement of a path: the sum of its shortest signed steps, as
    ``!geo.point<euclidean, n>`` (where the path lifted to R^n ends, minus its start)."""

    name = "geo.unwrap"

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        p = _path(cls.name, "operand", operand_types[0])
        return PointType(EuclideanAttr(), p.dim, p.element_type)


@irdl_op_definition
class WindingOp(_PathOp):
    """The winding vector round(D / period) of a path, integer-valued, as
    ``!geo.point<euclidean, n>``."""

    name = "geo.winding"

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        p = _path(cls.name, "operand", operand_types[0])
        return PointType(EuclideanAttr(), p.dim, p.element_type)


@irdl_op_definition
class WindingMarginOp(_PathOp):
    """The certified margin of the winding vector (the largest max-norm perturbation of the
    points below which it cannot change; 0 = uncertified), as ``!geo.point<euclidean, 1>``."""

    name = "geo.winding_margin"

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        p = _path(cls.name, "operand", operand_types[0])
        return scalar_type(p.element_type)


@irdl_op_definition
class EndpointOp(_PathOp):
    """The last point of a path, as a ``!geo.point`` on its torus."""

    name = "geo.endpoint"

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        return _path(cls.name, "operand", operand_types[0]).point()


# --------------------------------------------------------------------------------------
# Layer ops
# --------------------------------------------------------------------------------------

PARAM_INITS = ("glorot_uniform", "zeros", "uniform_small", "normal")
"""Initializers accepted by ``geo.param``."""


@irdl_op_definition
class ParamOp(IRDLOperation):
    """A learned parameter, identified by ``param_name`` and initialized with ``init``.

    Not Pure: a parameter's identity is its name, not its type. It has no side effects
    (``NoMemoryEffect``), so DCE removes unused params and CSE merges only params with
    the same name, init and type, which denote the same parameter.
    """

    name = "geo.param"

    param_name = prop_def(StringAttr)
    init = prop_def(StringAttr)
    result = result_def()

    traits = traits_def(NoMemoryEffect())

    assembly_format = "$param_name `init` $init attr-dict `:` type($result)"

    def __init__(self, name: str | StringAttr, result_type: Attribute, init: str | StringAttr):
        super().__init__(
            properties={
                "param_name": StringAttr(name) if isinstance(name, str) else name,
                "init": StringAttr(init) if isinstance(init, str) else init,
            },
            result_types=[result_type],
        )

    def verify_(self) -> None:
        if self.init.data not in PARAM_INITS:
            op_error(
                self.name,
                f"unknown init '{self.init.data}' for '{self.param_name.data}' "
                f"(expected one of {', '.join(PARAM_INITS)})",
            )
        self._verify_transforms()
        t = self.result.type
        if isinstance(t, GeoValueType):
            return
        if isinstance(t, TensorType):
            shape = t.get_shape()
            static = DYNAMIC_INDEX not in shape
            if len(shape) in (1, 2) and static and t.element_type in ELEMENT_TYPES:
                for i, n in enumerate(shape):
                    if (problem := dim_size_problem(n, f"dimension {i} of its tensor type")) is not None:
                        op_error(self.name, f"'{self.param_name.data}': {problem}")
                return
        op_error(
            self.name,
            "result must be a static rank-1 or rank-2 float tensor, a !geo.point or a "
            f"!geo.tangent, found {t}",
        )


    def _verify_transforms(self) -> None:
        """``weight_transforms``, when present: strings that name valid weight transforms, on
        a tensor parameter (the only ones quantize-weights and prune-weights touch: a point's
        transform would act on its tangent in the proof but on the point in the backends)."""
        from geomir.backends.common import weights

        attr = self.attributes.get(weights.ATTR_NAME)
        if attr is None:
            return
        if not isinstance(attr, ArrayAttr) or not all(isinstance(a, StringAttr) for a in attr.data):
            op_error(self.name, f"'{weights.ATTR_NAME}' must be an array of strings, found {attr}")
        if attr.data and not isinstance(self.result.type, TensorType):
            op_error(self.name, f"'{self.param_name.data}': '{weights.ATTR_NAME}' apply to tensor parameters only, "
                     f"found them on {self.result.type}")
        for a in attr.data:
            try:
                weights.parse(a.data)
            except ValueError as err:
                op_error(self.name, f"'{self.param_name.data}': {err}")


@irdl_op_definition
class LinearOp(GeoOp):
    """Matrix-vector product ``W x``: a vector type ``V<n>`` times ``W: tensor<m x n>`` is ``V<m>``."""

    name = "geo.linear"

    x = operand_def(GeoValue)
    w = operand_def(TensorType)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "w")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _vector(cls.name, "input", operand_types[0])
        m, n = _weight(cls.name, "weight", operand_types[1], 2, x.element_type)
        if n != x.dim_value:
            op_error(cls.name, f"weight {operand_types[1]} expects input dimension {n}, found {x}")
        return x.with_dim(m)


@irdl_op_definition
class BiasOp(GeoOp):
    """Adds a bias ``b: tensor<n>`` to a vector type ``V<n>``."""

    name = "geo.bias"

    x = operand_def(GeoValue)
    b = operand_def(TensorType)
    result = result_def(GeoValue)

    assembly_format = op_syntax("x", "b")

    @classmethod
    def infer_result_type(cls, operand_types, properties):
        x = _vector(cls.name, "input", operand_types[0])
        (n,) = _weight(cls.name, "bias", operand_types[1], 1, x.element_type)
        if n != x.dim_value:
            op_error(cls.name, f"bias {operand_types[1]} expects dimension {n}, found {x}")
        return x


@irdl_op_definition
class AddOp(BinaryElementwiseOp):
    """Elementwise sum."""

    name = "geo.add"


@irdl_op_definition
class SubOp(BinaryElementwiseOp):
    """Elementwise difference."""

    name = "geo.sub"


@irdl_op_definition
class MulOp(BinaryElementwiseOp):
    """Elementwise (Hadamard) product."""

    name = "geo.mul"


@irdl_op_definition
class DivOp(BinaryElementwiseOp):
    """Elementwise quotient."""

    name = "geo.div"


@irdl_op_definition
class ScaleOp(ScalarPropertyOp):
    """Multiplication by a constant ``factor``."""

    name = "geo.scale"
    PROPERTY: ClassVar[str] = "factor"

    factor = prop_def(FloatAttr[Float64Type])

    assembly_format = op_syntax("x", keywords=[("factor", "FloatLiteral")])


@irdl_op_definition
class PowOp(ScalarPropertyOp):
    """Elementwise power ``x ** exponent`` for a constant exponent."""

    name = "geo.pow"
    PROPERTY: ClassVar[str] = "exponent"

    exponent = prop_def(FloatAttr[Float64Type])

    assembly_format = op_syntax("x", keywords=[("exponent", "FloatLiteral")])


@irdl_op_definition
class NegOp(UnaryElementwiseOp):
    """Elementwise negation."""

    name = "geo.neg"


@irdl_op_definition
class TanhOp(UnaryElementwiseOp):
    """Elementwise hyperbolic tangent."""

    name = "geo.tanh"


@irdl_op_definition
class SigmoidOp(UnaryElementwiseOp):
    """Elementwise logistic sigmoid."""

    name = "geo.sigmoid"


@irdl_op_definition
class ReluOp(UnaryElementwiseOp):
    """Elementwise rectified linear unit ``max(x, 0)``."""

    name = "geo.relu"


@irdl_op_definition
class SoftplusOp(UnaryElementwiseOp):
    """Elementwise softplus ``log(1 + exp(x))``."""

    name = "geo.softplus"


@irdl_op_definition
class ExpOp(UnaryElementwiseOp):
    """Elementwise exponential."""

    name = "geo.exp"


@irdl_op_definition
class LogOp(UnaryElementwiseOp):
    """Elementwise natural logarithm."""

    name = "geo.log"


@irdl_op_definition
class SqrtOp(UnaryElementwiseOp):
    """Elementwise square root."""

    name = "geo.sqrt"


@irdl_op_definition
class SinOp(UnaryElementwiseOp):
    """Elementwise sine."""

    name = "geo.sin"


@irdl_op_definition
class CosOp(UnaryElementwiseOp):
    """Elementwise cosine."""

    name = "geo.cos"


def _by_mnemonic(*ops: type[IRDLOperation]) -> dict[str, type]:
    return {op.name.split(".", 1)[1]: op for op in ops}


UNARY_OPS: dict[str, type] = _by_mnemonic(
    NegOp, TanhOp, SigmoidOp, ReluOp, SoftplusOp, ExpOp, LogOp, SqrtOp, SinOp, CosOp
)
"""Mnemonic ("tanh") -> unary elementwise op class."""

BINARY_OPS: dict[str, type] = _by_mnemonic(AddOp, SubOp, MulOp, DivOp)
"""Mnemonic ("add") -> binary elementwise op class."""

MANIFOLD_OPS: dict[str, type] = _by_mnemonic(
    ExpmapOp,
    LogmapOp,
    Expmap0Op,
    Logmap0Op,
    DistOp,
    MobiusAddOp,
    MobiusScalarOp,
    MobiusMatvecOp,
    ProjOp,
    ParallelTransportOp,
    CoordsOp,
)
"""Mnemonic -> manifold op class."""

HOLONOMY_OPS: dict[str, type] = _by_mnemonic(OriginOp, HolonomyOp, HolonomyAngleOp)
"""Mnemonic -> the ops of transport and holonomy that the DSL does not spell directly."""

PATH_OPS: dict[str, type] = _by_mnemonic(UnwrapOp, WindingOp, WindingMarginOp, EndpointOp)
"""Mnemonic -> the ops on paths (``!geo.path``): winding numbers on a torus."""

Geo = Dialect(
    "geo",
    [
        *MANIFOLD_OPS.values(),
        *HOLONOMY_OPS.values(),
        *PATH_OPS.values(),
        ParamOp,
        LinearOp,
        BiasOp,
        *BINARY_OPS.values(),
        ScaleOp,
        PowOp,
        *UNARY_OPS.values(),
    ],
    [EuclideanAttr, PoincareAttr, LorentzAttr, SphereAttr, TorusAttr, PointType, TangentType, PathType],
)
