//! Learning across task switches with belief updates (docs/theory.md §6).

use lossnav::rules::continual::{ContinualSetup, Learner};

fn setup(hazard: f64) -> ContinualSetup {
    ContinualSetup {
        h: 2.0,
        eta: 1.0,
        k: 1.0,
        gamma: 0.2,
        hazard,
        prior_mean: 0.0,
        prior_var: 1.0,
        first_minimum: 1.0,
        noise: 0.5,
    }
}

/// Results do not depend on the number of threads (a generator per path).
#[test]
fn simulation_is_identical_for_any_thread_count() {
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| setup(0.3).simulate(&[Learner::Derived], 64, 5, 0.05).0[0])
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.cost.0.to_bits(), two.cost.0.to_bits());
}

/// Without switches (λ → 0) and without noise the derived learner is the known-task optimum:
/// its cost approaches ½·P·(θ0 − m)² with P = r/η.
#[test]
fn rare_switches_recover_the_known_task_cost() {
    let mut s = setup(1e-9);
    s.noise = 1e-12;
    let (out, _) = s.simulate(&[Learner::Derived], 4, 1, 0.002);
    let (r, _) = s.rate_and_pull();
    let exact = 0.5 * (r / s.eta) * (s.prior_mean - s.first_minimum).powi(2);
    // Euler steps of 0.002 at rate r ≈ 1.3: relative error ~1e-3.
    assert!(
        (out[0].cost.0 - exact).abs() < 5e-3 * exact,
        "{} vs {exact}",
        out[0].cost.0
    );
}
