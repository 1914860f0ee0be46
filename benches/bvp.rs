//! The boundary-value solver: the Figure 1 problem, a large infinite-horizon quadratic, and
//! the cost per mesh node.
//!
//! Run: `cargo bench --bench bvp`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use lossnav::problems::{load_problem, Problem};
use lossnav::solvers::{Bvp, Scheme};

fn spec(name: &str) -> Problem {
    load_problem(format!(
        "{}/problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bench_bvp(c: &mut Criterion) {
    let fig1 = spec("figure1-double-well");
    // The solver itself; the second-order check is measured on its own below.
    let bvp = Bvp {
        second_order: false,
        ..Bvp::default().with_tol(1e-8)
    };
    let sol = bvp.solve(&fig1).unwrap();
    eprintln!(
        "figure 1 at tol 1e-8: {} nodes, {} Newton iterations",
        sol.diagnostics.nodes, sol.diagnostics.iterations
    );
    c.bench_function("bvp/figure1_double_well_tol1e-8", |b| {
        b.iter(|| bvp.solve(&fig1).unwrap())
    });
    // The same with the fourth-order scheme forced (the default picks order 6 at this tol).
    let order4 = Bvp {
        scheme: Scheme::Order4,
        ..bvp.clone()
    };
    c.bench_function("bvp/figure1_double_well_tol1e-8_order4", |b| {
        b.iter(|| order4.solve(&fig1).unwrap())
    });
    c.bench_function("bvp/figure1_second_order_check", |b| {
        b.iter(|| lossnav::solvers::certificate::check(&fig1, &sol))
    });

    let big = lossnav::testbed::random_spd_quadratic(50).0;
    let sol = bvp.solve(&big).unwrap();
    eprintln!(
        "D = 50 quadratic: {} nodes, {} Newton iterations",
        sol.diagnostics.nodes, sol.diagnostics.iterations
    );
    let mut group = c.benchmark_group("bvp");
    group.sample_size(10);
    group.bench_function("quadratic_d50_infinite_tol1e-8", |b| {
        b.iter(|| bvp.solve(&big).unwrap())
    });
    group.bench_function("quadratic_d50_infinite_tol1e-8_order4", |b| {
        b.iter(|| order4.solve(&big).unwrap())
    });
    group.finish();

    // Time per node: one Newton solve on fixed uniform meshes of growing size.
    let mut group = c.benchmark_group("bvp/fixed_mesh_figure1");
    for n in [64usize, 256, 1024, 4096] {
        // The fourth-order scheme, whose per-node cost the table in docs/benchmarks.md gives.
        let fixed = Bvp {
            scheme: Scheme::Order4,
            // The solver's time per node, as in the table; the check has its own benchmark.
            second_order: false,
            ..Bvp::default().with_fixed_mesh(n)
        };
        group.throughput(criterion::Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| fixed.solve(&fig1).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Criterion's plots need system fonts that minimal machines lack; the numbers are the point.
    config = Criterion::default().without_plots();
    targets = bench_bvp
}
criterion_main!(benches);
