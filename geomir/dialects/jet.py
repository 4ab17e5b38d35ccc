"""The ``jet`` dialect: truncated Taylor expansions (jets) and derivative requests.

A ``!jet.jet<K, T>`` holds K+1 Taylor coefficients of a curve t ↦ γ(t) through a value of
type T (a ``!geo.point`` or ``!geo.tangent``): coefficient 0 has type T, coefficients 1..K
have the tangent type of T. Coefficient k is the derivative d^k/dt^k γ at t = 0 (the
convention of jax.experimental.jet); a backend may keep normalized coefficients γ^(k)/k!
internally but converts wherever a coefficient becomes visible (``jet.coeff``, a returned jet).

``jet.seed``/``jet.lift`` make jets, ``jet.apply "geo.<op>"`` pushes a jet through a geo
primitive (inserted by the ``jet-expand`` pass), ``jet.coeff`` reads a coefficient.

The derivative-request ops (``jet.jvp``, ``jet.vjp``, ``jet.hvp``, ``jet.directional``,
``jet.laplacian``, ``jet.biharmonic``) name a model function and are lowered by a later
pass. Their syntax::

    %y, %dy = jet.jvp @f(%x) along %v wrt 0 : (T), Tv -> (R, Rv)
    %g = jet.vjp @f(%x) cotangent %c wrt 0 : (T), Rv -> Tv
    %j = jet.directional @f(%x) along %v wrt 0 order 4 : (T), Tv -> !jet.jet<4, R>
    %l = jet.laplacian @U(%x) wrt 0 : (T) -> R
    %g = jet.grad @U(%x) wrt 0 : (T) -> Tv

The jet passes lower them to ``jet.seed``/``jet.apply``/``jet.coeff`` (ordinary jets),
``jet.collapsed_seed``/``jet.trace`` (collapsed jets of type ``!jet.collapsed<T>``, the
forward Laplacian) and ``jet.stencil_seed``/``jet.stencil_sum`` (a fixed set of
directions, for the biharmonic operator).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import DictionaryAttr, IntAttr, StringAttr, SymbolRefAttr
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import Pure, SymbolTable
from xdsl.utils.exceptions import VerifyException

from geomir.dialects.geo import GeoValue, GeoValueType, IntLiteral, TangentType, op_error, op_syntax

# --------------------------------------------------------------------------------------
# Type
# --------------------------------------------------------------------------------------

MAX_ORDER = 64
"""The highest jet order the IR accepts: the emitted rules unroll their recurrences (order K
costs O(K^2) ops per primitive and O(K) lines of code), so 10^5 hung code generation and
10^20 overflowed it. The .geo front end stops at 8 (``derive ... order``)."""


@irdl_attr_definition
class JetType(ParametrizedAttribute, TypeAttribute):
    """A jet of order K over a base type T: K+1 Taylor coefficients (T, then K tangents of T)."""

    name = "jet.jet"

    order: IntAttr
    base: Attribute

    def __init__(self, order: int | IntAttr, base: Attribute):
        super().__init__(IntAttr(order) if isinstance(order, int) else order, base)

    @property
    def order_value(self) -> int:
        """The order K as an int."""
        return self.order.data

    @property
    def tangent_type(self) -> TangentType:
        """The type of coefficients 1..K."""
        assert isinstance(self.base, GeoValueType)
        return self.base.tangent()

    def coeff_type(self, index: int) -> Attribute:
        """The type of coefficient ``index`` (the base type for 0, its tangent type otherwise)."""
        return self.base if index == 0 else self.tangent_type

    def verify(self) -> None:
        if not 1 <= self.order.data <= MAX_ORDER:
            raise VerifyException(f"{self.name}: order must be from 1 to {MAX_ORDER}, found {self.order.data}")
        if not isinstance(self.base, GeoValueType):
            raise VerifyException(
                f"{self.name}: base must be a !geo.point or !geo.tangent, found {self.base}"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            order = parser.parse_integer(allow_boolean=False, context_msg=" (the jet order)")
            parser.parse_punctuation(",")
            base = parser.parse_type()
        return (IntAttr(order), base)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(f"{self.order.data}, ")
            printer.print_attribute(self.base)


@irdl_attr_definition
class CollapsedType(ParametrizedAttribute, TypeAttribute):
    """A collapsed second-order jet over T (the forward Laplacian): the value, its
    first-order coefficients along each coordinate direction of the seeded input, and the
    SUM over those directions of the second-order coefficients (Dangel et al., NeurIPS
    2025; Li et al. 2023). One propagation costs about D+2 evaluations, not D jets."""

    name = "jet.collapsed"

    base: Attribute

    def __init__(self, base: Attribute):
        super().__init__(base)

    def verify(self) -> None:
        if not isinstance(self.base, GeoValueType):
            raise VerifyException(
                f"{self.name}: base must be a !geo.point or !geo.tangent, found {self.base}"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            base = parser.parse_type()
        return (base,)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_attribute(self.base)


AnyJet = JetType | CollapsedType
"""The propagated kinds: ordinary jets and collapsed (Laplacian) jets."""

FUNCTION_ATTR = "jet.function"
"""The unit attribute on a function that ``jet-expand`` makes for calls of a model on jets:
its jet arguments and its returned jet are in the backend runtime's form (normalized
coefficients), which a backend converts to the derivative convention only where a jet
leaves any other function."""


def _expect_result(op: IRDLOperation, expected: Attribute) -> None:
    """The uniform check of a result type against the one the op's typing rule gives."""
    if op.result.type != expected:
        op_error(op.name, f"result type {op.result.type} does not match the expected {expected}")


# --------------------------------------------------------------------------------------
# Jet ops
# --------------------------------------------------------------------------------------


@irdl_op_definition
class SeedOp(IRDLOperation):
    """A jet with primal ``primal``, first coefficient ``direction`` and zero higher ones."""

    name = "jet.seed"

    primal = operand_def(GeoValue)
    direction = operand_def(GeoValue)
    order = prop_def(IntAttr)
    result = result_def(JetType)

    traits = traits_def(Pure())
    custom_directives = (IntLiteral,)
    assembly_format = op_syntax("primal", "direction", keywords=[("order", "IntLiteral")])

    def __init__(self, primal: Operation | SSAValue, direction: Operation | SSAValue, order: int):
        primal_type = SSAValue.get(primal).type
        super().__init__(
            operands=[primal, direction],
            properties={"order": IntAttr(order)},
            result_types=[JetType(order, primal_type)],
        )

    def verify_(self) -> None:
        order = self.order.data
        if not 1 <= order <= MAX_ORDER:
            op_error(self.name, f"order must be from 1 to {MAX_ORDER}, found {order}")
        primal = self.primal.type
        if not isinstance(primal, GeoValueType):
            op_error(self.name, f"primal must be a !geo.point or !geo.tangent, found {primal}")
        if self.direction.type != primal.tangent():
            op_error(
                self.name,
                f"direction {self.direction.type} is not the tangent type of primal {primal} "
                f"(expected {primal.tangent()})",
            )
        _expect_result(self, JetType(order, primal))


@irdl_op_definition
class CoeffOp(IRDLOperation):
    """Taylor coefficient ``index`` of a jet (the primal for 0, a tangent otherwise)."""

    name = "jet.coeff"

    jet = operand_def(JetType)
    index = prop_def(IntAttr)
    result = result_def(GeoValue)

    traits = traits_def(Pure())
    custom_directives = (IntLiteral,)
    assembly_format = op_syntax("jet", keywords=[("index", "IntLiteral")])

    def __init__(self, jet: Operation | SSAValue, index: int):
        jet_type = SSAValue.get(jet).type
        if not isinstance(jet_type, JetType):
            op_error(self.name, f"operand must be a !jet.jet, found {jet_type}")
        super().__init__(
            operands=[jet],
            properties={"index": IntAttr(index)},
            result_types=[jet_type.coeff_type(index)],
        )

    def verify_(self) -> None:
        jet_type = self.jet.type
        index = self.index.data
        if not 0 <= index <= jet_type.order_value:
            op_error(
                self.name,
                f"index {index} is out of range for {jet_type} "
                f"(expected 0 <= index <= K = {jet_type.order_value})",
            )
        _expect_result(self, jet_type.coeff_type(index))


@irdl_op_definition
class LiftOp(IRDLOperation):
    """The jet of a value that does not vary along the curve: ``(x, 0, ..., 0)``."""

    name = "jet.lift"

    value = operand_def(GeoValue)
    order = prop_def(IntAttr)
    result = result_def(JetType)

    traits = traits_def(Pure())
    custom_directives = (IntLiteral,)
    assembly_format = op_syntax("value", keywords=[("order", "IntLiteral")])

    def __init__(self, value: Operation | SSAValue, order: int):
        super().__init__(
            operands=[value],
            properties={"order": IntAttr(order)},
            result_types=[JetType(order, SSAValue.get(value).type)],
        )

    def verify_(self) -> None:
        _expect_result(self, JetType(self.order.data, self.value.type))


STENCILS: dict[str, int] = {"biharmonic": 4}
"""Stencil name -> jet order. A stencil seeds one jet per direction of a fixed set (a new
leading batch axis) and reduces them with fixed weights; the runtime holds the
directions and weights (``taylor.stencil_seed`` / ``taylor.stencil_sum``)."""


def _check_stencil(op_name: str, stencil: str) -> int:
    order = STENCILS.get(stencil)
    if order is None:
        op_error(op_name, f"unknown stencil '{stencil}' (expected one of {', '.join(STENCILS)})")
    return order


class _CollapsedOfValueOp(IRDLOperation, ABC):
    """Base of the ops that make the collapsed jet ``!jet.collapsed<T>`` of a value of T."""

    value = operand_def(GeoValue)
    result = result_def(CollapsedType)

    traits = traits_def(Pure())
    assembly_format = op_syntax("value")

    def __init__(self, value: Operation | SSAValue):
        super().__init__(operands=[value], result_types=[CollapsedType(SSAValue.get(value).type)])

    def verify_(self) -> None:
        _expect_result(self, CollapsedType(self.value.type))


@irdl_op_definition
class CollapsedSeedOp(_CollapsedOfValueOp):
    """The collapsed jet of the seeded input itself: the coordinate directions as
    first-order parts, no second-order part."""

    name = "jet.collapsed_seed"


@irdl_op_definition
class CollapsedLiftOp(_CollapsedOfValueOp):
    """The collapsed jet of a value that does not depend on the seeded input."""

    name = "jet.collapsed_lift"


@irdl_op_definition
class TraceOp(IRDLOperation):
    """The Laplacian carried by a collapsed jet: Σ_d d²/dt² along the seeded directions
    (twice the summed normalized second-order coefficients), per output component."""

    name = "jet.trace"

    jet = operand_def(CollapsedType)
    result = result_def(GeoValue)

    traits = traits_def(Pure())
    assembly_format = op_syntax("jet")

    def __init__(self, jet: Operation | SSAValue):
        jet_type = SSAValue.get(jet).type
        if not isinstance(jet_type, CollapsedType):
            op_error(self.name, f"operand must be a !jet.collapsed, found {jet_type}")
        super().__init__(operands=[jet], result_types=[jet_type.base])

    def verify_(self) -> None:
        _expect_result(self, self.jet.type.base)


@irdl_op_definition
class StencilSeedOp(IRDLOperation):
    """Jets of t ↦ x + t d for every direction d of a stencil, stacked on a new leading
    batch axis: ``jet.stencil_seed %x stencil "biharmonic"`` (order 4, D² directions)."""

    name = "jet.stencil_seed"

    primal = operand_def(GeoValue)
    stencil = prop_def(StringAttr)
    result = result_def(JetType)

    traits = traits_def(Pure())
    assembly_format = "$primal `stencil` $stencil attr-dict `:` type($primal) `->` type($result)"

    def __init__(self, primal: Operation | SSAValue, stencil: str):
        order = _check_stencil(self.name, stencil)
        super().__init__(
            operands=[primal],
            properties={"stencil": StringAttr(stencil)},
            result_types=[JetType(order, SSAValue.get(primal).type)],
        )

    def verify_(self) -> None:
        order = _check_stencil(self.name, self.stencil.data)
        _expect_result(self, JetType(order, self.primal.type))


@irdl_op_definition
class StencilSumOp(IRDLOperation):
    """The stencil's weighted sum of the top coefficients of jets made by
    ``jet.stencil_seed`` (for "biharmonic": Δ²f per output component)."""

    name = "jet.stencil_sum"

    jet = operand_def(JetType)
    stencil = prop_def(StringAttr)
    result = result_def(GeoValue)

    traits = traits_def(Pure())
    assembly_format = "$jet `stencil` $stencil attr-dict `:` type($jet) `->` type($result)"

    def __init__(self, jet: Operation | SSAValue, stencil: str):
        jet_type = SSAValue.get(jet).type
        if not isinstance(jet_type, JetType):
            op_error(self.name, f"operand must be a !jet.jet, found {jet_type}")
        super().__init__(
            operands=[jet], properties={"stencil": StringAttr(stencil)}, result_types=[jet_type.base]
        )

    def verify_(self) -> None:
        order = _check_stencil(self.name, self.stencil.data)
        if self.jet.type.order_value != order:
            op_error(
                self.name,
                f"stencil '{self.stencil.data}' needs a jet of order {order}, found {self.jet.type}",
            )
        _expect_result(self, self.jet.type.base)
        wanted = f'jet.stencil_seed stencil "{self.stencil.data}"'
        sources = _jet_sources(self.jet)
        if sources != {wanted}:
            others = sorted(sources - {wanted})
            found = ", ".join(others) if others else "no jet.stencil_seed"
            op_error(
                self.name,
                f"its jet must be computed from a {wanted} (the stencil's directions are a "
                f"leading batch axis), found {found}",
            )


def _jet_sources(value: SSAValue) -> set[str]:
    """Where the varying part of the jet ``value`` comes from, following ``jet.apply`` and
    ``jet.layer`` back: ``jet.stencil_seed stencil "NAME"``, ``jet.seed``, a block argument,
    ... (``jet.lift`` constants vary along no direction and count as nothing)."""
    sources: set[str] = set()
    seen: set[SSAValue] = set()
    todo = [value]
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        owner = v.owner
        if isinstance(owner, StencilSeedOp):
            sources.add(f'jet.stencil_seed stencil "{owner.stencil.data}"')
        elif isinstance(owner, LiftOp):
            continue
        elif isinstance(owner, (ApplyOp, LayerOp)):
            todo.extend(o for o in owner.operands if isinstance(o.type, JetType))
        elif isinstance(owner, Operation):
            sources.add(owner.name)
        else:
            sources.add("a block argument")
    return sources


def _geo_primitives() -> dict[str, type]:
    from geomir.dialects import geo

    return {op.name: op for op in geo.Geo.operations
            if issubclass(op, geo.GeoOp) or op in (geo.HolonomyOp, geo.HolonomyAngleOp)}


def _check_primitive_signature(op_name: str, primitive: str, op_class: type, n_args: int, params) -> None:
    """``n_args`` operands and the properties ``params`` fit the primitive's definition:
    its operand count (at least the fixed ones when it has a variadic operand), every
    required property present, no unknown one, each of the property's kind."""
    from xdsl.irdl import OptPropertyDef, VarOperandDef
    from xdsl.irdl.constraints import VerificationContext

    definition = op_class.get_irdl_definition()
    fixed = sum(1 for _, d in definition.operands if not isinstance(d, VarOperandDef))
    variadic = any(isinstance(d, VarOperandDef) for _, d in definition.operands)
    if n_args < fixed or (n_args > fixed and not variadic):
        expected = f"at least {fixed}" if variadic else str(fixed)
        op_error(op_name, f"'{primitive}' takes {expected} operand(s), found {n_args}")
    params = dict(params)
    unknown = sorted(set(params) - set(definition.properties))
    if unknown:
        allowed = ", ".join(definition.properties) or "none"
        op_error(op_name, f"'{primitive}' has no property '{unknown[0]}' (its properties: {allowed})")
    for name, prop in definition.properties.items():
        if name not in params:
            if not isinstance(prop, OptPropertyDef) and prop.default_value is None:
                op_error(op_name, f"'{primitive}' needs the property '{name}' in params")
            continue
        try:
            prop.constr.verify(params[name], VerificationContext())
        except VerifyException as err:
            op_error(op_name, f"'{primitive}' property '{name}' is invalid: {err}")


@irdl_op_definition
class ApplyOp(IRDLOperation):
    """A ``geo`` primitive pushed forward through jets: the jet of ``primitive(args)``.

    ``primitive`` names a pure geo op (``"geo.tanh"``, ``"geo.linear"``, ...); ``params``
    holds that op's properties (``factor``, ``exponent``). Operands are jets (all of the
    same order K) or plain values (weights stay plain: a linear layer acts on all K+1
    coefficients at once, its weight is not padded with a zero series). The result is the
    jet of order K over the type the primitive gives on the operands' base types, so the
    typing rule of every jet op is the primitive's own. The propagation rules (Taylor
    recurrences) live in the backends' runtime, one per primitive.

        %y = jet.apply "geo.tanh"(%x) : (!jet.jet<4, T>) -> !jet.jet<4, T>
    """

    name = "jet.apply"

    primitive = prop_def(StringAttr)
    params = prop_def(DictionaryAttr, default_value=DictionaryAttr({}))
    args = var_operand_def()
    result = result_def(AnyJet)

    traits = traits_def(Pure())
    assembly_format = "$primitive `(` $args `)` (`params` $params^)? attr-dict `:` functional-type($args, $result)"

    def __init__(self, primitive: str, args: Sequence[Operation | SSAValue], params: dict[str, Attribute] | None = None):
        values = [SSAValue.get(a) for a in args]
        params = dict(params or {})
        super().__init__(
            operands=[values],
            properties={"primitive": StringAttr(primitive), "params": DictionaryAttr(params)},
            result_types=[self.infer(primitive, [v.type for v in values], params)],
        )

    @classmethod
    def infer(cls, primitive: str, arg_types: Sequence[Attribute], params) -> JetType | CollapsedType:
        """The result type, or a VerifyException naming what is wrong."""
        op_class = _geo_primitives().get(primitive)
        if op_class is None:
            op_error(cls.name, f"unknown primitive '{primitive}' (expected a pure geo op such as \"geo.tanh\")")
        _check_primitive_signature(cls.name, primitive, op_class, len(arg_types), params)
        kinds = {type(t) for t in arg_types if isinstance(t, (JetType, CollapsedType))}
        if not kinds:
            op_error(cls.name, f"'{primitive}' has no jet operand; apply the primitive itself")
        if len(kinds) > 1:
            op_error(cls.name, "mixes !jet.jet and !jet.collapsed operands")
        base_types = tuple(t.base if isinstance(t, (JetType, CollapsedType)) else t for t in arg_types)
        base = op_class.infer_result_type(base_types, dict(params))
        if kinds == {CollapsedType}:
            return CollapsedType(base)
        orders = {t.order_value for t in arg_types if isinstance(t, JetType)}
        if len(orders) > 1:
            op_error(cls.name, f"jet operands of different orders {sorted(orders)}")
        return JetType(orders.pop(), base)

    def verify_(self) -> None:
        _expect_result(self, self.infer(self.primitive.data, [a.type for a in self.args], self.params.data))


@irdl_op_definition
class LayerOp(IRDLOperation):
    """A fused layer on jets, made by ``jet-fuse``: ``activation(W x + b)`` for a jet (or
    collapsed jet) x, a plain weight W, an optional plain bias b and an optional unary
    elementwise activation ("geo.tanh"). It is the chain of ``jet.apply`` "geo.linear",
    "geo.bias" and the activation, as one op, so a backend emits the stacked matmul, the
    bias and the activation's coefficient recurrence as one block (one kernel on GPU).

        %h = jet.layer %x, %w, %b activation "geo.tanh" : (!jet.jet<4, T>, tensor<8x3xf32>, tensor<8xf32>) -> !jet.jet<4, T'>
    """

    name = "jet.layer"

    x = operand_def(AnyJet)
    weight = operand_def()
    bias = opt_operand_def()
    activation = opt_prop_def(StringAttr)
    result = result_def(AnyJet)

    traits = traits_def(Pure())
    assembly_format = (
        "$x `,` $weight (`,` $bias^)? (`activation` $activation^)? attr-dict `:` "
        "functional-type(operands, results)"
    )

    def __init__(self, x: SSAValue, weight: SSAValue, bias: SSAValue | None = None, activation: str | None = None):
        super().__init__(
            operands=[x, weight, [bias] if bias is not None else []],
            properties={"activation": StringAttr(activation)} if activation else {},
            result_types=[self.infer(x.type, weight.type, None if bias is None else bias.type, activation)],
        )

    @classmethod
    def infer(cls, x, weight, bias, activation: str | None) -> JetType | CollapsedType:
        """The result type: the chain's, through ``ApplyOp.infer``."""
        t = ApplyOp.infer("geo.linear", [x, weight], {})
        if bias is not None:
            t = ApplyOp.infer("geo.bias", [t, bias], {})
        if activation is not None:
            from geomir.dialects import geo

            if activation.removeprefix("geo.") not in geo.UNARY_OPS or not activation.startswith("geo."):
                op_error(
                    cls.name,
                    f"activation '{activation}' is not a unary elementwise geo op "
                    f"(expected one of {', '.join('geo.' + n for n in geo.UNARY_OPS)})",
                )
            t = ApplyOp.infer(activation, [t], {})
        return t

    def verify_(self) -> None:
        activation = self.activation.data if self.activation is not None else None
        bias = self.bias.type if self.bias is not None else None
        _expect_result(self, self.infer(self.x.type, self.weight.type, bias, activation))


# --------------------------------------------------------------------------------------
# Derivative requests
# --------------------------------------------------------------------------------------


def _types_text(types: Sequence[Attribute]) -> str:
    return "(" + ", ".join(str(t) for t in types) + ")"


class DerivativeOp(IRDLOperation, ABC):
    """Base of the derivative requests on the model function ``callee``.

    Operands: the model inputs, then (for ops with ``TRAILING``) one extra operand, the
    direction or cotangent. ``wrt`` is the index of the differentiated model input.

    Constructor: ``Op(callee, operands, wrt, result_types)`` (``DirectionalOp`` also takes
    ``order``), where ``operands`` includes the trailing direction/cotangent. Or use
    :meth:`for_model` to infer the result types from the model's ``func.func``.

    The verifier checks the op's own types; inside a symbol table it also looks ``callee``
    up and checks it against the model's signature.
    """

    TRAILING: ClassVar[str | None] = None
    """Keyword introducing the trailing operand ("along", "cotangent"), or None."""
    TRAILING_ROLE: ClassVar[str] = "direction"
    """What the trailing operand is, for messages."""
    INT_PROPS: ClassVar[tuple[str, ...]] = ("wrt",)
    """Integer properties, printed as ``name value`` after the operands."""

    callee = prop_def(SymbolRefAttr)
    wrt = prop_def(IntAttr)
    inputs = var_operand_def()

    traits = traits_def(Pure())

    def __init__(
        self,
        callee: str | SymbolRefAttr,
        operands: Sequence[Operation | SSAValue],
        wrt: int,
        result_types: Sequence[Attribute],
        **int_props: int,
    ):
        super().__init__(
            operands=[list(operands)],
            result_types=list(result_types),
            properties={
                "callee": SymbolRefAttr(callee) if isinstance(callee, str) else callee,
                "wrt": IntAttr(wrt),
                **{name: IntAttr(value) for name, value in int_props.items()},
            },
        )

    @classmethod
    def for_model(
        cls,
        model: FuncOp,
        operands: Sequence[Operation | SSAValue],
        wrt: int = 0,
        **int_props: int,
    ):
        """Build the request on ``model``, inferring the result types from its signature."""
        (output,) = model.function_type.outputs.data
        wrt_type = SSAValue.get(operands[wrt]).type
        assert isinstance(output, GeoValueType) and isinstance(wrt_type, GeoValueType)
        results = [t for t, _ in cls._expected_results(output, wrt_type, int_props.get("order"))]
        return cls(model.sym_name.data, operands, wrt, results, **int_props)

    # -- accessors

    @property
    def model_inputs(self) -> tuple[SSAValue, ...]:
        """The operands passed to the model (all but the trailing operand)."""
        inputs = tuple(self.inputs)
        return inputs[:-1] if self.TRAILING else inputs

    @property
    def trailing(self) -> SSAValue | None:
        """The direction or cotangent operand, if this op has one."""
        return self.inputs[-1] if self.TRAILING else None

    @property
    def callee_name(self) -> str:
        """The model's symbol name (without ``@``)."""
        return self.callee.string_value()

    # -- per-op typing rules (``None`` entries mean "not known from this information")

    @classmethod
    def _expected_results(
        cls, output: GeoValueType | None, wrt_type: GeoValueType, order: int | None
    ) -> list[tuple[Attribute | None, str]]:
        """(expected type, why) for each result."""
        raise NotImplementedError

    @classmethod
    def _expected_trailing(
        cls, output: GeoValueType | None, wrt_type: GeoValueType
    ) -> tuple[Attribute | None, str]:
        """(expected type, why) for the trailing operand: by default the tangent of input wrt."""
        return wrt_type.tangent(), "the tangent type of the differentiated input"

    def _output_from_results(self) -> GeoValueType | None:
        """The model output type implied by the results, if they determine it."""
        return None

    def _order(self) -> int | None:
        return None

    # -- verification

    def _check_types(self, output: GeoValueType | None, context: str) -> None:
        wrt_type = self.model_inputs[self.wrt.data].type
        assert isinstance(wrt_type, GeoValueType)
        expected = self._expected_results(output, wrt_type, self._order())
        for i, (found, (want, why)) in enumerate(zip(self.result_types, expected, strict=True)):
            if want is not None and found != want:
                op_error(
                    self.name, f"result #{i} has type {found}, expected {want} ({why}{context})"
                )
        if self.trailing is not None:
            found = self.trailing.type
            want, why = self._expected_trailing(output, wrt_type)
            if want is not None and found != want:
                op_error(
                    self.name,
                    f"{self.TRAILING_ROLE} has type {found}, expected {want} ({why}{context})",
                )

    def verify_(self) -> None:
        n_inputs = len(self.inputs) - (1 if self.TRAILING else 0)
        if n_inputs < 1:
            trailing = f" followed by the {self.TRAILING_ROLE}" if self.TRAILING else ""
            op_error(
                self.name,
                f"expects at least one model input{trailing}, found {len(self.inputs)} operands",
            )
        wrt = self.wrt.data
        if not 0 <= wrt < n_inputs:
            op_error(self.name, f"wrt = {wrt} is out of range for {n_inputs} model input(s)")
        wrt_type = self.model_inputs[wrt].type
        if not isinstance(wrt_type, GeoValueType):
            op_error(
                self.name,
                f"differentiated input #{wrt} must be a !geo.point or !geo.tangent, "
                f"found {wrt_type}",
            )
        order = self._order()
        if order is not None and not 1 <= order <= MAX_ORDER:
            op_error(self.name, f"order must be from 1 to {MAX_ORDER}, found {order}")
        self._check_types(self._output_from_results(), "")
        self._verify_local()
        self._verify_callee()

    def _verify_local(self) -> None:
        """Extra op-specific checks that do not need the model."""

    def _verify_callee(self) -> None:
        """Check the op against the model's ``func.func`` when it can be looked up."""
        anchor = self.parent_op()
        while anchor is not None and not anchor.has_trait(SymbolTable):
            anchor = anchor.parent_op()
        if anchor is None:
            return
        from geomir.verify import lookup_symbol  # the module verifier's tables: one scan, not one per request

        model = lookup_symbol(self, self.callee)
        if model is None:
            op_error(self.name, f"unknown model {self.callee}")
        if not isinstance(model, FuncOp):
            op_error(self.name, f"{self.callee} is not a func.func (found {model.name})")
        takes = model.function_type.inputs.data
        given = tuple(v.type for v in self.model_inputs)
        if takes != given:
            op_error(
                self.name,
                f"{self.callee} takes {_types_text(takes)}, found operands {_types_text(given)}",
            )
        outputs = model.function_type.outputs.data
        if len(outputs) != 1 or not isinstance(outputs[0], GeoValueType):
            op_error(
                self.name,
                f"{self.callee} must return one !geo.point or !geo.tangent, "
                f"returns {_types_text(outputs)}",
            )
        self._check_types(outputs[0], f"; {self.callee} returns {outputs[0]}")

    # -- syntax

    @classmethod
    def parse(cls, parser: Parser):
        callee_pos = parser.pos
        callee = parser.parse_attribute()
        if not isinstance(callee, SymbolRefAttr):
            parser.raise_error(f"{cls.name} expects a model symbol like @f, found {callee}", callee_pos, parser.pos)
        operands = parser.parse_comma_separated_list(
            parser.Delimiter.PAREN, parser.parse_unresolved_operand
        )
        if cls.TRAILING:
            parser.parse_keyword(cls.TRAILING)
            operands.append(parser.parse_unresolved_operand())
        properties: dict[str, Attribute] = {"callee": callee}
        for name in cls.INT_PROPS:
            parser.parse_keyword(name)
            properties[name] = IntAttr(parser.parse_integer(allow_boolean=False))
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        types_pos = parser.pos
        types = parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_type)
        if cls.TRAILING:
            parser.parse_punctuation(",")
            types.append(parser.parse_type())
        parser.parse_punctuation("->")
        results_pos = parser.pos
        if parser.parse_optional_punctuation("(") is not None:
            result_types = parser.parse_comma_separated_list(
                parser.Delimiter.NONE, parser.parse_type
            )
            parser.parse_punctuation(")")
        else:
            result_types = [parser.parse_type()]
        n_results = len(cls.get_irdl_definition().results)
        if len(result_types) != n_results:
            parser.raise_error(
                f"{cls.name} has {n_results} result(s), found {len(result_types)} result types",
                results_pos,
                parser.pos,
            )
        values = parser.resolve_operands(operands, types, types_pos)
        return cls.build(
            operands=[values],
            result_types=result_types,
            properties=properties,
            attributes=attributes,
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.callee)
        with printer.in_parens():
            printer.print_list(self.model_inputs, printer.print_operand)
        if self.trailing is not None:
            printer.print_string(f" {self.TRAILING} ")
            printer.print_operand(self.trailing)
        for name in self.INT_PROPS:
            value = self.properties[name]
            assert isinstance(value, IntAttr)
            printer.print_string(f" {name} {value.data}")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        with printer.in_parens():
            printer.print_list((v.type for v in self.model_inputs), printer.print_attribute)
        if self.trailing is not None:
            printer.print_string(", ")
            printer.print_attribute(self.trailing.type)
        printer.print_string(" -> ")
        if len(self.results) == 1:
            printer.print_attribute(self.results[0].type)
        else:
            with printer.in_parens():
                printer.print_list(self.result_types, printer.print_attribute)


def _tangent_of(t: GeoValueType | None) -> TangentType | None:
    return None if t is None else t.tangent()


class _AlongOp(DerivativeOp, ABC):
    """Base of the requests taking a tangent ``direction`` of input ``wrt`` (``along %v``)."""

    TRAILING: ClassVar[str | None] = "along"

    @property
    def direction(self) -> SSAValue:
        """The tangent direction (of input ``wrt``)."""
        return self.inputs[-1]


@irdl_op_definition
class JvpOp(_AlongOp):
    """Jacobian-vector product: (model output, its derivative along ``direction``)."""

    name = "jet.jvp"

    primal = result_def(GeoValue)
    tangent = result_def(GeoValue)

    @classmethod
    def _expected_results(cls, output, wrt_type, order):
        return [
            (output, "the model output type"),
            (_tangent_of(output), "the tangent type of the model output"),
        ]

    def _output_from_results(self):
        return self.primal.type


@irdl_op_definition
class VjpOp(DerivativeOp):
    """Vector-Jacobian product: the pullback of ``cotangent`` to input ``wrt``."""

    name = "jet.vjp"
    TRAILING: ClassVar[str | None] = "cotangent"
    TRAILING_ROLE: ClassVar[str] = "cotangent"

    result = result_def(GeoValue)

    @property
    def cotangent(self) -> SSAValue:
        """The cotangent of the model output."""
        return self.inputs[-1]

    @classmethod
    def _expected_results(cls, output, wrt_type, order):
        return [(wrt_type.tangent(), "the tangent type of the differentiated input")]

    @classmethod
    def _expected_trailing(cls, output, wrt_type):
        return _tangent_of(output), "the tangent type of the model output"

    def _verify_local(self) -> None:
        if not isinstance(self.cotangent.type, TangentType):
            op_error(self.name, f"cotangent must be a !geo.tangent, found {self.cotangent.type}")


@irdl_op_definition
class HvpOp(_AlongOp):
    """Hessian-vector product of a scalar model along ``direction`` (tangent of input ``wrt``)."""

    name = "jet.hvp"

    result = result_def(GeoValue)

    @classmethod
    def _expected_results(cls, output, wrt_type, order):
        return [(wrt_type.tangent(), "the tangent type of the differentiated input")]


@irdl_op_definition
class GradOp(DerivativeOp):
    """Gradient of a scalar model (output of dimension 1) with respect to input ``wrt``,
    per batch row: the vector-Jacobian product with cotangent 1."""

    name = "jet.grad"

    result = result_def(GeoValue)

    @classmethod
    def _expected_results(cls, output, wrt_type, order):
        return [(wrt_type.tangent(), "the tangent type of the differentiated input")]

    def _check_types(self, output, context: str) -> None:
        super()._check_types(output, context)
        if output is not None and output.dim_value != 1:
            op_error(self.name, f"needs a scalar model (output of dimension 1){context}")


@irdl_op_definition
class DirectionalOp(_AlongOp):
    """Directional Taylor expansion: the order-K jet of the model along ``direction``."""

    name = "jet.directional"
    INT_PROPS: ClassVar[tuple[str, ...]] = ("wrt", "order")

    order = prop_def(IntAttr)
    result = result_def(JetType)

    def __init__(
        self,
        callee: str | SymbolRefAttr,
        operands: Sequence[Operation | SSAValue],
        wrt: int,
        result_types: Sequence[Attribute],
        order: int,
    ):
        super().__init__(callee, operands, wrt, result_types, order=order)

    @classmethod
    def _expected_results(cls, output, wrt_type, order):
        want = None if output is None or order is None else JetType(order, output)
        return [(want, f"a jet of order {order} over the model output type")]

    def _output_from_results(self):
        return self.result.type.base

    def _order(self) -> int:
        return self.order.data


class _OutputTypedOp(DerivativeOp, ABC):
    """Base of the differential operators whose result has the model output type."""

    result = result_def(GeoValue)

    @classmethod
    def _expected_results(cls, output, wrt_type, order):
        return [(output, "the model output type")]

    def _output_from_results(self):
        return self.result.type


@irdl_op_definition
class LaplacianOp(_OutputTypedOp):
    """Laplacian of the model with respect to input ``wrt`` (componentwise on the output)."""

    name = "jet.laplacian"


@irdl_op_definition
class BiharmonicOp(_OutputTypedOp):
    """Bi-Laplacian (Laplacian of the Laplacian) with respect to input ``wrt``."""

    name = "jet.biharmonic"


DERIVATIVE_OPS: dict[str, type[DerivativeOp]] = {
    op.name.split(".", 1)[1]: op
    for op in (JvpOp, VjpOp, HvpOp, GradOp, DirectionalOp, LaplacianOp, BiharmonicOp)
}
"""Mnemonic ("jvp") -> derivative request op class."""

Jet = Dialect(
    "jet",
    [
        SeedOp, CoeffOp, LiftOp, ApplyOp, LayerOp,
        CollapsedSeedOp, CollapsedLiftOp, TraceOp, StencilSeedOp, StencilSumOp,
        *DERIVATIVE_OPS.values(),
    ],
    [JetType, CollapsedType],
)
