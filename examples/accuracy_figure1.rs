//! Actual error of the Figure 1 solution against a tight reference, per tolerance and scheme,
//! with the time per solve: `cargo run --release --example accuracy_figure1`.

use lossnav::problems::load_problem;
use lossnav::solvers::{Bvp, Scheme};

fn main() {
    let problem = load_problem(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/figure1-double-well.json"
    ))
    .unwrap();
    let reference = Bvp {
        scheme: Scheme::Order6,
        ..Bvp::default().with_tol(1e-13)
    }
    .solve(&problem)
    .unwrap();
    for scheme in [Scheme::Order4, Scheme::Order6] {
        for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
            let bvp = Bvp {
                scheme,
                second_order: false,
                ..Bvp::default().with_tol(tol)
            };
            let sol = bvp.solve(&problem).unwrap();
            let mut worst = 0.0_f64;
            for i in 0..=400 {
                let t = 4.0 * i as f64 / 400.0;
                let (a, pa) = sol.eval(t);
                let (b, pb) = reference.eval(t);
                for k in 0..2 {
                    worst = worst.max((a[k] - b[k]).abs()).max((pa[k] - pb[k]).abs());
                }
            }
            let runs = 200;
            let start = std::time::Instant::now();
            for _ in 0..runs {
                std::hint::black_box(bvp.solve(&problem).unwrap());
            }
            println!(
                "{scheme:?} tol {tol:.0e}: nodes {:4}, passes {}, Newton iterations {:3}, max error {:.2e}, cost error {:.2e}, {:.3?} per solve",
                sol.diagnostics.nodes,
                sol.diagnostics.mesh_passes,
                sol.diagnostics.iterations,
                worst,
                (sol.cost - reference.cost).abs(),
                start.elapsed() / runs,
            );
        }
    }
}
