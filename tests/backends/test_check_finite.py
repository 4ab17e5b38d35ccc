"""Checked execution (``check_finite=True``, ``geomc --check-finite``): the first NaN or inf
of a call raises NonFiniteError at the source line of the op, input or parameter that made
it, on torch, JAX (eager) and the Triton target; a finite call gives the unchecked numbers;
under jax.jit nothing is checked."""

from __future__ import annotations

import numpy as np
import pytest

import geomir
from geomir.diagnostics import NonFiniteError, UsageError
from geomir.driver import main

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

SOURCE = """model U(x: R[2]) -> R[2] {
  let h = tanh(linear(x, 2 -> 3))
  let g = log(h)
  return linear(g, 3 -> 2)
}
derive lap = laplacian(U)
derive d2 = directional(U, order = 2)
"""
GOOD = np.array([[0.3, -0.2]])


def _array(target, a):
    return jnp.asarray(a) if target == "jax" else torch.tensor(a)


def _params(m, target, seed=0):
    """Parameters for which tanh(W x + b) > 0 at GOOD (log is finite there)."""
    p = m.init_params(seed=seed, dtype=jnp.float64 if target == "jax" else torch.float64)
    w, b = "U.linear0.weight", "U.linear0.bias"
    one = jnp.ones if target == "jax" else (lambda s: torch.ones(s, dtype=torch.float64))
    p[w], p[b] = 0.1 * one((3, 2)), one((3,))
    return p


@pytest.fixture(scope="module", params=["torch", "jax"])
def compiled(request, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    target = request.param
    if target == "jax":
        jax.config.update("jax_enable_x64", True)
    return target, geomir.compile(SOURCE, target=target, check_finite=True, cache_dir=cache), \
        geomir.compile(SOURCE, target=target, cache_dir=cache)


def test_a_finite_call_gives_the_unchecked_numbers(compiled):
    target, checked, plain = compiled
    x, v = _array(target, GOOD), _array(target, np.array([[1.0, 0.5]]))
    p = _params(checked, target)
    for name, args in (("U", (x,)), ("lap", (x,)), ("d2", (x, v))):
        np.testing.assert_array_equal(np.asarray(getattr(checked, name)(p, *args)),
                                      np.asarray(getattr(plain, name)(p, *args)))


def test_the_op_that_makes_the_first_nan_is_named_with_its_line(compiled):
    target, checked, _ = compiled
    p = _params(checked, target)
    x = _array(target, np.array([[0.3, -0.2], [-40.0, -40.0]]))  # row 1: tanh < 0, log NaN
    for name in ("U", "lap"):
        with pytest.raises(NonFiniteError) as err:
            getattr(checked, name)(p, x)
        text = err.value.render()
        assert text.startswith("<string>:3:11: error: geo.log in @" + name), text
        assert "gave 3 NaN of 6 values, the first at index [1, 0] of shape [2, 3]" in text
        assert "    3 |   let g = log(h)\n      |           ^" in text


FUSED = """model A(x: R[2]) -> R[2] {
  let h = linear(x, 2 -> 2)
  let y = log(h)
  return y
}
derive dA = directional(A, order = 2)
derive lA = laplacian(A)
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_fused_layer_blames_its_activation_and_names_its_linear_map(target, tmp_path):
    """jet-fuse makes linear (line 2) + log (line 3) one jet.layer; its NaN was reported at
    line 2 (the linear map, which cannot make one from finite values). Now at the log,
    with the caret there, naming the linear map's line."""
    if target == "jax":
        jax.config.update("jax_enable_x64", True)
    m = geomir.compile(FUSED, target=target, check_finite=True, cache_dir=tmp_path)
    p = m.init_params(seed=0, dtype=jnp.float64 if target == "jax" else torch.float64)
    x = _array(target, np.array([[1.0, -2.0], [0.5, 0.3]]))
    for name, args in (("dA", (x, x)), ("lA", (x,))):
        with pytest.raises(NonFiniteError) as err:
            getattr(m, name)(p, *args)
        text = err.value.render()
        assert text.startswith(f"<string>:3:11: error: jet.layer (geo.log, after the linear map at <string>:2:11) "
                               f"in @{name} gave "), text
        assert "    3 |   let y = log(h)\n      |           ^" in text


def test_inputs_and_parameters_are_checked_first(compiled):
    target, checked, _ = compiled
    p = _params(checked, target)
    with pytest.raises(NonFiniteError, match=r"^<string>:1:7: input 'x' in @U gave 1 inf of 2 values") as err:
        checked.U(p, _array(target, np.array([[np.inf, 0.0]])))
    assert err.value.span.line == 1  # the model's header
    bad = dict(p)
    bad["U.linear0.bias"] = bad["U.linear0.bias"] * np.nan
    with pytest.raises(NonFiniteError, match=r"parameter 'U.linear0.bias' in @U gave 3 NaN"):
        checked.U(bad, _array(target, GOOD))


def test_under_jax_jit_nothing_is_checked(compiled):
    target, checked, _ = compiled
    if target != "jax":
        pytest.skip("jax.jit only")
    out = jax.jit(checked.U)(_params(checked, target), jnp.asarray([[-40.0, -40.0]]))
    assert np.isnan(np.asarray(out)).all()  # tracers: the checks step aside


def test_the_triton_target_checks_too():
    pytest.importorskip("triton")
    text = geomir.emit_source(SOURCE, "triton", check_finite=True)
    assert "from geomir.backends.common.finite import check_finite as _check_finite" in text
    assert "_check_finite('<string>:3:11', 'geo.log', 'U', g)" in text


def test_geomc_flag(tmp_path, capsys):
    src = tmp_path / "u.geo"
    src.write_text(SOURCE)
    out = tmp_path / "u.py"
    assert main([str(src), "--target=torch", "--check-finite", "-o", str(out)]) == 0
    assert out.read_text().count("_check_finite(") > 10
    assert main([str(src), "--target=torch", "-o", str(out)]) == 0
    assert "_check_finite" not in out.read_text()
    assert main([str(src), "--check-finite"]) == 2
    assert "--check-finite applies to generated code" in capsys.readouterr().err
    assert main([str(src), "--report=jets", "--check-finite"]) == 2
    assert "drop --check-finite" in capsys.readouterr().err
    with pytest.raises(UsageError, match="has no option 'check_finit'"):
        geomir.emit_source(SOURCE, "torch", check_finit=True)


def test_a_traced_function_points_at_its_python_line():
    E = geomir.Euclidean

    @geomir.trace(x=E.point(2))
    def f(x):
        return geomir.log(x)

    m = f.compile(target="torch", check_finite=True)
    with pytest.raises(NonFiniteError) as err:
        m.f({}, torch.tensor([[-1.0, 2.0]]))
    where = err.value.span
    assert where.source.name == __file__ and "return geomir.log(x)" in err.value.render()


SCALAR = """model S(x: R[2]) -> R[1] {
  let h = log(tanh(linear(x, 2 -> 3)))
  return linear(h, 3 -> 1)
}
derive g = grad(S)
derive hv = hvp(S)
derive w = vjp(S)
"""


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_autodiff_requests_are_checked(target, tmp_path):
    """grad, hvp and vjp run the model under torch.func or jax's transforms: the checks read
    the values under the wrappers (eager JVP and batch tracers), so the op is still named."""
    m = geomir.compile(SCALAR, target=target, check_finite=True, cache_dir=tmp_path)
    p = m.init_params(seed=0)
    p["S.linear0.weight"] = p["S.linear0.weight"] * 0 + 0.1
    p["S.linear0.bias"] = p["S.linear0.bias"] * 0 + 1.0
    dt = np.float32
    x, v, w = (_array(target, np.array(a, dtype=dt)) for a in ([[0.3, -0.2]], [[1.0, 0.5]], [[1.0]]))
    assert np.isfinite(np.asarray(m.g(p, x))).all() and np.isfinite(np.asarray(m.hv(p, x, v))).all()
    assert np.isfinite(np.asarray(m.w(p, x, w))).all()
    bad = _array(target, np.array([[-40.0, -40.0]], dtype=dt))
    with pytest.raises(NonFiniteError, match=r"<string>:2:11: geo\.log in @S gave 3 NaN"):
        m.g(p, bad)
