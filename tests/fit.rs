//! `fit`: parameters recovered from noise-free trajectories of five problems, 95 % intervals
//! that cover the truth at their stated rate under noise, the gradient-flow limit reported as
//! the one combination it identifies, and clean failures on bad input.

mod common;

use common::{assert_clean_failure, lossnav};
use lossnav::fit::{fit, FitOptions, Free, Observations};
use lossnav::problems::{Spec, SpecPath};
use lossnav::solvers::Bvp;

fn spec_of(text: &str) -> Spec {
    Spec::from_json(text).unwrap()
}

/// The optimal trajectory of `spec` sampled at `n` times in (0, `until`] (every coordinate),
/// from a solve at tol 1e-11.
fn observe(spec: &Spec, n: usize, until: f64) -> Observations {
    let sol = Bvp::default()
        .with_tol(1e-11)
        .solve(&spec.to_problem().unwrap())
        .unwrap();
    let t: Vec<f64> = (1..=n).map(|i| until * i as f64 / n as f64).collect();
    let theta = t
        .iter()
        .map(|&t| sol.eval(t).0.into_iter().map(Some).collect())
        .collect();
    Observations {
        t,
        theta,
        sigma: None,
    }
}

fn with(spec: &Spec, changes: &[(&str, f64)]) -> Spec {
    changes.iter().fold(spec.clone(), |s, (name, v)| {
        SpecPath::parse(name, &s).unwrap().set(&s, *v).unwrap()
    })
}

fn fitted(doc: &serde_json::Value, name: &str) -> f64 {
    doc["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["value"]
        .as_f64()
        .unwrap()
}

/// Five problems (a quadratic, a θ-dependent metric with a nonlinear drift and terminal cost,
/// a rotational drift, the Figure 1 double well with a fixed end, a diagonal metric), two
/// free parameters each, started away from the truth: recovered to 1e-6 relative.
#[test]
fn recovers_parameters_from_noise_free_trajectories() {
    let root = env!("CARGO_MANIFEST_DIR");
    let shipped = |n: &str| Spec::from_file(format!("{root}/problems/specs/{n}.json")).unwrap();
    let quadratic = spec_of(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "gamma": 1.0, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    );
    let diag = spec_of(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 2.0], "minimum": [0.5, 0.0]}},
            "metric": {"diag": [1.0, 3.0]}, "eta": 0.7, "gamma": 0.4,
            "theta0": [-1.0, 1.0], "horizon": "infinite"}"#,
    );
    type Case<'a> = (&'a str, Spec, Vec<(&'a str, f64)>, f64);
    let cases: Vec<Case> = vec![
        (
            "quadratic",
            quadratic,
            vec![("gamma", 0.5), ("k", 2.0)],
            8.0,
        ),
        (
            "θ-dependent metric and drift",
            shipped("fisher-metric"),
            vec![("gamma", 0.5), ("params.l2", 0.2)],
            3.0,
        ),
        (
            "rotation drift",
            shipped("figure3-rotation-discounted"),
            vec![("gamma", 0.7), ("drift.linear[1][0]", 0.8)],
            8.0,
        ),
        (
            "double well, fixed end",
            shipped("figure1-double-well"),
            vec![("gamma", 0.2), ("params.d", -0.4)],
            4.0,
        ),
        (
            "diagonal metric",
            diag,
            vec![("metric.diag[1]", 2.0), ("eta", 1.0)],
            8.0,
        ),
    ];
    for (label, truth, start, until) in cases {
        let obs = observe(&truth, 40, until);
        let free: Vec<Free> = start.iter().map(|(n, _)| Free::parse(n).unwrap()).collect();
        let report = fit(
            label,
            &with(&truth, &start),
            &obs,
            &free,
            &FitOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(report.complete);
        for (name, _) in &start {
            let want = SpecPath::parse(name, &truth).unwrap().get(&truth).unwrap();
            let got = fitted(&report.doc, name);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{label}: {name} = {got}, truth {want}"
            );
        }
        assert_eq!(
            report.doc["optimal"]["verdict"], "the fitted trajectory is the optimal one",
            "{label}"
        );
        assert_eq!(
            report.doc["not_identified"].as_array().unwrap().len(),
            0,
            "{label}"
        );
    }
}

/// A standard normal deviate from a seeded xorshift generator (Box–Muller).
fn normal(state: &mut u64) -> f64 {
    let mut uniform = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let (a, b) = (uniform(), uniform());
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}

/// Observations with Gaussian noise σ = 0.01 (stated), 200 seeded replications: the 95 %
/// intervals of γ and k each cover the truth in 90–98 % of them (the binomial standard
/// deviation at 95 % is 1.5 %; the band is about three of them).
#[test]
fn noisy_intervals_cover_the_truth() {
    let truth = spec_of(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "gamma": 1.0, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    );
    let clean = observe(&truth, 30, 6.0);
    let sigma = 0.01;
    let free = [Free::parse("gamma").unwrap(), Free::parse("k").unwrap()];
    let opts = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let replications = 200;
    let mut covered = [0usize; 2];
    let mut state = 0x5eed_1234_abcd_ef01_u64;
    for _ in 0..replications {
        let mut obs = clean.clone();
        obs.sigma = Some(sigma);
        for row in &mut obs.theta {
            for v in row.iter_mut().flatten() {
                *v += sigma * normal(&mut state);
            }
        }
        let report = fit("noisy", &truth, &obs, &free, &opts).unwrap();
        for (k, (name, want)) in [("gamma", 1.0), ("k", 1.0)].iter().enumerate() {
            let p = report.doc["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap();
            let lo = p["interval95"][0].as_f64().unwrap();
            let hi = p["interval95"][1].as_f64().unwrap();
            if lo <= *want && *want <= hi {
                covered[k] += 1;
            }
        }
    }
    for (k, name) in ["gamma", "k"].iter().enumerate() {
        let rate = covered[k] as f64 / replications as f64;
        eprintln!("{name}: covered in {} of {replications}", covered[k]);
        assert!(
            (0.90..=0.98).contains(&rate),
            "{name}: 95 % intervals cover the truth in {:.1} % of {replications}",
            100.0 * rate
        );
    }
}

/// Gradient flow `θ̇ = −c∇L` (c = 0.5) on a quadratic with curvatures 1 and 4 is the optimal
/// path only in the limit γ → ∞ with ηk/γ = c: the fit runs γ up the valley, compares with the
/// limit fitted directly, and reports the limit, with k/γ (η = 1) the one identified
/// combination, right to 1e-6.
#[test]
fn gradient_flow_identifies_only_the_ratio() {
    let spec = spec_of(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "k": 2.0, "gamma": 0.5, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    );
    let c = 0.5;
    let t: Vec<f64> = (1..=40).map(|i| 0.1 * i as f64).collect();
    let theta = t
        .iter()
        .map(|&t| vec![Some((-c * t).exp()), Some((-4.0 * c * t).exp())])
        .collect();
    let obs = Observations {
        t,
        theta,
        sigma: None,
    };
    let free = [
        Free::parse("k").unwrap(),
        Free::parse("gamma:0.01:10000").unwrap(),
    ];
    // One start: the limit is approached along a valley, which every start follows alike.
    let opts = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let report = fit("gradient flow", &spec, &obs, &free, &opts).unwrap();
    let identified = report.doc["identified"].as_array().unwrap();
    assert_eq!(identified.len(), 1, "{:#}", report.doc["identified"]);
    assert_eq!(identified[0]["combination"], "k^1 · gamma^-1");
    let ratio = identified[0]["value"].as_f64().unwrap();
    assert!((ratio - c).abs() < 1e-6 * c, "k/γ = {ratio}");
    assert_eq!(report.doc["not_identified"].as_array().unwrap().len(), 1);
    assert!(report.doc["limit"]["verdict"]
        .as_str()
        .unwrap()
        .contains("gradient-flow limit"));
    // Each parameter alone is not identified.
    for p in report.doc["parameters"].as_array().unwrap() {
        assert_eq!(p["identified_alone"], false);
        assert!(p["standard_error"].is_null());
    }
    // docs/theory.md quotes both: the limit's c to 1e-12, the finite fit's bias in k/γ.
    let finite = fitted(&report.doc, "k") / fitted(&report.doc, "gamma");
    let bias = (finite / c - 1.0).abs();
    let theory = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/theory.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!((ratio / c - 1.0).abs() < 1e-11, "c = {ratio}");
    let quote = format!("against a bias of {bias:.0e} for the finite fit");
    assert!(
        theory.contains(&quote),
        "docs/theory.md should say {quote:?}"
    );
    // Optimal data at finite γ are not read as the limit.
    let truth = spec_of(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "gamma": 1.0, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    );
    let report = fit(
        "finite",
        &with(&truth, &[("gamma", 0.5), ("k", 2.0)]),
        &observe(&truth, 40, 8.0),
        &[Free::parse("k").unwrap(), Free::parse("gamma").unwrap()],
        &opts,
    )
    .unwrap();
    // Every direction is identified at finite γ, so the limit is not even examined.
    assert!(report.doc["limit"].is_null(), "{}", report.doc["limit"]);
    assert_eq!(report.doc["identified"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_fails_cleanly() {
    let dir = std::env::temp_dir().join(format!("lossnav-fit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let spec = "problems/specs/figure1-double-well.json";
    let good = write(
        "good.csv",
        "t,theta_0,theta_1\n0.5,0.1,0.2\n1,0.3,0.1\n2,0.8,0.0\n",
    );
    // Only some coordinates: θ_0 alone is a valid observation of a 2-D path.
    let partial = write("partial.csv", "t,theta_0\n0.5,-0.3\n1,0.1\n2,0.8\n3,1.0\n");
    let out = lossnav(&[
        "fit", &partial, "--spec", spec, "--free", "gamma", "--starts", "1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let cases = [
        (
            write("late.csv", "t,theta_0,theta_1\n1,0,0\n9,0,0\n"),
            "gamma",
            "beyond the horizon",
        ),
        (
            write("nan.csv", "t,theta_0,theta_1\n1,nan,0\n2,0,0\n"),
            "gamma",
            "not finite",
        ),
        (
            write("few.csv", "t,theta_0,theta_1\n1,0.5,\n"),
            "gamma,k",
            "more observations than parameters",
        ),
        (good.clone(), "nope", "nope"),
        (good.clone(), "gamma:1:0.5", "not below"),
        (good.clone(), "gamma:0.5:1", "not strictly inside"),
        (good.clone(), "gamma,gamma", "twice"),
        (
            write("order.csv", "t,theta_0,theta_1\n2,0,0\n1,0,0\n"),
            "gamma",
            "increase",
        ),
        (write("nohead.csv", "1,2,3\n"), "gamma", "no column `t`"),
    ];
    for (obs, free, fragment) in &cases {
        let out = lossnav(&["fit", obs, "--spec", spec, "--free", free]);
        assert_clean_failure(&out, &[fragment]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `fit --rule heavy-ball`: from rest no member of the family fits within σ = 1e-6; after the
/// transient (`--skip 40`) the fitted rate is the slow mode's −ln z_s (docs/theory.md §7).
#[test]
fn heavy_ball_rule_mode() {
    let dir = std::env::temp_dir().join(format!("lossnav-hb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("hb.json");
    std::fs::write(
        &spec,
        r#"{"loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
            "k": 2.0, "gamma": 0.5, "theta0": [1.0], "horizon": "infinite"}"#,
    )
    .unwrap();
    let spec = spec.to_string_lossy().into_owned();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "--rule",
            "heavy-ball",
            "--lr",
            "0.02",
            "--beta",
            "0.5",
            "--spec",
            &spec,
            "--free",
            "k,gamma",
        ];
        args.extend_from_slice(extra);
        common::lossnav_json(&args)
    };
    let rest = run(&["--sigma", "1e-6"]);
    let statement = rest["goodness_of_fit"]["statement"].as_str().unwrap();
    assert!(statement.contains("no member of the family"), "{statement}");
    let tail = run(&["--skip", "40"]);
    let value = |name: &str| fitted(&tail, name);
    let (k, gamma) = (value("k"), value("gamma"));
    let rate = (gamma * gamma / 4.0 + k).sqrt() - gamma / 2.0;
    let b: f64 = 1.0 + 0.5 - 0.02;
    let slow = -((b + (b * b - 2.0).sqrt()) / 2.0).ln();
    assert!((rate / slow - 1.0).abs() < 1e-6, "rate {rate} vs {slow}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--max-seconds` ends a fit with the best point evaluated so far (exit status 1), within the
/// budget plus the watchdog's grace.
#[test]
fn a_time_limit_keeps_the_best_point() {
    let dir = std::env::temp_dir().join(format!("lossnav-fit-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("spec.json");
    std::fs::write(
        &spec,
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "k": 2.0, "gamma": 0.5, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    )
    .unwrap();
    let obs = dir.join("gf.csv");
    let rows: String = (1..=40)
        .map(|i| {
            let t = 0.1 * i as f64;
            format!("{t},{},{}\n", (-0.5 * t).exp(), (-2.0 * t).exp())
        })
        .collect();
    std::fs::write(&obs, format!("t,theta_0,theta_1\n{rows}")).unwrap();
    let start = std::time::Instant::now();
    let out = lossnav(&[
        "--max-seconds",
        // The whole fit takes about 0.6 s here; its first solve about 1 ms.
        "0.1",
        "fit",
        obs.to_str().unwrap(),
        "--spec",
        spec.to_str().unwrap(),
        "--free",
        "k,gamma:0.01:10000",
    ]);
    assert!(start.elapsed().as_secs_f64() < 3.0);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["status"].as_str().unwrap().starts_with("time limit"));
    assert!(doc["parameters"][0]["value"].as_f64().unwrap().is_finite());
    std::fs::remove_dir_all(&dir).ok();
}

/// `--rule adam` runs Adam as written by Kingma & Ba (checked step by step against a direct
/// transcription), and a rule's missing or bad settings are clean usage errors.
#[test]
fn the_adam_rule_is_adam() {
    let spec = spec_of(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "theta0": [1.0, -0.5], "horizon": 20.0}"#,
    );
    let obs = lossnav::fit::adam(&spec.to_problem().unwrap(), 0.05, 0.8, 2, 10).unwrap();
    let (h, lr, b1, b2, eps) = ([1.0, 4.0], 0.05, 0.8, 0.999, 1e-8);
    let (mut th, mut m, mut v) = ([1.0f64, -0.5], [0.0f64; 2], [0.0f64; 2]);
    let mut rows = vec![th];
    for n in 1..=12 {
        for j in 0..2 {
            let g = h[j] * th[j];
            m[j] = b1 * m[j] + (1.0 - b1) * g;
            v[j] = b2 * v[j] + (1.0 - b2) * g * g;
            let (mh, vh) = (m[j] / (1.0 - b1.powi(n)), v[j] / (1.0 - b2.powi(n)));
            th[j] -= lr * mh / (vh.sqrt() + eps);
        }
        rows.push(th);
    }
    assert_eq!(obs.t.len(), 11);
    for (k, row) in obs.theta.iter().enumerate() {
        assert_eq!(obs.t[k], k as f64);
        for j in 0..2 {
            let expected = rows[k + 2][j];
            assert!(
                (row[j].unwrap() - expected).abs() < 1e-15,
                "step {k}: {row:?}"
            );
        }
    }
    let f1 = "problems/specs/heavy-ball-1d.json";
    let out = lossnav(&[
        "fit",
        "--rule",
        "heavy-ball",
        "--lr",
        "0.02",
        "--spec",
        f1,
        "--free",
        "k",
    ]);
    assert_clean_failure(&out, &["heavy-ball", "--beta"]);
    let out = lossnav(&["fit", "--rule", "adam", "--spec", f1, "--free", "k"]);
    assert_eq!(out.status.code(), Some(2));
    let out = lossnav(&[
        "fit", "--rule", "adam", "--lr", "0.01", "--beta", "1.5", "--spec", f1, "--free", "k",
    ]);
    assert_clean_failure(&out, &["--beta"]);
}
