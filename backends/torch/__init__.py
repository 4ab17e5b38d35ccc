"""PyTorch backend: ``runtime`` holds the manifold runtime bound to torch tensors (import it
explicitly; this package does not import torch)."""
