"""Agents of fulfil.apel. Every side effect goes to a ledger (SQLite, $LEDGER) keyed by
the step's idempotency key: a repeated delivery (a worker killed after the effect and
before the commit) finds its key and does nothing, which is what makes effects
exactly-once. ``deliveries`` counts every call, repeated ones included."""

import os
import random
import sqlite3
import time


def _effect(kind: str, key: str, amount: float = 0.0) -> None:
    time.sleep(random.uniform(0.0, 0.02))  # so that kills land inside steps too
    con = sqlite3.connect(os.environ["LEDGER"], timeout=30)
    with con:
        con.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, kind TEXT, amount REAL)")
        con.execute("CREATE TABLE IF NOT EXISTS deliveries (key TEXT, kind TEXT)")
        con.execute("INSERT INTO deliveries VALUES (?, ?)", (key, kind))
        con.execute("INSERT OR IGNORE INTO effects VALUES (?, ?, ?)", (key, kind, amount))
    con.close()
    time.sleep(random.uniform(0.0, 0.02))


def reserve(o, apel):
    _effect("reserve", apel.idempotency_key)
    return {"key": apel.idempotency_key, "amount": o.amount}


def release(r, apel):
    _effect("release", apel.idempotency_key)
    return True


def charge(o, apel):
    _effect("charge", apel.idempotency_key, o.amount)
    return {"key": apel.idempotency_key, "amount": o.amount}


def refund(r, apel):
    _effect("refund", apel.idempotency_key, r.amount)
    return True


def notify(o, what, apel):
    _effect("notify", apel.idempotency_key)
    return True


def ship(o, apel):
    if o.id % 4 == 3:
        raise RuntimeError(f"order {o.id}: nothing left to ship")
    _effect("ship", apel.idempotency_key)
    return f"order {o.id} shipped"
