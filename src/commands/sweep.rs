//! `sweep`: a spec solved over a grid of parameters, one JSON row per grid point, in
//! parallel. The command line prints the rows (and shards the grid by index ranges); the
//! Python package runs index ranges in-process or on a Dask cluster and gets the same rows.

use std::ops::Range;

use rayon::prelude::*;
use serde_json::{json, Value};

use lossnav_problems::spec::HorizonSpec;
use lossnav_problems::{Problem, Spec};
use lossnav_solvers::{Budget, Bvp, SolverError};

use crate::cli::CliError;

/// The most worker threads `--jobs` accepts: far above any core count this tool runs on, low
/// enough that a typo does not try to start a hundred thousand threads.
pub const MAX_JOBS: usize = 1024;

/// One swept parameter and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// `gamma`, `eta`, `k`, `horizon`, `theta0.I` or `params.NAME`.
    pub name: String,
    /// Its values.
    pub values: Vec<f64>,
}

/// The most points of a grid (one axis or all axes together): checked before anything is
/// allocated (a million solves is hours of work already).
pub const MAX_GRID_POINTS: usize = 1_000_000;

/// The product of the axis lengths, or an error naming the limit.
pub fn grid_size(flag: &str, lengths: &[usize]) -> Result<usize, CliError> {
    lengths
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&n| n <= MAX_GRID_POINTS)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{flag}: the grid has more than {MAX_GRID_POINTS} points ({})",
                lengths
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" × ")
            ))
        })
}

/// The spec at one grid point.
fn apply(spec: &Spec, axes: &[Axis], point: &[f64]) -> Result<Spec, String> {
    let mut s = spec.clone();
    for (axis, &v) in axes.iter().zip(point) {
        match axis.name.as_str() {
            "gamma" => s.gamma = v,
            "eta" => s.eta = v,
            "k" => s.k = v,
            "horizon" => s.horizon = HorizonSpec::Finite(v),
            name => {
                if let Some(i) = name.strip_prefix("theta0.") {
                    let i: usize = i.parse().map_err(|_| format!("bad index in {name}"))?;
                    *s.theta0.get_mut(i).ok_or_else(|| {
                        format!("{name}: theta0 has {} entries", spec.theta0.len())
                    })? = v;
                } else if let Some(p) = name.strip_prefix("params.") {
                    if let Some(slot) = s.loss.params.as_mut().and_then(|m| m.get_mut(p)) {
                        *slot = v;
                    } else {
                        s.params.insert(p.to_string(), v);
                    }
                }
            }
        }
    }
    Ok(s)
}

/// Refuses axes that could only give rows that are all the same or all errors: a name given
/// twice, a parameter the spec does not define (it would change nothing), a coordinate of θ0
/// beyond its dimension.
fn check_axes(spec: &Spec, axes: &[Axis]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for axis in axes {
        let name = axis.name.as_str();
        let mut key = name.to_string();
        if let Some(i) = name.strip_prefix("theta0.") {
            match i.parse::<usize>() {
                // `theta0.1` and `theta0.01` name the same coordinate.
                Ok(i) if i < spec.theta0.len() => key = format!("theta0.{i}"),
                _ => {
                    return Err(format!(
                        "--set {name}: theta0 has coordinates 0..{}",
                        spec.theta0.len()
                    ))
                }
            }
        } else if let Some(p) = name.strip_prefix("params.") {
            let local = spec.loss.params.as_ref().is_some_and(|m| m.contains_key(p));
            if !local && !spec.params.contains_key(p) {
                let mut known: Vec<&str> = spec.params.keys().map(String::as_str).collect();
                if let Some(m) = &spec.loss.params {
                    known.extend(m.keys().map(String::as_str));
                }
                return Err(format!(
                    "--set {name}: no top-level or loss parameter `{p}` (those of the spec: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        if !seen.insert(key) {
            return Err(format!("--set {name} sets what another --set already sets"));
        }
    }
    Ok(())
}

/// Index of the nearest of `minima` to `end`.
fn nearest(minima: &[Vec<f64>], end: &[f64]) -> Option<usize> {
    minima
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                i,
                m.iter().zip(end).map(|(a, b)| (a - b).powi(2)).sum::<f64>(),
            )
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// A grid over a spec's parameters, checked and ready to solve point by point.
pub struct SweepGrid {
    spec: Spec,
    base: Problem,
    axes: Vec<Axis>,
    bvp: Bvp,
    minima: Vec<Vec<f64>>,
    scalars_only: bool,
    total: usize,
}

impl SweepGrid {
    /// Checks the axes against `spec` (`label` names it in errors) and the tolerance, and finds
    /// the minima of the loss that rows refer to. The grid is row-major: the first axis varies
    /// slowest.
    pub fn new(label: &str, spec: &Spec, axes: Vec<Axis>, tol: f64) -> Result<Self, CliError> {
        let base = spec.to_problem().map_err(|source| CliError::Spec {
            path: label.to_string(),
            source,
        })?;
        check_axes(spec, &axes).map_err(CliError::Usage)?;
        // Checked once here rather than failing at every grid point.
        let bvp = Bvp::default().with_tol(tol);
        bvp.validate().map_err(|source| CliError::Solver {
            path: label.to_string(),
            source,
        })?;
        let minima = lossnav_solvers::extremals::candidate_minima(&base);
        // Grids over the Lagrangian's scalars alone need no recompilation of the spec's
        // expressions; task-switching and observation specs build their problems from the
        // scalars, so they take the full route.
        let scalars_only = spec.task_switching.is_none()
            && spec.observation.is_none()
            && axes
                .iter()
                .all(|a| matches!(a.name.as_str(), "gamma" | "eta" | "k"));
        let lengths: Vec<usize> = axes.iter().map(|a| a.values.len()).collect();
        let total = grid_size("--set", &lengths)?;
        Ok(Self {
            spec: spec.clone(),
            base,
            axes,
            bvp,
            minima,
            scalars_only,
            total,
        })
    }

    /// The number of grid points.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the grid has no point (never: every axis has a value).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The axes.
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// The problem's dimension.
    pub fn dim(&self) -> usize {
        self.base.dim()
    }

    /// The parameter values of grid point `idx`, one per axis.
    pub fn point(&self, mut idx: usize) -> Vec<f64> {
        let mut p = vec![0.0; self.axes.len()];
        for (a, axis) in self.axes.iter().enumerate().rev() {
            p[a] = axis.values[idx % axis.values.len()];
            idx /= axis.values.len();
        }
        p
    }

    /// The rows of the grid points in `range`, in order, solved by `jobs` worker threads
    /// (all cores when `None`) under the calling thread's [`Budget`]; `on_point` is called
    /// after each point. Each row has index, params, solved, cost, cost_is_relative, end,
    /// minimum and second_order, or error_kind and error.
    pub fn rows(
        &self,
        range: Range<usize>,
        jobs: Option<usize>,
        on_point: &(dyn Fn() + Sync),
    ) -> Result<Vec<Value>, CliError> {
        if range.end > self.total || range.start > range.end {
            return Err(CliError::Usage(format!(
                "grid points {}..{} are outside the grid of {} points",
                range.start, range.end, self.total
            )));
        }
        let jobs = match jobs {
            Some(j) if !(1..=MAX_JOBS).contains(&j) => {
                return Err(CliError::Usage(format!(
                    "--jobs {j}: must be between 1 and {MAX_JOBS}"
                )))
            }
            // More threads than grid points would only start idle threads.
            Some(j) => j.min(range.len().max(1)),
            None => 0,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .map_err(|e| CliError::Usage(format!("--jobs: {e}")))?;
        // Workers take the caller's deadline: points past it are recorded as not solved, and
        // the points that finished are kept.
        let budget = Budget::handle();
        Ok(pool.install(|| {
            range
                .into_par_iter()
                .map(|idx| {
                    let _scope = budget.enter();
                    let row = self.row(idx);
                    on_point();
                    row
                })
                .collect()
        }))
    }

    /// The row of grid point `idx`.
    fn row(&self, idx: usize) -> Value {
        let values = self.point(idx);
        let params: serde_json::Map<String, Value> = self
            .axes
            .iter()
            .zip(&values)
            .map(|(a, v)| (a.name.clone(), json!(v)))
            .collect();
        let problem = if self.scalars_only {
            // Only η, k, γ vary: the compiled loss, metric and drift are reused.
            let mut lag = self.base.lagrangian().clone();
            for (axis, &v) in self.axes.iter().zip(&values) {
                lag = match axis.name.as_str() {
                    "gamma" => lag.with_gamma(v),
                    "eta" => lag.with_eta(v),
                    _ => lag.with_k(v),
                };
            }
            self.base.with_lagrangian(lag).map_err(|e| e.to_string())
        } else {
            apply(&self.spec, &self.axes, &values)
                .and_then(|s| s.to_problem().map_err(|e| e.to_string()))
        };
        let outcome = problem
            .map_err(|e| ("invalid grid point", e))
            .and_then(|p| {
                if Budget::expired() {
                    let e = SolverError::TimeLimit {
                        what: "the sweep before this point started".into(),
                        residual: f64::NAN,
                    };
                    return Err((e.kind(), e.to_string()));
                }
                self.bvp.solve(&p).map_err(|e| (e.kind(), e.to_string()))
            });
        match outcome {
            Ok(sol) => {
                let end = match &sol.tail {
                    Some(t) => t.theta_star.as_slice().to_vec(),
                    None => sol.theta.last().map(<[f64]>::to_vec).unwrap_or_default(),
                };
                json!({
                    "index": idx,
                    "params": params,
                    "solved": true,
                    "cost": sol.cost,
                    "cost_is_relative": sol.cost_is_relative,
                    "end": end,
                    "minimum": nearest(&self.minima, &end),
                    "second_order": match &sol.second_order {
                        lossnav_solvers::SecondOrder::Checked(c) => json!(c.verdict.as_str()),
                        lossnav_solvers::SecondOrder::Unchecked(_) => json!(null),
                    },
                })
            }
            Err((kind, e)) => json!({
                "index": idx,
                "params": params,
                "solved": false,
                "error_kind": kind,
                "error": e,
            }),
        }
    }
}
