"""A loss written in Python gives the same solution as the same loss as an expression."""

from __future__ import annotations

import traceback

import numpy as np
import pytest

import lossnav

from conftest import ROOT

FIGURE1 = ROOT / "problems" / "specs" / "figure1-double-well.json"
A, B, C, D = 1.0, 1.0, 1.0, -0.5
SETTINGS = dict(theta0=[-0.6, 0.55], horizon=4.0, gamma=0.1, end={"fixed": [1.0625, 0.0]},
                name="figure-1 double well")


def value_and_grad(theta, t):
    x, y = theta[:, 0], theta[:, 1]
    values = A * (x**2 - B) ** 2 + C * y**2 + D * x
    grads = np.stack([4 * A * x * (x**2 - B) + D, 2 * C * y], axis=1)
    return values, grads


def hessian(theta, t):
    h = np.zeros((len(theta), 2, 2))
    h[:, 0, 0] = 12 * A * theta[:, 0] ** 2 - 4 * A * B
    h[:, 1, 1] = 2 * C
    return h


def python_problem(**changes):
    return lossnav.Problem(lossnav.CallableLoss(value_and_grad, hessian, name="double well"),
                           **{**SETTINGS, **changes})


@pytest.mark.parametrize("method", ["bvp", "direct"])
def test_a_python_loss_matches_the_expression(method):
    expr = lossnav.solve(FIGURE1, method)
    py = lossnav.solve(python_problem(), method)
    # The same mesh decisions up to rounding: the same nodes, and the cost and path to the
    # rounding of two evaluations of one polynomial (measured 7e-15 and 8e-14).
    assert py.theta.shape == expr.theta.shape
    assert abs(py.cost - expr.cost) <= 1e-10 * abs(expr.cost)
    np.testing.assert_allclose(py.theta, expr.theta, rtol=0, atol=1e-10)
    assert py.second_order["verdict"] == expr.second_order["verdict"] == "minimum"


def test_without_hessians_only_the_direct_method_solves():
    problem = lossnav.Problem(value_and_grad, **SETTINGS)
    for method in ["bvp", "shooting"]:
        with pytest.raises(lossnav.UsageError, match="Hessians"):
            lossnav.solve(problem, method)
    sol = lossnav.solve(problem, "direct")
    assert abs(sol.cost - lossnav.solve(FIGURE1, "direct").cost) <= 1e-10
    assert sol.second_order == {
        "checked": False,
        "reason": "the Python loss gives no Hessians (pass CallableLoss(..., hessian=...)): the "
        "second-order check needs them",
    }


def test_an_exception_in_the_loss_reaches_the_caller_with_its_traceback():
    state = {"fail": True}

    def failing(theta, t):
        # Single points (θ0 when the problem is made) pass; the solver's mesh batches fail.
        if state["fail"] and len(theta) > 1:
            raise ZeroDivisionError("inside the user's loss")
        return value_and_grad(theta, t)

    problem = lossnav.Problem(lossnav.CallableLoss(failing, hessian), **SETTINGS)
    with pytest.raises(lossnav.SolverError) as err:
        lossnav.solve(problem)
    cause = err.value.__cause__
    assert isinstance(cause, ZeroDivisionError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert any(f.name == "failing" for f in frames)
    # The next solve of the same problem starts afresh (each solve has its own report).
    state["fail"] = False
    assert lossnav.solve(problem).cost == pytest.approx(lossnav.solve(FIGURE1).cost, rel=1e-10)


def test_wrong_shapes_and_non_finite_values_are_named():
    with pytest.raises(lossnav.UsageError, match="shapes"):
        lossnav.Problem(lambda th, t: (th[:, 0], th[:, :1]), **SETTINGS)
    with pytest.raises(lossnav.UsageError, match="values, gradients"):
        lossnav.Problem(lambda th, t: th[:, 0], **SETTINGS)
    with pytest.raises(lossnav.UsageError, match="not finite"):
        lossnav.Problem(lambda th, t: (th[:, 0] * np.nan, th), **SETTINGS)

    def narrow_later(theta, t):
        v, g = value_and_grad(theta, t)
        return v, (g if len(theta) == 1 else g[:, :1])

    problem = lossnav.Problem(lossnav.CallableLoss(narrow_later, hessian), **SETTINGS)
    with pytest.raises(lossnav.SolverError) as err:
        lossnav.solve(problem)
    assert isinstance(err.value.__cause__, ValueError)
    assert "expected shape" in str(err.value.__cause__)


def test_a_python_loss_has_no_rule_and_no_sweep():
    with pytest.raises(lossnav.RuleError):
        lossnav.rule(python_problem(horizon="infinite", end=None))
    with pytest.raises(lossnav.UsageError, match="sweep"):
        lossnav.sweep(python_problem(), {"gamma": [0.1]})


def test_a_jax_loss_matches_the_expression():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def loss(theta, t):
        x, y = theta[0], theta[1]
        return A * (x**2 - B) ** 2 + C * y**2 + D * x

    problem = lossnav.Problem(lossnav.CallableLoss.from_jax(loss), **SETTINGS)
    # One local solve (the search's many single-point descents cost a JAX dispatch each).
    expr = lossnav.solve(FIGURE1, local=True)
    sol = lossnav.solve(problem, local=True)
    assert abs(sol.cost - expr.cost) <= 1e-10 * abs(expr.cost)
    np.testing.assert_allclose(sol.theta, expr.theta, rtol=0, atol=1e-10)
    del jnp


def test_a_hessian_less_loss_on_an_infinite_horizon_says_what_is_missing():
    problem = lossnav.Problem(value_and_grad, **{**SETTINGS, "horizon": "infinite", "end": None})
    with pytest.raises(lossnav.UsageError, match="Hessians"):
        lossnav.solve(problem, "direct")


def test_rule_at_raises_the_loss_exception():
    state = {"fail": False}

    def flaky(theta, t):
        if state["fail"]:
            raise KeyError("inside rule_at")
        return value_and_grad(theta, t)

    sol = lossnav.solve(lossnav.Problem(lossnav.CallableLoss(flaky, hessian), **SETTINGS))
    state["fail"] = True
    with pytest.raises(KeyError):
        sol.rule_at([1.0])
