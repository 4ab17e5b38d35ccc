"""Topological isolation under attack: projected gradient ascent (PGD) on the input
trajectory, bounded per point by eps in max-norm, tries to move a channel-A read into
channel B's winding classes. Below the certified margin it never changes the class; a
channel that requires margin > eps never answers a read with B's entry; and the attack is
real: above the margin it does change classes, and an unprotected memory then returns the
other class's entry."""

from __future__ import annotations

import math

import pytest
import torch

from geomir import topology
from geomir.memory import Residue, ToroidalMemory

TAU = 2 * math.pi
DIMS, STEPS, ITEMS = 2, 16, 48


def walks(gen: torch.Generator, w: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Random histories (B, STEPS, DIMS) that wind ``w`` turns and end at ``end``."""
    b = w.shape[0]
    noise = torch.randn(b, STEPS - 1, DIMS, generator=gen, dtype=torch.float64) * 0.35
    noise -= noise.mean(1, keepdim=True)
    steps = (w.double() * TAU)[:, None, :] / (STEPS - 1) + noise
    lifted = torch.cat([torch.zeros(b, 1, DIMS, dtype=torch.float64), steps.cumsum(1)], 1)
    lifted = lifted - lifted[:, -1:, :] + end[:, None, :]
    return torch.remainder(lifted, TAU)


def scene(seed: int = 0):
    """Channel A (even turns on axis 0) and B (odd) hold entries at the same end points."""
    gen = torch.Generator().manual_seed(seed)
    end = torch.rand(ITEMS, DIMS, generator=gen, dtype=torch.float64) * TAU
    k = torch.randint(-1, 2, (ITEMS, DIMS), generator=gen)
    w_a = k.clone()
    w_a[:, 0] = 2 * k[:, 0]  # even
    w_b = w_a.clone()
    w_b[:, 0] += 1  # odd: the class next door
    return walks(gen, w_a, end), walks(gen, w_b, end), w_a


def pgd(x: torch.Tensor, eps: torch.Tensor, iters: int = 40, seed: int = 1):
    """Yield PGD iterates x' with |x' - x|_inf <= eps (per trajectory), ascending a smooth
    surrogate of "the winding of axis 0 changes": the larger of |D/P - w| and |d_t|/P, any
    of which past 1/2 flips w (a step past half a period wraps and moves D by a period)."""
    gen = torch.Generator().manual_seed(seed)
    w0 = topology.winding(x).winding[:, 0].double()
    e = eps[:, None, None]
    delta = (torch.rand(x.shape, generator=gen, dtype=x.dtype) * 2 - 1) * e
    for _ in range(iters):
        delta.requires_grad_(True)
        xp = x + delta
        d = xp[:, 1:, 0] - xp[:, :-1, 0]
        d = d - TAU * torch.floor(d.detach() / TAU + 0.5)
        terms = torch.cat([(d.sum(1) / TAU - w0).abs()[:, None], d.abs() / TAU], 1)
        objective = torch.logsumexp(60 * terms, 1).sum()
        (grad,) = torch.autograd.grad(objective, delta)
        delta = torch.maximum(torch.minimum(delta.detach() + 0.25 * e * grad.sign(), e), -e)
        yield x + delta


def test_no_attack_below_the_margin_changes_the_class():
    a, _, w_a = scene()
    margin = topology.winding(a).margin
    assert torch.all(margin > 0.05)
    for xp in pgd(a, 0.99 * margin):
        assert torch.equal(topology.winding(xp).winding, w_a)


def test_a_channel_never_answers_with_the_other_channels_entry():
    a, b, _ = scene()
    eps = float(topology.winding(a).margin.median())  # half the A trajectories are within eps of B's classes
    mem = ToroidalMemory(DIMS, 2 * ITEMS, dtype=torch.float64)
    mem.add_channel("A", Residue(0, 2, 0), epsilon=eps)
    mem.add_channel("B", Residue(0, 2, 1), epsilon=eps)
    ok_a, ok_b = topology.winding(a).margin > eps, topology.winding(b).margin > eps
    mem.write(a[ok_a], torch.zeros(int(ok_a.sum())), channel="A")
    mem.write(b[ok_b], torch.ones(int(ok_b.sum())), channel="B")
    honest = mem.read(a[ok_a], channel="A")
    assert honest.found.all() and torch.all(honest.value == 0)
    # The attacker starts from every A trajectory, fragile ones too, and moves each point by < eps.
    crossed = 0
    for xp in pgd(a, torch.full((ITEMS,), eps)):
        moved = topology.winding(xp).winding[:, 0] % 2 == 1
        crossed += int(moved.sum())
        for got in (mem.read(xp, channel="A"), mem.read(xp)):  # issued in A, and with the channel from the class
            assert torch.all(got.value[got.found] == 0), "a read got channel B's entry"
            assert not torch.any(got.found & moved)
            assert torch.all(got.flagged[moved]) or torch.all(~got.found[moved])
    assert crossed > 0, "the attack never reached B's classes: the test would not test isolation"


def test_the_attack_is_real_above_the_margin():
    a, b, w_a = scene()
    margin = topology.winding(a).margin
    plain = ToroidalMemory(DIMS, 2 * ITEMS, dtype=torch.float64)  # no channels: nothing is refused
    plain.write(a, torch.zeros(ITEMS))
    plain.write(b, torch.ones(ITEMS))
    changed = torch.zeros(ITEMS, dtype=torch.bool)
    stolen = torch.zeros(ITEMS, dtype=torch.bool)
    for xp in pgd(a, 1.5 * margin):
        changed |= torch.any(topology.winding(xp).winding != w_a, dim=1)
        got = plain.read(xp)
        stolen |= got.found & (got.value == 1)
    assert changed.float().mean() > 0.5, f"PGD changed only {int(changed.sum())} of {ITEMS} classes"
    assert stolen.any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flagging_reports_the_margin_before_the_value_is_used(dtype):
    a, _, _ = scene(seed=3)
    a = a.to(dtype)
    mem = ToroidalMemory(DIMS, ITEMS, dtype=dtype, flag_below=0.2)
    mem.write(a, torch.arange(ITEMS, dtype=dtype))
    got = mem.read(a)
    margin = topology.winding(a).margin
    assert torch.equal(got.flagged, margin <= 0.2)
    assert torch.equal(got.found, ~got.flagged)
    assert torch.all(got.value[got.flagged] == 0) and torch.equal(got.margin, margin)
