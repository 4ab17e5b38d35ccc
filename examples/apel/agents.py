"""The Python agents of examples/apel/order.apel: a toy shop, deterministic, no network.

Each agent is a plain function called with its declared parameters as keyword arguments;
records arrive as pydantic models (``order.qty``) and may be returned as dicts. An agent
that also takes a parameter named ``apel`` receives a ``geomir.apel.AgentCall``.

Side effects (charging a card, reserving stock, booking a carrier, refunds, ...) go to a
JSON-lines ledger, ``$ORDER_LEDGER`` (default ``.apel/ledger.jsonl`` in the current
directory), one line per effect, keyed by ``apel.idempotency_key`` (run id + step id). An
effect whose key is already in the ledger is not done again: the agent returns the
recorded result and appends a line marked ``"duplicate": true``, so a repeat is visible
but harmless. That is the agent's half of exactly-once: the engine journals every
completed step and never calls it again, and the key covers the one gap left, a crash
after the effect but before the engine committed the step. ``ORDER_CRASH_AFTER=charge``
(or any other effect name) kills the process right after that effect, to try it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from geomir.apel import Delegate

CATALOG = {"lamp": 40.0, "desk": 180.0, "chair": 95.0}
"""Unit list prices."""


# --- the ledger: the outside world, made visible --------------------------------------------


def ledger_path() -> Path:
    return Path(os.environ.get("ORDER_LEDGER", ".apel/ledger.jsonl"))


def _ledger() -> list[dict]:
    path = ledger_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _append(entry: dict) -> None:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def effect(apel, kind: str, result: dict | bool, **details):
    """Do the side effect ``kind`` once per idempotency key; return its (first) result."""
    for entry in _ledger():
        if entry["key"] == apel.idempotency_key and not entry.get("duplicate"):
            _append({"key": apel.idempotency_key, "effect": kind, "duplicate": True, "attempt": apel.attempt})
            return entry["result"]
    _append({"key": apel.idempotency_key, "effect": kind, "attempt": apel.attempt, "result": result, **details})
    if os.environ.get("ORDER_CRASH_AFTER") == kind:  # simulate a worker killed mid-step (see docs/apel.md)
        os._exit(137)
    return result


def _short(key: str) -> str:
    """A stable id derived from the idempotency key (so a repeat gets the same id)."""
    return format(sum((i + 1) * ord(c) for i, c in enumerate(key)) % 1_000_000, "06d")


# --- pure agents: no side effects, the same answer for the same input --------------------------


def price(order):
    """The list-price quote; large orders are handed to ``bulk_price`` (a delegation)."""
    if order.qty >= 10:
        return Delegate("bulk_price", {"order": order})
    unit = CATALOG[order.item]
    return {"item": order.item, "unit_price": unit, "total": round(unit * order.qty, 2)}


def bulk_price(order):
    unit = round(CATALOG[order.item] * 0.9, 2)
    return {"item": order.item, "unit_price": unit, "total": round(unit * order.qty, 2)}


def haggle(order, offer):
    """One round of the negotiation: the seller comes down 8%, never below its floor."""
    price = max(offer.floor, round(offer.price * 0.92, 2))
    return {"price": price, "floor": offer.floor, "round": offer.round + 1, "accepted": price <= order.max_price}


# --- effectful agents: each side effect keyed by apel.idempotency_key --------------------------


def charge(customer, amount, apel):
    return effect(apel, "charge", {"id": "pay-" + _short(apel.idempotency_key), "amount": amount},
                  customer=customer)


def refund(payment, apel):
    return effect(apel, "refund", True, payment=payment.id, amount=payment.amount)


def reserve(order, apel):
    """Reserves stock. The warehouse is busy on the first attempt of every call (a
    deterministic transient failure): the agent's ``retry 2`` absorbs it."""
    if apel.attempt == 1:
        raise ConnectionError("warehouse busy, try again")
    return effect(apel, "reserve", {"id": "res-" + _short(apel.idempotency_key), "item": order.item,
                                    "qty": order.qty}, order=order.id)


def release(reservation, apel):
    return effect(apel, "release", True, reservation=reservation.id)


def book_carrier(parcel, address, apel):
    return effect(apel, "book_carrier", {"tracking": "TRK-" + _short(apel.idempotency_key), "carrier": "geopost"},
                  reservation=parcel.id, address=address)


def cancel_shipment(shipment, apel):
    return effect(apel, "cancel_shipment", True, tracking=shipment.tracking)


def notify(customer, message, apel):
    return effect(apel, "notify", True, customer=customer, message=message)
