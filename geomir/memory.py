"""Toroidal memory: values addressed by where a trajectory ends on the torus T^m *and* how
it wound getting there.

Two histories that end at the same point blend in a flat memory. Here the address of a
trajectory is (end position, winding vector w in Z^m) (``geomir.topology``): entries live
in the winding class of the trajectory that wrote them, and a read returns the entry of
the reader's class that is nearest by torus geodesic distance, with that distance and the
read's certified margin. No entry of another class can be returned, and no per-point
perturbation of the read's trajectory below its margin can change its class.

Layout. Each winding class has the same Kronecker lattice of ``lattice_size`` slots
(default min(capacity, 4096)) on T^m (the R_m low-discrepancy sequence, Roberts 2018: z_k = frac(1/2 + k alpha),
alpha_j = phi_m^-(j+1), phi_m the root of x^(m+1) = x + 1), so slots are spread as evenly as
a sequence can be. An entry keeps its exact address and is filed under its nearest slot;
two entries of one class under one slot are a *collision* (closer than the lattice's
resolution, so their reads may interfere). ``on_collision`` keeps both (default),
replaces the older, or refuses. ``stats()`` reports occupancy and the collision rate.

Channels (topological isolation). ``add_channel(name, classes=..., epsilon=...)`` binds a
channel (a tenant, an agent, a sequence) to a set of winding classes, disjoint from every
other channel's (checked: explicit sets, or residue rules ``w[axis] = r mod k``). Writes
and reads in a channel must wind into its classes and have a margin above its
``epsilon``: otherwise they are refused. An accepted read's class is then certain for
every perturbation below its margin, so an adversary who moves a channel-A trajectory by
less than ``epsilon`` (per point, max-norm) can never get an entry of channel B.
``flag_below`` flags any read whose margin is below it (adversarial-input flagging): its
value is withheld (``found`` is False) and its margin reported.

Tensors are torch tensors on ``device`` (CPU or GPU), batched over the leading axis. A
read looks only at the entries of its own class (a sorted index of class keys), so its
cost grows with the entries per class, not with the size of the memory.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from geomir import topology
from geomir.diagnostics import GeomirError, UsageError

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional extra
    raise UsageError("geomir.memory needs PyTorch, which is not installed (pip install torch==2.13.0)") from None


class ToroidalMemoryError(GeomirError):
    """A write or read the memory refuses (full, wrong channel, margin too small, bad shape)."""


@dataclass(frozen=True)
class Residue:
    """The winding classes with ``w[axis] = residue (mod modulus)``."""

    axis: int
    modulus: int
    residue: int

    def __post_init__(self):
        for name in ("axis", "modulus", "residue"):
            value = getattr(self, name)
            if not _is_int(value):
                raise ToroidalMemoryError(f"residue rule: {name} must be an integer, found {value!r}")
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ToroidalMemoryError(f"residue rule: {name} must fit in int64 (winding vectors are int64), "
                                          f"found {value}")
        if self.modulus < 1:
            raise ToroidalMemoryError(f"residue rule: modulus must be >= 1, found {self.modulus}")

    def contains(self, w):
        # w mod k in [0, k) against r mod k: no int64 overflow for any int64 fields
        return torch.remainder(w[..., self.axis], self.modulus) == self.residue % self.modulus

    def __str__(self) -> str:
        return f"w[{self.axis}] = {self.residue} mod {self.modulus}"


@dataclass
class Channel:
    name: str
    index: int
    classes: frozenset | Residue
    epsilon: float

    def contains(self, w):
        """A bool tensor: which rows of the int64 tensor ``w`` (B, m) are classes of this channel."""
        if isinstance(self.classes, Residue):
            return self.classes.contains(w)
        if not self.classes:
            return torch.zeros(w.shape[:-1], dtype=torch.bool, device=w.device)
        table = torch.tensor(sorted(self.classes), dtype=w.dtype, device=w.device)
        return (w[:, None, :] == table[None]).all(-1).any(-1)

    def describe(self) -> str:
        if isinstance(self.classes, Residue):
            return str(self.classes)
        shown = ", ".join(str(c) for c in sorted(self.classes)[:4])
        return f"{{{shown}{', ...' if len(self.classes) > 4 else ''}}}"


def _disjoint(a: Channel, b: Channel, dims: int) -> str | None:
    """None when a and b share no class, else why they may."""
    ca, cb = a.classes, b.classes
    if isinstance(ca, frozenset) and isinstance(cb, frozenset):
        common = ca & cb
        return f"both hold class {min(common)}" if common else None
    if isinstance(ca, frozenset) or isinstance(cb, frozenset):
        explicit, rule = (ca, cb) if isinstance(ca, frozenset) else (cb, ca)
        common = [c for c in explicit if (c[rule.axis] - rule.residue) % rule.modulus == 0]
        return f"both hold class {min(common)}" if common else None
    if ca.axis != cb.axis:
        return f"'{ca}' and '{cb}' constrain different axes, so some class satisfies both"
    g = math.gcd(ca.modulus, cb.modulus)
    return None if (ca.residue - cb.residue) % g else f"'{ca}' and '{cb}' share classes"


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_LATTICE = 1 << 24
"""The most lattice coordinates (lattice_size × dims) a memory may allocate: 128 MiB in float64."""


def _class_entry(v):
    """One integer of a winding class (Python, NumPy or 0-d torch integer), or None."""
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, torch.Tensor) and v.dtype == torch.bool):
        return None
    try:
        v = operator.index(v)
    except TypeError:
        return None
    return v if _INT64_MIN <= v <= _INT64_MAX else None


def _classes(name: str, classes, dims: int) -> frozenset:
    """``classes`` (an iterable of winding vectors) as a frozenset of int tuples, or a
    ToroidalMemoryError naming what is wrong."""
    expected = f"an iterable of winding classes, each {dims} integers (one class: [(3, 0)], not (3, 0))"
    if isinstance(classes, (str, bytes)):
        raise ToroidalMemoryError(f"channel '{name}': classes must be {expected}, found {classes!r}")
    try:
        rows = list(classes)
    except TypeError:
        raise ToroidalMemoryError(f"channel '{name}': classes must be {expected}, found {classes!r}") from None
    spec = set()
    for c in rows:
        try:
            entries = list(c)
        except TypeError:
            raise ToroidalMemoryError(f"channel '{name}': classes must be {expected}, found {classes!r}") from None
        ints = [_class_entry(v) for v in entries]
        if any(v is None for v in ints):
            bad = entries[ints.index(None)]
            raise ToroidalMemoryError(f"channel '{name}': class {tuple(entries)!r} has the entry {bad!r}; a winding "
                                      "class is a tuple of integers (int64)")
        if len(ints) != dims:
            raise ToroidalMemoryError(f"channel '{name}': class {tuple(ints)} has {len(ints)} entries, expected {dims}")
        spec.add(tuple(ints))
    return frozenset(spec)


def _numpy(t):
    """``t`` as a NumPy array; bfloat16, which NumPy lacks, as float32 (exact; load casts back)."""
    t = t.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


_HASH = [int(h) - (1 << 63) for h in np.random.default_rng(20261206).integers(1, 1 << 63, 257, dtype=np.uint64) | 1]
"""Odd 64-bit multipliers for class keys (fixed: the index of a loaded memory is the same)."""


def r_generator(dims: int) -> float:
    """phi_m, the root in (1, 2) of x^(m+1) = x + 1 for m = ``dims``, to the nearest float:
    bisection to adjacent floats, then the one of smaller residual. (60 Newton steps from 2
    had not converged for m > 80: phi_128 came out 1.2538, the root is 1.00541.)"""
    def gap(x):  # the sign of x^(m+1) - x - 1, in logarithms (x^(m+1) overflows for m > ~1700)
        return (dims + 1) * math.log(x) - math.log1p(x)

    lo, hi = 1.0, 2.0  # gap(1) < 0 < gap(2)
    while True:
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            break
        if gap(mid) < 0:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda x: abs(gap(x)))


def kronecker_lattice(n: int, dims: int) -> np.ndarray:
    """The first ``n`` points of the R_m sequence on [0, 1)^dims (module docstring)."""
    phi = r_generator(dims)
    alpha = phi ** -np.arange(1, dims + 1, dtype=np.float64)
    return np.mod(0.5 + np.arange(n, dtype=np.float64)[:, None] * alpha[None, :], 1.0)


@dataclass(frozen=True)
class WriteResult:
    index: object  # (B,) int64: where each value was stored
    winding: object  # (B, m) int64
    margin: object  # (B,)
    slot: object  # (B,) int64: its lattice slot
    collided: object  # (B,) bool: another entry of its class already held that slot


@dataclass(frozen=True)
class ReadResult:
    value: object  # (B, *value_shape): the entry's value; zeros where not found
    index: object  # (B,) int64, -1 where not found
    distance: object  # (B,) torus geodesic distance to the entry's position; inf where not found
    margin: object  # (B,) the read's certified margin
    winding: object  # (B, m) int64: the read's winding class
    found: object  # (B,) bool
    flagged: object  # (B,) bool: margin below the flag threshold or the channel's epsilon (value withheld)
    reasons: list = field(default_factory=list)  # why each not-found row was not found ('' if found)


@dataclass(frozen=True)
class MemoryStats:
    entries: int
    capacity: int
    occupancy: float  # entries / capacity
    writes: int
    collisions: int
    collision_rate: float  # collisions / writes
    classes: int  # distinct winding classes holding entries
    mean_per_class: float


_HEADER = ("dims", "capacity", "period", "lattice_size", "on_collision", "flag_below", "dtype", "writes", "collisions",
           "channels")
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _check_flag_below(value, what: str) -> None:
    if not (_is_real(value) and math.isfinite(value) and value >= 0):
        raise ToroidalMemoryError(f"{what} must be a number >= 0, found {value!r}")


class ToroidalMemory:
    """Key-value memory addressed by (end position on T^m, winding vector); module docstring."""

    def __init__(self, dims: int, capacity: int, *, period: float | str = "radians", lattice_size: int | None = None,
                 on_collision: str = "keep", flag_below: float = 0.0, device=None, dtype=None):
        if not (_is_int(dims) and _is_int(capacity) and 1 <= dims <= 256 and capacity >= 1):
            raise ToroidalMemoryError(f"dims must be an integer 1..256 and capacity an integer >= 1, "
                                      f"found dims={dims!r}, capacity={capacity!r}")
        if on_collision not in ("keep", "replace", "error"):
            raise ToroidalMemoryError(f"on_collision must be 'keep', 'replace' or 'error', found {on_collision!r}")
        if lattice_size is not None and not (_is_int(lattice_size) and lattice_size >= 1):
            raise ToroidalMemoryError(f"lattice_size must be an integer >= 1 (or None: min(capacity, 4096)), "
                                      f"found {lattice_size!r}")
        if lattice_size is not None and lattice_size * dims > MAX_LATTICE:
            raise ToroidalMemoryError(f"lattice_size {lattice_size} is too large: lattice_size × dims must be at most "
                                      f"{MAX_LATTICE} (2^24 lattice coordinates), here at most "
                                      f"{MAX_LATTICE // dims} for dims={dims}")
        _check_flag_below(flag_below, "flag_below")
        self.dims, self.capacity = int(dims), int(capacity)
        try:
            self.period = topology.period_of(period)
        except topology.WindingError as err:
            raise ToroidalMemoryError(err.message) from None
        self.lattice_size = int(lattice_size or min(capacity, 4096))
        self.on_collision, self.flag_below = on_collision, float(flag_below)
        self.device = torch.device(device or "cpu")
        self.dtype = dtype or torch.float32
        self.channels: dict[str, Channel] = {}
        from geomir.backends.torch.runtime import Torus

        self._torus = Torus(self.period)
        self._lattice = torch.as_tensor(kronecker_lattice(self.lattice_size, self.dims) * self.period,
                                        dtype=self.dtype, device=self.device)
        self._pos = torch.zeros(self.capacity, self.dims, dtype=self.dtype, device=self.device)
        self._w = torch.zeros(self.capacity, self.dims, dtype=torch.int64, device=self.device)
        self._chan = torch.full((self.capacity,), -1, dtype=torch.int64, device=self.device)
        self._slot = torch.zeros(self.capacity, dtype=torch.int64, device=self.device)
        self._values = None
        self._n = 0
        self.writes = self.collisions = 0
        self._version, self._sorted = 0, None  # the class index of reads, rebuilt after writes

    # -- channels -----------------------------------------------------------------------
    def add_channel(self, name: str, classes: Iterable[Iterable[int]] | Residue, epsilon: float = 0.0) -> Channel:
        """Bind channel ``name`` to winding classes (explicit vectors, or a :class:`Residue`
        rule), disjoint from the other channels'; its reads and writes need a margin above
        ``epsilon``."""
        if name in self.channels:
            raise ToroidalMemoryError(f"channel '{name}' already exists")
        if not (_is_real(epsilon) and math.isfinite(epsilon) and epsilon >= 0):
            raise ToroidalMemoryError(f"channel '{name}': epsilon must be a number >= 0, found {epsilon!r}")
        if isinstance(classes, Residue):
            if not 0 <= classes.axis < self.dims:
                raise ToroidalMemoryError(f"channel '{name}': axis {classes.axis} is not one of the {self.dims} axes")
            spec: frozenset | Residue = classes
        else:
            spec = _classes(name, classes, self.dims)
        channel = Channel(name, len(self.channels), spec, float(epsilon))
        for other in self.channels.values():
            why = _disjoint(channel, other, self.dims)
            if why:
                raise ToroidalMemoryError(f"channel '{name}' is not disjoint from channel '{other.name}': {why}")
        self._refuse_earlier_entries(channel)
        self.channels[name] = channel
        return channel

    def _refuse_earlier_entries(self, channel: Channel) -> None:
        """Entries of the channel's classes written before it exists were filed without a
        channel and their margins never checked against its epsilon: refuse the channel."""
        if self._n == 0:
            return
        held = channel.contains(self._w[: self._n])
        if bool(held.any()):
            first = tuple(self._w[int(held.nonzero()[0])].tolist())
            count = int(held.sum())
            raise ToroidalMemoryError(f"channel '{channel.name}': the memory already holds {count} "
                                      f"entr{'y' if count == 1 else 'ies'} of its classes (first: class {first}), "
                                      "written before the channel "
                                      "existed; add channels before writing to their classes")

    def _owner(self, w) -> tuple[object, object]:
        """(channel index per row, -1 for none; the epsilon that applies per row)."""
        owner = torch.full(w.shape[:-1], -1, dtype=torch.int64, device=w.device)
        eps = torch.zeros(w.shape[:-1], dtype=torch.float64, device=w.device)
        for c in self.channels.values():
            mine = c.contains(w)
            owner = torch.where(mine, c.index, owner)
            eps = torch.where(mine, c.epsilon, eps)
        return owner, eps

    # -- addresses --------------------------------------------------------------------------
    def _address(self, trajectory, what: str):
        traj = torch.as_tensor(trajectory, device=self.device)
        if not torch.is_floating_point(traj):
            traj = traj.to(self.dtype)
        if traj.dim() == 2:
            traj = traj[None]
        if traj.dim() != 3 or traj.shape[-1] != self.dims:
            raise ToroidalMemoryError(f"{what}: expected trajectories of shape (B, T, {self.dims}) or (T, {self.dims}), "
                                      f"found {tuple(torch.as_tensor(trajectory).shape)}")
        try:
            r = topology.winding(traj, self.period)
        except topology.WindingError as err:
            raise ToroidalMemoryError(f"{what}: {err.message}") from None
        return r.end.to(self.dtype), r.winding, r.margin

    def _torus_dist(self, a, b):
        """Geodesic distance on the flat torus (the torch runtime's), without the trailing axis."""
        return self._torus.dist(a, b)[..., 0]

    def _slots(self, end):
        out = []
        for chunk in end.split(max(1, min(256, (1 << 24) // (self.lattice_size * self.dims)))):
            out.append(self._torus_dist(chunk[:, None, :], self._lattice[None]).argmin(-1))
        return torch.cat(out)

    # -- write and read ------------------------------------------------------------------------
    def write(self, trajectory, value, channel: str | None = None) -> WriteResult:
        """Store ``value[i]`` at the address of ``trajectory[i]`` (one trajectory (T, m) and
        one value also work). In a channel, every trajectory must wind into its classes with a
        margin above its epsilon, else nothing is written."""
        end, w, margin = self._address(trajectory, "write")
        batch = end.shape[0]
        values = torch.as_tensor(value, device=self.device)
        if values.dim() == 0 or (torch.as_tensor(trajectory).dim() == 2):
            values = values[None]
        if values.shape[0] != batch:
            raise ToroidalMemoryError(f"write: {batch} trajectories but {values.shape[0]} values")
        if self._values is not None and values.shape[1:] != self._values.shape[1:]:
            raise ToroidalMemoryError(f"write: values have shape {tuple(values.shape[1:])}, "
                                      f"this memory stores {tuple(self._values.shape[1:])}")
        owner, eps = self._owner(w)
        if channel is not None:
            c = self._channel(channel)
            bad = ~c.contains(w)
            if bad.any():
                i = int(bad.nonzero()[0])
                raise ToroidalMemoryError(f"write in channel '{channel}': trajectory {i} winds {tuple(w[i].tolist())}, "
                                          f"which is not a class of the channel ({c.describe()})")
        low = ~(margin.to(torch.float64) > eps)
        if self.channels and low.any():
            i = int(low.nonzero()[0])
            raise ToroidalMemoryError(f"write: trajectory {i} has winding margin {float(margin[i]):.4g}, not above its "
                                      f"channel's epsilon {float(eps[i]):.4g}; a perturbation that small could move it "
                                      "to another class")
        slot = self._slots(end)
        collided = self._collisions(w, owner, slot)
        if self.on_collision == "error" and bool(collided.any()):
            i = int(collided.nonzero()[0])
            raise ToroidalMemoryError(f"write: trajectory {i} collides with an entry of its class "
                                      f"{tuple(w[i].tolist())} in slot {int(slot[i])}; nothing was written")
        new = int((~collided).sum()) if self.on_collision == "replace" else batch  # replace: collisions overwrite
        if self._n + new > self.capacity:
            raise ToroidalMemoryError(f"write: the memory is full: {self._n} of {self.capacity} entries used, "
                                      f"{new} more do not fit; nothing was written")
        if self._values is None and batch:  # the first write that stores a value sets their shape and dtype
            self._values = torch.zeros((self.capacity, *values.shape[1:]), dtype=values.dtype, device=self.device)
        if self.on_collision == "replace":
            index = self._write_replacing(end, w, owner, slot, values)
        else:
            index = torch.arange(self._n, self._n + batch, device=self.device)
            if batch:
                self._store(index, end, w, owner, slot, values)
            self._n += batch
        self.writes += batch
        self.collisions += int(collided.sum())
        return WriteResult(index, w, margin, slot, collided)

    def _store(self, k, end, w, owner, slot, value):
        self._pos[k], self._w[k], self._chan[k], self._slot[k] = end, w, owner, slot
        self._values[k] = value.to(self._values.dtype)  # values keep the dtype of the first write
        self._version += 1

    def _collisions(self, w, owner, slot):
        """Which new rows land in a (class, channel, slot) already taken, by an entry or an
        earlier row of the same batch."""
        n = self._n
        keys = torch.cat([torch.cat([self._w[:n], self._chan[:n, None], self._slot[:n, None]], 1),
                          torch.cat([w, owner[:, None], slot[:, None]], 1)])
        _, ids = torch.unique(keys, dim=0, return_inverse=True)
        pos = torch.arange(keys.shape[0], device=self.device)
        first = torch.full((keys.shape[0],), keys.shape[0], device=self.device).scatter_reduce(0, ids, pos, "amin")
        return first[ids[n:]] < pos[n:]

    def _write_replacing(self, end, w, owner, slot, values):
        """Row by row: a row that collides overwrites the entry it collides with (the
        caller has checked that the new entries fit)."""
        batch = end.shape[0]
        index = torch.empty(batch, dtype=torch.int64, device=self.device)
        for i in range(batch):
            n = self._n
            hit = ((self._slot[:n] == slot[i]) & (self._w[:n] == w[i]).all(-1) & (self._chan[:n] == owner[i])).nonzero()
            if hit.numel():
                index[i] = hit[0, 0]
            else:
                index[i] = n
                self._n += 1
            self._store(index[i], end[i], w[i], owner[i], slot[i], values[i])
        return index

    def _channel(self, name: str) -> Channel:
        if name not in self.channels:
            known = ", ".join(self.channels) or "none"
            raise ToroidalMemoryError(f"no channel '{name}' (channels: {known})")
        return self.channels[name]

    def read(self, trajectory, channel: str | None = None, *, flag_below: float | None = None,
             strict: bool = False) -> ReadResult:
        """For each trajectory, the entry of its winding class (and channel) nearest to where it
        ends. A read issued in ``channel`` must wind into the channel's classes; without one,
        the channel owning the read's class (if any) applies. Reads with a margin not above
        the channel's epsilon or ``flag_below`` are flagged and withheld; ``strict`` raises
        instead of withholding."""
        if flag_below is not None:
            _check_flag_below(flag_below, "read: flag_below")
        end, w, margin = self._address(trajectory, "read")
        batch = end.shape[0]
        owner, eps = self._owner(w)
        reasons = [""] * batch
        allowed = torch.ones(batch, dtype=torch.bool, device=self.device)
        if channel is not None:
            c = self._channel(channel)
            inside = c.contains(w)
            for i in (~inside).nonzero().flatten().tolist():
                reasons[i] = (f"winds {tuple(w[i].tolist())}, not a class of channel '{channel}' ({c.describe()})")
            allowed &= inside
        threshold = torch.maximum(eps, torch.full_like(eps, self.flag_below if flag_below is None else flag_below))
        checked = (threshold > 0) | bool(self.channels)  # as writes: with channels every margin must be above
        flagged = ~(margin.to(torch.float64) > threshold) & checked
        for i in (flagged & allowed).nonzero().flatten().tolist():
            reasons[i] = (f"winding margin {float(margin[i]):.4g} is not above {float(threshold[i]):.4g}: "
                          "flagged as a possible adversarial input")
        allowed &= ~flagged
        dist, index = self._nearest(end, w, owner, allowed)
        found = index >= 0
        for i in (allowed & ~found).nonzero().flatten().tolist():
            reasons[i] = f"no entry in winding class {tuple(w[i].tolist())}" + (
                f" of channel '{self._name_of(int(owner[i]))}'" if int(owner[i]) >= 0 else "")
        if self._values is None:
            value = torch.zeros(batch, dtype=self.dtype, device=self.device)
        else:
            value = self._values[index.clamp(min=0)]  # zeros where not found (not value * 0: inf * 0 is NaN)
            value = torch.where(found.view(-1, *[1] * (value.dim() - 1)), value, torch.zeros_like(value))
        if strict and not bool(found.all()):
            i = int((~found).nonzero()[0])
            raise ToroidalMemoryError(f"read: trajectory {i} {reasons[i]}")
        return ReadResult(value, index, dist, margin, w, found, flagged, reasons)

    def _class_keys(self, w, owner):
        """An int64 hash of (winding class, channel) per row (collisions are re-checked exactly)."""
        mix = torch.tensor(_HASH[: self.dims + 1], dtype=torch.int64, device=self.device)
        return (torch.cat([w, owner[:, None]], 1) * mix).sum(1)

    def _index(self):
        """Entries sorted by class key, rebuilt when entries changed."""
        if self._sorted is None or self._sorted[0] != self._version:
            keys = self._class_keys(self._w[: self._n], self._chan[: self._n])
            sorted_keys, order = torch.sort(keys)
            self._sorted = (self._version, sorted_keys, order)
        return self._sorted[1], self._sorted[2]

    def _nearest(self, end, w, owner, allowed):
        """(distance, index) of the nearest entry of each row's class and channel; inf, -1 for none."""
        batch, n = end.shape[0], self._n
        dist = torch.full((batch,), math.inf, dtype=self.dtype, device=self.device)
        index = torch.full((batch,), -1, dtype=torch.int64, device=self.device)
        if n == 0:
            return dist, index
        sorted_keys, order = self._index()
        keys = self._class_keys(w, owner)
        lo = torch.searchsorted(sorted_keys, keys)
        count = torch.searchsorted(sorted_keys, keys, right=True) - lo
        widest = max(int(count.max()), 1)
        rows_per_chunk = max(1, (1 << 22) // (widest * self.dims))
        for rows in torch.arange(batch, device=self.device).split(rows_per_chunk):
            offs = torch.arange(widest, device=self.device)
            cand = order[(lo[rows, None] + offs).clamp(max=n - 1)]
            ok = (offs < count[rows, None]) & allowed[rows, None]
            ok &= (self._w[cand] == w[rows, None, :]).all(-1) & (self._chan[cand] == owner[rows, None])
            d = self._torus_dist(end[rows, None, :], self._pos[cand])
            d = torch.where(ok, d, torch.full_like(d, math.inf))
            best, arg = d.min(-1)
            hit = torch.isfinite(best)
            dist[rows] = torch.where(hit, best, dist[rows])
            index[rows] = torch.where(hit, cand.gather(1, arg[:, None])[:, 0], index[rows])
        return dist, index

    def _name_of(self, index: int) -> str:
        return next(c.name for c in self.channels.values() if c.index == index)

    # -- bookkeeping -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def stats(self) -> MemoryStats:
        classes = int(torch.unique(self._w[: self._n], dim=0).shape[0]) if self._n else 0
        return MemoryStats(self._n, self.capacity, self._n / self.capacity, self.writes, self.collisions,
                           self.collisions / self.writes if self.writes else 0.0, classes,
                           self._n / classes if classes else 0.0)

    def save(self, path: str | Path) -> None:
        """Write the memory to ``path`` (.npz: arrays and a JSON header, no pickle)."""
        n = self._n
        meta = {"format": "geomir.ToroidalMemory/1", "dims": self.dims, "capacity": self.capacity,
                "period": self.period, "lattice_size": self.lattice_size, "on_collision": self.on_collision,
                "flag_below": self.flag_below, "dtype": str(self.dtype).removeprefix("torch."),
                "writes": self.writes, "collisions": self.collisions,
                "channels": [{"name": c.name, "epsilon": c.epsilon,
                              "residue": [c.classes.axis, c.classes.modulus, c.classes.residue]
                              if isinstance(c.classes, Residue) else None,
                              "classes": None if isinstance(c.classes, Residue) else sorted(c.classes)}
                             for c in self.channels.values()]}
        arrays = {"pos": _numpy(self._pos[:n]), "w": _numpy(self._w[:n]),
                  "chan": _numpy(self._chan[:n]), "slot": _numpy(self._slot[:n])}
        if self._values is not None:
            arrays["values"] = _numpy(self._values[:n])
            meta["value_shape"] = list(self._values.shape[1:])
            meta["value_dtype"] = str(self._values.dtype).removeprefix("torch.")
        with open(path, "wb") as f:
            np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)

    @classmethod
    def load(cls, path: str | Path, device=None) -> ToroidalMemory:
        """A memory saved with :meth:`save`, on ``device``."""
        try:
            with open(path, "rb") as f:
                magic = f.read(4)
        except OSError as err:
            raise ToroidalMemoryError(f"cannot load a toroidal memory from {path}: {err}") from None
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive (.npz), possibly empty
            raise ToroidalMemoryError(f"cannot load a toroidal memory from {path}: not a memory file (ToroidalMemory.save "
                                      "writes an .npz archive; this file is not one)")
        def damaged(what: str) -> ToroidalMemoryError:
            return ToroidalMemoryError(f"cannot load a toroidal memory from {path}: {what}")

        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(data["meta"].tobytes().decode())
                arrays = {k: data[k] for k in data.files if k != "meta"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise damaged(f"{err} (a damaged or truncated file?)") from None
        if not isinstance(meta, dict) or meta.get("format") != "geomir.ToroidalMemory/1":
            raise damaged("not a saved toroidal memory (its header has no format 'geomir.ToroidalMemory/1')")
        missing = [k for k in _HEADER if k not in meta]
        if missing:
            raise damaged(f"the header lacks {', '.join(map(repr, missing))} (a damaged file?)")
        if meta["dtype"] not in _FLOAT_DTYPES:
            raise damaged(f"the header's dtype {meta['dtype']!r} is not one of {', '.join(_FLOAT_DTYPES)}")
        value_dtype = meta.get("value_dtype")
        if value_dtype is not None and not (isinstance(value_dtype, str)
                                            and isinstance(getattr(torch, value_dtype, None), torch.dtype)):
            raise damaged(f"the header's value_dtype {value_dtype!r} is not a torch dtype")
        for key in ("writes", "collisions"):
            if not (_is_int(meta[key]) and meta[key] >= 0):
                raise damaged(f"the header's {key} must be an integer >= 0, found {meta[key]!r}")
        try:
            mem = cls(meta["dims"], meta["capacity"], period=meta["period"], lattice_size=meta["lattice_size"],
                      on_collision=meta["on_collision"], flag_below=meta["flag_below"], device=device,
                      dtype=getattr(torch, meta["dtype"]))
        except ToroidalMemoryError as err:
            raise damaged(f"the header: {err.message}") from None
        if not isinstance(meta["channels"], list):
            raise damaged(f"the header's channels must be a list, found {meta['channels']!r}")
        for i, c in enumerate(meta["channels"]):
            try:
                classes = Residue(*c["residue"]) if c["residue"] else [tuple(x) for x in c["classes"]]
                mem.add_channel(c["name"], classes, c["epsilon"])
            except ToroidalMemoryError as err:
                raise damaged(f"channel {i} of the header: {err.message}") from None
            except (KeyError, TypeError, AttributeError):
                raise damaged(f"channel {i} of the header is not a channel (name, epsilon, residue, classes): "
                              f"{c!r}") from None
        pos = arrays.get("pos")
        n = pos.shape[0] if pos is not None and pos.ndim else 0
        if n > mem.capacity:
            raise damaged(f"it holds {n} entries, more than its capacity {mem.capacity}")
        expected = {"pos": ((n, mem.dims), "f", "(entries, dims), floating-point"),
                    "w": ((n, mem.dims), "iu", "(entries, dims), integer"),
                    "chan": ((n,), "iu", "(entries,), integer"), "slot": ((n,), "iu", "(entries,), integer")}
        if "value_shape" in meta or "values" in arrays:
            shape = meta.get("value_shape")
            if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
                raise damaged(f"the header's value_shape must be a list of sizes, found {shape!r}")
            expected["values"] = ((n, *shape), "biufc", f"(entries, *{tuple(shape)}), numeric")
        for name, (shape, kinds, what) in expected.items():
            if name not in arrays:
                raise damaged(f"the array '{name}' is missing")
            a = arrays[name]
            if a.shape != shape or a.dtype.kind not in kinds:
                raise damaged(f"the array '{name}' has shape {a.shape} and dtype {a.dtype}, expected shape {shape} "
                              f"{what}")
        if not np.all(np.isfinite(arrays["pos"])):
            raise damaged("the array 'pos' holds non-finite positions")
        w = torch.from_numpy(arrays["w"].astype(np.int64)).to(mem.device)
        chan = torch.from_numpy(arrays["chan"].astype(np.int64)).to(mem.device)
        slot = torch.from_numpy(arrays["slot"].astype(np.int64)).to(mem.device)
        wrong = (chan != mem._owner(w)[0]).nonzero()
        if wrong.numel():
            i = int(wrong[0, 0])
            raise damaged(f"entry {i} of class {tuple(w[i].tolist())} is filed under channel {int(chan[i])}, "
                          f"not under the channel that owns its class ({int(mem._owner(w)[0][i])}; -1: none)")
        if n and not (0 <= int(slot.min()) and int(slot.max()) < mem.lattice_size):
            raise damaged(f"the array 'slot' holds slots outside 0..{mem.lattice_size - 1}")
        mem._pos[:n] = torch.from_numpy(arrays["pos"]).to(mem.device)
        if n:  # each entry under its nearest slot (a tie, or another device's rounding, may pick either)
            pos = mem._pos[:n]
            nearest = mem._slots(pos)
            best = mem._torus_dist(pos, mem._lattice[nearest])
            far = mem._torus_dist(pos, mem._lattice[slot]) > best * (1 + 1e-3) + 1e-6
            moved = far.nonzero()
            if moved.numel():
                i = int(moved[0, 0])
                raise damaged(f"entry {i} is filed under slot {int(slot[i])}, not under the lattice slot nearest "
                              f"its position ({int(nearest[i])})")
        mem._w[:n], mem._chan[:n], mem._slot[:n] = w, chan, slot
        if "values" in expected:
            try:
                vals = torch.from_numpy(arrays["values"]).to(mem.device)
            except TypeError as err:
                raise damaged(f"the array 'values': {err}") from None
            if value_dtype is not None:
                vals = vals.to(getattr(torch, value_dtype))
            mem._values = torch.zeros((mem.capacity, *vals.shape[1:]), dtype=vals.dtype, device=mem.device)
            mem._values[:n] = vals
        mem._n, mem.writes, mem.collisions = n, meta["writes"], meta["collisions"]
        mem._version += 1
        return mem


__all__ = ["ToroidalMemory", "ToroidalMemoryError", "Residue", "ReadResult", "WriteResult", "MemoryStats",
           "kronecker_lattice"]
