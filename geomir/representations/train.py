"""Training hierarchy embeddings on the Poincaré ball, the Lorentz model or Euclidean space
(Nickel & Kiela 2017, 2018), with PyTorch.

For every closure edge (u, v) (u below v) and K negatives v' (nodes with no edge from u)
the loss is the softmax cross-entropy of -d(u, v) against -d(u, v'):

    L = -log( exp(-d(u, v)) / sum over v'' in {v} + negatives of exp(-d(u, v'')) )

The optimizer is Riemannian SGD or Riemannian Adam (geomir.backends.torch.optim: the
Euclidean gradient is rescaled by the inverse metric and the point moves along the
exponential map). The first ``burnin`` epochs use ``lr * burnin_factor`` (later ones ``lr``, times
``lr_gamma`` for every epoch in ``lr_milestones`` already reached) and draw
negatives from the unigram distribution (how often a node is an ancestor) to the power
3/4, as the reference implementation does; later epochs draw them uniformly. Negatives that
hit a true edge of u (or u itself) are masked out of the softmax instead of redrawn. With
``hard_negatives`` > 0 that many of them are drawn among the source's intruders instead, the
nodes that outrank its ancestors in the current embedding (mined every ``mine_every``
epochs after burn-in; :mod:`geomir.representations.intruders`).

Every step checks that the loss and the updated points are finite and stops with a
:class:`TrainingError` naming the epoch and step if not. Checkpoints hold the points, the
optimizer state, the sampler's random state and the epoch, so a resumed run continues
exactly where it stopped (bit-identical to an uninterrupted run on the same machine).

Engines (``TrainConfig.engine``): ``torch`` runs the steps with torch ops (any device,
RAdam, distributed); ``numba`` runs RSGD in one CPU process with compiled closed-form
steps (:mod:`geomir.representations.numba_engine`), the same batches and the same step up
to rounding; ``auto`` picks numba where it applies and is installed.

``world_size > 1``: data parallel with torch.distributed (``torchrun``; gloo on CPU, NCCL
on GPU): every rank holds all points, takes its share of each global batch, and
DistributedDataParallel averages the gradients, so each step is the single-process step
up to the order of floating-point sums.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from geomir.backends.common.manifolds import CONSTANTS
from geomir.diagnostics import GeomirError, UsageError

from .intruders import Intruders, mine_intruders

MANIFOLDS = ("poincare", "lorentz", "euclidean")
OPTIMIZERS = ("rsgd", "radagrad", "radam")
ENGINES = ("auto", "torch", "numba")
# negatives are drawn for this many batches at a time
_CHUNK_BATCHES = 64
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# the formats of saved files
_CHECKPOINT = "geomir.EmbeddingCheckpoint/1"
_EMBEDDING = "geomir.Embedding/1"


class TrainingError(GeomirError):
    """Training produced a non-finite value, or a checkpoint does not fit the run."""


class UnnamedCheckpointWarning(UserWarning):
    """A checkpoint written before checkpoints recorded their node names was loaded: nothing
    shows that its points belong to the hierarchy's nodes beyond their number."""


@dataclass
class TrainConfig:
    """How to train; the defaults follow the reference mammal run (train-mammals.sh)."""

    manifold: str = "poincare"
    dim: int = 10  # the manifold's dimension (Lorentz points have dim + 1 coordinates)
    curvature: float = 1.0  # c: the Poincaré ball of curvature -c, the hyperboloid <x,x>_L = -1/c
    epochs: int = 300
    lr: float = 0.3
    optimizer: str = "rsgd"
    negatives: int = 50
    # of them, this many (after burn-in) are drawn among the source's intruders (nodes closer to
    # it than its farthest ancestor; intruders.py), mined again every mine_every epochs; 0 (the
    # reference's sampling): all uniform
    hard_negatives: int = 0
    mine_every: int = 2
    burnin: int = 20
    burnin_factor: float = 0.1
    # step decay (as torch's MultiStepLR): lr * lr_gamma^(number of milestones <= epoch index)
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.25
    # Riemannian Adagrad ("radagrad"): every point's accumulator starts here (caps its rate at
    # lr / sqrt(adagrad_init); see RowwiseRAdagrad)
    adagrad_init: float = 0.0
    # and starts again at the end of burn-in and every adagrad_restart epochs after it (0: never)
    adagrad_restart: int = 0
    batch_size: int = 10
    init_scale: float = 1e-3
    boundary_eps: float = 1e-5  # points stay within hyperbolic radius 2 artanh(1 - eps) / sqrt(c) (~12.2)
    seed: int = 0
    dtype: str = "float64"
    checkpoint: str | None = None  # a path: written every `checkpoint_every` epochs and at the end
    checkpoint_every: int = 10
    eval_every: int = 0  # evaluate reconstruction every N epochs (0: only at the end)
    # "numba": compiled CPU steps (Riemannian SGD, one process; 2-3x faster than torch on a
    # CPU); "torch": torch ops (any device, Adam, distributed); "auto": numba where it applies
    engine: str = "auto"

    def __post_init__(self) -> None:
        self.validate()  # types and ranges, at construction (from Python as from the command line)

    def _check_types(self) -> list[str]:
        """Check each field's type against its annotation, normalising what passes (NumPy
        scalars to int/float, a path to str, a list of milestones to a tuple); the problems."""
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            check, expected = _FIELD_TYPES[f.type]
            try:
                setattr(self, f.name, check(value))
            except (TypeError, ValueError):
                shown = f"{value!r} ({type(value).__name__})"
                problems.append(f"{f.name} must be {expected}, found {shown}")
        return problems

    def restarts_adagrad(self, epoch: int) -> bool:
        """Whether Riemannian Adagrad's accumulators start again at epoch ``epoch`` (0-based):
        at the end of burn-in and every ``adagrad_restart`` epochs after it."""
        after = epoch - self.burnin
        return after == 0 or (after > 0 and self.adagrad_restart > 0 and after % self.adagrad_restart == 0)

    def mines(self, epoch: int) -> bool:
        """Whether the intruders for hard negatives are mined (again) before epoch ``epoch``."""
        after = epoch - self.burnin
        return self.hard_negatives > 0 and after >= 0 and after % self.mine_every == 0

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (0-based): burn-in factor, then the step decay."""
        if epoch < self.burnin:
            return self.lr * self.burnin_factor
        return self.lr * self.lr_gamma ** sum(1 for m in self.lr_milestones if m <= epoch)

    def validate(self) -> None:
        """Raise a UsageError naming every field that has the wrong type or is out of range
        (run at construction, and again by the trainers: the fields may have been set since)."""
        problems = self._check_types()
        if problems:
            raise UsageError("invalid training configuration: " + "; ".join(problems))
        if self.manifold not in MANIFOLDS:
            problems.append(f"manifold must be one of {', '.join(MANIFOLDS)}, found {self.manifold!r}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, found {self.optimizer!r}")
        if self.engine not in ENGINES:
            problems.append(f"engine must be one of {', '.join(ENGINES)}, found {self.engine!r}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}, found {self.dtype!r}")
        for name in ("dim", "epochs", "negatives", "batch_size", "checkpoint_every", "adagrad_restart", "mine_every",
                     "eval_every"):
            if name in ("epochs", "adagrad_restart", "eval_every"):
                if getattr(self, name) < 0:
                    problems.append(f"{name} must be >= 0, found {getattr(self, name)}")
            elif getattr(self, name) < 1:
                problems.append(f"{name} must be positive, found {getattr(self, name)}")
        if not 0 <= self.hard_negatives <= self.negatives:
            problems.append(f"hard_negatives must be between 0 and negatives ({self.negatives}), "
                            f"found {self.hard_negatives}")
        if not 0 <= self.burnin <= self.epochs:
            problems.append(f"burnin must be between 0 and epochs ({self.epochs}), found {self.burnin}")
        if not 0 < self.boundary_eps < 1:
            problems.append(f"boundary_eps must be in (0, 1), found {self.boundary_eps}")
        if any(m < 1 for m in self.lr_milestones) or \
                list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            problems.append(f"lr_milestones must be increasing positive epochs, found {list(self.lr_milestones)}")
        if not (math.isfinite(self.adagrad_init) and self.adagrad_init >= 0):
            problems.append(f"adagrad_init must be a number >= 0, found {self.adagrad_init}")
        for name in ("lr", "burnin_factor", "init_scale", "curvature", "lr_gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{name} must be a positive number, found {value}")
        if self.manifold == "poincare" and not problems and \
                self.init_scale * math.sqrt(self.dim * self.curvature) >= 1.0 - self.boundary_eps:
            # the initial points are uniform in [-init_scale, init_scale]^dim: a corner must be in the ball
            problems.append(f"init_scale must be below (1 - boundary_eps) / sqrt(dim * curvature) = "
                            f"{(1.0 - self.boundary_eps) / math.sqrt(self.dim * self.curvature):.6g} on the Poincaré "
                            f"ball (the initial points must be inside it), found {self.init_scale}")
        if problems:
            raise UsageError("invalid training configuration: " + "; ".join(problems))
        floor = CONSTANTS[self.dtype].ball_eps
        if self.manifold == "poincare" and self.boundary_eps < floor:
            warnings.warn(f"boundary_eps {self.boundary_eps:g} is below {self.dtype}'s ball margin {floor:g}: the "
                          f"runtime keeps sqrt(c)|x| <= 1 - {floor:g}, so points come no closer to the boundary "
                          f"than that (use float64 for a larger radius)", UserWarning, stacklevel=2)


def _integer(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError
    return int(value)


def _number(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError
    return float(value)


def _string(value) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _optional_path(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _string(value)


def _integers(value) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise TypeError
    return tuple(_integer(v) for v in value)


# each TrainConfig annotation: the check (returns the value to keep, raises TypeError) and what it expects
_FIELD_TYPES = {
    "int": (_integer, "an integer"),
    "float": (_number, "a number (int or float)"),
    "str": (_string, "a string"),
    "str | None": (_optional_path, "a path (str or os.PathLike) or None"),
    "tuple[int, ...]": (_integers, "a tuple (or list) of integers"),
}


# --- the spaces ----------------------------------------------------------------------------


@dataclass
class Space:
    """A manifold for embeddings: coordinates, initialisation and distance."""

    name: str
    dim: int
    curvature: float
    manifold: object  # the torch runtime manifold (its dist, expmap, egrad2rgrad)

    @property
    def coords(self) -> int:
        return self.dim + 1 if self.name == "lorentz" else self.dim

    def init(self, n: int, scale: float, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        """Points near the origin: uniform in [-scale, scale]^dim (mapped onto the hyperboloid
        by expmap0 for the Lorentz model)."""
        u = (torch.rand(n, self.dim, generator=gen, dtype=torch.float64) * 2 - 1) * scale
        if self.name == "lorentz":
            u = self.manifold.expmap0(torch.cat([torch.zeros(n, 1, dtype=torch.float64), u], 1))
        return u.to(dtype)

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d(x, y), broadcast over leading axes; no trailing axis."""
        return self.manifold.dist(x, y)[..., 0]

    def clamp_radius(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """``x`` with every point pulled back to hyperbolic radius at most 2 artanh(1 - eps)/sqrt(c)
        (the Poincaré norm (1 - eps)/sqrt(c)), as the reference implementation bounds its
        points: far enough for trees of any depth seen here, and the conformal factor stays
        below 2/eps, so Adam's transported moments stay finite."""
        if self.name == "euclidean":
            return x
        sc = math.sqrt(self.curvature)
        if self.name == "poincare":
            limit = (1.0 - eps) / sc
            norm = x.norm(dim=-1, keepdim=True)
            return torch.where(norm > limit, x * (limit / norm), x)
        r_max = 2.0 * math.atanh(1.0 - eps) / sc
        spatial = x[..., 1:]
        norm = spatial.norm(dim=-1, keepdim=True)
        limit = math.sinh(sc * r_max) / sc
        spatial = torch.where(norm > limit, spatial * (limit / norm), spatial)
        time_ = torch.sqrt(1.0 / self.curvature + (spatial * spatial).sum(-1, keepdim=True))
        return torch.cat([time_, spatial], -1)

    def geo_type(self) -> str:
        """The manifold declaration a .geo model uses to take these points."""
        if self.name == "euclidean":
            return "R"
        return f"{self.name}(c = {self.curvature!r})"


def make_space(name: str, dim: int, curvature: float = 1.0) -> Space:
    from geomir.backends.torch import runtime

    if name == "poincare":
        manifold = runtime.PoincareBall(curvature)
    elif name == "lorentz":
        manifold = runtime.Lorentz(curvature)
    elif name == "euclidean":
        manifold = runtime.Euclidean()
    else:
        raise UsageError(f"unknown manifold {name!r} (expected one of {', '.join(MANIFOLDS)})")
    return Space(name, dim, curvature, manifold)


# --- negatives -------------------------------------------------------------------------------


class NegativeSampler:
    """Negatives for a batch of sources: uniform, or unigram^(3/4) during burn-in; those that
    are true edges of the source (or the source itself) come back masked. After burn-in,
    ``hard`` of them come from the source's mined intruders where it has some (intruders.py).
    """

    def __init__(self, num_nodes: int, edges: torch.Tensor, counts: torch.Tensor):
        self.n = num_nodes
        self.keys = torch.sort(edges[:, 0] * num_nodes + edges[:, 1]).values
        weights = counts.to(torch.float64).clamp(min=1.0) ** 0.75
        self.unigram = weights / weights.sum()
        # inverse-CDF sampling: several times faster than torch.multinomial for large draws
        self.cdf = torch.cumsum(self.unigram, 0)
        self.cdf /= self.cdf[-1].clone()

    def sample(self, sources: torch.Tensor, k: int, burnin: bool, gen: torch.Generator, hard: int = 0,
               intruders: Intruders | None = None):
        b = sources.shape[0]
        if burnin:
            u = torch.rand(b * k, generator=gen, dtype=torch.float64)
            neg = torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.n - 1).view(b, k)
        else:
            neg = torch.randint(0, self.n, (b, k), generator=gen)
            if hard and intruders is not None:
                neg[:, :hard] = intruders.sample(sources, neg[:, :hard], gen)
        key = sources[:, None] * self.n + neg
        pos = torch.searchsorted(self.keys, key).clamp(max=self.keys.numel() - 1)
        is_edge = self.keys[pos] == key
        return neg, ~is_edge & (neg != sources[:, None])


# --- the model (a module so that DDP can wrap it) ----------------------------------------------------


class EmbeddingLoss(torch.nn.Module):
    """The points as one parameter; ``forward(u, candidates, valid)`` is the batch loss."""

    def __init__(self, points: torch.Tensor, space: Space):
        super().__init__()
        self.points = torch.nn.Parameter(points)
        if space.name != "euclidean":
            self.points.manifold = space.manifold
        self.space = space

    def forward(self, u: torch.Tensor, candidates: torch.Tensor, valid: torch.Tensor,
                scale: float | None = None) -> torch.Tensor:
        return batch_loss(self.space, self.points, u, candidates, valid, scale)


def batch_loss(space: Space, table: torch.Tensor, u: torch.Tensor, candidates: torch.Tensor,
               valid: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """The mean softmax loss of sources ``table[u]`` (B,) against ``table[candidates]``
    (B, 1 + K; the true ancestor first), ``valid`` masking the negatives that are edges.
    ``scale``: the sum over the rows times ``scale`` instead of their mean (a rank's share
    of a distributed batch: finite, 0, when the share is empty)."""
    d = space.distance(table[u][:, None, :], table[candidates])
    logits = torch.where(valid, -d, torch.full_like(d, -math.inf))
    target = torch.zeros(u.shape[0], dtype=torch.long, device=u.device)
    if scale is None:
        return torch.nn.functional.cross_entropy(logits, target)
    return torch.nn.functional.cross_entropy(logits, target, reduction="sum") * scale


# --- results --------------------------------------------------------------------------------------


@dataclass
class Embedding:
    """Trained points with their names and space."""

    points: torch.Tensor
    names: list[str]
    space: Space
    config: TrainConfig
    history: list[dict] = field(default_factory=list)

    def distance(self, x, y):
        return self.space.distance(x, y)

    def evaluate(self, hierarchy, sample: int | None = None):
        from .metrics import make_distance, reconstruction

        return reconstruction(self.points, hierarchy, make_distance(self.space.name, self.space.curvature),
                              sample=sample)

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.points[self.names.index(name)]
        except ValueError:
            raise KeyError(f"no node {name!r} in this embedding") from None

    def save(self, path: str | Path) -> None:
        try:
            torch.save({"format": _EMBEDDING, "points": self.points.detach().cpu(), "names": self.names,
                        "config": asdict(self.config), "history": self.history}, path)
        except (OSError, RuntimeError) as err:
            raise TrainingError(f"cannot write the embedding {path}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> Embedding:
        data = _load_file(path, "embedding")
        if not isinstance(data, dict) or data.get("format") != _EMBEDDING:
            raise TrainingError(f"{path} is not a saved geomir embedding")
        missing = [k for k in ("points", "names", "config", "history") if k not in data]
        if missing:
            raise TrainingError(f"embedding {path} is damaged: it has no {', '.join(missing)}")
        config = _saved_config(path, "embedding", data["config"])
        space = make_space(config.manifold, config.dim, config.curvature)
        points, names = data["points"], data["names"]
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != space.coords:
            raise TrainingError(f"embedding {path} is damaged: its points are not ({len(names)}, {space.coords})")
        if not isinstance(names, (list, tuple)) or len(names) != points.shape[0] or \
                not all(isinstance(x, str) for x in names):
            raise TrainingError(f"embedding {path} is damaged: it has {points.shape[0]} points but "
                                f"{len(names) if isinstance(names, (list, tuple)) else 'no list of'} names")
        return cls(points, list(names), space, config, data["history"])


# --- training --------------------------------------------------------------------------------------


class RowwiseRSGD:
    """Riemannian SGD that moves only the rows a batch touched (the others have zero
    gradient, so the step is the same as geomir's RiemannianSGD on the whole table, at the
    cost of the batch instead of the table): x <- proj(expmap(x, -lr * egrad2rgrad(x, g)))."""

    def __init__(self, points: torch.nn.Parameter, lr: float):
        self.points = points
        self.manifold = getattr(points, "manifold", None)
        self.param_groups = [{"lr": lr}]

    @torch.no_grad()
    def step(self, rows: torch.Tensor) -> None:
        """Move ``rows`` by the gradient accumulated in ``points.grad`` (then zeroed there)."""
        self.points[rows] = self.moved(self.points[rows], self.points.grad[rows], rows)
        self.points.grad[rows] = 0.0

    @torch.no_grad()
    def moved(self, x: torch.Tensor, g: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Points ``x`` (the table's ``rows``) after one step along their Euclidean gradient ``g``."""
        m = self.manifold
        rg = g if m is None else m.egrad2rgrad(x, g)
        rate = self.rate(x, rg, rows)
        return x - rate * rg if m is None else m.proj(m.expmap(x, -rate * rg))

    def rate(self, x: torch.Tensor, rg: torch.Tensor, rows: torch.Tensor) -> float | torch.Tensor:
        """The step size of ``rows`` at ``x`` with Riemannian gradient ``rg``: lr for every row."""
        return self.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"lr": self.param_groups[0]["lr"]}

    def load_state_dict(self, state: dict) -> None:
        self.param_groups[0]["lr"] = state["lr"]


class RowwiseRAdagrad(RowwiseRSGD):
    """Riemannian Adagrad with one accumulator per point (Bécigneul & Ganea 2019, the rows as
    the factors of a product manifold): ``acc[r] += |rgrad|_x^2`` (the squared Riemannian
    norm), then the RSGD step with the rate ``lr / (sqrt(acc[r]) + eps)``. A point that many
    edges share (a hub near the root) gets its step shrunk by its own gradient history, a
    leaf keeps a large one, so one rate suits both; and the per-batch scale of the gradient
    cancels, so the rate does not depend on the batch size."""

    eps = 1e-10

    def __init__(self, points: torch.nn.Parameter, lr: float, init: float = 0.0):
        super().__init__(points, lr)
        self.init = float(init)
        self.acc = torch.full((points.shape[0],), self.init, dtype=torch.float64, device=points.device)

    def restart(self) -> None:
        """Forget the gradient history: every accumulator back to its start (in place)."""
        self.acc.fill_(self.init)

    def rate(self, x: torch.Tensor, rg: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``acc[rows] += |rg|_x^2``, then lr / (sqrt(acc) + eps) per row, shape (rows, 1)."""
        m = self.manifold
        size = (rg * rg).sum(-1) if m is None else m.inner(x, rg)[..., 0].clamp(min=0.0)
        self.acc[rows] += size.to(torch.float64)
        return (self.param_groups[0]["lr"] / (self.acc[rows].sqrt() + self.eps)).to(x.dtype)[:, None]

    def state_dict(self) -> dict:
        return {"lr": self.param_groups[0]["lr"], "acc": self.acc.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.param_groups[0]["lr"] = state["lr"]
        self.acc.copy_(state["acc"])


def _optimizer(config: TrainConfig, points):
    from geomir.backends.torch.optim import RiemannianAdam

    if config.optimizer == "rsgd":
        return RowwiseRSGD(points, config.lr)
    if config.optimizer == "radagrad":
        return RowwiseRAdagrad(points, config.lr, config.adagrad_init)
    return RiemannianAdam([points], lr=config.lr, check_finite=False)  # each step is checked by the trainer (_not_finite)


def _checkpoint(path: str, module: EmbeddingLoss, opt, epoch: int, gen: torch.Generator, config: TrainConfig,
                history: list[dict], intruders: Intruders | None, names: list[str]) -> None:
    tmp = Path(f"{path}.tmp")
    data = {"format": _CHECKPOINT, "points": module.points.detach().cpu(), "optimizer": opt.state_dict(),
            "epoch": epoch, "rng": gen.get_state(), "config": asdict(config), "history": history,
            "names": names}
    if intruders is not None:
        data["intruders"] = intruders.state_dict()
    try:
        torch.save(data, tmp)
        tmp.replace(path)  # atomic: a crash leaves the previous checkpoint
    except (OSError, RuntimeError) as err:
        raise TrainingError(f"epoch {epoch}: cannot write the checkpoint {path}: {err}") from None


def _read_saved(path: str | Path, formats: tuple[str, ...], what: str, config: TrainConfig, keys: tuple[str, ...],
                num_nodes: int, names: tuple[str, ...] | None = None) -> dict:
    """A saved file of one of ``formats`` whose configuration agrees with ``config`` on ``keys``
    and whose points fit the hierarchy (``num_nodes`` rows of the space's coordinates, finite;
    the same node ``names`` when the file has names); ``what`` names it in the errors."""
    data = _load_file(path, what)
    if not isinstance(data, dict) or data.get("format") not in formats:
        raise TrainingError(f"{path} is not a geomir {what}")
    need = ("points", "config") + (("optimizer", "epoch", "rng", "history") if data["format"] == _CHECKPOINT else ())
    missing = [k for k in need if k not in data]
    if missing:
        raise TrainingError(f"{what} {path} is damaged: it has no {', '.join(missing)}")
    saved = _saved_config(path, what, data["config"])
    diff = [f"{k}: {getattr(saved, k)!r} there, {getattr(config, k)!r} here" for k in keys
            if getattr(saved, k) != getattr(config, k)]
    if diff:
        raise TrainingError(f"{what} {path} is of another run ({'; '.join(diff)})")
    points = data["points"]
    coords = make_space(saved.manifold, saved.dim, saved.curvature).coords
    if not isinstance(points, torch.Tensor) or not points.is_floating_point() or points.ndim != 2:
        raise TrainingError(f"{what} {path} is damaged: its points are not a 2-D float tensor")
    if points.shape[0] != num_nodes:
        raise TrainingError(f"{what} {path} has {points.shape[0]} points, the hierarchy {num_nodes} nodes")
    if points.shape[1] != coords:
        raise TrainingError(f"{what} {path} is damaged: its points have {points.shape[1]} coordinates, "
                            f"not the {coords} of {saved.manifold} dimension {saved.dim}")
    if not bool(torch.isfinite(points).all()):
        raise TrainingError(f"{what} {path} is damaged: its points are not all finite")
    if "names" in data:
        saved_names = data["names"]
        if not isinstance(saved_names, (list, tuple)) or len(saved_names) != points.shape[0] or \
                not all(isinstance(x, str) for x in saved_names):
            raise TrainingError(f"{what} {path} is damaged: its node names are not {points.shape[0]} strings")
        if names is not None and list(saved_names) != list(names):
            raise TrainingError(f"{what} {path} embeds other nodes than the hierarchy: "
                                f"{_names_differ(saved_names, names)}")
    elif names is not None:  # a checkpoint written before checkpoints recorded their nodes
        warnings.warn(f"{what} {path} does not record its node names (written by an older geomir): its "
                      f"{points.shape[0]} points are taken to be the hierarchy's nodes in the hierarchy's order; "
                      "only their number is checked", UnnamedCheckpointWarning, stacklevel=4)
    if data["format"] == _CHECKPOINT:
        epoch = data["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise TrainingError(f"{what} {path} is damaged: its epoch is {epoch!r}")
    return data


def _names_differ(saved, names) -> str:
    """How the node names of a saved file (``saved``) differ from the hierarchy's (same count)."""
    i = next(i for i, (a, b) in enumerate(zip(saved, names)) if a != b)
    if set(saved) == set(names):
        how = "the same nodes in another order"
    else:
        absent = len(set(saved) - set(names))
        how = f"{absent} of its {len(saved)} nodes are not in the hierarchy"
    return f"node {i} is {saved[i]!r} there, {names[i]!r} here ({how})"


def _load_file(path: str | Path, what: str):
    try:
        return torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise TrainingError(f"{path} is a directory, not a {what}") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reading = "an embedding from" if what == "embedding" else what
        raise TrainingError(f"cannot read {reading} {path} (not a complete file torch.save wrote: {first})") from None


def _saved_config(path, what: str, config) -> TrainConfig:
    """The TrainConfig a saved file records (a clear error for one of another version)."""
    if not isinstance(config, dict):
        raise TrainingError(f"{what} {path} is damaged: its configuration is not a dict")
    known = {f for f in TrainConfig.__dataclass_fields__}
    unknown = sorted(set(config) - known)
    if unknown:
        raise TrainingError(f"{what} {path} has settings this geomir does not know: {', '.join(map(str, unknown))} "
                            "(written by another version?)")
    try:
        return TrainConfig(**config)
    except Exception as err:  # noqa: BLE001
        raise TrainingError(f"{what} {path} is damaged: its configuration does not load ({err})") from None


def _load_checkpoint(path: str | Path, config: TrainConfig, num_nodes: int,
                     names: tuple[str, ...] | None = None) -> dict:
    """A checkpoint of the run ``config`` describes (everything that shapes its steps must agree)
    and of the hierarchy's nodes (``names``, when given and the checkpoint records them)."""
    same = ("manifold", "dim", "curvature", "optimizer", "negatives", "hard_negatives", "mine_every", "batch_size",
            "seed", "dtype", "burnin", "burnin_factor", "lr", "lr_milestones", "lr_gamma", "adagrad_init",
            "adagrad_restart")
    return _read_saved(path, (_CHECKPOINT,), "checkpoint", config, same, num_nodes, names)


def warm_start_points(path: str | Path, config: TrainConfig, num_nodes: int,
                      names: tuple[str, ...] | None = None) -> torch.Tensor:
    """The points of a saved embedding or checkpoint (``path``) to start another run from: the
    same manifold, dimension, curvature and number of nodes as ``config`` and the hierarchy,
    and the same node ``names`` in the same order (a checkpoint written before checkpoints
    recorded names is taken on trust, with an :class:`UnnamedCheckpointWarning`)."""
    data = _read_saved(path, (_EMBEDDING, _CHECKPOINT), "embedding or checkpoint", config,
                       ("manifold", "dim", "curvature"), num_nodes, names)
    return data["points"]


def train(hierarchy, config: TrainConfig | None = None, *, progress: bool = True, resume: str | Path | None = None,
          device: str | torch.device = "cpu", on_epoch: Callable[[dict], None] | None = None,
          stop_after: int | None = None, warm_start: str | Path | None = None) -> Embedding:
    """Train an embedding of ``hierarchy`` (its transitive closure edges) with ``config``.

    ``resume``: a checkpoint to continue from (its configuration must match). ``warm_start``: a
    saved embedding or checkpoint of the same space whose points this run starts from instead
    of random ones (a new run: its own optimizer state, epochs and random stream; set
    ``burnin=0`` to skip burn-in), e.g. to continue with other settings. ``stop_after``:
    stop after that many epochs of this call (for tests and time-boxed runs; a checkpoint is
    written first when ``config.checkpoint`` is set). Distributed when torch.distributed is
    initialised with more than one process (see the module docstring)."""
    config = config or TrainConfig()
    config.validate()
    device = _device(device)
    if config.checkpoint:
        _check_writable(config.checkpoint, "checkpoint")
    dtype = DTYPES[config.dtype]
    dist = torch.distributed
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    space = make_space(config.manifold, config.dim, config.curvature)
    n = hierarchy.num_nodes
    edges = torch.tensor(np.asarray(hierarchy.edges), dtype=torch.long)
    if edges.numel() == 0:
        raise UsageError(f"the hierarchy has no edges to train on ({n} nodes, 0 edges)")
    gen = torch.Generator().manual_seed(config.seed)
    points = space.init(n, config.init_scale, gen, dtype)
    if warm_start is not None:
        if resume is not None:
            raise UsageError("resume continues a run, warm_start begins one: give one of them")
        points = space.clamp_radius(warm_start_points(warm_start, config, n, tuple(hierarchy.names)).to(dtype),
                                    config.boundary_eps)
    start, history = 0, []
    state = None
    if resume is not None:
        state = _load_checkpoint(resume, config, n, tuple(hierarchy.names))
        points, start, history = state["points"].to(dtype), state["epoch"], list(state["history"])
        if start > config.epochs:
            raise TrainingError(f"checkpoint {resume} is at epoch {start}, past this run's {config.epochs} epochs "
                                "(give at least as many epochs to resume it)")
        try:
            gen.set_state(state["rng"])
        except (RuntimeError, TypeError) as err:
            raise TrainingError(f"checkpoint {resume} is damaged: its random state does not load ({err})") from None
    module = EmbeddingLoss(points.to(device), space)
    opt = _optimizer(config, module.points)
    engine = _engine(config, device, world)
    if engine == "numba":
        from . import numba_engine

        workspace = numba_engine.Workspace(n, space.coords)
        table = module.points.data.numpy()  # the engine updates the points in place
        acc = opt.acc.numpy() if isinstance(opt, RowwiseRAdagrad) else None  # and Adagrad's sums
    if state is not None:
        try:
            opt.load_state_dict(state["optimizer"])
        except Exception as err:  # noqa: BLE001 - a damaged or foreign optimizer state
            raise TrainingError(f"checkpoint {resume} is damaged: its optimizer state does not load ({err})") from None
    model = module
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = NegativeSampler(n, edges, torch.as_tensor(hierarchy.degree_counts()))
    intruders = Intruders.from_state_dict(state["intruders"]) if state is not None and "intruders" in state else None
    end = config.epochs if stop_after is None else min(config.epochs, start + stop_after)
    bar = _progress(progress and rank == 0, end - start, f"{config.manifold} d={config.dim}")
    try:
        for epoch in range(start, end):
            burn = epoch < config.burnin
            if isinstance(opt, RowwiseRAdagrad) and config.restarts_adagrad(epoch):
                opt.restart()  # the burn-in's history (small rates, other negatives) is not this phase's
            for group in opt.param_groups:
                group["lr"] = config.epoch_lr(epoch)
            t0 = time.perf_counter()
            if config.mines(epoch):
                intruders = mine_intruders(module.points, hierarchy, config.manifold, config.curvature)
            order = torch.randperm(edges.shape[0], generator=gen)
            total, steps = 0.0, 0
            # negatives are drawn for a chunk of batches at once (the same stream for both engines)
            for chunk in order.split(config.batch_size * _CHUNK_BATCHES):
                u, v = edges[chunk, 0], edges[chunk, 1]
                # every rank draws the same
                neg, valid = sampler.sample(u, config.negatives, burn, gen, config.hard_negatives, intruders)
                cand = torch.cat([v[:, None], neg], 1)
                ok = torch.cat([torch.ones_like(v[:, None], dtype=torch.bool), valid], 1)
                if engine == "numba":
                    losses, bad = numba_engine.run_batches(table, u.numpy(), cand.numpy(), ok.numpy(),
                                                           config.batch_size, opt.param_groups[0]["lr"],
                                                           config.manifold, config.curvature, config.boundary_eps,
                                                           workspace, acc)
                    if bad >= 0:
                        raise _not_finite(config, epoch, steps + bad, float(losses[bad]))
                    total += float(losses.sum())
                    steps += losses.size
                    continue
                for b in range(0, u.shape[0], config.batch_size):
                    part = slice(b, b + config.batch_size)
                    value, moved = _torch_step(model, module, opt, space, config, u[part], cand[part], ok[part],
                                               device, rank, world)
                    if not math.isfinite(value) or not bool(torch.isfinite(moved).all()):
                        raise _not_finite(config, epoch, steps, value)
                    total += value
                    steps += 1
            record = {"epoch": epoch + 1, "loss": total / max(steps, 1), "lr": opt.param_groups[0]["lr"],
                      "seconds": time.perf_counter() - t0, "engine": engine}
            if config.eval_every and (epoch + 1) % config.eval_every == 0 and rank == 0:
                rec = Embedding(module.points.detach(), hierarchy.names, space, config).evaluate(hierarchy)
                record.update(mean_rank=rec.mean_rank, map=rec.map)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if bar is not None:
                bar.advance(record)
            if config.checkpoint and rank == 0 and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == end):
                _checkpoint(config.checkpoint, module, opt, epoch + 1, gen, config, history, intruders,
                            list(hierarchy.names))
    finally:
        if bar is not None:
            bar.close()
    if not bool(torch.isfinite(module.points).all()):
        raise TrainingError("the trained points are not finite")
    return Embedding(module.points.detach().to("cpu"), list(hierarchy.names), space, config, history)


def _device(device) -> torch.device:
    """``device`` as a torch.device that this torch can use (a UsageError otherwise)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UsageError(f"unknown device {device!r}: {str(err).splitlines()[0]}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r}: this torch has no usable CUDA device (use cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices")
    elif dev.type != "cpu":
        try:
            torch.empty(0, device=dev)
        except Exception as err:  # noqa: BLE001
            raise UsageError(f"device {device!r} is not usable here: {str(err).splitlines()[0]}") from None
    return dev


def _check_writable(path: str | Path, what: str) -> None:
    """Refuse, before any work, a file path whose directory does not exist (or is not one)."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise UsageError(f"cannot write the {what} {path}: the directory {parent} does not exist")
    if Path(path).is_dir():
        raise UsageError(f"cannot write the {what} {path}: it is a directory")


def _not_finite(config: TrainConfig, epoch: int, step: int, loss: float) -> TrainingError:
    hint = f"lower lr ({config.lr})" + (" or use float64" if config.dtype != "float64" else "")
    return TrainingError(f"epoch {epoch + 1}, step {step + 1}: the loss or an updated point is not finite "
                         f"(loss {loss}); {hint}")


def _engine(config: TrainConfig, device: torch.device, world: int) -> str:
    """The engine that runs ``config``: "numba" or "torch"."""
    fits = config.optimizer in ("rsgd", "radagrad") and device.type == "cpu" and world == 1
    if config.engine == "torch" or (config.engine == "auto" and not fits):
        return "torch"
    from . import numba_engine  # imports numba

    if config.engine == "numba":
        if not numba_engine.available():
            raise UsageError("engine 'numba' needs numba: pip install numba (or geomir[fast]), or use engine 'torch'")
        if not fits:
            raise UsageError("engine 'numba' runs Riemannian SGD or Adagrad in one CPU process; use engine 'torch' for "
                             f"optimizer {config.optimizer!r}, device {device.type!r}, {world} processes")
        return "numba"
    return "numba" if numba_engine.available() else "torch"


def _torch_step(model, module: EmbeddingLoss, opt, space: Space, config: TrainConfig, u, cand, ok, device,
                rank: int, world: int) -> tuple[float, torch.Tensor]:
    """One batch on the torch engine: (its loss, the rows it moved)."""
    mine = slice(rank, None, world)
    # DistributedDataParallel averages the ranks' gradients: each rank's loss is its share's sum
    # times world / (global batch), so the average is the gradient of the global batch's mean
    # whatever the shares' sizes (a share may be empty: the last batch of an epoch can have
    # fewer edges than there are ranks; its mean would be NaN)
    scale = world / u.shape[0] if world > 1 else None
    if isinstance(opt, RowwiseRSGD) and world == 1:
        # the loss on the batch's own rows: the step costs O(batch), not O(table)
        rows, inv = torch.unique(torch.cat([u, cand.flatten()]).to(device), return_inverse=True)
        with torch.no_grad():
            sub = module.points[rows]
        sub.requires_grad_(True)
        loss = batch_loss(space, sub, inv[:u.shape[0]], inv[u.shape[0]:].view(cand.shape), ok.to(device))
        (grad,) = torch.autograd.grad(loss, sub)
        moved = space.clamp_radius(opt.moved(sub.detach(), grad, rows), config.boundary_eps)
        with torch.no_grad():
            module.points[rows] = moved
    elif isinstance(opt, RowwiseRSGD):
        loss = model(u[mine].to(device), cand[mine].to(device), ok[mine].to(device), scale)
        rows = torch.unique(torch.cat([u, cand.flatten()])).to(device)
        loss.backward()  # the gradient is zero outside the batch's rows (kept zeroed by the step)
        opt.step(rows)
        with torch.no_grad():
            module.points[rows] = space.clamp_radius(module.points[rows], config.boundary_eps)
        moved = module.points[rows]
    else:
        loss = model(u[mine].to(device), cand[mine].to(device), ok[mine].to(device), scale)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        with torch.no_grad():
            module.points.copy_(space.clamp_radius(module.points, config.boundary_eps))
        moved = module.points  # Adam's moments move every row
    return float(loss.detach()), moved


class _progress:
    """A rich progress bar over epochs, showing the last loss (and MAP when evaluated)."""

    def __new__(cls, enabled: bool, total: int, title: str):
        if not enabled or total <= 0:
            return None
        return super().__new__(cls)

    def __init__(self, enabled: bool, total: int, title: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        self.task = self.bar.add_task(title, total=total, info="")
        self.bar.start()

    def advance(self, record: dict) -> None:
        info = f"loss {record['loss']:.4f}"
        if "map" in record:
            info += f"  MAP {record['map']:.3f}  mean rank {record['mean_rank']:.2f}"
        self.bar.update(self.task, advance=1, info=info)

    def close(self) -> None:
        self.bar.stop()

