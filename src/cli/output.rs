//! Writing results: JSON rendering of solutions and atomic file output.

use std::io::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use lossnav_solvers::{SecondOrder, Solution};

use super::CliError;

/// Writes `text` to `path` atomically: a temporary file in the same directory, flushed and
/// synced, then renamed over the target, so an interrupted run never leaves half a result.
///
/// A symbolic link is followed (its target is replaced, the link stays) and an existing file
/// keeps its permissions. A device or FIFO (`-o /dev/stdout`, a named pipe) is written
/// through, since renaming over it would replace the device with a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    let io = |source: std::io::Error| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    // Through any links, as the kernel resolves them (`/dev/stdout` ends at a pipe). A path
    // into the process's open files (`/dev/stdout` redirected to a file, `/dev/fd/3`) is
    // written through too: replacing the file behind it would discard what the shell's
    // redirection (`>> log`) means.
    let chain = link_chain(path).map_err(io)?;
    let through_descriptor = chain.iter().any(|p| {
        let text = p.to_string_lossy();
        text.starts_with("/dev/") || text.starts_with("/proc/")
    });
    let existing = std::fs::metadata(path).ok();
    if let Some(meta) = &existing {
        if (!meta.is_file() && !meta.is_dir()) || through_descriptor {
            // Appending: what the shell opened with `>` is already empty, and `>>` must keep
            // what is there.
            let result = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            return result.map_err(io);
        }
    }
    let target = &chain[chain.len() - 1];
    let tmp = crate::atomic::TempPath::beside(target, false).map_err(io)?;
    let result = (|| {
        let mut f = std::fs::File::create(tmp.path())?;
        f.write_all(text.as_bytes())?;
        if let Some(meta) = &existing {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()?;
        tmp.persist()
    })();
    result.map_err(io)
}

/// Whether [`write_atomic`] writes `path` through (a device, FIFO or a path into the process's
/// descriptors, such as `/dev/stdout`) instead of replacing it.
pub fn written_through(path: &Path) -> bool {
    let through_descriptor = link_chain(path).is_ok_and(|chain| {
        chain.iter().any(|p| {
            let text = p.to_string_lossy();
            text.starts_with("/dev/") || text.starts_with("/proc/")
        })
    });
    through_descriptor || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Checks, before any work, that `path` can be written: an existing file (or device) opens for
/// appending (nothing is changed), a new file's directory takes a probe file. Commands that
/// compute for a long time call this first, so `-o /no/such/dir/x` fails at once.
pub fn check_writable(path: &Path) -> Result<(), CliError> {
    let io = |source: std::io::Error| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Ok(meta) = std::fs::metadata(path) {
        // Opening a FIFO to probe it would block until a reader comes, or hand the reader an
        // end of file before any output: a FIFO is checked when written.
        #[cfg(unix)]
        if std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
            return Ok(());
        }
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(io);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("{} is not a file path", path.display())))?;
    let probe = dir.join(format!(
        ".{}.{}.probe",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::File::create(&probe).map_err(io)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// `path` and each path its symbolic links lead to, in order; the last is the file they name
/// (which need not exist yet).
fn link_chain(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut chain = vec![path.to_path_buf()];
    // A bound on the chain, as the kernel has (ELOOP), against link cycles.
    for _ in 0..40 {
        let current = &chain[chain.len() - 1];
        match std::fs::symlink_metadata(current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(current)?;
                let next = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
                chain.push(next);
            }
            _ => return Ok(chain),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Writes `text` to standard output. A reader that stops early (`lossnav solve … | head`)
/// closes the pipe; that ends the output quietly, as with other command-line tools, instead of
/// being an error.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|source| CliError::Io {
            path: "standard output".into(),
            source,
        }),
    }
}

/// `doc` with its verdict first: `status` (one line saying what was verified), then `cost`
/// and `optimality` where present, then the rest in the order written. Every document the
/// command line prints goes through here, so its first line answers "can I trust this?".
pub fn lead(doc: Value) -> Value {
    match doc {
        Value::Object(mut map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for key in ["status", "cost", "optimality"] {
                if let Some(v) = map.shift_remove(key) {
                    out.insert(key.to_string(), v);
                }
            }
            out.extend(map);
            Value::Object(out)
        }
        other => other,
    }
}

/// The second-order check as JSON: `{"checked": true, "verdict": "minimum", ...}` or
/// `{"checked": false, "reason": ...}`.
pub fn second_order_json(so: &SecondOrder) -> Value {
    so.to_json()
}

/// The JSON document of a solution, with the interpolant sampled at `at`.
pub fn solution_json(name: &str, sol: &Solution, at: &[f64]) -> Value {
    let samples: Vec<(Vec<f64>, Vec<f64>)> = at.iter().map(|&t| sol.eval(t)).collect();
    let mut doc = sol.to_json();
    doc["problem"] = json!(name);
    doc["at"] = json!({
        "t": at,
        "theta": samples.iter().map(|s| &s.0).collect::<Vec<_>>(),
        "p": samples.iter().map(|s| &s.1).collect::<Vec<_>>(),
    });
    doc
}

/// JSON with objects indented and arrays written on one line (a matrix too): a summary that
/// fits a screen. Still valid JSON for any reader.
pub fn compact_pretty(value: &Value) -> String {
    pretty(value, false)
}

/// [`compact_pretty`] with matrices (arrays of arrays) written one row per line: `rule`'s
/// Riccati matrix, policy and rates.
pub fn matrix_pretty(value: &Value) -> String {
    pretty(value, true)
}

fn pretty(value: &Value, rows: bool) -> String {
    fn inline(v: &Value) -> String {
        serde_json::to_string(v).expect("JSON values serialise")
    }
    fn write(v: &Value, indent: usize, rows: bool, out: &mut String) {
        let pad = "  ".repeat(indent + 1);
        match v {
            Value::Object(map) if !map.is_empty() => {
                out.push_str("{\n");
                let n = map.len();
                for (i, (k, x)) in map.iter().enumerate() {
                    out.push_str(&pad);
                    out.push_str(&inline(&Value::String(k.clone())));
                    out.push_str(": ");
                    write(x, indent + 1, rows, out);
                    out.push_str(if i + 1 < n { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
            // Arrays of objects (the extremals) get one object per line (and with `rows`,
            // matrices one row per line); arrays of numbers stay on one line.
            Value::Array(items)
                if items.iter().any(Value::is_object)
                    || (rows && !items.is_empty() && items.iter().all(Value::is_array)) =>
            {
                out.push_str("[\n");
                for (i, x) in items.iter().enumerate() {
                    out.push_str(&pad);
                    out.push_str(&inline(x));
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(indent));
                out.push(']');
            }
            other => out.push_str(&inline(other)),
        }
    }
    let mut out = String::new();
    write(value, 0, rows, &mut out);
    out
}

/// The rule the optimal trajectory implies at the `--at` times: the velocity θ̇, the gradient
/// ∇L, the angle between θ̇ and −∇L (0° is gradient descent's direction) and the effective
/// rate |θ̇|/|∇L|.
pub fn implied_rule_json(
    problem: &lossnav_problems::Problem,
    sol: &Solution,
    at: &[f64],
) -> serde_json::Value {
    let lag = problem.lagrangian();
    let d = problem.dim();
    let mut velocity = Vec::with_capacity(at.len());
    let mut gradient = Vec::with_capacity(at.len());
    let mut angle = Vec::with_capacity(at.len());
    let mut rate = Vec::with_capacity(at.len());
    for &t in at {
        let (theta, p) = sol.eval(t);
        let mut v = vec![0.0; d];
        lag.velocity(&theta, &p, t, &mut v);
        let mut g = vec![0.0; d];
        lag.loss().gradient(&theta, t, &mut g);
        let (nv, ng) = (norm(&v), norm(&g));
        let cos = -v.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() / (nv * ng);
        // Undefined at rest or at a stationary point of L: null in the JSON.
        angle.push((nv > 0.0 && ng > 0.0).then(|| cos.clamp(-1.0, 1.0).acos().to_degrees()));
        rate.push((ng > 0.0).then(|| nv / ng));
        velocity.push(v);
        gradient.push(g);
    }
    json!({
        "theta_dot": velocity,
        "grad_loss": gradient,
        "angle_to_descent_deg": angle,
        "effective_rate": rate,
    })
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}
