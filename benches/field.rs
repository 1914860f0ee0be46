//! Cost of the Hamiltonian field and its exact Jacobian: the inner loop of the
//! boundary-value solver (one evaluation per collocation point per Newton iteration).
//!
//! Run: `cargo bench --bench field`

use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::DMatrix;

use lossnav::problems::{load_problem, FieldWorkspace};

fn bench_field(c: &mut Criterion) {
    for name in ["figure1-double-well", "fisher-metric", "figure3-rotation"] {
        let path = format!("{}/problems/specs/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let problem = load_problem(&path).expect("shipped spec");
        let lag = problem.lagrangian().clone();
        let d = problem.dim();
        let th = problem.theta0().as_slice().to_vec();
        let p = vec![0.3; d];
        let mut ws = FieldWorkspace::new(d);
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        c.bench_function(&format!("field/{name}"), |bench| {
            bench.iter(|| lag.field(0.1, &th, &p, &mut a, &mut b, &mut ws))
        });
        let mut jac = DMatrix::zeros(2 * d, 2 * d);
        c.bench_function(&format!("field_jacobian/{name}"), |bench| {
            bench.iter(|| lag.field_jacobian(0.1, &th, &p, &mut jac, &mut ws))
        });
    }
}

criterion_group! {
    name = benches;
    // Criterion's plots need system fonts that minimal machines lack; the numbers are the point.
    config = Criterion::default().without_plots();
    targets = bench_field
}
criterion_main!(benches);
