"""The ``contract`` dialect: properties a model promises, attached to its ``func.func``.

Contracts live in the discardable attribute ``contracts`` (:data:`CONTRACT_ATTR_NAME`)
as an array::

    func.func @f(...) -> ... attributes {contracts = [#contract.lipschitz<4.0>,
        #contract.equivariant<so2>, #contract.monotone<[0, 2], increasing>]}
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence

from xdsl.dialects.builtin import ArrayAttr, Float64Type, FloatAttr, IntAttr, NoneAttr, StringAttr, f64
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from geomir.dialects.geo import format_float_literal, parse_number_as_f64

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
    """The model is ``bound``-Lipschitz (in the geodesic distances of input and output);
    with ``radius``, on inputs within that distance of the origin (|x| <= radius in R^n,
    d(0, x) <= radius on a manifold): ``#contract.lipschitz<4.0, radius = 2.0>``."""

    name = "contract.lipschitz"

    bound: FloatAttr[Float64Type]
    radius: FloatAttr[Float64Type] | NoneAttr

    def __init__(self, bound: float | FloatAttr, radius: float | FloatAttr | NoneAttr | None = None):
        if radius is None:
            radius = NoneAttr()
        elif not isinstance(radius, (FloatAttr, NoneAttr)):
            radius = FloatAttr(float(radius), f64)
        super().__init__(bound if isinstance(bound, FloatAttr) else FloatAttr(float(bound), f64), radius)

    @property
    def bound_value(self) -> float:
        """The Lipschitz constant as a float."""
        return self.bound.value.data

    @property
    def radius_value(self) -> float:
        """The input radius the bound holds on (inf: everywhere)."""
        return math.inf if isinstance(self.radius, NoneAttr) else self.radius.value.data

    def verify(self) -> None:
        if not (math.isfinite(self.bound_value) and self.bound_value > 0):
            raise VerifyException(
                f"{self.name}: bound must be finite and > 0, found {self.bound_value}"
            )
        if isinstance(self.radius, FloatAttr) and not (math.isfinite(self.radius_value) and self.radius_value > 0):
            raise VerifyException(
                f"{self.name}: radius must be finite and > 0, found {self.radius_value}"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            value = parse_number_as_f64(parser, "the Lipschitz bound")
            radius: Attribute = NoneAttr()
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("radius", " (the input radius: radius = R)")
                parser.parse_punctuation("=")
                radius = FloatAttr(parse_number_as_f64(parser, "the input radius"), f64)
        return (FloatAttr(value, f64), radius)

    def print_parameters(self, printer: Printer) -> None:
        radius = "" if isinstance(self.radius, NoneAttr) else f", radius = {format_float_literal(self.radius_value)}"
        printer.print_string(f"<{format_float_literal(self.bound_value)}{radius}>")


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


def _euclidean_point(t: Attribute) -> bool:
    from geomir.dialects.geo import EuclideanAttr, PointType

    return isinstance(t, PointType) and isinstance(t.manifold, EuclideanAttr)


def _point_on(t: Attribute, kind: str) -> bool:
    from geomir.dialects.geo import PointType

    return isinstance(t, PointType) and t.manifold.kind == kind


GROUP_ACTS_ON = {  # group -> does it act on values of this type
    "so2": lambda t: _euclidean_point(t) and t.dim_value % 2 == 0,
    "perm": _euclidean_point,
    "torus_translation": lambda t: _point_on(t, "torus"),
    "ball_rotation": lambda t: _point_on(t, "poincare"),
}
ONE_DIMENSION = ("perm", "ball_rotation", "torus_translation")
"""Groups whose element acts in one dimension n (a permutation of n coordinates, a rotation
of R^n, a shift of n angles), so every input they act on needs that dimension. so2 is one
angle, which rotates every coordinate pair of an even-dimensional input of any size."""

_GROUP_INPUTS = {
    "so2": "a Euclidean input of even dimension",
    "perm": "a Euclidean input",
    "torus_translation": "an input on a torus",
    "ball_rotation": "an input on the Poincaré ball",
}


def signature_problem(contract: Attribute, inputs: Sequence[Attribute], outputs: Sequence[Attribute]) -> str | None:
    """Why ``contract`` cannot apply to a model with these input/output types (None if it can).

    The one statement of which signatures each contract fits, used by the IR verifier and
    by the .geo type checker. Lipschitz fits any model (the metrics are the manifolds').
    An equivariance group acts on the inputs it can act on (so2: Euclidean inputs of even
    dimension; perm: Euclidean inputs; torus_translation: torus points; ball_rotation:
    Poincaré points), all by the same group element, and leaves the other inputs fixed; a
    permutation, rotation of R^n or shift of n angles acts in one dimension, so for perm,
    ball_rotation and torus_translation the inputs it acts on need one dimension.
    """
    if len(outputs) != 1:
        return f"a contract needs a model with one result, found {len(outputs)}"
    from geomir.dialects.geo import PathType

    paths = [t for t in inputs if isinstance(t, PathType)]
    if paths:
        return f"contracts are not checked on models with path inputs, found {paths[0]}"
    (out,) = outputs
    if isinstance(contract, MonotoneAttr):
        for i in contract.input_indices:
            if i >= len(inputs):
                return f"monotone input index {i} is out of range: the model has {len(inputs)} input(s)"
            if not _euclidean_point(inputs[i]):
                return f"monotonicity needs ordered (Euclidean) inputs; input {i} is {inputs[i]}"
        if not _euclidean_point(out):
            return f"monotonicity needs a Euclidean output, found {out}"
    elif isinstance(contract, EquivariantAttr):
        group = contract.group.data
        acted = [t for t in inputs if GROUP_ACTS_ON[group](t)]
        if not acted:
            return f"equivariant({group}) needs an input it acts on: {_GROUP_INPUTS[group]}"
        if group in ONE_DIMENSION and len({t.dim_value for t in acted}) > 1:
            dims = ", ".join(str(t.dim_value) for t in acted)
            acts_on = {"perm": "Euclidean inputs", "ball_rotation": "inputs on the Poincaré ball",
                       "torus_translation": "inputs on a torus"}[group]
            return (f"equivariant({group}) acts by one group element on all its {acts_on}, "
                    f"so they need one dimension; found dimensions {dims}")
        dim = getattr(out, "dim_value", None)
        if group == "so2" and not (_euclidean_point(out) and (dim % 2 == 0 or dim == 1)):
            return "equivariant(so2) needs a Euclidean output of even dimension (or dimension 1: invariance)"
        if group == "perm" and not (_euclidean_point(out) and (dim == acted[0].dim_value or dim == 1)):
            return "equivariant(perm) needs a Euclidean output of the permuted input's dimension (or dimension 1: invariance)"
        if group == "torus_translation" and not (_point_on(out, "torus") or _euclidean_point(out)):
            return "equivariant(torus_translation) needs an output on the torus or in R^n (invariance)"
        if group == "ball_rotation" and not (_point_on(out, "poincare") or (_euclidean_point(out) and dim == 1)):
            return "equivariant(ball_rotation) needs an output on the Poincaré ball (or dimension 1: invariance)"
    return None


PROVED_ATTR_NAME = "proved"
"""Name of the ``func.func`` attribute where ``verify-contracts`` records what it proved
(an ArrayAttr of #contract attributes; passes/verify_contracts.py writes it, the backends
print it)."""


PROVED_ON_ATTR_NAME = "proved_on"
"""``func.func`` attribute beside ``proved``: the trained weights its entries were proved on
(``"w.npz (sha256 1a2b...)"``, from ``verify-contracts{weights=...}``); absent: the initial
weights of seed 0. The backends print it with the proofs."""


STALE_ATTR_NAME = "proved_before_transforms"
"""``func.func`` attribute: Lipschitz bounds ``verify-contracts`` proved before a weight
transform changed the weights (quantize-weights, prune-weights move them here from
``proved``: they no longer hold for the model; a later verify-contracts compares with them)."""


_CHECKED: weakref.WeakKeyDictionary[Operation, ArrayAttr] = weakref.WeakKeyDictionary()
"""Function -> the ``proved`` array that ``verify-contracts`` wrote on it in this process (or
that a weight transform derived from one by dropping entries). A ``proved`` array that is
not this very object was read from the input (hand-written or earlier ``.mlir``): nothing
geomir checked, so the code generators re-check it (verify_contracts.checked_proofs)."""


def set_proved(op: Operation, proved: Iterable[Attribute] | None, checked: bool, on: str | None = ...) -> None:
    """Set ``op``'s ``proved`` array (None removes it, and its ``proved_on``); ``checked``:
    geomir proved each entry in this process (``verify-contracts``), so the code generators
    may emit it as it is; ``on``: the weights the entries were proved on (None: seed 0; left
    out: unchanged)."""
    _CHECKED.pop(op, None)
    if on is not ...:
        op.attributes.pop(PROVED_ON_ATTR_NAME, None)
        if on is not None:
            op.attributes[PROVED_ON_ATTR_NAME] = StringAttr(on)
    if proved is None:
        op.attributes.pop(PROVED_ATTR_NAME, None)
        op.attributes.pop(PROVED_ON_ATTR_NAME, None)
        return
    attr = ArrayAttr(tuple(proved))
    op.attributes[PROVED_ATTR_NAME] = attr
    if checked:
        _CHECKED[op] = attr


def proved_is_checked(op: Operation) -> bool:
    """Whether ``op``'s ``proved`` array (if any) is one geomir proved in this process (see
    :func:`set_proved`), rather than one read from the input."""
    attr = op.attributes.get(PROVED_ATTR_NAME)
    return attr is None or _CHECKED.get(op) is attr


def verify_function_contracts(op: Operation) -> None:
    """Check a ``func.func``'s contracts are well formed and fit its signature, and that
    its ``proved`` and ``proved_before_transforms`` attributes, if any, are arrays of
    #contract attributes that fit its signature too."""
    checked = [("contract", c) for c in get_contracts(op)]
    for name in (PROVED_ATTR_NAME, STALE_ATTR_NAME):
        proved = op.attributes.get(name)
        if proved is not None and (
            not isinstance(proved, ArrayAttr) or not all(isinstance(a, CONTRACT_ATTRS) for a in proved)
        ):
            raise VerifyException(f"{op.name}: '{name}' must be an array of #contract attributes, found {proved}")
        if proved is not None:
            checked += [(f"'{name}' entry", c) for c in proved.data]
    on = op.attributes.get(PROVED_ON_ATTR_NAME)
    if on is not None and not isinstance(on, StringAttr):
        raise VerifyException(f"{op.name}: '{PROVED_ON_ATTR_NAME}' must be a string (the weights file the proofs "
                              f"were proved on), found {on}")
    if on is not None and PROVED_ATTR_NAME not in op.attributes:
        raise VerifyException(f"{op.name}: '{PROVED_ON_ATTR_NAME}' names the weights of proofs, but there is no "
                              f"'{PROVED_ATTR_NAME}'")
    if not checked:
        return
    ftype = op.function_type
    for what, c in checked:
        problem = signature_problem(c, ftype.inputs.data, ftype.outputs.data)
        if problem:
            raise VerifyException(f"@{op.sym_name.data}: {what} {c} does not fit the model: {problem}")


Contract = Dialect("contract", [], list(CONTRACT_ATTRS))
