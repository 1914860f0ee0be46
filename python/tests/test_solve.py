"""Solving from Python gives the command line's answer, to the bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lossnav

from conftest import ROOT, SPECS, cli_json

FIGURE1 = ROOT / "problems" / "specs" / "figure1-double-well.json"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_equals_the_command_line(spec):
    expected = cli_json("solve", str(spec))
    got = lossnav.solve(lossnav.Problem.from_spec(spec)).to_dict()
    # JSON floats round-trip exactly (shortest representation), so == is bitwise.
    assert got == expected


@pytest.mark.parametrize("method", ["bvp", "direct", "shooting"])
def test_each_method_and_option_equals_the_command_line(method):
    args = ["--method", method, "--at", "0.5,1,3"]
    extra = {"at": [0.5, 1.0, 3.0]}
    if method == "bvp":
        args += ["--local", "--tol", "1e-10"]
        extra.update(local=True, tol=1e-10)
    expected = cli_json("solve", str(FIGURE1), *args)
    got = lossnav.solve(FIGURE1, method, **extra).to_dict()
    assert got == expected


def test_problem_from_a_dict_text_and_path_agree():
    text = FIGURE1.read_text()
    by_path = lossnav.solve(lossnav.Problem.from_spec(FIGURE1))
    by_text = lossnav.solve(lossnav.Problem.from_spec(text))
    by_dict = lossnav.solve(lossnav.Problem.from_spec(json.loads(text)))
    assert by_path.cost == by_text.cost == by_dict.cost


def test_keyword_problem_is_the_spec():
    spec = json.loads(FIGURE1.read_text())
    p = lossnav.Problem(
        spec["loss"]["expr"],
        vars=spec["loss"]["vars"],
        params=spec["loss"]["params"],
        gamma=0.1,
        theta0=np.array([-0.6, 0.55]),
        horizon=4.0,
        end={"fixed": [1.0625, 0.0]},
        name="figure-1 double well",
    )
    assert p.dim == 2 and p.horizon == 4.0
    assert lossnav.solve(p).cost == lossnav.solve(FIGURE1).cost


def test_solution_arrays_and_the_interpolant():
    sol = lossnav.solve(FIGURE1)
    n = len(sol.t)
    assert sol.theta.shape == (n, 2) and sol.p.shape == (n, 2)
    assert sol.t[0] == 0.0 and sol.t[-1] == 4.0
    # The arrays are the document's doubles.
    doc = sol.to_dict()
    for name in ("t", "theta", "p", "loss", "kinetic", "hamiltonian"):
        np.testing.assert_array_equal(getattr(sol, name), np.asarray(doc[name]))
    # The interpolant passes through the nodes (Hermite interpolation of the node values).
    theta, p = sol.eval(sol.t)
    np.testing.assert_allclose(theta, sol.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, sol.p, rtol=0, atol=1e-12)
    th1, p1 = sol.eval(1.0)
    assert th1.shape == (2,) and p1.shape == (2,)
    # Between nodes: the same as the document's samples from the command line.
    doc = cli_json("solve", str(FIGURE1), "--at", "1.2345")
    np.testing.assert_array_equal(sol.eval([1.2345])[0][0], doc["at"]["theta"][0])
    rule = sol.rule_at([1.2345])
    assert rule == doc["at"]["rule"]
    assert sol.second_order["verdict"] == "minimum"
    assert "tolerance met" in sol.accuracy["verified"]
    assert sol.optimality is not None and sol.extremals


def test_rule_equals_the_command_line():
    spec = ROOT / "problems" / "specs" / "figure3-rotation.json"
    expected = cli_json("rule", str(spec))
    got = lossnav.rule(spec)
    assert isinstance(got["policy"], np.ndarray)
    np.testing.assert_array_equal(got["policy"], np.asarray(expected["policy"]))
    assert got["cost"] == expected["cost"]


def test_check_runs_a_claim():
    rows = lossnav.check("lq-minimum")
    assert [r["id"] for r in rows] == ["lq-minimum"]
    assert rows[0]["pass"] is True


def test_plot_draws_the_trajectory():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    sol = lossnav.solve(FIGURE1)
    ax = sol.plot()
    assert len(ax.get_lines()) == 2
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), sol.theta[:, 0])
