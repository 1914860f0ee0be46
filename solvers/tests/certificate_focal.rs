//! The second-order certificate fails closed: on the hill `L = −½a·θ²` with a free end, whose
//! second variation `∫ (δθ̇² − a δθ²) dt` (η = k = 1, γ = 0, `δθ(0) = 0`) has the eigenvalues
//! `λ_n = ((n + ½)π/T)² − a` against `∫ δθ²` (eigenfunctions `sin((n + ½)πt/T)`), a path is a
//! saddle with exactly `#{n : λ_n < 0}` descent directions past the focal times
//! `T_n = (n + ½)π/√a`, and a strict minimum before the first. The certificate must give that
//! verdict, or say it cannot decide — never a minimum where `J` can be lowered.

use lossnav_problems::{Problem, Spec};
use lossnav_solvers::{Bvp, SecondOrder, Verdict};
use proptest::prelude::*;

fn hill(a: f64, theta0: f64, t_end: f64, eta: f64, k: f64) -> Problem {
    let spec = format!(
        r#"{{"loss": {{"expr": "-0.5*a*x^2", "vars": ["x"], "params": {{"a": {a}}}}},
            "eta": {eta}, "k": {k}, "gamma": 0, "theta0": [{theta0}], "horizon": {t_end},
            "end": "free"}}"#
    );
    Spec::from_json(&spec).unwrap().to_problem().unwrap()
}

/// `(descent directions, λ₀)` of the closed form.
fn closed_form(a: f64, t_end: f64) -> (usize, f64) {
    let pi = std::f64::consts::PI;
    let count = (0..)
        .take_while(|&n| (n as f64 + 0.5) * pi / a.sqrt() < t_end)
        .count();
    (count, (0.5 * pi / t_end).powi(2) - a)
}

/// What the certificate said, checked against the closed form: `Ok(true)` checked and right,
/// `Ok(false)` not checked (fail-closed, allowed), `Err` a wrong verdict.
fn judge(a: f64, t_end: f64, second_order: &SecondOrder) -> Result<bool, String> {
    let (count, lambda0) = closed_form(a, t_end);
    let c = match second_order {
        SecondOrder::Checked(c) => c,
        SecondOrder::Unchecked(_) => return Ok(false),
    };
    let expected = if count > 0 {
        Verdict::Saddle
    } else {
        Verdict::Minimum
    };
    if c.verdict != expected || c.descent_directions != count {
        return Err(format!(
            "a = {a}, T = {t_end}: {:?} with {} descent directions, closed form {count} \
             (λ₀ = {lambda0:.4e}); certificate {c:?}",
            c.verdict, c.descent_directions
        ));
    }
    // Cubic elements with h·ω ≤ 1: the eigenvalue error is far below 1e-4 (the claim
    // `second-order-agreement` measures it); the Ritz value is converged to seven digits.
    if (c.smallest_eigenvalue - lambda0).abs() > 1e-4 * (1.0 + lambda0.abs()) {
        return Err(format!(
            "a = {a}, T = {t_end}: smallest eigenvalue {:.6e}, closed form {lambda0:.6e}",
            c.smallest_eigenvalue
        ));
    }
    Ok(true)
}

fn certify(a: f64, theta0: f64, t_end: f64, eta: f64, k: f64) -> Option<SecondOrder> {
    Bvp::default()
        .solve(&hill(a, theta0, t_end, eta, k))
        .ok()
        .map(|s| s.second_order)
}

/// The issue's reproducer (a saddle at T = 1.58 had been certified a minimum with a NaN
/// eigenvalue), every horizon just past the first focal time π/2, and two descent directions
/// at T = 7.85.
#[test]
fn saddles_past_the_focal_time_are_not_minima() {
    let mut horizons = vec![1.58, 7.85];
    horizons.extend((1..=10).map(|i| std::f64::consts::FRAC_PI_2 + 0.002 * i as f64));
    for t_end in horizons {
        let so = certify(1.0, 0.3, t_end, 1.0, 1.0).expect("the hill solves");
        assert!(
            matches!(judge(1.0, t_end, &so), Ok(true)),
            "T = {t_end}: {}",
            so.describe()
        );
    }
}

/// Rescaling η by `s` and k by `1/s` multiplies `J` by `1/s` and changes no extremal, so the
/// verdict and its count must not change, at `s = 10^±80`.
#[test]
fn the_verdict_is_invariant_under_rescaling() {
    for t_end in [1.0, 1.58, 5.0] {
        let reference = certify(1.0, 0.3, t_end, 1.0, 1.0).unwrap();
        let reference = reference.certificate().expect("checked at η = k = 1");
        for (eta, k) in [(1e-80, 1e80), (1e80, 1e-80)] {
            let so = certify(1.0, 0.3, t_end, eta, k).expect("the rescaled hill solves");
            let c = so
                .certificate()
                .unwrap_or_else(|| panic!("T = {t_end}, η = {eta}: {}", so.describe()));
            assert_eq!(
                (c.verdict, c.descent_directions),
                (reference.verdict, reference.descent_directions),
                "T = {t_end}, η = {eta}, k = {k}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Horizons across the first three focal times of a random hill, from 20 % to 0.3 % on
    /// either side of each: every certified verdict matches the closed form.
    #[test]
    fn focal_time_scan_matches_the_closed_form(a in 0.3f64..3.0, theta0 in 0.1f64..0.5) {
        let pi = std::f64::consts::PI;
        let (mut checked, mut unchecked, mut failed) = (0, 0, 0);
        for n in 0..3 {
            let focal = (n as f64 + 0.5) * pi / a.sqrt();
            for eps in [-0.2, -0.05, -0.01, -0.003, 0.003, 0.01, 0.05, 0.2] {
                let t_end = focal * (1.0 + eps);
                match certify(a, theta0, t_end, 1.0, 1.0) {
                    None => failed += 1,
                    Some(so) => match judge(a, t_end, &so) {
                        Ok(true) => checked += 1,
                        Ok(false) => unchecked += 1,
                        Err(wrong) => prop_assert!(false, "{}", wrong),
                    },
                }
            }
        }
        // Near a focal time the path's amplitude grows like 1/|cos(√a·T)|, and the solve may
        // fail or the check decline; most of the 24 horizons must still be decided.
        prop_assert!(checked >= 20, "checked {checked}, unchecked {unchecked}, failed {failed}");
    }
}
