//! Forward simulation of learning rules with diffsol, and the objective `J` they achieve.
//!
//! A rule is what a learner actually does — gradient flow, natural-gradient flow, a closed-form
//! policy, heavy-ball momentum — integrated forward from θ0 (Tsitouras 5(4) with error
//! control). The running cost `e^{-γt} ℓ(θ, θ̇)` is integrated as one more state, so `J` has
//! the integrator's accuracy. Comparing it with the optimal `J` of the same problem answers
//! "how far from optimal is the rule I use?".

use diffsol::{NalgebraMat, OdeBuilder};

use lossnav_problems::{End, Horizon, Problem};

use crate::error::SolverError;
use crate::shooting::integrate;

/// A first-order policy `θ̇ = π(t, θ)`.
pub type Policy<'a> = Box<dyn Fn(f64, &[f64]) -> Vec<f64> + 'a>;

/// A learning rule to simulate.
pub enum Rule<'a> {
    /// A first-order rule `θ̇ = π(t, θ)`.
    FirstOrder(Policy<'a>),
    /// Heavy-ball momentum `θ̈ = -β θ̇ - c M ∇L`, starting at rest.
    HeavyBall {
        /// Friction β.
        friction: f64,
        /// Gradient gain c.
        rate: f64,
    },
}

impl<'a> Rule<'a> {
    /// Gradient flow `θ̇ = -c ∇L`.
    pub fn gradient_flow(problem: &'a Problem, rate: f64) -> Self {
        let lag = problem.lagrangian();
        Rule::FirstOrder(Box::new(move |t, th| {
            let mut g = vec![0.0; th.len()];
            lag.loss().gradient(th, t, &mut g);
            g.iter().map(|v| -rate * v).collect()
        }))
    }

    /// Natural-gradient flow `θ̇ = -c M ∇L` (`M = G⁻¹`).
    pub fn natural_gradient(problem: &'a Problem, rate: f64) -> Self {
        let lag = problem.lagrangian();
        Rule::FirstOrder(Box::new(move |t, th| {
            let mut g = vec![0.0; th.len()];
            lag.loss().gradient(th, t, &mut g);
            let mut mg = vec![0.0; th.len()];
            lag.metric().mobility_mul(th, &g, &mut mg);
            mg.iter().map(|v| -rate * v).collect()
        }))
    }
}

/// A simulated trajectory, sampled at the requested times.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Sample times (sorted, from 0 to the end time).
    pub t: Vec<f64>,
    /// θ at the samples.
    pub theta: Vec<Vec<f64>>,
    /// θ̇ at the samples.
    pub theta_dot: Vec<Vec<f64>>,
    /// `p = G(θ)(θ̇ - f)` at the samples (NaN where `G` does not exist).
    pub p: Vec<Vec<f64>>,
    /// `L(θ(t), t)`.
    pub loss: Vec<f64>,
    /// Kinetic term `(1/2η)(θ̇ - f)ᵀG(θ̇ - f)`.
    pub kinetic: Vec<f64>,
    /// `∫₀^{t_end} e^{-γt} ℓ dt` plus the discounted terminal cost of a free end, if any.
    pub cost: f64,
    /// Fixed end: `max |θ(T) - θ_T|` (a rule does not aim at the end point).
    pub end_error: Option<f64>,
}

/// Simulates `rule` on `problem` from θ0 to `t_end` (default: the finite horizon; required for
/// infinite horizons), sampled at `samples` (times in `[0, t_end]`; 0 and `t_end` are added).
pub fn simulate(
    problem: &Problem,
    rule: &Rule,
    t_end: Option<f64>,
    samples: &[f64],
    tol: f64,
) -> Result<Simulation, SolverError> {
    let lag = problem.lagrangian();
    let d = lag.dim();
    if !lag.metric().is_invertible() {
        return Err(SolverError::Unsupported(
            "simulating a rule needs an invertible metric: the cost of a velocity under a \
             singular mobility (partial controllability) is not defined by the kinetic term \
             ½θ̇ᵀGθ̇; use the boundary-value solver"
                .into(),
        ));
    }
    let t_end = match (t_end, problem.horizon()) {
        (Some(t), _) => t,
        (None, Horizon::Finite(t)) => t,
        (None, Horizon::Infinite) => {
            return Err(SolverError::InvalidOption {
                name: "t_end",
                value: f64::NAN,
                requirement: "is required to simulate a rule on an infinite horizon",
            })
        }
    };
    if !(t_end.is_finite() && t_end > 0.0) {
        return Err(SolverError::InvalidOption {
            name: "t_end",
            value: t_end,
            requirement: "must be a finite number > 0",
        });
    }
    let mut times: Vec<f64> = samples
        .iter()
        .copied()
        .filter(|t| (0.0..=t_end).contains(t))
        .collect();
    times.extend([0.0, t_end]);
    times.sort_by(f64::total_cmp);
    times.dedup();
    let second_order = matches!(rule, Rule::HeavyBall { .. });
    let n = if second_order { 2 * d + 1 } else { d + 1 };
    // θ̇ (and v̇ for heavy ball) at a state.
    let velocity = |t: f64, x: &[f64]| -> (Vec<f64>, Vec<f64>) {
        match rule {
            Rule::FirstOrder(pi) => (pi(t, &x[..d]), Vec::new()),
            Rule::HeavyBall { friction, rate } => {
                let (th, v) = (&x[..d], &x[d..2 * d]);
                let mut g = vec![0.0; d];
                lag.loss().gradient(th, t, &mut g);
                let mut mg = vec![0.0; d];
                lag.metric().mobility_mul(th, &g, &mut mg);
                let acc = (0..d).map(|i| -friction * v[i] - rate * mg[i]).collect();
                (v.to_vec(), acc)
            }
        }
    };
    let theta0 = problem.theta0().as_slice().to_vec();
    let ode = OdeBuilder::<NalgebraMat<f64>>::new()
        .rtol(tol)
        .atol(vec![tol; n])
        .rhs(|x, _p, t, y| {
            let state: Vec<f64> = (0..n).map(|i| x[i]).collect();
            let (thd, acc) = velocity(t, &state);
            // diffsol's vectors index like slices but are not slices.
            for (i, v) in thd.iter().chain(&acc).enumerate() {
                y[i] = *v;
            }
            y[n - 1] = lag.discount(t) * lag.running_cost(&state[..d], &thd, t);
        })
        .init(
            |_p, _t, y| {
                for i in 0..n {
                    y[i] = if i < d { theta0[i] } else { 0.0 };
                }
            },
            n,
        )
        .build()
        .map_err(|e| SolverError::Unsupported(format!("cannot set up the integrator: {e}")))?;
    let mut solver = ode
        .tsit45()
        .map_err(|e| SolverError::Unsupported(format!("cannot set up the integrator: {e}")))?;
    let ys = integrate::dense_output(&mut solver, &times, "the simulated rule", None)?;
    let mut sim = Simulation {
        t: times.clone(),
        theta: Vec::new(),
        theta_dot: Vec::new(),
        p: Vec::new(),
        loss: Vec::new(),
        kinetic: Vec::new(),
        cost: 0.0,
        end_error: None,
    };
    for (j, &t) in times.iter().enumerate() {
        let state = &ys[j];
        let th = state[..d].to_vec();
        let (thd, _) = velocity(t, state);
        if !th.iter().chain(&thd).all(|v| v.is_finite()) {
            return Err(SolverError::NonFinite {
                what: "the simulated rule".into(),
                t,
            });
        }
        let mut p = vec![0.0; d];
        lag.momentum(&th, &thd, t, &mut p);
        sim.loss.push(lag.loss().value(&th, t));
        sim.kinetic.push(lag.kinetic(&th, &thd, t));
        sim.theta.push(th);
        sim.theta_dot.push(thd);
        sim.p.push(p);
        if j == times.len() - 1 {
            sim.cost = state[n - 1];
        }
    }
    let last = sim.theta.last().cloned().unwrap_or_default();
    match problem.end() {
        End::Free {
            terminal_cost: Some(c),
        } if problem.horizon() == Horizon::Finite(t_end) => {
            sim.cost += lag.discount(t_end) * c.value(&last, t_end);
        }
        End::Fixed(target) => {
            sim.end_error = Some(
                last.iter()
                    .zip(target.iter())
                    .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs())),
            );
        }
        _ => {}
    }
    if !sim.cost.is_finite() {
        return Err(SolverError::NonFinite {
            what: "the cost of the simulated rule".into(),
            t: t_end,
        });
    }
    Ok(sim)
}
