"""Every bad input is a Python exception with the command line's message; nothing aborts."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import pytest

import lossnav

from conftest import ROOT, run_cli

FIGURE1 = ROOT / "problems" / "specs" / "figure1-double-well.json"
BASE = {"loss": {"expr": "0.5*x^2", "vars": ["x"]}, "theta0": [1.0], "horizon": 2.0}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"theta0": [1.0, 2.0]}, "theta0"),
        ({"horizon": -1.0}, "horizon"),
        ({"loss": {"expr": "0.5*y^2", "vars": ["x"]}}, "loss.expr"),
        ({"metric": {"diag": [-1.0]}}, "metric"),
        ({"eta": 0.0}, "eta"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_specs_raise_spec_error_naming_the_field(change, field):
    spec = {**BASE, **change}
    with pytest.raises(lossnav.SpecError) as err:
        lossnav.Problem.from_spec(spec)
    assert field in str(err.value)
    assert isinstance(err.value, ValueError)


def test_the_message_is_the_command_lines(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"loss": {"expr": "0.5*x^2", "vars": ["x"]}, "theta0": [1, 2], "horizon": 2}')
    with pytest.raises(lossnav.SpecError) as err:
        lossnav.Problem.from_spec(bad)
    out = run_cli("validate", str(bad))
    assert out.returncode == 2
    assert str(err.value) in out.stderr


def test_non_finite_numbers_and_wrong_types():
    with pytest.raises(lossnav.SpecError):
        lossnav.Problem.from_spec({**BASE, "theta0": [math.nan]})
    with pytest.raises(lossnav.SpecError):
        lossnav.Problem.from_spec({**BASE, "gamma": math.inf})
    with pytest.raises(lossnav.SpecError):
        lossnav.Problem.from_spec("{not json")
    with pytest.raises(lossnav.SpecError):
        lossnav.Problem.from_spec(ROOT / "no-such-spec.json")
    with pytest.raises(lossnav.UsageError):
        lossnav.Problem.from_spec(42)  # type: ignore[arg-type]


def test_bad_arguments_raise_usage_error():
    with pytest.raises(lossnav.UsageError, match="method"):
        lossnav.solve(FIGURE1, "newton")
    with pytest.raises(lossnav.UsageError, match="outside the horizon"):
        lossnav.solve(FIGURE1, at=[5.0])
    with pytest.raises(lossnav.UsageError, match="max_seconds"):
        lossnav.solve(FIGURE1, max_seconds=-1)
    sol = lossnav.solve(FIGURE1)
    with pytest.raises(lossnav.UsageError, match="outside the horizon"):
        sol.eval(4.5)
    # A loss with the wrong signature: its own TypeError when it is first called, at θ0.
    with pytest.raises(TypeError):
        lossnav.Problem(lambda x: x**2, theta0=[1.0], horizon=1.0)
    with pytest.raises(lossnav.UsageError):
        lossnav.Problem(42, theta0=[1.0], horizon=1.0)  # type: ignore[arg-type]


def test_a_failed_solve_raises_solver_error_with_its_kind():
    # A horizon no mesh resolves: Newton's method fails (the command line's error too).
    spec = FIGURE1.read_text().replace('"horizon": 4.0', '"horizon": 1e9')
    with pytest.raises(lossnav.SolverError) as err:
        lossnav.solve(spec)
    assert err.value.kind
    assert isinstance(err.value, RuntimeError)


def test_no_closed_form_rule_raises_rule_error():
    with pytest.raises(lossnav.RuleError, match="linear"):
        lossnav.rule(FIGURE1)


def _slow_problem(d: int = 1000) -> lossnav.Problem:
    # The direct method on a 1000-dimensional Rosenbrock valley with a tight tolerance: over
    # a minute (50 MB), reading its budget between line-search trials.
    return lossnav.Problem({"rosenbrock": {"a": 1, "b": 100}}, theta0=[-1.0] * d, horizon=50.0)


def test_a_budget_raises_time_limit_error():
    start = time.monotonic()
    with pytest.raises(lossnav.TimeLimitError) as err:
        lossnav.solve(_slow_problem(), "direct", tol=1e-9, intervals=400, max_seconds=0.5)
    assert time.monotonic() - start < 5
    assert isinstance(err.value, TimeoutError) and err.value.kind == "time limit"


def test_ctrl_c_stops_a_long_solve_within_a_second():
    problem = _slow_problem()
    # Python's own Ctrl-C handler, as in a terminal or Jupyter: a process started in the
    # background by a non-interactive shell inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            lossnav.solve(problem, "direct", tol=1e-9, intervals=400, max_seconds=20)
        elapsed = time.monotonic() - start
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert elapsed < 0.5 + 1.0, f"returned after {elapsed:.2f} s"


def test_option_values_are_usage_errors():
    with pytest.raises(lossnav.UsageError):
        lossnav.solve(FIGURE1, tol=-1.0)
    with pytest.raises(lossnav.UsageError):
        lossnav.solve(FIGURE1, "direct", intervals=-1)
    with pytest.raises(lossnav.UsageError):
        lossnav.solve(FIGURE1, "direct", intervals=1.5)  # type: ignore[arg-type]


def test_an_infinite_horizon_round_trips_and_replace_changes_the_loss():
    p = lossnav.Problem.from_spec(ROOT / "problems" / "specs" / "figure1-double-well-infinite.json")
    assert p.horizon == math.inf
    assert p.replace(horizon=p.horizon).horizon == math.inf
    q = p.replace(loss={"quadratic": {"curvatures": [1.0, 2.0], "minimum": [0.0, 0.0]}})
    assert q.summary()["loss"] != p.summary()["loss"]
    text = "\ufeff" + (ROOT / "problems" / "specs" / "figure1-double-well.json").read_text()
    assert lossnav.Problem.from_spec(text).dim == 2


def test_ctrl_c_during_a_python_loss_solve_then_exit_is_clean(tmp_path):
    # The worker left finishing its step must not call into Python while the interpreter
    # finalises (it aborted with "PyGILState_Release ... finalizing").
    script = tmp_path / "interrupt.py"
    script.write_text(
        """
import os, signal, threading, time
import numpy as np
import lossnav
signal.signal(signal.SIGINT, signal.default_int_handler)

def vg(theta, t):
    time.sleep(0.002)
    return (theta**2).sum(axis=1) * 0.5, theta.copy()

problem = lossnav.Problem(vg, theta0=[1.0] * 50, horizon=50.0)
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    lossnav.solve(problem, "direct", intervals=2000, tol=1e-12)
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "interrupted"
