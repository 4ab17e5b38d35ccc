"""How long JAX takes to compile (and run) K-th order derivatives through manifold maps:
geomir's Taylor-mode jets against jax.experimental.jet and nested jax.jvp, in one process.

The model chains eight maps of one manifold (insert-transport adds the two transports):

    y = expmap0(tanh(logmap0(v))),  x = expmap(v, transp(0, v, logmap0(y))),
    Chain(v) = expmap0(transp(x, 0, logmap(x, y)))

(the tanh keeps gyrovector identities from folding the chain into a linear map).

and each method computes d^k/dt^k Chain(v + t u), k = 0..K, for N points, under jax.jit:

| method | what |
|---|---|
| `geomir` | `derive d = directional(Chain, order = K)` of the generated JAX module |
| `jax.jet` | `jax.experimental.jet.jet` of the generated `Chain` (the runtime's maps) |
| `nested_jvp` | K nested `jax.jvp` of the same `Chain` (its K-th derivative only) |

For each it records the jaxpr's size, the seconds to trace and lower, the seconds XLA takes
to compile (the first call's cost), the median time of a compiled call, and the largest
difference from geomir's derivatives (relative to their size). Nested jvp grows as 2^K; it
is skipped above ``--nested-max-order``. A method that cannot trace the model (jax.jet has
no rule for ``atan``, which the sphere's logmap uses) is recorded as unsupported.

    python benchmarks/bench_jax_compile.py                     # K = 2, 4, 7 on three manifolds
    python benchmarks/bench_jax_compile.py --orders 2 --manifolds poincare --repeats 3

Writes JSON (default benchmarks/results/bench_jax_compile.json). Nothing here is a timed
test; tests/benchmarks/test_bench_jax_compile.py runs a tiny setting for its shape.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANIFOLDS = {  # name -> (.geo declaration, dimension of the points)
    "poincare": ("poincare(c = 1.0)", 3),
    "sphere": ("sphere()", 3),
    "lorentz": ("lorentz(c = 1.0)", 3),
}
METHODS = ("geomir", "jax.jet", "nested_jvp")


def source(manifold: str, K: int) -> str:
    decl, n = MANIFOLDS[manifold]
    return f"""manifold M = {decl}
model Chain(v: M[{n}]) -> M[{n}] {{
  let y = expmap0(tanh(logmap0(v)))
  let x = expmap(v, logmap0(y))
  return expmap0(logmap(x, y))
}}
derive d = directional(Chain, order = {K})
"""


def points(manifold: str, N: int, seed: int):
    """N points near the origin of the manifold (the image of small tangents) and N unit-size
    directions tangent there."""
    import jax.numpy as jnp

    from geomir.backends.jax import runtime

    n = MANIFOLDS[manifold][1]
    space = {"poincare": runtime.PoincareBall(c=1.0), "sphere": runtime.Sphere(), "lorentz": runtime.Lorentz(c=1.0)}[manifold]
    rng = np.random.default_rng(seed)
    v = 0.4 * rng.normal(size=(N, n))
    if manifold != "poincare":
        v[:, 0] = 0.0  # tangent at the origin (1, 0, ...)
    x = space.expmap0(jnp.asarray(v))
    u = space.proju(x, jnp.asarray(rng.normal(size=(N, n))))
    return x, u


def _compile(fn, *args) -> dict:
    import jax

    t0 = time.perf_counter()
    traced = jax.jit(fn).trace(*args)  # traced once: its jaxpr gives the size, then it lowers
    eqns = len(traced.jaxpr.eqns)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3 = time.perf_counter()
    return {"eqns": eqns, "trace_s": t1 - t0, "lower_s": t2 - t1, "xla_compile_s": t3 - t2, "compiled": compiled}


def _time(compiled, args, repeats: int) -> float:
    import jax

    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_case(manifold: str, K: int, args, cache: str) -> list[dict]:
    import jax
    import jax.numpy as jnp
    from jax.experimental import jet

    import geomir

    module = geomir.compile(source(manifold, K), target="jax", cache_dir=cache)
    x, u = points(manifold, args.n, args.seed)

    def chain(x):
        return module.Chain({}, x)

    def with_jet(x, u):
        primal, series = jet.jet(chain, (x,), ((u,) + tuple(jnp.zeros_like(u) for _ in range(K - 1)),))
        return jnp.stack([primal, *series])

    def nested(x, u):
        g = chain
        for _ in range(K):
            g = (lambda g: lambda y: jax.jvp(g, (y,), (u,))[1])(g)
        return g(x)

    fns = {"geomir": lambda x, u: module.d({}, x, u), "jax.jet": with_jet, "nested_jvp": nested}
    rows, reference = [], None
    for method in METHODS:
        if method != "geomir" and method not in args.methods:
            continue
        row = {"manifold": manifold, "K": K, "method": method, "n": args.n}
        if method == "nested_jvp" and K > args.nested_max_order:
            row["skipped"] = f"K > --nested-max-order {args.nested_max_order} (2^K evaluations)"
            rows.append(row)
            continue
        try:
            c = _compile(fns[method], x, u)
        except Exception as err:  # noqa: BLE001 - jax.jet has no rule for some primitives (atan)
            row["unsupported"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:200]
            rows.append(row)
            if not args.quiet:
                print(f"{manifold:9s} K={K} {method:11s} cannot: {row['unsupported']}", flush=True)
            continue
        compiled = c.pop("compiled")
        row.update(c)
        row["call_ms"] = 1e3 * _time(compiled, (x, u), args.repeats)
        out = np.asarray(compiled(x, u))
        if method == "geomir":
            reference = out
        else:
            ref = reference[-1] if method == "nested_jvp" else reference
            scale = max(float(np.abs(ref).max()), 1.0)
            row["max_rel_diff_vs_geomir"] = float(np.abs(out - ref).max() / scale)
        row["finite"] = bool(np.isfinite(out).all())
        rows.append(row)
        if not args.quiet:
            print(f"{manifold:9s} K={K} {method:11s} eqns {row['eqns']:6d}  lower {row['trace_s'] + row['lower_s']:6.2f} s"
                  f"  XLA {row['xla_compile_s']:6.2f} s  call {row['call_ms']:8.3f} ms", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifolds", nargs="+", default=list(MANIFOLDS), choices=list(MANIFOLDS))
    p.add_argument("--orders", nargs="+", type=int, default=[2, 4, 7])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                   help="geomir always runs: the others' differences are against it")
    p.add_argument("--n", type=int, default=256, help="points per call")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--nested-max-order", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/bench_jax_compile.json"))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if any(k < 1 for k in args.orders):
        p.error("--orders must be >= 1")

    import jax

    jax.config.update("jax_enable_x64", True)  # float64: the differences measure the methods, not rounding
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or tmp
        rows = [row for m in args.manifolds for K in args.orders for row in run_case(m, K, args, cache)]
    result = {
        "benchmark": "bench_jax_compile",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "cache_dir", "quiet")},
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                    "jax_version": jax.__version__, "backend": jax.default_backend()},
        "dtype": "float64",
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    bad = [r for r in rows if "skipped" not in r and "unsupported" not in r and (not r["finite"] or r.get("max_rel_diff_vs_geomir", 0.0) > 1e-8)]
    for r in bad:
        print(f"error: {r['manifold']} K={r['K']} {r['method']}: finite={r['finite']} "
              f"diff={r.get('max_rel_diff_vs_geomir')}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
