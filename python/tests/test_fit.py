"""lossnav.fit: parameters recovered from an optimal trajectory given as numpy arrays, the
heavy-ball and Adam rule modes, and bad input as UsageError."""

import numpy as np
import pytest

import lossnav
from lossnav import UsageError

from conftest import ROOT, cli_json

SPEC = {
    "loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
    "gamma": 1.0,
    "theta0": [1.0, 1.0],
    "horizon": "infinite",
}


def test_recovers_gamma_and_k_from_arrays():
    truth = lossnav.Problem.from_spec(SPEC)
    sol = lossnav.solve(truth, tol=1e-11)
    t = np.linspace(0.2, 6.0, 30)
    theta, _ = sol.eval(t)
    start = truth.replace(gamma=0.5, k=2.0)
    doc = lossnav.fit(start, ["gamma", "k"], t, theta)
    values = {p["name"]: p["value"] for p in doc["parameters"]}
    assert values["gamma"] == pytest.approx(1.0, rel=1e-6)
    assert values["k"] == pytest.approx(1.0, rel=1e-6)
    assert doc["theta_fitted"].shape == (30, 2)
    assert doc["correlations"].shape == (2, 2)
    assert doc["optimal"]["verdict"] == "the fitted trajectory is the optimal one"
    # Only θ_1 observed (NaN elsewhere): one exponential, one rate √(γ²/4 + 4k) − γ/2, so
    # one combination identified and one not.
    partial = theta.copy()
    partial[:, 0] = np.nan
    doc = lossnav.fit(start, ["gamma", "k"], t, partial)
    assert len(doc["identified"]) == 1 and len(doc["not_identified"]) == 1
    v = {p["name"]: p["value"] for p in doc["parameters"]}
    rate = np.sqrt(v["gamma"] ** 2 / 4 + 4 * v["k"]) - v["gamma"] / 2
    assert rate == pytest.approx(np.sqrt(0.25 + 4) - 0.5, rel=1e-6)


def test_heavy_ball_rule_mode():
    spec = {
        "loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
        "k": 2.0,
        "gamma": 0.5,
        "theta0": [1.0],
        "horizon": "infinite",
    }
    doc = lossnav.fit(spec, ["k", "gamma"], rule="heavy-ball", lr=0.02, beta=0.5, skip=40)
    v = {p["name"]: p["value"] for p in doc["parameters"]}
    rate = np.sqrt(v["gamma"] ** 2 / 4 + v["k"]) - v["gamma"] / 2
    b = 1.5 - 0.02
    assert rate == pytest.approx(-np.log((b + np.sqrt(b * b - 2.0)) / 2), rel=1e-6)


def test_adam_rule_mode_equals_the_command_line():
    spec = ROOT / "problems" / "specs" / "adam-quadratic.json"
    free = ["metric.diag[1]", "gamma"]
    doc = lossnav.fit(lossnav.Problem.from_spec(spec), free, rule="adam", lr=0.01, steps=300)
    cli = cli_json("fit", "--rule", "adam", "--lr", "0.01", "--steps", "300", "--spec",
                   str(spec), "--free", ",".join(free))
    ours = {p["name"]: p["value"] for p in doc["parameters"]}
    theirs = {p["name"]: p["value"] for p in cli["parameters"]}
    assert ours == theirs
    assert ours["metric.diag[1]"] == pytest.approx(4.0, rel=0.03)


def test_bad_input():
    p = lossnav.Problem.from_spec(SPEC)
    with pytest.raises(UsageError, match="nope"):
        lossnav.fit(p, ["nope"], [1.0, 2.0, 3.0], np.zeros((3, 2)))
    with pytest.raises(UsageError, match="increase"):
        lossnav.fit(p, ["gamma"], [2.0, 1.0, 3.0], np.zeros((3, 2)))
    with pytest.raises(UsageError, match="shape"):
        lossnav.fit(p, ["gamma"], [1.0, 2.0], np.zeros((3, 2)))
    with pytest.raises(UsageError, match="not both|t and theta"):
        lossnav.fit(p, ["gamma"], [1.0, 2.0])
