"""The differential checks of generated programs (geo_programs.py), shared by the property
tests (test_generated_programs_run.py, triton/test_generated_programs_triton.py) and the
fuzzer that runs them over a range of generator seeds (tools/fuzz_programs.py).

Each check compiles one program several ways, runs every public function (models and
derive requests) on the same sampled inputs (backends/helpers.sample, 3 rows) and raises
``AssertionError`` with the numbered listing when two ways disagree:

``check_jets``    the default passes (jet-expand, jet-fuse: Taylor-mode jets) on PyTorch and
                  JAX against the autodiff reference (the program without jet-expand: nested
                  jvp, torch.func), float64, relative error <= 1e-8. Where the reference is
                  finite, the jets must be finite, except in a request's rows where the
                  model's own value is NaN (log of a negative number): the jets are NaN there
                  by design, autodiff may not be. The reference's own rounding grows with
                  the order (K nested jvps, and autodiff of f(z)/z at small z cancels): for
                  order k of a ``directional`` request the bound adds 8x its estimated
                  error, the largest difference between the reference along v and along
                  s v scaled by s^-k, s = 3 and 0.3 (different roundings of one number;
                  seed 7980: 5.6e-8 at order 8 where the exact value is 0 and the jets
                  give 3e-14; seed 8148: 0.028 at order 7 through expmap0 at c|v|^2 ~ 1e-5,
                  where the jets match mpmath to 1e-16).
``check_triton``  the Triton target (kernels under TRITON_INTERPRET=1, set by the caller
                  before triton is imported) against the torch target, at each input's
                  declared element type: relative error <= 1e-4 for float32 and float64,
                  2e-2 for 16-bit floats. Where a float32 result is ill-conditioned (an
                  order-8 derivative through a sqrt that cancels, seed 9411), Triton must be
                  as close to the float64 torch target as torch float32 is (4x its error,
                  + 1e-4). Programs that take a path must be refused with a clear error.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import torch
from xdsl.dialects import func

import geomir

from .geo_programs import listing, without_annotations

JETS = "insert-transport,jet-expand,jet-fuse,cse,dce"  # the default pipeline less verify-contracts
REFERENCE = "insert-transport,cse,dce"
TRITON_DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64}


def _sample(*args, **kwargs):
    from backends.helpers import sample  # tests/ is on sys.path (the tests and the fuzzer put it there)

    return sample(*args, **kwargs)


def _public_functions(source: str, passes: str) -> dict[str, func.FuncOp]:
    return {op.sym_name.data: op for op in geomir.to_ir(source, passes=passes).ops
            if isinstance(op, func.FuncOp) and op.sym_visibility is None}


def _arrays(out) -> list[np.ndarray]:
    return [np.asarray(o.detach() if hasattr(o, "detach") else o, dtype=np.float64)
            for o in (out if isinstance(out, tuple) else (out,))]


def check_jets(source: str) -> None:
    """Taylor-mode jets (torch and JAX) against the autodiff reference; see the module doc."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    source = without_annotations(source)
    shown = listing(source)
    reference = geomir.compile(source, target="torch", passes=REFERENCE)
    others = {"torch jets": geomir.compile(source, target="torch", passes=JETS),
              "jax jets": geomir.compile(source, target="jax", passes=JETS)}
    funcs = _public_functions(source, REFERENCE)
    models = dict(re.findall(r"(?m)^derive (\w+) = \w+\((\w+)", source))  # request -> model
    directional = set(re.findall(r"(?m)^derive (\w+) = directional\(", source))
    for name, f in funcs.items():
        rng = np.random.default_rng(0)
        xs = [_sample(t, rng, 3, torch.float64) for t in f.function_type.inputs.data]
        params64 = reference.init_params(seed=1, dtype=torch.float64)
        want = _arrays(getattr(reference, name)(params64, *xs))
        noise: list = []  # the reference's estimated rounding error, made on first need

        def reference_noise(name=name, xs=xs, params64=params64, want=want, noise=noise) -> list:
            if not noise:
                noise.extend(np.zeros_like(a) for a in want)
                if name in directional:
                    n_in = len(funcs[models[name]].function_type.inputs.data)
                    for s in (3.0, 0.3):
                        along = _arrays(getattr(reference, name)(params64, *xs[:n_in], *(s * v for v in xs[n_in:])))
                        for a, a_s, e in zip(want, along, noise):
                            scale = s ** -np.arange(a.shape[0]).reshape(-1, *[1] * (a.ndim - 1))  # axis 0: order
                            np.maximum(e, np.abs(a - a_s * scale), out=e)
            return noise
        # Rows where the model's own value is NaN (log of a negative number, ...): the jets
        # are NaN in every coefficient there, where autodiff may still give finite numbers.
        if name in models:
            model = models[name]
            n_in = len(funcs[model].function_type.inputs.data)
            value = _arrays(getattr(reference, model)(reference.init_params(seed=1, dtype=torch.float64), *xs[:n_in]))
            defined = np.all([np.isfinite(v).reshape(3, -1).all(-1) for v in value], axis=0)
        for label, m in others.items():
            jax_side = label.startswith("jax")
            params = m.init_params(seed=1, dtype=jnp.float64 if jax_side else torch.float64)
            args = [jnp.asarray(x.numpy()) for x in xs] if jax_side else xs
            got = _arrays(getattr(m, name)(params, *args))
            for i, (a, b) in enumerate(zip(want, got, strict=True)):
                where = f"{label}, @{name}\n{shown}"
                assert a.shape == b.shape, f"shape {b.shape}, reference {a.shape}: {where}"
                ok = np.isfinite(a)
                if name in models:  # a request's results: the batch is axis -2
                    ok &= defined[:, None]
                assert np.isfinite(b[ok]).all(), f"non-finite where the reference is finite: {where}"
                scale = max(np.abs(a[ok]).max(initial=0.0), 1.0)
                err = np.abs(a[ok] - b[ok]).max(initial=0.0) / scale
                if err > 1e-8:  # beyond the reference's own rounding?
                    e = reference_noise()[i]
                    err = np.abs(a[ok] - b[ok]) - 8 * np.nan_to_num(e[ok], nan=0.0, posinf=0.0)
                    err = err.max(initial=0.0) / scale
                assert err <= 1e-8, f"differs from the reference by {err:.2e} (beyond its own rounding): {where}"


def check_triton(source: str, device: str = "cpu") -> None:
    """The Triton target against the torch target (same passes); see the module doc.
    ``device="cuda"``: both run on the GPU (tests/gpu), the kernels compiled for it."""
    from geomir.diagnostics import UsageError

    source = without_annotations(source)
    shown = listing(source)
    if "path " in source:
        try:
            geomir.compile(source, target="triton", passes=JETS)
        except UsageError as e:
            assert "not on triton" in str(e), f"refused with {e}:\n{shown}"
            return
        raise AssertionError(f"a program with a path compiled for triton:\n{shown}")
    ref = geomir.compile(source, target="torch", passes=JETS)
    mod = geomir.compile(source, target="triton", passes=JETS)
    for name, f in _public_functions(source, JETS).items():
        rng = np.random.default_rng(0)
        xs = [_sample(t, rng, 3, torch.float64).to(device, TRITON_DTYPES[str(t.element_type)])
              for t in f.function_type.inputs.data]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fallbacks (float64, autograd) are reported, not errors
            got = _outputs(mod, name, xs)
        want = _outputs(ref, name, xs)
        exact = None  # the torch target in float64, computed only if needed
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            where = f"@{name}\n{shown}"
            assert a.shape == b.shape and a.dtype == b.dtype, f"{b.shape} {b.dtype}, torch {a.shape} {a.dtype}: {where}"
            tol, f32 = 2e-2 if a.dtype.itemsize == 2 else 1e-4, a.dtype == torch.float32
            a, b = a.detach().double(), b.detach().double()
            ok = torch.isfinite(a)
            assert torch.isfinite(b[ok]).all(), f"non-finite where the torch target is finite: {where}"
            err = _rel(a, b, ok)
            if err > tol and f32 and all(x.dtype == torch.float32 for x in xs):
                # ill-conditioned in float32 (an order-8 derivative through a sqrt that
                # cancels): then Triton must be as close to float64 as torch float32 is
                exact = exact or _outputs(ref, name, [x.double() for x in xs], torch.float64)
                e = exact[i].detach().double()
                both = ok & torch.isfinite(e)
                err = _rel(e, b, both) - 4 * _rel(e, a, both)
            assert err <= tol, f"differs from the torch target by {err:.2e}: {where}"


def _rel(a, b, ok) -> float:
    return float((a[ok] - b[ok]).abs().max()) / max(float(a[ok].abs().max()), 1.0) if ok.any() else 0.0


def _outputs(module, name, xs, dtype=None) -> tuple:
    params = module.init_params(seed=1) if dtype is None else module.init_params(seed=1, dtype=dtype)
    params = {k: v.to(xs[0].device) for k, v in params.items()} if xs else params
    out = getattr(module, name)(params, *xs)
    return out if isinstance(out, tuple) else (out,)
