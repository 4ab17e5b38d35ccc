"""TTIR of a kernel specialization for a CUDA architecture, without a GPU.

``ttir(kernel, signature, constexprs)`` takes the triple that ``layer.jet_layer_spec``,
``layer.laplacian_layer_spec`` and ``poincare.poincare_layer_spec`` return. By default it
runs only the first stage of ``triton.compile`` (the frontend and the TTIR passes that
``triton.compile`` runs first; the same text, tests/triton/test_ttir_sites.py checks it)
in ~0.05 s instead of ~5 s for the whole pipeline down to a cubin; ``full=True`` runs
``triton.compile`` itself. The process must not have TRITON_INTERPRET set when the kernels
were decorated.
"""

from __future__ import annotations

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


def _source(kernel, signature: dict, constexprs: dict) -> ASTSource:
    sig = dict(signature)
    sig.update({name: "constexpr" for name in constexprs})
    return ASTSource(kernel, sig, constexprs)


def compile_kernel(kernel, signature: dict, constexprs: dict, arch: int = 90, options: dict | None = None):
    """The whole ``triton.compile`` of the specialization for sm_<arch> (``options``: e.g.
    num_warps, num_stages): the CompiledKernel, whose ``asm`` holds ttir ... ptx, cubin."""
    return triton.compile(_source(kernel, signature, constexprs), target=GPUTarget("cuda", arch, 32),
                          options=options)


def ttir(kernel, signature: dict, constexprs: dict, arch: int = 90, full: bool = False) -> str:
    """The TTIR text of ``kernel`` specialized by ``signature``/``constexprs`` for sm_<arch>."""
    if full:
        return compile_kernel(kernel, signature, constexprs, arch).asm["ttir"]
    target = GPUTarget("cuda", arch, 32)
    src = _source(kernel, signature, constexprs)
    try:  # triton.compile's own first stage (triton 3.x internals; full compile if they move)
        from triton._C.libtriton import ir
        from triton.compiler.compiler import make_backend

        backend = make_backend(target)
        options = backend.parse_options({})
        context = ir.context()
        ir.load_dialects(context)
        backend.load_dialects(context)
        module = src.make_ir(target, options, backend.get_codegen_implementation(options),
                             backend.get_module_map(), context)
        stages: dict = {}
        backend.add_stages(stages, options, src.language)
        return str(stages["ttir"](module, {}))
    except (ImportError, AttributeError, TypeError, KeyError):
        return compile_kernel(kernel, signature, constexprs, arch).asm["ttir"]
