//! `lossnav sweep`: solve a spec over a grid of parameters, in parallel, one JSON line per
//! grid point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

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
    parse_axis_parts(name.trim(), values).map_err(|e| bad(&e.to_string()))
}

/// An axis from its name and values: the name `gamma`, `eta`, `k`, `horizon`, `theta0.I`,
/// `params.NAME` or any numeric field of the spec by its path (`metric.diag[1]`,
/// `drift.linear[0][1]`; checked against the spec when the grid is built), the values finite,
/// at least one and at most [`MAX_GRID_POINTS`].
pub fn parse_axis_parts(name: &str, values: Vec<f64>) -> Result<Axis, CliError> {
    if name.trim().is_empty() {
        return Err(CliError::Usage(
            "an axis needs a name: gamma, eta, k, horizon, theta0.I, params.NAME or a field's \
             path such as metric.diag[0]"
                .into(),
        ));
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
        // The error of `lo + (hi − lo)·i/(n − 1)` is a few units in the last place of the
        // range's scale; the shortest decimal within that is the value the user meant
        // (0.45, not 0.44999999999999996), and is the one solved and printed.
        let scale = lo.abs().max(hi.abs());
        (0..n)
            .map(|i| {
                if n == 1 {
                    lo
                } else if i + 1 == n {
                    hi
                } else {
                    shortest_near(lo + (hi - lo) * i as f64 / (n - 1) as f64, scale)
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

/// The decimal with the fewest significant digits within 4 ε·`scale` of `v` (`v` itself when
/// none is shorter).
fn shortest_near(v: f64, scale: f64) -> f64 {
    let tol = 4.0 * f64::EPSILON * scale;
    for digits in 1..17 {
        if let Ok(w) = format!("{:.*e}", digits - 1, v).parse::<f64>() {
            if (w - v).abs() <= tol {
                return w;
            }
        }
    }
    v
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
    pub resume: bool,
    pub at: Vec<f64>,
    pub trajectories: bool,
}

/// The journal of a sweep writing to `output`: `OUTPUT.partial`, one JSON line per finished
/// point (after a header line naming the sweep), appended as points finish.
pub fn journal_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

/// Whether a row is a point the budget or an interrupt stopped (not a result: a resumed sweep
/// solves it again).
fn stopped(row: &Value) -> bool {
    row["solved"] == json!(false) && row["error_kind"] == json!("time limit")
}

/// What streams rows in grid order while workers finish them out of order.
struct Stream {
    /// How many of this run's points (in grid order) have been released.
    released: usize,
    /// Finished rows not yet released (`None`: a point an interrupt stopped, released
    /// silently).
    waiting: std::collections::BTreeMap<usize, Option<Value>>,
    /// Every released row of this run, by index.
    rows: std::collections::BTreeMap<usize, Value>,
    /// Standard output is still being read (a reader that stopped ends the sweep).
    printing: bool,
}

pub(super) fn run(args: SweepArgs) -> Result<ExitCode, CliError> {
    use std::io::Write as _;
    if let Some(file) = args.output {
        check_writable(file)?;
    }
    if args.resume && args.output.is_none() {
        return Err(CliError::Usage(
            "--resume continues the journal of a sweep written with -o FILE (FILE.partial): \
             give the same -o"
                .into(),
        ));
    }
    if args.csv && args.trajectories {
        return Err(CliError::Usage(
            "--trajectories adds whole paths to each row, which CSV rows cannot hold: use JSON \
             lines"
                .into(),
        ));
    }
    let path = super::input::label(args.spec);
    let spec = super::input::read_spec(args.spec)?;
    let grid = SweepGrid::new(&path, &spec, args.axes.clone(), args.tol)?
        .with_samples(args.at.clone(), args.trajectories)?;
    let total = grid.len();
    let (lo, hi) = match args.shard {
        Some((i, n)) => ((i - 1) * total / n, i * total / n),
        None => (0, total),
    };
    // What a journal must match to be continued: the same spec, grid, slice and row contents.
    let header = json!({
        "lossnav_sweep_journal": 1,
        "spec": serde_json::to_value(&spec).map_err(|e| CliError::Usage(e.to_string()))?,
        "axes": args.axes.iter().map(|a| json!({"name": a.name, "values": a.values})).collect::<Vec<_>>(),
        "tol": args.tol,
        "points": [lo, hi],
        "at": args.at,
        "trajectories": args.trajectories,
    });
    let mut done = std::collections::BTreeMap::new();
    // A device, FIFO or descriptor path (`-o /dev/stdout`) is written through, not replaced:
    // no journal beside it (`/dev/stdout.partial` would be shared by every such sweep).
    let journalled = args
        .output
        .filter(|file| !super::output::written_through(file));
    if args.resume && journalled.is_none() {
        return Err(CliError::Usage(
            "--resume continues the journal kept beside a regular output file; -o here is a \
             device or pipe, which keeps none"
                .into(),
        ));
    }
    let journal = match journalled {
        Some(file) => {
            let jpath = journal_path(file);
            if jpath.exists() {
                if !args.resume {
                    return Err(CliError::Usage(format!(
                        "{} holds the finished points of an unfinished sweep: --resume \
                         continues it; remove the file to start afresh",
                        jpath.display()
                    )));
                }
                done = read_journal(&jpath, &header, &grid, lo..hi)?;
            }
            // Rewritten whole (a line cut by a kill would glue to the next row), then appended.
            let mut text = serde_json::to_string(&header).expect("JSON values serialise") + "\n";
            for row in done.values() {
                text.push_str(&serde_json::to_string(row).expect("JSON values serialise"));
                text.push('\n');
            }
            write_atomic(&jpath, &text)?;
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(&jpath)
                .map_err(|source| CliError::Io {
                    path: jpath.display().to_string(),
                    source,
                })?;
            Some((jpath, std::sync::Mutex::new(file)))
        }
        None => None,
    };
    let order: Vec<usize> = (lo..hi).filter(|i| !done.contains_key(i)).collect();
    let bar = ProgressBar::new((hi - lo) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} grid points, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done.len() as u64);
    let streaming = args.output.is_none();
    let columns = Columns {
        axes: &args.axes,
        dim: grid.dim(),
        at: &args.at,
    };
    if streaming && args.csv && args.shard.is_none_or(|(i, _)| i == 1) {
        // Shards concatenate to the unsharded output: the header belongs to shard 1 only.
        print(&(columns.header() + "\n"))?;
    }
    let interrupt = crate::atomic::GracefulInterrupt::register();
    let journal_error: std::sync::Mutex<Option<CliError>> = std::sync::Mutex::new(None);
    let any_late = std::sync::atomic::AtomicBool::new(false);
    let stream = std::sync::Mutex::new(Stream {
        released: 0,
        waiting: Default::default(),
        rows: Default::default(),
        printing: true,
    });
    {
        let _cancel = lossnav_solvers::Budget::cancellable(interrupt.flag());
        let on_row = |idx: usize, row: Value| {
            // A row that arrives after the deadline or an interrupt may have been cut short
            // anywhere (its certificate, say): not a result to keep for --resume, and after
            // an interrupt not one to print.
            let late = lossnav_solvers::Budget::expired();
            if late {
                any_late.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let dropped = late && interrupt.interrupted();
            if let Some((jpath, file)) = &journal {
                if !late && !stopped(&row) {
                    let line = serde_json::to_string(&row).expect("JSON values serialise") + "\n";
                    let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(source) = f.write_all(line.as_bytes()) {
                        let mut slot = journal_error.lock().unwrap_or_else(|e| e.into_inner());
                        slot.get_or_insert(CliError::Io {
                            path: jpath.display().to_string(),
                            source,
                        });
                        // Nothing more can be kept: stop as an interrupt would.
                        interrupt
                            .flag()
                            .store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
            let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
            s.waiting.insert(idx, (!dropped).then_some(row));
            while s.released < order.len() {
                let next = order[s.released];
                let Some(row) = s.waiting.remove(&next) else {
                    break;
                };
                s.released += 1;
                if let Some(row) = row {
                    if streaming && s.printing {
                        let text = if args.csv {
                            columns.row(&row)
                        } else {
                            serde_json::to_string(&row).expect("JSON values serialise")
                        };
                        let mut out = std::io::stdout().lock();
                        if out
                            .write_all(text.as_bytes())
                            .and_then(|()| out.write_all(b"\n"))
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            // The reader is gone (`| head`): nothing more to solve for.
                            s.printing = false;
                            interrupt
                                .flag()
                                .store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    s.rows.insert(next, row);
                }
            }
            drop(s);
            bar.inc(1);
        };
        grid.solve_points(&order, args.jobs, &on_row)?;
    }
    // Solving is over: from here an interrupt ends the process at once (the final write to a
    // FIFO without a reader must not outlive Ctrl-C), and one that arrived after the last
    // point finished interrupted nothing.
    let interrupted = interrupt.interrupted()
        && stream
            .lock()
            .map(|s| s.released < order.len() || s.rows.len() < order.len())
            .unwrap_or(true);
    drop(interrupt);
    bar.finish_and_clear();
    if let Some(e) = journal_error
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        return Err(e);
    }
    let stream = stream.into_inner().unwrap_or_else(|e| e.into_inner());
    let reader_gone = !stream.printing;
    let mut rows = done;
    rows.extend(stream.rows);
    if interrupted || reader_gone {
        if reader_gone {
            return Ok(ExitCode::SUCCESS);
        }
        let finished = rows.len();
        match &journal {
            Some((jpath, _)) => eprintln!(
                "sweep interrupted: {finished} of {} points finished, kept in {}; the same \
                 command with --resume finishes the sweep",
                hi - lo,
                jpath.display()
            ),
            None => eprintln!(
                "sweep interrupted: {finished} of {} points finished and printed",
                hi - lo
            ),
        }
        return Ok(ExitCode::from(130));
    }
    let lines: Vec<Value> = rows.into_values().collect();
    if let Some(file) = args.output {
        let mut text = String::new();
        if args.csv {
            if args.shard.is_none_or(|(i, _)| i == 1) {
                text.push_str(&columns.header());
                text.push('\n');
            }
            for line in &lines {
                text.push_str(&columns.row(line));
                text.push('\n');
            }
        } else {
            for line in &lines {
                text.push_str(&serde_json::to_string(line).expect("JSON values serialise"));
                text.push('\n');
            }
        }
        write_atomic(file, &text)?;
        if let Some((jpath, journal_file)) = journal {
            drop(journal_file);
            // Points the budget stopped stay to be solved by --resume; a complete sweep needs
            // no journal.
            if !any_late.load(std::sync::atomic::Ordering::Relaxed) && !lines.iter().any(stopped) {
                let _ = std::fs::remove_file(&jpath);
            } else {
                eprintln!(
                    "sweep: the points the time budget stopped are not in {}; the same command \
                     with --resume solves them",
                    jpath.display()
                );
            }
        }
    }
    let (line, failed) = summary(&lines);
    eprintln!("{line}");
    Ok(if failed > 0 && !args.allow_failures {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The finished rows of a journal: it must belong to this sweep (same header), and each row
/// must be a point of the slice with the grid's parameter values. A last line cut short by a
/// killed run is dropped.
fn read_journal(
    path: &Path,
    header: &Value,
    grid: &SweepGrid,
    range: std::ops::Range<usize>,
) -> Result<std::collections::BTreeMap<usize, Value>, CliError> {
    let bad = |why: String| CliError::Usage(format!("--resume: {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut lines = text.split_inclusive('\n');
    let first: Value = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| bad("not a sweep journal (no header line)".into()))?;
    if &first != header {
        let differ: Vec<&str> = ["spec", "axes", "tol", "points", "at", "trajectories"]
            .into_iter()
            .filter(|k| first.get(*k) != header.get(*k))
            .collect();
        return Err(bad(format!(
            "it belongs to another sweep (its {} differ from this command's); run that \
             command with --resume, or remove the file to start afresh",
            if differ.is_empty() {
                "format".to_string()
            } else {
                differ.join(", ")
            }
        )));
    }
    let mut rows = std::collections::BTreeMap::new();
    for (n, line) in lines.enumerate() {
        // A line without its newline is one a killed run did not finish writing.
        if !line.ends_with('\n') {
            break;
        }
        let row: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("line {}: {e}", n + 2)))?;
        let idx = row["index"]
            .as_u64()
            .map(|i| i as usize)
            .filter(|i| range.contains(i))
            .ok_or_else(|| bad(format!("line {}: not a point of this sweep", n + 2)))?;
        if row["params"] != grid.params(idx) {
            return Err(bad(format!(
                "line {}: point {idx} has other parameter values than this grid's",
                n + 2
            )));
        }
        if !stopped(&row) {
            rows.insert(idx, row);
        }
    }
    Ok(rows)
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

/// The CSV form of sweep rows: `index`, the swept parameters, `solved`, `cost`,
/// `cost_is_relative`, `end_0…end_{dim−1}`, `minimum`, `second_order`, `theta_I_at_T` for each
/// `--at` time, `error_kind`, `error` (quoted).
struct Columns<'a> {
    axes: &'a [Axis],
    dim: usize,
    at: &'a [f64],
}

impl Columns<'_> {
    fn header(&self) -> String {
        let mut header: Vec<String> = vec!["index".into()];
        header.extend(self.axes.iter().map(|a| a.name.clone()));
        header.extend(["solved", "cost", "cost_is_relative"].map(String::from));
        header.extend((0..self.dim).map(|i| format!("end_{i}")));
        header.extend(["minimum", "second_order"].map(String::from));
        for t in self.at {
            header.extend((0..self.dim).map(|i| format!("theta_{i}_at_{t}")));
        }
        header.extend(["error_kind", "error"].map(String::from));
        header.join(",")
    }

    fn row(&self, l: &Value) -> String {
        let mut row = vec![quote(&l["index"])];
        row.extend(self.axes.iter().map(|a| quote(&l["params"][&a.name])));
        for key in ["solved", "cost", "cost_is_relative"] {
            row.push(quote(&l[key]));
        }
        for i in 0..self.dim {
            row.push(quote(&l["end"][i]));
        }
        for key in ["minimum", "second_order"] {
            row.push(quote(&l[key]));
        }
        for j in 0..self.at.len() {
            for i in 0..self.dim {
                row.push(quote(&l["at"]["theta"][j][i]));
            }
        }
        for key in ["error_kind", "error"] {
            row.push(quote(&l[key]));
        }
        row.join(",")
    }
}

/// A CSV cell: empty for null, strings quoted.
fn quote(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        other => other.to_string(),
    }
}
