//! Errata: two closed forms of the paper's published figures (the authors' notebook for
//! Figure 3, panels c and d) that disagree with the optimality conditions. Each claim solves the
//! notebook's own problem with the boundary-value solver and shows which expression the solution
//! follows: the corrected one to the solver's accuracy, the published one not at all. The
//! published expressions are written out here as the notebook has them, not taken from
//! lossnav's rules, and the checks take both forms as arguments, so that swapping them is shown
//! to fail (tests/claims.rs).

use nalgebra::Vector2;

use super::{measurement, Claim, Measurement, Unit};
use crate::rules::drift::{Rotation, WeightDecay};
use crate::verify::support::{max_diff, solve};

/// The notebook's Figure 3 parameters (`fig3-nongrad.ipynb`, cell 3): curvature 4 in both
/// coordinates, minimum μ = (0, −0.5), θ0 = (1.5, 1.5), η = k = 1, drift strengths j = q = 10.
const H: f64 = 4.0;
const MU: [f64; 2] = [0.0, -0.5];
const THETA0: [f64; 2] = [1.5, 1.5];
const STRENGTH: f64 = 10.0;

/// An end point and a closed-loop rate, as one form of a closed form gives them.
#[derive(Debug, Clone, Copy)]
pub struct EndAndRate {
    /// The end point θ*.
    pub end: Vector2<f64>,
    /// The closed loop's decay rate (NaN where a form gives none).
    pub rate: f64,
}

/// A closed form of the weight-decay panel: `(j, h, μ, γ) ↦ (θ*, rate)` at η = k = 1.
pub type DecayForm = fn(f64, f64, Vector2<f64>, f64) -> EndAndRate;

/// A closed form of the rotation panel's marked end point: `(q, h, μ, γ) ↦ θ*` at η = k = 1.
pub type RotationForm = fn(f64, f64, Vector2<f64>, f64) -> EndAndRate;

/// The weight-decay panel as published: `B = ηkh/(ηkh + (j − γ)j)`, rate
/// `√((γ/2)² + ηkh + j(j − γ)) − γ/2` (the notebook's `get_curves_qloss_decay`).
pub fn weight_decay_published(j: f64, h: f64, mu: Vector2<f64>, gamma: f64) -> EndAndRate {
    EndAndRate {
        end: mu * (h / (h + (j - gamma) * j)),
        rate: ((gamma / 2.0).powi(2) + h + j * (j - gamma)).sqrt() - gamma / 2.0,
    }
}

/// The weight-decay panel from the optimality conditions (docs/claims.md, `weight-decay-drift`):
/// `θ* = ηkhμ/(ηkh + j(j + γ))`, rate `√((j + γ/2)² + ηkh) − γ/2`.
pub fn weight_decay_corrected(j: f64, h: f64, mu: Vector2<f64>, gamma: f64) -> EndAndRate {
    let w = WeightDecay::new(j, h, mu, 1.0, 1.0, gamma);
    EndAndRate {
        end: w.equilibrium,
        rate: w.rate,
    }
}

/// The rotation panel's marked end point as published: `ratio·μ` with
/// `ratio = ηkh/((ηkh + q²)² + (qγ)²)` (the notebook's `mu_new = ratio*mu`).
pub fn rotation_end_published(q: f64, h: f64, mu: Vector2<f64>, gamma: f64) -> EndAndRate {
    EndAndRate {
        end: mu * (h / ((h + q * q).powi(2) + (q * gamma).powi(2))),
        rate: f64::NAN,
    }
}

/// The rotation end point from the optimality conditions: `ηkh(cI + γqJ)μ/(c² + γ²q²)`,
/// `c = ηkh + q²` (the notebook's own trajectory tends to it).
pub fn rotation_end_corrected(q: f64, h: f64, mu: Vector2<f64>, gamma: f64) -> EndAndRate {
    EndAndRate {
        end: Rotation::new(q, h, mu, 1.0, 1.0, gamma).equilibrium,
        rate: f64::NAN,
    }
}

/// The notebook's problem with drift matrix `a` (row-major 2×2) and discount `gamma`.
fn notebook_problem(a: [[f64; 2]; 2], gamma: f64) -> Result<lossnav_problems::Problem, String> {
    let spec = serde_json::json!({
        "loss": {"quadratic": {"curvatures": [H, H], "minimum": MU}},
        "drift": {"linear": a},
        "eta": 1.0, "k": 1.0, "gamma": gamma,
        "theta0": THETA0,
        "horizon": "infinite",
        "end": "equilibrium",
    });
    lossnav_problems::Spec::from_json(&spec.to_string())
        .and_then(|s| s.to_problem())
        .map_err(|e| e.to_string())
}

/// How far the published form must be from the solution for the erratum to be shown: a
/// thousand times the tolerance at which the corrected form must match it.
const SEPARATION: f64 = 1e3;
/// The corrected form against boundary-value solves at tol 1e-10 (global error a few 1e-11).
const TOLERANCE: f64 = 1e-8;

/// The erratum's measurement: the corrected form's distance from the solution, which must be
/// within the tolerance, while the published form's must exceed `SEPARATION` times it; a
/// published form that the solution follows makes the error infinite.
fn verdict(corrected: f64, published: f64, detail: String) -> Result<Measurement, String> {
    let error = if published > SEPARATION * TOLERANCE {
        corrected
    } else {
        f64::INFINITY
    };
    measurement(
        error,
        TOLERANCE,
        Unit::Absolute,
        format!(
            "{detail}; corrected form off by {corrected:.1e}, published form by {published:.1e} \
             (must exceed {:.0e})",
            SEPARATION * TOLERANCE
        ),
    )
}

pub(super) const WEIGHT_DECAY_ERRATUM: Claim = Claim {
    id: "weight-decay-erratum",
    paper: "Fig. 3d (erratum)",
    statement: "The published weight-decay panel uses j(j − γ) where the optimality conditions give j(j + γ): for γ > 0 its end point and rate are wrong (at the notebook's parameters and γ = 1, θ* = (0, −0.021277) instead of (0, −0.017544)); at γ = 0, as drawn, the two agree",
    closed_form: "published θ* = ηkhμ/(ηkh + j(j − γ)), rate √(γ²/4 + ηkh + j(j − γ)) − γ/2; corrected θ* = ηkhμ/(ηkh + j(j + γ)), rate √((j + γ/2)² + ηkh) − γ/2",
    procedure: "boundary-value solver on the notebook's problem (h = 4, j = 10, μ = (0, −0.5), θ0 = (1.5, 1.5), η = k = 1) at γ = 1: its end point and its decay rate measured over one time constant, against both forms",
    tolerance: "1e-8 on the corrected form's end point and rate (boundary-value solves at tol 1e-10, global error a few 1e-11: two orders of margin), while the published form must be off by more than 1e-5 (a thousand tolerances), else the error is infinite",
    check: weight_decay_erratum,
};

fn weight_decay_erratum() -> Result<Measurement, String> {
    weight_decay_erratum_with(weight_decay_corrected, weight_decay_published)
}

/// The weight-decay erratum with injectable forms (swapping them must fail).
pub fn weight_decay_erratum_with(
    corrected: DecayForm,
    published: DecayForm,
) -> Result<Measurement, String> {
    let (j, gamma) = (STRENGTH, 1.0);
    let sol = solve(&notebook_problem([[-j, 0.0], [0.0, -j]], gamma)?)?;
    let end = sol
        .tail
        .as_ref()
        .ok_or("an infinite-horizon solution without its tail")?
        .theta_star
        .clone();
    let mu = Vector2::from(MU);
    let good = corrected(j, H, mu, gamma);
    // The rate from the coordinate that moves most, over one time constant of the corrected
    // form (the measured rate of an exponential does not depend on the time chosen).
    let t = 1.0 / good.rate;
    let rate = super::measured_rate(&sol, 1, end[1], t);
    let bad = published(j, H, mu, gamma);
    let distance =
        |f: &EndAndRate| max_diff(end.as_slice(), f.end.as_slice()).max((rate - f.rate).abs());
    verdict(
        distance(&good),
        distance(&bad),
        format!(
            "γ = {gamma}: solved θ* = ({:.6}, {:.6}), rate {rate:.6}; corrected ({:.6}, {:.6}), \
             {:.6}; published ({:.6}, {:.6}), {:.6}",
            end[0], end[1], good.end[0], good.end[1], good.rate, bad.end[0], bad.end[1], bad.rate
        ),
    )
}

pub(super) const ROTATION_ENDPOINT_ERRATUM: Claim = Claim {
    id: "rotation-endpoint-erratum",
    paper: "Fig. 3c (erratum)",
    statement: "The published rotation panel marks the end point at ηkh·μ/(c² + γ²q²), missing the factor cI + γqJ (c = ηkh + q²): at the notebook's parameters (γ = 0) the marked point is 104× too close to the origin, while the drawn trajectory, like the optimal one, ends at ηkh(cI + γqJ)μ/(c² + γ²q²)",
    closed_form: "published θ* = ηkhμ/(c² + γ²q²); corrected θ* = ηkh(cI + γqJ)μ/(c² + γ²q²), c = ηkh + q²",
    procedure: "boundary-value solver on the notebook's problem (h = 4, q = 10, μ = (0, −0.5), θ0 = (1.5, 1.5), η = k = 1) at γ = 0 (as drawn) and γ = 1: its end point against both forms",
    tolerance: "1e-8 on the corrected end point (boundary-value solves at tol 1e-10, global error a few 1e-11: two orders of margin), while the published one must be off by more than 1e-5 (a thousand tolerances) at every γ, else the error is infinite",
    check: rotation_endpoint_erratum,
};

fn rotation_endpoint_erratum() -> Result<Measurement, String> {
    rotation_endpoint_erratum_with(rotation_end_corrected, rotation_end_published)
}

/// The rotation erratum with injectable forms (swapping them must fail).
pub fn rotation_endpoint_erratum_with(
    corrected: RotationForm,
    published: RotationForm,
) -> Result<Measurement, String> {
    let q = STRENGTH;
    let mu = Vector2::from(MU);
    let (mut good, mut bad) = (0.0_f64, f64::INFINITY);
    let mut detail = Vec::new();
    for gamma in [0.0, 1.0] {
        // f = qJθ with J the rotation generator [[0, −1], [1, 0]].
        let sol = solve(&notebook_problem([[0.0, -q], [q, 0.0]], gamma)?)?;
        let end = &sol
            .tail
            .as_ref()
            .ok_or("an infinite-horizon solution without its tail")?
            .theta_star;
        let (c, p) = (
            corrected(q, H, mu, gamma).end,
            published(q, H, mu, gamma).end,
        );
        good = good.max(max_diff(end.as_slice(), c.as_slice()));
        bad = bad.min(max_diff(end.as_slice(), p.as_slice()));
        detail.push(format!(
            "γ = {gamma}: solved θ* = ({:.6}, {:.6}), corrected ({:.6}, {:.6}), published \
             ({:.6}, {:.6})",
            end[0], end[1], c[0], c[1], p[0], p[1]
        ));
    }
    verdict(good, bad, detail.join("; "))
}
