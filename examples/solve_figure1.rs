//! Solve the Figure 1 problem repeatedly (for profiling and timing):
//! `cargo run --release --example solve_figure1 [expr|builtin]` — the expression-defined loss
//! of the shipped spec, or the same landscape as the built-in automatic-differentiation double
//! well. An optional second argument sets the number of solves (default 400).

use lossnav::problems::{load_problem, AutoDiff, DoubleWell, End, Horizon, Lagrangian, Problem};
use lossnav::solvers::Bvp;

fn main() {
    let builtin = std::env::args().nth(1).is_some_and(|a| a == "builtin");
    let problem = if builtin {
        Problem::new(
            Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.1),
            nalgebra::dvector![-0.6, 0.55],
            Horizon::Finite(4.0),
            End::Fixed(nalgebra::dvector![1.0625, 0.0]),
        )
        .unwrap()
    } else {
        load_problem(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/problems/specs/figure1-double-well.json"
        ))
        .unwrap()
    };
    let bvp = Bvp::default().with_tol(1e-8);
    let runs: u32 = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(400);
    let start = std::time::Instant::now();
    let mut cost = 0.0;
    for _ in 0..runs {
        cost += bvp.solve(&problem).unwrap().cost;
    }
    println!(
        "{:.3?} per solve (J = {})",
        start.elapsed() / runs,
        cost / runs as f64
    );
}
