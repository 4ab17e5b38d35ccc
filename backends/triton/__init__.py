"""Triton backend: fused kernels of ``jet.layer`` (``kernels``) and their torch host
wrappers (``layer``). Import them explicitly; this package imports neither triton nor torch.
Under ``TRITON_INTERPRET=1`` (set before the first import of ``kernels``) they run on CPU
torch tensors, which is how CI tests them."""
