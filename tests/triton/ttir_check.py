"""Compile the fused jet-layer kernels for sm_90 WITHOUT a GPU and print their TTIR.

Run as a script, in a process where ``TRITON_INTERPRET`` is unset (a kernel decorated under
the interpreter cannot be compiled): ``python tests/triton/ttir_check.py [SECTION ...]``.
Prints ``// ==== <section>`` and the TTIR for each of :data:`SECTIONS`: the jet kernel at
K=4 with tanh and bias (and with sin, softplus, log, sqrt; at K=2 with TF32, bf16 and 3xTF32 dots),
the Laplacian kernel with tanh and bias (D is a runtime argument; also sqrt and neg). The first two run the
whole ``triton.compile`` down to a cubin, the others its first stage only (the same TTIR:
tests/triton/test_ttir_sites.py checks that).
tests/triton/test_layer_kernels.py runs FileCheck on the output.
"""

from __future__ import annotations

import os
import sys

os.environ.pop("TRITON_INTERPRET", None)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

from geomir.backends.triton import layer
from geomir.backends.triton.ttir import ttir


def jet_ttir(K: int = 4, activation: str = "tanh", precision: str = "ieee", full: bool = False) -> str:
    return ttir(*layer.jet_layer_spec(K, activation, True, precision), full=full)


def laplacian_ttir(activation: str = "tanh", full: bool = False) -> str:
    return ttir(*layer.laplacian_layer_spec(activation, True), full=full)


SECTIONS = {
    "jet": lambda: jet_ttir(full=True),
    "laplacian": lambda: laplacian_ttir(full=True),
    "jet-sin": lambda: jet_ttir(4, "sin"),
    "jet-softplus": lambda: jet_ttir(4, "softplus"),
    "jet-log": lambda: jet_ttir(4, "log"),
    "jet-sqrt": lambda: jet_ttir(4, "sqrt"),
    "laplacian-sqrt": lambda: laplacian_ttir("sqrt"),
    "laplacian-neg": lambda: laplacian_ttir("neg"),
    "jet-tf32": lambda: jet_ttir(2, "tanh", "tf32"),
    "jet-bf16": lambda: jet_ttir(2, "tanh", "bf16"),
    "jet-tf32x3": lambda: jet_ttir(2, "tanh", "tf32x3"),
}


def main(argv: list[str]) -> int:
    for name in argv or list(SECTIONS):
        text = SECTIONS[name]()
        print(f"// ==== {name}")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
