"""The contract dialect: contract attributes and the ``contracts`` attribute of a func."""

from __future__ import annotations

import math
import re

import pytest
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from geomir.dialects import contract, geo, make_context

from .ir_roundtrip import assert_round_trips, parse_ir

# -- helpers ----------------------------------------------------------------------------




# -- attributes -------------------------------------------------------------------------

PRINTED = [
    (contract.LipschitzAttr(4.0), "#contract.lipschitz<4.0>"),
    (contract.LipschitzAttr(0.25), "#contract.lipschitz<0.25>"),
    (contract.LipschitzAttr(4.0, 1.5), "#contract.lipschitz<4.0, radius = 1.5>"),
    *[(contract.EquivariantAttr(g), f"#contract.equivariant<{g}>") for g in contract.EQUIVARIANCE_GROUPS],
    (contract.MonotoneAttr([0, 2], "increasing"), "#contract.monotone<[0, 2], increasing>"),
    (contract.MonotoneAttr([1], "decreasing"), "#contract.monotone<[1], decreasing>"),
]


@pytest.mark.parametrize(("attr", "text"), PRINTED, ids=[t for _, t in PRINTED])
def test_attribute_prints_and_parses(attr, text):
    assert str(attr) == text
    assert Parser(make_context(), text).parse_attribute() == attr


def test_accessors():
    assert contract.LipschitzAttr(4.0).bound_value == 4.0
    assert contract.LipschitzAttr(4.0).radius_value == math.inf
    assert contract.LipschitzAttr(4.0, 2).radius_value == 2.0
    assert contract.LipschitzAttr(4.0) != contract.LipschitzAttr(4.0, 2.0)
    assert contract.MonotoneAttr([2, 0], "increasing").input_indices == (2, 0)
    assert contract.EquivariantAttr("perm").group.data == "perm"
    assert contract.MonotoneAttr([0], "increasing") != contract.MonotoneAttr([0], "decreasing")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: contract.LipschitzAttr(0.0), "contract.lipschitz: bound must be finite and > 0, found 0.0"),
        (lambda: contract.LipschitzAttr(-1.0), "contract.lipschitz: bound must be finite and > 0, found -1.0"),
        (lambda: contract.LipschitzAttr(math.inf), "contract.lipschitz: bound must be finite and > 0, found inf"),
        (lambda: contract.LipschitzAttr(1.0, 0.0), "contract.lipschitz: radius must be finite and > 0, found 0.0"),
        (
            lambda: contract.EquivariantAttr("so3"),
            "contract.equivariant: unknown group 'so3' (expected one of so2, perm, "
            "torus_translation, ball_rotation)",
        ),
        (lambda: contract.MonotoneAttr([], "increasing"), "contract.monotone: expected at least one input index, found []"),
        (
            lambda: contract.MonotoneAttr([0, 0], "increasing"),
            "contract.monotone: input indices must be unique and >= 0, found [0, 0]",
        ),
        (
            lambda: contract.MonotoneAttr([-1], "increasing"),
            "contract.monotone: input indices must be unique and >= 0, found [-1]",
        ),
        (
            lambda: contract.MonotoneAttr([0], "up"),
            "contract.monotone: unknown direction 'up' (expected one of increasing, decreasing)",
        ),
    ],
    ids=["lipschitz-zero", "lipschitz-negative", "lipschitz-inf", "lipschitz-radius", "equivariant", "monotone-empty",
         "monotone-duplicate", "monotone-negative", "monotone-direction"],
)
def test_invalid_attribute(make, message):
    with pytest.raises(VerifyException, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#contract.lipschitz<-2.0>", "bound must be finite and > 0, found -2.0"),
        ("#contract.lipschitz<2.0, radius = -1.0>", "radius must be finite and > 0, found -1.0"),
        ("#contract.equivariant<rotation>", "unknown group 'rotation'"),
        ("#contract.monotone<[], increasing>", "expected at least one input index"),
    ],
)
def test_invalid_attribute_text(text, message):
    with pytest.raises(VerifyException, match=re.escape(message)):
        Parser(make_context(), text).parse_attribute()


# -- on a func.func ---------------------------------------------------------------------

CONTRACTS = [
    contract.LipschitzAttr(4.0),
    contract.EquivariantAttr("so2"),
    contract.MonotoneAttr([0, 2], "increasing"),
]


def model_with_contracts() -> func.FuncOp:
    x_type = geo.PointType(geo.EuclideanAttr(), 4)
    f = func.FuncOp("f", ([x_type, x_type, x_type], [x_type]))
    with ImplicitBuilder(f.body) as (x, y, z):
        func.ReturnOp(geo.AddOp(geo.AddOp(x, y), z))
    contract.set_contracts(f, CONTRACTS)
    return f


def test_contracts_on_func_round_trip():
    f = model_with_contracts()
    assert contract.CONTRACT_ATTR_NAME == "contracts"
    assert f.attributes["contracts"] == ArrayAttr(CONTRACTS)
    text = assert_round_trips(ModuleOp([f]))
    assert (
        "attributes {contracts = [#contract.lipschitz<4.0>, #contract.equivariant<so2>, "
        "#contract.monotone<[0, 2], increasing>]}"
    ) in text
    parsed_func = parse_ir(text).body.block.first_op
    assert contract.get_contracts(parsed_func) == tuple(CONTRACTS)


def test_get_and_set_contracts():
    f = model_with_contracts()
    contract.set_contracts(f, [])
    assert "contracts" not in f.attributes and contract.get_contracts(f) == ()
    f.attributes["contracts"] = ArrayAttr([StringAttr("lipschitz")])
    message = "func.func: 'contracts' must be an array of #contract attributes"
    with pytest.raises(VerifyException, match=re.escape(message)):
        contract.get_contracts(f)


def test_dialect_lists_every_contract():
    assert set(contract.Contract.attributes) == {
        contract.LipschitzAttr, contract.EquivariantAttr, contract.MonotoneAttr
    }
    assert list(contract.Contract.operations) == []
