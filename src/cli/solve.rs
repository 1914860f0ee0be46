//! `lossnav solve`: the optimal trajectory of a spec, as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::output::{compact_pretty, print, write_atomic};
use super::progress::StatusLine;
use super::{CliError, Format, Method, SchemeArg};
use crate::commands::SolveOptions;

/// Arguments of `lossnav solve`.
pub struct SolveArgs<'a> {
    pub spec: &'a Path,
    pub method: Method,
    pub tol: Option<f64>,
    pub intervals: usize,
    pub at: &'a [f64],
    pub output: Option<&'a PathBuf>,
    pub local: bool,
    pub summary: bool,
    pub format: Option<Format>,
    pub max_seconds: Option<f64>,
    pub scheme: SchemeArg,
    pub sensitivities: &'a [String],
}

pub(super) fn run(args: SolveArgs) -> Result<ExitCode, CliError> {
    let path = super::input::label(args.spec);
    let csv = match args.format {
        Some(f) => f == Format::Csv,
        None => args
            .output
            .is_some_and(|o| o.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))),
    };
    if csv && args.summary {
        return Err(CliError::Usage(
            "--summary leaves out the per-node arrays that CSV holds: use one or the other".into(),
        ));
    }
    let emit = |doc: &serde_json::Value, output: Option<&PathBuf>| {
        if csv {
            emit_csv(doc, output)
        } else {
            emit(doc, output)
        }
    };
    let (spec, problem) = super::input::load(args.spec)?;
    let status = Arc::new(StatusLine::new());
    let opts = SolveOptions {
        method: args.method,
        tol: args.tol,
        intervals: args.intervals,
        at: args.at.to_vec(),
        local: args.local,
        max_seconds: args.max_seconds,
        scheme: args.scheme.into(),
        observer: Some(status.clone()),
        sensitivities: args.sensitivities.to_vec(),
    };
    let solved = crate::commands::solve(&path, &spec, &problem, &opts)?;
    drop(status);
    let mut doc = solved.doc;
    if args.summary {
        summarise(&mut doc);
    }
    emit(&doc, args.output)?;
    Ok(if solved.missed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the per-node arrays of a solution document as CSV to `output` (atomically) or
/// standard output.
fn emit_csv(doc: &serde_json::Value, output: Option<&PathBuf>) -> Result<(), CliError> {
    let text = csv_from_doc(doc);
    match output {
        Some(file) => write_atomic(file, &text),
        None => print(&text),
    }
}

/// `#` lines with the scalars, a header, and one row per node: `t, θ_0…, p_0…, loss, kinetic,
/// hamiltonian`. Numbers are written in Rust's shortest round-trip form.
pub(crate) fn csv_from_doc(doc: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for key in [
        "problem",
        "method",
        "status",
        "cost",
        "cost_is_relative",
        "optimality",
    ] {
        if let Some(v) = doc.get(key) {
            let _ = writeln!(out, "# {key}: {v}");
        }
    }
    if let Some(v) = doc.pointer("/second_order/verdict") {
        let _ = writeln!(out, "# second_order: {v}");
    }
    let rows = |key: &str| -> Vec<Vec<f64>> {
        doc.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|r| match r {
                        serde_json::Value::Array(x) => {
                            x.iter().filter_map(|v| v.as_f64()).collect()
                        }
                        v => v.as_f64().into_iter().collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (t, theta, p) = (rows("t"), rows("theta"), rows("p"));
    let (loss, kinetic, ham) = (rows("loss"), rows("kinetic"), rows("hamiltonian"));
    let d = theta.first().map_or(0, Vec::len);
    let mut header = vec!["t".to_string()];
    header.extend((0..d).map(|i| format!("theta_{i}")));
    header.extend((0..d).map(|i| format!("p_{i}")));
    header.extend(["loss", "kinetic", "hamiltonian"].map(String::from));
    let _ = writeln!(out, "{}", header.join(","));
    let cell = |v: Option<&Vec<f64>>, i: usize| {
        // `+ 0.0` turns −0 into 0.
        v.and_then(|r| r.get(i))
            .map_or(String::from("nan"), |x| (x + 0.0).to_string())
    };
    for (n, tn) in t.iter().enumerate() {
        let mut row = vec![cell(Some(tn), 0)];
        row.extend((0..d).map(|i| cell(theta.get(n), i)));
        row.extend((0..d).map(|i| cell(p.get(n), i)));
        row.extend([
            cell(loss.get(n), 0),
            cell(kinetic.get(n), 0),
            cell(ham.get(n), 0),
        ]);
        let _ = writeln!(out, "{}", row.join(","));
    }
    out
}

/// Writes the document to `output` (atomically) or standard output: a summary (no `t` key)
/// compactly, a full solution as before.
fn emit(doc: &serde_json::Value, output: Option<&PathBuf>) -> Result<(), CliError> {
    let text = if doc.get("t").is_none() {
        compact_pretty(doc)
    } else {
        serde_json::to_string_pretty(doc).expect("JSON values serialise")
    };
    match output {
        Some(file) => write_atomic(file, &(text + "\n")),
        None => print(&(text + "\n")),
    }
}

/// Drops the per-node arrays (a summary stays a screenful whatever the mesh).
fn summarise(doc: &mut serde_json::Value) {
    if let Some(map) = doc.as_object_mut() {
        for key in ["t", "theta", "p", "loss", "kinetic", "hamiltonian"] {
            map.shift_remove(key);
        }
        // The sensitivities keep dJ*/dp and the path derivatives' error, not their arrays.
        if let Some(serde_json::Value::Array(list)) = map.get_mut("sensitivities") {
            for entry in list.iter_mut().filter_map(|e| e.as_object_mut()) {
                entry.shift_remove("theta");
                entry.shift_remove("p");
            }
        }
    }
}
