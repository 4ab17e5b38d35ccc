"""Where geomir-Triton's time goes on a GPU (issue 6): for each task and dot precision,
the wall-clock time of one call, the GPU span between CUDA events around it, the sum of
its CUDA kernels (torch.profiler), and the time of a CUDA-graph replay of the same call;
plus the configs the autotuner chose. Wall time far above the kernel sum means host
overhead (launches, Python); a kernel sum far above the matmul floor means slow kernels.

    python benchmarks/triton_profile.py --size A --out triton_profile.json   # CUDA only
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_jets import PASSES, SIZES, flops, geo_source, make_weights  # noqa: E402


def _median_ms(fn, sync, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def profile_call(fn, repeats: int) -> dict:
    import torch

    sync = torch.cuda.synchronize
    for _ in range(3):
        fn()
    sync()
    row = {"wall_ms": _median_ms(fn, sync, repeats)}
    spans = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        spans.append(a.elapsed_time(b))
    row["gpu_span_ms"] = statistics.median(spans)
    calls = 5
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        sync()
    per_kernel: dict = defaultdict(float)
    launches = 0
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            per_kernel[e.name] += e.device_time / 1e3 / calls
            launches += 1
    row["kernel_sum_ms"] = sum(per_kernel.values())
    row["launches_per_call"] = launches / calls
    row["kernels_ms"] = dict(sorted(per_kernel.items(), key=lambda kv: -kv[1])[:8])
    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        row["graph_replay_ms"] = _median_ms(graph.replay, sync, repeats)
    except Exception as err:  # noqa: BLE001 - reported, not fatal
        row["graph_error"] = f"{type(err).__name__}: {err}"
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="A")
    ap.add_argument("--precision", nargs="+", default=["ieee", "tf32x3"])
    ap.add_argument("--tasks", nargs="+", default=["forward", "d4", "lap"])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("triton_profile.json"))
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    import geomir
    from geomir.backends.triton import layer as triton_layer
    from geomir.backends.triton import runtime as triton_runtime

    if not torch.cuda.is_available():
        print("triton_profile: needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    s = SIZES[args.size]
    n, d, width, layers = s["n"], s["d"], s["width"], s["layers"]
    source = geo_source(d, width, layers, "float32")
    cache = Path(tempfile.mkdtemp(prefix="triton_profile_"))
    tmod = geomir.compile(source, target="torch", passes=PASSES, cache_dir=cache)
    weights = make_weights(tmod, layers, "float32")
    xmod = geomir.compile(source, target="triton", passes=PASSES, cache_dir=cache)
    triton_runtime.set_strict(True)
    rng = np.random.default_rng(2)
    p = {k: torch.from_numpy(w).cuda() for k, w in weights.items()}
    x = torch.from_numpy(rng.standard_normal((n, d)).astype(np.float32)).cuda()
    v = torch.from_numpy((rng.standard_normal((n, d)) / np.sqrt(d)).astype(np.float32)).cuda()
    calls = {"forward": lambda: xmod.U(p, x), "d2": lambda: xmod.d2(p, x, v),
             "d4": lambda: xmod.d4(p, x, v), "lap": lambda: xmod.lap(p, x)}
    rows = []
    with torch.inference_mode():
        for prec in args.precision:
            xmod.PRECISION = prec
            for task in args.tasks:
                t0 = time.perf_counter()
                calls[task]()
                torch.cuda.synchronize()
                row = {"task": task, "precision": prec, "first_call_s": time.perf_counter() - t0}
                row.update(profile_call(calls[task], args.repeats))
                row["kernel_tflops"] = flops(task, n, d, width, layers) / (row["kernel_sum_ms"] * 1e-3) / 1e12
                rows.append(row)
                print(f"{task:8s} {prec:7s} wall {row['wall_ms']:7.3f}  span {row['gpu_span_ms']:7.3f}  "
                      f"kernels {row['kernel_sum_ms']:7.3f} ({row['launches_per_call']:.0f} launches, "
                      f"{row['kernel_tflops']:.1f} TFLOP/s)  graph {row.get('graph_replay_ms', float('nan')):7.3f}",
                      flush=True)
                for name, ms in row["kernels_ms"].items():
                    print(f"      {ms:7.3f} ms  {name[:90]}", flush=True)
    tuned = {}
    for label, kern in (("jet", triton_layer._jet_kernel), ("laplacian", triton_layer._lap_kernel)):
        tuned[label] = {str(k): str(c) for k, c in getattr(kern, "cache", {}).items()}
    tuned["launch"] = triton_layer.tuned_configs()  # the same choices, with EVEN_K (layer._launch)
    print(json.dumps(tuned, indent=1))
    result = {"gpu": torch.cuda.get_device_name(0), "size": args.size, "n": n, "d": d, "width": width,
              "layers": layers, "rows": rows, "autotuned": tuned,
              "versions": {"torch": torch.__version__, "triton": __import__("triton").__version__}}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
