//! `lossnav sweep`: solve a spec over a grid of parameters, in parallel, one JSON line per
//! grid point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{json, Value};

use lossnav_problems::spec::HorizonSpec;
use lossnav_problems::Spec;
use lossnav_solvers::{Budget, Bvp, SolverError};

use super::output::{check_writable, print, write_atomic};
use super::CliError;

/// The most worker threads `--jobs` accepts: far above any core count this tool runs on, low
/// enough that a typo does not try to start a hundred thousand threads.
const MAX_JOBS: usize = 1024;

/// One swept parameter and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// `gamma`, `eta`, `k`, `horizon`, `theta0.I` or `params.NAME`.
    pub name: String,
    /// Its values.
    pub values: Vec<f64>,
}

/// Parses `name=lo:hi:n` (n evenly spaced values, ends included) or `name=a,b,c`.
pub fn parse_axis(text: &str) -> Result<Axis, CliError> {
    let bad = |why: &str| CliError::Usage(format!("--set {text}: {why}"));
    let (name, spec) = text
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=LO:HI:N or NAME=A,B,C"))?;
    let values = parse_values(spec).map_err(|why| bad(&why))?;
    let known = matches!(name, "gamma" | "eta" | "k" | "horizon")
        || name
            .strip_prefix("theta0.")
            .is_some_and(|i| i.parse::<usize>().is_ok())
        || name.starts_with("params.");
    if !known {
        return Err(bad(
            "NAME is one of gamma, eta, k, horizon, theta0.I, params.NAME",
        ));
    }
    Ok(Axis {
        name: name.to_string(),
        values,
    })
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

/// `LO:HI:N` (N equally spaced values) or `A,B,C`: finite numbers, at most
/// [`MAX_GRID_POINTS`] of them.
pub fn parse_values(spec: &str) -> Result<Vec<f64>, String> {
    let values: Vec<f64> = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() != 3 {
            return Err("a range is LO:HI:N".into());
        }
        let lo: f64 = parts[0].parse().map_err(|_| "LO is not a number")?;
        let hi: f64 = parts[1].parse().map_err(|_| "HI is not a number")?;
        let n: u128 = parts[2].parse().map_err(|_| "N is not a whole number")?;
        if n == 0 {
            return Err("N must be at least 1".into());
        }
        if n > MAX_GRID_POINTS as u128 {
            return Err(format!(
                "N = {n} exceeds the limit of {MAX_GRID_POINTS} points"
            ));
        }
        let n = n as usize;
        (0..n)
            .map(|i| {
                if n == 1 {
                    lo
                } else {
                    lo + (hi - lo) * i as f64 / (n - 1) as f64
                }
            })
            .collect()
    } else {
        spec.split(',')
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("{v:?} is not a number"))
            })
            .collect::<Result<_, _>>()?
    };
    if values.iter().any(|v: &f64| !v.is_finite()) {
        return Err("values must be finite".into());
    }
    Ok(values)
}

/// Parses `i/n` (1-based shard i of n).
pub fn parse_shard(text: &str) -> Result<(usize, usize), CliError> {
    let bad = || CliError::Usage(format!("--shard {text}: expected I/N with 1 <= I <= N"));
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
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

/// Arguments of `lossnav sweep`.
pub struct SweepArgs<'a> {
    pub spec: &'a Path,
    pub axes: Vec<Axis>,
    pub jobs: Option<usize>,
    pub tol: f64,
    pub shard: Option<(usize, usize)>,
    pub output: Option<&'a PathBuf>,
    pub allow_failures: bool,
    pub csv: bool,
}

pub(super) fn run(args: SweepArgs) -> Result<ExitCode, CliError> {
    if let Some(file) = args.output {
        check_writable(file)?;
    }
    let path = args.spec.display().to_string();
    let spec = Spec::from_file(args.spec).map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    let base = spec.to_problem().map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    check_axes(&spec, &args.axes).map_err(CliError::Usage)?;
    // Checked once here rather than failing at every grid point.
    let bvp = Bvp::default().with_tol(args.tol);
    bvp.validate().map_err(|source| CliError::Solver {
        path: path.clone(),
        source,
    })?;
    let minima = lossnav_solvers::extremals::candidate_minima(&base);
    // Grids over the Lagrangian's scalars alone need no recompilation of the spec's
    // expressions; task-switching and observation specs build their problems from the
    // scalars, so they take the full route.
    let scalars_only = spec.task_switching.is_none()
        && spec.observation.is_none()
        && args
            .axes
            .iter()
            .all(|a| matches!(a.name.as_str(), "gamma" | "eta" | "k"));
    // The grid, row-major: the first --set varies slowest.
    let lengths: Vec<usize> = args.axes.iter().map(|a| a.values.len()).collect();
    let total = grid_size("--set", &lengths)?;
    let (lo, hi) = match args.shard {
        Some((i, n)) => ((i - 1) * total / n, i * total / n),
        None => (0, total),
    };
    let point = |mut idx: usize| -> Vec<f64> {
        let mut p = vec![0.0; args.axes.len()];
        for (a, axis) in args.axes.iter().enumerate().rev() {
            p[a] = axis.values[idx % axis.values.len()];
            idx /= axis.values.len();
        }
        p
    };
    let jobs = match args.jobs {
        Some(j) if !(1..=MAX_JOBS).contains(&j) => {
            return Err(CliError::Usage(format!(
                "--jobs {j}: must be between 1 and {MAX_JOBS}"
            )))
        }
        // More threads than grid points would only start idle threads.
        Some(j) => j.min((hi - lo).max(1)),
        None => 0,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| CliError::Usage(format!("--jobs: {e}")))?;
    let bar = ProgressBar::new((hi - lo) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} grid points, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Workers take the command's deadline: points past it are recorded as not solved, and the
    // points that finished are written.
    let deadline = Budget::deadline();
    let lines: Vec<Value> = pool.install(|| {
        (lo..hi)
            .into_par_iter()
            .map(|idx| {
                let _scope = Budget::until(deadline);
                let values = point(idx);
                let params: serde_json::Map<String, Value> = args
                    .axes
                    .iter()
                    .zip(&values)
                    .map(|(a, v)| (a.name.clone(), json!(v)))
                    .collect();
                let problem = if scalars_only {
                    // Only η, k, γ vary: the compiled loss, metric and drift are reused.
                    let mut lag = base.lagrangian().clone();
                    for (axis, &v) in args.axes.iter().zip(&values) {
                        lag = match axis.name.as_str() {
                            "gamma" => lag.with_gamma(v),
                            "eta" => lag.with_eta(v),
                            _ => lag.with_k(v),
                        };
                    }
                    base.with_lagrangian(lag).map_err(|e| e.to_string())
                } else {
                    apply(&spec, &args.axes, &values)
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
                        bvp.solve(&p).map_err(|e| (e.kind(), e.to_string()))
                    });
                bar.inc(1);
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
                            "minimum": nearest(&minima, &end),
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
            })
            .collect()
    });
    bar.finish_and_clear();
    let text = if args.csv {
        // Shards concatenate to the unsharded output: the header belongs to shard 1 only.
        let header = args.shard.is_none_or(|(i, _)| i == 1);
        csv_from_lines(&args.axes, base.dim(), header, &lines)
    } else {
        let mut text = String::new();
        for line in &lines {
            text.push_str(&serde_json::to_string(line).expect("JSON values serialise"));
            text.push('\n');
        }
        text
    };
    match args.output {
        Some(file) => write_atomic(file, &text)?,
        None => print(&text)?,
    }
    let (line, failed) = summary(&lines);
    eprintln!("{line}");
    Ok(if failed > 0 && !args.allow_failures {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line for the end of a sweep: how many points were solved, how many failed, and the
/// most common cause with the first point where it occurred. Also the failure count.
fn summary(lines: &[Value]) -> (String, usize) {
    let failed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["solved"] == json!(false))
        .collect();
    let total = lines.len();
    let mut line = format!(
        "sweep: {} of {total} points solved, {} failed",
        total - failed.len(),
        failed.len()
    );
    let mut counts: Vec<(&str, usize, &Value)> = Vec::new();
    for f in &failed {
        let kind = f["error_kind"].as_str().unwrap_or("unknown");
        match counts.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(c) => c.1 += 1,
            None => counts.push((kind, 1, &f["params"])),
        }
    }
    // Most common first; among equals, the one met first in grid order.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    if let Some((kind, n, params)) = counts.first() {
        let at: Vec<String> = params
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} = {v}")).collect())
            .unwrap_or_default();
        line.push_str(&format!(
            " ({n} × {kind}, first at {}{})",
            at.join(", "),
            if counts.len() > 1 {
                format!("; {} other causes", counts.len() - 1)
            } else {
                String::new()
            }
        ));
        line.push_str("; the lines' \"error\" fields say why; exit code 1 unless --allow-failures");
    }
    (line, failed.len())
}

/// The sweep as CSV, one row per grid point: `index`, the swept parameters, `solved`, `cost`,
/// `cost_is_relative`, `end_0…end_{dim−1}`, `minimum`, `second_order`, `error_kind`, `error`
/// (quoted), under a header line when `with_header`.
fn csv_from_lines(axes: &[Axis], dim: usize, with_header: bool, lines: &[Value]) -> String {
    use std::fmt::Write;
    let mut header: Vec<String> = vec!["index".into()];
    header.extend(axes.iter().map(|a| a.name.clone()));
    header.extend(["solved", "cost", "cost_is_relative"].map(String::from));
    header.extend((0..dim).map(|i| format!("end_{i}")));
    header.extend(["minimum", "second_order", "error_kind", "error"].map(String::from));
    let mut out = String::new();
    if with_header {
        out.push_str(&header.join(","));
        out.push('\n');
    }
    let quote = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        other => other.to_string(),
    };
    for l in lines {
        let mut row = vec![quote(&l["index"])];
        row.extend(axes.iter().map(|a| quote(&l["params"][&a.name])));
        for key in ["solved", "cost", "cost_is_relative"] {
            row.push(quote(&l[key]));
        }
        for i in 0..dim {
            row.push(quote(&l["end"][i]));
        }
        for key in ["minimum", "second_order", "error_kind", "error"] {
            row.push(quote(&l[key]));
        }
        let _ = writeln!(out, "{}", row.join(","));
    }
    out
}
