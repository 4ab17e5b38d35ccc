"""The ``contract`` dialect: properties a model promises, attached to its ``func.func``.

Contracts live in the discardable attribute ``contracts`` (:data:`CONTRACT_ATTR_NAME`)
as an array::

    func.func @f(...) -> ... attributes {contracts = [#contract.lipschitz<4.0>,
        #contract.equivariant<so2>, #contract.monotone<[0, 2], increasing>]}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from xdsl.dialects.builtin import ArrayAttr, Float64Type, FloatAttr, IntAttr, StringAttr, f64
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from geomir.dialects.geo import format_float_literal

CONTRACT_ATTR_NAME = "contracts"
"""Name of the ``func.func`` attribute holding the ArrayAttr of contracts."""

EQUIVARIANCE_GROUPS: dict[str, str] = {
    "so2": "rotations acting on consecutive coordinate pairs of R^2k",
    "perm": "permutations of the coordinates",
    "torus_translation": "translations on the torus",
    "ball_rotation": "isometries of the Poincaré ball fixing the origin",
}
"""Known symmetry groups of ``#contract.equivariant`` and how each acts."""

MONOTONE_DIRECTIONS = ("increasing", "decreasing")
"""Directions of ``#contract.monotone``."""


def _str(value: str | StringAttr) -> StringAttr:
    return StringAttr(value) if isinstance(value, str) else value


@irdl_attr_definition
class LipschitzAttr(ParametrizedAttribute):
    """The model is ``bound``-Lipschitz (in the geodesic distances of input and output)."""

    name = "contract.lipschitz"

    bound: FloatAttr[Float64Type]

    def __init__(self, bound: float | FloatAttr):
        super().__init__(bound if isinstance(bound, FloatAttr) else FloatAttr(float(bound), f64))

    @property
    def bound_value(self) -> float:
        """The Lipschitz constant as a float."""
        return self.bound.value.data

    def verify(self) -> None:
        if not (math.isfinite(self.bound_value) and self.bound_value > 0):
            raise VerifyException(
                f"{self.name}: bound must be finite and > 0, found {self.bound_value}"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            value = parser.parse_number(context_msg=" (the Lipschitz bound)")
        return (FloatAttr(float(value), f64),)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{format_float_literal(self.bound_value)}>")


@irdl_attr_definition
class EquivariantAttr(ParametrizedAttribute):
    """The model commutes with the action of ``group`` (see :data:`EQUIVARIANCE_GROUPS`)."""

    name = "contract.equivariant"

    group: StringAttr

    def __init__(self, group: str | StringAttr):
        super().__init__(_str(group))

    def verify(self) -> None:
        if self.group.data not in EQUIVARIANCE_GROUPS:
            raise VerifyException(
                f"{self.name}: unknown group '{self.group.data}' "
                f"(expected one of {', '.join(EQUIVARIANCE_GROUPS)})"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            group = parser.parse_identifier(" (the symmetry group)")
        return (StringAttr(group),)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.group.data}>")


@irdl_attr_definition
class MonotoneAttr(ParametrizedAttribute):
    """The model output is monotone (``direction``) in each of the model inputs ``inputs``."""

    name = "contract.monotone"

    inputs: ArrayAttr[IntAttr]
    direction: StringAttr

    def __init__(self, inputs: Iterable[int] | ArrayAttr[IntAttr], direction: str | StringAttr):
        if not isinstance(inputs, ArrayAttr):
            inputs = ArrayAttr(IntAttr(i) for i in inputs)
        super().__init__(inputs, _str(direction))

    @property
    def input_indices(self) -> tuple[int, ...]:
        """The monotone input indices as ints."""
        return tuple(i.data for i in self.inputs)

    def verify(self) -> None:
        indices = self.input_indices
        if not indices:
            raise VerifyException(f"{self.name}: expected at least one input index, found []")
        if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
            raise VerifyException(
                f"{self.name}: input indices must be unique and >= 0, found {list(indices)}"
            )
        if self.direction.data not in MONOTONE_DIRECTIONS:
            raise VerifyException(
                f"{self.name}: unknown direction '{self.direction.data}' "
                f"(expected one of {', '.join(MONOTONE_DIRECTIONS)})"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            indices = parser.parse_comma_separated_list(
                parser.Delimiter.SQUARE,
                lambda: parser.parse_integer(allow_boolean=False),
                " (the monotone input indices)",
            )
            parser.parse_punctuation(",")
            direction = parser.parse_identifier(" (increasing or decreasing)")
        return (ArrayAttr(IntAttr(i) for i in indices), StringAttr(direction))

    def print_parameters(self, printer: Printer) -> None:
        indices = ", ".join(str(i) for i in self.input_indices)
        printer.print_string(f"<[{indices}], {self.direction.data}>")


CONTRACT_ATTRS = (LipschitzAttr, EquivariantAttr, MonotoneAttr)
"""All contract attribute classes."""


def get_contracts(op: Operation) -> tuple[Attribute, ...]:
    """The contracts attached to ``op`` (empty if it has none)."""
    attr = op.attributes.get(CONTRACT_ATTR_NAME)
    if attr is None:
        return ()
    if not isinstance(attr, ArrayAttr) or not all(isinstance(a, CONTRACT_ATTRS) for a in attr):
        raise VerifyException(
            f"{op.name}: '{CONTRACT_ATTR_NAME}' must be an array of #contract attributes, "
            f"found {attr}"
        )
    return attr.data


def set_contracts(op: Operation, contracts: Iterable[Attribute]) -> None:
    """Attach ``contracts`` to ``op`` (replacing any existing ones; none removes the attribute)."""
    contracts = tuple(contracts)
    if contracts:
        op.attributes[CONTRACT_ATTR_NAME] = ArrayAttr(contracts)
    else:
        op.attributes.pop(CONTRACT_ATTR_NAME, None)


Contract = Dialect("contract", [], list(CONTRACT_ATTRS))
