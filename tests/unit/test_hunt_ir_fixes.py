"""Regressions from the IR bug hunt (/tmp/hunt-ir): forged ``proved`` claims in generated
code, body-less declarations crashing the prover and the reports, non-ASCII names that did
not parse back, --report=jets on lowered IR, unchecked ``proved`` entries, repeated pass
options, ``(None)`` locations and a dump overwritten by -o. Each failed before its fix."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest

import geomir as g
from geomir.compiler import UncheckedProofWarning, emit_source, to_ir
from geomir.diagnostics import SourceError
from geomir.driver import main
from geomir.ir import parse_ir, print_ir

ROOT = Path(__file__).resolve().parents[2]
P4, P2 = "!geo.point<euclidean, 4, f32>", "!geo.point<euclidean, 2, f32>"


def geomc(*args: str) -> tuple[int, str, str]:
    """Run geomc in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    assert "Traceback" not in err.getvalue() and "internal compiler error" not in err.getvalue(), err.getvalue()
    return code, out.getvalue(), err.getvalue()


def model(attrs: str, transforms: str = "") -> str:
    """A 4 -> 2 linear model scaled by 1000 (Lipschitz bound ~1421) with these attributes."""
    extra = f" {{weight_transforms = [{transforms}]}}" if transforms else ""
    return f"""builtin.module {{
  func.func @F(%x: {P4}) -> {P2} attributes {{{attrs}}} {{
    %w = geo.param "F.linear0.weight" init "glorot_uniform"{extra} : tensor<2x4xf32>
    %0 = geo.linear %x, %w : {P4}, tensor<2x4xf32> -> {P2}
    %1 = geo.scale %0 factor 1000.0 : {P2} -> {P2}
    func.return %1 : {P2}
  }}
}}
"""


FORGED = "proved = [#contract.lipschitz<0.0001>, #contract.monotone<[0], increasing>]"


def contracts_table(code: str) -> str:
    return code[code.index("CONTRACTS = {"):code.index("}\n", code.index("CONTRACTS = {"))]


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


# -- 1: forged proofs ---------------------------------------------------------------------------


def test_verify_contracts_clears_a_forged_proof_on_a_function_without_contracts(write):
    path = write("noc.mlir", model(FORGED + ', proved_before_transforms = [#contract.lipschitz<0.0001>]'))
    code, out, _ = geomc(path, "--target=torch")
    assert code == 0 and "'F'" not in contracts_table(out) and "Proved:" not in out
    code, out, _ = geomc(path)
    assert code == 0 and "proved" not in out


@pytest.mark.parametrize("passes", ["--passes=", "--passes=cse"])
def test_forged_proof_is_not_emitted_without_verify_contracts(write, passes):
    path = write("forged.mlir", model("contracts = [#contract.lipschitz<0.001>], " + FORGED))
    code, out, err = geomc(path, passes, "--target=torch")
    assert code == 0
    assert "'proved': []" in contracts_table(out) and "Proved:" not in out
    assert "note: @F: dropped the claim proved = #contract.lipschitz<0.0001>" in err
    assert "the bound it proves is 1421" in err
    assert "#contract.monotone<[0], increasing>" in err  # mixed-sign weights: not monotone


def test_forged_proof_is_not_emitted_by_compile_module(write):
    module = parse_ir(model(FORGED), "forged.mlir")
    with pytest.warns(UncheckedProofWarning):
        code = emit_source(write("f.mlir", model(FORGED)), "torch", passes=[])
    assert "Proved:" not in code and "'F'" not in contracts_table(code)
    assert module.ops.first.attributes.get("proved") is not None  # the caller's module is left as it was


def test_a_true_proof_survives_a_split_compilation(tmp_path):
    example = str(ROOT / "examples/lipschitz_classifier.geo")
    once = emit_source(example, "torch")
    split = tmp_path / "a.mlir"
    assert geomc(example, "--passes=insert-transport,verify-contracts", "-o", str(split))[0] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedProofWarning)
        code, out, err = geomc(str(split), "--passes=jet-expand,jet-fuse,cse,dce", "--target=torch")
    assert code == 0 and "note:" not in err, err
    assert contracts_table(out) == contracts_table(once) and "#contract.lipschitz<3.52" in contracts_table(out)


def test_proofs_of_this_compilation_are_not_proved_again():
    example = str(ROOT / "examples/lipschitz_classifier.geo")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedProofWarning)
        code = emit_source(example, "torch", passes="verify-contracts,quantize-weights{mode=int8},cse")
    assert "#contract.monotone<[0], increasing>" in contracts_table(code)  # kept through the transform
    from xdsl.dialects import func

    from geomir.compiler import checked_proofs

    module = to_ir(example, passes="verify-contracts")
    assert checked_proofs(module) is module  # nothing to re-check: no copy, no proving
    assert all(f.attributes.get("proved") for f in module.ops if isinstance(f, func.FuncOp))


def test_a_forged_bound_before_transforms_is_not_quoted(write):
    text = model('contracts = [#contract.lipschitz<0.001>], proved_before_transforms = [#contract.lipschitz<0.0001>]',
                 '"quantize:int8"')
    with pytest.raises(SourceError) as err:
        to_ir(write("stale.mlir", text), passes="verify-contracts")
    assert "held before" not in err.value.message and "0.0001" not in err.value.message
    assert "the proved bound is 142" in err.value.message


# -- 2: declarations without a body -----------------------------------------------------------

DECL_CALLED = f"""builtin.module {{
  func.func private @G({P2}) -> {P2}
  func.func @F(%x: {P2}) -> {P2} attributes {{contracts = [#contract.lipschitz<1.0>, #contract.monotone<[0], increasing>, #contract.equivariant<perm>]}} {{
    %0 = func.call @G(%x) : ({P2}) -> {P2}
    func.return %0 : {P2}
  }}
}}
"""
DECL_CONTRACT = f"""builtin.module {{
  func.func private @G({P2}) -> {P2} attributes {{contracts = [#contract.lipschitz<1.0>]}}
}}
"""


def test_contract_through_a_declaration_is_a_located_error(write):
    code, _, err = geomc(write("decl2.mlir", DECL_CALLED))
    assert code == 1 and "@F calls @G, which has no body" in err
    code, _, err = geomc(write("decl4.mlir", DECL_CONTRACT), "--passes=verify-contracts")
    assert code == 1 and "@G is a declaration without a body: its contract #contract.lipschitz<1.0> cannot be proved" in err


@pytest.mark.parametrize("report", ["holonomy", "contracts"])
def test_reports_skip_declarations(write, report):
    pytest.importorskip("torch")
    for name, text in (("decl2.mlir", DECL_CALLED), ("decl4.mlir", DECL_CONTRACT)):
        code, _, _ = geomc(write(name, text), f"--report={report}")
        assert code == 0


# -- 3: non-ASCII names ------------------------------------------------------------------------


def test_traced_non_ascii_names_round_trip():
    source = "import geomir as g\n@g.trace(x=g.R(2))\ndef école(x, Wé: g.Param[2, 2]):\n    return g.tanh(g.linear(x, Wé))\n"
    scope: dict = {}
    exec(compile(source, "<uni>", "exec"), scope)
    module = scope["école"].module
    for generic in (False, True):
        text = print_ir(module, generic=generic)
        again = parse_ir(text, "uni.mlir")
        assert print_ir(again, generic=generic) == text
        assert [f.sym_name.data for f in again.ops] == ["école"]
        assert [o.param_name.data for o in again.walk() if isinstance(o, g.dialects.geo.ParamOp)] == ["école.Wé"]


def test_non_ascii_param_name_in_mlir_round_trips(write):
    text = f"""builtin.module {{
  func.func @F(%x: {P2}) -> {P2} {{
    %w = geo.param "F.poids_é" init "glorot_uniform" : tensor<2x2xf32>
    %0 = geo.linear %x, %w : {P2}, tensor<2x2xf32> -> {P2}
    func.return %0 : {P2}
  }}
}}
"""
    printed = print_ir(parse_ir(text, "uni.mlir"))
    assert print_ir(parse_ir(printed, "uni2.mlir")) == printed
    assert [o.param_name.data for o in parse_ir(printed).walk() if isinstance(o, g.dialects.geo.ParamOp)] == ["F.poids_é"]


# -- 4: --report=jets on lowered IR ------------------------------------------------------------


def test_report_jets_on_the_default_pipelines_output(tmp_path):
    pytest.importorskip("torch")
    lowered = tmp_path / "pinn_def.mlir"
    assert geomc(str(ROOT / "examples/pinn_laplacian.geo"), "-o", str(lowered))[0] == 0
    code, out, _ = geomc(str(lowered), "--report=jets", "--batch", "8")
    assert code == 0
    from geomir.jet_report import models_of

    assert [f.sym_name.data for f in models_of(parse_ir(lowered.read_text()))] == ["U"]


# -- 5: proved entries fit the signature -------------------------------------------------------


def test_proved_entry_out_of_signature_is_invalid_ir(write):
    for attr in ("proved", "proved_before_transforms"):
        code, _, err = geomc(write("m.mlir", model(f"{attr} = [#contract.monotone<[5], increasing>]")), "--passes=")
        assert code == 1 and f"'{attr}' entry #contract.monotone<[5], increasing> does not fit the model" in err
        assert "monotone input index 5 is out of range" in err


# -- 6, 7, dumps -----------------------------------------------------------------------------------


def test_repeated_pass_option_is_a_usage_error():
    code, _, err = geomc(str(ROOT / "examples/lipschitz_classifier.geo"), "--passes=quantize-weights{mode=int8 mode=bf16}")
    assert code == 2 and "option 'mode' is given more than once" in err
    code, _, err = geomc(str(ROOT / "examples/lipschitz_classifier.geo"),
                         "--passes=quantize-weights{mode=int8},quantize-weights{mode=bf16}")
    assert code == 0, err  # one option per pass: not a repeat


def test_contract_report_without_locations_has_no_none(write):
    pytest.importorskip("torch")
    code, _, err = geomc(write("forged.mlir", model("contracts = [#contract.lipschitz<0.001>]")),
                         "--report=contracts", "--fail-on-flags")
    assert code == 1 and "None" not in err
    assert re.search(r"contract report: F: proved 1421", err), err


def test_output_that_is_a_dump_file_is_a_usage_error(tmp_path):
    dumps = tmp_path / "dumps"
    code, _, err = geomc(str(ROOT / "examples/lipschitz_classifier.geo"), "--dump-ir-after-all", "--dump-dir",
                         str(dumps), "-o", str(dumps / "05-cse.mlir"))
    assert code == 2 and "is the dump" in err
    assert not dumps.exists()  # refused before anything is written
