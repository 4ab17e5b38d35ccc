"""Tracing, third hunt: non-ASCII Python names build a model, two threads trace at once,
an input may be named ``self``, Python operators without a .geo counterpart are located
errors naming the builtin to use, and NumPy scalars are the numbers they hold."""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest

import geomir as g
from geomir.ir import parse_ir, print_ir


def _line(fn, marker: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, text in enumerate(lines) if marker in text)


def test_non_ascii_names_build_the_model_and_print_as_ascii():
    """``ä = g.tanh(x)`` (a valid Python name) raised xDSL's 'Invalid OpResult name
    format'; an input ``ä`` its BlockArgument twin. The hint drops accents, as the IR
    printer does for ``Wé``; a name with no ASCII letter is a number."""

    @g.trace(x=g.R(3))
    def local(x):
        ä = g.tanh(x)
        return ä + x

    @g.trace(ä=g.R(3), α=g.R(3))
    def inputs(ä, α):
        βeta = g.tanh(ä)
        return βeta + α

    text = local.ir
    assert "%a = geo.tanh %x" in text
    ir = inputs.ir
    assert "func.func @inputs(%a: " in ir and "%0: " in ir and "%eta = geo.tanh %a" in ir
    assert print_ir(parse_ir(ir)) == ir


def test_two_threads_trace_at_once():
    """The trace stack was one module global: a builtin in thread B, while thread A's trace
    was open, found A's trace ('y belongs to the trace of fb, not of fa')."""
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def fa(x):
        a_inside.set()
        b_inside.wait(5)
        return x + x

    def fb(y):
        b_inside.set()
        a_done.wait(5)
        return g.tanh(y)

    def run(name, f, done=None):
        try:
            results[name] = f.ir
        except Exception as err:  # noqa: BLE001 - reported below
            results[name] = err
        finally:
            if done is not None:
                done.set()

    ta = threading.Thread(target=run, args=("A", g.trace(x=g.R(3))(fa), a_done))
    tb = threading.Thread(target=run, args=("B", g.trace(y=g.R(3))(fb)))
    ta.start()
    a_inside.wait(5)
    tb.start()
    ta.join(10)
    tb.join(10)
    assert isinstance(results["A"], str) and "geo.add" in results["A"]
    assert isinstance(results["B"], str) and "geo.tanh %y" in results["B"]


def test_an_input_named_self():
    """Inputs arrive as keywords; ``__call__(self, *args, **kwargs)`` took ``self`` twice."""

    @g.trace(self=g.R(3))
    def f(self):
        return g.tanh(self)

    def h(self, x):
        return self + x

    h = g.trace(self=g.R(3), x=g.R(3))(h)

    @g.trace(y=g.R(3))
    def caller(y):
        return h(self=y, x=g.tanh(y))

    assert "func.func @f(%self: " in f.ir
    assert "func.call @h(%y, %0)" in caller.ir


OPERATORS = {  # text -> (function of (x, W), words of the message)
    "x ** 2": (lambda x, W: x ** 2, "g.pow(x, p)"),
    "2 ** x": (lambda x, W: 2 ** x, "g.exp(math.log(a) * x)"),
    "abs(x)": (lambda x, W: abs(x), "g.sqrt(x * x)"),
    "+x": (lambda x, W: +x, "unary +"),
    "x @ W": (lambda x, W: x @ W, "g.linear(x, W)"),
    "W @ x": (lambda x, W: W @ x, "g.linear(x, out)"),
    "x // 2": (lambda x, W: x // 2, "floor division"),
    "2 // x": (lambda x, W: 2 // x, "floor division"),
    "x % 2": (lambda x, W: x % 2, "g.proj(x)"),
    "2 % x": (lambda x, W: 2 % x, "modulo"),
    "divmod(x, 2)": (lambda x, W: divmod(x, 2), "modulo"),
    "x[0]": (lambda x, W: x[0], "g.linear(x, 1)"),
}


@pytest.mark.parametrize("text", OPERATORS)
def test_python_operators_without_a_builtin_are_located_errors(text):
    """They raised Python's TypeError ('Traced' ...), not a GeomirError at the user's line."""
    body, words = OPERATORS[text]

    def f(x, W: g.Param[3, 3]):
        return body(x, W)

    with pytest.raises(g.TraceError) as info:
        g.trace(x=g.R(3))(f).ir
    err = info.value
    assert words in err.message and "is not an operation on traced values (" in err.message
    lines = open(__file__, encoding="utf-8").read().splitlines()
    assert err.span.source.name == __file__ and lines[err.span.line - 1].lstrip().startswith(f'"{text}"')


def test_an_operator_error_points_at_the_users_line():
    def f(x):
        y = g.tanh(x)
        return y ** 2

    with pytest.raises(g.TraceError) as info:
        g.trace(x=g.R(3))(f).ir
    err = info.value
    assert err.span.source.name == __file__ and err.span.line == _line(f, "y ** 2")


def test_item_assignment_is_a_located_error():
    def f(x):
        x[0] = 1.0
        return x

    with pytest.raises(g.TraceError, match="item assignment") as info:
        g.trace(x=g.R(3))(f).ir
    assert info.value.span.line == _line(f, "x[0] = 1.0")


@pytest.mark.parametrize("constant", [np.float32(2), np.float64(2), np.int64(2), np.float16(2)])
def test_numpy_scalars_are_the_numbers_they_hold(constant):
    """np.float64(2) (a float subclass) was taken, np.float32(2) refused as 'an array or
    tensor'; every NumPy real scalar is now its Python number."""

    def with_numpy(x):
        return g.pow(constant * x / constant, constant) * np.bool_(True)

    def with_python(x):
        return g.pow(2 * x / 2, 2) * True

    assert g.trace(x=g.R(3))(with_numpy).ir == g.trace(x=g.R(3))(with_python).ir.replace("with_python", "with_numpy")

    def with_array(x):
        return np.zeros(()) * x

    with pytest.raises(g.TraceError, match="cannot trace a value of type ndarray"):
        g.trace(x=g.R(3))(with_array).ir
