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
"""

from geomir.compiler import compile, emit_source, to_ir
from geomir.diagnostics import GeomirError, SourceError
from geomir.ir import parse_ir, print_ir
from geomir.pipeline import DEFAULT_PIPELINE, available_passes
from geomir.frontends.trace import (Euclidean, Lorentz, Param, PoincareBall, R, Sphere, Torus, TraceError,
                                    TracedFunction, equivariant, lipschitz, monotone, trace)
from geomir.frontends.trace.ops import OPS as _OPS

from geomir import categorical as _categorical
from geomir.categorical import Jet, hvp, jvp, laplacian, lift_to_jet, pull_back, push_forward, vjp

globals().update(_OPS)  # the traced builtins: geomir.linear, geomir.mobius_tanh, ...


def parallel_transport(*args, **kwargs):
    """In a traced function, the builtin ``parallel_transport(x, y, v)`` (as in .geo);
    on arrays, ``parallel_transport(v, x, y, space=H)`` (geomir.categorical)."""
    from geomir.frontends.trace import Traced

    if any(isinstance(a, Traced) for a in (*args, *kwargs.values())):
        return _OPS["parallel_transport"](*args, **kwargs)
    return _categorical.parallel_transport(*args, **kwargs)

__version__ = "0.1.0"

__all__ = [
    *sorted(_OPS),
    "Euclidean",
    "Lorentz",
    "Param",
    "PoincareBall",
    "R",
    "Sphere",
    "Torus",
    "TraceError",
    "TracedFunction",
    "equivariant",
    "lipschitz",
    "monotone",
    "trace",
    "Jet",
    "hvp",
    "jvp",
    "laplacian",
    "lift_to_jet",
    "pull_back",
    "push_forward",
    "vjp",
    "DEFAULT_PIPELINE",
    "compile",
    "emit_source",
    "GeomirError",
    "SourceError",
    "available_passes",
    "parse_ir",
    "print_ir",
    "to_ir",
]
