//! `sweep`: a spec solved over a grid of parameters, one JSON row per grid point, in
//! parallel. The command line prints the rows (and shards the grid by index ranges); the
//! Python package runs index ranges in-process or on a Dask cluster and gets the same rows.

use std::ops::Range;

use serde_json::{json, Value};

use lossnav_problems::spec::HorizonSpec;
use lossnav_problems::{Horizon, Problem, Spec, SpecPath};
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

/// The spec at one grid point: η, k, γ and a finite horizon set directly, every other axis
/// through its [`SpecPath`].
fn apply(
    spec: &Spec,
    axes: &[Axis],
    paths: &[Option<SpecPath>],
    point: &[f64],
) -> Result<Spec, String> {
    let mut s = spec.clone();
    for ((axis, path), &v) in axes.iter().zip(paths).zip(point) {
        match axis.name.as_str() {
            "gamma" => s.gamma = v,
            "eta" => s.eta = v,
            "k" => s.k = v,
            "horizon" => s.horizon = HorizonSpec::Finite(v),
            name => {
                let path = path
                    .as_ref()
                    .ok_or_else(|| format!("{name}: not a field of the spec"))?;
                s = path.set(&s, v).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(s)
}

/// Refuses axes that could only give rows that are all the same or all errors: a name given
/// twice, a parameter the spec does not define (it would change nothing), a coordinate of θ0
/// beyond its dimension.
fn check_axes(spec: &Spec, axes: &[Axis]) -> Result<Vec<Option<SpecPath>>, String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut paths = Vec::with_capacity(axes.len());
    for axis in axes {
        let name = axis.name.as_str();
        let mut key = name.to_string();
        let mut path = None;
        if matches!(name, "gamma" | "eta" | "k" | "horizon") {
        } else if let Some(i) = name.strip_prefix("theta0.") {
            match i.parse::<usize>() {
                // `theta0.1` and `theta0.01` name the same coordinate.
                Ok(i) if i < spec.theta0.len() => key = format!("theta0[{i}]"),
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
        if !matches!(name, "gamma" | "eta" | "k" | "horizon") {
            let parsed = SpecPath::parse(name, spec).map_err(|e| format!("--set {e}"))?;
            if let Some(i) = name
                .strip_prefix("theta0[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok())
            {
                key = format!("theta0[{i}]");
            }
            path = Some(parsed);
        }
        if !seen.insert(key) {
            return Err(format!("--set {name} sets what another --set already sets"));
        }
        paths.push(path);
    }
    Ok(paths)
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
    paths: Vec<Option<SpecPath>>,
    bvp: Bvp,
    minima: Vec<Vec<f64>>,
    scalars_only: bool,
    total: usize,
    at: Vec<f64>,
    trajectories: bool,
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
        let paths = check_axes(spec, &axes).map_err(CliError::Usage)?;
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
            paths,
            bvp,
            minima,
            scalars_only,
            total,
            at: Vec::new(),
            trajectories: false,
        })
    }

    /// Each row also samples the solution at the times `at` (`"at": {"t", "theta", "p"}`) and,
    /// with `trajectories`, carries the whole path (`"t"`, `"theta"`, `"p"` at the nodes).
    /// Times must be finite and ≥ 0; a time past a point's finite horizon makes that row an
    /// error.
    pub fn with_samples(mut self, at: Vec<f64>, trajectories: bool) -> Result<Self, CliError> {
        if let Some(t) = at.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
            return Err(CliError::Usage(format!(
                "--at {t}: times are finite and >= 0"
            )));
        }
        self.at = at;
        self.trajectories = trajectories;
        Ok(self)
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

    /// The sampling times of each row.
    pub fn at(&self) -> &[f64] {
        &self.at
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

    /// The `params` object of grid point `idx` (what its row records).
    pub fn params(&self, idx: usize) -> Value {
        Value::Object(
            self.axes
                .iter()
                .zip(self.point(idx))
                .map(|(a, v)| (a.name.clone(), json!(v)))
                .collect(),
        )
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
        let start = range.start;
        let slots: Vec<std::sync::Mutex<Option<Value>>> =
            range.clone().map(|_| std::sync::Mutex::new(None)).collect();
        let indices: Vec<usize> = range.collect();
        self.solve_points(&indices, jobs, &|idx, row| {
            *slots[idx - start].lock().unwrap_or_else(|e| e.into_inner()) = Some(row);
            on_point();
        })?;
        Ok(slots
            .into_iter()
            .map(|s| {
                s.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect("every point delivers its row")
            })
            .collect())
    }

    /// Solves the grid points `indices` with `jobs` worker threads (all cores when `None`)
    /// under the calling thread's [`Budget`], handing each row to `on_row` as soon as it is
    /// finished. Workers take the points in the order given, so rows finish close to that
    /// order (what lets a caller stream them in order with a short buffer).
    pub fn solve_points(
        &self,
        indices: &[usize],
        jobs: Option<usize>,
        on_row: &(dyn Fn(usize, Value) + Sync),
    ) -> Result<(), CliError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.total) {
            return Err(CliError::Usage(format!(
                "grid point {bad} is outside the grid of {} points",
                self.total
            )));
        }
        let jobs = match jobs {
            Some(j) if !(1..=MAX_JOBS).contains(&j) => {
                return Err(CliError::Usage(format!(
                    "--jobs {j}: must be between 1 and {MAX_JOBS}"
                )))
            }
            Some(j) => j,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        // More threads than grid points would only start idle threads.
        let jobs = jobs.min(indices.len()).max(1);
        // Workers take the caller's deadline: points past it are recorded as not solved, and
        // the points that finished are kept.
        let budget = Budget::handle();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || {
            let _scope = budget.enter();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&idx) = indices.get(k) else { break };
                on_row(idx, self.row(idx));
            }
        };
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(jobs);
            for _ in 1..jobs {
                handles.push(
                    std::thread::Builder::new()
                        .name("lossnav-sweep".into())
                        .spawn_scoped(scope, work),
                );
            }
            work();
            // A thread that could not start leaves its share to the others.
            for h in handles.into_iter().flatten() {
                if let Err(panic) = h.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        Ok(())
    }

    /// The row of grid point `idx`.
    fn row(&self, idx: usize) -> Value {
        let values = self.point(idx);
        let params = self.params(idx);
        if Budget::expired() {
            // Before any work: points after an interrupt or past the deadline cost nothing.
            let e = SolverError::TimeLimit {
                what: "the sweep before this point started".into(),
                residual: f64::NAN,
            };
            return json!({
                "index": idx,
                "params": params,
                "solved": false,
                "error_kind": e.kind(),
                "error": e.to_string(),
            });
        }
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
            apply(&self.spec, &self.axes, &self.paths, &values)
                .and_then(|s| s.to_problem().map_err(|e| e.to_string()))
        };
        let outcome = problem
            .map_err(|e| ("invalid grid point", e))
            .and_then(|p| {
                if let Horizon::Finite(end) = p.horizon() {
                    if let Some(t) = self.at.iter().find(|&&t| t > end) {
                        return Err((
                            "invalid grid point",
                            format!("--at {t} is past this point's horizon {end}"),
                        ));
                    }
                }
                self.bvp.solve(&p).map_err(|e| (e.kind(), e.to_string()))
            });
        match outcome {
            Ok(sol) => {
                let end = match &sol.tail {
                    Some(t) => t.theta_star.as_slice().to_vec(),
                    None => sol.theta.last().map(<[f64]>::to_vec).unwrap_or_default(),
                };
                let mut row = json!({
                    "index": idx,
                    "params": params,
                    "solved": true,
                    "status": sol.status(),
                    "cost": sol.cost,
                    "cost_is_relative": sol.cost_is_relative,
                    "end": end,
                    "minimum": nearest(&self.minima, &end),
                    "second_order": match &sol.second_order {
                        lossnav_solvers::SecondOrder::Checked(c) => json!(c.verdict.as_str()),
                        lossnav_solvers::SecondOrder::Unchecked(_) => json!(null),
                    },
                });
                if !self.at.is_empty() {
                    let samples: Vec<(Vec<f64>, Vec<f64>)> =
                        self.at.iter().map(|&t| sol.eval(t)).collect();
                    row["at"] = json!({
                        "t": self.at,
                        "theta": samples.iter().map(|s| &s.0).collect::<Vec<_>>(),
                        "p": samples.iter().map(|s| &s.1).collect::<Vec<_>>(),
                    });
                }
                if self.trajectories {
                    row["t"] = json!(sol.t);
                    row["theta"] = json!(sol.theta.to_nested());
                    row["p"] = json!(sol.p.to_nested());
                }
                row
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
