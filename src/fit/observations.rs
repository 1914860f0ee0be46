//! Observed trajectories: times and (some) coordinates of θ, from CSV or JSON.

use std::path::Path;

use crate::cli::CliError;

/// Most observation rows read (each costs an interpolation per model evaluation).
pub const MAX_ROWS: usize = 1_000_000;

/// Observed `(t, θ)` samples; a coordinate may be missing at some or all times.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    /// Observation times, strictly increasing, ≥ 0.
    pub t: Vec<f64>,
    /// `θ_j(t_o)` per time, `None` where not observed; every row has `dim` entries.
    pub theta: Vec<Vec<Option<f64>>>,
    /// Standard deviation of the observation noise, if stated.
    pub sigma: Option<f64>,
}

fn bad(path: &str, message: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("{path}: {message}"))
}

impl Observations {
    /// Reads a CSV (as `lossnav solve -o F.csv` writes: `#` comment lines, a header with `t`
    /// and `theta_0, theta_1, …`; other columns ignored; an empty cell is a coordinate not
    /// observed at that time) or a JSON document `{"t": [...], "theta": [[...], ...],
    /// "sigma": s}` (`null` entries not observed).
    /// Files above [`Observations::MAX_FILE_BYTES`] are refused: a regular file by its size
    /// before it is read, anything else (a pipe) once that much has been read.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        use std::io::Read;
        let label = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| bad(&label, e))?;
        if let Ok(meta) = file.metadata() {
            if meta.is_file() && meta.len() > Self::MAX_FILE_BYTES {
                return Err(bad(
                    &label,
                    format!(
                        "{} bytes, larger than {} MiB of observations",
                        meta.len(),
                        Self::MAX_FILE_BYTES >> 20
                    ),
                ));
            }
        }
        let mut text = String::new();
        file.take(Self::MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| bad(&label, e))?;
        Self::check_size(&label, &text)?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Self::from_text(&label, &text, json)
    }

    /// The largest observation file read: 1 GiB of text (about 40 million numbers).
    pub const MAX_FILE_BYTES: u64 = 1 << 30;

    /// Refuses a text that reached the size limit.
    pub fn check_size(label: &str, text: &str) -> Result<(), CliError> {
        if text.len() as u64 > Self::MAX_FILE_BYTES {
            return Err(bad(
                label,
                format!(
                    "larger than {} MiB of observations",
                    Self::MAX_FILE_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    /// From CSV or JSON text: JSON when `json` or when the text starts with `{`.
    pub fn from_text(label: &str, text: &str, json: bool) -> Result<Self, CliError> {
        if json || text.trim_start().starts_with('{') {
            Self::from_json(label, text)
        } else {
            Self::from_csv(label, text)
        }
    }

    /// From CSV text (see [`Observations::read`]); `label` names it in errors.
    pub fn from_csv(label: &str, text: &str) -> Result<Self, CliError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let (_, header) = lines
            .next()
            .ok_or_else(|| bad(label, "no header line (t, theta_0, …)"))?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let t_col = names
            .iter()
            .position(|n| *n == "t")
            .ok_or_else(|| bad(label, "the header has no column `t`"))?;
        let mut theta_cols: Vec<(usize, usize)> = names
            .iter()
            .enumerate()
            .filter_map(|(c, n)| Some((n.strip_prefix("theta_")?.parse::<usize>().ok()?, c)))
            .collect();
        theta_cols.sort();
        if theta_cols.is_empty() {
            return Err(bad(label, "the header has no column theta_0, theta_1, …"));
        }
        let dim = theta_cols.last().unwrap().0 + 1;
        let mut t = Vec::new();
        let mut theta = Vec::new();
        for (line_no, line) in lines {
            if t.len() >= MAX_ROWS {
                return Err(bad(label, format!("more than {MAX_ROWS} rows")));
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                return Err(bad(
                    label,
                    format!(
                        "line {}: {} cells, the header has {}",
                        line_no + 1,
                        cells.len(),
                        names.len()
                    ),
                ));
            }
            let number = |c: usize| -> Result<Option<f64>, CliError> {
                if cells[c].is_empty() {
                    return Ok(None);
                }
                let v: f64 = cells[c].parse().map_err(|_| {
                    bad(
                        label,
                        format!("line {}: {:?} is not a number", line_no + 1, cells[c]),
                    )
                })?;
                if !v.is_finite() {
                    return Err(bad(
                        label,
                        format!(
                            "line {}: {} is not finite (leave the cell empty for a \
                             coordinate not observed)",
                            line_no + 1,
                            cells[c]
                        ),
                    ));
                }
                Ok(Some(v))
            };
            let time = number(t_col)?
                .ok_or_else(|| bad(label, format!("line {}: no time", line_no + 1)))?;
            let mut row = vec![None; dim];
            for &(j, c) in &theta_cols {
                row[j] = number(c)?;
            }
            t.push(time);
            theta.push(row);
        }
        let obs = Self {
            t,
            theta,
            sigma: None,
        };
        obs.check_times(label)?;
        Ok(obs)
    }

    /// From a JSON document (see [`Observations::read`]).
    pub fn from_json(label: &str, text: &str) -> Result<Self, CliError> {
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(label, e))?;
        let t: Vec<f64> = doc["t"]
            .as_array()
            .ok_or_else(|| bad(label, "\"t\": a list of times"))?
            .iter()
            .map(|v| v.as_f64().ok_or_else(|| bad(label, "\"t\": numbers only")))
            .collect::<Result<_, _>>()?;
        if t.len() > MAX_ROWS {
            return Err(bad(label, format!("more than {MAX_ROWS} times")));
        }
        let rows = doc["theta"]
            .as_array()
            .ok_or_else(|| bad(label, "\"theta\": a list of rows, one per time"))?;
        if rows.len() != t.len() {
            return Err(bad(
                label,
                format!("{} times but {} rows of theta", t.len(), rows.len()),
            ));
        }
        let mut theta = Vec::with_capacity(rows.len());
        let mut dim = None;
        for (o, row) in rows.iter().enumerate() {
            let row = row
                .as_array()
                .ok_or_else(|| bad(label, format!("theta[{o}]: a list")))?;
            if *dim.get_or_insert(row.len()) != row.len() || row.is_empty() {
                return Err(bad(
                    label,
                    format!("theta[{o}]: every row has the same, non-zero length"),
                ));
            }
            theta.push(
                row.iter()
                    .map(|v| match v {
                        serde_json::Value::Null => Ok(None),
                        v => v
                            .as_f64()
                            .filter(|x| x.is_finite())
                            .map(Some)
                            .ok_or_else(|| {
                                bad(label, format!("theta[{o}]: finite numbers or null"))
                            }),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        let sigma = match &doc["sigma"] {
            serde_json::Value::Null => None,
            v => Some(
                v.as_f64()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| bad(label, "\"sigma\": a number > 0"))?,
            ),
        };
        let obs = Self { t, theta, sigma };
        obs.check_times(label)?;
        Ok(obs)
    }

    /// Checks observations built in code: rows of equal, non-zero length, finite values,
    /// strictly increasing finite times ≥ 0 (what [`Observations::read`] checks).
    pub fn check(&self, label: &str) -> Result<(), CliError> {
        if self.theta.len() != self.t.len() {
            return Err(bad(
                label,
                format!(
                    "{} times but {} rows of theta",
                    self.t.len(),
                    self.theta.len()
                ),
            ));
        }
        let d = self.dim();
        if d == 0 || self.theta.iter().any(|r| r.len() != d) {
            return Err(bad(
                label,
                "every row of theta has the same, non-zero length",
            ));
        }
        if self
            .theta
            .iter()
            .flatten()
            .flatten()
            .any(|v| !v.is_finite())
        {
            return Err(bad(label, "observed values must be finite"));
        }
        if self.t.len() > MAX_ROWS {
            return Err(bad(label, format!("more than {MAX_ROWS} rows")));
        }
        self.check_times(label)
    }

    fn check_times(&self, label: &str) -> Result<(), CliError> {
        if self.t.is_empty() {
            return Err(bad(label, "no observations"));
        }
        for (o, w) in self.t.windows(2).enumerate() {
            // NaN fails too (rejected when read; kept as a guard).
            if w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater) {
                return Err(bad(
                    label,
                    format!(
                        "times must increase strictly (row {}: {} after {})",
                        o + 1,
                        w[1],
                        w[0]
                    ),
                ));
            }
        }
        if !(self.t[0] >= 0.0 && self.t.iter().all(|t| t.is_finite())) {
            return Err(bad(label, "times must be finite and ≥ 0"));
        }
        Ok(())
    }

    /// The number of coordinates per row.
    pub fn dim(&self) -> usize {
        self.theta.first().map_or(0, Vec::len)
    }

    /// The number of observed scalars.
    pub fn count(&self) -> usize {
        self.theta.iter().flatten().filter(|v| v.is_some()).count()
    }
}

/// Heavy-ball steps on the loss of `problem` from rest (`θ_{−1} = θ_0`):
/// `θ_{n+1} = θ_n − c∇L(θ_n, n) + β(θ_n − θ_{n−1})`, one step per unit of time; rows
/// `n = skip, …, skip + steps` at times `t = n − skip` (every coordinate observed).
pub fn heavy_ball(
    problem: &lossnav_problems::Problem,
    lr: f64,
    beta: f64,
    skip: usize,
    steps: usize,
) -> Result<Observations, CliError> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(CliError::Usage(format!("--lr {lr}: a number > 0")));
    }
    if !(beta.is_finite() && (0.0..1.0).contains(&beta)) {
        return Err(CliError::Usage(format!("--beta {beta}: in [0, 1)")));
    }
    let mut previous = problem.theta0().as_slice().to_vec();
    run_rule(problem, "heavy ball", skip, steps, |theta, g, _| {
        for j in 0..theta.len() {
            let next = theta[j] - lr * g[j] + beta * (theta[j] - previous[j]);
            previous[j] = theta[j];
            theta[j] = next;
        }
    })
}

/// Adam's second-moment decay β2 and ε in [`adam`] (PyTorch's and the paper's defaults).
pub const ADAM_BETA2: f64 = 0.999;
/// See [`ADAM_BETA2`].
pub const ADAM_EPS: f64 = 1e-8;

/// Adam's steps (Kingma & Ba, with bias correction; β2 = [`ADAM_BETA2`], ε = [`ADAM_EPS`]) on
/// the loss of `problem` from `θ0` with zero moments: `m ← β1 m + (1 − β1) g`,
/// `v ← β2 v + (1 − β2) g²`, `θ ← θ − c m̂ / (√v̂ + ε)` with `m̂ = m/(1 − β1ⁿ)`,
/// `v̂ = v/(1 − β2ⁿ)`; one step per unit of time, rows as [`heavy_ball`]'s.
pub fn adam(
    problem: &lossnav_problems::Problem,
    lr: f64,
    beta1: f64,
    skip: usize,
    steps: usize,
) -> Result<Observations, CliError> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(CliError::Usage(format!("--lr {lr}: a number > 0")));
    }
    if !(beta1.is_finite() && (0.0..1.0).contains(&beta1)) {
        return Err(CliError::Usage(format!("--beta {beta1}: in [0, 1)")));
    }
    let d = problem.dim();
    let (mut m, mut v) = (vec![0.0; d], vec![0.0; d]);
    run_rule(problem, "Adam", skip, steps, |theta, g, n| {
        // Step n + 1 (1-based, as the bias corrections count).
        let k = (n + 1) as i32;
        let (c1, c2) = (1.0 - beta1.powi(k), 1.0 - ADAM_BETA2.powi(k));
        for j in 0..d {
            m[j] = beta1 * m[j] + (1.0 - beta1) * g[j];
            v[j] = ADAM_BETA2 * v[j] + (1.0 - ADAM_BETA2) * g[j] * g[j];
            theta[j] -= lr * (m[j] / c1) / ((v[j] / c2).sqrt() + ADAM_EPS);
        }
    })
}

/// Runs `step(θ, ∇L(θ, n), n)` (which updates θ in place) for `skip + steps` steps from the
/// problem's θ0, recording θ at steps `skip …`; refuses a step that leaves θ not finite.
fn run_rule(
    problem: &lossnav_problems::Problem,
    name: &str,
    skip: usize,
    steps: usize,
    mut step: impl FnMut(&mut [f64], &[f64], usize),
) -> Result<Observations, CliError> {
    let total = skip
        .checked_add(steps)
        .filter(|&n| n <= MAX_ROWS && steps >= 1)
        .ok_or_else(|| CliError::Usage(format!("--steps: 1 to {MAX_ROWS} rows")))?;
    let loss = problem.lagrangian().loss();
    let mut theta = problem.theta0().as_slice().to_vec();
    let mut t = Vec::with_capacity(steps + 1);
    let mut rows = Vec::with_capacity(steps + 1);
    for n in 0..=total {
        if n >= skip {
            t.push((n - skip) as f64);
            rows.push(theta.iter().copied().map(Some).collect());
        }
        if n == total {
            break;
        }
        let g = lossnav_problems::gradient_vec(loss, &theta, n as f64);
        step(&mut theta, g.as_slice(), n);
        if !theta.iter().all(|v| v.is_finite()) {
            return Err(CliError::Usage(format!(
                "{name} diverges on this loss (step {n}): lower --lr"
            )));
        }
    }
    Ok(Observations {
        t,
        theta: rows,
        sigma: None,
    })
}
