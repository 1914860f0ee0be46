//! One optimiser step at 10⁶ parameters: the derived rule (lossnav::rules::adaptive) next to a
//! plain Adam step written in the same style (`cargo bench --bench optimizer`).

use criterion::{criterion_group, criterion_main, Criterion};

use lossnav::rules::adaptive::DerivedOptimizer;

/// Adam (Kingma & Ba) with bias correction, in the style of `DerivedOptimizer::step`.
struct Adam {
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    t: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        self.t += 1;
        let (c1, c2) = (1.0 - self.b1.powi(self.t), 1.0 - self.b2.powi(self.t));
        let lr = self.lr * c2.sqrt() / c1;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = self.b1 * *m + (1.0 - self.b1) * g;
            *v = self.b2 * *v + (1.0 - self.b2) * g * g;
            *p -= lr * *m / (v.sqrt() + self.eps);
        }
    }
}

fn bench_optimizers(c: &mut Criterion) {
    let n = 1_000_000;
    let grads: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin()).collect();
    let mut params = vec![0.0; n];
    let mut group = c.benchmark_group("optimizer_step_1e6");
    group.sample_size(30);
    let mut derived = DerivedOptimizer::new(n, 1e-3)
        .with_beta1(0.9)
        .with_objective(1.0, 0.01);
    group.bench_function("derived_with_first_moment", |b| {
        b.iter(|| derived.step(&mut params, &grads))
    });
    let mut ballistic = DerivedOptimizer::new(n, 1e-3);
    group.bench_function("derived_ballistic", |b| {
        b.iter(|| ballistic.step(&mut params, &grads))
    });
    let mut adam = Adam {
        lr: 1e-3,
        b1: 0.9,
        b2: 0.999,
        eps: 1e-8,
        t: 0,
        m: vec![0.0; n],
        v: vec![0.0; n],
    };
    group.bench_function("plain_adam", |b| b.iter(|| adam.step(&mut params, &grads)));
    group.finish();
}

criterion_group! {
    name = benches;
    // Plots need system fonts this machine may lack.
    config = Criterion::default().without_plots();
    targets = bench_optimizers
}
criterion_main!(benches);
