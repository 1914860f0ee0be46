"""`lossnav.simulate`: a rule integrated forward, and the Monte Carlo of an observed system."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossnav

from conftest import ROOT, cli_json

SPECS = ROOT / "problems" / "specs"


def test_heavy_ball_equals_the_command_line() -> None:
    spec = str(SPECS / "figure1-double-well.json")
    doc = lossnav.simulate(spec, "heavy-ball", rate=1.0, beta=2.0, at=[0.5, 1.0])
    cli = cli_json("simulate", spec, "--rule", "heavy-ball", "--rate", "1", "--beta", "2",
                   "--at", "0.5,1")
    assert doc["cost"] == cli["cost"]
    assert doc["end_error"] == cli["end_error"]
    assert np.array_equal(doc["theta"], np.asarray(cli["theta"]))
    assert doc["theta"].shape == (len(doc["t"]), 2)
    assert np.array_equal(doc["at"]["theta"], np.asarray(cli["at"]["theta"]))
    assert list(doc)[0] == "status"


def test_optimal_policy_achieves_the_optimal_cost() -> None:
    # Infinite horizon, γ = 1: integrated to t = 40 the closed-form policy's cost differs from
    # the boundary-value solution's infinite-horizon cost by the discounted tail, e^{-40} of it
    # at most, and by the two tolerances (1e-10 relative integration, 1e-8 collocation).
    spec = str(SPECS / "figure2-anisotropic-2d.json")
    doc = lossnav.simulate(spec, "optimal-policy", t_end=40.0)
    solved = lossnav.solve(spec, tol=1e-10)
    assert math.isclose(doc["cost"], solved.cost, rel_tol=1e-7), (doc["cost"], solved.cost)
    # A slower rule costs more.
    slow = lossnav.simulate(spec, "gradient-flow", rate=0.2, t_end=40.0)
    assert slow["cost"] > doc["cost"] + 1e-3


def test_observed_monte_carlo_is_seeded_and_near_the_exact_cost() -> None:
    spec = str(SPECS / "noisy-gradients.json")
    a = lossnav.simulate(spec, paths=4000, seed=3)
    b = lossnav.simulate(spec, paths=4000, seed=3)
    assert a["expected_cost"] == b["expected_cost"]
    mean, se = a["expected_cost"]["mean"], a["expected_cost"]["stderr"]
    # Four standard errors plus the measured time-step bias (first order in dt).
    assert abs(mean - a["exact_expected_cost"]) <= 4 * se + abs(a["time_step_bias"])
    assert a["paths"] == 4000 and a["seed"] == 3


def test_bad_simulations_are_usage_errors() -> None:
    spec = str(SPECS / "figure1-double-well.json")
    with pytest.raises(lossnav.UsageError, match="rule"):
        lossnav.simulate(spec, "adam")
    with pytest.raises(lossnav.UsageError, match="rule is required"):
        lossnav.simulate(spec)
    with pytest.raises(lossnav.UsageError, match="t-end"):
        lossnav.simulate(str(SPECS / "figure2-anisotropic-2d.json"), "gradient-flow")
    with pytest.raises(lossnav.UsageError, match="rate"):
        lossnav.simulate(spec, "gradient-flow", rate=-1.0)
