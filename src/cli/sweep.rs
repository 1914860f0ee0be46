//! `lossnav sweep`: solve a spec over a grid of parameters, in parallel, one JSON line per
//! grid point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use lossnav_problems::Spec;

use crate::commands::sweep::SweepGrid;
pub use crate::commands::sweep::{grid_size, Axis, MAX_GRID_POINTS};

use super::output::{check_writable, print, write_atomic};
use super::CliError;

/// Parses `name=lo:hi:n` (n evenly spaced values, ends included) or `name=a,b,c`.
pub fn parse_axis(text: &str) -> Result<Axis, CliError> {
    let bad = |why: &str| CliError::Usage(format!("--set {text}: {why}"));
    let (name, spec) = text
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=LO:HI:N or NAME=A,B,C"))?;
    let values = parse_values(spec).map_err(|why| bad(&why))?;
    parse_axis_parts(name, values)
        .map_err(|_| bad("NAME is one of gamma, eta, k, horizon, theta0.I, params.NAME"))
}

/// An axis from its name and values: the name one of `gamma`, `eta`, `k`, `horizon`,
/// `theta0.I`, `params.NAME`, the values finite, at least one and at most
/// [`MAX_GRID_POINTS`].
pub fn parse_axis_parts(name: &str, values: Vec<f64>) -> Result<Axis, CliError> {
    let known = matches!(name, "gamma" | "eta" | "k" | "horizon")
        || name
            .strip_prefix("theta0.")
            .is_some_and(|i| i.parse::<usize>().is_ok())
        || name.starts_with("params.");
    if !known {
        return Err(CliError::Usage(format!(
            "axis {name:?}: the name is one of gamma, eta, k, horizon, theta0.I, params.NAME"
        )));
    }
    if values.is_empty() || values.len() > MAX_GRID_POINTS {
        return Err(CliError::Usage(format!(
            "axis {name:?}: between 1 and {MAX_GRID_POINTS} values, not {}",
            values.len()
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(CliError::Usage(format!(
            "axis {name:?}: values must be finite"
        )));
    }
    Ok(Axis {
        name: name.to_string(),
        values,
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
    let grid = SweepGrid::new(&path, &spec, args.axes.clone(), args.tol)?;
    let total = grid.len();
    let (lo, hi) = match args.shard {
        Some((i, n)) => ((i - 1) * total / n, i * total / n),
        None => (0, total),
    };
    let bar = ProgressBar::new((hi - lo) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} grid points, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let lines = grid.rows(lo..hi, args.jobs, &|| bar.inc(1))?;
    bar.finish_and_clear();
    let text = if args.csv {
        // Shards concatenate to the unsharded output: the header belongs to shard 1 only.
        let header = args.shard.is_none_or(|(i, _)| i == 1);
        csv_from_lines(&args.axes, grid.dim(), header, &lines)
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
