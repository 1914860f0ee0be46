"""`lossnav.schedule`: learning rates read off a finite-horizon optimal path."""

from __future__ import annotations

import numpy as np
import pytest

import lossnav

from conftest import ROOT, cli_json

SPECS = ROOT / "problems" / "specs"
ONE_D = {
    "loss": {"quadratic": {"curvatures": [2.0], "minimum": [0.0]}},
    "eta": 1.0, "k": 1.0, "gamma": 0.3,
    "theta0": [1.0], "horizon": 5.0, "end": "free",
}


def test_gradient_descent_with_the_schedule_retraces_the_path() -> None:
    doc = lossnav.schedule(ONE_D, steps=25)
    assert list(doc)[0] == "status"
    assert doc["t"].shape == doc["lr"].shape == (25,)
    sol = lossnav.solve(ONE_D)
    theta = 1.0
    for n, lr in enumerate(doc["lr"]):
        theta -= lr * 2.0 * theta
        # The last step ends at the horizon itself (t + dt may round past it).
        on_path = sol.eval([min(doc["t"][n] + doc["dt"], 5.0)])[0][0, 0]
        assert abs(theta - on_path) < 1e-7, (n, theta, on_path)
    # One curvature: a scalar rate explains every step.
    assert np.nanmax(doc["unexplained"]) < 1e-9


def test_the_command_line_gives_the_same_schedule() -> None:
    spec = str(SPECS / "schedule-quadratic.json")
    doc = lossnav.schedule(spec, steps=20)
    cli = cli_json("schedule", spec, "--steps", "20")
    assert np.array_equal(doc["lr"], np.asarray(cli["lr"], dtype=float))
    curv = doc["directions"]["curvature"]
    assert curv.shape == (20, 3)
    assert np.allclose(curv[0], [0.1, 1.0, 10.0])
    # Undefined rates (no gradient along a direction) are NaN, as null is in the JSON.
    nulls = [[v is None for v in row] for row in cli["directions"]["lr"]]
    assert np.array_equal(np.isnan(doc["directions"]["lr"]), np.asarray(nulls))
    assert "unstable" in doc["summary"]["warning"]


def test_a_python_loss_has_a_schedule_too() -> None:
    def value_and_grad(theta, t):
        return 0.5 * 2.0 * theta[:, 0] ** 2, 2.0 * theta

    def hessian(theta, t):
        return np.full((len(theta), 1, 1), 2.0)

    problem = lossnav.Problem(lossnav.CallableLoss(value_and_grad, hessian), theta0=[1.0],
                              horizon=5.0, gamma=0.3, end="free")
    ours = lossnav.schedule(problem, steps=10)["lr"]
    spec = lossnav.schedule(ONE_D, steps=10)["lr"]
    assert np.allclose(ours, spec, rtol=1e-8, atol=0)


def test_what_has_no_schedule_is_refused() -> None:
    with pytest.raises(lossnav.UsageError, match="infinite horizon"):
        lossnav.schedule(str(SPECS / "figure2-quadratic-1d.json"))
    for steps in (0, -3, 2.5, True):
        with pytest.raises(lossnav.UsageError, match="steps"):
            lossnav.schedule(ONE_D, steps=steps)
