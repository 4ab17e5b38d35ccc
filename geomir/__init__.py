"""geomir: a compiler for geometric deep learning.

    import geomir
    module = geomir.to_ir("examples/hyperbolic_mlp.geo")   # or .geo source text
    print(geomir.print_ir(module))
"""

from geomir.compiler import to_ir
from geomir.diagnostics import GeomirError, SourceError
from geomir.ir import parse_ir, print_ir
from geomir.pipeline import DEFAULT_PIPELINE, available_passes

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PIPELINE",
    "GeomirError",
    "SourceError",
    "available_passes",
    "parse_ir",
    "print_ir",
    "to_ir",
]
