//! The direct method at large D: a diagonal-plus-rank-10 quadratic given by Hessian–vector
//! products, fixed end, T = 3, γ = 0.5, N = 200 intervals.
//!
//! Run: `cargo bench --bench direct` (the D = 10⁴ case takes about 26 s per solve). The
//! relative cost error against the Lanczos closed form is printed once per size.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nalgebra::DVector;

use lossnav::problems::{End, Horizon, Lagrangian, Problem};
use lossnav::solvers::Direct;
use lossnav::testbed::LowRankCase;

fn bench_direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("direct/low_rank_quadratic_n200");
    group.sample_size(10);
    for d in [1000usize, 10_000] {
        let case = LowRankCase::new(d, 10, 0.5, 3.0);
        let (p, exact) = (&case.problem, case.exact_cost(80));
        let mut solver = Direct::default().with_intervals(200);
        solver.memory = 10;
        let sol = solver.solve(p).unwrap();
        eprintln!(
            "D = {d}: relative cost error {:.1e}, {} iterations",
            (sol.cost - exact).abs() / exact,
            sol.diagnostics.iterations
        );
        group.bench_with_input(BenchmarkId::from_parameter(d), &d, |b, _| {
            b.iter(|| solver.solve(p).unwrap())
        });
    }
    group.finish();
}

/// A two-layer tanh network (24 hidden units, 40 inputs: D = 1008) on 100 synthetic samples;
/// free end, T = 3, γ = 0.5. Reports the cost change from N = 100 to N = 200 as the
/// discretisation error estimate.
fn bench_network(c: &mut Criterion) {
    let mut r = lossnav::testbed::uniform(11);
    let (hidden, n_in, samples) = (24, 40, 100);
    let inputs: Vec<Vec<f64>> = (0..samples)
        .map(|_| (0..n_in).map(|_| r()).collect())
        .collect();
    let targets: Vec<f64> = inputs.iter().map(|x| (x[0] + 0.5 * x[1]).sin()).collect();
    let net = lossnav::problems::TwoLayerTanh::new(inputs, targets, hidden).unwrap();
    let d = lossnav::problems::Landscape::dim(&net);
    let theta0 = DVector::from_fn(d, |_, _| 0.3 * r());
    let p = Problem::new(
        Lagrangian::new(net).with_gamma(0.5),
        theta0,
        Horizon::Finite(3.0),
        End::Free {
            terminal_cost: None,
        },
    )
    .unwrap();
    let coarse = Direct::default().with_intervals(100).solve(&p).unwrap();
    let solver = Direct::default().with_intervals(200);
    let fine = solver.solve(&p).unwrap();
    eprintln!(
        "network D = {d}: cost {} (N = 200) vs {} (N = 100), {} iterations",
        fine.cost, coarse.cost, fine.diagnostics.iterations
    );
    let mut group = c.benchmark_group("direct/two_layer_network_n200");
    group.sample_size(10);
    group.bench_function(format!("D{d}"), |b| b.iter(|| solver.solve(&p).unwrap()));
    group.finish();
}

criterion_group! {
    name = benches;
    // Criterion's plots need system fonts that minimal machines lack; the numbers are the point.
    config = Criterion::default().without_plots();
    targets = bench_direct, bench_network
}
criterion_main!(benches);
