//! Shared numerics of the claim checks: solving, sampling, integrating rules forward.

use nalgebra::DVector;

use lossnav_problems::{End, Horizon, Lagrangian, Problem, Spec};
use lossnav_solvers::{Bvp, Solution};

/// Solver tolerance of the checks: local error 1e-10, global error measured at a few 1e-11
/// on the quadratic problems (tests `bvp_quadratic`), so 1e-8 tolerances on closed forms
/// leave two orders of margin.
pub const TOL: f64 = 1e-10;

/// A shipped spec, compiled in so `lossnav check` runs from any directory.
pub fn shipped(name: &str) -> Spec {
    let text = match name {
        "figure1-double-well" => include_str!("../../problems/specs/figure1-double-well.json"),
        "figure1-double-well-infinite" => {
            include_str!("../../problems/specs/figure1-double-well-infinite.json")
        }
        "figure3-rotation" => include_str!("../../problems/specs/figure3-rotation.json"),
        "figure3-weight-decay" => include_str!("../../problems/specs/figure3-weight-decay.json"),
        "partial-controllability" => {
            include_str!("../../problems/specs/partial-controllability.json")
        }
        "fisher-metric" => include_str!("../../problems/specs/fisher-metric.json"),
        other => panic!("no shipped spec {other}"),
    };
    Spec::from_json(text).expect("shipped specs are valid")
}

/// An infinite-horizon problem toward the equilibrium reached from `theta0` (or `guess`).
pub fn infinite(lag: Lagrangian, theta0: &[f64], guess: Option<&[f64]>) -> Result<Problem, String> {
    Problem::new(
        lag,
        DVector::from_column_slice(theta0),
        Horizon::Infinite,
        End::Equilibrium {
            guess: guess.map(DVector::from_column_slice),
        },
    )
    .map_err(|e| e.to_string())
}

/// Solves with the boundary-value solver at [`TOL`].
pub fn solve(problem: &Problem) -> Result<Solution, String> {
    let sol = Bvp::default()
        .with_tol(TOL)
        .solve(problem)
        .map_err(|e| e.to_string())?;
    if sol.accuracy.tolerance_met() {
        Ok(sol)
    } else {
        Err(format!(
            "the boundary-value solver's tolerance is not met: {}",
            sol.accuracy.describe()
        ))
    }
}

/// `max_i |a_i - b_i|`, NaN if any difference is NaN.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    // NaN, not `f64::max`'s silent drop of it: a comparison with a NaN must fail its claim.
    a.iter().zip(b).fold(0.0_f64, |m, (x, y)| {
        let d = (x - y).abs();
        if m.is_nan() || d.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    })
}

/// Integrates `θ̇ = v(θ)` with the classical fourth-order Runge–Kutta method, `steps` equal
/// steps to time `t_end`, returning the samples. With the step sizes used by the checks
/// (≤ 1e-3 on rates of order one) its error is below 1e-12, far under every tolerance that
/// uses it.
pub fn rk4(
    v: &dyn Fn(&[f64]) -> Vec<f64>,
    theta0: &[f64],
    t_end: f64,
    steps: usize,
) -> Vec<Vec<f64>> {
    let h = t_end / steps as f64;
    let mut out = Vec::with_capacity(steps + 1);
    let mut y = theta0.to_vec();
    out.push(y.clone());
    let axpy = |y: &[f64], k: &[f64], a: f64| -> Vec<f64> {
        y.iter().zip(k).map(|(y, k)| y + a * k).collect()
    };
    for _ in 0..steps {
        let k1 = v(&y);
        let k2 = v(&axpy(&y, &k1, h / 2.0));
        let k3 = v(&axpy(&y, &k2, h / 2.0));
        let k4 = v(&axpy(&y, &k3, h));
        for i in 0..y.len() {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        out.push(y.clone());
    }
    out
}

/// The (natural) gradient-flow velocity `-c M ∇L`.
pub fn gradient_flow(lag: &Lagrangian, c: f64) -> impl Fn(&[f64]) -> Vec<f64> + '_ {
    move |th: &[f64]| {
        let d = th.len();
        let mut g = vec![0.0; d];
        lag.loss().gradient(th, 0.0, &mut g);
        let mut mg = vec![0.0; d];
        lag.metric().mobility_mul(th, &g, &mut mg);
        mg.iter().map(|v| -c * v).collect()
    }
}

/// Loss value helper.
pub fn loss(lag: &Lagrangian, th: &[f64]) -> f64 {
    lag.loss().value(th, 0.0)
}
