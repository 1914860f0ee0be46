//! `simulate`: a learning rule integrated forward, with the objective it achieves; and, for a
//! spec with an observation block, the Monte Carlo of the observed system under the
//! certainty-equivalent rule beside the exact expected cost.

use serde_json::{json, Value};

use lossnav_problems::{Problem, Spec};
use lossnav_solvers::simulate::{simulate, Rule};

use crate::cli::{CliError, RuleKind};
use crate::rules::{LqData, LqRule, RuleError};

/// What to simulate on a spec without an observation block.
#[derive(Debug, Clone)]
pub struct RuleSimulation {
    /// The rule.
    pub rule: RuleKind,
    /// Its rate `c` (default: the gradient-flow limit ηk/γ of the optimal rule, ηk when γ = 0).
    pub rate: Option<f64>,
    /// Friction β of heavy ball.
    pub beta: f64,
    /// End time (default: the spec's horizon; required for an infinite horizon).
    pub t_end: Option<f64>,
    /// Extra output times.
    pub at: Vec<f64>,
}

/// The document of `lossnav simulate --rule …` (before its keys are ordered): problem, method,
/// status, cost, t, theta, theta_dot, p, loss, kinetic, end_error, at, rule.
pub fn simulate_rule(
    label: &str,
    problem: &Problem,
    o: &RuleSimulation,
) -> Result<Value, CliError> {
    let lag = problem.lagrangian();
    // The gradient-flow limit of the optimal rule has learning rate ηk/γ.
    let rate = o.rate.unwrap_or(if lag.gamma() > 0.0 {
        lag.eta() * lag.k() / lag.gamma()
    } else {
        lag.eta() * lag.k()
    });
    if !(rate.is_finite() && rate > 0.0) {
        return Err(CliError::Usage(match o.rate {
            Some(_) => format!("--rate {rate} must be a finite number > 0"),
            None => format!(
                "the default rate ηk/γ (ηk when γ = 0) of this spec is {rate}; give --rate \
                 (a finite number > 0)"
            ),
        }));
    }
    if !(o.beta.is_finite() && o.beta >= 0.0) {
        return Err(CliError::Usage(format!(
            "--beta {} must be a finite number >= 0",
            o.beta
        )));
    }
    let rule = match o.rule {
        RuleKind::GradientFlow => Rule::gradient_flow(problem, rate),
        RuleKind::NaturalGradient => Rule::natural_gradient(problem, rate),
        RuleKind::HeavyBall => Rule::HeavyBall {
            friction: o.beta,
            rate,
        },
        RuleKind::OptimalPolicy => {
            let rule_err = |source| CliError::Rule {
                path: label.to_string(),
                source,
            };
            let data = LqData::from_problem(problem).map_err(rule_err)?;
            let lq = LqRule::new(&data, problem.theta0()).map_err(rule_err)?;
            Rule::FirstOrder(Box::new(move |_t, th: &[f64]| {
                let delta = nalgebra::DVector::from_iterator(
                    th.len(),
                    th.iter().zip(lq.equilibrium.iter()).map(|(a, b)| a - b),
                );
                (&lq.policy * delta).as_slice().to_vec()
            }))
        }
    };
    let end = o.t_end.or(match problem.horizon() {
        lossnav_problems::Horizon::Finite(t) => Some(t),
        lossnav_problems::Horizon::Infinite => None,
    });
    let Some(end) = end else {
        return Err(CliError::Usage(
            "an infinite-horizon spec needs --t-end".into(),
        ));
    };
    let grid: Vec<f64> = (0..=200)
        .map(|i| end * i as f64 / 200.0)
        .chain(o.at.iter().copied())
        .collect();
    let sim =
        simulate(problem, &rule, Some(end), &grid, 1e-10).map_err(|source| CliError::Solver {
            path: label.to_string(),
            source,
        })?;
    let pick = |t: f64| sim.t.iter().position(|&s| s == t);
    let at_idx: Vec<usize> = o.at.iter().filter_map(|&t| pick(t)).collect();
    if at_idx.len() != o.at.len() {
        return Err(CliError::Usage(format!(
            "--at times must lie in [0, {end}]"
        )));
    }
    let name = clap::ValueEnum::to_possible_value(&o.rule)
        .map_or_else(|| format!("{:?}", o.rule), |v| v.get_name().to_string());
    let doc = json!({
        "problem": problem.name(),
        "method": format!("simulate/{name}"),
        // A rule's trajectory solves no optimality conditions: there is nothing to converge.
        // What it achieves is its cost and, for a fixed end, how far it misses the end.
        "status": match sim.end_error {
            Some(e) => format!(
                "integrated (relative tolerance 1e-10); misses the fixed end by {e:.2e}"
            ),
            None => "integrated (relative tolerance 1e-10)".to_string(),
        },
        "cost": sim.cost,
        "t": sim.t,
        "theta": sim.theta,
        "theta_dot": sim.theta_dot,
        "p": sim.p,
        "loss": sim.loss,
        "kinetic": sim.kinetic,
        "end_error": sim.end_error,
        "at": {
            "t": o.at,
            "theta": at_idx.iter().map(|&i| &sim.theta[i]).collect::<Vec<_>>(),
            "p": at_idx.iter().map(|&i| &sim.p[i]).collect::<Vec<_>>(),
        },
        "rule": {"name": name, "rate": rate, "beta": o.beta},
    });
    Ok(doc)
}

/// Monte Carlo options for a spec with an observation block.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    /// Paths.
    pub paths: usize,
    /// Seed of the paths' random streams.
    pub seed: u64,
    /// Time step (the bias is measured against 2·dt).
    pub dt: f64,
    /// Factor on the certainty-equivalent gain.
    pub gain_scale: f64,
}

/// The most Monte Carlo paths accepted (each is an integration over 40/γ).
const MAX_PATHS: usize = 10_000_000;

/// The document of `lossnav simulate` on a spec with an observation block: the Monte Carlo of
/// the observed system under the certainty-equivalent rule, next to the exact expected cost.
pub fn simulate_observed(label: &str, s: &Spec, opts: &Observed) -> Result<Value, CliError> {
    let path = label.to_string();
    if !(1..=MAX_PATHS).contains(&opts.paths) {
        return Err(CliError::Usage(format!(
            "--paths {}: must be between 1 and {MAX_PATHS}",
            opts.paths
        )));
    }
    if !(opts.dt.is_finite() && opts.dt > 0.0 && opts.dt <= 1.0) {
        return Err(CliError::Usage(format!(
            "--dt {}: must be in (0, 1]",
            opts.dt
        )));
    }
    if !(opts.gain_scale.is_finite() && opts.gain_scale > 0.0) {
        return Err(CliError::Usage(format!(
            "--gain-scale {}: must be a finite number > 0",
            opts.gain_scale
        )));
    }
    let lq =
        crate::rules::observation::ObservedLq::from_spec(s).map_err(|source| CliError::Rule {
            path: path.clone(),
            source,
        })?;
    let steps = (40.0 / s.gamma / opts.dt).ceil();
    if steps * opts.paths as f64 > 1e11 {
        return Err(CliError::Usage(format!(
            "{} paths of {steps} steps each is more than 10¹¹ steps: fewer paths or a larger --dt",
            opts.paths
        )));
    }
    let rule_err = |source| CliError::Rule {
        path: path.clone(),
        source,
    };
    // Everything that can refuse runs before any path is simulated: the step at dt and at the
    // 2·dt of the bias estimate, and the exact expected cost's step count.
    lq.check_step(opts.dt, opts.gain_scale, 1.0)
        .map_err(rule_err)?;
    lq.check_step(2.0 * opts.dt, opts.gain_scale, 1.0)
        .map_err(|e| match e {
            RuleError::UnstableStep { what, rate, .. } => CliError::Usage(format!(
                "--dt {}: the time-step bias is measured at 2·dt, where the Euler–Maruyama step \
                 is unstable for {what} (fastest rate {rate:.3e}); use --dt below {:.3e}",
                opts.dt,
                1.0 / rate
            )),
            other => rule_err(other),
        })?;
    lq.check_expected_cost(opts.gain_scale).map_err(rule_err)?;
    let fine = lq
        .monte_carlo(opts.paths, opts.seed, opts.dt, opts.gain_scale, 1.0)
        .map_err(rule_err)?;
    let coarse = lq
        .monte_carlo(opts.paths, opts.seed, 2.0 * opts.dt, opts.gain_scale, 1.0)
        .map_err(rule_err)?;
    let (exact, quadrature) = lq.expected_cost(opts.gain_scale);
    let doc = json!({
        "status": format!(
            "Monte Carlo: {} paths, seed {}, dt {}; expected cost {:.6} ± {:.1e} (one \
             standard error) against the exact {:.6}",
            opts.paths, opts.seed, opts.dt, fine.mean, fine.stderr, exact
        ),
        "problem": s.name,
        "method": "simulate/certainty-equivalent (Kalman–Bucy filter), Monte Carlo",
        "expected_cost": {"mean": fine.mean, "stderr": fine.stderr},
        "paths": opts.paths,
        "seed": opts.seed,
        "dt": opts.dt,
        // First-order weak error: the mean at dt is off by about the change from dt to 2·dt.
        "time_step_bias": coarse.mean - fine.mean,
        "gain_scale": opts.gain_scale,
        "exact_expected_cost": exact,
        "exact_error_estimate": quadrature,
        "full_information_cost": lq.full_information_cost(),
    });
    Ok(doc)
}
