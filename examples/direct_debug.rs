use lossnav::problems::load_problem;
use lossnav::solvers::{Bvp, Direct};
fn main() {
    let problem = load_problem(format!(
        "{}/problems/specs/figure1-double-well.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let t0 = std::time::Instant::now();
    let reference = Bvp::default().with_tol(1e-12).solve(&problem).unwrap();
    println!("bvp {:?} cost {}", t0.elapsed(), reference.cost);
    let mut d = Direct::default().with_intervals(200);
    d.max_iterations = 20000;
    let t0 = std::time::Instant::now();
    match d.solve(&problem) {
        Ok(s) => println!(
            "direct {:?} cost {} iters {} g {}",
            t0.elapsed(),
            s.cost,
            s.diagnostics.iterations,
            s.diagnostics.max_residual
        ),
        Err(e) => println!("direct {:?} err {e}", t0.elapsed()),
    }
}
