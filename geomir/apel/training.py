"""Training loops pause and resume like workflows: checkpoints in the APEL store.

A checkpoint is ``{"model", "optimizer", "step", "extra"}`` encoded with ``state_codec``
and saved under namespace ``training/<run_id>``, key ``<step:012d>``. Restoring the
model and optimizer state dicts is exact, so training continued after ``load_training``
is bit-identical to training that never stopped (given the same data order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geomir.apel import state_codec
from geomir.apel.store import Store, StoreError


@dataclass(frozen=True)
class TrainingState:
    step: int
    model_state: dict
    optimizer_state: dict | None
    extra: dict | None


def save_training(store: Store, run_id: str, step: int, model: Any, optimizer: Any = None,
                  extra: dict | None = None) -> None:
    """Checkpoint ``model`` (an object with ``state_dict()``, or a plain dict of
    tensors/arrays such as a geomir params dict), ``optimizer`` and ``extra`` at ``step``."""
    state = {
        "model": _state_dict(model),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "step": step,
        "extra": extra,
    }
    store.save_state(_namespace(run_id), f"{step:012d}", state_codec.encode(state), {"step": step})


def load_training(store: Store, run_id: str, model: Any = None, optimizer: Any = None) -> TrainingState | None:
    """The most recently saved checkpoint of ``run_id`` (None if there is none); loaded
    into ``model`` / ``optimizer`` when they have ``load_state_dict``."""
    saved = store.load_state(_namespace(run_id))
    if saved is None:
        return None
    key, blob, _meta = saved
    state = state_codec.decode(blob)
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "extra"} <= state.keys():
        raise StoreError(f"{_namespace(run_id)}/{key} is not a training checkpoint")
    if hasattr(model, "load_state_dict"):
        model.load_state_dict(state["model"])
    if optimizer is not None:
        if state["optimizer"] is None:
            raise StoreError(f"{_namespace(run_id)}/{key} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    return TrainingState(state["step"], state["model"], state["optimizer"], state["extra"])


def _namespace(run_id: str) -> str:
    return f"training/{run_id}"


def _state_dict(model: Any) -> dict:
    if hasattr(model, "state_dict"):
        return model.state_dict()
    if isinstance(model, dict):
        return model
    raise StoreError(f"cannot checkpoint a {type(model).__name__}: expected a module with state_dict() or a dict")
