"""Backend-independent runtime code: manifold numerics written once over an array namespace."""
