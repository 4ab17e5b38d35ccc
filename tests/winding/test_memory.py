"""geomir.memory.ToroidalMemory: addressing by (end position, winding), batched reads and
writes, the Kronecker slot layout and its collision accounting, channels, flagging,
capacity, save/load, float32 and float64."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from geomir.memory import Residue, ToroidalMemory, ToroidalMemoryError, kronecker_lattice

TAU = 2 * math.pi


def path(w, end, t=24, wobble=0.0, dtype=torch.float32):
    """A trajectory that winds ``w`` turns and ends at ``end``, with an optional wobble."""
    w = torch.as_tensor(w, dtype=torch.float64)
    end = torch.as_tensor(end, dtype=torch.float64)
    s = torch.linspace(0, 1, t, dtype=torch.float64)[:, None]
    lifted = end - w * TAU * (1 - s) + wobble * torch.sin(TAU * s) * torch.arange(1, len(w) + 1)
    return torch.remainder(lifted, TAU).to(dtype)


def paths(ws, ends, **kw):
    return torch.stack([path(w, e, **kw) for w, e in zip(ws, ends)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_histories_ending_at_the_same_point_are_told_apart(dtype):
    mem = ToroidalMemory(3, 32, dtype=dtype)
    end = [1.0, 2.0, 3.0]
    ws = [[0, 0, 0], [1, 0, 0], [0, -1, 0], [2, 1, -3], [-1, -1, -1]]
    mem.write(paths(ws, [end] * 5, dtype=dtype), torch.arange(5.0, dtype=dtype) * 10)
    got = mem.read(paths(ws, [end] * 5, wobble=0.3, dtype=dtype))
    assert got.found.all() and got.value.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert got.winding.tolist() == ws
    assert torch.all(got.distance < 1e-5) and torch.all(got.margin > 0.5)


def test_nearest_by_geodesic_distance_across_the_cut():
    mem = ToroidalMemory(1, 8)
    mem.write(paths([[1], [1]], [[0.05], [3.0]]), torch.tensor([1.0, 2.0]))
    got = mem.read(path([1], [TAU - 0.05]))  # 0.1 from the first across 0 = 2π, 2.9 from the second
    assert got.value.tolist() == [1.0] and got.distance.item() == pytest.approx(0.1, abs=1e-5)


def test_a_class_with_no_entry_is_not_found_and_says_why():
    mem = ToroidalMemory(2, 8)
    mem.write(path([1, 0], [1.0, 1.0]), torch.tensor([5.0, 6.0]))
    got = mem.read(paths([[1, 0], [0, 1]], [[1.0, 1.0], [1.0, 1.0]]))
    assert got.found.tolist() == [True, False] and got.index.tolist() == [0, -1]
    assert got.value.tolist() == [[5.0, 6.0], [0.0, 0.0]] and math.isinf(got.distance[1])
    assert got.reasons == ["", "no entry in winding class (0, 1)"]
    with pytest.raises(ToroidalMemoryError, match=r"read: trajectory 1 no entry in winding class \(0, 1\)"):
        mem.read(paths([[1, 0], [0, 1]], [[1.0, 1.0], [1.0, 1.0]]), strict=True)


def test_kronecker_lattice_is_better_spread_than_random_points():
    def min_gap(points):
        d = np.abs(points[:, None, :] - points[None, :, :])
        d = np.minimum(d, 1 - d)
        dist = np.sqrt((d ** 2).sum(-1)) + np.eye(len(points)) * 10
        return dist.min()

    for dims in (1, 2, 4):
        lattice = kronecker_lattice(256, dims)
        rand = np.random.default_rng(0).uniform(size=(256, dims))
        assert lattice.shape == (256, dims) and np.all((0 <= lattice) & (lattice < 1))
        assert min_gap(lattice) > 3 * min_gap(rand)
    phi = 2.0
    for _ in range(60):
        phi -= (phi ** 3 - phi - 1) / (3 * phi ** 2 - 1)
    assert phi == pytest.approx(1.32471795724474602596)  # the plastic number: R_2's generator


def test_collisions_are_counted_and_the_policy_applies():
    end = torch.tensor([2.0, 2.0])
    near = [end, end + 0.001, end + 1.5]
    mem = ToroidalMemory(2, 16, lattice_size=16)
    res = mem.write(paths([[1, 1]] * 3, near), torch.tensor([1.0, 2.0, 3.0]))
    assert res.collided.tolist() == [False, True, False]  # 0.001 apart: one slot; 1.5 apart: another
    res = mem.write(path([0, 1], end), torch.tensor(4.0))  # another class: no collision
    assert res.collided.tolist() == [False]
    stats = mem.stats()
    assert (stats.entries, stats.writes, stats.collisions, stats.classes) == (4, 4, 1, 2)
    assert stats.occupancy == 4 / 16 and stats.collision_rate == 0.25
    assert mem.read(path([1, 1], end + 0.001)).value.item() == 2.0  # both kept: exact addresses decide

    replacing = ToroidalMemory(2, 16, on_collision="replace")
    replacing.write(path([1, 1], end), torch.tensor(1.0))
    res = replacing.write(path([1, 1], end + 0.001), torch.tensor(2.0))
    assert res.collided.tolist() == [True] and res.index.tolist() == [0] and len(replacing) == 1
    assert replacing.read(path([1, 1], end)).value.item() == 2.0

    strict = ToroidalMemory(2, 16, on_collision="error")
    strict.write(path([1, 1], end), torch.tensor(1.0))
    with pytest.raises(ToroidalMemoryError, match=r"collides with an entry of its class \(1, 1\).*nothing was written"):
        strict.write(paths([[0, 0], [1, 1]], [end, end + 0.001]), torch.tensor([1.0, 2.0]))
    assert len(strict) == 1


def test_capacity_and_shape_errors():
    mem = ToroidalMemory(2, 2)
    mem.write(paths([[0, 0], [1, 0]], [[1.0, 1.0]] * 2), torch.zeros(2, 3))
    with pytest.raises(ToroidalMemoryError, match="full: 2 of 2 entries used, 1 more do not fit"):
        mem.write(path([0, 1], [1.0, 1.0]), torch.zeros(3))
    with pytest.raises(ToroidalMemoryError, match=r"expected trajectories of shape \(B, T, 2\).*found \(5, 3\)"):
        mem.read(torch.zeros(5, 3))
    other = ToroidalMemory(2, 4)
    other.write(path([0, 0], [0.0, 0.0]), torch.zeros(3))
    with pytest.raises(ToroidalMemoryError, match=r"values have shape \(4,\), this memory stores \(3,\)"):
        other.write(path([0, 0], [0.0, 0.0]), torch.zeros(4))
    with pytest.raises(ToroidalMemoryError, match="2 trajectories but 3 values"):
        ToroidalMemory(2, 4).write(paths([[0, 0]] * 2, [[0.0, 0.0]] * 2), torch.zeros(3))
    with pytest.raises(ToroidalMemoryError, match="read: trajectory 0: step 0 -> 1 in coordinate 0 is half a period"):
        mem.read(torch.tensor([[0.0, 0.0], [math.pi, 0.0]]))
    with pytest.raises(ToroidalMemoryError, match="on_collision must be"):
        ToroidalMemory(2, 2, on_collision="drop")


def test_channels_must_be_disjoint():
    mem = ToroidalMemory(2, 8)
    mem.add_channel("even", Residue(0, 2, 0))
    with pytest.raises(ToroidalMemoryError, match="not disjoint from channel 'even'.*share classes"):
        mem.add_channel("fours", Residue(0, 4, 2))
    mem.add_channel("odd", Residue(0, 4, 1))
    with pytest.raises(ToroidalMemoryError, match="constrain different axes"):
        mem.add_channel("y", Residue(1, 2, 0))
    with pytest.raises(ToroidalMemoryError, match=r"not disjoint from channel 'even': both hold class \(2, 0\)"):
        mem.add_channel("list", [(2, 0), (3, 3)])
    mem.add_channel("list", [(3, 1), (7, 7)])
    with pytest.raises(ToroidalMemoryError, match="already exists"):
        mem.add_channel("list", [(9, 9)])
    with pytest.raises(ToroidalMemoryError, match=r"class \(1,\) has 1 entries, expected 2"):
        mem.add_channel("short", [(1,)])
    with pytest.raises(ToroidalMemoryError, match="no channel 'nope' \\(channels: even, odd, list\\)"):
        mem.read(path([0, 0], [0.0, 0.0]), channel="nope")


def test_reads_and_writes_stay_in_their_channel():
    mem = ToroidalMemory(2, 16)
    mem.add_channel("A", Residue(0, 2, 0), epsilon=0.05)
    mem.add_channel("B", Residue(0, 2, 1), epsilon=0.05)
    end = [1.0, 1.0]
    mem.write(path([0, 0], end), torch.tensor(1.0), channel="A")
    mem.write(path([1, 0], end), torch.tensor(2.0), channel="B")
    with pytest.raises(ToroidalMemoryError, match=r"channel 'A': trajectory 0 winds \(1, 0\).*w\[0\] = 0 mod 2"):
        mem.write(path([1, 0], end), torch.tensor(3.0), channel="A")
    # A read issued in A of a trajectory winding into B's class is refused, not answered.
    got = mem.read(paths([[0, 0], [1, 0]], [end, end]), channel="A")
    assert got.found.tolist() == [True, False] and got.value.tolist() == [1.0, 0.0]
    assert "winds (1, 0), not a class of channel 'A'" in got.reasons[1]
    # Without a channel, the class decides: each read gets its own channel's entry.
    assert mem.read(paths([[0, 0], [1, 0]], [end, end])).value.tolist() == [1.0, 2.0]
    # A trajectory whose margin is not above the channel's epsilon is flagged and withheld.
    fragile = torch.remainder(torch.tensor([[1.0, 1.0], [1.0 + 0.49 * TAU, 1.0], [1.0, 1.0]]), TAU)  # a 0.49-turn step
    got = mem.read(fragile, channel="A")
    assert got.flagged.tolist() == [True] and got.found.tolist() == [False]
    assert got.margin.item() < 0.05 and "flagged as a possible adversarial input" in got.reasons[0]
    with pytest.raises(ToroidalMemoryError, match="winding margin .* not above its channel's epsilon 0.05"):
        mem.write(fragile, torch.tensor(9.0))


def test_flag_below_flags_low_margin_reads():
    mem = ToroidalMemory(1, 4, flag_below=0.2)
    mem.write(path([1], [1.0]), torch.tensor(1.0))
    long_steps = path([1], [1.0], t=5)  # a quarter turn per step: margin π/4 - rounding
    assert mem.read(path([1], [1.0]), flag_below=1.0).found.tolist() == [True]  # margin ~1.44
    got = mem.read(long_steps, flag_below=1.0)
    assert got.flagged.tolist() == [True] and got.found.tolist() == [False]
    assert mem.read(long_steps).found.tolist() == [True]  # the memory's own threshold is 0.2


def test_save_and_load_round_trip(tmp_path):
    mem = ToroidalMemory(2, 8, period="turns", lattice_size=32, on_collision="replace", flag_below=0.01,
                         dtype=torch.float64)
    mem.add_channel("A", [(0, 0), (1, 0)], epsilon=0.01)
    mem.add_channel("B", Residue(1, 3, 1))
    ends = [[0.2, 0.3], [0.7, 0.1], [0.5, 0.5]]
    mem.write(torch.remainder(paths([[0, 0], [1, 0], [0, 1]], ends, dtype=torch.float64) / TAU, 1.0),
              torch.arange(6.0).reshape(3, 2))
    mem.save(tmp_path / "mem.npz")
    back = ToroidalMemory.load(tmp_path / "mem.npz")
    assert (back.dims, back.capacity, back.period, back.lattice_size, back.on_collision, back.flag_below) == (
        2, 8, 1.0, 32, "replace", 0.01)
    assert back.dtype == torch.float64 and list(back.channels) == ["A", "B"]
    assert back.stats() == mem.stats()
    q = torch.remainder(paths([[0, 0], [1, 0], [0, 1]], ends, dtype=torch.float64) / TAU, 1.0)
    a, b = mem.read(q), back.read(q)
    assert torch.equal(a.value, b.value) and torch.equal(a.index, b.index)
    (tmp_path / "junk.npz").write_bytes(b"not a memory")
    with pytest.raises(ToroidalMemoryError, match="cannot load a toroidal memory"):
        ToroidalMemory.load(tmp_path / "junk.npz")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_on_the_gpu():
    mem = ToroidalMemory(2, 8, device="cuda")
    mem.write(paths([[0, 0], [1, 0]], [[1.0, 1.0]] * 2).cuda(), torch.tensor([1.0, 2.0]).cuda())
    got = mem.read(paths([[1, 0]], [[1.0, 1.0]]).cuda())
    assert got.value.device.type == "cuda" and got.value.tolist() == [2.0]


@pytest.mark.parametrize("dims, turns", [(1, 0), (2, 1), (3, 2)])
def test_reads_agree_with_a_brute_force_search(dims, turns):
    gen = torch.Generator().manual_seed(dims)
    n, b = 300, 200
    ws = torch.randint(-turns, turns + 1, (n, dims), generator=gen)
    ends = torch.rand(n, dims, generator=gen, dtype=torch.float64) * TAU
    mem = ToroidalMemory(dims, n, dtype=torch.float64)
    for chunk in torch.arange(n).split(64):  # several writes: the class index is rebuilt
        mem.write(paths(ws[chunk].tolist(), ends[chunk].tolist(), dtype=torch.float64), chunk.double())
    qw = torch.randint(-turns - 1, turns + 2, (b, dims), generator=gen)
    qe = torch.rand(b, dims, generator=gen, dtype=torch.float64) * TAU
    got = mem.read(paths(qw.tolist(), qe.tolist(), dtype=torch.float64))
    diff = np.abs(qe.numpy()[:, None, :] - ends.numpy()[None])
    dist = np.sqrt((np.minimum(diff, TAU - diff) ** 2).sum(-1))
    dist[~(qw.numpy()[:, None, :] == ws.numpy()[None]).all(-1)] = np.inf
    want = np.where(np.isfinite(dist.min(1)), dist.argmin(1), -1)
    assert got.index.tolist() == want.tolist()
    assert np.allclose(got.distance.numpy(), dist.min(1), atol=1e-9)


def _t(*points):
    return torch.tensor(points, dtype=torch.float64)[:, None]


def test_a_channel_over_entries_written_before_it_is_refused():
    """Entries filed without a channel became unreachable once a channel took their class
    (finding 3): add_channel now refuses, and the entries stay readable."""
    mem = ToroidalMemory(1, 10, dtype=torch.float64)
    mem.write(_t(0.0, 1.0), torch.tensor(7.0))
    with pytest.raises(ToroidalMemoryError, match=r"channel 'a': the memory already holds 1 entry of its classes "
                                                  r"\(first: class \(0,\)\).*add channels before writing"):
        mem.add_channel("a", [(0,)], epsilon=0.05)
    assert "a" not in mem.channels and mem.read(_t(0.0, 1.0)).value.tolist() == [7.0]
    mem.add_channel("b", [(1,)])  # no entry of its class: fine
    assert mem.read(_t(0.0, 1.0)).found.tolist() == [True]


def test_replace_mode_a_write_that_does_not_fit_writes_nothing():
    """on_collision='replace' stored rows 0..i-1 of a batch that did not fit (finding 4)."""
    mem = ToroidalMemory(1, 2, lattice_size=64, on_collision="replace", dtype=torch.float64)
    rows = torch.stack([_t(0.0, 0.5), _t(0.0, 1.5), _t(0.0, 2.5)])  # one class, three slots
    with pytest.raises(ToroidalMemoryError, match="full: 0 of 2 entries used, 3 more do not fit; nothing was written"):
        mem.write(rows, torch.tensor([1.0, 2.0, 3.0]))
    assert len(mem) == 0 and mem.stats().writes == 0 and not mem.read(_t(0.0, 0.5)).found.item()
    res = mem.write(torch.stack([_t(0.0, 0.5), _t(0.0, 0.5), _t(0.0, 1.5)]), torch.tensor([1.0, 2.0, 3.0]))
    assert res.collided.tolist() == [False, True, False] and len(mem) == 2  # a collision needs no room
    assert mem.read(_t(0.0, 0.5)).value.tolist() == [2.0]


def test_a_zero_margin_read_is_flagged_in_a_zero_epsilon_channel_as_its_write_is_refused():
    """A read with margin 0 was served in a channel of epsilon 0, where the same write is
    refused; docs: a read whose margin is not above the channel's epsilon is flagged (finding 6)."""
    mem = ToroidalMemory(1, 10, dtype=torch.float64)
    mem.add_channel("a", [(0,)], epsilon=0.0)
    mem.write(_t(0.0, 1.0), torch.tensor(5.0))
    half_turn = _t(0.0, TAU / 4, TAU / 2 - 1e-15)  # D on the half-turn boundary: margin 0
    for channel in (None, "a"):
        got = mem.read(half_turn, channel=channel)
        assert got.margin.tolist() == [0.0] and got.flagged.tolist() == [True] and got.found.tolist() == [False]
    with pytest.raises(ToroidalMemoryError, match="margin 0, not above its channel's epsilon 0"):
        mem.write(half_turn, torch.tensor(6.0))
    plain = ToroidalMemory(1, 10, dtype=torch.float64)  # no channels and flag_below 0: flagging is off
    plain.write(_t(0.0, 1.0), torch.tensor(5.0))
    assert plain.read(half_turn).flagged.tolist() == [False]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_save_and_load_low_precision(tmp_path, dtype):
    """bfloat16 positions or values crashed save with a raw TypeError (finding 8)."""
    mem = ToroidalMemory(1, 4, dtype=dtype)
    mem.write(torch.stack([_t(0.0, 1.0), _t(0.0, 2.0)]), torch.tensor([[7.5], [-1.25]], dtype=dtype))
    mem.save(tmp_path / "m.npz")
    back = ToroidalMemory.load(tmp_path / "m.npz")
    assert back.dtype == dtype and back._values.dtype == dtype
    q = torch.stack([_t(0.0, 1.0), _t(0.0, 2.0)])
    assert torch.equal(back.read(q).value, mem.read(q).value) and back.read(q).value.tolist() == [[7.5], [-1.25]]


@pytest.mark.parametrize("kw, message", [
    ({"lattice_size": -3}, "lattice_size must be an integer >= 1"),
    ({"lattice_size": 0}, "lattice_size must be an integer >= 1"),
    ({"flag_below": math.nan}, "flag_below must be a number >= 0, found nan"),
    ({"flag_below": None}, "flag_below must be a number >= 0, found None"),  # was a bare TypeError
    ({"flag_below": "0.1"}, "flag_below must be a number >= 0, found '0.1'"),
    ({"period": -1}, "the period must be a positive number"),
])
def test_bad_constructor_arguments_are_refused(kw, message):
    """lattice_size=-3 crashed the first write with a raw IndexError; 0 meant the default (finding 8)."""
    with pytest.raises(ToroidalMemoryError, match=message):
        ToroidalMemory(1, 3, **kw)


@pytest.mark.parametrize("dims, capacity", [(2.5, 10), (2, 10.5), (True, 10), ("2", 10), (0, 10), (2, 0)])
def test_dims_and_capacity_must_be_integers(dims, capacity):
    """ToroidalMemory(2.5, 10) silently became dims=2."""
    with pytest.raises(ToroidalMemoryError, match=r"^dims must be an integer 1..256 and capacity an integer >= 1, "
                                                  rf"found dims={dims!r}, capacity={capacity!r}$"):
        ToroidalMemory(dims, capacity)
    assert ToroidalMemory(np.int64(2), np.int32(10)).dims == 2


@pytest.mark.parametrize("args, field", [((0, 3.5, 2), "modulus"), ((0.0, 3, 2), "axis"), ((0, 3, "1"), "residue"),
                                         ((0, True, 0), "modulus")])
def test_a_residue_rule_takes_integers(args, field):
    """Residue(0, 3.5, 2) failed later with a TypeError from math.gcd."""
    with pytest.raises(ToroidalMemoryError, match=rf"^residue rule: {field} must be an integer, found "):
        Residue(*args)


def test_loading_a_file_that_is_not_a_memory(tmp_path):
    """A non-.npz file got NumPy's advice to load it with allow_pickle=True."""
    for name, data in [("notes.txt", b"not a memory"), ("pickled.bin", b"\x80\x04K\x01."), ("empty.npz", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ToroidalMemoryError, match=r"cannot load a toroidal memory from .*: not a memory file") as e:
            ToroidalMemory.load(tmp_path / name)
        assert "allow_pickle" not in e.value.message
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ToroidalMemoryError, match="not a memory file"):
        ToroidalMemory.load(tmp_path / "array.npy")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))  # an .npz, but not one of ours
    with pytest.raises(ToroidalMemoryError, match="cannot load a toroidal memory"):
        ToroidalMemory.load(tmp_path / "other.npz")
    with pytest.raises(ToroidalMemoryError, match="cannot load a toroidal memory from .*missing.npz"):
        ToroidalMemory.load(tmp_path / "missing.npz")


def _memory_file(tmp_path, name, meta=None, **edits):
    """A saved two-entry dims=2 memory; ``meta`` replaces header keys, ``edits`` maps an
    array's name to a function of it (None for either: removed)."""
    mem = ToroidalMemory(2, 4)
    mem.write(paths([[3, 0], [1, 0]], [[0.5, 0.5], [2.0, 2.0]]), torch.tensor([3.0, 1.0]))
    mem.save(tmp_path / name)
    with np.load(tmp_path / name) as data:
        header = json.loads(data["meta"].tobytes())
        arrays = {k: data[k] for k in data.files if k != "meta"}
    header = {k: v for k, v in {**header, **(meta or {})}.items() if v is not None}
    arrays = {k: edits[k](a) if k in edits else a for k, a in arrays.items() if not (k in edits and edits[k] is None)}
    with open(tmp_path / name, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return tmp_path / name


@pytest.mark.parametrize("meta, edits, message", [
    ({"dims": None}, {}, r"the header lacks 'dims'"),
    ({"dtype": "nn"}, {}, r"the header's dtype 'nn' is not one of float16"),
    ({"capacity": 1}, {}, r"it holds 2 entries, more than its capacity 1"),
    ({"dims": 2.0}, {}, r"the header: dims must be an integer"),
    ({"channels": [{"name": "a"}]}, {}, r"channel 0 of the header is not a channel"),
    ({}, {"pos": None}, r"the array 'pos' is missing"),
    ({}, {"values": None}, r"the array 'values' is missing"),
    ({}, {"pos": lambda a: a[:, :1]}, r"the array 'pos' has shape \(2, 1\) and dtype float32, expected shape \(2, 2\)"),
    ({}, {"w": lambda a: a.astype(np.float64)}, r"the array 'w' has shape \(2, 2\) and dtype float64, expected shape "
                                                r"\(2, 2\) \(entries, dims\), integer"),
    ({}, {"chan": lambda a: a * 0}, r"entry 0 of class \(3, 0\) is filed under channel 0, not under the channel"),
    ({}, {"slot": lambda a: a + 4}, r"the array 'slot' holds slots outside 0..3"),
], ids=["no-dims", "dtype", "capacity", "float-dims", "channel", "no-pos", "no-values", "narrow-pos", "float-w", "chan",
        "slot"])
def test_loading_a_damaged_memory_file_says_what_is_wrong(tmp_path, meta, edits, message):
    """A damaged file raised KeyError or RuntimeError, or loaded a (2, 1) pos broadcast to (2, 2)."""
    path = _memory_file(tmp_path, "bad.npz", meta, **edits)
    with pytest.raises(ToroidalMemoryError, match=rf"^cannot load a toroidal memory from .*bad.npz: {message}"):
        ToroidalMemory.load(path)


def test_loading_a_truncated_memory_file(tmp_path):
    """Half a memory file raised zipfile.BadZipFile."""
    path = _memory_file(tmp_path, "good.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ToroidalMemoryError, match=r"cannot load a toroidal memory from .*cut.npz: .*truncated"):
        ToroidalMemory.load(tmp_path / "cut.npz")
    assert ToroidalMemory.load(path).read(paths([[1, 0]], [[2.0, 2.0]])).value.tolist() == [1.0]


@pytest.mark.parametrize("dims", [1, 2, 3, 80, 81, 85, 128, 256, 512, 1024])
def test_the_lattice_generator_is_the_root_to_the_last_bits(dims):
    """Newton from 2 in 60 steps had not converged for dims > 80 (phi_128 = 1.2538, root 1.00541)."""
    from fractions import Fraction

    from geomir.memory import r_generator

    phi = r_generator(dims)
    f = lambda x: Fraction(x) ** (dims + 1) - Fraction(x) - 1  # noqa: E731 - exact residual
    assert f(math.nextafter(phi, 1.0)) < 0 < f(math.nextafter(phi, 2.0))  # the root is within one ulp
    assert abs(f(phi)) <= min(abs(f(math.nextafter(phi, 1.0))), abs(f(math.nextafter(phi, 2.0))))


def test_the_lattice_generator_does_not_overflow():
    """x^(m+1) overflows a float past m ~ 1700: the bisection compares logarithms."""
    from geomir.memory import r_generator

    for dims in (2000, 10**5):
        phi = r_generator(dims)
        assert abs((dims + 1) * math.log(phi) - math.log1p(phi)) < 1e-9 and 1 < phi < 1 + 1 / dims


def test_a_high_dimensional_lattice_spreads_on_every_axis():
    """With the unconverged phi, most of the 128 axes had alpha ~ 0: every slot at 0.5 on them."""
    lattice = kronecker_lattice(4096, 128)
    assert np.all(lattice.max(0) - lattice.min(0) > 0.9)


@pytest.mark.parametrize("flagged", [False, True])
def test_a_read_not_found_is_zeros_even_next_to_an_inf_value(flagged):
    """value = values[index.clamp(min=0)] * found gave NaN (inf * 0) for rows not found."""
    mem = ToroidalMemory(1, 4, dtype=torch.float64)
    mem.write(_t(0.0, 1.0), torch.tensor([math.inf, -math.inf, math.nan, 7.0], dtype=torch.float64))
    got = mem.read(_t(0.0, 1.0), flag_below=2.0) if flagged else mem.read(_t(0.0, 3.0, 6.0, 2.0))  # a turn: class (1,)
    assert got.found.tolist() == [False] and got.flagged.tolist() == [flagged]
    assert got.value.tolist() == [[0.0, 0.0, 0.0, 0.0]]
    assert mem.read(_t(0.0, 1.0)).value[0, :2].tolist() == [math.inf, -math.inf]


@pytest.mark.parametrize("flag_below", [math.nan, -1.0, True, "0.1", math.inf])
def test_a_reads_flag_below_is_checked_as_the_constructors(flag_below):
    """read(flag_below=nan) or -1 switched the memory's own flagging off."""
    mem = ToroidalMemory(1, 4, flag_below=2.0)
    mem.write(_t(0.0, 1.0), torch.tensor(1.0))
    with pytest.raises(ToroidalMemoryError, match=rf"^read: flag_below must be a number >= 0, found {flag_below!r}$"):
        mem.read(_t(0.0, 1.0), flag_below=flag_below)
    assert mem.read(_t(0.0, 1.0)).flagged.tolist() == [True]


@pytest.mark.parametrize("call, message", [
    (lambda m: m.add_channel("e", Residue(0, 3, 0), epsilon="0.1"), r"channel 'e': epsilon must be a number >= 0, "
                                                                    r"found '0.1'"),
    (lambda m: m.add_channel("e", Residue(0, 3, 0), epsilon=True), r"channel 'e': epsilon must be a number >= 0"),
    (lambda m: m.add_channel("t", (3, 0)), r"channel 't': classes must be an iterable of winding classes, each 2 "
                                           r"integers \(one class: \[\(3, 0\)\], not \(3, 0\)\), found \(3, 0\)"),
    (lambda m: m.add_channel("t", 7), r"channel 't': classes must be an iterable of winding classes"),
    (lambda m: m.add_channel("f", [(1.7, 0)]), r"channel 'f': class \(1.7, 0\) has the entry 1.7; a winding class "
                                               r"is a tuple of integers"),
    (lambda m: m.add_channel("f", [(2.0, 0)]), r"channel 'f': class \(2.0, 0\) has the entry 2.0"),
    (lambda m: m.add_channel("f", [(True, 0)]), r"channel 'f': class \(True, 0\) has the entry True"),
    (lambda m: m.add_channel("f", [(2**63, 0)]), r"channel 'f': class .* has the entry 9223372036854775808"),
    (lambda m: m.add_channel("big", Residue(0, 2**64, 0)), r"residue rule: modulus must fit in int64"),
    (lambda m: m.add_channel("big", Residue(0, 3, -2**63 - 1)), r"residue rule: residue must fit in int64"),
])
def test_bad_channel_arguments_are_refused(call, message):
    """Residue(0, 2**64, 0) was accepted and every later write raised OverflowError; epsilon='0.1'
    and a bare class (3, 0) raised TypeError; (1.7, 0) became (1, 0)."""
    mem = ToroidalMemory(2, 4)
    with pytest.raises(ToroidalMemoryError, match=rf"^{message}"):
        call(mem)
    assert not mem.channels


def test_int64_extreme_residue_rules_and_integer_classes_work():
    """w - residue overflowed int64 (5 - (4 - 2^63)), so class 5 was not found in its own rule."""
    mem = ToroidalMemory(2, 4)
    mem.add_channel("far", Residue(0, (2**63 + 1) // 3, 4 - 2**63))  # w[0] = 5 mod (2^63 + 1) / 3
    mem.add_channel("np", [(np.int64(3), torch.tensor(0))])
    mem.write(path([5, 0], [1.0, 1.0]), torch.tensor(5.0), channel="far")
    assert mem.read(path([5, 0], [1.0, 1.0]), channel="far").value.tolist() == [5.0]
    assert mem.channels["np"].classes == frozenset({(3, 0)})


@pytest.mark.parametrize("policy", ["keep", "replace"])
def test_later_writes_are_cast_to_the_values_first_dtype(policy):
    """A float64 write after a float32 one raised a torch RuntimeError with on_collision='keep'."""
    mem = ToroidalMemory(2, 8, on_collision=policy)
    mem.write(path([1, 0], [1.0, 1.0]), torch.tensor([1.0, 2.0]))
    mem.write(paths([[2, 0], [0, 0]], [[1.0, 1.0]] * 2), torch.tensor([[3.5, 4.0], [5, 6]], dtype=torch.float64))
    mem.write(path([0, 1], [1.0, 1.0]), torch.tensor([7, 8]))
    got = mem.read(paths([[1, 0], [2, 0], [0, 0], [0, 1]], [[1.0, 1.0]] * 4))
    assert got.value.dtype == torch.float32 and got.value.tolist() == [[1, 2], [3.5, 4], [5, 6], [7, 8]]


def test_an_empty_write_does_not_fix_the_values_shape():
    """A write of B = 0 rows stored nothing but fixed the values' shape and dtype."""
    mem = ToroidalMemory(2, 8)
    res = mem.write(torch.zeros(0, 5, 2), torch.zeros(0, 3, dtype=torch.int8))
    assert res.index.tolist() == [] and len(mem) == 0 and mem.stats().writes == 0
    mem.write(path([1, 0], [1.0, 1.0]), torch.tensor(1.5))
    assert mem.read(path([1, 0], [1.0, 1.0])).value.tolist() == [1.5]


def test_a_lattice_too_large_to_allocate_is_refused():
    """lattice_size=10**9 tried to allocate 16 GB (one slot over the bound here: a regression fails fast)."""
    with pytest.raises(ToroidalMemoryError, match=r"^lattice_size 8388609 is too large: lattice_size × dims must "
                                                  r"be at most 16777216 \(2\^24 lattice coordinates\), here at most "
                                                  r"8388608 for dims=2$"):
        ToroidalMemory(2, 4, lattice_size=2**23 + 1)
    assert ToroidalMemory(256, 4).lattice_size == 4
    assert ToroidalMemory(256, 10**4).lattice_size == 4096  # the default fits for every dims
