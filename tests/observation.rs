//! Partial observability (THEORY.md §5.1): the exact expected cost of the certainty-equivalent
//! rule against a Monte Carlo of the observed system.

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
            .install(|| lq.monte_carlo(500, 9, 0.05, 1.0, 1.0))
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.mean.to_bits(), two.mean.to_bits());
    assert_eq!(one.stderr.to_bits(), two.stderr.to_bits());
}

/// The issue's bar: `lossnav simulate --paths 20000` agrees with `lossnav rule`'s expected cost
/// within 4 standard errors plus the measured time-step bias.
#[test]
fn simulate_agrees_with_rule() {
    let run = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lossnav"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
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
