"""xDSL's generic cleanups, registered under geomir's pass registry.

- ``cse``: common-subexpression elimination (xdsl.transforms.common_subexpression_elimination).
  Needs nothing; guarantees no two pure ops with equal operands and attributes remain.
  A parameter's identity is its name: ``geo.param`` ops with the same name (and so the
  same init and type, which the module verifier enforces) merge, as after inlining a
  model called twice; parameters with different names never merge.
- ``dce``: dead-code elimination (xdsl.transforms.dead_code_elimination).
  Guarantees no unused op without side effects remains (unused lets and their params).
"""

from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination
from xdsl.transforms.dead_code_elimination import DeadCodeElimination

from geomir.pipeline import register_pass


@register_pass
class CSE(CommonSubexpressionElimination):
    """Common-subexpression elimination of pure ops (xDSL's cse)."""

    name = "cse"


@register_pass
class DCE(DeadCodeElimination):
    """Dead-code elimination of unused side-effect-free ops (xDSL's dce)."""

    name = "dce"
