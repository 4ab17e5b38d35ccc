"""Derivatives and jets from Python: the categorical API.

A model ``f`` (a ``@geomir.trace`` function) is a smooth map between spaces. Its
differential acts on jets (truncated Taylor series of curves) and on covectors:

===========================================  =============================================
``lift_to_jet(x, order=K, direction=v)``     the K-jet of the line t -> x + t v
``push_forward(f, jet)``                     the K-jet of f o gamma, gamma the jet's curve
                                             (Taylor mode: one pass of the model on jets)
``pull_back(f, x, covector)``                the covector w o Df(x) at x (the VJP)
``parallel_transport(v, x, y, space=H)``     v (tangent at x) carried to y along the geodesic
``jvp(f, x, v)``                             (f(x), Df(x) v)
``vjp(f, x, w)``                             (f(x), w o Df(x))
``hvp(f, x, v)``                             the Hessian of a scalar f times v
``laplacian(f, x)``                          the trace of the Hessian (the collapsed jet)
===========================================  =============================================

A :class:`Jet` holds its coefficients in the **derivative** convention of
``jax.experimental.jet``: ``coefficients[k]`` is d^k/dt^k gamma(0), shape (K+1, *batch, n).
The functions run the model's generated code on the arrays' own framework (torch tensors
through the torch backend, JAX arrays through the JAX backend): each request is IR (a
``jet.*`` request or, for ``push_forward``, the model's body evaluated on a jet argument)
lowered by the passes and compiled once per model, kind and order.

Each request fits the model by the rules of .geo's ``derive`` (frontends/dsl/derive.py),
in its words: ``hvp`` and ``laplacian`` need a Euclidean input ``wrt`` and a Euclidean
output (the Hessian of a curved input's coordinates is not the manifold's), ``hvp`` a
scalar output; else a UsageError. No request takes a model with path inputs (a
UsageError that names the request: ``jvp of f: derivatives of models with path inputs``).

``params`` is the model's parameter dict (``f.compile(target).init_params(seed)``, or
trained ones); by default the seed-0 parameters in the inputs' dtype. Other model inputs
than the differentiated one (``wrt``) are passed after it, in order: ``push_forward(f,
jet, y)`` for ``f(x, y)``.

Laws (tests/trace/test_categorical_laws.py, float64, torch and JAX): push_forward is a
functor, ``push_forward(f o h) = push_forward(f) o push_forward(h)`` on any jet;
pull_back is its adjoint, ``<pull_back(f, x, w), v> = <w, Df(x) v>``; transport composes
along a geodesic and keeps the metric.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from geomir.diagnostics import UsageError
from geomir.dialects import jet

class JetError(UsageError, ValueError):
    """A jet that the API cannot use (its coefficients' shape, its order)."""


PREPARE = ("insert-transport",)  # the model as the default pipeline runs it: base points agree
PASSES = ("jet-expand", "jet-fuse", "cse", "dce")  # then the request is lowered


@dataclass
class Jet:
    """A K-jet of a curve: ``coefficients[k] = d^k/dt^k gamma(0)``, shape (K+1, *batch, n)."""

    coefficients: object

    def __post_init__(self):
        shape = getattr(self.coefficients, "shape", None)
        if shape is None or len(shape) < 2:
            found = f"shape {tuple(shape)}" if shape is not None else f"a {type(self.coefficients).__name__}"
            raise JetError(f"a Jet's coefficients are an array of shape (K+1, *batch, n); found {found}")

    @property
    def order(self) -> int:
        return self.coefficients.shape[0] - 1

    @property
    def value(self):
        return self.coefficients[0]

    def __getitem__(self, k: int):
        return self.coefficients[k]

    def __repr__(self) -> str:
        return f"Jet(order={self.order}, shape={tuple(self.coefficients.shape[1:])})"


# -- arrays and backends --------------------------------------------------------------------------


def _framework_of(x) -> str | None:
    """"torch", "jax", or None for any other array (NumPy, a list)."""
    module = type(x).__module__.split(".")[0]
    return "torch" if module == "torch" else "jax" if module in ("jax", "jaxlib") else None


def _framework(x) -> str:
    framework = _framework_of(x)
    if framework is None:
        raise UsageError(f"expected a torch tensor or a JAX array, found {type(x).__name__}")
    return framework


def _stack(xs, framework: str):
    if framework == "torch":
        import torch

        return torch.stack(xs)
    import jax.numpy as jnp

    return jnp.stack(xs)


def _taylor(framework: str):
    if framework == "torch":
        from geomir.backends.torch import taylor
    else:
        from geomir.backends.jax import taylor
    return taylor


def _runtime(framework: str):
    if framework == "torch":
        from geomir.backends.torch import runtime
    else:
        from geomir.backends.jax import runtime
    return runtime


# -- requests compiled per model -----------------------------------------------------------------


def _model(f):
    from geomir.frontends.trace import TracedFunction

    if not isinstance(f, TracedFunction):
        raise UsageError(f"expected a model traced with @geomir.trace, found {type(f).__name__}")
    return f


def _request(f, kind: str, framework: str, wrt: int, order: int = 1):
    """The compiled module holding ``f``'s request function for ``kind``; (module, name)."""
    cache = f.__dict__.setdefault("_geomir_requests", {})
    key = (kind, framework, wrt, order)
    if key not in cache:
        inputs = [p.type for p in f.model.params]  # the frontend's ValueTypes
        if isinstance(wrt, bool) or not isinstance(wrt, numbers.Integral) or not 0 <= wrt < len(inputs):
            raise UsageError(f"wrt={wrt!r}: {f.name} has {len(inputs)} input(s)")
        if any(t.path for t in inputs):  # derive's rule too, in words that name the API's request
            raise UsageError(f"{_API_NAME.get(kind, kind)} of {f.name}: derivatives of models with path inputs "
                             "(!geo.path) are not supported (winding numbers are locally constant)")
        _check_fits(f, kind, wrt)
        name = f"{f.name}__{kind}_wrt{wrt}" + (f"_order{order}" if kind == "push" else "")
        cache[key] = _compile_request(f, kind, wrt, order, name, framework)
    return cache[key]


# Each request as the .geo ``derive`` op whose rule it follows, and the name the API shows.
_DERIVE_OP = {"push": "directional", "jvp": "jvp", "vjp": "vjp", "hvp": "hvp", "laplacian": "laplacian"}
_API_NAME = {"push": "push_forward"}


def _check_fits(f, kind: str, wrt: int) -> None:
    """The model fits request ``kind`` by the rules of .geo's ``derive`` (the type checker's
    frontends/dsl/derive.py ``check_derive``, run on the request as a ``derive`` line would
    state it), else a UsageError in its words: a laplacian or hvp needs a Euclidean input
    and output (not the coordinate Hessian of a curved input), hvp a scalar output (and no
    request takes a model with path inputs, refused before in the API's own words). The jet order is the API's own (1 to
    jet.MAX_ORDER, checked by push_forward), so the rule is asked with order 1."""
    from geomir.diagnostics import SourceError
    from geomir.frontends.dsl import ast
    from geomir.frontends.dsl.derive import check_derive

    op = _DERIVE_OP[kind]
    span = f.model.span
    args = [ast.Positional(span, ast.Var(span, f.model.name)),
            ast.Keyword(span, "wrt", ast.Var(span, f.model.params[wrt].name), span)]
    if op == "directional":
        args.append(ast.Keyword(span, "order", ast.Number(span, 1.0, True), span))
    try:
        check_derive(ast.DeriveDecl(span, f"{f.name}__{kind}", span, op, span, args), {f.model.name: f.model}, {})
    except SourceError as e:
        message = e.message
        shown = _API_NAME.get(kind, op)
        if shown != op and message.startswith(op):
            message = shown + message[len(op):]
        raise UsageError(message) from None


def _compile_request(f, kind, wrt, order, name, framework):
    """Every request is built on the model after insert-transport (as ``derive`` is in
    .geo), then lowered by the jet passes: push_forward sees the same body as jvp.
    (module, the request's name: ``name``, or ``name_1``... where a traced model has it)."""
    from geomir.compiler import compile_module
    from geomir.passes.jet_expand import fresh_symbol
    from geomir.pipeline import run_pipeline

    module = run_pipeline(f.module, PREPARE)
    funcs = {o.sym_name.data: o for o in module.ops if isinstance(o, func.FuncOp)}
    model = funcs[f.name]
    inputs = list(model.function_type.inputs.data)
    name = fresh_symbol(name, funcs, module)
    module.body.block.add_op(_BUILDERS[kind](model, funcs, inputs, wrt, order, name))
    return compile_module(run_pipeline(module, PASSES), framework, f.model.span.source.name), name


def _push_builder(model, funcs, inputs, wrt, order, name):
    from geomir.passes.jet_expand import _Emitter, expand_to_jet

    types = list(inputs)
    types[wrt] = jet.JetType(order, inputs[wrt])
    block = Block(arg_types=types)
    emit = _Emitter(InsertPoint.at_end(block), model.location)
    result = expand_to_jet(model.sym_name.data, list(block.args), lambda v: jet.LiftOp(v, order), funcs, emit)
    emit(func.ReturnOp(result))
    (output,) = model.function_type.outputs.data
    return func.FuncOp(name, (types, [jet.JetType(order, output)]), Region(block), "private")


def _derivative_builder(op_class, trailing):
    def build(model, funcs, inputs, wrt, order, name):
        extra = [trailing(inputs[wrt], model)] if trailing else []
        block = Block(arg_types=[*inputs, *extra])
        request = op_class.for_model(model, list(block.args), wrt=wrt)
        block.add_ops([request, func.ReturnOp(*request.results)])
        return func.FuncOp(name, ([*inputs, *extra], list(request.result_types)), Region(block), "private")

    return build


_BUILDERS = {
    "push": _push_builder,
    "jvp": _derivative_builder(jet.JvpOp, lambda t, m: t.tangent()),
    "vjp": _derivative_builder(jet.VjpOp, lambda t, m: m.function_type.outputs.data[0].tangent()),
    "hvp": _derivative_builder(jet.HvpOp, lambda t, m: t.tangent()),
    "laplacian": _derivative_builder(jet.LaplacianOp, None),
}


def _floating(x) -> bool:
    if _framework(x) == "torch":
        return x.dtype.is_floating_point
    import jax.numpy as jnp

    return bool(jnp.issubdtype(x.dtype, jnp.floating))  # bfloat16 included


def _params(f, kind, module, params, like):
    """``params``, else the seed-0 parameters in ``like``'s dtype; in the model's declared
    dtypes where ``like`` is not floating, so that the model's own check then names the
    input and says it needs a floating dtype. init_params' own refusals (a float64
    parameter on JAX without x64) are UsageErrors too."""
    from geomir.backends.common.autodiff import ModelInputError

    if params is not None:
        return params
    try:
        return module.init_params(0, like.dtype) if _floating(like) else module.init_params(0)
    except ModelInputError as e:
        raise UsageError(f"{kind} of {f.name}: {e}") from None


def _check_arrays(f, kind, module, params, x, args, trailing, api=None) -> None:
    """The direction has x's shape, and the model's own per-call check (the generated
    module's: parameters, shapes, dtypes) accepts params and args, else a clear error, not
    the framework's from inside the generated code. A request function is private, so not
    checked itself."""
    from geomir.backends.common.autodiff import ModelInputError

    shown = api or _API_NAME.get(kind, kind)
    if trailing:  # the direction (jvp, hvp) or the covector (vjp): an array of x's framework and dtype
        what = "covector" if kind == "vjp" else "direction"
        t = trailing[0]
        framework = _framework(x)
        if _framework_of(t) != framework:
            point = "a torch tensor" if framework == "torch" else "a JAX array"
            raise UsageError(f"{shown} of {f.name}: the {what} is a {type(t).__module__.split('.')[0]}."
                             f"{type(t).__name__}, the point {point}: give both in one framework")
        if _floating(x) and t.dtype != x.dtype:  # an integer point: the model's check says so below
            raise UsageError(f"{shown} of {f.name}: the {what} has dtype {t.dtype}, the point {x.dtype}")
    if kind in ("jvp", "hvp") and tuple(trailing[0].shape) != tuple(x.shape):
        raise UsageError(f"{shown} of {f.name}: the direction has shape {tuple(trailing[0].shape)}, "
                         f"the point {tuple(x.shape)}")
    check = getattr(getattr(module, f.name, None), "check", None)
    if check is None:
        return
    try:
        checked = check(params, args)
    except ModelInputError as e:
        raise UsageError(f"{shown} of {e}") from None
    if kind == "vjp":
        covector = trailing[0]
        want = (*tuple(checked[0].shape[:-1]), f.model.result_type.dim)  # the inputs' common batch
        if tuple(covector.shape) != want:
            raise UsageError(f"{shown} of {f.name}: the covector has shape {tuple(covector.shape)}, the output {want}")


def _call(f, kind, x, others, params, wrt, order=1, trailing=(), value=False, api=None):
    """Run ``f``'s request ``kind``; with ``value``, also ``f`` itself: (f(x), result).
    ``api``: the function's name in messages (default: the request's)."""
    framework = _framework(x)
    module, name = _request(_model(f), kind, framework, wrt, order)
    args = [*others[:wrt], x, *others[wrt:]]
    point = x if kind != "push" else x[0]  # a jet's coefficients: the point is the first
    p = _params(f, kind, module, params, point)
    _check_arrays(f, kind, module, p, x, [*others[:wrt], point, *others[wrt:]], trailing, api)
    result = getattr(module, name)(p, *args, *trailing)
    return (getattr(module, f.name)(p, *args), result) if value else result


# -- the API ---------------------------------------------------------------------------------------


def lift_to_jet(x, order: int, direction) -> Jet:
    """The ``order``-jet of t -> x + t v: coefficients (x, v, 0, ..., 0)."""
    from geomir.dialects.jet import MAX_ORDER

    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise UsageError(f"order must be an integer from 1 to {MAX_ORDER}, found {order!r}")
    framework = _framework(x)
    if tuple(direction.shape) != tuple(x.shape):
        raise UsageError(f"the direction has shape {tuple(direction.shape)}, the point {tuple(x.shape)}")
    zero = direction * 0
    return Jet(_stack([x, direction, *([zero] * (order - 1))], framework))


def push_forward(f, jet_in: Jet, *others, params=None, wrt: int = 0) -> Jet:
    """The jet of f o gamma for the jet of gamma (any coefficients, not only a line)."""
    if not isinstance(jet_in, Jet):
        raise UsageError(f"push_forward takes a Jet (see lift_to_jet), found {type(jet_in).__name__}")
    from geomir.dialects.jet import MAX_ORDER

    if not 1 <= jet_in.order <= MAX_ORDER:
        raise JetError(f"push_forward needs a jet of order 1 to {MAX_ORDER} (coefficients of shape (K+1, *batch, n)); "
                       f"found order {jet_in.order} (shape {tuple(jet_in.coefficients.shape)})")
    framework = _framework(jet_in.coefficients)
    if not _floating(jet_in.coefficients):  # from_derivatives would make default-dtype floats of it
        raise UsageError(f"push_forward of {getattr(f, 'name', f)}: the jet needs a floating dtype, found "
                         f"{jet_in.coefficients.dtype}")
    taylor = _taylor(framework)
    normalized = taylor.from_derivatives(jet_in.coefficients)
    out = _call(f, "push", normalized, others, params, wrt, jet_in.order)
    return Jet(out)  # the generated code returns the derivative convention


def pull_back(f, x, covector, *others, params=None, wrt: int = 0):
    """The covector ``w o Df(x)`` at x (the vector-Jacobian product)."""
    return _call(f, "vjp", x, others, params, wrt, trailing=(covector,), api="pull_back")


def jvp(f, x, v, *others, params=None, wrt: int = 0):
    """``(f(x), Df(x) v)``."""
    return tuple(_call(f, "jvp", x, others, params, wrt, trailing=(v,)))


def vjp(f, x, w, *others, params=None, wrt: int = 0):
    """``(f(x), w o Df(x))``."""
    return _call(f, "vjp", x, others, params, wrt, trailing=(w,), value=True)


def hvp(f, x, v, *others, params=None, wrt: int = 0):
    """The Hessian of a scalar model (output R[1]) at x times v."""
    return _call(f, "hvp", x, others, params, wrt, trailing=(v,))


def laplacian(f, x, *others, params=None, wrt: int = 0):
    """The Laplacian (trace of the Hessian) of each output coordinate at x."""
    return _call(f, "laplacian", x, others, params, wrt)


def parallel_transport(v, x, y, space):
    """``v`` (tangent at x) carried to y along the geodesic of ``space`` (a geomir space,
    ``geomir.PoincareBall(c=1.0)``); torch or JAX arrays."""
    from geomir.frontends.dsl.irgen import _manifold_attr
    from geomir.frontends.dsl.types import ValueType
    from geomir.frontends.trace.api import Space
    from geomir.jet_report import runtime_manifold

    if not isinstance(space, Space):
        raise UsageError(f"space must be a geomir space such as geomir.PoincareBall(c=1.0), found {space!r}")
    framework = _framework(v)
    attr = _manifold_attr(ValueType(space.manifold, 1))
    manifold = runtime_manifold(attr, _runtime(framework))
    return manifold.transp(x, y, v)


__all__ = ["Jet", "JetError", "hvp", "jvp", "laplacian", "lift_to_jet", "parallel_transport", "pull_back", "push_forward", "vjp"]
