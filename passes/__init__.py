"""geomir's passes, one per module; importing this package registers them all."""

from . import inline_models, jet_expand, jet_fuse, prune_weights, quantize_weights, stock, verify_contracts  # noqa: F401
