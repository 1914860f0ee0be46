//! Direct method against the boundary-value solver on shipped specs, with convergence under
//! refinement: `cargo run --release --example direct_vs_bvp`.

use lossnav::problems::load_problem;
use lossnav::solvers::{Bvp, Direct};

fn main() {
    for name in [
        "figure1-double-well",
        "fisher-metric",
        "figure2-anisotropic-2d",
        "figure1-double-well-infinite",
    ] {
        let problem = load_problem(format!(
            "{}/problems/specs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let reference = Bvp::default().with_tol(1e-12).solve(&problem).unwrap();
        for n in [25, 50, 100, 200] {
            let start = std::time::Instant::now();
            match Direct::default().with_intervals(n).solve(&problem) {
                Ok(sol) => {
                    let mut worst = 0.0_f64;
                    for i in 0..=100 {
                        let t = reference.end_time().min(sol.end_time()) * i as f64 / 100.0;
                        let (a, b) = (sol.eval(t).0, reference.eval(t).0);
                        for k in 0..a.len() {
                            worst = worst.max((a[k] - b[k]).abs());
                        }
                    }
                    println!(
                        "{name} N={n}: cost rel err {:.2e}, θ err {:.2e}, iters {}, |g| {:.1e}, {:?}",
                        (sol.cost - reference.cost).abs() / reference.cost.abs(),
                        worst,
                        sol.diagnostics.iterations,
                        sol.diagnostics.max_residual,
                        start.elapsed()
                    );
                }
                Err(e) => println!("{name} N={n}: {e}"),
            }
        }
    }
}
