"""Trained weights for ``verify-contracts`` (``geomc --weights=FILE``): prove the contracts
of the weights a model will deploy with, not of its seed-0 initialisation.

A weights file is a NumPy ``.npz`` keyed by the IR parameter names
(``RobustClassifier.linear0.weight``; what :func:`save_weights` writes from a parameter
dict or a compiled ``nn.Module``), or a PyTorch ``.pt``/``.pth`` file holding such a dict or a
``ModelModule.state_dict()``. Manifold points are stored as points (the prover maps ball
points to their tangent at the origin itself). Recorded weight transforms (quantization,
pruning, nonnegativity) are applied to the loaded values as to the drawn ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geomir.diagnostics import UsageError


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _not_real(value) -> str | None:
    """The dtype name of an array that does not hold real numbers (complex, bool, strings,
    objects), or None: floats and integers are weights (integers converted)."""
    if hasattr(value, "is_floating_point"):  # a torch tensor
        name = str(value.dtype).removeprefix("torch.")
        return name if value.dtype.is_complex or name == "bool" else None
    dtype = np.asarray(value).dtype
    return None if dtype.kind in "fiu" else dtype.name


def ir_name(key: str) -> str:
    """The IR parameter name of a weights-file key: a ``ModelModule.state_dict()`` key
    (``params.`` then ``backends.torch.model.param_key`` of the name) is decoded exactly;
    any other key is the IR name itself."""
    if not key.startswith("params."):
        return key
    key = key.removeprefix("params.")
    if not key.startswith("%"):
        return key.replace("__", ".")
    raw, i = bytearray(), 1
    while i < len(key):
        if key[i] == "%":
            raw.append(int(key[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(key[i].encode())
            i += 1
    return raw.decode()


def save_weights(params, path: str | Path) -> Path:
    """Write ``params`` (name -> array/tensor, or a compiled ``ModelModule``) as ``.npz``."""
    if hasattr(params, "named_geo_parameters"):
        params = params.named_geo_parameters()
    path = Path(path)
    np.savez(path, **{name: _to_numpy(v) for name, v in params.items()})
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _file_kind(path: Path) -> str | None:
    """"npz" (a zip of .npy arrays), "torch" (a torch.save zip, or any .pt/.pth) or None,
    from the file's contents: NumPy would read any other file as a pickle and say so."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return "torch" if path.suffix in (".pt", ".pth") else None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    return "npz" if all(n.endswith(".npy") for n in names) else None


class WeightFile:
    """The parameters of one weights file, by IR name, as float64 arrays."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.arrays = self._load()

    def __str__(self) -> str:
        return str(self.path)

    def _load(self) -> dict[str, np.ndarray]:
        if self.path.is_dir():
            raise UsageError(f"weights file '{self.path}' is a directory, not a .npz archive or a .pt state dict")
        if not self.path.is_file():
            raise UsageError(f"weights file '{self.path}' does not exist")
        kind = _file_kind(self.path)
        if kind is None:
            raise UsageError(f"cannot read weights file '{self.path}': not a .npz archive or a .pt state dict")
        try:
            if kind == "torch":
                import torch

                data = torch.load(self.path, map_location="cpu", weights_only=True)
            else:
                with np.load(self.path, allow_pickle=False) as npz:
                    data = {k: npz[k] for k in npz.files}
        except Exception as err:  # a corrupt or foreign file: say which and why
            raise UsageError(f"cannot read weights file '{self.path}': {err}") from None
        if not isinstance(data, dict):
            raise UsageError(f"weights file '{self.path}' holds a {type(data).__name__}, expected a dict of arrays")
        out: dict[str, np.ndarray] = {}
        keys: dict[str, str] = {}
        for key, value in data.items():
            name = ir_name(key)
            if name in keys:
                raise UsageError(f"weights file '{self.path}': keys '{keys[name]}' and '{key}' both name the "
                                 f"parameter '{name}'")
            keys[name] = key
            dtype = _not_real(value)
            if dtype is not None:
                raise UsageError(f"weights file '{self.path}': '{name}' holds {dtype} values; weights are real "
                                 "numbers (floating point; integers are converted)")
            out[name] = _to_numpy(value)
        return out

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The parameter ``name``; UsageError when it is missing, misshapen or not finite."""
        if name not in self.arrays:
            known = ", ".join(sorted(self.arrays)[:8]) + (", ..." if len(self.arrays) > 8 else "")
            raise UsageError(f"weights file '{self.path}' has no parameter '{name}' (it has: {known or 'nothing'})")
        value = self.arrays[name]
        if tuple(value.shape) != tuple(shape):
            raise UsageError(f"weights file '{self.path}': '{name}' has shape {tuple(value.shape)}, "
                             f"the model expects {tuple(shape)}")
        if not np.all(np.isfinite(value)):
            raise UsageError(f"weights file '{self.path}': '{name}' contains NaN or inf")
        return value
