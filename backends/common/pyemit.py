"""IR -> Python source, shared by the PyTorch and JAX backends.

The two backends are the same functor of the IR: one table maps each op to a Python
expression over the backend's runtime (manifold objects with one API, see
backends/common/manifolds.py) and a :class:`Flavor` supplies the few spellings that differ
(``torch.tanh`` vs ``jnp.tanh``, module header, model wrapper). The emitted module is
standalone apart from the backend's runtime, readable and deterministic:

    MANIFOLDS              one runtime object per manifold used (``poincare_c1 = ...``)
    PARAMS                 name -> ParamSpec(shape, init, manifold, dtype[, weight transforms])
    FUNCTION_PARAMS        function -> the parameter names it reads (transitively)
    CONTRACTS              function -> its declared contracts and those verify-contracts proved
    def Model(params, x)   the plain function form, one line per op
    class ModelModule      the framework's module form (backend-specific)

Needs: a verified module of ``func.func`` ops. Derivative requests (``jet.*``) are emitted
as calls of the backend's autodiff reference (``derivatives.<op>``) until the jet passes
lower them.
"""

from __future__ import annotations

import keyword
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from xdsl.dialects import builtin, func
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.traits import SymbolTable

from geomir import input_names
from geomir.backends.common import weights
from geomir.diagnostics import UsageError, file_location, location_text
from geomir.dialects import contract, geo, jet
from geomir.dialects.geo import ManifoldAttr

# --- naming ------------------------------------------------------------------------


MANIFOLD_VAR = re.compile(r"(euclidean|sphere|torus_radians|torus_turns|(poincare|lorentz)_c[0-9][0-9a-z_]*)(_jet|_lap)?")
"""Every name :func:`manifold_var` and :func:`jet_manifold_var` give a manifold object."""


def _docstring_text(name: str) -> str:
    """``name`` (a file path: any characters, undecodable bytes as surrogates) as text inside a
    triple-quoted docstring: backslashes, quotes and surrogates escaped (a path holding ``\\x1``
    or three quotes made the generated module a SyntaxError)."""
    text = name.replace("\\", "\\\\").replace('"', '\\"')
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def manifold_var(m: ManifoldAttr) -> str:
    """A readable, deterministic Python name for a manifold object."""
    if isinstance(m, geo.EuclideanAttr):
        return "euclidean"
    if isinstance(m, geo.SphereAttr):
        return "sphere"
    if isinstance(m, geo.TorusAttr):
        return f"torus_{m.units.data}"
    c = repr(float(m.c.value.data)).replace(".", "_").replace("-", "m").replace("+", "")
    c = c[:-2] if c.endswith("_0") else c
    return f"{m.kind}_c{c}"


def weight_transforms(op: geo.ParamOp) -> tuple[str, ...]:
    """The weight transforms recorded on a ``geo.param`` (quantize-weights, prune-weights)."""
    attr = op.attributes.get(weights.ATTR_NAME)
    return tuple(a.data for a in attr.data) if attr is not None else ()


def manifold_ctor(m: ManifoldAttr) -> str:
    """The runtime constructor call building ``m``."""
    if isinstance(m, geo.EuclideanAttr):
        return "runtime.Euclidean()"
    if isinstance(m, geo.SphereAttr):
        return "runtime.Sphere()"
    if isinstance(m, geo.TorusAttr):
        return "runtime.Torus(period=2 * math.pi)" if m.units.data == "radians" else "runtime.Torus(period=1.0)"
    cls = "PoincareBall" if isinstance(m, geo.PoincareAttr) else "Lorentz"
    return f"runtime.{cls}(c={float(m.c.value.data)!r})"


def py_name(hint: str | None, fallback: str) -> str:
    """A Python identifier for ``hint``: its characters that may continue an identifier
    (``é`` too: inputs are passed by these names), the others ``_``; NFKC-normalised, as
    Python stores identifiers."""
    name = "".join(ch if f"_{ch}".isidentifier() else "_" for ch in unicodedata.normalize("NFKC", hint)) if hint else fallback
    if not name or name[0].isdigit() or keyword.iskeyword(name) or name in ("params", "math"):
        name = f"v_{name}"
    return name


class Names:
    """SSA value -> unique local Python name (from the IR's name hints where possible)."""

    def __init__(self, reserved: set[str]):
        self.taken = set(reserved)
        self.names: dict[SSAValue, str] = {}
        self.counter = 0

    def __getitem__(self, value: SSAValue) -> str:
        return self.names[value]

    def define(self, value: SSAValue, name: str | None = None) -> str:
        """A local name for ``value``: from ``name`` (an input's source name) or its hint."""
        if name or value.name_hint:
            base = py_name(name or value.name_hint, "")
        else:
            base, self.counter = f"v{self.counter}", self.counter + 1
        self.names[value] = self.fresh(base)
        return self.names[value]

    def fresh(self, base: str) -> str:
        """A new local name from ``base`` (a value the IR does not name, e.g. a lifted jet)."""
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def alias(self, value: SSAValue, of: SSAValue) -> None:
        """``value`` is spelled as ``of`` (an op that returns its operand unchanged)."""
        self.names[value] = self.names[of]


# --- flavors ---------------------------------------------------------------------------


def checked_model(name: str, f: func.FuncOp, args: list[str], dtype_name: Callable[[Attribute], str]) -> list[str]:
    """``name = model.checked(name, ...)``: the model checks its params and inputs per call
    (shape, dtype, missing parameters; backends/common/autodiff.check_call). ``args``: the
    inputs' Python names in the generated function (what a call passes by keyword)."""
    specs = []
    for a, arg in zip(f.body.block.args, args):
        t = a.type
        if isinstance(t, (geo.GeoValueType, geo.PathType)):
            path = isinstance(t, geo.PathType)
            specs.append(f"model.InputSpec({arg!r}, {t.dim_value}, {dtype_name(t.element_type)}, "
                         f"{path}, {str(t)!r})")
    if len(specs) != len(f.body.block.args):  # inputs of other types (.mlir tensors): not checked
        return []
    return [f"{name} = model.checked({name}, FUNCTION_PARAMS[{name!r}], ({''.join(s + ', ' for s in specs)}))"]


@dataclass
class Fused:
    """A group of ops emitted as ONE call (a kernel launch): the results of ``ops[-1]`` are
    ``call(names of inputs)``; the other ops of the group are not emitted (their values
    have no use outside the group). ``info`` describes the launch for the module's tables."""

    ops: list[Operation]
    inputs: list[SSAValue]
    call: Callable[[list[str]], str]
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Flavor:
    """What differs between backends: function spellings and the module's frame."""

    target: str
    elementwise: dict[str, str]  # geo op name -> callable spelling, e.g. "torch.tanh"
    header: Callable[[str], list[str]]  # source name -> import lines
    dtype_name: Callable[[Attribute], str]  # IR element type -> dtype expression
    model_class: Callable[[str, func.FuncOp], list[str]] | None = None
    footer: list[str] = field(default_factory=list)
    # Kernel selection (triton): a function's op groups emitted as one call each, and the
    # module-level lines describing all of them ((function name, group) pairs).
    fuse: Callable[[func.FuncOp], list[Fused]] | None = None
    fused_table: Callable[[list[tuple[str, Fused]]], list[str]] | None = None
    # statements that open every generated function's body (triton: check PRECISION)
    prologue: list[str] = field(default_factory=list)


# --- op table --------------------------------------------------------------------------


def _m(value: SSAValue) -> str:
    return manifold_var(value.type.manifold)


def _manifold_call(method: str, manifold_of: int = 0):
    """``<manifold>.<method>(operands...)`` with the manifold of operand ``manifold_of``."""

    def emit(op: Operation, args: list[str], flavor: Flavor) -> str:
        return f"{_m(op.operands[manifold_of])}.{method}({', '.join(args)})"

    return emit


def _exponent(p: float) -> float | int:
    """An integral exponent as a Python int: JAX then uses integer_pow, whose derivatives are
    exact polynomials (x ** 2.0 has a NaN third derivative at 0: 0 * 0^-1), and torch the
    same x * x. Others (and |p| >= 2^31) stay floats."""
    return int(p) if float(p).is_integer() and abs(p) < 2**31 else p


def _jet_coeff(op: Operation, jet_name: str) -> str:
    """Coefficient k of a jet in the derivative convention: ``x[k] * k!`` for a runtime jet
    (normalized coefficients), only the one coefficient scaled (``to_derivatives(x)[k]``
    would scale all K+1); ``x[k]`` for a jet made by the autodiff reference
    (``derivatives.directional``), which is in the derivative convention already."""
    k = op.index.data
    if k <= 1 or not _made_by_jet_ops(op.operands[0]):
        return f"{jet_name}[{k}]"
    return f"{jet_name}[{k}] * {float(math.factorial(k))!r}"


def _infix(symbol: str):
    return lambda op, a, f: f"{a[0]} {symbol} {a[1]}"


def _elementwise(op: Operation, args: list[str], flavor: Flavor) -> str:
    return f"{flavor.elementwise[op.name]}({args[0]})"


OP_RULES: dict[str, Callable[[Operation, list[str], Flavor], str]] = {
    "geo.expmap": _manifold_call("expmap"),
    "geo.logmap": _manifold_call("logmap"),
    "geo.expmap0": _manifold_call("expmap0"),
    "geo.logmap0": _manifold_call("logmap0"),
    "geo.dist": _manifold_call("dist"),
    "geo.proj": _manifold_call("proj"),
    "geo.parallel_transport": _manifold_call("transp"),
    "geo.mobius_add": _manifold_call("mobius_add"),
    "geo.mobius_scalar": _manifold_call("mobius_scalar", manifold_of=1),
    "geo.mobius_matvec": _manifold_call("mobius_matvec", manifold_of=1),
    "geo.origin": _manifold_call("origin_like"),
    "geo.holonomy": lambda op, a, f: f"{_m(op.operands[0])}.holonomy([{', '.join(a[:-1])}], {a[-1]})",
    "geo.holonomy_angle": lambda op, a, f: f"{_m(op.operands[0])}.holonomy_angle([{', '.join(a[:-1])}], {a[-1]})",
    "geo.coords": lambda op, a, f: a[0],
    # paths on a torus, shape (..., T, n): winding numbers (geomir.backends.common.winding)
    "geo.unwrap": _manifold_call("displacement"),
    "geo.winding": _manifold_call("winding"),
    "geo.winding_margin": _manifold_call("winding_margin"),
    "geo.endpoint": lambda op, a, f: f"{_m(op.operands[0])}.proj({a[0]}[..., -1, :])",
    "geo.linear": lambda op, a, f: f"{a[0]} @ {a[1]}.T",
    "geo.bias": _infix("+"),
    "geo.add": _infix("+"),
    "geo.sub": _infix("-"),
    "geo.mul": _infix("*"),
    "geo.div": _infix("/"),
    "geo.neg": lambda op, a, f: f"-{a[0]}",
    "geo.scale": lambda op, a, f: f"{a[0]} * {op.factor.value.data!r}",
    "geo.pow": lambda op, a, f: f"{a[0]} ** {_exponent(op.exponent.value.data)!r}",
    # Jets: the runtime keeps normalized coefficients x^(k)/k!; the IR's (and the user's)
    # convention is derivatives, identical for k <= 1, so only coeff k >= 2 converts.
    "jet.seed": lambda op, a, f: f"taylor.seed({a[0]}, {a[1]}, {op.order.data})",
    "jet.lift": lambda op, a, f: f"taylor.constant({a[0]}, {op.order.data})",
    "jet.coeff": lambda op, a, f: _jet_coeff(op, a[0]),
    "jet.apply": lambda op, a, f: _jet_apply(op, a),
    "jet.layer": lambda op, a, f: f"taylor.layer({', '.join(a)}"
    + (f", activation={op.activation.data!r})" if op.activation is not None else ")"),
    "jet.collapsed_seed": lambda op, a, f: f"taylor.laplacian_seed({a[0]})",
    "jet.collapsed_lift": lambda op, a, f: f"taylor.laplacian_constant({a[0]})",
    "jet.trace": lambda op, a, f: f"taylor.laplacian_of({a[0]})",
    "jet.stencil_seed": lambda op, a, f: f"taylor.stencil_seed({a[0]}, {op.stencil.data!r})",
    "jet.stencil_sum": lambda op, a, f: f"taylor.stencil_sum({a[0]}, {op.stencil.data!r})",
}

# jet.apply primitives that are manifold maps: (method of the jet manifold, operand whose
# manifold it is). Operands that stay plain arrays in the rule (weights, biases).
_JET_MAPS = {
    "expmap": ("expmap", 0), "logmap": ("logmap", 0), "expmap0": ("expmap0", 0),
    "logmap0": ("logmap0", 0), "dist": ("dist", 0), "proj": ("proj", 0),
    "parallel_transport": ("transp", 0), "mobius_add": ("mobius_add", 0),
    "mobius_scalar": ("mobius_scalar", 1), "mobius_matvec": ("mobius_matvec", 1),
    "holonomy": ("holonomy", 0), "holonomy_angle": ("holonomy_angle", 0), "origin": ("origin_like", 0),
}
_PLAIN_OPERANDS = {"linear": {1}, "bias": {1}, "mobius_matvec": {0}}
_PLAIN_FORMS = {"add": ("add_plain", "add_plain"), "mul": ("mul_plain", "mul_plain"),
                "sub": ("sub_plain", "rsub_plain"), "div": ("div_plain", None)}
"""``taylor.PLAIN_FORMS`` (backends/common/taylor.py; this module does not import the runtime)."""
_JET_MANIFOLDS = (geo.EuclideanAttr, geo.PoincareAttr, geo.TorusAttr, geo.SphereAttr, geo.LorentzAttr)


def jet_manifold_var(m: ManifoldAttr, collapsed: bool = False) -> str:
    """The jet manifold object's name: ``<manifold>_jet``, or ``<manifold>_lap`` for the
    collapsed (Laplacian) jets."""
    return manifold_var(m) + ("_lap" if collapsed else "_jet")


def _lift_call(op: Operation, plain: str, like: str) -> str:
    """The runtime call making a constant jet of the plain value ``plain`` shaped like the
    jet ``like`` (for an operand of the jet.apply ``op``)."""
    collapsed = isinstance(op.result.type, jet.CollapsedType)
    return f"{'taylor.laplacian_lift' if collapsed else 'taylor.lift'}({plain}, {like})"


def _plain_form(op: Operation) -> tuple[str, int, int] | None:
    """(helper, jet operand, plain operand) when the ``jet.apply`` ``op`` is add, sub, mul or
    div of one jet and one plain value that a helper of the runtime takes as it is
    (``taylor.PLAIN_FORMS``: O(K), no constant jet); None otherwise."""
    if not isinstance(op, jet.ApplyOp) or op.params.data or len(op.args) != 2:
        return None
    forms = _PLAIN_FORMS.get(op.primitive.data.removeprefix("geo."))
    is_jet = [isinstance(v.type, (jet.JetType, jet.CollapsedType)) for v in op.args]
    if forms is None or is_jet[0] == is_jet[1]:
        return None
    j = 0 if is_jet[0] else 1
    helper = forms[j]
    return (helper, j, 1 - j) if helper is not None else None


def _jet_apply(op: Operation, args: list[str], lifted: Callable[[int, str], str] | None = None) -> str:
    """The runtime call of a ``jet.apply``. Plain operands (a point the curve does not move)
    are lifted to constant jets: ``lifted(i, like)`` spells operand i's lifted value (the
    emitter names a lift needed more than once and shares it); by default the lift call is
    written inline. A jet plus, minus, times or over a plain value calls the runtime's
    plain-operand helper instead (:func:`_plain_form`)."""
    form = _plain_form(op)
    if form is not None:
        helper, j, p = form
        return f"taylor.{helper}({args[j]}, {args[p]})"
    prim = op.primitive.data.removeprefix("geo.")
    collapsed = isinstance(op.result.type, jet.CollapsedType)
    jets = [i for i, v in enumerate(op.args) if isinstance(v.type, (jet.JetType, jet.CollapsedType))]
    like = args[jets[0]]
    plain = _PLAIN_OPERANDS.get(prim, set())
    if lifted is None:
        lifted = lambda i, like: _lift_call(op, args[i], like)  # noqa: E731
    operands = [a if i in jets or i in plain else lifted(i, like) for i, a in enumerate(args)]
    kwargs = [f"{k}={v.value.data!r}" for k, v in sorted(op.params.data.items())]
    if prim in _JET_MAPS:
        method, which = _JET_MAPS[prim]
        t = op.args[which].type
        base = t.base if isinstance(t, (jet.JetType, jet.CollapsedType)) else t
        if not isinstance(base.manifold, _JET_MANIFOLDS):
            raise UsageError(f"Taylor-mode jets of {prim} on {base.manifold.kind} are not built yet")
        return f"{jet_manifold_var(base.manifold, collapsed)}.{method}({', '.join(operands + kwargs)})"
    return f"taylor.{'collapsed.' if collapsed else ''}{prim}({', '.join(operands + kwargs)})"
for _name in ("tanh", "sigmoid", "relu", "softplus", "exp", "log", "sqrt", "sin", "cos"):
    OP_RULES[f"geo.{_name}"] = _elementwise

_REQUEST_OPS = {
    jet.JvpOp: "jvp",
    jet.VjpOp: "vjp",
    jet.HvpOp: "hvp",
    jet.GradOp: "grad",
    jet.DirectionalOp: "directional",
    jet.LaplacianOp: "laplacian",
    jet.BiharmonicOp: "biharmonic",
}


# --- the emitter -------------------------------------------------------------------------


def _made_by_jet_ops(value: SSAValue) -> bool:
    """True for jets built by the Taylor runtime (not by the autodiff reference requests),
    the result of a call of a jet function included (jet-expand's ``jet.function``: its
    jets cross the call normalized)."""
    owner = value.owner
    if isinstance(owner, func.CallOp):
        callee = SymbolTable.lookup_symbol(owner, owner.callee)
        return callee is not None and jet.FUNCTION_ATTR in callee.attributes
    return isinstance(owner, Operation) and owner.dialect_name() == "jet" and not isinstance(owner, jet.DirectionalOp)


def _signature_doc(f: func.FuncOp) -> str:
    ins = ", ".join(f"{name or 'arg'}: {a.type}" for a, name in zip(f.body.block.args, input_names.input_names(f)))
    outs = ", ".join(str(t) for t in f.function_type.outputs.data)
    return f"{f.sym_name.data}({ins}) -> {outs}"


def _location(op: Operation) -> str | None:
    loc = file_location(op.location)
    return None if loc is None else f"{loc.filename.data}:{loc.line.data}"


# -- instrumentation (tap=True): ``_tap(where, op, value)`` after each jet value ---------------

_TAP_DEF = [
    "def _tap(where, op, value):",
    '    """Instrumentation hook (emitted with tap=True), called after each jet value is made:',
    '    where is "file:line:col" (or None), op the op name (a jet.apply\'s primitive, e.g.',
    '    "geo.tanh"), value the jet (normalized coefficients). A no-op; replace it to observe."""',
]


def _where(op: Operation) -> str | None:
    return location_text(op.location)


def _label(op: Operation) -> str:
    """The op's name as a user knows it: a jet.apply's primitive (e.g. "geo.tanh")."""
    return op.primitive.data if isinstance(op, jet.ApplyOp) else op.name


def _check_site(op: Operation, fallback: str | None) -> tuple[str | None, str]:
    """(where, what) of the ``_check_finite(...)`` calls (check_finite=True) for the values
    ``op`` defines: the op's location (or its function's, for an op a pass made)."""
    if isinstance(op, geo.ParamOp):
        what = f"parameter {op.param_name.data!r}"
    elif isinstance(op, func.CallOp):
        what = f"the call of @{op.callee.string_value()}"
    else:
        what = _label(op)
    where = _where(op) or fallback
    first, last = location_text(op.location), location_text(op.location, last=True)
    if isinstance(op, jet.LayerOp) and op.activation is not None and first != last:
        # a fused layer: blame the activation's line (a NaN from finite inputs is its),
        # naming the linear map's too
        where, what = last, f"jet.layer ({op.activation.data}, after the linear map at {first})"
    return where, what


def _source_lines(sites: set[str | None]) -> dict[str, dict[int, str]]:
    """file -> line -> text of the ``file:line:col`` sites, sorted: the text compiled under
    the file's name (else the file's), for the caret lines of the checks' errors."""
    from geomir.diagnostics import span_at

    texts, out = {}, {}
    for name, line in sorted({(w.rsplit(":", 2)[0], int(w.rsplit(":", 2)[1])) for w in sites if w}):
        if name not in texts:
            texts[name] = span_at(name, 1, 1).source
        out.setdefault(name, {})[line] = texts[name].line_text(line)
    return out


def _tap_lines(op: Operation, names: Names) -> list[str]:
    """``_tap(...)`` calls for the jets ``op`` defines (runtime jets only, not the reference
    ``derivatives.directional``'s derivative-convention result)."""
    where = _where(op)
    return [
        f"_tap({where!r}, {_label(op)!r}, {names[r]})"
        for r in op.results
        if isinstance(r.type, (jet.JetType, jet.CollapsedType)) and _made_by_jet_ops(r)
        and not isinstance(op, func.CallOp)  # tapped inside the jet function
    ]


OPTIONAL_IMPORTS = ("math", "taylor")
"""Names a flavor's header imports that a module needs only when its code reads them:
``math`` (``2 * math.pi``, the radians torus) and ``taylor`` (the jet runtime, about 15 ms to
import). The other imports stay: ``model`` and ``runtime`` are read by every module or from
outside (``mod.runtime.graphed``), and ``derivatives`` costs about 0.4 ms to import."""


def _used_imports(imports: list[str], code: str) -> list[str]:
    """``imports`` (a flavor's header lines) without the :data:`OPTIONAL_IMPORTS` that
    ``code`` (the rest of the module) never reads."""
    unused = {n for n in OPTIONAL_IMPORTS if not re.search(rf"(?<![\w.]){n}\.", code)}
    out: list[str] = []
    for line in imports:
        if line.startswith("import ") and line.split()[1] in unused and " as " not in line:
            continue
        m = re.fullmatch(r"(from \S+ import )(.+)", line)
        if m and "#" not in line:
            kept = [n for n in (w.strip() for w in m[2].split(",")) if n not in unused]
            if not kept:
                continue
            line = m[1] + ", ".join(kept)
        if line == "" and (not out or out[-1] == ""):
            continue  # no double blank line where an import went
        out.append(line)
    return out


class PythonEmitter:
    def __init__(self, module: builtin.ModuleOp, flavor: Flavor, source_name: str, tap: bool = False,
                 check_finite: bool = False, prune_imports: bool = True):
        self.check_finite = check_finite
        self.prune_imports = prune_imports  # drop the optional imports the module does not use
        self.module = module
        self.flavor = flavor
        self.source_name = source_name
        self.tap = tap  # emit ``_tap(where, op, jet)`` after each jet value (see _TAP_DEF)
        self.funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
        self.fused = {f: flavor.fuse(f) if flavor.fuse else [] for f in self.funcs}
        self.arg_names: dict[func.FuncOp, list[str]] = {}  # the inputs' Python names, per function
        self.checked_at: set[str | None] = set()  # the locations of the _check_finite calls

    # -- module-level tables
    def manifolds(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for op in self.module.walk():
            for value in (*op.operands, *op.results):
                if isinstance(value.type, (geo.GeoValueType, geo.PathType)):
                    found.setdefault(manifold_var(value.type.manifold), manifold_ctor(value.type.manifold))
            if isinstance(op, func.FuncOp):
                for t in (*op.function_type.inputs.data, *op.function_type.outputs.data):
                    if isinstance(t, (geo.GeoValueType, geo.PathType)):
                        found.setdefault(manifold_var(t.manifold), manifold_ctor(t.manifold))
        return dict(sorted(found.items()))

    def signature_manifolds(self) -> set[str]:
        """The curved manifolds of the public models' inputs and outputs: their objects are
        in the module on every target (``m.poincare_c1.expmap0(v)`` makes an input), even
        where a fused kernel does all the work."""
        found = set()
        for f in self.funcs:
            if f.sym_visibility is None:
                for t in (*f.function_type.inputs.data, *f.function_type.outputs.data):
                    if isinstance(t, (geo.GeoValueType, geo.PathType)) and not isinstance(t.manifold, geo.EuclideanAttr):
                        found.add(manifold_var(t.manifold))
        return found

    def params(self) -> dict[str, geo.ParamOp]:
        found: dict[str, geo.ParamOp] = {}
        for op in self.module.walk():
            if isinstance(op, geo.ParamOp):
                found.setdefault(op.param_name.data, op)
        return found

    def function_params(self) -> dict[str, list[str]]:
        direct = {f.sym_name.data: [o.param_name.data for o in f.walk() if isinstance(o, geo.ParamOp)] for f in self.funcs}
        callees = {
            f.sym_name.data: [
                o.callee.string_value()
                for o in f.walk()
                if isinstance(o, func.CallOp) or type(o) in _REQUEST_OPS
            ]
            for f in self.funcs
        }
        result: dict[str, list[str]] = {}

        def visit(name: str, seen: tuple[str, ...]) -> list[str]:
            if name in result:
                return result[name]
            names = list(direct.get(name, []))
            for callee in callees.get(name, []):
                if callee not in seen:
                    names += visit(callee, seen + (callee,))
            result[name] = list(dict.fromkeys(names))
            return result[name]

        for f in self.funcs:
            visit(f.sym_name.data, (f.sym_name.data,))
        return {f.sym_name.data: result[f.sym_name.data] for f in self.funcs}

    # -- source text
    def emit(self) -> str:
        fl = self.flavor
        body: list[str] = []
        for f in self.funcs:
            body += ["", "", *self._function(f)]
            if f.sym_visibility is None:  # not for pass-made helpers
                checked = checked_model(f.sym_name.data, f, self.arg_names[f], fl.dtype_name)
                if checked:
                    body += ["", "", *checked]
                if fl.model_class is not None:
                    body += ["", "", *fl.model_class(f.sym_name.data, f)]
        specs = [f"    {name!r}: {self._param_spec(op)}," for name, op in self.params().items()]
        used = "\n".join(body + specs)
        frame = ("Build the parameters with init_params(seed, dtype); the *Module classes hold their own."
                 if fl.model_class is not None else "Build the parameters with init_params(seed, dtype).")
        docstring = [
            f'"""Generated by geomc from {_docstring_text(self.source_name)} (target {fl.target}). Do not edit.',
            "",
            "Functions take the parameter dict first: Model(params, *inputs).",
            frame,
            '"""',
            "",
        ]
        imports = [
            *fl.header(self.source_name),
            *(["from geomir.backends.common.finite import check_finite as _check_finite"] if self.check_finite else []),
        ]
        signature = self.signature_manifolds()
        lines = [f"{var} = {ctor}" for var, ctor in self.manifolds().items()
                 if var in signature or re.search(rf"(?<![<\w]){var}(?=[.,])", used)]
        for suffix, extra in (("_jet", ""), ("_lap", "collapsed=True")):
            for var, ctor in self.manifolds().items():
                if re.search(rf"(?<![<\w]){var}{suffix}(?=[.,])", used):
                    call = ctor.replace("runtime.", "taylor.")
                    if extra:
                        head = call[:-1]  # up to the closing parenthesis
                        call = head + ("" if head.endswith("(") else ", ") + extra + ")"
                    lines.append(f"{var}{suffix} = {call}")
        if lines:
            lines = ["", "# Manifolds (numerics and their constants: geomir/backends/common/manifolds.py)", *lines]
        lines += ["", "# Parameters: shape, initialiser, manifold (None: Euclidean), dtype[, weight transforms]", "PARAMS = {", *specs, "}"]
        lines += ["", "FUNCTION_PARAMS = {"]
        lines += [f"    {fname!r}: {names!r}," for fname, names in self.function_params().items()]
        lines += ["}"]
        lines += ["", "# Contracts: declared in the source; proved by verify-contracts on the weights of seed 0, or on",
                  "# those 'proved_on' names (geomc --weights), after their weight transforms; claims read from a",
                  "# .mlir input are proved again before they are listed, and 'proved' is empty when nothing was proved).",
                  "CONTRACTS = {"]
        lines += [f"    {fname!r}: {entry!r}," for fname, entry in self.contracts().items()]
        lines += ["}"]
        if self.check_finite:
            lines += self._source_table()
        if fl.fused_table is not None:
            lines += ["", *fl.fused_table([(f.sym_name.data, g) for f in self.funcs for g in self.fused[f]])]
        lines += [
            "",
            "",
            "def init_params(seed=0, dtype=None, names=None):",
            '    """Parameters from `seed` (same numbers on every backend); `names`: a subset."""',
            "    return model.init_params(PARAMS, seed, dtype, names)",
            "",
            "",
            "def transform_params(params):",
            '    """Trained `params` after the recorded quantization/pruning (what the contracts were proved on)."""',
            "    return model.transform_params(PARAMS, params)",
            *body,
            *fl.footer,
        ]
        if self.prune_imports:
            imports = _used_imports(imports, "\n".join(lines))
        return "\n".join([*docstring, *imports, *lines]) + "\n"

    def _param_spec(self, op: geo.ParamOp) -> str:
        t = op.result.type
        if isinstance(t, builtin.TensorType):
            shape, elt, manifold = tuple(t.get_shape()), t.element_type, "None"
        else:
            shape, elt = (t.dim_value,), t.element_type
            manifold = manifold_var(t.manifold) if isinstance(t, geo.PointType) and not isinstance(t.manifold, geo.EuclideanAttr) else "None"
        transforms = weight_transforms(op)
        extra = f", {transforms!r}" if transforms else ""
        return f"model.ParamSpec({shape!r}, {op.init.data!r}, {manifold}, {self.flavor.dtype_name(elt)}{extra})"

    def contracts(self) -> dict[str, dict[str, list[str]]]:
        """Function -> {"declared": [...], "proved": [...][, "proved_on": weights]} as IR attribute text."""
        out = {}
        for f in self.funcs:
            declared = [str(c) for c in contract.get_contracts(f)]
            proved = f.attributes.get("proved")
            if declared or proved is not None:
                out[f.sym_name.data] = {"declared": declared, "proved": [str(c) for c in proved.data] if proved is not None else []}
            on = f.attributes.get(contract.PROVED_ON_ATTR_NAME)
            if on is not None and proved is not None:
                out[f.sym_name.data]["proved_on"] = on.data
        return out

    def _function(self, f: func.FuncOp) -> list[str]:
        names = Names({fn.sym_name.data for fn in self.funcs})
        args = [names.define(a, name) for a, name in zip(f.body.block.args, input_names.input_names(f))]
        self.arg_names[f] = args
        where = _location(f)
        doc = _signature_doc(f) + (f"  [{_docstring_text(where)}]" if where else "")
        proved = f.attributes.get("proved")
        if proved is not None:
            on = f.attributes.get(contract.PROVED_ON_ATTR_NAME)
            on = f" (on the weights of {_docstring_text(on.data)})" if on is not None else ""
            doc += f"\n\n    Proved{on}: " + ", ".join(str(c) for c in proved.data) + "\n    "
        lines = [f"def {f.sym_name.data}(params, {', '.join(args)}):" if args else f"def {f.sym_name.data}(params):", f'    """{doc}"""']
        lines += ["    " + statement for statement in self.flavor.prologue]
        fname, at = f.sym_name.data, _where(f)
        if self.check_finite:
            lines += ["    " + self._check_call(at, "input " + repr(a), fname, a) for a in args]
        roots = {g.ops[-1]: g for g in self.fused[f]}
        absorbed = {op for g in self.fused[f] for op in g.ops[:-1]}
        state = _FunctionState(names, _sincos_pairs(f, set(roots) | absorbed), _shared_lifts(f))
        for op in f.body.block.ops:
            if op in absorbed:
                continue
            if op in roots:
                g = roots[op]
                rhs = g.call([names[v] for v in g.inputs])
                lines.append(f"    {', '.join(names.define(r) for r in op.results)} = {rhs}")
            else:
                lines += ["    " + line for line in self._op(op, state)]
            if self.check_finite:
                where, what = _check_site(op, at)
                lines += ["    " + self._check_call(where, what, fname, names[r]) for r in op.results]
            if self.tap and op not in roots:
                lines += ["    " + line for line in _tap_lines(op, names)]
        if self.tap and f is self.funcs[0]:  # the hook, once, before the first function
            lines = [*_TAP_DEF, "", "", *lines]
        return lines

    def _check_call(self, where: str | None, what: str, function: str, value: str) -> str:
        """A ``_check_finite(...)`` call (check_finite=True); its location's line goes into the
        module's table of source lines."""
        self.checked_at.add(where)
        return f"_check_finite({where!r}, {what!r}, {function!r}, {value})"

    def _source_table(self) -> list[str]:
        """The module's ``_check_finite`` bound to the source lines its calls point at (the
        text compiled, not the file as it is when a check fails)."""
        table = [f"    {name!r}: {lines!r}," for name, lines in _source_lines(self.checked_at).items()]
        return ["", "# The source lines the finiteness checks point at (their errors' caret lines, as compiled)",
                "_check_finite = _check_finite.with_lines({", *table, "})"]

    def _op(self, op: Operation, state: _FunctionState) -> list[str]:
        names = state.names
        args = [names[v] for v in op.operands]
        if _is_coords(op):  # the identity: no call, no copy
            if not op.result.name_hint:
                names.alias(op.result, op.operands[0])
                return []
            return [f"{names.define(op.result)} = {args[0]}"]
        if op in state.sincos:  # sin and cos of one jet: one coupled recurrence for both
            first, s, c = state.sincos[op]
            if op is not first:
                return []  # made with its partner
            return [f"{names.define(s.result)}, {names.define(c.result)} = taylor.sincos({args[0]})"]
        if isinstance(op, jet.ApplyOp):
            before: list[str] = []

            def lifted(i: int, like: str) -> str:
                key = _lift_key(op, i)
                if key not in state.shared:  # lifted once: written inline
                    return _lift_call(op, args[i], like)
                if key not in state.lifted:
                    name = names.fresh(f"{args[i]}_lifted")
                    before.append(f"{name} = {_lift_call(op, args[i], like)}")
                    state.lifted[key] = name
                return state.lifted[key]

            rhs = _jet_apply(op, args, lifted)
            return [*before, f"{names.define(op.result)} = {rhs}"]
        if isinstance(op, func.ReturnOp):
            # a returned jet leaves the runtime's normalized form: derivatives (IR convention),
            # except from a jet function, whose caller goes on with it
            convert = jet.FUNCTION_ATTR not in op.parent_op().attributes
            outs = [f"taylor.to_derivatives({a})" if convert and isinstance(v.type, jet.JetType) and _made_by_jet_ops(v)
                    else a for a, v in zip(args, op.operands)]
            return [f"return {', '.join(outs)}"]
        if isinstance(op, geo.ParamOp):
            return [f"{names.define(op.result)} = params[{op.param_name.data!r}]"]
        if isinstance(op, func.CallOp):
            rhs = f"{op.callee.string_value()}(params, {', '.join(args)})"
        elif type(op) in _REQUEST_OPS:
            rhs = self._request(op, args)
        else:
            rule = OP_RULES.get(op.name)
            if rule is None:
                raise UsageError(
                    f"the {self.flavor.target} backend cannot emit {op.name} yet "
                    "(run without the passes that produce it, e.g. jet-expand)"
                )
            rhs = rule(op, args, self.flavor)
        results = [names.define(r) for r in op.results]
        return [f"{', '.join(results)} = {rhs}"]

    def _request(self, op: Operation, args: list[str]) -> str:
        kind = _REQUEST_OPS[type(op)]
        n_inputs = len(op.model_inputs)
        inputs = ", ".join(args[:n_inputs]) + ("," if n_inputs == 1 else "")
        extra = [args[n_inputs]] if len(args) > n_inputs else []
        kwargs = [f"wrt={op.wrt.data}"]
        if isinstance(op, jet.DirectionalOp):
            kwargs.append(f"order={op.order.data}")
        call_args = [op.callee.string_value(), "params", f"({inputs})", *extra, *kwargs]
        return f"derivatives.{kind}({', '.join(call_args)})"


@dataclass
class _FunctionState:
    """What the emitter remembers while writing one function: local names, the sin/cos pairs
    emitted as one ``taylor.sincos``, the lifts of plain values needed more than once and
    the locals already holding them ((value, like) -> local name)."""

    names: Names
    sincos: dict[Operation, tuple[Operation, Operation, Operation]]
    shared: set[tuple[SSAValue, SSAValue]]  # the lifts made more than once (_shared_lifts)
    lifted: dict[tuple[SSAValue, SSAValue], str] = field(default_factory=dict)


def _is_coords(op: Operation) -> bool:
    """``geo.coords`` and its jet: the identity on the representation's coordinates."""
    return op.name == "geo.coords" or (isinstance(op, jet.ApplyOp) and op.primitive.data == "geo.coords")


def _same_object(value: SSAValue) -> SSAValue:
    """The value whose runtime object ``value`` is (``coords`` returns its operand)."""
    while isinstance(value.owner, Operation) and _is_coords(value.owner):
        value = value.owner.operands[0]
    return value


def _lifted_operands(op: Operation) -> list[int]:
    """The operands of a ``jet.apply`` that the runtime takes as jets but the IR has plain
    (a point the curve does not move): the emitter lifts them to constant jets."""
    if not isinstance(op, jet.ApplyOp) or _plain_form(op) is not None:
        return []
    plain = _PLAIN_OPERANDS.get(op.primitive.data.removeprefix("geo."), set())
    return [i for i, v in enumerate(op.args)
            if not isinstance(v.type, (jet.JetType, jet.CollapsedType)) and i not in plain]


def _lift_key(op: Operation, i: int) -> tuple[SSAValue, SSAValue]:
    """What a lift of operand ``i`` of the jet.apply ``op`` makes: the constant jet of that
    value shaped like the op's first jet operand (``taylor.lift(x, like)``)."""
    like = next(v for v in op.args if isinstance(v.type, (jet.JetType, jet.CollapsedType)))
    return _same_object(op.operands[i]), _same_object(like)


def _shared_lifts(f: func.FuncOp) -> set[tuple[SSAValue, SSAValue]]:
    """The lifts ``f`` needs more than once (a plain point used by several jet ops along the
    same jet): each is made once, into a local, and shared."""
    seen: set[tuple[SSAValue, SSAValue]] = set()
    shared = set()
    for op in f.body.block.ops:
        for i in _lifted_operands(op):
            key = _lift_key(op, i)
            (shared if key in seen else seen).add(key)
    return shared


def _sincos_pairs(f: func.FuncOp, skip: set[Operation]) -> dict[Operation, tuple[Operation, Operation, Operation]]:
    """``jet.apply "geo.sin"`` and ``"geo.cos"`` of the same ordinary jet: each op -> (the
    first of the two, the sin op, the cos op). The rules ``taylor.sin`` and ``taylor.cos``
    each run the coupled recurrence of both (O(K²)); ``taylor.sincos`` returns both from one
    run (the same numbers). Ops in ``skip`` (a fused kernel's) are left alone."""
    found: dict[tuple[SSAValue, str], Operation] = {}
    for op in f.body.block.ops:
        if (isinstance(op, jet.ApplyOp) and op.primitive.data in ("geo.sin", "geo.cos") and op not in skip
                and isinstance(op.result.type, jet.JetType) and not op.params.data):
            found.setdefault((op.operands[0], op.primitive.data), op)
    pairs = {}
    for (x, prim), s in found.items():
        c = found.get((x, "geo.cos"))
        if prim == "geo.sin" and c is not None:
            first = s if s.is_before_in_block(c) else c
            pairs[s] = pairs[c] = (first, s, c)
    return pairs


def emit_python(module: builtin.ModuleOp, flavor: Flavor, source_name: str, tap: bool = False,
                check_finite: bool = False, prune_imports: bool = True) -> str:
    """The Python source of ``module`` for ``flavor``'s framework; ``tap=True`` adds a no-op
    module-level ``_tap(where, op, value)`` called after each jet value (geomir.jet_report);
    ``check_finite=True`` checks every input, parameter and op result and raises
    NonFiniteError at the first NaN or inf (backends/common/finite.py);
    ``prune_imports=False`` keeps every import of the flavor's header, used or not."""
    return PythonEmitter(module, flavor, source_name, tap, check_finite, prune_imports).emit()


# --- the names an emitted module uses ----------------------------------------------------

_PROBE = "GeomirProbe"


def module_globals(flavor: Flavor) -> frozenset[str]:
    """The names a module emitted for ``flavor`` binds or reads as globals, besides its
    models, their ``<Model>Module`` classes and its manifold objects (:data:`MANIFOLD_VAR`):
    its imports and tables (``PARAMS``, ``FUNCTION_PARAMS``, ``CONTRACTS``, a flavor's
    ``KERNELS`` and ``PRECISION``), ``init_params``, ``transform_params``, the hooks
    (``_tap``, ``_check_finite``), the builtins it calls (``staticmethod``), and ``params``,
    the first parameter of every model function. A model or a value named like one of them
    would hide it. Read off what the emitter writes for a one-model probe (with every hook
    on), so the list cannot drift from the emitter."""
    import symtable

    probe = func.FuncOp(_PROBE, ((), ()))
    probe.body.block.add_op(func.ReturnOp())
    code = emit_python(builtin.ModuleOp([probe]), flavor, "<probe>", tap=True, check_finite=True, prune_imports=False)
    top = symtable.symtable(code, "<probe>", "exec")
    names = {sym.get_name() for sym in top.get_symbols()}  # bound, imported or read at module level

    def nested(table: symtable.SymbolTable) -> None:
        for child in table.get_children():
            names.update(sym.get_name() for sym in child.get_symbols() if sym.is_global())  # read as globals
            if child.get_name() == _PROBE:
                names.update(child.get_parameters())  # params
            nested(child)

    nested(top)
    return frozenset(names - {_PROBE, f"{_PROBE}Module"})
