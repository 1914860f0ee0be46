//! Sensitivities of the Figure 1 solution against the solve itself: every parameter of the
//! problem (η, k, γ, T, θ0, the fixed end and the loss's four parameters: 12), cost and path,
//! beside the default solve (certificate on) and the bare solve.
//!
//! Run: `cargo bench --bench sensitivity`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

use lossnav::problems::{Spec, SpecPath};
use lossnav::solvers::sensitivity::{sensitivities, Parameter, SensitivityOptions};
use lossnav::solvers::Bvp;

fn bench(c: &mut Criterion) {
    let spec = Spec::from_file(format!(
        "{}/problems/specs/figure1-double-well.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let problem = spec.to_problem().unwrap();
    let mut params = vec![
        Parameter::Eta,
        Parameter::K,
        Parameter::Gamma,
        Parameter::Horizon,
        Parameter::Theta0(0),
        Parameter::Theta0(1),
        Parameter::End(0),
        Parameter::End(1),
    ];
    for name in ["params.a", "params.b", "params.c", "params.d"] {
        let path = SpecPath::parse(name, &spec).unwrap();
        let (value, spec) = (path.get(&spec).unwrap(), spec.clone());
        params.push(Parameter::Other {
            name: name.into(),
            value,
            build: Arc::new(move |v| path.set(&spec, v)?.to_problem()),
        });
    }
    let default = Bvp::default().with_tol(1e-8);
    let bare = Bvp {
        second_order: false,
        ..default.clone()
    };
    let sol = default.solve(&problem).unwrap();
    let opts = SensitivityOptions::default();
    let core = &params[..8];
    c.bench_function("sensitivity/figure1_solve_default", |b| {
        b.iter(|| default.solve(&problem).unwrap())
    });
    c.bench_function("sensitivity/figure1_solve_bare", |b| {
        b.iter(|| bare.solve(&problem).unwrap())
    });
    c.bench_function("sensitivity/figure1_all_12_parameters", |b| {
        b.iter(|| sensitivities(&problem, &sol, &params, &opts).unwrap())
    });
    c.bench_function("sensitivity/figure1_8_built_in_parameters", |b| {
        b.iter(|| sensitivities(&problem, &sol, core, &opts).unwrap())
    });
    let cost_only = SensitivityOptions {
        path: false,
        ..opts.clone()
    };
    c.bench_function("sensitivity/figure1_all_12_cost_only", |b| {
        b.iter(|| sensitivities(&problem, &sol, &params, &cost_only).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
