//! The noisy quadratic testbed (`cargo run --release --example noisy_quadratic -- [PATHS]`):
//! every learner's expected discounted cost with its standard error, the baselines' learning
//! rates tuned on another seed, and the derived rule's curvature estimate at several window
//! lengths against the oracle.

use lossnav::rules::noisy_quadratic::{paired_difference, simulate, tune, Learner, NoisyQuadratic};

fn main() {
    let paths: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let batch: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut model = NoisyQuadratic::log_spaced(20, 0.01, 100.0, 0.3);
    model.batch = batch;
    let grid: Vec<f64> = (0..13).map(|i| 1e-4 * 10f64.powf(i as f64 / 3.0)).collect();
    let t0 = std::time::Instant::now();
    let sgd = tune(&model, |lr| Learner::Sgd { lr }, &grid, paths / 4, 99)
        .expect("a learning rate in the grid keeps the learner finite");
    let mom = tune(
        &model,
        |lr| Learner::Momentum { lr, momentum: 0.9 },
        &grid,
        paths / 4,
        99,
    )
    .expect("a learning rate in the grid keeps the learner finite");
    let rms = tune(
        &model,
        |lr| Learner::RmsProp { lr, beta2: 0.999 },
        &grid,
        paths / 4,
        99,
    )
    .expect("a learning rate in the grid keeps the learner finite");
    let adam = tune(&model, |lr| Learner::Adam { lr }, &grid, paths / 4, 99)
        .expect("a learning rate in the grid keeps the learner finite");
    let learners = [
        Learner::Sgd { lr: sgd },
        Learner::Momentum {
            lr: mom,
            momentum: 0.9,
        },
        Learner::RmsProp {
            lr: rms,
            beta2: 0.999,
        },
        Learner::Adam { lr: adam },
        Learner::Oracle,
        Learner::Derived {
            beta: 0.5,
            noise_belief: 1.0,
        },
        Learner::Derived {
            beta: 0.9,
            noise_belief: 1.0,
        },
        Learner::Derived {
            beta: 0.99,
            noise_belief: 1.0,
        },
        Learner::Derived {
            beta: 0.999,
            noise_belief: 1.0,
        },
    ];
    let oracle = simulate(&model, Learner::Oracle, paths, 1, model.steps);
    for l in learners {
        let o = simulate(&model, l, paths, 1, model.steps);
        let (md, se) = paired_difference(&o.costs, &oracle.costs);
        println!(
            "{:55} J = {:.5} ± {:.5}  vs oracle {:+.5} ± {:.5}  estimate error {:.3}",
            l.name(),
            o.cost,
            o.stderr,
            md,
            se,
            o.estimate_error
        );
    }
    println!("{:.1} s", t0.elapsed().as_secs_f64());
}
