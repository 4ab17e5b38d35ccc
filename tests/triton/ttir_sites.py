"""Compile every Triton kernel specialization that generated modules launch (their
``KERNELS`` tables) for sm_90 WITHOUT a GPU, and print the TTIR of each (the first stage of
triton.compile, geomir.backends.triton.ttir; ``--full`` runs all of triton.compile).

    python tests/triton/ttir_sites.py examples/*.geo

Run in a process where ``TRITON_INTERPRET`` is unset (a kernel decorated under the
interpreter cannot be compiled). For each distinct specialization it prints

    // ==== <kernel> K=<K> activation=<act> bias=<0|1> m=<m> | <site> <site> ...

and its TTIR; sites whose activation has no kernel print ``// ---- torch: <kernel> ...``
(they run the torch code). tests/triton/test_ttir_sites.py FileChecks the output.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import geomir  # noqa: E402
from geomir.backends.triton import layer, poincare  # noqa: E402
from geomir.backends.triton.ttir import ttir  # noqa: E402

DTYPES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


def spec(site: dict, precision: str = "ieee"):
    """(kernel fn, signature, constexprs) of a KERNELS entry, or None if it runs torch code."""
    kind, act, bias = site["kernel"], site["activation"], site["bias"]
    dtype = DTYPES.get(site["dtype"])
    if dtype is None:  # float64: the torch code runs
        return None
    try:
        if kind in ("jet_layer", "dense"):
            return layer.jet_layer_spec(site.get("K", 0), act, bias, precision, dtype)
        if kind == "laplacian":
            return layer.laplacian_layer_spec(act, bias, precision, dtype)
        if kind == "poincare":
            return poincare.poincare_layer_spec(act, bias, precision, dtype, m=site["m"])
    except NotImplementedError:
        return None
    raise ValueError(f"unknown kernel kind {kind!r}")


def key(site: dict) -> str:
    m = f" m={site['m']}" if site["kernel"] == "poincare" else ""
    return (f"{site['kernel']} K={site.get('K', 0)} activation={site['activation']} "
            f"bias={int(site['bias'])}{m}")


def sites(paths: list[str]) -> dict[str, list[dict]]:
    """Distinct specializations -> their launch sites, over the generated modules of ``paths``."""
    found: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as cache:
        for path in paths:
            for site in geomir.compile(path, target="triton", cache_dir=cache).KERNELS:
                found.setdefault(key(site), []).append(site)
    return found


def main(argv: list[str]) -> int:
    full = "--full" in argv
    for name, group in sites([a for a in argv if a != "--full"]).items():
        where = " ".join(f"{s['function']}@{s['where']}" for s in group)
        found = spec(group[0])
        if found is None:
            print(f"// ---- torch: {name} | {where}")
            continue
        print(f"// ==== {name} | {where}")
        print(ttir(*found, full=full))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
