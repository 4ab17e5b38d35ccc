"""Triton backend: fused kernels of ``jet.layer`` (``kernels``) and their torch host
wrappers (``layer``). Import them explicitly; this package imports neither triton nor torch.
Under ``TRITON_INTERPRET=1`` (set before the first import of ``kernels``) they run on CPU
torch tensors, which is how CI tests them."""

PRECISIONS = ("ieee", "tf32", "tf32x3", "bf16")
"""Dot-product precisions of the kernels (accumulation is fp32 in all): "ieee" fp32 products
(the default), "tf32" tensor cores (10-bit mantissa operands), "tf32x3" three TF32 products
per fp32 product (about fp32 accuracy on tensor cores), "bf16" operands rounded to bfloat16."""


_FLAGS = {**dict.fromkeys(("1", "true", "yes", "on"), True),
          **dict.fromkeys(("0", "false", "no", "off"), False)}
"""The spellings of :func:`env_flag` (lower case)."""


def env_flag(name: str, default: bool) -> bool:
    """The boolean environment variable ``name``: 1, true, yes, on or 0, false, no, off (any
    case); unset or empty: ``default``. Any other value is a UsageError naming these."""
    import os

    value = os.environ.get(name, "")
    if not value.strip():
        return default
    flag = _FLAGS.get(value.strip().lower())
    if flag is None:
        from geomir.diagnostics import UsageError

        raise UsageError(f"{name}={value!r}: expected 1, true, yes or on, or 0, false, no or off "
                         f"(unset: {'on' if default else 'off'})")
    return flag
