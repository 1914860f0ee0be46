//! Partial observability (docs/theory.md §5.1): the exact expected cost of the certainty-equivalent
//! rule against a Monte Carlo of the observed system.

mod common;

use lossnav::problems::Spec;
use lossnav::rules::observation::ObservedLq;

pub fn spec_2d() -> Spec {
    Spec::from_json(
        r#"{"loss": {"quadratic": {"hessian": [[1.5, 0.3], [0.3, 0.8]], "minimum": [1.0, -0.5]}},
            "eta": 1.0, "k": 1.0, "gamma": 1.0, "theta0": [0.0, 0.0], "horizon": "infinite",
            "observation": {"gradient_noise": [[0.2, 0.0], [0.0, 0.1]],
                            "minimum_cov": [[0.5, 0.1], [0.1, 0.4]]}}"#,
    )
    .unwrap()
}

#[test]
fn expected_cost_is_accurate_and_above_full_information() {
    let lq = ObservedLq::from_spec(&spec_2d()).unwrap();
    let (exact, quadrature) = lq.expected_cost(1.0);
    // RK4 with step halving: the estimate of the remaining error.
    assert!(quadrature < 1e-9 * exact, "{quadrature}");
    assert!(exact > lq.full_information_cost());
}

/// Results do not depend on the number of threads: each path has its own generator.
#[test]
fn monte_carlo_is_identical_for_any_thread_count() {
    let lq = ObservedLq::from_spec(&spec_2d()).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| lq.monte_carlo(500, 9, 0.05, 1.0, 1.0).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.mean.to_bits(), two.mean.to_bits());
    assert_eq!(one.stderr.to_bits(), two.stderr.to_bits());
}

/// The issue's bar: `lossnav simulate --paths 20000` agrees with `lossnav rule`'s expected cost
/// within 4 standard errors plus the measured time-step bias.
#[test]
fn simulate_agrees_with_rule() {
    let run = common::lossnav_json;
    let spec = "problems/specs/noisy-gradients.json";
    let rule = run(&["rule", spec]);
    let sim = run(&["simulate", spec, "--paths", "20000", "--seed", "3"]);
    let exact = rule["expected_cost"].as_f64().unwrap();
    let mean = sim["expected_cost"]["mean"].as_f64().unwrap();
    let se = sim["expected_cost"]["stderr"].as_f64().unwrap();
    let bias = sim["time_step_bias"].as_f64().unwrap().abs();
    assert!(
        (mean - exact).abs() <= 4.0 * se + bias,
        "{mean} ± {se} (bias {bias}) vs {exact}"
    );
    assert_eq!(sim["exact_expected_cost"].as_f64().unwrap(), exact);
}

/// An independent computation of E[J*] in one dimension: exchanging the order of integration in
/// `∫e^{-γt} w C(t) dt` with `C(t) = e^{-2Kt}C0 + ∫_0^t e^{-2K(t−s)} f(s) ds` gives
/// `E[J*] = w/(γ+2K)·(C0 + ∫e^{-γs} f(s) ds) + (kh/2)∫e^{-γt} Σ(t) dt`, single integrals of
/// smooth functions (`f = h²Σ²/r`, `Σ = s0/(1 + h²s0t/r)`), done here by composite
/// Gauss–Legendre quadrature — no ODE, no Runge–Kutta.
#[test]
fn expected_cost_matches_an_independent_formula_in_one_dimension() {
    let (h, g, eta, k, gamma, s0, r, theta0, m0): (f64, f64, f64, f64, f64, f64, f64, f64, f64) =
        (1.7, 1.3, 0.8, 1.2, 0.6, 0.9, 0.25, 0.4, -0.3);
    let spec = Spec::from_json(&format!(
        r#"{{"loss": {{"quadratic": {{"curvatures": [{h}], "minimum": [{m0}]}}}},
            "metric": {{"diag": [{g}]}}, "eta": {eta}, "k": {k}, "gamma": {gamma},
            "theta0": [{theta0}], "horizon": "infinite",
            "observation": {{"gradient_noise": [[{r}]], "minimum_cov": [[{s0}]]}}}}"#
    ))
    .unwrap();
    let lq = ObservedLq::from_spec(&spec).unwrap();
    // The 1-D Riccati solution: −γP − ηP²/g + kh = 0, and the gain K = ηP/g.
    let p = (-gamma + (gamma * gamma + 4.0 * eta * k * h / g).sqrt()) / (2.0 * eta / g);
    let gain = eta * p / g;
    let w = gain * gain * g / eta + k * h;
    let sigma = |t: f64| s0 / (1.0 + h * h * s0 * t / r);
    // Composite 5-point Gauss–Legendre on [0, 80/γ] in panels of 0.01: the integrands are
    // smooth but Σ has a pole at t = −r/(h²s0) ≈ −0.1, close to the first panel (panels of
    // 0.05 were off by 6e-10; 0.01 agrees with a 4× finer RK4 to 4e-13); the neglected tail is
    // below e^{-80}.
    let nodes = [
        (0.0, 128.0 / 225.0),
        (-0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
        (0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
        (-0.906_179_845_938_664, 0.236_926_885_056_189_1),
        (0.906_179_845_938_664, 0.236_926_885_056_189_1),
    ];
    let integrate = |f: &dyn Fn(f64) -> f64| -> f64 {
        let (end, width) = (80.0 / gamma, 0.01);
        let panels = (end / width).ceil() as usize;
        (0..panels)
            .map(|i| {
                let (a, b) = (i as f64 * width, (i + 1) as f64 * width);
                let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
                nodes
                    .iter()
                    .map(|(x, wq)| wq * f(mid + half * x))
                    .sum::<f64>()
                    * half
            })
            .sum()
    };
    let c0 = (theta0 - m0) * (theta0 - m0);
    let forcing = integrate(&|s| (-gamma * s).exp() * h * h * sigma(s).powi(2) / r);
    let filter = integrate(&|t| (-gamma * t).exp() * sigma(t));
    let independent = w / (gamma + 2.0 * gain) * 0.5 * (c0 + forcing) + 0.5 * k * h * filter;
    let (rk4, _) = lq.expected_cost(1.0);
    // The issue's bar is 1e-6 relative; measured 3e-11 (the default RK4 steps' error; its
    // step-halving estimate says 1e-11).
    assert!(
        (rk4 - independent).abs() < 1e-10 * independent,
        "RK4 {rk4} vs independent {independent}"
    );
}
