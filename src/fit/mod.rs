//! `fit`: inverse optimal control. Given observed `(t, θ)` samples and a spec whose free
//! parameters are named, find the parameters whose optimal trajectory best explains the
//! observations, with standard errors, correlations, a goodness-of-fit statement and which
//! combinations of parameters the data identify.
//!
//! - The model: the spec with the free parameters set ([`SpecPath`]), solved locally by the
//!   boundary-value solver from the previous solution (tol 1e-10, no certificate inside the
//!   loop), `θ(t_o)` from the solution's interpolant.
//! - The residuals `(θ_j(t_o) − observed)/σ` over the observed coordinates; their Jacobian from
//!   the solution's sensitivities ([`lossnav_solvers::sensitivity`]), interpolated to the
//!   observation times.
//! - Bounds by reparametrisation: `p = lo + e^u`, `hi − e^u`, or `lo + (hi − lo)/(1 + e^{−u})`;
//!   `eta`, `k`, `gamma` and `horizon` are positive unless bounded otherwise.
//! - The outer loop: Levenberg–Marquardt run by argmin ([`levenberg`]), from the spec's values
//!   and from `starts − 1` seeded perturbations of them; the best end is reported.
//! - The gradient-flow limit ([`limit`]): with `γ` free (and at most `η`, `k` besides), when the
//!   finite fit leaves a direction unidentified or a parameter at a bound, the flow
//!   `θ̇ = f − c G⁻¹∇L` (`γ → ∞`, `c = ηk/γ`) is fitted too; when it explains the observations
//!   better, the report says the observations are that limit and only `ηk/γ` is identified.
//! - At the fit, the search for the cheapest certified minimum is run once: a fitted path
//!   that is not the optimal one (another extremal is cheaper) is reported as such.
//! - Identifiability: the singular value decomposition of the Jacobian in relative
//!   parameters (`∂r/∂ln p`); a direction whose standard error exceeds 10 % (`σ/s > 0.1`, with
//!   `σ` at least the model's numerical noise 1e-9) is not identified, and the report names
//!   the combinations that are (as products `Π p_i^{v_i}` with their values). Where the path
//!   does not depend on a direction at all (relative singular value below 1e-8), the
//!   parameters in it have no standard error of their own (`identified_alone: false`,
//!   `standard_error: null`): only combinations are determined.

use std::cell::RefCell;

use argmin::core::{CostFunction, Error, Executor, Jacobian, Operator, State};
use nalgebra::DMatrix;
use serde_json::{json, Value};

use lossnav_problems::{Horizon, Problem, Spec, SpecPath};
use lossnav_solvers::sensitivity::{sensitivities, SensitivityOptions};
use lossnav_solvers::{Budget, Bvp, Search, Solution};

use crate::cli::CliError;

pub mod levenberg;
mod limit;
mod observations;

pub use observations::{adam, heavy_ball, Observations, ADAM_BETA2, ADAM_EPS};

/// A free parameter: its name (a spec path, as for `--sensitivities`) and optional bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Free {
    /// `gamma`, `eta`, `params.a`, `metric.diag[0]`, …
    pub name: String,
    /// Lower bound.
    pub lower: Option<f64>,
    /// Upper bound.
    pub upper: Option<f64>,
}

impl Free {
    /// `NAME`, `NAME:LO:HI`, `NAME:LO:` or `NAME::HI`.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let bound = |s: &str| -> Result<Option<f64>, CliError> {
            if s.is_empty() {
                return Ok(None);
            }
            let v: f64 = s.parse().map_err(|_| {
                CliError::Usage(format!("--free {text}: bound {s:?} is not a number"))
            })?;
            if !v.is_finite() {
                return Err(CliError::Usage(format!(
                    "--free {text}: bounds are finite (leave one out for none)"
                )));
            }
            Ok(Some(v))
        };
        let (name, lower, upper) = match parts.as_slice() {
            [n] => (*n, None, None),
            [n, lo, hi] => (*n, bound(lo)?, bound(hi)?),
            _ => {
                return Err(CliError::Usage(format!(
                    "--free {text}: NAME or NAME:LO:HI (either bound may be empty)"
                )))
            }
        };
        if name.is_empty() {
            return Err(CliError::Usage(format!("--free {text}: no name")));
        }
        if let (Some(lo), Some(hi)) = (lower, upper) {
            if lo >= hi {
                return Err(CliError::Usage(format!(
                    "--free {text}: the lower bound {lo} is not below the upper {hi}"
                )));
            }
        }
        Ok(Self {
            name: name.to_string(),
            lower,
            upper,
        })
    }
}

/// Options of [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Starts of the outer optimisation (the spec's values and seeded perturbations).
    pub starts: usize,
    /// Levenberg–Marquardt iterations per start.
    pub max_iterations: u64,
    /// Tolerance of the boundary-value solves.
    pub tol: f64,
    /// Seed of the perturbed starts.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            starts: 4,
            max_iterations: 60,
            tol: 1e-10,
            seed: 1,
        }
    }
}

/// How a parameter maps to the unconstrained variable the optimiser moves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Map {
    Free,
    Lower(f64),
    Upper(f64),
    Both(f64, f64),
}

impl Map {
    fn of(free: &Free) -> Self {
        let positive = matches!(free.name.as_str(), "eta" | "k" | "gamma" | "horizon");
        match (free.lower, free.upper) {
            (Some(lo), Some(hi)) => Map::Both(lo, hi),
            (Some(lo), None) => Map::Lower(lo),
            (None, Some(hi)) => Map::Upper(hi),
            (None, None) if positive => Map::Lower(0.0),
            (None, None) => Map::Free,
        }
    }

    fn to_p(self, u: f64) -> f64 {
        match self {
            Map::Free => u,
            Map::Lower(lo) => lo + u.exp(),
            Map::Upper(hi) => hi - u.exp(),
            Map::Both(lo, hi) => lo + (hi - lo) / (1.0 + (-u).exp()),
        }
    }

    /// `dp/du`.
    fn slope(self, u: f64) -> f64 {
        match self {
            Map::Free => 1.0,
            Map::Lower(_) => u.exp(),
            Map::Upper(_) => -u.exp(),
            Map::Both(lo, hi) => {
                let s = 1.0 / (1.0 + (-u).exp());
                (hi - lo) * s * (1.0 - s)
            }
        }
    }

    fn to_u(self, p: f64) -> Option<f64> {
        let u = match self {
            Map::Free => p,
            Map::Lower(lo) => (p - lo).ln(),
            Map::Upper(hi) => (hi - p).ln(),
            Map::Both(lo, hi) => {
                let s = (p - lo) / (hi - lo);
                (s / (1.0 - s)).ln()
            }
        };
        u.is_finite().then_some(u)
    }
}

/// The model the optimiser sees: residuals and their Jacobian in the unconstrained variables.
struct Model<'a> {
    spec: &'a Spec,
    paths: Vec<SpecPath>,
    maps: Vec<Map>,
    names: Vec<String>,
    obs: &'a Observations,
    sigma: f64,
    bvp: Bvp,
    /// The last solution (the next solve's start) and the variables it belongs to.
    last: RefCell<Option<(Vec<f64>, Problem, Solution)>>,
    evaluations: RefCell<usize>,
    /// The lowest misfit evaluated so far and where.
    best: RefCell<Option<(f64, Vec<f64>)>>,
}

impl Model<'_> {
    fn values(&self, u: &[f64]) -> Vec<f64> {
        u.iter().zip(&self.maps).map(|(&u, m)| m.to_p(u)).collect()
    }

    fn spec_at(&self, p: &[f64]) -> Result<Spec, Error> {
        let mut spec = self.spec.clone();
        for (path, &v) in self.paths.iter().zip(p) {
            spec = path.set(&spec, v).map_err(Error::msg)?;
        }
        Ok(spec)
    }

    /// Solves at `u` (from the last solution when there is one).
    fn solve(&self, u: &[f64]) -> Result<(Problem, Solution), Error> {
        if Budget::expired() || Budget::cancelled() {
            return Err(Error::msg("time limit"));
        }
        if let Some((v, problem, sol)) = &*self.last.borrow() {
            if v.as_slice() == u {
                return Ok((problem.clone(), sol.clone()));
            }
        }
        *self.evaluations.borrow_mut() += 1;
        let p = self.values(u);
        let problem = self.spec_at(&p)?.to_problem().map_err(Error::msg)?;
        let warm = self.last.borrow().as_ref().map(|(_, _, s)| s.clone());
        let solved = match &warm {
            Some(prev) => self
                .bvp
                .solve_from(&problem, &|t| prev.eval(t))
                .or_else(|_| self.bvp.solve(&problem)),
            None => self.bvp.solve(&problem),
        };
        let sol = solved.map_err(|e| Error::msg(e.to_string()))?;
        *self.last.borrow_mut() = Some((u.to_vec(), problem.clone(), sol.clone()));
        Ok((problem, sol))
    }

    fn residuals_of(&self, sol: &Solution) -> Vec<f64> {
        let mut r = Vec::with_capacity(self.obs.count());
        for (o, &t) in self.obs.t.iter().enumerate() {
            let (theta, _) = sol.eval(t);
            for (j, v) in self.obs.theta[o].iter().enumerate() {
                if let Some(v) = v {
                    r.push((theta[j] - v) / self.sigma);
                }
            }
        }
        r
    }

    /// `∂r/∂p` (natural parameters) at `u`.
    fn jacobian_p(&self, u: &[f64]) -> Result<DMatrix<f64>, Error> {
        let (problem, sol) = self.solve(u)?;
        let spec = self.spec_at(&self.values(u))?;
        let params = crate::commands::parameters(&spec, &problem, &self.names)
            .map_err(|e| Error::msg(e.to_string()))?;
        let s = sensitivities(&problem, &sol, &params, &SensitivityOptions::default())
            .map_err(|e| Error::msg(e.to_string()))?;
        let m = self.obs.count();
        let mut jac = DMatrix::zeros(m, params.len());
        for (i, sens) in s.parameters.iter().enumerate() {
            let path = sens
                .path
                .as_ref()
                .map_err(|e| Error::msg(format!("{}: {e}", sens.name)))?;
            let mut row = 0;
            for (o, &t) in self.obs.t.iter().enumerate() {
                let (dtheta, _) = path.at(t);
                for (j, v) in self.obs.theta[o].iter().enumerate() {
                    if v.is_some() {
                        jac[(row, i)] = dtheta[j] / self.sigma;
                        row += 1;
                    }
                }
            }
        }
        Ok(jac)
    }
}

impl Operator for &Model<'_> {
    type Param = Vec<f64>;
    type Output = Vec<f64>;
    fn apply(&self, u: &Vec<f64>) -> Result<Vec<f64>, Error> {
        let (_, sol) = self.solve(u)?;
        let r = self.residuals_of(&sol);
        // The best point seen, kept for a fit that a time limit ends mid-start.
        let misfit = 0.5 * r.iter().map(|x| x * x).sum::<f64>();
        let mut best = self.best.borrow_mut();
        if best.as_ref().is_none_or(|(c, _)| misfit < *c) {
            *best = Some((misfit, u.clone()));
        }
        Ok(r)
    }
}

impl CostFunction for &Model<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Vec<f64>) -> Result<f64, Error> {
        let r = self.apply(u)?;
        Ok(0.5 * r.iter().map(|x| x * x).sum::<f64>())
    }
}

impl Jacobian for &Model<'_> {
    type Param = Vec<f64>;
    type Jacobian = DMatrix<f64>;
    fn jacobian(&self, u: &Vec<f64>) -> Result<DMatrix<f64>, Error> {
        let mut jac = self.jacobian_p(u)?;
        for (i, (&u, m)) in u.iter().zip(&self.maps).enumerate() {
            let s = m.slope(u);
            jac.column_mut(i).scale_mut(s);
        }
        Ok(jac)
    }
}

/// A learning rule `fit` can run to generate its observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// [`heavy_ball`]: `lr` and `beta` (the momentum).
    HeavyBall,
    /// [`adam`]: `lr` and `beta` (β1; β2 and ε are Adam's defaults).
    Adam,
}

/// The observations of `rule` (`lr`, `beta`) run on `spec`'s loss from its `θ0`: `steps`
/// steps (default: the finite horizon, else 200) after `skip`; with `skip > 0` the spec's `θ0`
/// becomes the first observed point, where the fitted path must start.
pub fn rule_observations(
    label: &str,
    spec: &mut Spec,
    rule: Generator,
    lr: f64,
    beta: f64,
    steps: Option<usize>,
    skip: usize,
) -> Result<Observations, CliError> {
    let problem = spec.to_problem().map_err(|source| CliError::Spec {
        path: label.to_string(),
        source,
    })?;
    let steps = match (steps, problem.horizon()) {
        (Some(n), _) => n,
        (None, Horizon::Finite(t)) => t.floor() as usize,
        (None, Horizon::Infinite) => 200,
    };
    let obs = match rule {
        Generator::HeavyBall => heavy_ball(&problem, lr, beta, skip, steps)?,
        Generator::Adam => adam(&problem, lr, beta, skip, steps)?,
    };
    spec.theta0 = obs.theta[0].iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    Ok(obs)
}

/// [`rule_observations`] of heavy ball.
pub fn heavy_ball_observations(
    label: &str,
    spec: &mut Spec,
    lr: f64,
    beta: f64,
    steps: Option<usize>,
    skip: usize,
) -> Result<Observations, CliError> {
    rule_observations(label, spec, Generator::HeavyBall, lr, beta, steps, skip)
}

/// One start of the outer optimisation and where it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StartOutcome {
    /// The parameters it started from.
    pub from: Vec<f64>,
    /// Where it ended (natural parameters), if it ran.
    pub to: Option<Vec<f64>>,
    /// `½ Σ r²` there.
    pub misfit: f64,
    /// Iterations.
    pub iterations: u64,
    /// Why it stopped.
    pub termination: String,
}

/// What `fit` found.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// The document `lossnav fit` prints.
    pub doc: Value,
    /// Whether the fit finished (false: a time limit ended it; the document has the best
    /// point reached).
    pub complete: bool,
}

/// Fits the free parameters of `spec` to `obs` (see the module docs).
pub fn fit(
    label: &str,
    spec: &Spec,
    obs: &Observations,
    free: &[Free],
    opts: &FitOptions,
) -> Result<FitReport, CliError> {
    let usage = |m: String| CliError::Usage(m);
    if free.is_empty() {
        return Err(usage("--free: name at least one parameter to fit".into()));
    }
    if opts.starts == 0 || opts.starts > 64 {
        return Err(usage(format!("--starts {}: 1 to 64", opts.starts)));
    }
    let base = spec.to_problem().map_err(|source| CliError::Spec {
        path: label.to_string(),
        source,
    })?;
    let d = base.dim();
    if obs.dim() > d {
        return Err(usage(format!(
            "the observations have {} coordinates, the spec's θ only {d}",
            obs.dim()
        )));
    }
    // Coordinates beyond the last one observed are not observed.
    let mut padded;
    let obs = if obs.dim() < d {
        padded = obs.clone();
        for row in &mut padded.theta {
            row.resize(d, None);
        }
        &padded
    } else {
        obs
    };
    if let Horizon::Finite(end) = base.horizon() {
        if let Some(t) = obs.t.iter().find(|&&t| t > end) {
            return Err(usage(format!(
                "observation time {t} is beyond the horizon {end}"
            )));
        }
    }
    let m = obs.count();
    if m <= free.len() {
        return Err(usage(format!(
            "{m} observed values for {} free parameters: a fit needs more observations \
             than parameters",
            free.len()
        )));
    }
    if spec.observation.is_some() || spec.task_switching.is_some() {
        return Err(usage(
            "fit: the spec must state a deterministic problem (no observation or task_switching)"
                .into(),
        ));
    }
    let mut paths = Vec::with_capacity(free.len());
    for (k, f) in free.iter().enumerate() {
        if free[..k].iter().any(|g| g.name == f.name) {
            return Err(usage(format!("--free: {} is named twice", f.name)));
        }
        let path = SpecPath::parse(&f.name, spec).map_err(|e| usage(format!("--free: {e}")))?;
        paths.push(path);
    }
    let names: Vec<String> = free.iter().map(|f| f.name.clone()).collect();
    // Names the sensitivities understand (checked now, not inside the loop).
    crate::commands::parameters(spec, &base, &names)?;
    let maps: Vec<Map> = free.iter().map(Map::of).collect();
    let p0: Vec<f64> = paths
        .iter()
        .map(|p| p.get(spec).map_err(|e| usage(e.to_string())))
        .collect::<Result<_, _>>()?;
    let u0: Vec<f64> = p0
        .iter()
        .zip(&maps)
        .zip(free)
        .map(|((&p, m), f)| {
            m.to_u(p).ok_or_else(|| {
                usage(format!(
                    "--free {}: the spec's value {p} is not strictly inside the bounds",
                    f.name
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let sigma = obs.sigma.unwrap_or(1.0);
    let model = Model {
        spec,
        paths,
        maps: maps.clone(),
        names: names.clone(),
        obs,
        sigma,
        bvp: Bvp {
            second_order: false,
            ..Bvp::default().with_tol(opts.tol)
        },
        last: RefCell::new(None),
        evaluations: RefCell::new(0),
        best: RefCell::new(None),
    };
    // Starts: the spec's values, then seeded perturbations by e^{±1} (positive parameters)
    // or ±max(|p|, 1)/2 (others) in the optimiser's variables.
    let mut rng = opts.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut starts = vec![u0.clone()];
    for _ in 1..opts.starts {
        starts.push(
            u0.iter()
                .zip(&maps)
                .map(|(&u, m)| match m {
                    Map::Free => u + 0.5 * u.abs().max(1.0) * next(),
                    _ => u + next(),
                })
                .collect(),
        );
    }
    let mut outcomes = Vec::new();
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut time_limited = false;
    for start in &starts {
        *model.last.borrow_mut() = None;
        let from = model.values(start);
        let result = Executor::new(&model, levenberg::LevenbergMarquardt::default())
            .configure(|s| s.param(start.clone()).max_iters(opts.max_iterations))
            .run();
        match result {
            Ok(res) => {
                let state = res.state();
                let u = state
                    .get_best_param()
                    .cloned()
                    .unwrap_or_else(|| start.clone());
                let misfit = state.get_best_cost();
                outcomes.push(StartOutcome {
                    from,
                    to: Some(model.values(&u)),
                    misfit,
                    iterations: state.get_iter(),
                    termination: state.get_termination_status().to_string(),
                });
                if best.as_ref().is_none_or(|(c, _)| misfit < *c) {
                    best = Some((misfit, u));
                }
            }
            Err(e) => {
                let text = e.to_string();
                outcomes.push(StartOutcome {
                    from,
                    to: None,
                    misfit: f64::NAN,
                    iterations: 0,
                    termination: text.clone(),
                });
                if levenberg::is_time_limit(&text) {
                    time_limited = true;
                    break;
                }
            }
        }
    }
    let starts_json: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({"from": o.from, "to": o.to, "misfit": finite(o.misfit),
                   "iterations": o.iterations, "termination": o.termination})
        })
        .collect();
    if time_limited {
        // The budget is spent: report the best point evaluated, without the analyses that
        // would need more solves.
        let Some((misfit, u)) = model.best.borrow().clone() else {
            return Err(CliError::Solver {
                path: label.to_string(),
                source: lossnav_solvers::SolverError::TimeLimit {
                    what: "fit, before the first solve finished".into(),
                    residual: f64::NAN,
                },
            });
        };
        let p = model.values(&u);
        let params_json: Vec<Value> = (0..p.len())
            .map(|i| json!({"name": names[i], "value": p[i], "standard_error": Value::Null}))
            .collect();
        let doc = json!({
            "status": format!(
                "time limit: the best of {} solves so far (not converged; no standard errors, \
                 identifiability or optimality check)",
                *model.evaluations.borrow()
            ),
            "parameters": params_json,
            "misfit": misfit,
            "starts": starts_json,
            "solves": *model.evaluations.borrow(),
        });
        return Ok(FitReport {
            doc,
            complete: false,
        });
    }
    let Some((misfit, u)) = best else {
        return Err(usage(format!(
            "fit: no start could be solved: {}",
            outcomes
                .iter()
                .map(|o| o.termination.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )));
    };
    let p = model.values(&u);
    let (problem, sol) = model
        .solve(&u)
        .map_err(|e| usage(format!("fit: at the best point: {e}")))?;
    let residuals = model.residuals_of(&sol);
    let jac = model
        .jacobian_p(&u)
        .map_err(|e| usage(format!("fit: sensitivities at the best point: {e}")))?;
    let n = p.len();
    let dof = m - n;
    let rss: f64 = residuals.iter().map(|r| r * r).sum();
    // The noise: stated, or estimated from the residuals; never below the model's own
    // numerical noise (solves at tol 1e-10 reproduce θ to about 1e-9).
    let theta_scale = obs
        .theta
        .iter()
        .flatten()
        .flatten()
        .fold(1.0_f64, |a, b| a.max(b.abs()));
    let noise_floor = 1e-9 * theta_scale / sigma;
    let scale2 = match obs.sigma {
        Some(_) => 1.0,
        None => (rss / dof as f64).max(noise_floor * noise_floor),
    };
    // Identifiability in relative terms for positive parameters, absolute otherwise.
    let positive: Vec<bool> = p.iter().map(|&v| v > 0.0).collect();
    let mut jrel = jac.clone();
    for i in 0..n {
        if positive[i] {
            jrel.column_mut(i).scale_mut(p[i]);
        }
    }
    let svd_rel = jrel.svd(false, true);
    let vt = svd_rel.v_t.as_ref().expect("computed");
    let noise = scale2.sqrt().max(noise_floor);
    let mut identified = Vec::new();
    let mut unidentified = Vec::new();
    // The covariance of the relative parameters (a direction is reported as identified when
    // its relative standard error is at most 10 %).
    let mut cov_rel = DMatrix::zeros(n, n);
    let mut alone = vec![true; n];
    let s_max_rel = svd_rel.singular_values.max();
    let mut order: Vec<usize> = (0..svd_rel.singular_values.len()).collect();
    order.sort_by(|&a, &b| svd_rel.singular_values[b].total_cmp(&svd_rel.singular_values[a]));
    for k in order {
        let s = svd_rel.singular_values[k];
        let v: Vec<f64> = vt.row(k).iter().copied().collect();
        let lead = v
            .iter()
            .fold(0.0_f64, |a, b| if b.abs() > a.abs() { *b } else { a });
        let v: Vec<f64> = v.iter().map(|x| x / lead).collect();
        let se_dir = noise / s * lead.abs().recip();
        let terms: Vec<Value> = v
            .iter()
            .enumerate()
            .filter(|(_, c)| c.abs() > 1e-3)
            .map(|(i, c)| json!({"name": names[i], "power": c, "relative": positive[i]}))
            .collect();
        let text = describe(&names, &v, &positive);
        // The value of Π p_i^{v_i} (all positive) or Σ v_i p_i.
        let value = if positive
            .iter()
            .zip(&v)
            .all(|(&pos, c)| pos || c.abs() <= 1e-3)
        {
            v.iter()
                .zip(&p)
                .filter(|(c, _)| c.abs() > 1e-3)
                .map(|(c, x)| c * x.ln())
                .sum::<f64>()
                .exp()
        } else {
            v.iter().zip(&p).map(|(c, x)| c * x).sum::<f64>()
        };
        let entry = json!({"combination": text, "terms": terms, "value": finite(value),
                           "singular_value": s, "standard_error": finite(se_dir)});
        if se_dir.is_finite() && se_dir <= 0.1 {
            identified.push(entry);
        } else {
            unidentified.push(entry);
        }
        // Standard errors come from every direction the Jacobian resolves numerically; a
        // direction it does not (relative singular value below 1e-8: the path does not depend
        // on it at all) leaves the parameters in it without a standard error of their own.
        if s > 1e-8 * s_max_rel {
            let col = vt.row(k).transpose();
            cov_rel += (&col * col.transpose()) * (scale2 / (s * s));
        } else {
            for (i, c) in v.iter().enumerate() {
                if c.abs() > 1e-2 {
                    alone[i] = false;
                }
            }
        }
    }
    let unit = |i: usize| if positive[i] { p[i] } else { 1.0 };
    let se: Vec<f64> = (0..n)
        .map(|i| {
            if alone[i] {
                cov_rel[(i, i)].sqrt() * unit(i).abs()
            } else {
                f64::NAN
            }
        })
        .collect();
    let corr: Vec<Vec<Value>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if alone[i] && alone[j] {
                        finite(cov_rel[(i, j)] / (cov_rel[(i, i)] * cov_rel[(j, j)]).sqrt())
                    } else {
                        Value::Null
                    }
                })
                .collect()
        })
        .collect();
    // The gradient-flow limit (γ → ∞, ηk/γ = c): when γ is free with at most η and k, the
    // limit itself is fitted and compared; a finite γ can only approach it.
    let mut limit_json = Value::Null;
    let mut in_limit = false;
    let scalar_names = ["eta", "k", "gamma"];
    // Examined only where the finite fit leaves a direction unidentified or a parameter at a
    // bound: a fit that identifies every direction at finite γ is not near the limit.
    let at_bound = u
        .iter()
        .zip(&maps)
        .any(|(u, m)| u.abs() > 25.0 && !matches!(m, Map::Free));
    if names.iter().any(|n| n == "gamma")
        && names.iter().all(|n| scalar_names.contains(&n.as_str()))
        && (!unidentified.is_empty() || at_bound)
    {
        let lag = problem.lagrangian();
        let c0 = lag.eta() * lag.k() / lag.gamma();
        match limit::fit_limit(&problem, obs, sigma, c0, noise_floor) {
            Ok(lf) => {
                // The combination over the free names: (η·k restricted to the free ones)/γ.
                let fixed: f64 = [("eta", lag.eta()), ("k", lag.k())]
                    .iter()
                    .filter(|(n, _)| !names.iter().any(|m| m == n))
                    .map(|(_, v)| v)
                    .product();
                let text = names
                    .iter()
                    .filter(|n| n.as_str() != "gamma")
                    .map(|n| format!("{n}^1"))
                    .chain(std::iter::once("gamma^-1".to_string()))
                    .collect::<Vec<_>>()
                    .join(" · ");
                // Clearly better, not by rounding: in one dimension both families are all
                // single exponentials and fit equally well.
                in_limit = lf.misfit < (1.0 - 1e-3) * misfit;
                limit_json = json!({
                    "rate": lf.rate, "rate_standard_error": finite(lf.standard_error),
                    "misfit": lf.misfit, "finite_misfit": misfit,
                    "verdict": if in_limit {
                        format!("the observations are the gradient-flow limit γ → ∞ of the family, θ̇ = f − c G⁻¹∇L with c = ηk/γ = {:.10}: only {text} is identified; a finite γ only approaches it (misfit {:.3e} against {:.3e})", lf.rate, lf.misfit, misfit)
                    } else {
                        format!("a finite γ explains the observations as well as the gradient-flow limit or better (misfit {misfit:.3e} against {:.3e})", lf.misfit)
                    }
                });
                if in_limit {
                    let terms: Vec<Value> = names
                        .iter()
                        .map(|n| json!({"name": n, "power": if n == "gamma" { -1.0 } else { 1.0 }, "relative": true}))
                        .collect();
                    identified = vec![json!({
                        "combination": text, "terms": terms, "value": lf.rate / fixed,
                        "standard_error": finite(lf.standard_error / lf.rate), "limit": true,
                    })];
                    unidentified = vec![json!({
                        "combination": "gamma → ∞ (the limit), and with it each of the others alone",
                        "terms": [{"name": "gamma", "power": 1.0, "relative": true}],
                        "value": Value::Null, "standard_error": Value::Null, "limit": true,
                    })];
                    alone.iter_mut().for_each(|a| *a = false);
                }
            }
            Err(e) => {
                limit_json =
                    json!({"verdict": format!("the gradient-flow limit could not be fitted: {e}")})
            }
        }
    }
    let se: Vec<f64> = if in_limit { vec![f64::NAN; n] } else { se };
    let corr = if in_limit {
        vec![vec![Value::Null; n]; n]
    } else {
        corr
    };

    // The fitted path must be the optimal one: the search at the fitted parameters.
    let search = Search {
        bvp: Bvp::default().with_tol(opts.tol.max(1e-10)),
        ..Search::default()
    };
    let optimal = match search.solve(&problem) {
        Ok(res) => {
            let best = res.solution();
            let gap = obs
                .t
                .iter()
                .map(|&t| {
                    let (a, _) = best.eval(t);
                    let (b, _) = sol.eval(t);
                    a.iter()
                        .zip(&b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f64::max)
                })
                .fold(0.0, f64::max);
            // Solves at tol 1e-10 agree far below 1e-6 of θ's scale on the same extremal.
            if gap <= 1e-6 * theta_scale {
                json!({"verdict": "the fitted trajectory is the optimal one",
                       "optimality": res.optimality.describe(),
                       "second_order": best.second_order.describe()})
            } else {
                json!({"verdict": "the fitted trajectory is an extremal, but another one is \
                                    cheaper at these parameters: the observations follow a \
                                    path that is not optimal under the fitted assumptions",
                       "optimality": res.optimality.describe(),
                       "largest_difference": gap, "optimal_cost": best.cost,
                       "fitted_cost": sol.cost})
            }
        }
        Err(e) => json!({"verdict": format!("not checked: the search failed ({e})")}),
    };
    let goodness = match obs.sigma {
        Some(s) => {
            let chi2 = rss;
            let z = (chi2 - dof as f64) / (2.0 * dof as f64).sqrt();
            json!({"sigma": s, "chi2": chi2, "dof": dof, "chi2_per_dof": chi2 / dof as f64,
            "z": z,
            "statement": if z.abs() <= 3.0 {
                format!("consistent with noise σ = {s} (χ² = {chi2:.4} on {dof} degrees of freedom, z = {z:.2})")
            } else if z > 3.0 {
                format!("the misfit is larger than noise σ = {s} explains (χ² = {chi2:.4} on {dof}, z = {z:.2}): no member of the family reproduces the observations")
            } else {
                format!("the misfit is smaller than noise σ = {s} predicts (χ² = {chi2:.4} on {dof}, z = {z:.2}): σ may be overstated")
            }})
        }
        None => {
            let rms = (rss / m as f64).sqrt();
            json!({"rms_residual": rms, "dof": dof,
                   "statement": format!("no noise level stated: root-mean-square residual {rms:.3e}, the standard errors assume it is the noise")})
        }
    };
    let params_json: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": names[i], "value": p[i], "standard_error": finite(se[i]),
                   "identified_alone": alone[i],
                   "interval95": [finite(p[i] - 1.96 * se[i]), finite(p[i] + 1.96 * se[i])],
                   "lower": free[i].lower, "upper": free[i].upper,
                   "at_bound": u[i].abs() > 25.0 && !matches!(maps[i], Map::Free)})
        })
        .collect();
    let fitted: Vec<Vec<f64>> = obs.t.iter().map(|&t| sol.eval(t).0).collect();
    let status = if time_limited {
        "time limit: the best point of the starts that finished".to_string()
    } else if in_limit {
        format!(
            "fitted {n} parameters to {m} observed values: the gradient-flow limit γ → ∞; \
             only one combination identified ({})",
            identified[0]["combination"].as_str().unwrap_or("")
        )
    } else {
        format!(
            "fitted {n} parameters to {m} observed values; {} identified combination(s), {} not identified",
            identified.len(),
            unidentified.len()
        )
    };
    let doc = json!({
        "status": status,
        "parameters": params_json,
        "identified": identified,
        "not_identified": unidentified,
        "goodness_of_fit": goodness,
        "misfit": misfit,
        "optimal": optimal,
        "limit": limit_json,
        "correlations": corr,
        "starts": starts_json,
        "solves": *model.evaluations.borrow(),
        "cost": sol.cost,
        "t": obs.t,
        "theta_fitted": fitted,
    });
    Ok(FitReport {
        doc,
        complete: !time_limited,
    })
}

fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// `eta^1 · k^1 · gamma^-1` (relative parameters) or `1·theta0[0] + …` (others).
fn describe(names: &[String], v: &[f64], positive: &[bool]) -> String {
    let mut parts = Vec::new();
    for (i, &c) in v.iter().enumerate() {
        if c.abs() <= 1e-3 {
            continue;
        }
        let c_text = if (c - c.round()).abs() < 1e-3 {
            format!("{}", c.round())
        } else {
            format!("{c:.3}")
        };
        parts.push(if positive[i] {
            format!("{}^{c_text}", names[i])
        } else {
            format!("{c_text}·{}", names[i])
        });
    }
    parts.join(" · ")
}
