use lossnav::problems::load_problem;
use lossnav::solvers::{Bvp, Shooting};
fn main() {
    for name in [
        "figure2-anisotropic-2d",
        "figure3-rotation-discounted",
        "fisher-metric",
        "figure1-double-well",
    ] {
        let p = load_problem(format!(
            "{}/problems/specs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let b = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
        match Shooting::default().solve(&p) {
            Ok(s) => println!(
                "{name}: iters {} cost {} vs {} res {:.1e}",
                s.diagnostics.iterations, s.cost, b.cost, s.diagnostics.max_residual
            ),
            Err(e) => println!("{name}: {e}"),
        }
        let guess = |t: f64| b.eval(t);
        match Shooting::default().solve_from(&p, Some(&guess)) {
            Ok(s) => println!(
                "  from bvp guess: iters {} cost {}",
                s.diagnostics.iterations, s.cost
            ),
            Err(e) => println!("  from bvp guess: {e}"),
        }
    }
}
