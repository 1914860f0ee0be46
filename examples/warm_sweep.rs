//! Cold against warm-started solves along a γ sweep: `cargo run --release --example
//! warm_sweep [SPEC] [LO:HI:N]`. Prints the time per point of each, with and without the
//! second-order certificate, and the largest cost difference between the two.

use std::time::Instant;

use lossnav::problems::load_problem;
use lossnav::solvers::{Bvp, Solution};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/problems/specs/figure1-double-well-infinite.json"
        )
        .into()
    });
    let grid = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "0.05:0.85:17".into());
    let parts: Vec<f64> = grid.split(':').map(|s| s.parse().unwrap()).collect();
    let n = parts[2] as usize;
    let gammas: Vec<f64> = (0..n)
        .map(|i| parts[0] + (parts[1] - parts[0]) * i as f64 / (n - 1).max(1) as f64)
        .collect();
    let base = load_problem(&spec).unwrap();
    let problems: Vec<_> = gammas
        .iter()
        .map(|&g| {
            base.with_lagrangian(base.lagrangian().clone().with_gamma(g))
                .unwrap()
        })
        .collect();
    for certificate in [true, false] {
        let bvp = Bvp {
            second_order: certificate,
            ..Bvp::default()
        };
        let reps: usize = std::env::var("WARM_SWEEP_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        let start = Instant::now();
        let mut cold = Vec::new();
        for _ in 0..reps {
            cold = problems
                .iter()
                .map(|p| bvp.solve(p).ok())
                .collect::<Vec<_>>();
        }
        let t_cold = start.elapsed().as_secs_f64() / (reps * n) as f64;
        let start = Instant::now();
        let mut warm: Vec<Option<Solution>> = Vec::new();
        for _ in 0..reps {
            warm.clear();
            let mut prev: Option<Solution> = None;
            for p in &problems {
                let s = match &prev {
                    Some(s) => bvp.solve_near(p, s).ok(),
                    None => bvp.solve(p).ok(),
                };
                prev = s.clone();
                warm.push(s);
            }
        }
        let t_warm = start.elapsed().as_secs_f64() / (reps * n) as f64;
        let diff = cold
            .iter()
            .zip(&warm)
            .filter_map(|(a, b)| Some((a.as_ref()?.cost - b.as_ref()?.cost).abs()))
            .fold(0.0_f64, f64::max);
        if std::env::var_os("WARM_SWEEP_DIAGNOSTICS").is_some() && !certificate {
            diagnostics(&cold, &warm);
        }
        let solved = |v: &[Option<Solution>]| v.iter().filter(|s| s.is_some()).count();
        println!(
            "certificate {certificate}: cold {:.1} µs/point ({} solved), warm {:.1} µs/point ({} solved), ratio {:.2}, largest cost difference {diff:.1e}",
            1e6 * t_cold,
            solved(&cold),
            1e6 * t_warm,
            solved(&warm),
            t_cold / t_warm
        );
    }
}

/// Newton iterations and mesh passes of each point, cold and warm (`WARM_SWEEP_DIAGNOSTICS=1`).
#[allow(dead_code)]
fn diagnostics(cold: &[Option<Solution>], warm: &[Option<Solution>]) {
    for (c, w) in cold.iter().zip(warm) {
        if let (Some(c), Some(w)) = (c, w) {
            println!(
                "cold: {} iterations, {} passes, {} nodes; warm: {} iterations, {} passes, {} nodes",
                c.diagnostics.iterations,
                c.diagnostics.mesh_passes,
                c.diagnostics.nodes,
                w.diagnostics.iterations,
                w.diagnostics.mesh_passes,
                w.diagnostics.nodes
            );
        }
    }
}
