"""Kernel contract files (issue 10): the example of the issue validates; each kind of
mistake is an error at the offending field's line and column, naming the field; the
default tolerances are torch.testing.assert_close's; the JSON schema in docs is current."""

from __future__ import annotations

import json
import re
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
    ("samples: 4096", "samples: many", 5, 41, "inputs.samples: must be an integer, found 'many'"),
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


def test_a_file_that_is_not_utf8_is_an_error_at_the_bad_byte(tmp_path):
    """It was an internal error (a raw UnicodeDecodeError, exit 3) (finding 7)."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(ISSUE_EXAMPLE.replace("hyp-encoder-v1", "t\xe9st").encode("latin-1"))
    with pytest.raises(ContractSpecError, match=r"the file is not UTF-8 \(byte 0xe9 at offset 11") as info:
        load_contract(path)
    assert (info.value.span.line, info.value.span.column) == (1, 12) and info.value.exit_code == 1
    assert str(path) in info.value.render()


DUPLICATES = [
    ("contract: hyp-encoder-v1\n", "contract: hyp-encoder-v1\ncontract: other\n", 2, 1,
     "'contract' (first at line 1, column 1)"),
    ("candidate: {target: triton, dtype: bfloat16}\n",
     "candidate: {target: triton, dtype: bfloat16}\ncandidate: {target: jax}\n", 5, 1, "'candidate' (first at line 4"),
    ("max_abs: 1e-2,", "max_abs: 1e-2, max_abs: -1,", 6, 31, "'max_abs' (first at line 6, column 16)"),
]


@pytest.mark.parametrize("old,new,line,col,message", DUPLICATES, ids=["top", "candidate", "nested"])
def test_a_duplicate_key_is_an_error_at_the_duplicate(old, new, line, col, message):
    """Duplicate keys were accepted, the last value winning (finding 9)."""
    with pytest.raises(ContractSpecError, match="duplicate key " + re.escape(message)) as info:
        load_contract(ISSUE_EXAMPLE.replace(old, new, 1))
    assert (info.value.span.line, info.value.span.column) == (line, col), info.value.render()


COERCIONS = [  # finding 10: values pydantic's lax mode took, and messages that were wrong or oddly placed
    ("max_abs: 1e-2", "max_abs: true", 6, 25, "numerical.max_abs: must be a number, found true"),
    ("samples: 4096", "samples: true", 5, 41, "inputs.samples: must be an integer, found true"),
    ("seed: 0", "seed: false", 5, 53, "inputs.seed: must be an integer, found false"),
    ("samples: 4096", "samples: '100'", 5, 41, "inputs.samples: must be an integer, found '100'"),
    ("max_abs: 1e-2", "max_abs: '1e-2'", 6, 25, "numerical.max_abs: must be a number, found '1e-2'"),
    ("quantile: 0.999", "quantile: .nan", 7, 26, "statistical.quantile: must be a number, found nan"),
    ("sample_rate: 0.01", "sample_rate: .nan", 9, 30, "observability.sample_rate: must be a number, found nan"),
    ("quantile: 0.999", "quantile: 2", 7, 26, "statistical.quantile: must be less than or equal to 1, found 2"),
    ("promotion:    [offline, shadow, canary, full]", "stages: {shadow: {seconds: .nan}}", 11, 28,
     "stages.shadow.seconds: must be a number, found nan"),
    ("promotion:    [offline, shadow, canary, full]", "stages: {offline: {window: 3}}", 11, 10,
     "stages.offline: unknown key, expected 'shadow', 'canary' or 'full'"),
    ("promotion:    [offline, shadow, canary, full]", "stages: {shadow: {windw: 3}}", 11, 19,
     "stages.shadow.windw: unknown field (expected one of window, seconds, failure_limit, min_samples, fraction)"),
    ("promotion:    [offline, shadow, canary, full]", "1: x", 11, 1, "a key is a field name, found 1 (int)"),
    ("promotion:    [offline, shadow, canary, full]", "stages: {shadow: {window: 10, min_samples: 50}}", 11, 18,
     "stages.shadow: min_samples 50 > window 10: a window compares at most window calls, so every window would be "
     "inconclusive"),
]


@pytest.mark.parametrize("old,new,line,col,message", COERCIONS, ids=[c[4].split(",")[0] for c in COERCIONS])
def test_no_coercion_and_clear_messages(old, new, line, col, message):
    assert old in ISSUE_EXAMPLE
    with pytest.raises(ContractSpecError) as info:
        load_contract(ISSUE_EXAMPLE.replace(old, new, 1))
    assert info.value.message == message and (info.value.span.line, info.value.span.column) == (line, col), \
        info.value.render()


def test_yaml_12_numbers_and_merge_keys_still_load():
    c, _ = load_contract(ISSUE_EXAMPLE.replace("max_abs: 1e-2", "max_abs: 1E-2").replace("seed: 0", "seed: 1e3"))
    assert c.numerical.max_abs == 1e-2 and c.inputs.seed == 1000 and c.statistical.max_kl == 1e-3
    merged = ISSUE_EXAMPLE.replace("reference: {target: torch, dtype: float64}",
                                   "base: &k {target: torch, dtype: float64}\nreference: {<<: *k, dtype: float32}")
    with pytest.raises(ContractSpecError, match="base: unknown field"):  # the anchor's key; the merge itself is fine
        load_contract(merged)


HUNT = [  # hunt-kc 13, 14 and the suspicious ones: (old, new, line, col, message)
    ("contract: hyp-encoder-v1", "contract: 12", 1, 11, "contract: must be a valid string, found 12"),
    ("{target: torch, dtype: float64}", "{target: torch, dtype: float64, perturb: 0.5}", 3, 53,
     "reference.perturb: applies to the candidate only (fault injection); the reference is the ground truth, found 0.5"),
    ("above: 2.0", "above: .inf", 10, 84, "escalation[2].above: must be a finite number, found inf"),
    ("promotion:    [offline, shadow, canary, full]", "stages: {shadow: {seconds: .inf}}", 11, 28,
     "stages.shadow.seconds: must be a finite number, found inf"),
]


@pytest.mark.parametrize("old,new,line,col,message", HUNT, ids=[h[4].split(":")[0] for h in HUNT])
def test_hunt_messages_name_what_was_found_where_it_is(old, new, line, col, message):
    assert old in ISSUE_EXAMPLE
    with pytest.raises(ContractSpecError) as info:
        load_contract(ISSUE_EXAMPLE.replace(old, new, 1))
    assert info.value.message.startswith(message) and (info.value.span.line, info.value.span.column) == (line, col), \
        info.value.render()


def test_an_error_under_an_alias_is_at_the_alias_not_the_anchor():
    """It pointed at the anchor, a line where nothing is wrong (hunt-kc 13)."""
    text = ISSUE_EXAMPLE.replace("statistical:  {quantile: 0.999, max_quantile_error: 5e-3, max_kl: 1e-3}",
                                 "statistical:  *num").replace("numerical:    {", "numerical:    &num {")
    with pytest.raises(ContractSpecError, match="statistical.max_abs: unknown field") as info:
        load_contract(text)
    assert (info.value.span.line, info.value.span.column) == (7, 15), info.value.render()


@pytest.mark.parametrize("value,expected", [("0100", 100), ("0o17", 15), ("0x10", 16), ("+7", 7)])
def test_integers_follow_yaml_12(value, expected):
    """PyYAML's YAML 1.1 read 0100 as octal 64 and 1:30 as 90 (hunt-kc 7)."""
    assert load_contract(ISSUE_EXAMPLE.replace("samples: 4096", f"samples: {value}"))[0].inputs.samples == expected


@pytest.mark.parametrize("value", ["1:30", "1_000", "off", "yes"])
def test_yaml_11_scalars_are_text(value):
    with pytest.raises(ContractSpecError, match=f"inputs.seed: must be an integer, found '{value}'"):
        load_contract(ISSUE_EXAMPLE.replace("seed: 0", f"seed: {value}"))
