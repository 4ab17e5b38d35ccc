"""A pickle-free format for state trees: workflow values, model parameters, optimizer state.

``encode`` / ``decode`` round-trip exactly: dicts (str or int keys, order kept), lists,
tuples, str, int, float (nan and inf included), bool, None, bytes, numpy arrays and
scalars (any non-object dtype and shape), and CPU torch tensors (any dtype; the ones
numpy lacks, such as bfloat16, travel as float32/complex64 and come back in their own
dtype). A pydantic model is stored as its ``model_dump(mode="python")`` dict.

Layout: ``b"APELSTATE1\\n"``, one line of JSON describing the tree, then (only if the
tree holds arrays) an ``.npz`` payload written with ``numpy.savez`` (object arrays are
refused) and read with ``allow_pickle=False``. Decoding never executes code from the data.

JSON nodes: None, bool, int, str and finite floats are themselves; a list is a JSON
array; everything else is a one-key object: ``{"dict": [[key, value], ...]}``,
``{"tuple": [...]}``, ``{"float": "nan" | "inf" | "-inf"}``, ``{"bytes": base64}``,
``{"array": name}``, ``{"scalar": name}`` (a numpy scalar) and
``{"tensor": name, "dtype": torch dtype name}``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import sys
import zipfile
from typing import Any, Callable

import numpy as np

from geomir.diagnostics import GeomirError

MAGIC = b"APELSTATE1\n"

_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StateCodecError(GeomirError):
    """A value that cannot be stored, or stored data that cannot be read back."""


def encode(value: Any) -> bytes:
    """Serialize a state tree; raises StateCodecError naming the path of an unsupported value."""
    arrays: dict[str, np.ndarray] = {}

    def store(arr: np.ndarray) -> str:
        name = f"a{len(arrays)}"
        arrays[name] = arr
        return name

    tree = _to_json(value, "state", store, canonical=False, active=set())
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(json.dumps(tree, separators=(",", ":"), allow_nan=False).encode() + b"\n")
    if arrays:
        np.savez(out, **arrays)  # object arrays were refused above: nothing is pickled
    return out.getvalue()


def decode(data: bytes) -> Any:
    """Rebuild the tree ``encode`` wrote; raises StateCodecError for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StateCodecError(f"cannot decode state from a {type(data).__name__}: expected bytes")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise StateCodecError("corrupt state: missing the APELSTATE1 header")
    line_end = data.find(b"\n", len(MAGIC))
    if line_end < 0:
        raise StateCodecError("corrupt state: truncated JSON header")
    try:
        tree = json.loads(data[len(MAGIC):line_end])
        payload = data[line_end + 1:]
        arrays = np.load(io.BytesIO(payload), allow_pickle=False) if payload else {}
        return _from_json(tree, arrays)
    except StateCodecError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise StateCodecError(f"corrupt state: {e}") from e


def digest(value: Any) -> str:
    """SHA-256 hex of a canonical encoding: equal trees (dict order aside) give equal digests."""

    def describe(arr: np.ndarray) -> list:
        data = np.ascontiguousarray(arr).tobytes()
        return [arr.dtype.str, list(arr.shape), hashlib.sha256(data).hexdigest()]

    tree = _to_json(value, "state", describe, canonical=True, active=set())
    text = json.dumps(tree, separators=(",", ":"), allow_nan=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _to_json(value: Any, path: str, leaf: Callable[[np.ndarray], Any], canonical: bool, active: set) -> Any:
    """The JSON node for ``value``; ``leaf`` turns an array into its reference."""
    if isinstance(value, np.generic):  # before the scalar checks: np.float64 is a float
        return {"scalar": leaf(_storable(np.asarray(value), path))}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.ndarray):
        return {"array": leaf(_storable(value, path))}
    # A tensor (a pydantic model) can only exist once torch (pydantic) is imported; another
    # thread may be importing it right now, so the module may not have its classes yet.
    tensor = getattr(sys.modules.get("torch"), "Tensor", None)
    if tensor is not None and isinstance(value, tensor):
        torch = sys.modules["torch"]
        return {"tensor": leaf(_tensor_to_numpy(torch, value, path)), "dtype": str(value.dtype).removeprefix("torch.")}
    base_model = getattr(sys.modules.get("pydantic"), "BaseModel", None)
    if base_model is not None and isinstance(value, base_model):
        value = value.model_dump(mode="python")
    if not isinstance(value, (dict, list, tuple)):
        raise StateCodecError(f"{path}: cannot store {_a(type(value).__name__)}")
    if id(value) in active:
        raise StateCodecError(f"{path}: the value contains itself")
    active.add(id(value))
    try:
        if isinstance(value, dict):
            pairs = [[_key(k, path), _to_json(v, f"{path}[{k!r}]", leaf, canonical, active)] for k, v in value.items()]
            if canonical:
                pairs.sort(key=lambda kv: json.dumps(kv[0]))
            return {"dict": pairs}
        items = [_to_json(v, f"{path}[{i}]", leaf, canonical, active) for i, v in enumerate(value)]
        return {"tuple": items} if isinstance(value, tuple) else items
    finally:
        active.discard(id(value))


def _from_json(node: Any, arrays: Any) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_from_json(v, arrays) for v in node]
    if not isinstance(node, dict) or not node:
        raise StateCodecError(f"corrupt state: unexpected node {node!r:.60}")
    tag = next(iter(node))
    body = node[tag]
    if tag == "dict":
        return {_check_key(k): _from_json(v, arrays) for k, v in body}
    if tag == "tuple":
        return tuple(_from_json(v, arrays) for v in body)
    if tag == "float":
        return _SPECIAL_FLOATS[body]
    if tag == "bytes":
        return base64.b64decode(body, validate=True)
    if tag == "array":
        return arrays[body]
    if tag == "scalar":
        return arrays[body][()]
    if tag == "tensor":
        return _numpy_to_tensor(arrays[body], node["dtype"])
    raise StateCodecError(f"corrupt state: unknown node kind {tag!r}")


def _key(key: Any, path: str) -> str | int:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return int(key)
    raise StateCodecError(f"{path}: dict key {key!r} is {_a(type(key).__name__)}; only str and int keys can be stored")


def _check_key(key: Any) -> str | int:
    if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
        return key
    raise StateCodecError(f"corrupt state: bad dict key {key!r:.60}")


def _storable(arr: np.ndarray, path: str) -> np.ndarray:
    if arr.dtype.hasobject:
        raise StateCodecError(f"{path}: cannot store a numpy array of dtype {arr.dtype} (it holds Python objects)")
    return arr


def _tensor_to_numpy(torch: Any, t: Any, path: str) -> np.ndarray:
    if t.layout != torch.strided or t.is_quantized:
        raise StateCodecError(f"{path}: cannot store a {t.layout} tensor; only dense tensors")
    t = t.detach().cpu().resolve_conj().resolve_neg()
    try:
        return t.numpy()
    except TypeError:  # a dtype numpy lacks: widen exactly, the dtype is recorded beside it
        if t.is_complex():
            return t.to(torch.complex64).numpy()
        if t.is_floating_point():
            return t.to(torch.float32).numpy()
        raise StateCodecError(f"{path}: cannot store a tensor of dtype {t.dtype}") from None


def _numpy_to_tensor(arr: np.ndarray, dtype_name: str) -> Any:
    try:
        import torch
    except ImportError:
        raise StateCodecError("the state holds torch tensors, but torch is not installed") from None
    dtype = getattr(torch, dtype_name, None)
    if not isinstance(dtype, torch.dtype):
        raise StateCodecError(f"corrupt state: unknown torch dtype {dtype_name!r}")
    return torch.from_numpy(arr).to(dtype)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun
