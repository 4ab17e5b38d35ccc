"""Hunt 4 (toroidal memory): a saved entry moved to another (in-range) slot, and a complex
``pos`` array, loaded silently (docs/winding.md: a damaged file is a ToroidalMemoryError).
An honest save of several dtypes still loads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geomir.memory import ToroidalMemory, ToroidalMemoryError


def _loop(k: int, off: float) -> torch.Tensor:
    s = torch.linspace(0, 1, 40)[:, None]
    return torch.remainder(torch.cat([k * 2 * math.pi * s + off, 0 * s + off], -1), 2 * math.pi)


@pytest.fixture
def saved(tmp_path):
    mem = ToroidalMemory(dims=2, capacity=8, lattice_size=16, on_collision="replace")
    slot = int(mem.write(_loop(3, 0.5), torch.tensor(1.0)).slot[0])
    mem.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as z:
        return tmp_path, {k: z[k] for k in z.files}, slot


def _load(tmp_path, arrays, **changed):
    path = tmp_path / "changed.npz"
    with open(path, "wb") as f:
        np.savez(f, **{**arrays, **changed})
    return ToroidalMemory.load(path)


def test_an_entry_under_another_slot_is_refused(saved):
    tmp_path, arrays, slot = saved
    assert len(_load(tmp_path, arrays)) == 1  # unchanged: loads
    with pytest.raises(ToroidalMemoryError, match=f"filed under slot {(slot + 5) % 16}, not under the lattice slot "
                                                  f"nearest its position \\({slot}\\)"):
        _load(tmp_path, arrays, slot=np.array([(slot + 5) % 16], dtype=np.int64))


def test_complex_positions_are_refused(saved):
    tmp_path, arrays, _ = saved
    with pytest.raises(ToroidalMemoryError, match="'pos' has shape .* complex64, expected .* floating-point"):
        _load(tmp_path, arrays, pos=arrays["pos"].astype(np.complex64) + 1j)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_honest_saves_of_every_dtype_load(tmp_path, dtype):
    mem = ToroidalMemory(dims=2, capacity=16, lattice_size=7, dtype=dtype)
    for k in range(5):
        mem.write(_loop(k, 0.1 * k), torch.tensor(float(k)))
    mem.save(tmp_path / "m.npz")
    assert len(ToroidalMemory.load(tmp_path / "m.npz")) == len(mem)
