//! The boundary-value solver's side of `benches/peers_bvp.py`: solves one problem repeatedly
//! and prints, as one JSON document, the time per solve, the mesh, the path on a uniform grid
//! of 401 times and (quadratic) the instance and the infinite-horizon end condition, so that
//! the peers can solve exactly the same problem and be compared at equal achieved accuracy.
//!
//! ```text
//! cargo run --release --example bvp_peers -- figure1 TOL RUNS [order4|order6|auto]
//! cargo run --release --example bvp_peers -- quadratic D TOL RUNS [order4|order6|auto]
//! ```
//!
//! `quadratic D` is [`lossnav::testbed::random_spd_quadratic`], the instance of
//! `benches/bvp.rs`: a random SPD Hessian (eigenvalues evenly spaced in [0.5, 5]), `γ = 1`,
//! `η = k = 1`, infinite horizon, `θ* = 0`.

use nalgebra::DMatrix;
use serde_json::json;

use lossnav::problems::load_problem;
use lossnav::solvers::observe::{Observer, Progress};
use lossnav::solvers::{Bvp, Scheme};

/// Mesh passes on standard error (`BVP_PEERS_PROGRESS=1`), for profiling.
struct Stderr;

impl Observer for Stderr {
    fn progress(&self, p: &Progress) {
        eprintln!(
            "{:8.3} s  {}: {} = {:.3e}",
            p.elapsed, p.stage, p.measure, p.value
        );
    }
}

fn rows(m: &DMatrix<f64>) -> Vec<Vec<f64>> {
    (0..m.nrows())
        .map(|i| m.row(i).iter().copied().collect())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bvp_peers figure1 TOL RUNS [scheme] | quadratic D TOL RUNS [scheme]";
    let (problem, hessian, rest) = match args.first().map(String::as_str) {
        Some("figure1") => (
            load_problem(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/problems/specs/figure1-double-well.json"
            ))
            .unwrap(),
            None,
            &args[1..],
        ),
        Some("quadratic") => {
            let d: usize = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
            assert!((2..=2000).contains(&d), "D must be in 2..=2000");
            let (p, h) = lossnav::testbed::random_spd_quadratic(d);
            (p, Some(h), &args[2..])
        }
        _ => panic!("{usage}"),
    };
    let tol: f64 = rest.first().and_then(|a| a.parse().ok()).expect(usage);
    let runs: u32 = rest.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let scheme = match rest.get(2).map(String::as_str) {
        None | Some("auto") => Scheme::Auto,
        Some("order4") => Scheme::Order4,
        Some("order6") => Scheme::Order6,
        Some(other) => panic!("unknown scheme {other}"),
    };
    assert!(runs >= 1, "RUNS must be at least 1");
    // The solve alone, as scipy's `solve_bvp` call is timed alone.
    let mut bvp = Bvp {
        second_order: false,
        scheme,
        ..Bvp::default().with_tol(tol)
    };
    if std::env::var_os("BVP_PEERS_PROGRESS").is_some() {
        bvp = bvp.with_observer(std::sync::Arc::new(Stderr));
    }
    let solution = bvp.solve(&problem).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(bvp.solve(&problem).unwrap());
    }
    let seconds = start.elapsed().as_secs_f64() / f64::from(runs);
    let end = solution.end_time();
    let grid: Vec<f64> = (0..=400).map(|i| end * i as f64 / 400.0).collect();
    let (theta, p): (Vec<Vec<f64>>, Vec<Vec<f64>>) = grid.iter().map(|&t| solution.eval(t)).unzip();
    let lag = problem.lagrangian();
    let mut doc = json!({
        "seconds_per_solve": seconds,
        "runs": runs,
        "tol": tol,
        "accuracy": solution.accuracy.describe(),
        "nodes": solution.diagnostics.nodes,
        "newton_iterations": solution.diagnostics.iterations,
        "mesh_passes": solution.diagnostics.mesh_passes,
        "cost": solution.cost,
        "mesh": solution.t,
        "grid": grid,
        "theta": theta,
        "p": p,
        "eta": lag.eta(),
        "k": lag.k(),
        "gamma": lag.gamma(),
        "theta0": problem.theta0().as_slice(),
    });
    if let (Some(h), Some(tail)) = (hessian, &solution.tail) {
        doc["hessian"] = json!(rows(&h));
        doc["truncation"] = json!(tail.truncation);
        doc["riccati"] = json!(rows(&tail.riccati));
        doc["theta_star"] = json!(tail.theta_star.as_slice());
        doc["p_star"] = json!(tail.p_star.as_slice());
    }
    println!("{doc}");
}
