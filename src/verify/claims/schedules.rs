//! Learning-rate schedules (docs/theory.md §4.1): on a finite horizon the optimal effective
//! learning rate is the infinite-horizon one, held, then decayed to zero at the horizon —
//! a stable–decay schedule whose decay has a length set by the curvature and the discount,
//! not by the horizon.

use super::{measurement, Claim, Measurement, Unit};
use crate::rules::schedule::HorizonRate;
use crate::verify::support::solve;

/// The problem: a diagonal quadratic in three coordinates, curvatures over a decade and a
/// half, one coordinate with metric 2, discount 0.5, free end. The horizons are short enough that
/// θ stays above 3e-4, so that α = −θ̇/(hθ) is a well-conditioned ratio.
const CURVATURES: [f64; 3] = [0.25, 1.0, 3.0];
const METRIC: [f64; 3] = [1.0, 1.0, 2.0];
const GAMMA: f64 = 0.5;
/// Two horizons: the decay must not depend on which.
const HORIZONS: [f64; 2] = [5.0, 8.0];

pub(super) const OPTIMAL_SCHEDULE_DECAY: Claim = Claim {
    id: "optimal-schedule-decay",
    paper: "beyond the paper (schedules); docs/theory.md §4.1",
    statement: "On a finite horizon with a free end the optimal effective learning rate is a stable–decay schedule: the infinite-horizon rate far from the horizon, decaying monotonically (no warmup) to zero at it, linearly with slope ηk/g whatever the curvature and discount; the decay's length ln(2 + ρ)/(2λ) depends on the curvature and γ, not on T",
    closed_form: "α(t) = (r/h)(1 − e^{−2λτ})/(1 + ρe^{−2λτ}), τ = T − t, λ = √(γ²/4 + ηkh/g), r = λ − γ/2, ρ = r/(λ + γ/2); α(T) = 0, α′(T) = −ηk/g, α = r/(2h) at τ = ln(2 + ρ)/(2λ)",
    procedure: "boundary-value solutions (tol 1e-10) of L = ½Σhᵢθᵢ² with h = (0.25, 1, 3), G = diag(1, 1, 2), γ = 0.5, η = k = 1, θ0 = (1, 1, 1), free end, T = 5 and T = 8; α = −θ̇ᵢ/(hᵢθᵢ) from the solution's velocity at 301 times per horizon; the slope at T by a one-sided difference (step 1e-4) and the half-decay time by bisection on the solution",
    tolerance: "1e-7 on α (solves at tol 1e-10, global error a few 1e-11 on θ of order 1e-3 or more: about 1e-8 on the ratio), on the two horizons' α at equal τ, and on the half-decay time; 1e-3 relative on the end slope (a one-sided difference with step 1e-4 is off by about h·α″·1e-4/2, below 1e-4 of the slope here); α must also not increase in t anywhere (a warmup) by more than 1e-9, else the error is infinite",
    check: optimal_schedule_decay,
};

fn optimal_schedule_decay() -> Result<Measurement, String> {
    optimal_schedule_decay_with(|r, t| r.rate(t))
}

/// The measured α of coordinate `i` at time `t` from a solution of the claim's problem.
fn measured_rate(
    problem: &lossnav_problems::Problem,
    sol: &lossnav_solvers::Solution,
    i: usize,
    t: f64,
) -> f64 {
    let (theta, p) = sol.eval(t);
    let mut v = vec![0.0; theta.len()];
    problem.lagrangian().velocity(&theta, &p, t, &mut v);
    -v[i] / (CURVATURES[i] * theta[i])
}

/// The claim's check with the closed form `form(rate, t)` put next to the solutions (a wrong
/// form is shown to fail in tests/claims.rs).
///
/// # Errors
/// If a solve fails or misses its tolerance.
pub fn optimal_schedule_decay_with(
    form: fn(&HorizonRate, f64) -> f64,
) -> Result<Measurement, String> {
    let mut worst_rate = 0.0_f64;
    let mut worst_slope = 0.0_f64;
    let mut worst_half = 0.0_f64;
    let mut worst_horizon = 0.0_f64;
    let mut rise = 0.0_f64;
    let mut rates_by_horizon: Vec<Vec<Vec<f64>>> = Vec::new();
    // Times before the horizon at which the two horizons' rates are compared.
    let taus: Vec<f64> = (0..=50).map(|j| 5.0 * j as f64 / 50.0).collect();
    let bad = |x: f64| x.is_nan();
    for &horizon in &HORIZONS {
        let spec = serde_json::json!({
            "loss": {"quadratic": {"curvatures": CURVATURES, "minimum": [0.0, 0.0, 0.0]}},
            "metric": {"diag": METRIC},
            "eta": 1.0, "k": 1.0, "gamma": GAMMA,
            "theta0": [1.0, 1.0, 1.0],
            "horizon": horizon,
            "end": "free",
        });
        let problem = lossnav_problems::Spec::from_json(&spec.to_string())
            .and_then(|s| s.to_problem())
            .map_err(|e| e.to_string())?;
        let sol = solve(&problem)?;
        let mut per_coordinate = Vec::new();
        for i in 0..3 {
            let closed = HorizonRate {
                eta: 1.0,
                k: 1.0,
                gamma: GAMMA,
                h: CURVATURES[i],
                g: METRIC[i],
                horizon,
            };
            let mut previous = f64::INFINITY;
            for j in 0..=300 {
                let t = horizon * j as f64 / 300.0;
                let a = measured_rate(&problem, &sol, i, t);
                let e = (a - form(&closed, t)).abs();
                worst_rate = if bad(e) || bad(worst_rate) {
                    f64::NAN
                } else {
                    worst_rate.max(e)
                };
                rise = rise.max(a - previous);
                previous = a;
            }
            // The slope at the horizon, from the solution: (α(T) − α(T − δ))/δ.
            let delta = 1e-4;
            let slope = (measured_rate(&problem, &sol, i, horizon)
                - measured_rate(&problem, &sol, i, horizon - delta))
                / delta;
            let e = ((slope - closed.end_slope()) / closed.end_slope()).abs();
            worst_slope = if bad(e) || bad(worst_slope) {
                f64::NAN
            } else {
                worst_slope.max(e)
            };
            // The half-decay time, by bisection on the solution's α − r/(2h) (decreasing in t).
            let target = closed.stationary() / 2.0;
            let (mut lo, mut hi) = (0.0, horizon);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if measured_rate(&problem, &sol, i, mid) > target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let e = (horizon - 0.5 * (lo + hi) - closed.half_decay()).abs();
            worst_half = if bad(e) || bad(worst_half) {
                f64::NAN
            } else {
                worst_half.max(e)
            };
            per_coordinate.push(
                taus.iter()
                    .map(|&tau| measured_rate(&problem, &sol, i, horizon - tau))
                    .collect::<Vec<f64>>(),
            );
        }
        rates_by_horizon.push(per_coordinate);
    }
    for (short, long) in rates_by_horizon[0].iter().zip(&rates_by_horizon[1]) {
        let e = crate::verify::support::max_diff(short, long);
        worst_horizon = if bad(e) || bad(worst_horizon) {
            f64::NAN
        } else {
            worst_horizon.max(e)
        };
    }
    let error = if rise > 1e-9 || rise.is_nan() {
        f64::INFINITY
    } else {
        [worst_rate, worst_half, worst_horizon, 1e-4 * worst_slope]
            .into_iter()
            .fold(0.0, |m: f64, e| {
                if m.is_nan() || e.is_nan() {
                    f64::NAN
                } else {
                    m.max(e)
                }
            })
    };
    let h = HorizonRate {
        eta: 1.0,
        k: 1.0,
        gamma: GAMMA,
        h: 1.0,
        g: 1.0,
        horizon: 8.0,
    };
    measurement(
        error,
        1e-7,
        Unit::Absolute,
        format!(
            "α against the closed form {worst_rate:.1e}; T = 5 against T = 8 at equal T − t \
             {worst_horizon:.1e}; half-decay time {worst_half:.1e} (h = 1: {:.4} before T, \
             stationary rate {:.4}); end slope relative {worst_slope:.1e}; largest rise of α \
             in t {rise:.1e}",
            h.half_decay(),
            h.stationary()
        ),
    )
}
