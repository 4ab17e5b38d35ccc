"""Makes geomir's dialects and passes visible to the stock ``xdsl-opt``.

Registered in pyproject.toml under ``[project.entry-points.'xdsl.universe']``, so that
``xdsl-opt model.mlir -p inline-models`` parses and transforms geo/jet/contract IR. Passes
that xDSL already has under the same name (cse, dce) are left to xDSL.
"""

from xdsl.transforms import get_all_passes
from xdsl.universe import Universe

from geomir.pipeline import PASSES, available_passes


def _loader(value):
    return lambda: value


def _universe() -> Universe:
    import geomir.dialects as d

    available_passes()  # fills the registry
    xdsl_names = set(get_all_passes())
    return Universe(
        all_dialects={"geo": _loader(d.Geo), "jet": _loader(d.Jet), "contract": _loader(d.Contract), "apel": _loader(d.Apel)},
        all_passes={name: _loader(cls) for name, cls in PASSES.items() if name not in xdsl_names},
    )


GEOMIR_UNIVERSE = _universe()
