//! Beliefs: learners that see only noisy gradients — the expected cost of filtering them
//! (Kalman–Bucy) and applying the certainty-equivalent rule, the optimality of that gain, the
//! gradient filter behind Adam's first moment, and the curvature estimated from gradients on
//! the noisy quadratic model. Most are Monte Carlo checks at a fixed seed.

use super::measurement;
use crate::verify::{Claim, Measurement, Unit};

/// The observed quadratic shared by `observed-expected-cost` and `certainty-equivalence`.
fn observed_spec() -> Result<lossnav_problems::Spec, String> {
    lossnav_problems::Spec::from_json(
        r#"{"loss": {"quadratic": {"hessian": [[1.5, 0.3], [0.3, 0.8]], "minimum": [1.0, -0.5]}},
            "eta": 1.0, "k": 1.0, "gamma": 1.0, "theta0": [0.0, 0.0], "horizon": "infinite",
            "observation": {"gradient_noise": [[0.2, 0.0], [0.0, 0.1]],
                            "minimum_cov": [[0.5, 0.1], [0.1, 0.4]]}}"#,
    )
    .map_err(|e| e.to_string())
}

pub(super) const OBSERVED_EXPECTED_COST: Claim = Claim {
    id: "observed-expected-cost",
    paper: "§ beliefs; docs/theory.md §5.1",
    statement: "A learner that sees only noisy gradients of a quadratic with unknown minimum, filtering them (Kalman–Bucy) and applying the certainty-equivalent rule, pays E[J*] = ∫e^{-γt}[½tr((ηPG⁻¹P + kH)C_t) + (k/2)tr(HΣ_t)]dt",
    closed_form: "Σ_t = S0(I + HR⁻¹HS0t)⁻¹, dC/dt = −KC − CKᵀ + ΣHR⁻¹HΣ, RK4 with step halving (error estimate 1e-11)",
    procedure: "Monte Carlo of the observed system (μ from the prior, noisy gradients, the filter, the rule; Euler–Maruyama dt = 0.01, 10 000 paths, seed 11) within 4 standard errors plus the time-step bias measured against dt = 0.02 under common random numbers",
    tolerance: "1 in units of 4 standard errors of the Monte Carlo mean (seed 11, 10 000 paths) plus the Euler–Maruyama bias (first order in the weak sense, estimated as the change from dt = 0.02 to dt = 0.01 under common random numbers) plus the quadrature error estimate of E[J*]",
    check: observed_expected_cost,
};

fn observed_expected_cost() -> Result<Measurement, String> {
    observed_expected_cost_with(1.0)
}

/// The Monte Carlo check of `E[J*]` with the filter's gain scaled by `filter_scale` (1: the
/// Kalman–Bucy filter; another value simulates a wrong filter, which must fail the check).
pub fn observed_expected_cost_with(filter_scale: f64) -> Result<Measurement, String> {
    use crate::rules::observation::ObservedLq;
    let lq = ObservedLq::from_spec(&observed_spec()?).map_err(|e| e.to_string())?;
    let (exact, quadrature) = lq.expected_cost(1.0);
    let paths = 10_000;
    let fine = lq
        .monte_carlo(paths, 11, 0.01, 1.0, filter_scale)
        .map_err(|e| e.to_string())?;
    let coarse = lq
        .monte_carlo(paths, 11, 0.02, 1.0, filter_scale)
        .map_err(|e| e.to_string())?;
    // Euler–Maruyama is first order in the weak sense: the bias at dt is about the change
    // from 2dt to dt (common random numbers make that difference precise).
    let bias = (coarse.mean - fine.mean).abs();
    let allowed = 4.0 * fine.stderr + bias + quadrature;
    measurement(
        (fine.mean - exact).abs() / allowed,
        1.0,
        Unit::Other("units of (4 SE + time-step bias)"),
        format!(
            "E[J*] exact {exact:.6} (quadrature error {quadrature:.1e}); Monte Carlo {:.6} ± {:.6} \
             ({paths} paths, dt = 0.01), time-step bias {bias:.4} (vs dt = 0.02); error in \
             units of 4 SE + bias",
            fine.mean, fine.stderr
        ),
    )
}

pub(super) const CERTAINTY_EQUIVALENCE: Claim = Claim {
    id: "certainty-equivalence",
    paper: "§ beliefs; docs/theory.md §5.1",
    statement: "The certainty-equivalent gain is optimal: scaling it by 0.8 or 1.2 raises the expected cost (exactly and in Monte Carlo under common random numbers), and not knowing the minimum costs more than knowing it",
    closed_form: "E[J](s) from the C_t equation with gain sK; E[J*] ≥ ½[(θ0−m0)ᵀP(θ0−m0) + tr(PS0)]",
    procedure: "the exact E[J](s) at s = 0.8, 1, 1.2; Monte Carlo (4 000 paths, seed 5, the same noise for every s) of the cost differences with their standard errors",
    tolerance: "0: the error counts failed orderings (exact E[J] at gain ×0.8 and ×1.2 above ×1, ×1 not below the full-information cost, and the same two in Monte Carlo with 4 000 paths, seed 5, common noise); the Monte Carlo orderings compare bare means, with no standard-error margin",
    check: certainty_equivalence,
};

fn certainty_equivalence() -> Result<Measurement, String> {
    use crate::rules::observation::ObservedLq;
    let lq = ObservedLq::from_spec(&observed_spec()?).map_err(|e| e.to_string())?;
    let exact: Vec<f64> = [0.8, 1.0, 1.2]
        .iter()
        .map(|&s| lq.expected_cost(s).0)
        .collect();
    let full = lq.full_information_cost();
    let mc: Vec<f64> = [0.8, 1.0, 1.2]
        .iter()
        .map(|&s| lq.monte_carlo(4000, 5, 0.02, s, 1.0).map(|e| e.mean))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut failures = 0;
    failures += usize::from(exact[0] <= exact[1]);
    failures += usize::from(exact[2] <= exact[1]);
    failures += usize::from(exact[1] < full);
    failures += usize::from(mc[0] <= mc[1]);
    failures += usize::from(mc[2] <= mc[1]);
    measurement(
        failures as f64,
        0.0,
        Unit::Failures(5),
        format!(
            "exact E[J] at gain ×0.8, ×1, ×1.2: {:.6}, {:.6}, {:.6}; full information {full:.6}; \
             Monte Carlo (common noise): {:.5}, {:.5}, {:.5}",
            exact[0], exact[1], exact[2], mc[0], mc[1], mc[2]
        ),
    )
}

pub(super) const GRADIENT_FILTER_GAIN: Claim = Claim {
    id: "gradient-filter-gain",
    paper: "§ beliefs (first moment); docs/theory.md §5.2",
    statement: "Filtering noisy gradients with an AR(1) prior gives the first-moment update m_n = β1 m_{n−1} + K ĝ_n with β1 = φ(1 − K); Adam's 1 − β1 on the new gradient holds only for a random walk",
    closed_form: "P⁻ the positive root of P² + P(r(1−φ²) − q) − qr = 0, K = P⁻/(P⁻ + r)",
    procedure: "the time-varying Kalman filter iterated to convergence for φ ∈ {1, 0.9, 0.5} and three noise ratios, its update checked against β1 m + K ĝ on random data",
    tolerance: "1e-12: both comparisons (the iterated Riccati recursion against the closed-form root, relative, and the Kalman update against β1 m + K ĝ) are exact identities, so only rounding remains",
    check: gradient_filter_gain,
};

fn gradient_filter_gain() -> Result<Measurement, String> {
    gradient_filter_with(|phi, k| phi * (1.0 - k))
}

/// The gradient-filter check with a given `β1(φ, K)` (Adam's `1 − K` must fail for φ ≠ 1).
pub fn gradient_filter_with(beta1: fn(f64, f64) -> f64) -> Result<Measurement, String> {
    use crate::rules::adaptive::steady_state_gain;
    let mut worst = 0.0_f64;
    let mut rng = crate::testbed::uniform(3);
    for phi in [1.0, 0.9, 0.5] {
        for (q, r) in [(0.01, 1.0), (1.0, 1.0), (2.0, 0.1)] {
            let ss = steady_state_gain(phi, q, r);
            // The time-varying filter's Riccati recursion from the prior variance 1.
            let mut p_minus: f64 = 1.0;
            for _ in 0..10_000 {
                let post = p_minus * r / (p_minus + r);
                p_minus = phi * phi * post + q;
            }
            worst = worst.max((p_minus - ss.predicted_variance).abs() / ss.predicted_variance);
            // The steady filter's update m = φm + K(ĝ − φm) is β1 m + K ĝ.
            let b1 = beta1(phi, ss.gain);
            let mut m = 0.0;
            for _ in 0..100 {
                let g_hat = rng();
                let kalman = phi * m + ss.gain * (g_hat - phi * m);
                let form = b1 * m + ss.gain * g_hat;
                worst = worst.max((kalman - form).abs());
                m = kalman;
            }
        }
    }
    // Both are exact identities: rounding only.
    measurement(
        worst,
        1e-12,
        Unit::Relative,
        format!(
            "largest relative difference of P⁻ and of the update form {worst:.1e} over 9 filters"
        ),
    )
}

pub(super) const NOISY_QUADRATIC_ESTIMATED_CURVATURE: Claim = Claim {
    id: "noisy-quadratic-estimated-curvature",
    paper: "§ beliefs (Adam-like); docs/theory.md §5.3",
    statement: "On the noisy quadratic model (curvatures over four decades, gradient noise proportional to curvature), the derived rule with the curvature estimated from the gradients approaches the oracle rule that knows the curvatures as the estimate improves",
    closed_form: "oracle: Δθ = −Δt·r(h)/h·ḡ with r(h)/h = √(ηk)/(√(h + ε²) + ε); derived: the same with ĥ = averaged minibatch variance / σ²",
    procedure: "Monte Carlo (200 paths, seed 1, common random numbers across learners) at minibatch sizes M = 2, 8, 32 (β = 0.9): the excess cost over the oracle must fall at each step by 4 standard errors and end below 0.5 % of the oracle's cost",
    tolerance: "5e-3: the final excess (M = 32) must be below 0.5 % of the oracle's cost (a chosen bar, not derived), and the excess must fall from each minibatch size to the next by 4 standard errors of the difference (added in quadrature: the sizes use different draws), else the error is infinite",
    check: noisy_quadratic_estimated_curvature,
};

fn noisy_quadratic_estimated_curvature() -> Result<Measurement, String> {
    noisy_quadratic_gaps(1.0)
}

/// The noisy-quadratic claim for a learner that assumes the noise scale `noise_belief·σ`
/// (1 is the claim; another value must make it fail).
pub fn noisy_quadratic_gaps(noise_belief: f64) -> Result<Measurement, String> {
    use crate::rules::noisy_quadratic::{paired_difference, simulate, Learner, NoisyQuadratic};
    let mut model = NoisyQuadratic::log_spaced(12, 0.01, 100.0, 0.3);
    let mut gaps = Vec::new();
    for batch in [2, 8, 32] {
        model.batch = batch;
        let oracle = simulate(&model, Learner::Oracle, 200, 1, model.steps);
        let derived = simulate(
            &model,
            Learner::Derived {
                beta: 0.9,
                noise_belief,
            },
            200,
            1,
            model.steps,
        );
        // Paired under common random numbers: the excess cost per path.
        let (mean, se) = paired_difference(&derived.costs, &oracle.costs);
        gaps.push((batch, mean, se, oracle.cost, derived.estimate_error));
    }
    // Each larger minibatch must lower the excess by 4 standard errors of the difference
    // (the sizes use different draws, so the errors add in quadrature).
    let falling = gaps
        .windows(2)
        .all(|w| w[0].1 - w[1].1 > 4.0 * (w[0].2.powi(2) + w[1].2.powi(2)).sqrt());
    let last = gaps[gaps.len() - 1];
    let relative = last.1.abs() / last.3;
    let detail = gaps
        .iter()
        .map(|(m, g, se, j, e)| {
            format!(
                "M = {m}: excess {g:.4} ± {se:.4} over the oracle's {j:.3} (estimate error {e:.3})"
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    measurement(
        if falling { relative } else { f64::INFINITY },
        5e-3,
        Unit::Relative,
        format!(
            "{detail}; falling at 4 SE: {falling}; final excess {:.2} % of the oracle's cost",
            100.0 * relative
        ),
    )
}

pub(super) const PAPER_ADAM_DERIVATION: Claim = Claim {
    id: "paper-adam-derivation",
    paper: "§ beliefs (Adam-like), appendix; docs/theory.md §5.4",
    statement: "Adam's whole step follows from beliefs: a gradient with an AR(1) prior filtered from minibatch gradients gives the first moment (β1 = φ(1 − K₁)), a curvature with an AR(1) prior filtered from squared minibatch gradients (whose mean is σ²h when the gradient noise is proportional to the curvature) gives the second moment (β2 = ψ(1 − K₂), Adam's 1 − β2 on the new square for a random walk), and the ballistic rule with ε = γ/(2√(ηk)) divides one by the square root of the other",
    closed_form: "m_n = β1 m_{n−1} + K₁ĝ_n, ĥ_n − h̄ = β2(ĥ_{n−1} − h̄) + K₂(ĝ_n²/σ² − h̄), Δθ = −Δt√(ηk) m/(√(ĥ + ε²) + ε); for φ = ψ = 1: Adam's update with lr = Δt√(ηk)σ, β1 = 1 − K₁, β2 = 1 − K₂ and its ε as σε, inside and outside the root",
    procedure: "the two-level model simulated (seed 11, 3000 steps; gradient AR(1) with φ, curvature AR(1) with ψ, minibatch noise of variance σ²h): the time-varying Kalman filters of both levels (from prior variances far from steady) against the steady recursions after 1500 steps, for (φ, ψ) = (1, 1), (0.95, 0.99); and, for (1, 1), the composed step against DerivedOptimizer's step with β1 = 1 − K₁, β2 = 1 − K₂, lr = Δt·σ and γ scaled by σ",
    tolerance: "1e-10: the time-varying filters converge to the steady ones geometrically (the slowest gain here is 0.035, so after 1500 steps the difference is below 1e-20 of the data's scale) and the step comparison is an identity, so rounding remains; a β2 that differs from ψ(1 − K₂) by 1e-4 moves the estimate by far more",
    check: paper_adam_derivation,
};

fn paper_adam_derivation() -> Result<Measurement, String> {
    paper_adam_with(|psi, k2| psi * (1.0 - k2))
}

/// The Adam-derivation check with `β2(ψ, K₂)` as an argument (Adam's `1 − K₂` must fail for
/// ψ ≠ 1).
pub fn paper_adam_with(beta2: fn(f64, f64) -> f64) -> Result<Measurement, String> {
    use crate::rules::adaptive::{normalised_rate, steady_state_gain, DerivedOptimizer};
    let (sigma2, h_bar, q1, q2) = (0.5_f64, 2.0_f64, 0.01, 0.01);
    let (eta, k, gamma, dt) = (0.8, 1.5, 0.3, 0.05);
    // The squared gradient's observation noise, linearised at the mean curvature: a Gaussian
    // ĝ of variance σ²h has Var(ĝ²/σ²) = 2h².
    let r1 = sigma2 * h_bar;
    let r2 = 2.0 * h_bar * h_bar;
    let (steps, burn_in) = (3000, 1500);
    let mut worst = 0.0_f64;
    let mut detail = Vec::new();
    for (phi, psi) in [(1.0, 1.0), (0.95, 0.99)] {
        let first = steady_state_gain(phi, q1, r1);
        let second = steady_state_gain(psi, q2, r2);
        let (b1, b2) = (first.beta1, beta2(psi, second.gain));
        let mut stream = crate::rules::random::PathStream::new(11, 0);
        let mut rng = || stream.normal();
        let (mut g, mut h) = (0.3, h_bar);
        // Time-varying filters: means and predicted variances, from priors far from steady.
        let (mut mg, mut pg) = (0.0, 1.0);
        let (mut mh, mut ph) = (h_bar, 5.0);
        // Steady recursions in the Adam form.
        let (mut m, mut s) = (0.0, h_bar);
        let mut gap = 0.0_f64;
        for n in 0..steps {
            g = phi * g + q1.sqrt() * rng();
            // Reflected at 0.1 so the minibatch noise σ²h stays a variance.
            h = (h_bar + psi * (h - h_bar) + q2.sqrt() * rng())
                .abs()
                .max(0.1);
            let g_hat = g + (sigma2 * h).sqrt() * rng();
            let y = g_hat * g_hat / sigma2;
            // Kalman: predict, then update with the gain of the predicted variance.
            let (pred_g, pred_pg) = (phi * mg, phi * phi * pg + q1);
            let kg = pred_pg / (pred_pg + r1);
            (mg, pg) = (pred_g + kg * (g_hat - pred_g), (1.0 - kg) * pred_pg);
            let (pred_h, pred_ph) = (h_bar + psi * (mh - h_bar), psi * psi * ph + q2);
            let kh = pred_ph / (pred_ph + r2);
            (mh, ph) = (pred_h + kh * (y - pred_h), (1.0 - kh) * pred_ph);
            m = b1 * m + first.gain * g_hat;
            s = h_bar + b2 * (s - h_bar) + second.gain * (y - h_bar);
            if n >= burn_in {
                gap = gap.max((m - mg).abs()).max((s - mh).abs() / h_bar);
            }
        }
        worst = worst.max(gap);
        detail.push(format!(
            "(φ, ψ) = ({phi}, {psi}): β1 = {b1:.6}, K₁ = {:.6}, β2 = {b2:.6}, K₂ = {:.6}, steady vs time-varying {gap:.1e}",
            first.gain, second.gain
        ));
        if phi == 1.0 && psi == 1.0 {
            // The composed step: ε = γ/(2√(ηk)) on the curvature ĥ; in the units of the
            // squared gradient σ²ĥ it is σε, and the rate carries σ.
            let sigma = sigma2.sqrt();
            let mut opt = DerivedOptimizer::new(1, dt * sigma)
                .with_objective(eta * k, gamma * sigma)
                .with_beta1(1.0 - first.gain)
                .with_beta2(1.0 - second.gain);
            let mut stream = crate::rules::random::PathStream::new(12, 0);
            let mut rng = || stream.normal();
            let (mut theta, mut m, mut s2) = ([0.7_f64], 0.0, 0.0);
            let mut step_gap = 0.0_f64;
            for _ in 0..200 {
                let g_hat = 0.2 + 0.5 * rng();
                // The belief route, by hand: both filters, then the curvature-normalised rate.
                m = (1.0 - first.gain) * m + first.gain * g_hat;
                s2 = (1.0 - second.gain) * s2 + second.gain * g_hat * g_hat;
                let h_est = s2 / sigma2;
                let by_hand = -dt * normalised_rate(eta, k, gamma, h_est) * m;
                let before = theta[0];
                opt.step(&mut theta, &[g_hat]);
                step_gap =
                    step_gap.max(((theta[0] - before) - by_hand).abs() / by_hand.abs().max(1e-300));
            }
            worst = worst.max(step_gap);
            detail.push(format!(
                "composed step against DerivedOptimizer {step_gap:.1e} (relative)"
            ));
        }
    }
    measurement(worst, 1e-10, Unit::Relative, detail.join("; "))
}
