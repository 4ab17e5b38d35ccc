"""Training hierarchy embeddings with JAX, data parallel over devices with ``jax.sharding``.

The same objective and schedule as :mod:`geomir.representations.train` (the PyTorch
trainer): for every closure edge (u, v) and K negatives v' the loss is the softmax
cross-entropy of -d(u, v) against -d(u, v'), negatives that are true edges of u (or u
itself) are masked with -inf, the first ``burnin`` epochs use ``lr * burnin_factor`` and
unigram^(3/4) negatives, and the optimizer is Riemannian SGD (Euclidean gradient ->
``egrad2rgrad`` -> ``proj(expmap(x, -lr * rgrad))``) or Riemannian Adam (as
``geomir.backends.torch.optim.RiemannianAdam``: betas (0.9, 0.999), eps 1e-8, the second
moment from ``component_inner``, the first moment parallel-transported), each step followed
by the radius bound of ``boundary_eps`` (``train.Space.clamp_radius``). The manifold math
is ``geomir.backends.jax.runtime`` (the formulas the torch runtime runs).

Sharding: a 1-D :class:`jax.sharding.Mesh` over ``devices`` (default ``jax.devices()``)
with the axis ``"data"``. The points (and Adam's moments) are replicated
(``NamedSharding(mesh, P())``); every global batch of ``config.batch_size`` edges with
their negatives is padded to a multiple of the device count (padded rows carry weight 0,
so they do not enter the loss) and sharded along ``"data"``. One ``jax.jit`` step with
in/out shardings computes the mean loss over the global batch, its gradient (XLA inserts
the all-reduce of the per-device partial gradients) and the update, so a step on D devices
is the one-device step up to the order of floating-point sums. Every batch has the same
shape (the last one of an epoch is padded too) and the learning rate is an argument, so
the step compiles once per run.

Negatives are drawn on the host with a seeded ``numpy.random.Generator`` (independent of
the device count: the same seed gives the same batches on 1 or 8 devices). The initial
points are those of the torch trainer for the same seed (``Space.init`` with
``torch.Generator().manual_seed(seed)``); the batch order and negatives are a different
random stream from the torch trainer's, so the two backends agree in distribution, not
bit for bit. So this trainer needs torch too (the module imports without it; training
without it is a UsageError).

Finiteness: each step returns its loss and whether the loss and all updated points are
finite; the host reads these once per epoch (no per-step device sync) and raises
:class:`~geomir.representations.train.TrainingError` naming the first bad epoch and step.

dtype: ``float32`` always works. ``float64`` needs JAX's x64 mode, a process-wide switch
this module never flips; when ``config.dtype == "float64"`` and x64 is off, the run
computes in float32, warns (:class:`PrecisionFallbackWarning`) and records
``"dtype": "float32"`` in every history record (each record names the dtype computed in).
Enable x64 first (``jax.config.update("jax_enable_x64", True)`` or ``JAX_ENABLE_X64=1``)
for a float64 run.

Not supported here (a :class:`~geomir.diagnostics.UsageError` says so): checkpoints and
resuming (``config.checkpoint``); use the torch trainer for resumable runs.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import TYPE_CHECKING, Callable

import numpy as np

from geomir.diagnostics import UsageError, require_installed

if TYPE_CHECKING:
    from .train import Embedding, TrainConfig

__all__ = ["train_jax", "JaxTrainer", "HostSampler", "PrecisionFallbackWarning"]

_ADAM_BETAS = (0.9, 0.999)  # RiemannianAdam's defaults, as train.py constructs it
_ADAM_EPS = 1e-8
_CHUNK = 256  # steps whose (loss, ok) scalars are stacked on the device before the epoch's one read


class PrecisionFallbackWarning(UserWarning):
    """A float64 run computed in float32 because JAX's x64 mode is off."""


def _torch_trainer():
    """:mod:`geomir.representations.train`, whose config, spaces and Embedding this trainer
    shares: a UsageError when torch is not installed (the module imports without it)."""
    require_installed("torch", "train_jax needs", " as well as JAX (its initial points are the torch trainer's and it "
                      "returns a torch Embedding)")
    from . import train

    return train


# --- negatives on the host -----------------------------------------------------------------


class HostSampler:
    """Negatives for a batch of sources with numpy: uniform, or unigram^(3/4) during
    burn-in; those that are true edges of the source (or the source itself) come back
    masked (``valid`` False), as ``train.NegativeSampler`` does."""

    def __init__(self, num_nodes: int, edges: np.ndarray, counts: np.ndarray):
        self.n = int(num_nodes)
        self.keys = np.sort(edges[:, 0].astype(np.int64) * self.n + edges[:, 1].astype(np.int64))
        weights = np.maximum(np.asarray(counts, dtype=np.float64), 1.0) ** 0.75
        if weights.shape != (self.n,):
            raise UsageError(f"degree_counts() has shape {weights.shape}, expected ({self.n},)")
        self.cdf = np.cumsum(weights / weights.sum())

    def sample(self, sources: np.ndarray, k: int, burnin: bool, rng: np.random.Generator):
        b = sources.shape[0]
        if burnin:
            neg = np.minimum(np.searchsorted(self.cdf, rng.random((b, k)), side="right"), self.n - 1)
        else:
            neg = rng.integers(0, self.n, (b, k))
        key = sources[:, None].astype(np.int64) * self.n + neg
        pos = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        is_edge = self.keys[pos] == key
        return neg, ~is_edge & (neg != sources[:, None])


# --- the step ---------------------------------------------------------------------------------


def batch_loss(manifold, points, index, valid, weight):
    """sum over rows of weight * cross-entropy of -d(u, v) against -d(u, v') (``index`` rows
    are [u, v, v'_1..v'_K], ``valid`` masks the candidates; the weights are 1/(real rows)
    on real rows and 0 on padding, so this is the mean over the real rows)."""
    import jax
    import jax.numpy as jnp

    x = points[index[:, 0]][:, None, :]
    y = points[index[:, 1:]]
    d = manifold.dist(x, y)[..., 0]
    logits = jnp.where(valid, -d, -jnp.inf)
    ce = jax.nn.logsumexp(logits, axis=1) - logits[:, 0]
    return jnp.sum(ce * weight)


def clamp_radius(x, manifold_name: str, curvature: float, eps: float):
    """``train.Space.clamp_radius`` in jax.numpy: every point pulled back to hyperbolic radius
    at most 2 artanh(1 - eps)/sqrt(c) (the trainers' ``boundary_eps`` bound)."""
    import jax.numpy as jnp

    if manifold_name == "euclidean":
        return x
    sc = math.sqrt(curvature)
    if manifold_name == "poincare":
        limit = (1.0 - eps) / sc
        norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
        return jnp.where(norm > limit, x * (limit / jnp.where(norm > limit, norm, 1.0)), x)
    limit = math.sinh(2.0 * math.atanh(1.0 - eps)) / sc
    spatial = x[..., 1:]
    norm = jnp.linalg.norm(spatial, axis=-1, keepdims=True)
    spatial = jnp.where(norm > limit, spatial * (limit / jnp.where(norm > limit, norm, 1.0)), spatial)
    time_ = jnp.sqrt(1.0 / curvature + jnp.sum(spatial * spatial, axis=-1, keepdims=True))
    return jnp.concatenate([time_.astype(x.dtype), spatial], axis=-1)


@functools.lru_cache(maxsize=16)
def _compiled_step(manifold_name: str, curvature: float, radam: bool, mesh, boundary_eps: float = 1e-5):
    """The jitted, sharded step for a manifold, optimizer and mesh; cached, so runs with the
    same ones (sweeps, tests) reuse the compiled executable (XLA specialises on shapes and
    dtype under the same jit). After every step the points are pulled back within the radius
    bound of ``boundary_eps``, as the torch trainer does (without it RAdam's transported
    moments overflow at the ball's boundary)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    m = _jax_manifold(manifold_name, curvature)
    beta1, beta2 = _ADAM_BETAS

    def retract(x, v):
        return m.proj(m.expmap(x, v))

    def bound(x):
        return clamp_radius(x, manifold_name, curvature, boundary_eps)

    def step(points, state, index, valid, weight, lr):
        loss, grad = jax.value_and_grad(lambda p: batch_loss(m, p, index, valid, weight))(points)
        rgrad = m.egrad2rgrad(points, grad)
        if radam:
            exp_avg, exp_avg_sq, t = state
            t = t + 1
            exp_avg = beta1 * exp_avg + (1 - beta1) * rgrad
            exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * m.component_inner(points, rgrad)
            denom = jnp.sqrt(exp_avg_sq / (1 - beta2 ** t)) + _ADAM_EPS
            moved = retract(points, -(lr / (1 - beta1 ** t)) * (exp_avg / denom))
            new = bound(moved)
            state = (m.transp(points, new, exp_avg), exp_avg_sq, t)
        else:
            moved = retract(points, -lr * rgrad)
            new = bound(moved)
        # checked before the bound, which would turn an overflowed point into a finite one
        ok = jnp.isfinite(loss) & jnp.all(jnp.isfinite(moved)) & jnp.all(jnp.isfinite(new))
        return new, state, loss, ok

    rep, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    state_sh = (rep, rep, rep) if radam else ()
    return jax.jit(step, in_shardings=(rep, state_sh, data, data, data, rep),
                   out_shardings=(rep, state_sh, rep, rep), donate_argnums=(0, 1))


# --- the trainer ------------------------------------------------------------------------------


def _jax_manifold(name: str, curvature: float):
    from geomir.backends.jax import runtime

    if name == "poincare":
        return runtime.PoincareBall(curvature)
    if name == "lorentz":
        return runtime.Lorentz(curvature)
    return runtime.Euclidean()


class JaxTrainer:
    """One training run; :func:`train_jax` is ``JaxTrainer(...).run()``.

    Attributes after construction: ``mesh`` (the 1-D mesh, axis ``"data"``), ``devices``,
    ``batch_rows`` (the padded global batch), ``points`` (a replicated ``jax.Array``),
    ``dtype`` (the dtype computed in). After a step, ``last_batch`` holds that step's
    sharded device arrays ``(index, valid, weight)``."""

    def __init__(self, hierarchy, config: TrainConfig, *, devices=None):
        train = _torch_trainer()
        import jax
        import jax.numpy as jnp
        import torch
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        config.validate()
        if config.optimizer not in ("rsgd", "radam"):
            raise UsageError(f"the JAX trainer runs optimizer 'rsgd' or 'radam', not {config.optimizer!r}; "
                             "use geomir.representations.train.train")
        if config.hard_negatives:
            raise UsageError("the JAX trainer draws uniform negatives only (hard_negatives 0); "
                             "use geomir.representations.train.train for hard negatives")
        if config.checkpoint:
            raise UsageError("the JAX trainer does not write checkpoints or resume; set config.checkpoint = None "
                             "or use geomir.representations.train.train")
        self.hierarchy, self.config = hierarchy, config
        self.devices = list(jax.devices() if devices is None else devices)
        if not self.devices:
            raise UsageError("train_jax needs at least one device")
        self.mesh = Mesh(np.array(self.devices), ("data",))
        self.replicated = NamedSharding(self.mesh, P())
        self.sharded = NamedSharding(self.mesh, P("data"))

        self.notes: list[str] = []
        self.dtype = config.dtype
        if config.dtype == "float64" and not jax.config.jax_enable_x64:
            self.dtype = "float32"
            note = ("config.dtype is float64 but JAX's x64 mode is off: computed in float32 "
                    "(enable jax_enable_x64 before training for float64)")
            self.notes.append(note)
            warnings.warn(note, PrecisionFallbackWarning, stacklevel=3)

        edges = np.asarray(hierarchy.edges, dtype=np.int64).reshape(-1, 2)
        if edges.shape[0] == 0:
            raise UsageError("the hierarchy has no edges to train on")
        self.edges = edges
        self.n = int(hierarchy.num_nodes)
        self.space = train.make_space(config.manifold, config.dim, config.curvature)
        self.manifold = _jax_manifold(config.manifold, config.curvature)
        self.sampler = HostSampler(self.n, edges, np.asarray(hierarchy.degree_counts()))
        self.rng = np.random.default_rng(config.seed)

        ndev = len(self.devices)
        self.batch_rows = -(-config.batch_size // ndev) * ndev
        jdtype = jnp.dtype(self.dtype)
        init = self.space.init(self.n, config.init_scale, torch.Generator().manual_seed(config.seed), torch.float64)
        self.points = jax.device_put(np.asarray(init.numpy(), dtype=jdtype), self.replicated)
        self.state = ()
        if config.optimizer == "radam":
            zeros = np.zeros(init.shape, dtype=jdtype)
            self.state = (jax.device_put(zeros, self.replicated), jax.device_put(zeros, self.replicated),
                          jax.device_put(np.zeros((), dtype=jdtype), self.replicated))
        self.last_batch = None
        self._step = _compiled_step(config.manifold, float(config.curvature), config.optimizer == "radam", self.mesh,
                                    float(config.boundary_eps))

    # the jitted step ------------------------------------------------------------------------

    def loss_fn(self, points, index, valid, weight):
        """The batch loss (see :func:`batch_loss`) on this run's manifold."""
        return batch_loss(self.manifold, points, index, valid, weight)

    # batches ----------------------------------------------------------------------------------

    def epoch_batches(self, burn: bool):
        """The epoch's batches as host arrays ``(index, valid, weight)``: index (B, K+2) int32
        [u, v, negatives], valid (B, K+1) bool, weight (B,) — B the padded batch size."""
        cfg, rows = self.config, self.batch_rows
        order = self.rng.permutation(self.edges.shape[0])
        wdtype = np.dtype(self.dtype)
        for start in range(0, order.size, cfg.batch_size):
            batch = self.edges[order[start:start + cfg.batch_size]]
            b = batch.shape[0]
            neg, ok = self.sampler.sample(batch[:, 0], cfg.negatives, burn, self.rng)
            index = np.zeros((rows, cfg.negatives + 2), dtype=np.int32)
            valid = np.zeros((rows, cfg.negatives + 1), dtype=bool)
            weight = np.zeros(rows, dtype=wdtype)
            index[:b, :2], index[:b, 2:] = batch, neg
            valid[:, 0] = True  # padded rows: d(0, 0) against nothing, a finite 0 with weight 0
            valid[:b, 1:] = ok
            weight[:b] = 1.0 / b
            yield index, valid, weight

    def step(self, index, valid, weight, lr):
        """One sharded step on host arrays (``lr``: a float or a replicated device scalar);
        returns (loss, ok) as device scalars, without waiting for them."""
        import jax

        batch = tuple(jax.device_put(a, self.sharded) for a in (index, valid, weight))
        self.last_batch = batch
        if not isinstance(lr, jax.Array):
            lr = jax.device_put(np.asarray(lr, dtype=np.dtype(self.dtype)), self.replicated)
        self.points, self.state, loss, ok = self._step(self.points, self.state, *batch, lr)
        return loss, ok

    # the loop -------------------------------------------------------------------------------------

    def run(self, *, progress: bool = False, on_epoch: Callable[[dict], None] | None = None) -> Embedding:
        import jax
        import torch

        from .train import TrainingError, _progress

        cfg = self.config
        history: list[dict] = []
        bar = _progress(progress, cfg.epochs, f"{cfg.manifold} d={cfg.dim} jax x{len(self.devices)}")
        try:
            for epoch in range(cfg.epochs):
                burn = epoch < cfg.burnin
                lr = cfg.epoch_lr(epoch)
                t0 = time.perf_counter()
                lr_dev = jax.device_put(np.asarray(lr, dtype=np.dtype(self.dtype)), self.replicated)
                pending, chunks = [], []
                for batch in self.epoch_batches(burn):
                    pending.append(self.step(*batch, lr_dev))
                    if len(pending) == _CHUNK:  # stacked on the device: one read per chunk at the end
                        chunks.append(self._stack(pending))
                        pending = []
                if pending:
                    chunks.append(self._stack(pending))
                losses, oks = (np.concatenate(a) for a in zip(*jax.device_get(chunks)))
                losses = losses.astype(np.float64)
                bad = np.flatnonzero(~oks.astype(bool))
                if bad.size:
                    s = int(bad[0])
                    raise TrainingError(f"epoch {epoch + 1}, step {s + 1}: the loss or an updated point is not "
                                        f"finite (loss {losses[s]}); lower lr ({cfg.lr}) or use float64")
                record = {"epoch": epoch + 1, "loss": float(losses.mean()), "lr": lr,
                          "seconds": time.perf_counter() - t0, "devices": len(self.devices), "dtype": self.dtype}
                if epoch == 0 and self.notes:
                    record["notes"] = list(self.notes)
                if cfg.eval_every and (epoch + 1) % cfg.eval_every == 0:
                    rec = self.embedding(history).evaluate(self.hierarchy)
                    record.update(mean_rank=rec.mean_rank, map=rec.map)
                history.append(record)
                if on_epoch is not None:
                    on_epoch(record)
                if bar is not None:
                    bar.advance(record)
        finally:
            if bar is not None:
                bar.close()
        emb = self.embedding(history)
        if not bool(torch.isfinite(emb.points).all()):
            raise TrainingError("the trained points are not finite")
        return emb

    @staticmethod
    def _stack(results):
        import jax.numpy as jnp

        return jnp.stack([r[0] for r in results]), jnp.stack([r[1] for r in results])

    def embedding(self, history: list[dict] | None = None) -> Embedding:
        """The current points as an :class:`Embedding` (a torch tensor on the CPU)."""
        import jax
        import torch

        from .train import Embedding

        points = torch.from_numpy(np.array(jax.device_get(self.points)))
        return Embedding(points, list(self.hierarchy.names), self.space, self.config, history or [])


def train_jax(hierarchy, config: TrainConfig | None = None, *, devices=None, progress: bool = False,
              on_epoch: Callable[[dict], None] | None = None) -> Embedding:
    """Train an embedding of ``hierarchy`` (its closure edges ``(child, ancestor)``) with
    JAX, data parallel over ``devices`` (default: all of ``jax.devices()``).

    Returns the same :class:`~geomir.representations.train.Embedding` as the torch trainer
    (points as a CPU torch tensor); ``history`` has one record per epoch with ``loss``,
    ``lr``, ``seconds``, ``devices`` and ``dtype`` (and ``map``/``mean_rank`` every
    ``config.eval_every`` epochs). Raises TrainingError when a step makes the loss or the
    points non-finite. See the module docstring for the sharding and the float64 rule."""
    trainer = JaxTrainer(hierarchy, config or _torch_trainer().TrainConfig(), devices=devices)
    return trainer.run(progress=progress, on_epoch=on_epoch)
