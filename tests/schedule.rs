//! Learning-rate schedules read off optimal paths: against the closed form of the
//! finite-horizon diagonal quadratic (written out here from its own path, not from the
//! schedule's code), the scalar rate's exactness where one rate suffices, and the command.

use lossnav::problems::Spec;
use lossnav::rules::schedule::{schedule, HorizonRate, ScheduleError};

fn problem(curvatures: &[f64], gamma: f64, horizon: f64) -> lossnav::problems::Problem {
    let d = curvatures.len();
    let spec = serde_json::json!({
        "loss": {"quadratic": {"curvatures": curvatures, "minimum": vec![0.0; d]}},
        "eta": 1.0, "k": 1.0, "gamma": gamma,
        "theta0": vec![1.0; d],
        "horizon": horizon,
        "end": "free",
    });
    Spec::from_json(&spec.to_string())
        .unwrap()
        .to_problem()
        .unwrap()
}

fn solve(p: &lossnav::problems::Problem) -> lossnav::solvers::Solution {
    lossnav::solvers::Bvp::default()
        .with_tol(1e-10)
        .solve(p)
        .unwrap()
}

/// On a diagonal quadratic each coordinate is a curvature direction, and the discrete step
/// that lands on the path is `lr = (1 − x(t + Δt)/x(t))/h`, with `x` the closed-form path.
#[test]
fn per_direction_rates_follow_the_closed_form_path() {
    let (h, gamma, horizon, steps) = ([0.2, 1.0, 3.0], 0.7, 6.0, 30);
    let p = problem(&h, gamma, horizon);
    let sol = solve(&p);
    let s = schedule(&p, &sol, steps).unwrap();
    let dirs = s.directions.as_ref().expect("D ≤ 32 has directions");
    assert_eq!(s.t.len(), steps);
    let mut worst = 0.0_f64;
    for (i, &hi) in h.iter().enumerate() {
        let closed = HorizonRate {
            eta: 1.0,
            k: 1.0,
            gamma,
            h: hi,
            g: 1.0,
            horizon,
        };
        // The closed-form path matches the solver's θ.
        for j in 0..=60 {
            let t = horizon * j as f64 / 60.0;
            let e = (closed.path(t) - sol.eval(t).0[i]).abs();
            assert!(e < 1e-8, "path of h = {hi} at t = {t}: {e:e}");
        }
        for (n, dir) in dirs.iter().enumerate() {
            let (t0, t1) = (s.t[n], s.t[n] + s.dt);
            let expected = (1.0 - closed.path(t1) / closed.path(t0)) / hi;
            // Curvatures ascend, as the coordinates here do.
            assert!((dir.curvature[i] - hi).abs() < 1e-12);
            let got = dir.lr[i].expect("the gradient has a component along every axis");
            worst = worst.max((got - expected).abs());
        }
    }
    assert!(worst < 1e-7, "{worst:e}");
}

/// With one curvature a scalar rate represents every step exactly, and gradient descent with
/// it reproduces the path at the steps; with several it cannot, and says so.
#[test]
fn the_scalar_rate_is_exact_only_where_one_rate_suffices() {
    let p = problem(&[2.0, 2.0], 0.3, 5.0);
    let sol = solve(&p);
    let s = schedule(&p, &sol, 25).unwrap();
    let unexplained = s
        .unexplained
        .iter()
        .flatten()
        .fold(0.0_f64, |m, &u| m.max(u));
    assert!(unexplained < 1e-9, "{unexplained:e}");
    let mut theta = 1.0_f64;
    for (n, lr) in s.rates().iter().enumerate() {
        theta -= lr * 2.0 * theta;
        let on_path = sol.eval(s.t[n] + s.dt).0[0];
        assert!(
            (theta - on_path).abs() < 1e-8,
            "step {n}: {theta} vs {on_path}"
        );
    }
    // Along the continuous path the rate per unit time tends to the closed form's α(t).
    let fine = schedule(&p, &sol, 5000).unwrap();
    let closed = HorizonRate {
        eta: 1.0,
        k: 1.0,
        gamma: 0.3,
        h: 2.0,
        g: 1.0,
        horizon: 5.0,
    };
    for n in [0, 1000, 2500, 4000, 4990] {
        // −ln(1 − h·lr)/(hΔt) is α's mean over the step (x(t + Δt)/x(t) = e^{−∫hα}):
        // compare with α at the step's midpoint (error O(Δt²)).
        let mid = fine.t[n] + fine.dt / 2.0;
        let mean = -(1.0 - 2.0 * fine.lr[n].unwrap()).ln() / (2.0 * fine.dt);
        let e = (mean - closed.rate(mid)).abs();
        assert!(e < 1e-5, "step {n}: {e:e}");
    }

    let p = problem(&[0.1, 10.0], 0.3, 5.0);
    let s = schedule(&p, &solve(&p), 10).unwrap();
    let unexplained = s
        .unexplained
        .iter()
        .flatten()
        .fold(0.0_f64, |m, &u| m.max(u));
    assert!(unexplained > 0.1, "{unexplained}");
}

#[test]
fn schedules_refuse_what_they_cannot_give() {
    let p = problem(&[1.0], 0.3, 5.0);
    let sol = solve(&p);
    assert!(matches!(
        schedule(&p, &sol, 0),
        Err(ScheduleError::Steps { .. })
    ));
    assert!(matches!(
        schedule(&p, &sol, usize::MAX),
        Err(ScheduleError::Steps { .. })
    ));
    let spec = Spec::from_json(
        r#"{"loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
            "eta": 1, "k": 1, "gamma": 1, "theta0": [1.0],
            "horizon": "infinite", "end": "equilibrium"}"#,
    )
    .unwrap();
    let inf = spec.to_problem().unwrap();
    let sol = solve(&inf);
    assert_eq!(
        schedule(&inf, &sol, 10),
        Err(ScheduleError::InfiniteHorizon)
    );
}

fn lossnav(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_prints_json_csv_and_refuses_infinite_horizons() {
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/schedule-quadratic.json"
    );
    let out = lossnav(&["schedule", spec, "--steps", "40"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "status", "the verdict leads");
    assert_eq!(doc["lr"].as_array().unwrap().len(), 40);
    assert_eq!(doc["directions"]["lr"].as_array().unwrap().len(), 40);
    // The scalar schedule of a spread of curvatures warms up, then decays to the horizon.
    let s = &doc["summary"];
    let (first, peak, last) = (
        s["first_lr"].as_f64().unwrap(),
        s["peak_lr"].as_f64().unwrap(),
        s["last_lr"].as_f64().unwrap(),
    );
    assert!(first < peak && last < peak, "{s}");
    assert!(s["warning"].as_str().unwrap().contains("unstable"), "{s}");

    let out = lossnav(&["schedule", spec, "--steps", "3", "--format", "csv"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "step,t,lr,unexplained,max_curvature,curvature_0,lr_0,curvature_1,lr_1,curvature_2,lr_2"
    );
    assert_eq!(lines.len(), 4);

    let infinite = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/figure2-quadratic-1d.json"
    );
    let out = lossnav(&["schedule", infinite]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("infinite horizon"));
    let out = lossnav(&["schedule", spec, "--steps", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("steps 0"));
}

/// The closed-form scalar schedule (no solve) is the one read off the solver's path.
#[test]
fn the_closed_form_scalar_schedule_is_the_solved_one() {
    let h = [0.05, 0.5, 2.0];
    let p = problem(&h, 0.0, 8.0);
    let s = schedule(&p, &solve(&p), 40).unwrap();
    let closed =
        lossnav::rules::schedule::diagonal_scalar_schedule(&h, &[1.0; 3], 1.0, 1.0, 0.0, 8.0, 40);
    for (n, (a, b)) in s.lr.iter().zip(&closed).enumerate() {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            (a - b).abs() < 1e-7 * b.abs().max(1.0),
            "step {n}: {a} vs {b}"
        );
    }
}

/// docs/guide.md's schedule table is what the comparison computes (the example prints the
/// same rows).
#[test]
fn the_guide_table_of_schedules_is_computed() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md")).unwrap();
    let rows = lossnav::rules::schedule::compare_on_noisy_quadratic();
    assert_eq!(rows.len(), 4);
    for s in &rows {
        let row = format!(
            "| {} | {} = {:.2e} | {:.2e} |",
            s.name,
            s.knob,
            s.tuned,
            s.losses.last().unwrap()
        );
        assert!(guide.contains(&row), "docs/guide.md lacks the row {row}");
    }
    // What the text says of them: cosine best, the optimal path's shape within 10 % of the
    // tuned warmup–stable–decay, constant worst.
    let last = |name: &str| {
        *rows
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .losses
            .last()
            .unwrap()
    };
    assert!(last("cosine") < last("warmup–stable–decay"));
    assert!((last("optimal path") / last("warmup–stable–decay") - 1.0).abs() < 0.1);
    assert!(rows
        .iter()
        .all(|s| last("constant") >= *s.losses.last().unwrap()));
}

/// With a diagonal metric the directions are taken in the metric: curvatures h/g and the
/// rates of θ ← θ − lr·G⁻¹∇L, which are g·(1 − x(t + Δt)/x(t))/h; a rounding-level change of
/// the Hessian does not change them (the Euclidean eigenvectors of H = I would be arbitrary).
#[test]
fn directions_are_taken_in_the_metric() {
    let spec = |h01: f64| {
        serde_json::json!({
            "loss": {"quadratic": {"hessian": [[1.0, h01], [h01, 1.0]], "minimum": [0.0, 0.0]}},
            "metric": {"diag": [1.0, 4.0]},
            "eta": 1.0, "k": 1.0, "gamma": 0.5,
            "theta0": [1.0, 1.0], "horizon": 4.0, "end": "free",
        })
    };
    let mut all = Vec::new();
    for h01 in [0.0, 1e-13] {
        let p = Spec::from_json(&spec(h01).to_string())
            .unwrap()
            .to_problem()
            .unwrap();
        let s = schedule(&p, &solve(&p), 8).unwrap();
        all.push(s.directions.unwrap());
    }
    for (a, b) in all[0].iter().zip(&all[1]) {
        for (x, y) in a.lr.iter().zip(&b.lr) {
            assert!((x.unwrap() - y.unwrap()).abs() < 1e-9, "{a:?} {b:?}");
        }
    }
    // Curvature in the metric: h/g = 1/4 (the g = 4 coordinate) then 1.
    let closed = |g: f64| HorizonRate {
        eta: 1.0,
        k: 1.0,
        gamma: 0.5,
        h: 1.0,
        g,
        horizon: 4.0,
    };
    for (n, dir) in all[0].iter().enumerate() {
        assert!((dir.curvature[0] - 0.25).abs() < 1e-12 && (dir.curvature[1] - 1.0).abs() < 1e-12);
        let (t0, t1) = (0.5 * n as f64, 0.5 * (n + 1) as f64);
        for (j, g) in [(0, 4.0), (1, 1.0)] {
            let c = closed(g);
            let expected = g * (1.0 - c.path(t1) / c.path(t0));
            let got = dir.lr[j].unwrap();
            assert!(
                (got - expected).abs() < 1e-7,
                "step {n} g = {g}: {got} vs {expected}"
            );
            // Below the Newton rate in the metric: lr × (h/g) < 1.
            assert!(got * dir.curvature[j] < 1.0);
        }
    }
}

/// A long horizon converges far below the solve's accuracy: those steps have no rate (not a
/// ratio of rounding errors), and the rates that remain follow the closed form.
#[test]
fn steps_below_the_resolution_have_no_rate() {
    let p = problem(&[0.1, 1.0, 10.0], 0.5, 1000.0);
    let s = schedule(&p, &solve(&p), 100).unwrap();
    assert!(s.below_resolution > 80, "{}", s.below_resolution);
    let defined: Vec<f64> = s.lr.iter().flatten().copied().collect();
    assert!(defined.len() + s.below_resolution <= 100);
    // The flattest direction's stationary rate bounds every scalar rate (a weighted mean of
    // the directions' rates, each below its Newton rate 1/h ≤ 10).
    assert!(
        defined.iter().all(|&r| (0.0..=10.0).contains(&r)),
        "{defined:?}"
    );
}

/// Above D = 32 the largest curvature comes from power iteration, and the warning stays.
#[test]
fn the_instability_warning_holds_above_32_dimensions() {
    let mut h = vec![0.1; 31];
    h.extend([1.0, 10.0]);
    let path = std::env::temp_dir().join(format!("lossnav-w33-{}.json", std::process::id()));
    let spec = serde_json::json!({
        "loss": {"quadratic": {"curvatures": h, "minimum": vec![0.0; 33]}},
        "eta": 1.0, "k": 1.0, "gamma": 0.5,
        "theta0": vec![1.0; 33], "horizon": 20.0, "end": "free",
    });
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = lossnav(&[
        "schedule",
        path.to_str().unwrap(),
        "--steps",
        "20",
        "--summary",
    ]);
    std::fs::remove_file(&path).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["summary"]["warning"]
            .as_str()
            .unwrap()
            .contains("unstable"),
        "{doc}"
    );
    let product = doc["summary"]["largest_lr_times_curvature"]
        .as_f64()
        .unwrap();
    assert!(product > 2.0, "{product}");
}
