"""geomir: a compiler for geometric deep learning.

    import geomir
    module = geomir.to_ir("examples/hyperbolic_mlp.geo")   # or .geo source text
    print(geomir.print_ir(module))
    m = geomir.compile("examples/hyperbolic_mlp.geo", target="torch")
    net = m.HyperbolicMLPModule(seed=0)

    H = geomir.PoincareBall(c=1.0)                        # or trace Python:
    @geomir.trace(x=H.point(16))
    def encoder(x):
        return geomir.mobius_tanh(geomir.mobius_linear(x, 32))
    print(encoder.ir)                                     # what geomc --emit=ir prints

The names load on first use (PEP 562): a generated module imports only its runtime, so
loading it pulls in neither the compiler nor xdsl nor lark.
"""

from importlib import import_module as _import_module
from importlib.util import find_spec as _find_spec

__version__ = "0.1.0"

_EXPORTS = {
    "geomir.compiler": ("compile", "emit_source", "to_ir"),
    "geomir.diagnostics": ("GeomirError", "SourceError"),
    "geomir.ir": ("parse_ir", "print_ir"),
    "geomir.pipeline": ("DEFAULT_PIPELINE", "available_passes"),
    "geomir.frontends.trace": ("Euclidean", "Lorentz", "Param", "PoincareBall", "R", "Sphere", "Torus",
                               "TraceError", "TracedFunction", "equivariant", "lipschitz", "monotone", "trace"),
    "geomir.categorical": ("Jet", "hvp", "jvp", "laplacian", "lift_to_jet", "pull_back", "push_forward", "vjp"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def _traced_ops() -> dict:
    """The traced builtins (geomir.linear, geomir.mobius_tanh, ...), one per .geo builtin."""
    from geomir.frontends.trace.ops import OPS

    return OPS


def parallel_transport(*args, **kwargs):
    """In a traced function, the builtin ``parallel_transport(x, y, v)`` (as in .geo);
    on arrays, ``parallel_transport(v, x, y, space=H)`` (geomir.categorical)."""
    from geomir import categorical
    from geomir.frontends.trace import Traced

    if any(isinstance(a, Traced) for a in (*args, *kwargs.values())):
        return _traced_ops()["parallel_transport"](*args, **kwargs)
    return categorical.parallel_transport(*args, **kwargs)


def __getattr__(name: str):
    if name == "__all__":
        value = sorted({*_HOME, *_traced_ops()})
    elif name in _HOME:
        value = getattr(_import_module(_HOME[name]), name)
    elif not name.startswith("_") and _find_spec(f"geomir.{name}") is not None:  # a submodule: geomir.memory, ...
        value = _import_module(f"geomir.{name}")  # before the traced ops, which import xdsl and lark
    elif not name.startswith("_") and name in _traced_ops():
        value = _traced_ops()[name]
    else:
        raise AttributeError(f"module 'geomir' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME, *_traced_ops()})
