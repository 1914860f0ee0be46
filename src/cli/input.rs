//! Reading what the user typed: spec files (`-` is standard input, for every command) and time
//! lists (`--at 0,1,2` or `--at 0:4:401`).

use std::path::Path;
use std::sync::OnceLock;

use lossnav_problems::{Problem, Spec};

use super::CliError;

/// The name a spec argument goes by in messages: its path, or "standard input" for `-`.
pub fn label(path: &Path) -> String {
    if is_stdin(path) {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

/// Whether a path argument means standard input (`-`).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The spec at `path`, or read from standard input when `path` is `-` (read once, however often
/// a command asks: `simulate` looks at the spec before choosing its route).
pub fn read_spec(path: &Path) -> Result<Spec, CliError> {
    let error = |source| CliError::Spec {
        path: label(path),
        source,
    };
    if !is_stdin(path) {
        return Spec::from_file(path).map_err(error);
    }
    let text = stdin_text(Spec::MAX_FILE_BYTES, "spec")?;
    Spec::from_json(text).map_err(error)
}

/// Standard input as text, read once (later calls get the same text, read under the first
/// call's limit; a command reads one thing from it) through `limit` bytes: a producer that
/// never stops gives an error, as a file that large would. `what` names it in errors ("spec",
/// "observations").
pub fn stdin_text(limit: u64, what: &str) -> Result<&'static str, CliError> {
    static STDIN: OnceLock<Result<String, String>> = OnceLock::new();
    let text = STDIN.get_or_init(|| {
        use std::io::Read;
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        if text.len() as u64 > limit {
            return Err(format!("larger than {} MiB", limit >> 20));
        }
        Ok(text)
    });
    match text {
        Ok(text) if text.trim().is_empty() => Err(CliError::Usage(format!(
            "the {what} `-` is read from standard input, which was empty (pipe it in: \
             `cat FILE | lossnav …`)"
        ))),
        Ok(text) => Ok(text),
        Err(why) => Err(CliError::Usage(format!(
            "cannot read the {what} from standard input: {why}"
        ))),
    }
}

/// The spec at `path` (or standard input) and the problem it states.
pub fn load(path: &Path) -> Result<(Spec, Problem), CliError> {
    let spec = read_spec(path)?;
    let problem = spec.to_problem().map_err(|source| CliError::Spec {
        path: label(path),
        source,
    })?;
    Ok((spec, problem))
}

/// Times given to `--at`: comma-separated numbers, `LO:HI:N` (N equally spaced, ends included),
/// or both mixed (`0,0.5,1:2:3`).
#[derive(Debug, Clone, PartialEq)]
pub struct Times(pub Vec<f64>);

/// Most times one `--at` may expand to: a sample per time is a few numbers per dimension in the
/// document.
pub const MAX_TIMES: usize = 1_000_000;

/// Parses a `--at` value ([`Times`]).
pub fn parse_times(text: &str) -> Result<Times, String> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.contains(':') {
            let values = super::sweep::parse_values(item).map_err(|why| {
                format!("{item:?}: {why} (times are T1,T2,… or LO:HI:N or both, comma separated)")
            })?;
            out.extend(values);
        } else {
            let v: f64 = item.parse().map_err(|_| {
                format!("{item:?} is not a time (times are T1,T2,… or LO:HI:N, comma separated)")
            })?;
            if !v.is_finite() {
                return Err(format!("{item:?}: times must be finite"));
            }
            out.push(v);
        }
        if out.len() > MAX_TIMES {
            return Err(format!("more than {MAX_TIMES} times"));
        }
    }
    Ok(Times(out))
}

/// All the `--at` values of a command line, in order.
pub fn flatten(times: &[Times]) -> Vec<f64> {
    times.iter().flat_map(|t| t.0.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_mix_lists_and_ranges() {
        assert_eq!(parse_times("0,1").unwrap().0, vec![0.0, 1.0]);
        assert_eq!(parse_times("0:1:3").unwrap().0, vec![0.0, 0.5, 1.0]);
        assert_eq!(
            parse_times("-1, 0:1:3").unwrap().0,
            vec![-1.0, 0.0, 0.5, 1.0]
        );
        assert!(parse_times("0:1").is_err());
        assert!(parse_times("x").is_err());
        assert!(parse_times("inf").is_err());
        assert!(parse_times("0:1:2000000").is_err());
    }
}
