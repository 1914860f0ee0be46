//! The direct method at large D: `cargo run --release --example direct_large -- 10000 200`
//! (D, N). Prints time, iterations and the relative cost error against the Lanczos closed
//! form; run under `/usr/bin/time -v` for peak memory.

use lossnav::solvers::Direct;
use lossnav::testbed::LowRankCase;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (d, n) = (
        args.first().copied().unwrap_or(10_000),
        args.get(1).copied().unwrap_or(200),
    );
    let case = LowRankCase::new(d, 10, 0.5, 3.0);
    let (problem, exact) = (&case.problem, case.exact_cost(80));
    let start = std::time::Instant::now();
    let mut direct = Direct::default().with_intervals(n);
    direct.memory = std::env::var("MEM")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let sol = direct.solve(problem).unwrap();
    println!(
        "D = {d}, N = {n}: {:.2?}, {} L-BFGS iterations, {}, cost {} vs closed form {exact} (relative error {:.1e})",
        start.elapsed(),
        sol.diagnostics.iterations,
        sol.accuracy.describe(),
        sol.cost,
        (sol.cost - exact).abs() / exact
    );
}
