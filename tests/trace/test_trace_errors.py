"""Misuse of traced Python is a located error in the user's file (issue 9): the same
messages as .geo, at the Python line and the column of the wrong argument; never a
traceback from inside geomir."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import geomir as g
from geomir.diagnostics import ContractAnnotationError, GeoTypeError

H = g.PoincareBall(c=1.0)
S = g.Sphere(name="S")


def _where(fn, marker: str, at: str | None = None) -> tuple[int, int]:
    """(line, column) of ``at`` (default: all of it) within the first line of fn's source
    that holds ``marker`` (1-based), for the expected caret."""
    lines, first = inspect.getsourcelines(fn)
    for i, text in enumerate(lines):
        if marker in text:
            return first + i, text.index(marker) + (marker.index(at) if at else 0) + 1
    raise AssertionError(marker)


def _error(traced):
    with pytest.raises(g.GeomirError) as info:
        traced.ir
    return info.value


def test_a_type_error_points_at_the_wrong_argument():
    def f(x, y):
        h = g.mobius_linear(x, 16, 32)
        return g.dist(h, y)

    err = _error(g.trace(x=H.point(16), y=S.point(3))(f))
    assert isinstance(err, GeoTypeError)
    assert err.span.source.name == __file__
    assert (err.span.line, err.span.column) == _where(f, "g.dist(h, y)", "y")
    assert ("manifold mismatch for argument 'y' of dist: expected poincare(c=1)[32] (a point on poincare(c=1)), "
            "found S[3] (a point on sphere)") in err.message
    assert "return g.dist(h, y)" in err.render() and "^" in err.render()


def test_a_wrong_layer_size_points_at_the_size():
    def f(x):
        return g.linear(x, 8, 3)

    err = _error(g.trace(x=g.R(4))(f))
    assert (err.span.line, err.span.column) == _where(f, "8, 3")
    assert "the layer expects input dimension 8, found R[4]" in err.message


def test_branching_on_a_traced_value_is_an_error_at_its_line():
    def f(x):
        if g.dist(x, x):
            return x
        return x

    err = _error(g.trace(x=H.point(4))(f))
    assert err.span.line == _where(f, "if g.dist")[0]
    assert "cannot branch on a traced value" in err.message and "loops over range(n) unroll" in err.message


def test_python_conditions_and_loops_are_resolved_while_tracing():
    def make(depth):
        @g.trace(x=g.R(4))
        def f(x):
            for _ in range(depth):
                x = g.tanh(g.linear(x, 4))
            if depth > 2:
                x = g.relu(x)
            return x
        return f

    shallow, deep = make(1).ir, make(3).ir
    assert shallow.count("geo.linear") == 1 and "geo.relu" not in shallow
    assert deep.count("geo.linear") == 3 and deep.count("geo.relu") == 1


def test_arrays_are_not_traceable_values():
    def f(x):
        return x + np.ones(4)

    err = _error(g.trace(x=g.R(4))(f))
    assert (err.span.line, err.span.column) == _where(f, "np.ones")
    assert "cannot trace a value of type ndarray" in err.message


def test_inputs_need_types_and_functions_return_one_value():
    def untyped(x, y):
        return x

    err = _error(g.trace(x=g.R(4))(untyped))
    assert "parameter 'y' of untyped has no type" in err.message and err.span.line == _where(untyped, "def untyped")[0]

    def nothing(x):
        g.tanh(x)

    err = _error(g.trace(x=g.R(4))(nothing))
    assert "returns one traced point or vector; nothing returned nothing" in err.message

    def annotated(x: g.R(3)):
        return g.sin(x)

    assert "geo.sin" in g.trace(annotated).ir


def test_operations_outside_a_trace_and_leaked_values_are_errors():
    with pytest.raises(g.TraceError, match="only inside a function decorated with @geomir.trace"):
        g.tanh(1.0)
    leaked = []

    @g.trace(x=g.R(2))
    def f(x):
        leaked.append(x)
        return x

    f.ir
    with pytest.raises(g.TraceError, match="whose trace has ended"):
        leaked[0] + leaked[0]
    with pytest.raises(g.TraceError, match="to run it, compile it"):
        f(np.zeros(2))


def test_contract_decorators_are_checked_like_annotations():
    def f(x):
        return g.linear(x, 3)

    err = _error(g.lipschitz(-1.0)(g.trace(x=g.R(3))(f)))
    assert isinstance(err, ContractAnnotationError) and "must be a finite number > 0, found -1" in err.message
    err = _error(g.equivariant("so3")(g.trace(x=g.R(3))(f)))
    assert "unknown symmetry group 'so3'" in err.message
    err = _error(g.monotone("z", "increasing")(g.trace(x=g.R(3))(f)))
    assert "names 'z', which is not an input of model f (inputs: x)" in err.message
    # the decorator may sit above or below @trace
    below = g.trace(x=g.R(3))(g.lipschitz(100.0)(f))
    above = g.lipschitz(100.0)(g.trace(x=g.R(3))(f))
    assert "#contract.lipschitz<100.0>" in below.ir and below.ir == above.ir


def test_a_contract_that_does_not_hold_fails_at_the_decorator():
    def f(x):
        return g.linear(x, 64)

    err = _error(g.lipschitz(0.001)(g.trace(x=g.R(64))(f)))
    assert "lipschitz" in err.message.lower() and err.span.source.name == __file__


def test_bad_spaces_and_types():
    with pytest.raises(g.TraceError, match="curvature c of poincare must be a positive number, found -1"):
        g.PoincareBall(c=-1)
    with pytest.raises(g.TraceError, match="dimension of sphere must be an integer of at least 2, found 1"):
        S.point(1)
    with pytest.raises(g.TraceError, match="unknown element type 'f128'"):
        g.R(3, dtype="f128")


@g.trace(x=g.R(4))
def _inner(x):
    return g.tanh(x)


MISUSE = {
    "float-size": (lambda x: g.linear(x, 2.5), "linear declares its parameters by size"),
    "no-arguments": (lambda x: g.tanh(), "tanh(x) takes 1 argument, found 0"),
    "too-many": (lambda x: g.tanh(x, x), "tanh(x) takes 1 argument, found 2"),
    "string": (lambda x: x + "s", "cannot trace a value of type str"),
    "misspelt-keyword": (lambda x: g.linear(x, 8, bais=True), "linear has no keyword 'bais' (keywords: bias, nonnegative)"),
    "tuple-result": (lambda x: (x, x), "returned a tuple"),
    "traced-exponent": (lambda x: g.pow(x, x), "argument 'p' of pow must be a number"),
    "point-for-tangent": (lambda x: g.expmap0(x), "expmap0 expects a tangent vector for 'v'"),
    "mobius-on-R": (lambda x: g.mobius_tanh(x), "mobius_tanh expects a point on poincare"),
    "model-call-arity": (lambda x: _inner(x, x), "model _inner(x: R[4]) takes 1, found 2"),
    "list": (lambda x: g.tanh([x]), "cannot trace a value of type list"),
    "division-by-zero": (lambda x: x / 0, "division by the constant zero"),
    "negative-size": (lambda x: g.linear(x, -3), "output dimension of linear must be at least 1, found -3"),
}


@pytest.mark.parametrize("case", sorted(MISUSE))
def test_misuse_is_a_located_geomir_error(case):
    body, message = MISUSE[case]

    def f(x, body=body):  # a parameter with a default is a Python constant, not an input
        return body(x)

    err = _error(g.trace(x=g.R(4))(f))
    assert message in err.message
    assert err.span is not None and err.span.source.name == __file__


def test_parameters_with_defaults_are_python_constants():
    def f(x, depth=2, scale=0.5):
        for _ in range(depth):
            x = g.tanh(g.linear(x, 4))
        return scale * x

    ir = g.trace(x=g.R(4))(f).ir
    assert ir.count("geo.linear") == 2 and "factor 0.5" in ir and "func.func @f(%x: !geo.point<euclidean, 4, f32>)" in ir


def test_comparing_traced_values_is_the_branching_error():
    """``==`` and ``!=`` would be decided by identity while tracing (a branch silently
    taken): they are the documented error at their line, like ``if x:``."""
    def f(x, y):
        if x == y:  # compare
            return g.tanh(x)
        return g.sigmoid(y)

    err = _error(g.trace(x=g.R(3), y=g.R(3))(f))
    assert "cannot compare (==) with a traced value" in err.message
    assert (err.span.line, err.span.column) == _where(f, "x == y")

    def h(x):
        return g.tanh(x) if x != 0.5 else x

    assert "cannot compare (!=)" in _error(g.trace(x=g.R(3))(h)).message
    assert "cannot compare (<)" in _error(g.trace(x=g.R(3))(lambda_free_lt)).message


def lambda_free_lt(x):
    return x if x < 1.0 else g.tanh(x)


def test_recursion_is_an_error_at_the_call():
    @g.trace(x=g.R(3))
    def f(x):
        return f(g.tanh(x))  # recursion

    err = _error(f)
    assert "f calls itself: a traced model cannot be recursive" in err.message
    assert err.span.line == _where(f.fn, "return f(")[0]


def test_positional_only_parameters_and_keyword_calls_are_traced():
    def inner(x, y):
        return g.tanh(x) - y

    inner_t = g.trace(x=g.R(3), y=g.R(3))(inner)

    def outer(x, y, /):
        return inner_t(x, y=y)

    def swapped(x, y):
        return inner_t(y=y, x=x)

    for f in (outer, swapped):
        assert "func.call @inner(%x, %y)" in g.trace(x=g.R(3), y=g.R(3))(f).ir

    def partial_call(x):
        return inner_t(y=x)

    assert "the call of inner lacks input(s) x" in _error(g.trace(x=g.R(3))(partial_call)).message

    def twice(x):
        return inner_t(x, x=x)

    assert "input 'x' of inner is given twice" in _error(g.trace(x=g.R(3))(twice)).message

    def unknown(x):
        return inner_t(x, z=x)

    assert "inner has no input 'z' (its inputs: x, y)" in _error(g.trace(x=g.R(3))(unknown)).message


def test_lambdas_and_partials_are_clear_errors():
    import functools

    with pytest.raises(g.TraceError, match="a lambda cannot be traced"):
        g.trace(x=g.R(3))(lambda x: g.tanh(x))
    with pytest.raises(g.TraceError, match="a functools.partial cannot be traced"):
        g.trace(x=g.R(3))(functools.partial(lambda x, k: g.tanh(x) * k, k=2.0))


@pytest.mark.parametrize("where", ["operand", "pow", "contract"])
def test_huge_integer_constants_are_the_geo_error(where):
    def operand(x):
        return x * 10**400

    def power(x):
        return g.pow(x, 10**400)

    if where == "contract":
        with pytest.raises(g.TraceError, match=r"integer literal too large \(401 digits\)"):
            g.lipschitz(10**400)
        return
    err = _error(g.trace(x=g.R(3))(operand if where == "operand" else power))
    assert "integer literal too large (401 digits)" in err.message


def test_a_bool_in_arithmetic_is_the_int_it_is():
    """True * x is x, as in Python, numpy and torch (it was "unknown name 'true'": the bool
    went in as the .geo keyword a call argument like bias=False takes)."""
    torch = pytest.importorskip("torch")

    @g.trace(x=g.R(3))
    def f(x):
        return True * x + x * False - x / True

    m = f.compile("torch")
    x = torch.randn(2, 3, dtype=torch.float64)
    assert torch.allclose(m.f(m.init_params(0, dtype=torch.float64), x), torch.zeros_like(x))
