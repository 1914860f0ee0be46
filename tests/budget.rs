//! `--max-seconds S` is honoured by every command: on inputs that run for tens of seconds or
//! minutes without it, each command ends within S plus the watchdog's grace (0.8 s), with a
//! one-line error saying the budget ran out (a sweep instead keeps the points that finished
//! and records the others as not solved). Wrong budgets are refused before any work.

mod common;

use std::time::{Duration, Instant};

use common::{assert_clean_failure, lossnav, temp_dir};

/// The budget every run here gets.
const BUDGET: f64 = 1.0;

/// The promise is S + 1 s; the check allows another second for starting a process and for
/// scheduling on a loaded two-core test machine (the inputs run 30 s or more without a
/// budget, so the check still separates honoured from ignored).
const ALLOWED: Duration = Duration::from_millis(3000);

fn timed(args: &[&str]) -> (std::process::Output, Duration) {
    let mut args = args.to_vec();
    let budget = BUDGET.to_string();
    args.extend(["--max-seconds", &budget]);
    let started = Instant::now();
    let out = lossnav(&args);
    (out, started.elapsed())
}

fn assert_budget_error(args: &[&str]) {
    let (out, elapsed) = timed(args);
    assert!(elapsed < ALLOWED, "{args:?} took {elapsed:?}");
    assert_clean_failure(&out, &["time budget"]);
}

/// A diagonal linear–quadratic problem of dimension `d` with an infinite horizon: the closed
/// form works with dense D × D matrices (D = 2000: about 40 s on one core).
fn lq_spec(dir: &std::path::Path, d: usize) -> String {
    let curvatures: Vec<f64> = (0..d).map(|i| 1.0 + i as f64 / d as f64).collect();
    let spec = serde_json::json!({
        "loss": {"quadratic": {"curvatures": curvatures, "minimum": vec![0.0; d]}},
        "gamma": 0.5,
        "theta0": vec![1.0; d],
        "horizon": "infinite",
    });
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("lq{d}.json"));
    std::fs::write(&path, spec.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn every_long_command_ends_within_its_budget() {
    let dir = temp_dir("budget");
    let lq = lq_spec(&dir, 2000);
    let figures = dir.join("figures").display().to_string();
    // Closed-form rule, the default solve (its dense equilibrium and Riccati phases), a rule
    // integrated forward, a Monte Carlo of two million paths, the claims catalogue, the
    // paper's figures and an escape diagram of 8000 extremals.
    for args in [
        vec!["rule", &lq],
        vec!["solve", &lq, "--summary"],
        vec!["simulate", &lq, "--rule", "optimal-policy", "--t-end", "10"],
        vec![
            "simulate",
            "problems/specs/noisy-gradients.json",
            "--paths",
            "2000000",
        ],
        vec!["check"],
        vec!["figures", "--out", &figures],
        vec![
            "escape",
            "problems/specs/figure1-double-well-infinite.json",
            "--gamma",
            "0.05:1.5:200",
            "--theta0-grid",
            "-0.9:-0.3:20",
        ],
    ] {
        assert_budget_error(&args);
    }
    // Nothing half-written: the figures that finished are whole files, and no temporary file
    // is left.
    if let Ok(entries) = std::fs::read_dir(&figures) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            assert!(!name.contains(".tmp"), "temporary file left: {name}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sweep keeps what finished: every grid point has its row, the solved ones are the solves
/// of an unbudgeted sweep, and the rest say the budget ran out; exit status 1.
#[test]
fn a_sweep_out_of_time_keeps_the_points_that_finished() {
    let spec = "problems/specs/figure1-double-well-infinite.json";
    let (out, elapsed) = timed(&["sweep", spec, "--set", "gamma=0.05:0.9:4000", "--jobs", "1"]);
    assert!(elapsed < ALLOWED, "took {elapsed:?}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4000);
    let solved: Vec<&serde_json::Value> = rows.iter().filter(|r| r["solved"] == true).collect();
    let timed_out = rows
        .iter()
        .filter(|r| r["error_kind"] == "time limit")
        .count();
    assert!(!solved.is_empty(), "a second solves some points");
    assert!(timed_out > 0, "4000 points do not fit in a second");
    assert_eq!(solved.len() + timed_out, 4000, "only budget failures here");
    // The first solved point equals the same point solved without a budget.
    let first = solved[0];
    let gamma = first["params"]["gamma"].as_f64().unwrap();
    let again = lossnav(&["sweep", spec, "--set", &format!("gamma={gamma}")]);
    let again: serde_json::Value =
        serde_json::from_str(String::from_utf8(again.stdout).unwrap().trim()).unwrap();
    assert_eq!(first["cost"], again["cost"]);
}

/// Budgets that are not a finite positive number of seconds are refused by every command
/// before it does anything.
#[test]
fn a_wrong_budget_is_refused_up_front() {
    for value in ["0", "-1", "nan", "inf", "1e400"] {
        for command in [
            vec!["check"],
            vec!["rule", "problems/specs/figure3-rotation.json"],
            vec!["validate", "problems/specs/figure1-double-well.json"],
        ] {
            let mut args = command.clone();
            args.extend(["--max-seconds", value]);
            let out = lossnav(&args);
            assert_clean_failure(&out, &["--max-seconds", "finite number of seconds > 0"]);
        }
    }
    // The flag goes before the subcommand as well as after it.
    let out = lossnav(&[
        "--max-seconds",
        "30",
        "rule",
        "problems/specs/figure3-rotation.json",
    ]);
    assert!(out.status.success(), "{out:?}");
}
