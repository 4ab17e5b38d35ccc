"""Random well-typed programs (geo_programs.py) run: every model and derive request, on
PyTorch and JAX, with the default passes (jet-expand, jet-fuse: Taylor-mode jets), gives
what the autodiff reference gives (the same program without jet-expand: nested jvp,
torch.func). Contract annotations are dropped: random weights rarely meet them, and
verify-contracts has its own tests. Inputs are valid points (backends/helpers.sample),
float64, 3 rows; where the reference is finite the others are finite and agree to 1e-8
(relative to max(|reference|, 1)), except in a request's rows where the model's own value
is NaN (log of a negative number): the jets are NaN there, autodiff may not be.

Few programs per run (hypothesis draws new ones every run; more with
GEOMIR_RUN_EXAMPLES=N): each compiles three times and runs every function on both
frameworks. This found the jet rules missing in test_jet_edge_cases.py.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from xdsl.dialects import func  # noqa: E402

import geomir  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared backend helpers
from backends.helpers import sample  # noqa: E402  (tests/backends, as pytest names it)

from .geo_programs import listing, well_typed_programs, without_annotations  # noqa: E402

jax.config.update("jax_enable_x64", True)

JETS = "insert-transport,jet-expand,jet-fuse,cse,dce"  # the default pipeline less verify-contracts
REFERENCE = "insert-transport,cse,dce"
RUNS = settings(max_examples=int(os.environ.get("GEOMIR_RUN_EXAMPLES", "6")), deadline=None,
                phases=tuple(p for p in Phase if p is not Phase.shrink),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _arrays(out) -> list[np.ndarray]:
    return [np.asarray(o.detach() if hasattr(o, "detach") else o, dtype=np.float64)
            for o in (out if isinstance(out, tuple) else (out,))]


@RUNS
@given(well_typed_programs())
def test_generated_programs_run_and_match_the_autodiff_reference(source):
    source = without_annotations(source)
    shown = listing(source)
    reference = geomir.compile(source, target="torch", passes=REFERENCE)
    others = {"torch jets": geomir.compile(source, target="torch", passes=JETS),
              "jax jets": geomir.compile(source, target="jax", passes=JETS)}
    funcs = {op.sym_name.data: op for op in geomir.to_ir(source, passes=REFERENCE).ops
             if isinstance(op, func.FuncOp) and op.sym_visibility is None}
    models = dict(re.findall(r"(?m)^derive (\w+) = \w+\((\w+)", source))  # request -> model
    for name, f in funcs.items():
        rng = np.random.default_rng(0)
        xs = [sample(t, rng, 3, torch.float64) for t in f.function_type.inputs.data]
        want = _arrays(getattr(reference, name)(reference.init_params(seed=1, dtype=torch.float64), *xs))
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
            for a, b in zip(want, got, strict=True):
                where = f"{label}, @{name}\n{shown}"
                assert a.shape == b.shape, f"shape {b.shape}, reference {a.shape}: {where}"
                ok = np.isfinite(a)
                if name in models:  # a request's results: the batch is axis -2
                    ok &= defined[:, None]
                assert np.isfinite(b[ok]).all(), f"non-finite where the reference is finite: {where}"
                err = np.abs(a[ok] - b[ok]).max(initial=0.0) / max(np.abs(a[ok]).max(initial=0.0), 1.0)
                assert err <= 1e-8, f"differs from the reference by {err:.2e}: {where}"
