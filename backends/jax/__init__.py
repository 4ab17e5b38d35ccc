"""JAX backend: ``runtime`` holds the manifold runtime bound to jax arrays (import it
explicitly; this package does not import jax)."""
