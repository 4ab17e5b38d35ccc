"""Pydantic models that tests/apel/test_language.py imports into APEL workflows
(``import type Receipt from "tests.apel.apel_models:Receipt"``)."""

from __future__ import annotations

from pydantic import BaseModel


class Receipt(BaseModel):
    id: str
    amount: float
    lines: list[str]
    paid: bool
