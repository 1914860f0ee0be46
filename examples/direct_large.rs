//! The direct method at large D: `cargo run --release --example direct_large -- 10000 200`
//! (D, N). Prints time, iterations and the relative cost error against the Lanczos closed
//! form; run under `/usr/bin/time -v` for peak memory.

use nalgebra::{DMatrix, DVector};

use lossnav::problems::{End, Horizon, Lagrangian, LowRankQuadratic, Problem};
use lossnav::rules::krylov::{fixed_end_cost, quadratic_form};
use lossnav::solvers::Direct;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (d, n) = (
        args.first().copied().unwrap_or(10_000),
        args.get(1).copied().unwrap_or(200),
    );
    let mut s = 7u64;
    let mut r = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let (gamma, t_end, rank) = (0.5, 3.0, 10);
    let diag = DVector::from_fn(d, |_, _| 1.0 + 0.5 * r());
    let u = DMatrix::from_fn(d, rank, |_, _| r() / (d as f64).sqrt());
    let mu = DVector::from_fn(d, |_, _| 0.5 * r());
    let loss = LowRankQuadratic::new(diag, u, mu.clone()).unwrap();
    let theta0 = DVector::from_fn(d, |_, _| r());
    let delta: Vec<f64> = theta0.iter().zip(mu.iter()).map(|(a, b)| a - b).collect();
    let exact = quadratic_form(&|v, out| loss.apply(v, out), &delta, 80, &|h| {
        fixed_end_cost(h, 1.0, 1.0, gamma, t_end)
    });
    let problem = Problem::new(
        Lagrangian::new(loss).with_gamma(gamma),
        theta0,
        Horizon::Finite(t_end),
        End::Fixed(mu),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let mut direct = Direct::default().with_intervals(n);
    direct.memory = std::env::var("MEM")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let sol = direct.solve(&problem).unwrap();
    println!(
        "D = {d}, N = {n}: {:.2?}, {} L-BFGS iterations, gradient norm {:.1e}, cost {} vs closed form {exact} (relative error {:.1e})",
        start.elapsed(),
        sol.diagnostics.iterations,
        sol.diagnostics.max_residual,
        sol.cost,
        (sol.cost - exact).abs() / exact
    );
}
