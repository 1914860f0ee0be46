//! The inverse question (docs/theory.md §7): under what assumptions is an observed
//! trajectory optimal? Interval coverage of `fit` under noise, and heavy-ball momentum.

use lossnav_problems::Spec;

use super::{measurement, Claim, Measurement, Unit};
use crate::fit::{fit, heavy_ball, FitOptions, Free, Observations};

pub(super) const FIT_INTERVAL_COVERAGE: Claim = Claim {
    id: "fit-interval-coverage",
    paper: "abstract (which assumptions make a rule optimal); docs/theory.md §7",
    statement: "Fitting γ and k to noisy observations of an optimal trajectory, the 95 % intervals from the Gauss–Newton matrix cover the true values at their stated rate",
    closed_form: "θ_i(t) = e^{−r_i t}, r_i = √(γ²/4 + ηk h_i) − γ/2 (h = 1, 4; γ = k = η = 1); intervals p ± 1.96 SE",
    procedure: "200 replications (seed 0x5eed1234abcdef01) of 30 observations with Gaussian noise σ = 0.01 (stated), each fitted by `fit` (one start); the fraction of intervals containing the truth, per parameter",
    tolerance: "0: the error counts parameters whose coverage is outside 90–98 % (the binomial standard deviation of a 95 % rate over 200 replications is 1.5 %, the band about three of them)",
    check: fit_interval_coverage,
};

fn fit_interval_coverage() -> Result<Measurement, String> {
    fit_interval_coverage_with(1.96)
}

/// [`FIT_INTERVAL_COVERAGE`] with intervals of `z` standard errors (1.96 for 95 %; a wrong
/// `z` must make it fail).
pub fn fit_interval_coverage_with(z: f64) -> Result<Measurement, String> {
    let truth = Spec::from_json(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "gamma": 1.0, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    )
    .map_err(|e| e.to_string())?;
    let sigma = 0.01;
    // The exact optimal path at 30 times in (0, 6].
    let t: Vec<f64> = (1..=30).map(|i| 0.2 * i as f64).collect();
    let r = |h: f64| (0.25_f64 + h).sqrt() - 0.5;
    let clean: Vec<Vec<f64>> = t
        .iter()
        .map(|&t| vec![(-r(1.0) * t).exp(), (-r(4.0) * t).exp()])
        .collect();
    let free = [
        Free::parse("gamma").map_err(|e| e.to_string())?,
        Free::parse("k").map_err(|e| e.to_string())?,
    ];
    let opts = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let replications = 200;
    let mut covered = [0usize; 2];
    let mut state = 0x5eed_1234_abcd_ef01_u64;
    let mut normal = || {
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (uniform(), uniform());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    };
    for _ in 0..replications {
        let obs = Observations {
            t: t.clone(),
            theta: clean
                .iter()
                .map(|row| row.iter().map(|v| Some(v + sigma * normal())).collect())
                .collect(),
            sigma: Some(sigma),
        };
        let report = fit("coverage", &truth, &obs, &free, &opts).map_err(|e| e.to_string())?;
        for (k, p) in report.doc["parameters"]
            .as_array()
            .ok_or("no parameters")?
            .iter()
            .enumerate()
        {
            let value = p["value"].as_f64().ok_or("no value")?;
            let se = p["standard_error"].as_f64().ok_or("no standard error")?;
            if (value - 1.0).abs() <= z * se {
                covered[k] += 1;
            }
        }
    }
    let rates = covered.map(|c| c as f64 / replications as f64);
    let outside = rates.iter().filter(|r| !(0.90..=0.98).contains(*r)).count();
    measurement(
        outside as f64,
        0.0,
        Unit::Failures(2),
        format!(
            "{z}·SE intervals cover γ in {} and k in {} of {replications} replications \
             ({:.1} %, {:.1} %)",
            covered[0],
            covered[1],
            100.0 * rates[0],
            100.0 * rates[1]
        ),
    )
}

pub(super) const HEAVY_BALL: Claim = Claim {
    id: "heavy-ball-optimality",
    paper: "abstract (is momentum optimal?); docs/theory.md §7",
    statement: "Heavy ball from rest is optimal under no assumptions of the family on a 1-D quadratic (two decaying modes; optimal paths have one); after its fast mode has decayed it is, and the fit recovers the slow mode's rate −ln z_s, not the folklore c·h/(1 − β)",
    closed_form: "z² − (1 + β − ch) z + β = 0, slow root z_s; the optimal rate √(γ²/4 + ηkh) − γ/2 = −ln z_s",
    procedure: "heavy ball (c = 0.02, β = 0.5, h = 1) from θ0 = 1; `fit` of θ0, k and γ to steps 40–190 (the fast mode below 1e-12), and of k and γ to steps 0–150 with σ = 1e-6 stated",
    tolerance: "1e-6 relative on the fitted rate (noise-free data, solves at tol 1e-10); the fit from rest must report a misfit larger than the noise explains (otherwise the error is 1)",
    check: heavy_ball_optimality,
};

fn heavy_ball_optimality() -> Result<Measurement, String> {
    heavy_ball_with(|c, beta, h| {
        let b = 1.0 + beta - c * h;
        let z_slow = (b + (b * b - 4.0 * beta).sqrt()) / 2.0;
        -z_slow.ln()
    })
}

/// [`HEAVY_BALL`] against the rate `predicted(c, β, h)` (the slow mode's `−ln z_s`; the
/// first-order `c·h/(1 − β)` must make it fail).
pub fn heavy_ball_with(predicted: fn(f64, f64, f64) -> f64) -> Result<Measurement, String> {
    let (c, beta, h) = (0.02, 0.5, 1.0);
    let rest = Spec::from_json(
        r#"{"loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
            "k": 2.0, "gamma": 0.5, "theta0": [1.0], "horizon": "infinite"}"#,
    )
    .map_err(|e| e.to_string())?;
    let problem = rest.to_problem().map_err(|e| e.to_string())?;
    let parse = |n: &str| Free::parse(n).map_err(|e| e.to_string());
    // The tail: from step 40 on, where the fast mode (z_f ≈ 0.52) is below 1e-12.
    let tail = heavy_ball(&problem, c, beta, 40, 150).map_err(|e| e.to_string())?;
    let start = tail.theta[0][0].ok_or("no start")?;
    let mut spec = rest.clone();
    spec.theta0 = vec![1.1 * start];
    let free = [parse("theta0[0]")?, parse("k")?, parse("gamma")?];
    // One start each: the valley of (k, γ) with the same rate is followed alike from any.
    let one = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let report = fit("heavy ball tail", &spec, &tail, &free, &one).map_err(|e| e.to_string())?;
    let value = |name: &str| -> Result<f64, String> {
        report.doc["parameters"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name))
            .and_then(|p| p["value"].as_f64())
            .ok_or_else(|| format!("no fitted {name}"))
    };
    let (k, gamma) = (value("k")?, value("gamma")?);
    let rate = (gamma * gamma / 4.0 + k * h).sqrt() - gamma / 2.0;
    let want = predicted(c, beta, h);
    let rate_error = (rate / want - 1.0).abs();
    // From rest: two modes, so no member of the family fits within the noise.
    let mut from_rest = heavy_ball(&problem, c, beta, 0, 150).map_err(|e| e.to_string())?;
    from_rest.sigma = Some(1e-6);
    let report_rest = fit(
        "heavy ball from rest",
        &rest,
        &from_rest,
        &[parse("k")?, parse("gamma")?],
        &one,
    )
    .map_err(|e| e.to_string())?;
    let z = report_rest.doc["goodness_of_fit"]["z"]
        .as_f64()
        .ok_or("no goodness of fit")?;
    let rest_fails = if z > 3.0 { 0.0 } else { 1.0 };
    measurement(
        rate_error.max(rest_fails),
        1e-6,
        Unit::Other("relative rate error (∞ if rest fits)"),
        format!(
            "tail: fitted rate {rate:.10} (k = {k:.6}, γ = {gamma:.6}) against {want:.10} \
             (c·h/(1 − β) = {:.6}); from rest: χ² z-score {z:.3e} (misfit beyond σ = 1e-6)",
            c * h / (1.0 - beta)
        ),
    )
}
