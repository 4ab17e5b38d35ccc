"""CUDA-graph replay of a generated Triton function: one launch for the whole model instead
of one Python launch per layer.

Each layer's host wrapper and Triton launch cost tens of microseconds of Python, which at
benchmark sizes is as long as the kernel (benchmarks/results/triton_profile-A-H100.json:
the 5-layer forward pass spends 0.35 ms in kernels and 0.79 ms in wall time). ``graphed(fn)``
records ``fn(params, *inputs)`` once per signature into a ``torch.cuda.CUDAGraph`` and
replays it (inputs by position or by name, as ``fn`` takes them: names are bound to
their positions first, so both spellings share one graph):

* the signature is the inputs' shapes, dtypes and devices, the parameter tensors' storage
  (``data_ptr``, shape, dtype), the module's ``PRECISION`` and whether inference mode is on: updating the parameters in
  place (an optimizer step) is seen by the replay; a new parameter dict records a new graph;
* inputs are copied into the graph's own buffers and the outputs are cloned, so results
  never alias each other or the caller's tensors;
* the first call of a signature runs ``fn`` twice on a side stream first, so that Triton's
  autotuning and every cached constant happen outside the recording;
* CPU tensors (``TRITON_INTERPRET=1``), a derivative being taken (requires_grad, a
  forward-mode dual tensor, a torch.func transform: vmap too), call ``fn`` directly.

    fast = geomir.backends.triton.graphs.graphed(mod.d4)   # or runtime.graphed
    y = fast(params, x, v)
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch.utils import _pytree


class GraphedFunction:
    """``fn(params, *inputs)`` replayed from one CUDA graph per signature (see module)."""

    def __init__(self, fn):
        self.fn = fn
        self.graphs: dict = {}
        functools.update_wrapper(self, fn)
        try:
            self._parameters = inspect.signature(fn)
        except (TypeError, ValueError):  # no signature (a builtin): keywords call fn directly
            self._parameters = None

    def _positional(self, params: dict, inputs: tuple, named: dict) -> tuple | None:
        """The inputs in ``fn``'s order, those given by name put at their positions; None
        when they cannot all be (an unknown or repeated name, a keyword-only parameter):
        ``fn`` then runs directly and reports the mistake as it would unwrapped."""
        if not named:
            return inputs
        if self._parameters is None:
            return None
        try:
            bound = self._parameters.bind(params, *inputs, **named)
        except TypeError:
            return None
        return None if bound.kwargs else bound.args[1:]

    def _signature(self, params: dict, inputs: tuple):
        precision = getattr(self.fn, "__globals__", {}).get("PRECISION")
        return (tuple((tuple(t.shape), t.dtype, t.device) for t in inputs),
                tuple((k, v.data_ptr(), tuple(v.shape), v.dtype) for k, v in sorted(params.items())),
                precision, torch.is_inference_mode_enabled())

    def _eligible(self, params: dict, inputs: tuple) -> bool:
        """Replay only plain CUDA tensors with no derivative or transform around them: the
        launch sites' own check (``runtime._transformed``: requires_grad, forward-mode dual
        tensors, torch.func grad/jvp/vjp/vmap), so a graph never replays what the sites would
        run in torch (a replay has no autograd graph, tangent or batch dimension)."""
        from geomir.backends.triton.runtime import _transformed

        tensors = [*inputs, *params.values()]
        if not inputs or not all(isinstance(t, torch.Tensor) for t in tensors):
            return False
        if _transformed(tensors) is not None:
            return False
        return all(t.is_cuda for t in tensors)

    def _record(self, params: dict, inputs: tuple):
        static = tuple(t.clone() for t in inputs)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self.fn(params, *static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.fn(params, *static)
        return static, graph, out

    def __call__(self, params: dict, /, *inputs, **named):
        positional = self._positional(params, inputs, named)
        if positional is None:
            return self.fn(params, *inputs, **named)
        inputs = positional
        if not self._eligible(params, inputs):
            return self.fn(params, *inputs)
        key = self._signature(params, inputs)
        entry = self.graphs.get(key)
        if entry is None:
            entry = self.graphs[key] = self._record(params, inputs)
        static, graph, out = entry
        for buffer, value in zip(static, inputs):
            buffer.copy_(value)
        graph.replay()
        return _pytree.tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, out)


def graphed(fn) -> GraphedFunction:
    """``fn`` (a generated function ``fn(params, *inputs)``) replayed from CUDA graphs."""
    return GraphedFunction(fn)
