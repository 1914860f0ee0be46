//! The training layer's cost (`cargo bench --bench training`):
//!
//! - one optimiser step on a candle variable of 10⁶ `f32` parameters: the framework's
//!   Ballistic and derived rules ([`RuleOptimizer`], in place), candle's own AdamW and SGD, and
//!   the Ballistic step written directly with candle tensor operations;
//! - one epoch of the digits MLP (12 minibatches of 128, forward, backward, clip, step) with
//!   the framework's Ballistic rule and with the same rule written directly in candle: the
//!   overhead of the optimiser layer.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use criterion::{criterion_group, criterion_main, Criterion};

use lossnav::rules::adaptive::DerivedOptimizer;
use lossnav::train::data;
use lossnav::train::model::{Architecture, Network};
use lossnav::train::optimizer::{clip_scale, RuleConfig, RuleOptimizer};

/// The Ballistic step in plain candle: `s ← β2 s + (1−β2) g²; θ ← θ − lr g/√(s + 1e-8)`.
struct PlainBallistic {
    vars: Vec<(Var, Tensor)>,
    lr: f64,
    beta2: f64,
    clip: f64,
}

impl PlainBallistic {
    fn new(vars: &[Var], lr: f64, beta2: f64, clip: f64) -> Self {
        Self {
            vars: vars
                .iter()
                .map(|v| (v.clone(), v.zeros_like().unwrap()))
                .collect(),
            lr,
            beta2,
            clip,
        }
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) {
        let scale = clip_scale(grads, self.vars.iter().map(|(v, _)| v), Some(self.clip)).unwrap();
        for (var, s) in self.vars.iter_mut() {
            let g = (grads.get(var).unwrap() * scale).unwrap();
            *s = ((&*s * self.beta2).unwrap() + (g.sqr().unwrap() * (1.0 - self.beta2)).unwrap())
                .unwrap();
            let step = (g / (s.clone() + 1e-8).unwrap().sqrt().unwrap()).unwrap();
            var.set(&var.sub(&(step * self.lr).unwrap()).unwrap())
                .unwrap();
        }
    }
}

fn bench_step(c: &mut Criterion) {
    let n = 1_000_000;
    let dev = Device::Cpu;
    let grad: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let w = Var::zeros(n, DType::F32, &dev).unwrap();
    // A gradient store holding `grad` for `w`: the backward pass of Σ w·grad.
    let gt = Tensor::from_vec(grad, n, &dev).unwrap();
    let grads = (w.as_tensor() * &gt)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut group = c.benchmark_group("candle_step_1e6");
    group.sample_size(30);
    let mut ballistic =
        RuleOptimizer::<DerivedOptimizer>::new(vec![w.clone()], RuleConfig::ballistic(1e-3, 0.999))
            .unwrap();
    group.bench_function("lossnav_ballistic", |b| {
        b.iter(|| ballistic.step(&grads).unwrap())
    });
    let mut derived = RuleOptimizer::<DerivedOptimizer>::new(
        vec![w.clone()],
        RuleConfig::derived(1e-3, 1.0, 2e-3).with_beta1(0.9),
    )
    .unwrap();
    group.bench_function("lossnav_derived_first_moment", |b| {
        b.iter(|| derived.step(&grads).unwrap())
    });
    let mut plain = PlainBallistic::new(std::slice::from_ref(&w), 1e-3, 0.999, f64::INFINITY);
    group.bench_function("plain_candle_ballistic", |b| b.iter(|| plain.step(&grads)));
    let mut adam = candle_nn::AdamW::new_lr(vec![w.clone()], 1e-3).unwrap();
    group.bench_function("candle_adamw", |b| b.iter(|| adam.step(&grads).unwrap()));
    let mut sgd = candle_nn::SGD::new(vec![w.clone()], 1e-3).unwrap();
    group.bench_function("candle_sgd", |b| b.iter(|| sgd.step(&grads).unwrap()));
    group.finish();
}

fn bench_epoch(c: &mut Criterion) {
    let set = data::digits();
    let n = set.train.len();
    let batches: Vec<(Tensor, Tensor)> = (0..n)
        .collect::<Vec<_>>()
        .chunks(128)
        .map(|idx| {
            let sub = set.train.select(idx);
            let x = Tensor::from_vec(sub.pixels, (idx.len(), 64), &Device::Cpu).unwrap();
            let y = Tensor::from_vec(
                sub.labels.iter().map(|&l| l as u32).collect::<Vec<u32>>(),
                idx.len(),
                &Device::Cpu,
            )
            .unwrap();
            (x, y)
        })
        .collect();
    let net = || Network::new(Architecture::digits_mlp(), (1, 8, 8), 10, DType::F32, 0).unwrap();
    let mut group = c.benchmark_group("digits_mlp_epoch");
    group.sample_size(30);
    let a = net();
    let mut ours = RuleOptimizer::<DerivedOptimizer>::new(
        a.vars().to_vec(),
        RuleConfig::ballistic(5e-4, 0.999).with_clip(5.0),
    )
    .unwrap();
    group.bench_function("lossnav_ballistic", |bch| {
        bch.iter(|| {
            for (x, y) in &batches {
                let loss = a.loss(x, y).unwrap();
                ours.backward_step(&loss).unwrap();
            }
        })
    });
    let b = net();
    let mut plain = PlainBallistic::new(b.vars(), 5e-4, 0.999, 5.0);
    group.bench_function("plain_candle_ballistic", |bch| {
        bch.iter(|| {
            for (x, y) in &batches {
                let loss = b.loss(x, y).unwrap();
                plain.step(&loss.backward().unwrap());
            }
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().without_plots()
}

criterion_group! {name = benches; config = config(); targets = bench_step, bench_epoch}
criterion_main!(benches);
