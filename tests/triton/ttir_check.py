"""Compile the fused jet-layer kernels for sm_90 WITHOUT a GPU and print their TTIR.

Run as a script, in a process where ``TRITON_INTERPRET`` is unset (a kernel decorated under
the interpreter cannot be compiled): ``python tests/triton/ttir_check.py [jet|laplacian]``.
Prints ``// ==== <kernel>`` and the TTIR for each kernel: the jet kernel at K=4 with tanh
and bias, the Laplacian kernel with tanh and bias (D is a runtime argument).
tests/triton/test_layer_kernels.py runs FileCheck on the output.
"""

from __future__ import annotations

import os
import sys

os.environ.pop("TRITON_INTERPRET", None)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import triton
from geomir.backends.triton import kernels
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

BLOCKS = {"BLOCK_N": 64, "BLOCK_M": 64, "BLOCK_K": 32}


def _ttir(fn, signature: dict, constexprs: dict) -> str:
    sig = dict(signature)
    sig.update({name: "constexpr" for name in constexprs})
    src = ASTSource(fn, sig, constexprs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm["ttir"]


def jet_ttir(K: int = 4, activation: int = kernels.ACT_TANH) -> str:
    sig = {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Y": "*fp32"}
    sig.update({a: "i32" for a in ("N", "n", "m", "stride_xk", "stride_xn", "stride_wm",
                                   "stride_wn", "stride_yk", "stride_yn")})
    return _ttir(kernels.jet_layer_kernel, sig,
                 {"K": K, "ACTIVATION": activation, "HAS_BIAS": True, "PRECISION": 0,
                  **BLOCKS})


def laplacian_ttir(activation: int = kernels.ACT_TANH) -> str:
    sig = {a: "*fp32" for a in ("F0", "F1", "F2", "W", "B", "G0", "G1", "G2")}
    sig.update({a: "i32" for a in ("N", "n", "m", "D", "stride_f1d", "stride_fn", "stride_wm",
                                   "stride_wn", "stride_g1d", "stride_gn")})
    return _ttir(kernels.laplacian_layer_kernel, sig,
                 {"ACTIVATION": activation, "HAS_BIAS": True, "PRECISION": 0, **BLOCKS})


def main(argv: list[str]) -> int:
    which = argv or ["jet", "laplacian"]
    for name in which:
        text = {"jet": jet_ttir, "laplacian": laplacian_ttir}[name]()
        print(f"// ==== {name}")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
