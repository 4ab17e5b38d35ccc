"""geomir's passes, one per module; importing this package registers them all."""

from . import (  # noqa: F401
    inline_models,
    insert_transport,
    jet_expand,
    jet_fuse,
    prune_weights,
    quantize_weights,
    stock,
    verify_contracts,
)
