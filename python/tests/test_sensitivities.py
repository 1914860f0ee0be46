"""Sensitivities from Python: the same numbers as the command line's, arrays of the path's
shape, and a finite-difference check of dθ/dp through Solution.eval."""

import numpy as np
import pytest

import lossnav
from lossnav import UsageError

from conftest import ROOT


def spec_path(name):
    return ROOT / "problems" / "specs" / name


def test_cost_and_path_derivatives_match_resolves():
    p = lossnav.Problem.from_spec(spec_path("figure1-double-well.json"))
    s = lossnav.solve(p, tol=1e-10, sensitivities=["gamma", "params.d", "theta0[0]"])
    assert list(s.sensitivities) == ["gamma", "params.d", "theta0[0]"]
    g = s.sensitivities["gamma"]
    assert g["theta"].shape == s.theta.shape and g["p"].shape == s.p.shape
    # dJ*/dγ and dθ(t)/dγ against central differences of re-solves (h = 1e-4 · γ:
    # truncation ~1e-9 relative, re-solve noise ~1e-10 / 1e-5 = 1e-5 absolute at most).
    h = 1e-4 * 0.1
    a = lossnav.solve(p.replace(gamma=0.1 + h), tol=1e-10)
    b = lossnav.solve(p.replace(gamma=0.1 - h), tol=1e-10)
    assert g["cost"] == pytest.approx((a.cost - b.cost) / (2 * h), rel=1e-5)
    t = s.t[::4]
    fd = (a.eval(t)[0] - b.eval(t)[0]) / (2 * h)
    np.testing.assert_allclose(g["theta"][::4], fd, atol=1e-5)
    # ∂J*/∂θ0 = -p(0)/η.
    assert s.sensitivities["theta0[0]"]["cost"] == pytest.approx(-s.p[0, 0], abs=1e-12)


def test_direct_method_gives_the_cost_only():
    p = lossnav.Problem.from_spec(spec_path("figure2-anisotropic-2d.json"))
    s = lossnav.solve(p, method="direct", sensitivities=["k"])
    k = s.sensitivities["k"]
    assert "theta" not in k and "direct" in k["path_unavailable"]
    exact = lossnav.solve(p, sensitivities=["k"]).sensitivities["k"]["cost"]
    assert k["cost"] == pytest.approx(exact, rel=1e-3)


def test_bad_names_are_usage_errors():
    p = lossnav.Problem.from_spec(spec_path("figure1-double-well.json"))
    with pytest.raises(UsageError, match="nope"):
        lossnav.solve(p, sensitivities=["nope"])
    def value_and_grad(x, t):
        return 0.5 * (x**2).sum(axis=1), x

    def hessian(x, t):
        return np.broadcast_to(np.eye(x.shape[1]), (x.shape[0], x.shape[1], x.shape[1])).copy()

    loss = lossnav.CallableLoss(value_and_grad, hessian, name="bowl")
    q = lossnav.Problem(loss=loss, theta0=[1.0, 0.5], horizon=2.0)
    with pytest.raises(UsageError, match="Python loss"):
        lossnav.solve(q, sensitivities=["params.a"])
    r = lossnav.solve(q, local=True, sensitivities=["k"])
    assert np.isfinite(r.sensitivities["k"]["cost"])
