//! Deterministic limits: the optimal rule's closed forms on quadratics and their limits —
//! gradient descent with learning rate ηk/γ for large γ, the momentum equation and the value of
//! planning, curvature ratios of the rates, Newton's step for a single step or a long window,
//! the ballistic speed law at γ = 0, and the ε-normalised rate between them. Most compare the
//! observed order at which a limit's error vanishes with the predicted one.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::{AutoDiff, DoubleWell, Lagrangian, Quadratic};

use super::{measured_rate, measurement};
use crate::rules::diagonal::{self, DiagonalRule};
use crate::rules::limits;
use crate::verify::support::{gradient_flow, infinite, loss, max_diff, rk4, shipped, solve};
use crate::verify::{Claim, Measurement, Unit};

pub(super) const GD_SHORT_HORIZON: Claim = Claim {
    id: "gd-short-horizon",
    paper: "§3, Fig. 2",
    statement: "As γ grows the optimal trajectory approaches gradient flow with learning rate ηk/γ, the error shrinking like γ⁻²",
    closed_form: "θ̇ = -(ηk/γ)∇L + O(γ⁻³) from θ̈ = γθ̇ + ηk∇L",
    procedure: "boundary-value solver on the double well (near basin, infinite horizon) for γ = 10, 20, 40 vs RK4 gradient flow in rescaled time",
    tolerance: "0.2 on the largest deviation from 2 of the observed orders in 1/γ (γ = 10 → 20 → 40) of the gap to RK4 gradient flow: pre-asymptotic O(γ⁻⁴) terms move the observed order at these γ (the size ±0.2 is asserted in a comment, not derived)",
    check: gd_short_horizon,
};

fn gd_short_horizon() -> Result<Measurement, String> {
    let theta0 = [-0.6, 0.55];
    let (eta, k) = (1.0, 1.0);
    let s_end = 3.0;
    let mut errors = Vec::new();
    for gamma in [10.0, 20.0, 40.0] {
        let lag = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(gamma);
        let sol = solve(&infinite(lag.clone(), &theta0, None)?)?;
        // Gradient flow in rescaled time s = ηk t/γ: dθ/ds = -∇L.
        let steps = 3000;
        let flow = rk4(&gradient_flow(&lag, 1.0), &theta0, s_end, steps);
        let err = gap_in_slow_time(&sol, &flow, s_end, gamma / (eta * k));
        errors.push((gamma, err));
    }
    let orders: Vec<f64> = errors
        .windows(2)
        .map(|w| (w[0].1 / w[1].1).log2())
        .collect();
    // Predicted order 2 in 1/γ; pre-asymptotic terms O(γ⁻⁴) allow ±0.2 at these γ.
    let deviation = orders
        .iter()
        .map(|o| (o - 2.0).abs())
        .fold(0.0_f64, f64::max);
    measurement(
        deviation,
        0.2,
        Unit::Other("|observed order − 2|"),
        format!(
            "max |θ_opt - θ_GF| = {:.2e}, {:.2e}, {:.2e} at γ = 10, 20, 40; observed orders {:.3}, {:.3} (|order - 2| reported)",
            errors[0].1, errors[1].1, errors[2].1, orders[0], orders[1]
        ),
    )
}

/// The largest distance between an optimal path and a flow sampled at equal steps of the slow
/// time `s ∈ [0, s_end]` (`t = s·scale`), read at every thirtieth sample.
fn gap_in_slow_time(
    sol: &lossnav_solvers::Solution,
    flow: &[Vec<f64>],
    s_end: f64,
    scale: f64,
) -> f64 {
    let steps = flow.len() - 1;
    (0..=steps)
        .step_by(30)
        .map(|i| {
            let s = s_end * i as f64 / steps as f64;
            max_diff(&sol.eval(s * scale).0, &flow[i])
        })
        .fold(0.0_f64, f64::max)
}

pub(super) const NATURAL_GRADIENT_FISHER: Claim = Claim {
    id: "natural-gradient-fisher",
    paper: "§3 (natural gradient), Fig. 3b",
    statement: "With a θ-dependent metric, as γ grows the optimal trajectory approaches natural-gradient flow θ̇ = −(ηk/γ)G(θ)⁻¹∇L, the error shrinking like γ⁻² (the metric's own derivatives enter only at that order)",
    closed_form: "in s = ηkt/γ: dθ/ds = −G⁻¹∇L + (ηk/γ²)·O(G⁻¹[(Gθ′)′ − ½θ′ᵀ∂Gθ′])",
    procedure: "boundary-value solver (infinite horizon) on the shipped fisher-metric spec's loss and metric without its drift (η = 0.5), for γ = 5, 10, 20, and on the Figure 1 double well with G = diag(1 + x², 1 + ½y²) for γ = 10, 20, 40, against RK4 natural-gradient flow in rescaled time s ∈ [0, 3]; the extremal toward the equilibrium that flow reaches",
    tolerance: "0.2 on the largest deviation of the observed orders from 2 (as gd-short-horizon: pre-asymptotic terms O(γ⁻⁴) move the order by less than that at these γ); the errors themselves are 1e-3 and below, far above the solver's 1e-10",
    check: natural_gradient_fisher,
};

fn natural_gradient_fisher() -> Result<Measurement, String> {
    natural_gradient_fisher_with(true)
}

/// The natural-gradient check against the flow with the metric (`natural`) or, to show it
/// fails, against plain gradient flow `dθ/ds = −∇L`.
pub fn natural_gradient_fisher_with(natural: bool) -> Result<Measurement, String> {
    let mut fisher = shipped("fisher-metric");
    fisher.drift = None;
    let double_well = lossnav_problems::Spec::from_json(
        r#"{"loss": {"expr": "(x^2-1)^2 + y^2 - 0.5*x", "vars": ["x", "y"]},
            "metric": {"expr": [["1 + x^2", "0"], ["0", "1 + 0.5*y^2"]]},
            "theta0": [-0.6, 0.55], "horizon": "infinite", "end": "equilibrium"}"#,
    )
    .map_err(|e| e.to_string())?;
    let s_end = 3.0;
    let mut worst = 0.0_f64;
    let mut detail = Vec::new();
    for (name, base, gammas) in [
        ("fisher-metric", fisher, [5.0, 10.0, 20.0]),
        ("double well", double_well, [10.0, 20.0, 40.0]),
    ] {
        let mut errors = Vec::new();
        for gamma in gammas {
            let mut spec = base.clone();
            spec.gamma = gamma;
            spec.horizon = lossnav_problems::spec::HorizonSpec::Infinite;
            // The equilibrium the flow reaches selects the extremal (the loss has more than one
            // minimum): where natural-gradient flow from θ0 has settled by s = 60.
            spec.end = Some(lossnav_problems::spec::EndSpec::Equilibrium(None));
            let settled = {
                let p = spec.to_problem().map_err(|e| e.to_string())?;
                let flow = gradient_flow(p.lagrangian(), 1.0);
                let mut path = rk4(&flow, &spec.theta0, 60.0, 6000);
                path.pop().ok_or("no flow")?
            };
            spec.end = Some(lossnav_problems::spec::EndSpec::Equilibrium(Some(settled)));
            let problem = spec.to_problem().map_err(|e| e.to_string())?;
            let lag = problem.lagrangian();
            let (eta, k) = (lag.eta(), lag.k());
            let sol = solve(&problem)?;
            let steps = 3000;
            let flow = if natural {
                rk4(&gradient_flow(lag, 1.0), &spec.theta0, s_end, steps)
            } else {
                let plain = |th: &[f64]| {
                    let mut g = vec![0.0; th.len()];
                    lag.loss().gradient(th, 0.0, &mut g);
                    g.iter().map(|v| -v).collect::<Vec<f64>>()
                };
                rk4(&plain, &spec.theta0, s_end, steps)
            };
            errors.push(gap_in_slow_time(&sol, &flow, s_end, gamma / (eta * k)));
        }
        let orders: Vec<f64> = errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
        for o in &orders {
            worst = worst.max(if o.is_finite() {
                (o - 2.0).abs()
            } else {
                f64::INFINITY
            });
        }
        detail.push(format!(
            "{name}: max |θ_opt − θ_NGF| = {:.2e}, {:.2e}, {:.2e} at γ = {}, {}, {}, orders {:.3}, {:.3}",
            errors[0], errors[1], errors[2], gammas[0], gammas[1], gammas[2], orders[0], orders[1]
        ));
    }
    measurement(
        worst,
        0.2,
        Unit::Other("|observed order − 2|"),
        detail.join("; "),
    )
}

pub(super) const MOMENTUM_PLANNING: Claim = Claim {
    id: "momentum-planning",
    paper: "Fig. 2a,b",
    statement: "Optimal trajectories obey the momentum equation θ̈ = γθ̇ + ηk∇L, and longer planning horizons (lower γ) give faster loss decrease",
    closed_form: "θ(t) = μ + (θ0-μ)e^{-rt}, r = sqrt(γ²/4 + ηkh) - γ/2; θ̈ = γθ̇ + ηk∇L (G = I)",
    procedure: "boundary-value solver: 1D quadratic for γ = 0, 1, 10 (infinite horizon); Figure 1 double well with θ̈ by central differences",
    tolerance: "1e-8 on the closed-form trajectory: boundary-value solves at tol 1e-10 have a global error of a few 1e-11 (two orders of margin); the loss ordering must hold and the double-well residual of θ̈ = γθ̇ + ηk∇L must be below 1e-6 (central differences, step 1e-4, of the interpolated velocity, whose derivative error was measured at 4e-8), else the error is infinite",
    check: momentum_planning,
};

fn momentum_planning() -> Result<Measurement, String> {
    let (h, mu, theta0) = (1.0, 0.0, 1.0);
    let times = [0.5, 1.0, 2.0, 4.0];
    let mut worst = 0.0_f64;
    let mut losses = Vec::new();
    for gamma in [0.0, 1.0, 10.0] {
        let lag =
            Lagrangian::new(Quadratic::diagonal(vec![h], vec![mu]).map_err(|e| e.to_string())?)
                .with_gamma(gamma);
        let sol = solve(&infinite(lag.clone(), &[theta0], None)?)?;
        let rule = DiagonalRule::new(&[h], &[1.0], &[mu], &[theta0], 1.0, 1.0, gamma);
        let row: Vec<f64> = times.iter().map(|&t| loss(&lag, &sol.eval(t).0)).collect();
        for &t in &times {
            worst = worst.max((sol.eval(t).0[0] - rule.theta(t)[0]).abs());
        }
        losses.push(row);
    }
    let ordered =
        (0..times.len()).all(|i| losses[0][i] < losses[1][i] && losses[1][i] < losses[2][i]);
    // Second-order form on a nonlinear landscape (G = I, f = 0): θ̈ = γθ̇ + ηk∇L, with θ̈ from
    // central differences (step 1e-4, error ~1e-9) of the interpolated velocity (its
    // derivative carries the O(h³) interpolation error, measured 4e-8 on the tol-1e-10 mesh):
    // tolerance 1e-6.
    let problem = shipped("figure1-double-well")
        .to_problem()
        .map_err(|e| e.to_string())?;
    let lag = problem.lagrangian();
    let sol = solve(&problem)?;
    let velocity = |t: f64| -> Vec<f64> {
        let (th, p) = sol.eval(t);
        let mut v = vec![0.0; 2];
        lag.velocity(&th, &p, t, &mut v);
        v
    };
    let dt = 1e-4;
    let mut newton_form = 0.0_f64;
    for i in 1..40 {
        let t = 4.0 * i as f64 / 40.0;
        let (vp, vm, v) = (velocity(t + dt), velocity(t - dt), velocity(t));
        let th = sol.eval(t).0;
        let mut g = vec![0.0; 2];
        lag.loss().gradient(&th, t, &mut g);
        for j in 0..2 {
            let acc = (vp[j] - vm[j]) / (2.0 * dt);
            let rhs = lag.gamma() * v[j] + lag.eta() * lag.k() * g[j];
            newton_form = newton_form.max((acc - rhs).abs());
        }
    }
    // Closed form vs BVP: solver tolerance 1e-10 → 1e-8 with margin; ordering must hold.
    let error = if ordered && newton_form < 1e-6 {
        worst
    } else {
        f64::INFINITY
    };
    measurement(
        error,
        1e-8,
        Unit::Absolute,
        format!(
            "max |θ_BVP - θ_closed| = {worst:.2e}; L(t=1) = {:.4} (γ=0) < {:.4} (γ=1) < {:.4} (γ=10): {}; \
             double well: max |θ̈ - γθ̇ - ηk∇L| = {newton_form:.1e} (≤ 1e-6)",
            losses[0][1],
            losses[1][1],
            losses[2][1],
            if ordered { "ordered" } else { "NOT ordered" }
        ),
    )
}

pub(super) const CONVERGENCE_RATIO: Claim = Claim {
    id: "convergence-ratio",
    paper: "Fig. 2d",
    statement: "A direction with c× the curvature converges c× faster for large γ but only √c× faster for γ = 0, with the full curve in between",
    closed_form: "r(ch)/r(h) with r = sqrt(γ²/4 + ηkh) - γ/2",
    procedure: "rates measured from boundary-value solutions of 2D anisotropic quadratics, c ∈ {1, 2, 4, 8}, γ ∈ {0, 1, 10}",
    tolerance: "1e-8 on the rate ratios: rates from boundary-value trajectories at tol 1e-10 (global error a few 1e-11), each coordinate over its own time constant, so about 1e-10 relative (two orders of margin); the γ = 0 limit √c is exact and the γ = 1e6 limit c has a remainder O(ηkhc/γ²) ≈ 1e-11",
    check: convergence_ratio,
};

fn convergence_ratio() -> Result<Measurement, String> {
    let mut worst = 0.0_f64;
    let mut detail = Vec::new();
    for gamma in [0.0, 1.0, 10.0] {
        for c in [1.0, 2.0, 4.0, 8.0] {
            let lag = Lagrangian::new(
                Quadratic::diagonal(vec![1.0, c], vec![0.0, 0.0]).map_err(|e| e.to_string())?,
            )
            .with_gamma(gamma);
            let sol = solve(&infinite(lag, &[1.0, 1.0], None)?)?;
            // Each rate over its own time constant (the coordinate decays to e⁻¹ of its start):
            // the path's absolute error of a few 1e-11 is then a relative error of about 1e-10
            // in both coordinates. Over the slow direction's time constant the fast one would
            // have decayed to e^{−r(c)/r(1)} (5e-4 at γ = 10, c = 8), where the same absolute
            // error is 1e-8 relative. The sampling times come from the closed form; the rate
            // measured on an exponential does not depend on them.
            let time = |curvature: f64| 1.0 / diagonal::rate(curvature, 1.0, 1.0, 1.0, gamma);
            let measured =
                measured_rate(&sol, 1, 0.0, time(c)) / measured_rate(&sol, 0, 0.0, time(1.0));
            let closed = diagonal::rate_ratio(c, 1.0, 1.0, 1.0, 1.0, gamma);
            worst = worst.max((measured - closed).abs());
            if c == 4.0 {
                detail.push(format!(
                    "γ={gamma}: ratio {measured:.6} (closed {closed:.6})"
                ));
            }
        }
    }
    // Limits of the closed form: √c at γ = 0 exactly; c as γ → ∞ (at γ = 1e6 the remainder
    // is O(ηkh·c/γ²) ≈ 1e-11).
    let lim0 = (diagonal::rate_ratio(4.0, 1.0, 1.0, 1.0, 1.0, 0.0) - 2.0).abs();
    let lim_inf = (diagonal::rate_ratio(4.0, 1.0, 1.0, 1.0, 1.0, 1e6) - 4.0).abs();
    worst = worst.max(lim0).max(lim_inf);
    // Rates from the BVP trajectory at tolerance 1e-10, each over its own time constant: 1e-8.
    measurement(
        worst,
        1e-8,
        Unit::Absolute,
        format!(
            "{}; limits: |ratio(γ=0) - 2| = {lim0:.1e}, |ratio(γ=1e6) - 4| = {lim_inf:.1e}",
            detail.join(", ")
        ),
    )
}

pub(super) const NEWTON_SINGLE_STEP: Claim = Claim {
    id: "newton-single-step",
    paper: "§2, Fig. 1a",
    statement: "The single-step rule Δθ = -(G/(ηk) + H)⁻¹∇L minimises the one-step objective and tends to Newton's step as ηk → ∞ (error ∝ 1/(ηk)) and to gradient descent as ηk → 0",
    closed_form: "Δθ = -(G/(ηk) + H)⁻¹∇L",
    procedure: "stationarity of the one-step objective; observed orders of the two limits for ηk = 100…10000 and 0.01…0.0001",
    tolerance: "0.05 on the largest deviation from 1 of the observed orders (decades of error per decade of ηk) of both limits: the next terms, relative O(‖H⁻¹G‖/(ηk)) and O(ηk‖G⁻¹H‖), stay below 0.03 on these ranges; stationarity of the one-step objective must hold to rounding (below 1e-12), else the error is infinite",
    check: newton_single_step,
};

fn newton_single_step() -> Result<Measurement, String> {
    let g_metric = DMatrix::from_row_slice(2, 2, &[2.0, 0.3, 0.3, 1.0]);
    let hess = DMatrix::from_row_slice(2, 2, &[1.0, -0.4, -0.4, 3.0]);
    let grad = DVector::from_vec(vec![0.7, -1.1]);
    let newton = limits::newton_step(&hess, &grad).ok_or("singular H")?;
    // Stationarity of (1/2η)ΔᵀGΔ + k(gᵀΔ + ½ΔᵀHΔ) at the rule (η = 1).
    let mut stationarity = 0.0_f64;
    let mut newton_err = Vec::new();
    for ek in [100.0, 1000.0, 10000.0] {
        let step = limits::single_step(&g_metric, &hess, &grad, 1.0, ek).ok_or("singular")?;
        let residual = &g_metric * &step + (&grad + &hess * &step) * ek;
        stationarity = stationarity.max(residual.amax() / ek);
        newton_err.push((&step - &newton).norm() / newton.norm());
    }
    let mut gd_err = Vec::new();
    for ek in [1e-2, 1e-3, 1e-4] {
        let step = limits::single_step(&g_metric, &hess, &grad, 1.0, ek).ok_or("singular")?;
        let gd = limits::gradient_step(&g_metric, &grad, 1.0, ek).ok_or("singular G")?;
        gd_err.push((&step - &gd).norm() / gd.norm());
    }
    let orders: Vec<f64> = newton_err
        .windows(2)
        .chain(gd_err.windows(2))
        .map(|w| (w[0] / w[1]).log10())
        .collect();
    // Both limits are first order (one decade per decade of ηk). The next term is relative
    // O(‖H⁻¹G‖/(ηk)) for the Newton limit and O(ηk‖G⁻¹H‖) for the GD limit, below 0.03 on these
    // ranges: ±0.05. Stationarity at rounding (1e-12).
    let deviation = orders
        .iter()
        .map(|o| (o - 1.0).abs())
        .fold(0.0_f64, f64::max);
    measurement(
        deviation + if stationarity < 1e-12 { 0.0 } else { f64::INFINITY },
        0.05,
        Unit::Other("|observed order − 1|"),
        format!(
            "Newton-limit errors {:.2e}, {:.2e}, {:.2e}; GD-limit errors {:.2e}, {:.2e}, {:.2e}; orders {:?}; stationarity {stationarity:.1e}",
            newton_err[0], newton_err[1], newton_err[2], gd_err[0], gd_err[1], gd_err[2],
            orders.iter().map(|o| (o * 1000.0).round() / 1000.0).collect::<Vec<_>>()
        ),
    )
}

pub(super) const BALLISTIC_SPEED_LAW: Claim = Claim {
    id: "ballistic-speed-law",
    paper: "§4 (γ = 0)",
    statement: "Without discount the optimal speed is set by the loss above the target: (1/2η)pᵀMp = k(L(θ) - L(θ*))",
    closed_form: "ballistic speed law; curvature-normalised rule θ̇ = -sqrt(ηk)H^{-1/2}∇L on quadratics",
    procedure: "boundary-value solver on the double well (γ = 0, infinite horizon) and on a full-H quadratic",
    tolerance: "1e-8 on the speed law at 101 times and on θ̇(0) of the curvature-normalised rule: boundary-value solves at tol 1e-10, global error a few 1e-11 (two orders of margin; no comment at this check)",
    check: ballistic_speed_law,
};

fn ballistic_speed_law() -> Result<Measurement, String> {
    let lag = Lagrangian::new(AutoDiff(DoubleWell::figure1()));
    let sol = solve(&infinite(lag.clone(), &[-0.6, 0.55], None)?)?;
    let target = loss(&lag, sol.tail.as_ref().unwrap().theta_star.as_slice());
    let mut worst = 0.0_f64;
    for i in 0..=100 {
        let t = sol.end_time() * i as f64 / 100.0;
        let (th, p) = sol.eval(t);
        let kinetic = lag.kinetic_from_momentum(&th, &p);
        worst = worst
            .max((kinetic - limits::ballistic_kinetic(loss(&lag, &th), target, lag.k())).abs());
    }
    // Curvature-normalised ballistic rule on a full-H quadratic: θ̇(0) = -sqrt(ηk) H^{-1/2} g.
    let h = DMatrix::from_row_slice(2, 2, &[2.0, 0.6, 0.6, 1.0]);
    let q =
        Lagrangian::new(Quadratic::new(h.clone(), DVector::zeros(2)).map_err(|e| e.to_string())?);
    let th0 = DVector::from_vec(vec![1.0, -0.5]);
    let qs = solve(&infinite(q, th0.as_slice(), None)?)?;
    let v = limits::ballistic_velocity(&h, &(&h * &th0), 1.0, 1.0);
    let e_rule = max_diff(&qs.theta_dot[0], v.as_slice());
    measurement(
        worst.max(e_rule),
        1e-8,
        Unit::Absolute,
        format!("max |(1/2η)pᵀMp - k(L - L*)| = {worst:.2e}; |θ̇(0) - (-√(ηk)H^(-1/2)∇L)| = {e_rule:.2e}"),
    )
}

pub(super) const EPSILON_NORMALISATION: Claim = Claim {
    id: "epsilon-normalisation",
    paper: "§ beliefs (Adam-like); docs/theory.md §5.3",
    statement: "The optimal rate per unit curvature is √(ηk)/(√(h + ε²) + ε) with ε = γ/(2√(ηk)): RMSprop/Adam's square-root normalisation as γ → 0, SGD with rate ηk/γ for large γ",
    closed_form: "r(h)/h = (√(γ²/4 + ηkh) − γ/2)/h; limits √(ηk/h) and ηk/γ (relative error O(ηkh/γ²))",
    procedure: "decay rate of boundary-value solutions of 1-D quadratic problems on an infinite horizon (h from 0.01 to 100, γ from 0 to 5); the large-γ error at γ = 1e3 and 1e4 (observed order 2)",
    tolerance: "1e-7 on the relative error of 9 measured decay rates (boundary-value solves at tol 1e-10, read at t = 1/r) and of the exact γ = 0 limit √(ηk/h), plus 1e-6 × the deviation from 2 of the observed order of the SGD limit (so the order is held to 0.1); neither scale is derived in the code",
    check: epsilon_normalisation,
};

fn epsilon_normalisation() -> Result<Measurement, String> {
    use crate::rules::adaptive::normalised_rate;
    let mut worst = 0.0_f64;
    for gamma in [0.0, 0.5, 5.0] {
        for h in [0.01, 1.0, 100.0] {
            let spec = lossnav_problems::Spec::from_json(&format!(
                r#"{{"loss": {{"quadratic": {{"curvatures": [{h}], "minimum": [0.0]}}}},
                    "eta": 0.8, "k": 1.5, "gamma": {gamma}, "theta0": [1.0],
                    "horizon": "infinite"}}"#
            ))
            .and_then(|s| s.to_problem())
            .map_err(|e| e.to_string())?;
            let sol = lossnav_solvers::Bvp::default()
                .with_tol(1e-10)
                .solve(&spec)
                .map_err(|e| e.to_string())?;
            let rate = normalised_rate(0.8, 1.5, gamma, h);
            // θ(t) = e^{−rt}: the decay rate from the solution at a time where θ ≈ e^{−1}.
            let r = rate * h;
            let t = 1.0 / r;
            let measured = -sol.eval(t).0[0].ln() / t;
            worst = worst.max((measured - r).abs() / r);
        }
    }
    // γ = 0: exactly √(ηk/h). Large γ: relative error to ηk/γ is O(ηkh/γ²).
    let ballistic =
        (normalised_rate(0.8, 1.5, 0.0, 2.0) / (0.8 * 1.5 / 2.0_f64).sqrt() - 1.0).abs();
    let err =
        |gamma: f64| (normalised_rate(0.8, 1.5, gamma, 2.0) / (0.8 * 1.5 / gamma) - 1.0).abs();
    let order = (err(1e3) / err(1e4)).log10();
    measurement(
        worst.max(ballistic).max((order - 2.0).abs() * 1e-6),
        1e-7,
        Unit::Relative,
        format!(
            "decay rates of 9 boundary-value solutions vs √(ηk)/(√(h+ε²)+ε)·h: largest relative \
             difference {worst:.1e}; γ = 0 vs √(ηk/h) {ballistic:.1e}; observed order of the \
             SGD limit {order:.4} (predicted 2)"
        ),
    )
}

pub(super) const WINDOW_RULE_LIMITS: Claim = Claim {
    id: "window-rule-limits",
    paper: "§ beliefs (Δt window); docs/theory.md §5.3",
    statement: "Holding a local quadratic model for a time Δt, the optimal step −(1 − e^{−rΔt})m/h is Newton's step for long windows, and for short ones −Δt·r(h)/h·m: gradient descent for large γ, the ballistic rule for γ = 0",
    closed_form: "θ(Δt) − θ(0) = −(1 − e^{−rΔt})m/h, r = √(γ²/4 + ηkh) − γ/2; error to Newton e^{−rΔt}; to the short-window form O(Δt²)",
    procedure: "boundary-value solutions of the local model (a 1-D quadratic with gradient m at θ(0), infinite horizon) at γ = 0, 1, 50, their displacement at Δt = 0.01, 0.1, 1 and 5/r against the step; the step at Δt = 20/r (ratio e^{20} to Newton), and at Δt = 1e-2, 1e-3 (observed order of the short-window error)",
    tolerance: "1e-7 on the displacement against the boundary-value solutions (tol 1e-10, global error a few 1e-11: three orders of margin) and on the ballistic coefficient (an exact identity, rounding only), plus 1e-6 × the relative deviation of the Newton gap at rΔt = 20 from e^{−20}·m/h and 1e-6 × the deviation of the short-window order from 2 (so both are held to 0.1; the scales are not derived in the code)",
    check: window_rule_limits,
};

fn window_rule_limits() -> Result<Measurement, String> {
    window_rule_limits_with(crate::rules::adaptive::window_step)
}

/// The window-rule check with the step `(η, k, γ, h, m, Δt) ↦ Δθ` as an argument (a wrong one
/// must fail against the boundary-value solutions, whatever its limits).
pub fn window_rule_limits_with(
    window_step: fn(f64, f64, f64, f64, f64, f64) -> f64,
) -> Result<Measurement, String> {
    use crate::rules::adaptive::normalised_rate;
    let (eta, k, h, m) = (0.8, 1.5, 2.0, 0.7);
    let theta0 = 0.3;
    let mut worst = 0.0_f64;
    let mut solver_gap = 0.0_f64;
    let mut detail = String::new();
    for gamma in [0.0, 1.0, 50.0] {
        let rate = normalised_rate(eta, k, gamma, h);
        let r = rate * h;
        // The local model: L = m(θ − θ0) + ½h(θ − θ0)², minimum at θ0 − m/h, solved as an
        // optimal-control problem of its own.
        let lag = Lagrangian::new(
            Quadratic::diagonal(vec![h], vec![theta0 - m / h]).map_err(|e| e.to_string())?,
        )
        .with_eta(eta)
        .with_k(k)
        .with_gamma(gamma);
        let sol = solve(&infinite(lag, &[theta0], None)?)?;
        for dt in [0.01, 0.1, 1.0, 5.0 / r] {
            let moved = sol.eval(dt).0[0] - theta0;
            solver_gap = solver_gap.max((moved - window_step(eta, k, gamma, h, m, dt)).abs());
        }
        let newton = -m / h;
        // Long windows: the error to Newton's step is e^{−rΔt}·|m/h|.
        let e20 = (window_step(eta, k, gamma, h, m, 20.0 / r) - newton).abs();
        let predicted = (-20.0_f64).exp() * (m / h).abs();
        worst = worst.max((e20 / predicted - 1.0).abs() * 1e-6);
        // Short windows: −Δt·(r/h)·m with an O(Δt²) error.
        let short = |dt: f64| (window_step(eta, k, gamma, h, m, dt) - (-dt * rate * m)).abs();
        let order = (short(1e-2) / short(1e-3)).log10();
        worst = worst.max((order - 2.0).abs() * 1e-6);
        detail.push_str(&format!(
            "γ = {gamma}: Newton gap at rΔt = 20 {e20:.2e} (predicted {predicted:.2e}), short-window order {order:.4}; "
        ));
    }
    // γ = 0 short windows: the ballistic rule −Δt√(ηk/h)m; large γ: gradient descent −Δt(ηk/γ)m.
    let ballistic = (normalised_rate(eta, k, 0.0, h) - (eta * k / h).sqrt()).abs();
    worst = worst.max(ballistic).max(solver_gap);
    measurement(
        worst,
        1e-7,
        Unit::Absolute,
        format!(
            "{detail}step against boundary-value solutions {solver_gap:.1e}; ballistic \
             coefficient exact to {ballistic:.1e}"
        ),
    )
}
