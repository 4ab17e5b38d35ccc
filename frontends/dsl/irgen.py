"""Build the IR (a ``builtin.module`` of ``func.func`` ops) from a type-checked program.

Every op carries the source location of the token that produced it (``loc("f.geo":3:11)``,
printed with ``geomc --debug-info``), so passes can point diagnostics at the source.
Each model becomes ``func.func @Model`` with its contracts in the ``contracts`` attribute;
each layer's parameters are ``geo.param`` ops named ``<model>.<layer><k>.<role>``; a call
of another model is ``func.call`` (the callee owns its parameters, so calling a model
twice shares its weights). Each ``derive`` becomes a function holding one ``jet.*``
request op that the jet passes lower.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from xdsl.builder import Builder
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, StringAttr
from xdsl.ir import Attribute, BlockArgument, SSAValue
from xdsl.rewriter import InsertPoint

from geomir import input_names
from geomir.dialects import contract, geo, jet

from geomir.diagnostics import GeoTypeError, Span

from . import ast
from .common import program_depth, room_for
from .contracts import Equivariant, Lipschitz, Monotone
from .derive import DerivedSignature, JetValue
from .typecheck import weight_misuse
from .types import ScalarType, ValueType, WeightType

_DTYPES = {"f32": builtin.f32, "f64": builtin.f64, "f16": builtin.f16, "bf16": builtin.bf16}


def _manifold_attr(t: ValueType) -> Attribute:
    m = t.manifold
    return {
        "euclidean": lambda: geo.EuclideanAttr(),
        "poincare": lambda: geo.PoincareAttr(m.c),
        "lorentz": lambda: geo.LorentzAttr(m.c),
        "sphere": lambda: geo.SphereAttr(),
        "torus": lambda: geo.TorusAttr(m.units),
    }[m.kind]()


def ir_type(t: ValueType | JetValue) -> Attribute:
    """The IR type of a frontend type."""
    if isinstance(t, JetValue):
        return jet.JetType(t.order, ir_type(t.base))
    cls = geo.TangentType if t.tangent else geo.PathType if t.path else geo.PointType
    return cls(_manifold_attr(t), t.dim, _DTYPES[t.dtype])


def location(span: Span) -> FileLineColLoc:
    """The IR location of a source span (its first character)."""
    return FileLineColLoc(StringAttr(span.source.name), IntAttr(span.line), IntAttr(span.column))


def contract_attr(c) -> Attribute:
    if isinstance(c, Lipschitz):
        return contract.LipschitzAttr(c.bound, c.radius)
    if isinstance(c, Equivariant):
        return contract.EquivariantAttr(c.group)
    if isinstance(c, Monotone):
        return contract.MonotoneAttr(list(c.inputs), c.direction)
    raise TypeError(f"unknown contract {c!r}")


class Lowerer:
    """Emits the body of one model; the builtins' ``lower`` rules call into it."""

    def __init__(self, model: ast.ModelDef, builder: Builder):
        self.model = model
        self.builder = builder
        self.layers: Counter[str] = Counter()
        self.loc = location(model.name_span)
        self.binding: str | None = None  # the let being lowered, when its value is a param(...) call
        self.declared: set[str] = set()

    # -- used by builtin lowering rules
    def emit(self, op) -> SSAValue | None:
        """Insert ``op`` at the current source location; its first result, if any."""
        op.location = self.loc
        self.builder.insert(op)
        return op.results[0] if op.results else None

    ir_type = staticmethod(ir_type)

    @staticmethod
    def tensor_type(shape: tuple[int, ...], dtype: str) -> Attribute:
        return builtin.TensorType(_DTYPES[dtype], shape)

    def new_layer(self, kind: str) -> str:
        index = self.layers[kind]
        self.layers[kind] += 1
        return f"{kind}{index}"

    def named_param(self, type_: Attribute, init: str, call) -> SSAValue:
        """A declared parameter (``let W = param(...)``): ``<model>.<W>``."""
        name = self.binding or f"param{self.layers['param']}"
        if self.binding is None:
            self.layers["param"] += 1
        full = f"{self.model.name}.{name}"
        if full in self.declared:
            raise GeoTypeError(f"parameter '{name}' of model {self.model.name} is declared twice; "
                               "bind each param(...) to its own name", call.callee_span)
        self.declared.add(full)
        value = self.emit(geo.ParamOp(full, type_, init))
        return value

    def param(self, layer: str, role: str, type_: Attribute, init: str) -> SSAValue:
        value = self.emit(geo.ParamOp(f"{self.model.name}.{layer}.{role}", type_, init))
        value.name_hint = f"{layer}_{role}"
        return value

    # -- expressions
    def expr(self, e: ast.Expr, env: dict[str, object]) -> SSAValue:
        """Lower the operands first, then emit ``e``'s ops at ``e``'s location."""
        if isinstance(e, ast.Var):
            return env[e.name]
        if isinstance(e, ast.Neg):
            operands = [self.expr(e.operand, env)]
        elif isinstance(e, ast.BinOp):
            operands = [self.expr(x, env) for x in (e.lhs, e.rhs) if not isinstance(x.type, ScalarType)]
        elif isinstance(e, ast.Call):
            operands = [self.expr(a.value, env) for a in e.args if isinstance(a, ast.Positional) and not isinstance(a.value.type, ScalarType)]
        else:
            raise AssertionError(f"cannot lower {e!r}")
        self.loc = location(e.op_span if isinstance(e, ast.BinOp) else e.callee_span if isinstance(e, ast.Call) else e.span)
        if isinstance(e, ast.Neg):
            return self.emit(geo.NegOp(operands[0]))
        if isinstance(e, ast.BinOp):
            return self._binop(e, operands)
        if isinstance(e.target, ast.ModelDef):
            return self.emit(func.CallOp(e.target.name, operands, [ir_type(e.target.result_type)]))
        return e.target.lower(self, e, operands)

    def _binop(self, e: ast.BinOp, operands: list[SSAValue]) -> SSAValue:
        lhs, rhs = e.lhs.type, e.rhs.type
        if isinstance(lhs, ScalarType) or isinstance(rhs, ScalarType):
            factor = (lhs if isinstance(lhs, ScalarType) else rhs).value
            if e.op == "/":
                factor = 1.0 / factor
            return self.emit(geo.ScaleOp(operands[0], factor))
        op = geo.BINARY_OPS[{"+": "add", "-": "sub", "*": "mul", "/": "div"}[e.op]]
        return self.emit(op(*operands))


def name_hint(name: str) -> str | None:
    """An SSA name hint for a value named ``name``: the name itself where xDSL takes it
    (``Wé``: geomir.ir prints it without accents, ``%We``), else its ASCII letters (``ä``, a
    traced Python name, -> ``a``), else None (printed as a number). A hint is only a hint:
    the module is the same."""
    if BlockArgument.is_valid_name(name):
        return name
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return ascii_only if ascii_only and BlockArgument.is_valid_name(ascii_only) else None


def _check_result(model: ast.ModelDef) -> None:
    """A traced function may return a declared parameter: a located error, as in .geo."""
    if not isinstance(model.result_type, WeightType):
        return
    ret = next(s for s in model.body if isinstance(s, ast.Return))
    raise weight_misuse(model.result_type, f"model {model.name} must return a point or vector", ret.value.span)


def _model_func(model: ast.ModelDef) -> func.FuncOp:
    _check_result(model)
    f = func.FuncOp(model.name, ([ir_type(p.type) for p in model.params], [ir_type(model.result_type)]))
    f.location = location(model.name_span)
    block = f.body.block
    env: dict[str, object] = {}
    input_names.name_inputs(f, [param.name for param in model.params], name_hint)
    for param, arg in zip(model.params, block.args):
        arg.location = location(param.name_span)
        env[param.name] = arg
    lw = Lowerer(model, Builder(InsertPoint.at_end(block)))
    for stmt in model.body:
        if isinstance(stmt, ast.Let):
            if isinstance(stmt.value.type, ScalarType):
                env[stmt.name] = None  # folded: uses read the constant from the type
                continue
            direct = isinstance(stmt.value, ast.Call) and stmt.value.callee == "param"
            lw.binding = stmt.name if direct else None
            value = lw.expr(stmt.value, env)
            lw.binding = None
            if not isinstance(value, BlockArgument) and not any(value is v for v in env.values()):
                value.name_hint = name_hint(stmt.name)  # `let a = x` keeps the input's (or earlier let's) name
            env[stmt.name] = value
        else:
            value = lw.expr(stmt.value, env)
            lw.loc = location(stmt.span)
            lw.emit(func.ReturnOp(value))
            break
    if model.annotations:
        f.attributes[contract.CONTRACT_ATTR_NAME] = builtin.ArrayAttr([contract_attr(a.contract) for a in model.annotations])
    return f


_REQUESTS = {
    "jvp": jet.JvpOp,
    "vjp": jet.VjpOp,
    "hvp": jet.HvpOp,
    "grad": jet.GradOp,
    "directional": jet.DirectionalOp,
    "laplacian": jet.LaplacianOp,
    "biharmonic": jet.BiharmonicOp,
}


def _derived_func(decl: ast.DeriveDecl) -> func.FuncOp:
    sig: DerivedSignature = decl.signature
    result_types = [ir_type(t) for t in sig.results]
    f = func.FuncOp(decl.name, ([ir_type(t) for _, t in sig.inputs], result_types))
    f.location = location(decl.name_span)
    block = f.body.block
    input_names.name_inputs(f, [name for name, _ in sig.inputs], name_hint)
    for arg in block.args:
        arg.location = location(decl.name_span)
    cls = _REQUESTS[sig.op]
    kwargs = {"order": sig.order} if sig.order is not None else {}
    request = cls(sig.model.name, list(block.args), sig.wrt, result_types, **kwargs)
    ret = func.ReturnOp(*request.results)
    request.location = ret.location = location(decl.op_span)
    block.add_ops([request, ret])
    return f


def build_module(program: ast.Program) -> builtin.ModuleOp:
    """The IR of a type-checked program, models then derived functions in source order."""
    ops = []
    with room_for(program_depth(program)):  # Lowerer.expr recurses once per level
        for item in program.items:
            if isinstance(item, ast.ModelDef):
                ops.append(_model_func(item))
            elif isinstance(item, ast.DeriveDecl):
                ops.append(_derived_func(item))
    return builtin.ModuleOp(ops)
