"""Kernel contract files (issue 10): the example of the issue validates; each kind of
mistake is an error at the offending field's line and column, naming the field; the
default tolerances are torch.testing.assert_close's; the JSON schema in docs is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geomir.contracts import ContractSpecError, json_schema, load_contract
from geomir.contracts.tolerances import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]

ISSUE_EXAMPLE = """\
contract: hyp-encoder-v1
model: examples/hyperbolic_mlp.geo
reference: {target: torch, dtype: float64}
candidate: {target: triton, dtype: bfloat16}
inputs: {distribution: normal, samples: 4096, seed: 0}
numerical:    {max_abs: 1e-2, max_rel: 3e-2, metric: manifold}   # manifold = geodesic dist
statistical:  {quantile: 0.999, max_quantile_error: 5e-3, max_kl: 1e-3}
runtime:      {max_p99_ms: 2.0, max_memory_mb: 512}
observability: {sample_rate: 0.01, record: [inputs_hash, max_error, latency_ms]}
escalation:   [{above: 0.5, action: warn}, {above: 1.0, action: fallback}, {above: 2.0, action: block}]
promotion:    [offline, shadow, canary, full]
"""


def test_the_issue_example_validates():
    c, _ = load_contract(ISSUE_EXAMPLE)
    assert c.candidate.target == "triton" and c.candidate.dtype == "bfloat16"
    assert c.numerical.metric == "manifold" and c.statistical.max_kl == 1e-3
    assert [s.action for s in c.escalation] == ["warn", "fallback", "block"]
    assert c.promotion == ("offline", "shadow", "canary", "full")


BAD = [
    ("max_abs: 1e-2", "max_abs: -1", 6, 25, "numerical.max_abs: must be a number > 0, found -1"),
    ("dtype: bfloat16", "dtype: bf17", 4, 36, "candidate.dtype: must be 'float64', 'float32', 'bfloat16' or 'float16', found 'bf17'"),
    ("max_kl: 1e-3", "max_kll: 1e-3", 7, 59, "statistical.max_kll: unknown field (expected one of quantile, max_quantile_error, max_kl, min_top1)"),
    ("contract: hyp-encoder-v1\n", "", 1, 1, "contract: is required"),
    ("above: 1.0", "above: 0.2", 10, 15, "escalation: thresholds must increase, found [0.5, 0.2, 2.0]"),
    ("[offline, shadow", "[shadow, offline", 11, 15, "promotion: stages run in the order offline, shadow, canary, full"),
    ("{target: torch, dtype: float64}", "{target: torch, precision: tf32}", 3, 12, "reference: precision applies to target triton only"),
    ("samples: 4096", "samples: many", 5, 41, "inputs.samples: must be a valid integer"),
    ("target: triton", "target: cuda", 4, 21, "candidate.target: must be 'torch', 'jax' or 'triton', found 'cuda'"),
    ("action: block", "action: panic", 10, 97, "escalation[2].action: must be 'warn', 'fallback' or 'block', found 'panic'"),
    ("promotion:    [offline, shadow, canary, full]", "promotion:    [offline, shadow, canary, full]\nbogus: 1", 12, 1,
     "bogus: unknown field"),
]


@pytest.mark.parametrize("old,new,line,col,message", BAD, ids=[b[4].split(":")[0] for b in BAD])
def test_a_bad_field_is_named_at_its_line(old, new, line, col, message):
    assert old in ISSUE_EXAMPLE
    with pytest.raises(ContractSpecError) as info:
        load_contract(ISSUE_EXAMPLE.replace(old, new, 1))
    err = info.value
    assert message in err.message
    assert (err.span.line, err.span.column) == (line, col), err.render()


def test_yaml_syntax_errors_are_located():
    with pytest.raises(ContractSpecError, match="not valid YAML") as info:
        load_contract(ISSUE_EXAMPLE + "x: [1\n")
    assert info.value.span.line == 13


def test_default_tolerances_are_torch_testings():
    torch = pytest.importorskip("torch")
    from torch.testing._comparison import default_tolerances

    for name, pair in DEFAULTS.items():
        assert default_tolerances(getattr(torch, name)) == pair


def test_the_documented_schema_is_current():
    on_disk = json.loads((ROOT / "docs" / "kernel-contract.schema.json").read_text())
    assert on_disk == json_schema(), "regenerate: geomc contract schema > docs/kernel-contract.schema.json"
