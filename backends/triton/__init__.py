"""Triton backend: fused kernels of ``jet.layer`` (``kernels``) and their torch host
wrappers (``layer``). Import them explicitly; this package imports neither triton nor torch.
Under ``TRITON_INTERPRET=1`` (set before the first import of ``kernels``) they run on CPU
torch tensors, which is how CI tests them."""

PRECISIONS = ("ieee", "tf32", "tf32x3", "bf16")
"""Dot-product precisions of the kernels (accumulation is fp32 in all): "ieee" fp32 products
(the default), "tf32" tensor cores (10-bit mantissa operands), "tf32x3" three TF32 products
per fp32 product (about fp32 accuracy on tensor cores), "bf16" operands rounded to bfloat16."""
