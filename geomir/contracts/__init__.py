"""Kernel contracts: how far an inference kernel may drift from the training kernel.

``load_contract`` reads and validates the YAML file (spec.py); ``check_contract`` runs
both kernels and evaluates every clause (check.py). See docs/kernel-contracts.md."""

from .spec import Contract, ContractSpecError, json_schema, load_contract

__all__ = ["Contract", "ContractSpecError", "json_schema", "load_contract"]
