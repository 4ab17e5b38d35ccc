"""geomir: a compiler for geometric deep learning.

    import geomir
    module = geomir.to_ir("examples/hyperbolic_mlp.geo")   # or .geo source text
    print(geomir.print_ir(module))
    m = geomir.compile("examples/hyperbolic_mlp.geo", target="torch")
    net = m.HyperbolicMLPModule(seed=0)
"""

from geomir.compiler import compile, emit_source, to_ir
from geomir.diagnostics import GeomirError, SourceError
from geomir.ir import parse_ir, print_ir
from geomir.pipeline import DEFAULT_PIPELINE, available_passes

__version__ = "0.1.0"

__all__ = [
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
