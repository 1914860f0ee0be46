//! What a researcher's own crate does with `lossnav`, through the public API only (an
//! integration test is compiled as a separate crate): a loss, a θ-dependent metric and a drift
//! written in Rust with automatic derivatives, solved, checked against an independent solver,
//! serialised as the CLI would write it, and plotted.

use lossnav::problems::nalgebra::dvector;
use lossnav::problems::{
    AutoDiff, DifferentiableDrift, DifferentiableLoss, DifferentiableMetric, End, Horizon,
    Lagrangian, Problem, Scalar,
};
use lossnav::solvers::{Bvp, Direct};

/// A tilted double well, `(x² − 1)² + y² − x/2`.
struct Tilted;
impl DifferentiableLoss for Tilted {
    fn dim(&self) -> usize {
        2
    }
    fn eval<S: Scalar>(&self, th: &[S], _t: f64) -> S {
        let (x, y) = (th[0].clone(), th[1].clone());
        (x.clone() * x.clone() - 1.0).powi(2) + y.clone() * y - x * 0.5
    }
}

/// `G(θ) = diag(1 + x²/2, 1 + y²)`: change is dearer far from the origin.
struct Stiffening;
impl DifferentiableMetric for Stiffening {
    fn dim(&self) -> usize {
        2
    }
    fn metric<S: Scalar>(&self, th: &[S]) -> Vec<S> {
        let (x, y) = (th[0].clone(), th[1].clone());
        vec![
            x.clone() * x * 0.5 + 1.0,
            S::from(0.0),
            S::from(0.0),
            y.clone() * y + 1.0,
        ]
    }
}

/// A weak nonlinear rotation, `f(θ) = 0.2 (−y, x) cos(x)`.
struct Swirl;
impl DifferentiableDrift for Swirl {
    fn dim(&self) -> usize {
        2
    }
    fn eval<S: Scalar>(&self, th: &[S], _t: f64) -> Vec<S> {
        let (x, y) = (th[0].clone(), th[1].clone());
        let c = x.clone().cos() * 0.2;
        vec![-y * c.clone(), x * c]
    }
}

fn problem() -> Problem {
    let lagrangian = Lagrangian::new(AutoDiff(Tilted))
        .with_metric(AutoDiff(Stiffening))
        .with_drift(AutoDiff(Swirl))
        .with_eta(1.0)
        .with_k(1.0)
        .with_gamma(0.1);
    Problem::new(
        lagrangian,
        dvector![-0.6, 0.55],
        Horizon::Finite(4.0),
        End::Free {
            terminal_cost: None,
        },
    )
    .unwrap()
}

/// Two independent solvers of the same objective agree: the collocation boundary-value solver
/// (tol 1e-9) and the direct minimisation of J (400 intervals; its cost error is O(h⁴), about
/// 1e-8 here, measured by halving). 1e-6 is far above both and far below any wrong derivative
/// of the metric or drift, which moves the cost in the third digit.
#[test]
fn a_users_metric_and_drift_solve_and_two_solvers_agree() {
    let p = problem();
    let bvp = Bvp::default().with_tol(1e-9).solve(&p).unwrap();
    let direct = Direct::default().with_intervals(400).solve(&p).unwrap();
    assert!(bvp.accuracy.tolerance_met(), "{}", bvp.status());
    assert!(
        (bvp.cost - direct.cost).abs() < 1e-6,
        "{} vs {}",
        bvp.cost,
        direct.cost
    );
    // The status line says what was verified.
    assert!(bvp.status().contains("≤ tol"), "{}", bvp.status());

    // Serialised as `lossnav solve` writes it.
    let text = serde_json::to_string(&bvp).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["cost"], bvp.cost);
    assert_eq!(doc["accuracy"]["verified"], "tolerance met");
    assert_eq!(doc["t"].as_array().unwrap().len(), bvp.t.len());

    // Plotted: the landscape with the optimal path, and the time courses.
    let dir = std::env::temp_dir().join(format!("lossnav-user-crate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("mine.png");
    let written = lossnav::figures::solution_figures(&p, &bvp, &out, &Default::default()).unwrap();
    assert_eq!(written.len(), 2);
    for f in &written {
        assert!(
            std::fs::metadata(f).unwrap().len() > 1000,
            "{}",
            f.display()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
