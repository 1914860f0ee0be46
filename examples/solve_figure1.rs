//! Solve the Figure 1 problem repeatedly (for profiling): `cargo run --release --example solve_figure1`.

use lossnav::problems::load_problem;
use lossnav::solvers::Bvp;

fn main() {
    let problem = load_problem(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/figure1-double-well.json"
    ))
    .unwrap();
    let bvp = Bvp::default().with_tol(1e-8);
    let mut cost = 0.0;
    for _ in 0..400 {
        cost += bvp.solve(&problem).unwrap().cost;
    }
    println!("{cost}");
}
