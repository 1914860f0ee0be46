//! Sensitivities of an optimal solution to the problem's parameters: `dJ*/dp` for every
//! method, and `dθ(t)/dp`, `dp(t)/dp` along boundary-value solutions.
//!
//! - **The cost** (`dJ*/dp`), by the envelope theorem: the path is optimal, so to first order
//!   only the explicit dependence on `p` along the fixed path counts — of the integrand
//!   `(1/2η) pᵀMp + kL - (1/η) pᵀ(f + Mp - θ̇)` at the path's `θ(t)`, `p(t)`, `θ̇(t)` (the
//!   Lagrangian with the dynamics' multiplier; for an invertible metric the same as
//!   `(1/2η)(θ̇ - f)ᵀG(θ̇ - f) + kL` at fixed `θ`, `θ̇`), of the discount, of the terminal
//!   value (for infinite horizons the tail of the linearisation, with its equilibrium and
//!   Riccati matrix recomputed) — plus the multipliers of the constraints a parameter moves:
//!   `∂J*/∂θ0 = -p(0)/η`, `∂J*/∂θ_T = e^{-γT} p(T)/η` (fixed end), and
//!   `∂J*/∂T = e^{-γT} ℋ(T)` (plus `∂_T(e^{-γT}Φ)` with a terminal cost), `ℋ` the
//!   current-value Hamiltonian (docs/theory.md §2). No extra solve.
//! - **The path** (boundary-value solutions): the collocation equations `F(y; p) = 0` hold
//!   along the family of solutions, so `∂F/∂y · dy/dp = -∂F/∂p`: one factorisation of the
//!   Jacobian at the solution, and one back-substitution per parameter. For infinite horizons
//!   `∂F/∂p` includes the moving equilibrium and stable-manifold projection (the target is
//!   recomputed at each perturbed parameter). The horizon scales the mesh; the derivative at
//!   fixed `t` is `dy/dT|_{t/T} - (t/T) ẏ`.
//! - **The adjoint**: the gradient of a scalar functional `φ(y)` with respect to every
//!   parameter, [`Sensitivities::gradient`], from the same path derivatives (`D` small here,
//!   so the forward route costs no more than a transposed solve).
//!
//! The partial derivatives `∂J/∂p` (along the fixed path) and `∂F/∂p` (at the fixed `y`) are
//! taken by central differences in `p` extrapolated in the step (Richardson: steps `h` and
//! `h/2`, error `O(h⁴)`), and each result carries an error estimate: the difference of the two
//! central quotients, which bounds the error of the less accurate one. Written this way on
//! purpose: the parameters enter through every landscape, metric and drift of the crate
//! (expressions, tapes, user callables), and exact parameter derivatives would need a second,
//! dual-number version of each; the quantities differenced here are smooth in `p` and are
//! evaluated without any solve, so the error is at the level of rounding times `1/h`.
//! Nothing is re-solved: comparing with re-solves is the tests' job (`tests/sensitivity.rs`).

use std::sync::Arc;

use lossnav_problems::{End, Horizon, Points, Problem, ProblemError};

use crate::bvp::collocation::{EndCondition, NewtonMatrix, System, Workspace};
use crate::bvp::{mesh, quadrature};
use crate::error::SolverError;
use crate::solution::{hermite, NodeValues, Solution};
use crate::target::{terminal_value, Target};

/// The problem with one parameter set to a value (all else unchanged).
pub type Build = dyn Fn(f64) -> Result<Problem, ProblemError> + Send + Sync;

/// A parameter of the problem to differentiate with respect to.
#[derive(Clone)]
pub enum Parameter {
    /// `η`.
    Eta,
    /// `k`.
    K,
    /// `γ`.
    Gamma,
    /// The finite horizon `T`.
    Horizon,
    /// Coordinate `i` of `θ0`.
    Theta0(usize),
    /// Coordinate `i` of a fixed end point `θ_T`.
    End(usize),
    /// Anything else (a parameter of the loss, the metric, the drift, a terminal cost): the
    /// problem at a value of it. The root crate builds these from a spec's fields.
    Other {
        /// Its name (for reports).
        name: String,
        /// Its value in the solved problem.
        value: f64,
        /// The problem at another value.
        build: Arc<Build>,
    },
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Parameter {
    /// Its name: `eta`, `k`, `gamma`, `horizon`, `theta0[i]`, `end[i]` or the given one.
    pub fn name(&self) -> String {
        match self {
            Self::Eta => "eta".into(),
            Self::K => "k".into(),
            Self::Gamma => "gamma".into(),
            Self::Horizon => "horizon".into(),
            Self::Theta0(i) => format!("theta0[{i}]"),
            Self::End(i) => format!("end[{i}]"),
            Self::Other { name, .. } => name.clone(),
        }
    }

    /// Its value in `problem`.
    pub fn value(&self, problem: &Problem) -> Result<f64, SolverError> {
        let lag = problem.lagrangian();
        Ok(match self {
            Self::Eta => lag.eta(),
            Self::K => lag.k(),
            Self::Gamma => lag.gamma(),
            Self::Horizon => match problem.horizon() {
                Horizon::Finite(t) => t,
                Horizon::Infinite => {
                    return Err(SolverError::Unsupported(
                        "the horizon is infinite: there is no horizon to differentiate by".into(),
                    ))
                }
            },
            Self::Theta0(i) => *problem.theta0().get(*i).ok_or_else(|| {
                SolverError::Unsupported(format!(
                    "theta0[{i}]: theta0 has {} entries",
                    problem.dim()
                ))
            })?,
            Self::End(i) => match problem.end() {
                End::Fixed(v) => *v.get(*i).ok_or_else(|| {
                    SolverError::Unsupported(format!(
                        "end[{i}]: the end point has {} entries",
                        v.len()
                    ))
                })?,
                _ => {
                    return Err(SolverError::Unsupported(format!(
                        "end[{i}]: the end is not fixed, so it has no coordinates to vary"
                    )))
                }
            },
            Self::Other { value, .. } => *value,
        })
    }

    /// `problem` with this parameter at `v` (validated).
    fn at(&self, problem: &Problem, v: f64) -> Result<Problem, ProblemError> {
        let lag = problem.lagrangian().clone();
        match self {
            Self::Eta => problem.with_lagrangian(lag.with_eta(v)),
            Self::K => problem.with_lagrangian(lag.with_k(v)),
            Self::Gamma => problem.with_lagrangian(lag.with_gamma(v)),
            Self::Horizon => problem.with_horizon(Horizon::Finite(v)),
            Self::Theta0(i) => {
                let mut th = problem.theta0().clone();
                th[*i] = v;
                problem.with_theta0(th)
            }
            Self::End(i) => {
                let End::Fixed(e) = problem.end() else {
                    unreachable!("checked by value()")
                };
                let mut e = e.clone();
                e[*i] = v;
                problem.with_end(End::Fixed(e))
            }
            Self::Other { build, .. } => build(v),
        }
    }
}

/// Options of [`sensitivities`].
#[derive(Debug, Clone, PartialEq)]
pub struct SensitivityOptions {
    /// The difference step relative to the parameter: `h = step · |p|` (`step` when `p = 0`),
    /// and `h/2`.
    pub step: f64,
    /// Whether to compute the path derivatives (boundary-value solutions only).
    pub path: bool,
    /// For tests only: leave one term of the sensitivity equations out, to show that the
    /// checks fail without it.
    #[doc(hidden)]
    pub drop: Option<Term>,
}

/// A term of the sensitivity equations ([`SensitivityOptions::drop`], for tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// `-p(0)/η · dθ0/dp`.
    StartMultiplier,
    /// `e^{-γT} p(T)/η · dθ_T/dp`.
    EndMultiplier,
    /// `e^{-γT} ℋ(T) · dT/dp`.
    HorizonEnd,
    /// `∂J/∂p` along the fixed path.
    Envelope,
    /// The moving equilibrium and projection of an infinite horizon in `∂F/∂p`.
    MovingTarget,
    /// The field's dependence on `p` in `∂F/∂p`.
    Field,
    /// `-(t/T) ẏ` from fixed `t/T` to fixed `t`.
    Rescale,
}

impl Default for SensitivityOptions {
    fn default() -> Self {
        // With Richardson extrapolation the truncation error is O(h⁴) ≈ 1e-16 relative, and
        // rounding about ε/h ≈ 2e-12 of the differenced quantities' size; the reported
        // estimate (the error of the step-h/2 quotient, O(h²)) is about 1e-9 relative.
        Self {
            step: 1e-4,
            path: true,
            drop: None,
        }
    }
}

/// A derivative with its estimated error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Derivative {
    /// The value.
    pub value: f64,
    /// An estimate of its absolute error: that of the finer of the two central quotients that
    /// were extrapolated (`|D(h/2) - D(h)|/3`), plus rounding — a bound, since the
    /// extrapolation removes the leading term of that error.
    pub error: f64,
}

/// `dθ/dp` and `dp/dp` at the solution's nodes, with their time derivatives there (the
/// derivative in `p` of the solution's slopes), for a cubic Hermite interpolant in between.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDerivative {
    /// The mesh times.
    pub t: Vec<f64>,
    /// `dθ(t_i)/dp`, one vector per node.
    pub theta: NodeValues,
    /// `dp(t_i)/dp`, one vector per node.
    pub p: NodeValues,
    /// `d/dt dθ(t_i)/dp`.
    pub theta_dot: NodeValues,
    /// `d/dt dp(t_i)/dp`.
    pub p_dot: NodeValues,
    /// Estimated error of the nodal values and slopes (largest over nodes and coordinates).
    pub error: f64,
    /// Sixth-order solutions: the derivative in `p` of the second derivatives at the nodes
    /// (node-major, `2D` per node), for the quintic interpolant the solution itself uses.
    second: Vec<f64>,
}

impl PathDerivative {
    /// `dθ(t)/dp` and `dp(t)/dp` at any `t` of the mesh's span (clamped to it): the derivative
    /// of the solution's own interpolant (quintic Hermite for sixth-order solutions, cubic
    /// otherwise).
    pub fn at(&self, t: f64) -> (Vec<f64>, Vec<f64>) {
        let d = self.theta.dim();
        let last = self.t.len() - 1;
        let t = t.clamp(self.t[0], self.t[last]);
        let i = match self.t.binary_search_by(|v| v.total_cmp(&t)) {
            Ok(i) => i.min(last - 1),
            Err(i) => i.saturating_sub(1).min(last - 1),
        };
        let h = self.t[i + 1] - self.t[i];
        let x = (t - self.t[i]) / h;
        let node = |k: usize| -> (Vec<f64>, Vec<f64>) {
            let y = self.theta[k].iter().chain(&self.p[k]).copied().collect();
            let f = self.theta_dot[k]
                .iter()
                .chain(&self.p_dot[k])
                .copied()
                .collect();
            (y, f)
        };
        let ((y0, f0), (y1, f1)) = (node(i), node(i + 1));
        let n = 2 * d;
        let second = |k: usize| (!self.second.is_empty()).then(|| &self.second[k * n..(k + 1) * n]);
        let mut out = vec![0.0; n];
        hermite::value_at(
            x,
            h,
            hermite::End {
                y: &y0,
                f: &f0,
                a: second(i),
            },
            hermite::End {
                y: &y1,
                f: &f1,
                a: second(i + 1),
            },
            &mut out,
        );
        let p = out.split_off(d);
        (out, p)
    }
}

/// The sensitivities with respect to one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    /// The parameter's name.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// The difference step used.
    pub step: f64,
    /// `dJ*/dp`.
    pub cost: Derivative,
    /// `dθ/dp`, `dp/dp` at the nodes, or why they are not available.
    pub path: Result<PathDerivative, String>,
}

/// The sensitivities of a solution to each requested parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivities {
    /// One entry per parameter, in the order asked for.
    pub parameters: Vec<Sensitivity>,
    /// The solution's mesh times (where the path derivatives are given).
    pub t: Vec<f64>,
}

impl Sensitivities {
    /// `dφ/dp` for every parameter, for a functional `φ` of the nodal path given by its
    /// gradients `∂φ/∂θ(t_i)` (node-major, `D` per node): `Σ_i ∂φ/∂θ_i · dθ_i/dp`.
    /// Parameters whose path derivatives are unavailable give an error naming the reason.
    pub fn gradient(&self, dphi_dtheta: &[f64]) -> Result<Vec<f64>, String> {
        self.parameters
            .iter()
            .map(|s| {
                let path = s.path.as_ref().map_err(|e| format!("{}: {e}", s.name))?;
                if path.theta.as_flat().len() != dphi_dtheta.len() {
                    return Err(format!(
                        "the functional's gradient has {} entries, the path {}",
                        dphi_dtheta.len(),
                        path.theta.as_flat().len()
                    ));
                }
                Ok(path
                    .theta
                    .as_flat()
                    .iter()
                    .zip(dphi_dtheta)
                    .map(|(a, b)| a * b)
                    .sum())
            })
            .collect()
    }

    /// The JSON form: one object per parameter with `name`, `value`, `step`, `cost` (`value`,
    /// `error`) and either `theta`/`p` (nested per node) with `path_error`, or
    /// `path_unavailable`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        serde_json::Value::Array(
            self.parameters
                .iter()
                .map(|s| {
                    let mut o = json!({
                        "name": s.name,
                        "value": s.value,
                        "step": s.step,
                        "cost": {"value": s.cost.value, "error": s.cost.error},
                    });
                    match &s.path {
                        Ok(p) => {
                            o["theta"] = json!(p.theta.to_nested());
                            o["p"] = json!(p.p.to_nested());
                            o["path_error"] = json!(p.error);
                        }
                        Err(why) => o["path_unavailable"] = json!(why),
                    }
                    o
                })
                .collect(),
        )
    }
}

/// The largest Newton step (scaled like the solver's) at which a boundary-value solution is
/// taken to satisfy its collocation equations: the solver stops far below (1e-3 · tol).
const NEWTON_STEP_LIMIT: f64 = 1e-6;

/// Sensitivities of `solution` (a solution of `problem`) to each parameter.
///
/// ```
/// use lossnav_problems::load_problem;
/// use lossnav_solvers::sensitivity::{sensitivities, Parameter, SensitivityOptions};
/// use lossnav_solvers::Bvp;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
/// let problem = load_problem(path).unwrap();
/// let solution = Bvp::default().solve(&problem).unwrap();
/// let s = sensitivities(&problem, &solution, &[Parameter::Gamma, Parameter::Theta0(0)],
///                       &SensitivityOptions::default()).unwrap();
/// // ∂J*/∂θ0 = -p(0)/η.
/// assert!((s.parameters[1].cost.value + solution.p[0][0]).abs() < 1e-12);
/// assert!(s.parameters[0].path.is_ok());
/// ```
pub fn sensitivities(
    problem: &Problem,
    solution: &Solution,
    parameters: &[Parameter],
    options: &SensitivityOptions,
) -> Result<Sensitivities, SolverError> {
    check_step(options.step)?;
    if solution.dim() != problem.dim() || solution.t.len() < 2 {
        return Err(SolverError::Unsupported(
            "the solution does not belong to this problem".into(),
        ));
    }
    let fixed = FixedPath::new(problem, solution);
    let mut collocation = if options.path {
        Collocation::new(problem, solution)
    } else {
        Err("path derivatives were not requested".into())
    };
    let mut out = Vec::with_capacity(parameters.len());
    for param in parameters {
        if crate::budget::Budget::expired() {
            return Err(SolverError::TimeLimit {
                what: format!("sensitivities, before {}", param.name()),
                residual: f64::NAN,
            });
        }
        let (value, h, variants) = variants(problem, param, options.step)?;
        let cost = cost_derivative(problem, solution, &fixed, param, &variants, h, options.drop)?;
        let path = match &mut collocation {
            Ok(c) => c.derivative(problem, solution, param, &variants, h, options.drop),
            Err(why) => Err(why.clone()),
        };
        out.push(Sensitivity {
            name: param.name(),
            value,
            step: h,
            cost,
            path,
        });
    }
    Ok(Sensitivities {
        parameters: out,
        t: solution.t.clone(),
    })
}

/// The gradient of a scalar functional `φ` of a boundary-value solution's nodal path with
/// respect to every parameter, by the adjoint route: one transposed solve `Jᵀλ = ∂φ/∂y` with
/// the collocation Jacobian `J` at the solution, then `dφ/dp = −λᵀ ∂F/∂p` per parameter (no
/// back-substitution per parameter). `dphi_dy` is `∂φ/∂(θ, p)` at each node, node-major
/// (`2D` per node). Available where the Newton matrix is a band (`D < 8`); the forward route
/// ([`Sensitivities::gradient`]) gives the same numbers everywhere.
///
/// ```
/// use lossnav_problems::load_problem;
/// use lossnav_solvers::sensitivity::{adjoint_gradient, sensitivities, Parameter, SensitivityOptions};
/// use lossnav_solvers::Bvp;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
/// let problem = load_problem(path).unwrap();
/// let solution = Bvp::default().solve(&problem).unwrap();
/// let params = [Parameter::Gamma, Parameter::K];
/// let opts = SensitivityOptions::default();
/// // φ = θ₁ at the middle node.
/// let (nodes, d) = (solution.t.len(), problem.dim());
/// let mut g = vec![0.0; nodes * 2 * d];
/// g[(nodes / 2) * 2 * d] = 1.0;
/// let adjoint = adjoint_gradient(&problem, &solution, &params, &g, &opts).unwrap();
/// let forward = sensitivities(&problem, &solution, &params, &opts).unwrap();
/// for (a, f) in adjoint.iter().zip(&forward.parameters) {
///     let fwd = f.path.as_ref().unwrap().theta[nodes / 2][0];
///     assert!((a.value - fwd).abs() < 1e-9 * fwd.abs().max(1.0));
/// }
/// ```
pub fn adjoint_gradient(
    problem: &Problem,
    solution: &Solution,
    parameters: &[Parameter],
    dphi_dy: &[f64],
    options: &SensitivityOptions,
) -> Result<Vec<Derivative>, SolverError> {
    check_step(options.step)?;
    let n = 2 * problem.dim();
    if dphi_dy.len() != solution.t.len() * n || solution.dim() != problem.dim() {
        return Err(SolverError::Unsupported(format!(
            "the functional's gradient has {} entries; the solution has {} nodes of {n}",
            dphi_dy.len(),
            solution.t.len()
        )));
    }
    let mut c = Collocation::new(problem, solution).map_err(SolverError::Unsupported)?;
    let mut lambda = dphi_dy.to_vec();
    if !c.jac.solve_transpose(&mut lambda) {
        return Err(SolverError::Unsupported(
            "the adjoint needs the band factorisation (D < 8); use the forward route".into(),
        ));
    }
    let mut out = Vec::with_capacity(parameters.len());
    for param in parameters {
        let (_, h, variants) = variants(problem, param, options.step)?;
        out.push(
            c.adjoint(problem, solution, param, &variants, h, &lambda, dphi_dy)
                .map_err(SolverError::Unsupported)?,
        );
    }
    Ok(out)
}

fn check_step(step: f64) -> Result<(), SolverError> {
    if step.is_finite() && step > 0.0 && step < 0.1 {
        Ok(())
    } else {
        Err(SolverError::InvalidOption {
            name: "step",
            value: step,
            requirement: "a relative difference step in (0, 0.1)",
        })
    }
}

/// The parameter's value `p`, the difference step `h` (relative to `p`'s own size: γ = 0.1
/// moves J on the scale of 0.1) and the problems at `p + h, p − h, p + h/2, p − h/2`.
fn variants(
    problem: &Problem,
    param: &Parameter,
    step: f64,
) -> Result<(f64, f64, Vec<Problem>), SolverError> {
    let value = param.value(problem)?;
    let h = step * if value == 0.0 { 1.0 } else { value.abs() };
    let problems = [value + h, value - h, value + h / 2.0, value - h / 2.0]
        .into_iter()
        .map(|v| {
            param.at(problem, v).map_err(|e| {
                SolverError::Unsupported(format!(
                    "{} = {v:e} (a difference step from {value:e}) is not a valid problem: {e}",
                    param.name()
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((value, h, problems))
}

/// Richardson extrapolation of central differences at steps `h` (values `a+`, `a-`) and `h/2`
/// (`b+`, `b-`), with the error estimate `|D(h/2) - D(h)|/3` (the error of the finer
/// quotient, whose leading term the extrapolation removes) plus rounding.
fn richardson(ap: f64, am: f64, bp: f64, bm: f64, h: f64, size: f64) -> Derivative {
    let d1 = (ap - am) / (2.0 * h);
    let d2 = (bp - bm) / h;
    let value = (4.0 * d2 - d1) / 3.0;
    let rounding = 8.0 * f64::EPSILON * size / h;
    let error = (d2 - d1).abs() / 3.0 + rounding;
    if value.is_finite() && error.is_finite() {
        Derivative { value, error }
    } else {
        Derivative {
            value: f64::NAN,
            error: f64::INFINITY,
        }
    }
}

/// The path at the quadrature points of every interval, with its velocity, for re-evaluating
/// the cost under perturbed parameters.
struct FixedPath {
    d: usize,
    /// Times: the nodes, then three interior Lobatto points per interval.
    times: Vec<f64>,
    theta: Vec<f64>,
    p: Vec<f64>,
    theta_dot: Vec<f64>,
    /// η of the solved problem (the multiplier of the dynamics is `p/η`).
    eta: f64,
}

impl FixedPath {
    fn new(problem: &Problem, s: &Solution) -> Self {
        let lag = problem.lagrangian();
        let d = lag.dim();
        let n = 2 * d;
        let y = node_states(s);
        let nodes = s.t.len();
        let mut times = s.t.clone();
        let mut states = y.clone();
        let interior = &quadrature::NODES[1..4];
        let mut buf = vec![0.0; n];
        for i in 0..nodes - 1 {
            let h = s.t[i + 1] - s.t[i];
            let (e0, e1) = mesh::ends(&y, &s.slopes, &s.curvatures, n, i);
            for &x in interior {
                hermite::value_at(x, h, e0, e1, &mut buf);
                states.extend_from_slice(&buf);
                times.push(s.t[i] + x * h);
            }
        }
        let count = times.len();
        let mut theta = Vec::with_capacity(count * d);
        let mut p = Vec::with_capacity(count * d);
        let mut theta_dot = vec![0.0; count * d];
        for (k, st) in states.chunks_exact(n).enumerate() {
            theta.extend_from_slice(&st[..d]);
            p.extend_from_slice(&st[d..]);
            // The velocity the path has under the solved problem: θ̇ = f + Mp (at the nodes
            // exactly the slopes the solver returned).
            lag.velocity(
                &st[..d],
                &st[d..],
                times[k],
                &mut theta_dot[k * d..(k + 1) * d],
            );
        }
        Self {
            d,
            times,
            theta,
            p,
            theta_dot,
            eta: lag.eta(),
        }
    }

    /// `J` of this path under `variant` (the interior integral, the discounted terminal value
    /// and, for relative infinite-horizon costs, the offset), on the solution's mesh.
    fn cost(&self, variant: &Problem, t: &[f64]) -> Result<f64, SolverError> {
        let lag = variant.lagrangian();
        let d = self.d;
        let count = self.times.len();
        let target = match variant.horizon() {
            Horizon::Infinite => Some(Target::new(variant)?),
            Horizon::Finite(_) => None,
        };
        let offset = target
            .as_ref()
            .filter(|tg| tg.relative())
            .map_or(0.0, |tg| tg.running_cost);
        let mut loss = vec![0.0; count];
        lag.loss()
            .values(Points::new(&self.theta, d, d, &self.times), &mut loss);
        // The integrand plus the multiplier `p/η` of the dynamics `θ̇ = f + Mp` (zero at the
        // solved parameters): its partial derivative at fixed `(θ, p)` is the envelope
        // theorem's, for singular mobilities too. With an invertible metric it equals the
        // derivative of `(1/2η)(θ̇ - f)ᵀG(θ̇ - f) + kL` at fixed `θ, θ̇`.
        let mut velocity = vec![0.0; d];
        let ell: Vec<f64> = (0..count)
            .map(|k| {
                let (th, p) = (&self.theta[k * d..(k + 1) * d], &self.p[k * d..(k + 1) * d]);
                lag.velocity(th, p, self.times[k], &mut velocity);
                let mismatch: f64 = p
                    .iter()
                    .zip(&velocity)
                    .zip(&self.theta_dot[k * d..(k + 1) * d])
                    .map(|((p, v), v0)| p * (v - v0))
                    .sum();
                lag.kinetic_from_momentum(th, p) + lag.k() * loss[k] - offset - mismatch / self.eta
            })
            .collect();
        let nodes = t.len();
        let mut total = 0.0;
        for i in 0..nodes - 1 {
            let h = t[i + 1] - t[i];
            let w = quadrature::weights(lag.gamma(), h);
            let q = nodes + 3 * i;
            let sum = w[0] * ell[i]
                + w[4] * ell[i + 1]
                + w[1] * ell[q]
                + w[2] * ell[q + 1]
                + w[3] * ell[q + 2];
            total += lag.discount(t[i]) * sum;
        }
        let t_end = t[nodes - 1];
        let last = &self.theta[(nodes - 1) * d..nodes * d];
        total += lag.discount(t_end) * terminal_value(variant, target.as_ref(), last, t_end);
        Ok(total)
    }
}

/// `(θ, p)` at the nodes, node-major.
fn node_states(s: &Solution) -> Vec<f64> {
    s.theta
        .iter()
        .zip(s.p.iter())
        .flat_map(|(a, b)| a.iter().chain(b).copied())
        .collect()
}

/// `dJ*/dp`: the envelope part along the fixed path plus the multipliers of the moved
/// constraints (start point, fixed end, horizon).
fn cost_derivative(
    problem: &Problem,
    s: &Solution,
    fixed: &FixedPath,
    param: &Parameter,
    variants: &[Problem],
    h: f64,
    drop: Option<Term>,
) -> Result<Derivative, SolverError> {
    let lag = problem.lagrangian();
    let eta = lag.eta();
    // Which constraints the parameter moves, by how much (first order, central differences
    // of the variants: exact for the built-in ones, which move them linearly).
    // The built-in boundary parameters move one constraint at unit rate, exactly.
    #[derive(PartialEq)]
    enum Moved {
        Start(usize),
        End(usize),
        Horizon,
    }
    let rate_of = |moved: Moved, get: &dyn Fn(&Problem) -> f64| match param {
        Parameter::Other { .. } => (get(&variants[0]) - get(&variants[1])) / (2.0 * h),
        Parameter::Theta0(i) if moved == Moved::Start(*i) => 1.0,
        Parameter::End(i) if moved == Moved::End(*i) => 1.0,
        Parameter::Horizon if moved == Moved::Horizon => 1.0,
        _ => 0.0,
    };
    let mut boundary = 0.0;
    let mut boundary_error = 0.0;
    let p0 = &s.p[0];
    for (i, &pi) in p0.iter().enumerate() {
        let r = rate_of(Moved::Start(i), &|q: &Problem| q.theta0()[i]);
        if r != 0.0 && drop != Some(Term::StartMultiplier) {
            boundary -= pi / eta * r;
        }
    }
    let t_end = s.end_time();
    if let End::Fixed(_) = problem.end() {
        let pt = s.p.last().expect("nodes");
        for (i, &pi) in pt.iter().enumerate() {
            let r = rate_of(Moved::End(i), &|q: &Problem| match q.end() {
                End::Fixed(e) => e[i],
                _ => f64::NAN,
            });
            if r != 0.0 && drop != Some(Term::EndMultiplier) {
                boundary += lag.discount(t_end) * pi / eta * r;
            }
        }
    }
    if let Horizon::Finite(_) = problem.horizon() {
        let r = rate_of(Moved::Horizon, &|q: &Problem| match q.horizon() {
            Horizon::Finite(t) => t,
            Horizon::Infinite => f64::NAN,
        });
        if r != 0.0 && drop != Some(Term::HorizonEnd) {
            // ∂J*/∂T = e^{-γT} ℋ(T) + ∂_T(e^{-γT} Φ(θ(T), T)) at the fixed end point.
            let hamiltonian = *s.hamiltonian.last().expect("nodes");
            let mut dt = lag.discount(t_end) * hamiltonian;
            if let End::Free {
                terminal_cost: Some(c),
            } = problem.end()
            {
                let last = s.theta.last().expect("nodes");
                let terminal = |t: f64| lag.discount(t) * c.value(last, t);
                let e = 1e-4 * t_end;
                let d1 = (terminal(t_end + e) - terminal(t_end - e)) / (2.0 * e);
                let d2 = (terminal(t_end + e / 2.0) - terminal(t_end - e / 2.0)) / e;
                dt += (4.0 * d2 - d1) / 3.0;
                boundary_error += (d2 - d1).abs() * r.abs();
            }
            boundary += dt * r;
        }
    }
    // The envelope part: J of the fixed path under each variant, with the constraints
    // the variant moves put back (they are accounted for above).
    let interior = |q: &Problem| -> Result<f64, SolverError> {
        let q = if q.theta0() != problem.theta0()
            || q.horizon() != problem.horizon()
            || !same_end(q.end(), problem.end())
        {
            // A parameter that moves a constraint and also changes the Lagrangian: evaluate
            // the Lagrangian's part with the solved problem's constraints.
            problem
                .with_lagrangian(q.lagrangian().clone())
                .map_err(|e| SolverError::Unsupported(e.to_string()))?
        } else {
            q.clone()
        };
        fixed.cost(&q, &s.t)
    };
    let same_lagrangian = matches!(
        param,
        Parameter::Theta0(_) | Parameter::End(_) | Parameter::Horizon
    );
    let envelope = if same_lagrangian || drop == Some(Term::Envelope) {
        Derivative {
            value: 0.0,
            error: 0.0,
        }
    } else {
        let v: Vec<f64> = variants.iter().map(interior).collect::<Result<_, _>>()?;
        richardson(v[0], v[1], v[2], v[3], h, s.cost.abs().max(1.0))
    };
    Ok(Derivative {
        value: envelope.value + boundary,
        error: envelope.error + boundary_error,
    })
}

fn same_end(a: &End, b: &End) -> bool {
    match (a, b) {
        (End::Fixed(x), End::Fixed(y)) => x == y,
        (End::Free { .. }, End::Free { .. }) => true,
        (End::Equilibrium { .. }, End::Equilibrium { .. }) => true,
        _ => false,
    }
}

/// The solution's collocation equations, with the Jacobian factored at the solution.
struct Collocation {
    y: Vec<f64>,
    order6: bool,
    jac: NewtonMatrix,
    ws: Workspace,
    res: [Vec<f64>; 4],
}

impl Collocation {
    fn new(problem: &Problem, s: &Solution) -> Result<Self, String> {
        if s.method != "bvp" {
            return Err(format!(
                "path derivatives come from the collocation equations of the boundary-value \
                 solver; this solution is from the {} method",
                s.method
            ));
        }
        let lag = problem.lagrangian();
        let d = lag.dim();
        let y = node_states(s);
        let order6 = !s.curvatures.is_empty();
        let end = end_condition(problem, s).map_err(|e| e.to_string())?;
        let theta0 = problem.theta0().as_slice().to_vec();
        let sys = System {
            order6,
            ..System::new(lag, &theta0, &end)
        };
        let mut ws = Workspace::new(d);
        let intervals = s.t.len() - 1;
        let too_big = crate::bvp::Bvp::memory_estimate(d, s.t.len());
        if too_big > crate::memory::DEFAULT_MAX_MEMORY {
            return Err(format!(
                "the Jacobian of {} nodes at D = {d} needs about {} MB",
                s.t.len(),
                too_big >> 20
            ));
        }
        let mut jac = NewtonMatrix::default();
        jac.reset(d, intervals);
        sys.eval_nodes(&s.t, &y, &mut ws)
            .map_err(|e| e.to_string())?;
        let mut r = vec![0.0; y.len()];
        sys.residual(&s.t, &y, &mut ws, &mut r)
            .map_err(|e| e.to_string())?;
        sys.jacobian(&s.t, &y, &mut ws, &mut jac);
        jac.factor().map_err(|_| {
            "the collocation Jacobian is singular at the solution (a fold or a conjugate \
             point: the path does not depend smoothly on the parameters here)"
                .to_string()
        })?;
        jac.solve(&mut r);
        let step = crate::bvp::collocation::scaled_norm(&r, &y);
        if step.is_nan() || step > NEWTON_STEP_LIMIT {
            return Err(format!(
                "the solution does not satisfy the collocation equations it would be \
                 differentiated through (Newton step {step:.1e} > {NEWTON_STEP_LIMIT:.0e})"
            ));
        }
        let m = y.len();
        Ok(Self {
            y,
            order6,
            jac,
            ws,
            res: [vec![0.0; m], vec![0.0; m], vec![0.0; m], vec![0.0; m]],
        })
    }

    /// The collocation residuals at the solution's `y` under each variant, into `self.res`
    /// (a finite horizon's variants on the rescaled mesh).
    fn perturbed_residuals(
        &mut self,
        problem: &Problem,
        s: &Solution,
        param: &Parameter,
        variants: &[Problem],
        drop: Option<Term>,
    ) -> Result<(), String> {
        let t_ref = match problem.horizon() {
            Horizon::Finite(t) => Some(t),
            Horizon::Infinite => None,
        };
        for (q, res) in variants.iter().zip(self.res.iter_mut()) {
            // A finite horizon scales the mesh; an infinite one keeps the truncation time.
            let scale = match (t_ref, q.horizon()) {
                (Some(t0), Horizon::Finite(t1)) => t1 / t0,
                _ => 1.0,
            };
            let t: Vec<f64> = s.t.iter().map(|x| x * scale).collect();
            let frozen = drop == Some(Term::MovingTarget) && q.horizon() == Horizon::Infinite;
            let end = end_condition(if frozen { problem } else { q }, s)
                .map_err(|e| format!("{}: {e}", param.name()))?;
            let lag = if drop == Some(Term::Field) {
                problem.lagrangian()
            } else {
                q.lagrangian()
            };
            let sys = System {
                order6: self.order6,
                ..System::new(lag, q.theta0().as_slice(), &end)
            };
            sys.eval_nodes(&t, &self.y, &mut self.ws)
                .and_then(|()| sys.residual(&t, &self.y, &mut self.ws, res))
                .map_err(|e| format!("{} at a difference step: {e}", param.name()))?;
        }
        Ok(())
    }

    /// `dφ/dp = −λᵀ ∂F/∂p` with `λ = J⁻ᵀ ∂φ/∂y` (see [`adjoint_gradient`]).
    #[allow(clippy::too_many_arguments)]
    fn adjoint(
        &mut self,
        problem: &Problem,
        s: &Solution,
        param: &Parameter,
        variants: &[Problem],
        h: f64,
        lambda: &[f64],
        dphi_dy: &[f64],
    ) -> Result<Derivative, String> {
        self.perturbed_residuals(problem, s, param, variants, None)?;
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (r0, r1, r2, r3) = (
            dot(lambda, &self.res[0]),
            dot(lambda, &self.res[1]),
            dot(lambda, &self.res[2]),
            dot(lambda, &self.res[3]),
        );
        let size = lambda.iter().map(|l| l.abs()).sum::<f64>()
            * self.y.iter().fold(1.0_f64, |a, b| a.max(b.abs()));
        let mut d = richardson(-r0, -r1, -r2, -r3, h, size);
        if matches!(param, Parameter::Horizon) {
            // The path derivative at fixed t adds −(t/T) ẏ to the one at fixed t/T.
            let t_end = s.end_time();
            let n = 2 * problem.dim();
            for (i, &ti) in s.t.iter().enumerate() {
                for j in 0..n {
                    d.value -= dphi_dy[i * n + j] * ti / t_end * s.slopes[i * n + j];
                }
            }
        }
        Ok(d)
    }

    fn derivative(
        &mut self,
        problem: &Problem,
        s: &Solution,
        param: &Parameter,
        variants: &[Problem],
        h: f64,
        drop: Option<Term>,
    ) -> Result<PathDerivative, String> {
        let d = problem.dim();
        let n = 2 * d;
        let t_ref = match problem.horizon() {
            Horizon::Finite(t) => Some(t),
            Horizon::Infinite => None,
        };
        self.perturbed_residuals(problem, s, param, variants, drop)?;
        let m = self.y.len();
        let size = self.y.iter().fold(1.0_f64, |a, b| a.max(b.abs()));
        // -∂F/∂p from the two central quotients, each solved for; a third of their
        // difference is the finer one's error, which bounds the extrapolated one's.
        let mut coarse = vec![0.0; m];
        let mut fine = vec![0.0; m];
        for j in 0..m {
            coarse[j] = -(self.res[0][j] - self.res[1][j]) / (2.0 * h);
            fine[j] = -(self.res[2][j] - self.res[3][j]) / h;
        }
        self.jac.solve(&mut coarse);
        self.jac.solve(&mut fine);
        let mut dy = vec![0.0; m];
        let mut error = 0.0_f64;
        for j in 0..m {
            dy[j] = (4.0 * fine[j] - coarse[j]) / 3.0;
            error = error.max((fine[j] - coarse[j]).abs() / 3.0);
        }
        error += 8.0 * f64::EPSILON * size / h;
        // The slopes' derivative: d/dp F(t_i, y_i(p); p), the field's derivative along
        // (dy/dp, 1), by the same differences (the field at y ± h·dy under each variant).
        let mut slopes = [vec![0.0; m], vec![0.0; m], vec![0.0; m], vec![0.0; m]];
        let mut curvatures: [Vec<f64>; 4] = Default::default();
        let signs = [1.0, -1.0, 0.5, -0.5];
        let mut moved = vec![0.0; m];
        for (((q, out), curv), sign) in variants
            .iter()
            .zip(slopes.iter_mut())
            .zip(curvatures.iter_mut())
            .zip(signs)
        {
            let scale = match (t_ref, q.horizon()) {
                (Some(t0), Horizon::Finite(t1)) => t1 / t0,
                _ => 1.0,
            };
            let t: Vec<f64> = s.t.iter().map(|x| x * scale).collect();
            for j in 0..m {
                moved[j] = self.y[j] + sign * h * dy[j];
            }
            let lag = if drop == Some(Term::Field) {
                problem.lagrangian()
            } else {
                q.lagrangian()
            };
            let free = EndCondition::Free {
                eta: lag.eta(),
                cost: None,
            };
            let sys = System {
                order6: self.order6,
                ..System::new(lag, q.theta0().as_slice(), &free)
            };
            sys.eval_nodes(&t, &moved, &mut self.ws)
                .map_err(|e| format!("{} at a difference step: {e}", param.name()))?;
            out.copy_from_slice(&self.ws.f);
            // Sixth order: the second derivatives ∂F·F too (empty otherwise).
            sys.eval_curvatures(&t, &moved, &mut self.ws);
            curv.clone_from(&self.ws.a);
        }
        let mut second = vec![0.0; curvatures[0].len()];
        for (j, v) in second.iter_mut().enumerate() {
            let d1 = (curvatures[0][j] - curvatures[1][j]) / (2.0 * h);
            let d2 = (curvatures[2][j] - curvatures[3][j]) / h;
            *v = (4.0 * d2 - d1) / 3.0;
        }
        let mut dslope = vec![0.0; m];
        for j in 0..m {
            let d1 = (slopes[0][j] - slopes[1][j]) / (2.0 * h);
            let d2 = (slopes[2][j] - slopes[3][j]) / h;
            dslope[j] = (4.0 * d2 - d1) / 3.0;
            error = error.max((d2 - d1).abs() / 3.0);
        }
        if matches!(param, Parameter::Horizon) && drop != Some(Term::Rescale) {
            // From fixed t/T to fixed t: dy(t)/dT = dy/dT|_{t/T} - (t/T) ẏ(t), and for the
            // slopes d/dt dy(t)/dT = d/dT F(t_i T'/T, y_i(T')) - (t/T) ÿ(t).
            // The second derivatives likewise: d²/dt² dy(t)/dT = d/dT a(Y) - (t/T) y⃛(t).
            let t_end = s.end_time();
            let accel = self.along_path(problem, s, false)?;
            let jerk = if second.is_empty() {
                Vec::new()
            } else {
                self.along_path(problem, s, true)?
            };
            for (i, &ti) in s.t.iter().enumerate() {
                for j in 0..n {
                    dy[i * n + j] -= ti / t_end * s.slopes[i * n + j];
                    dslope[i * n + j] -= ti / t_end * accel[i * n + j];
                    if !jerk.is_empty() {
                        second[i * n + j] -= ti / t_end * jerk[i * n + j];
                    }
                }
            }
        }
        if !dy
            .iter()
            .chain(&dslope)
            .chain(&second)
            .all(|v| v.is_finite())
            || !error.is_finite()
        {
            return Err(format!("{}: non-finite path derivative", param.name()));
        }
        let split = |v: &[f64]| {
            let (mut a, mut b) = (Vec::with_capacity(m / 2), Vec::with_capacity(m / 2));
            for node in v.chunks_exact(n) {
                a.extend_from_slice(&node[..d]);
                b.extend_from_slice(&node[d..]);
            }
            (NodeValues::from_flat(a, d), NodeValues::from_flat(b, d))
        };
        let (theta, p) = split(&dy);
        let (theta_dot, p_dot) = split(&dslope);
        Ok(PathDerivative {
            t: s.t.clone(),
            theta,
            p,
            theta_dot,
            p_dot,
            error,
            second,
        })
    }

    /// `ÿ` (`second` false: the sixth-order solution's own second derivatives when it has
    /// them) or `y⃛` (`second` true, sixth-order solutions) at the nodes: the derivative of the
    /// field `F`, or of `∂F·F`, along the path, `(1, ẏ)` in `(t, y)`, by Richardson-extrapolated
    /// central differences.
    fn along_path(
        &mut self,
        problem: &Problem,
        s: &Solution,
        second: bool,
    ) -> Result<Vec<f64>, String> {
        if !second && !s.curvatures.is_empty() {
            return Ok(s.curvatures.clone());
        }
        let lag = problem.lagrangian();
        let free = EndCondition::Free {
            eta: lag.eta(),
            cost: None,
        };
        let sys = System {
            order6: second,
            ..System::new(lag, problem.theta0().as_slice(), &free)
        };
        let e = 1e-4 * s.end_time() / s.t.len() as f64;
        let mut at = |step: f64| -> Result<Vec<f64>, String> {
            let t: Vec<f64> = s.t.iter().map(|x| x + step).collect();
            let y: Vec<f64> = self
                .y
                .iter()
                .zip(&s.slopes)
                .map(|(y, f)| y + step * f)
                .collect();
            sys.eval_nodes(&t, &y, &mut self.ws)
                .map_err(|e| e.to_string())?;
            if second {
                sys.eval_curvatures(&t, &y, &mut self.ws);
                Ok(self.ws.a.clone())
            } else {
                Ok(self.ws.f.clone())
            }
        };
        let (a, b, c, d) = (at(e)?, at(-e)?, at(e / 2.0)?, at(-e / 2.0)?);
        Ok((0..a.len())
            .map(|j| {
                let d1 = (a[j] - b[j]) / (2.0 * e);
                let d2 = (c[j] - d[j]) / e;
                (4.0 * d2 - d1) / 3.0
            })
            .collect())
    }
}

/// The end condition the solver imposed for `problem` on the solution's mesh: for infinite
/// horizons the stable-manifold projection at `problem`'s own equilibrium, which must be the
/// one the solution approaches.
fn end_condition(problem: &Problem, s: &Solution) -> Result<EndCondition, SolverError> {
    let lag = problem.lagrangian();
    Ok(match problem.end() {
        End::Fixed(v) => EndCondition::Fixed(v.as_slice().to_vec()),
        End::Free { terminal_cost } => EndCondition::Free {
            eta: lag.eta(),
            cost: terminal_cost.clone(),
        },
        End::Equilibrium { .. } => {
            let target = Target::new(problem)?;
            if let Some(tail) = &s.tail {
                let gap: f64 = tail
                    .theta_star
                    .iter()
                    .zip(&target.theta_star)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                let scale = tail.theta_star.amax().max(1.0);
                if gap > 1e-3 * scale {
                    return Err(SolverError::Unsupported(format!(
                        "at the perturbed parameters the equilibrium nearest θ0 is {:?}, not \
                         the solution's {:?}",
                        target.theta_star,
                        tail.theta_star.as_slice()
                    )));
                }
            }
            EndCondition::Projection {
                theta_star: target.theta_star.clone(),
                p_star: target.p_star.clone(),
                eta_p: &target.riccati * lag.eta(),
            }
        }
    })
}
