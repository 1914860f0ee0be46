//! The boundary-value solver against the closed forms of docs/theory.md §4 for quadratic losses.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::{Diagonal, End, Horizon, Lagrangian, Problem, Quadratic};
use lossnav_solvers::Bvp;

/// Diagonal closed form: rates r_i, θ(t), p(t), J*.
struct Closed {
    r: Vec<f64>,
    g: Vec<f64>,
    mu: Vec<f64>,
    theta0: Vec<f64>,
    eta: f64,
}

impl Closed {
    fn new(h: &[f64], g: &[f64], mu: &[f64], theta0: &[f64], eta: f64, k: f64, gamma: f64) -> Self {
        let r = h
            .iter()
            .zip(g)
            .map(|(h, g)| (gamma * gamma / 4.0 + eta * k * h / g).sqrt() - gamma / 2.0)
            .collect();
        Self {
            r,
            g: g.to_vec(),
            mu: mu.to_vec(),
            theta0: theta0.to_vec(),
            eta,
        }
    }
    fn theta(&self, t: f64) -> Vec<f64> {
        (0..self.r.len())
            .map(|i| self.mu[i] + (self.theta0[i] - self.mu[i]) * (-self.r[i] * t).exp())
            .collect()
    }
    fn p(&self, t: f64) -> Vec<f64> {
        (0..self.r.len())
            .map(|i| {
                -self.g[i] * self.r[i] * (self.theta0[i] - self.mu[i]) * (-self.r[i] * t).exp()
            })
            .collect()
    }
    fn cost(&self) -> f64 {
        (0..self.r.len())
            .map(|i| {
                self.g[i] * self.r[i] * (self.theta0[i] - self.mu[i]).powi(2) / (2.0 * self.eta)
            })
            .sum()
    }
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn diagonal_quadratic_infinite_horizon_matches_closed_form() {
    let h = [1.0, 4.0, 0.5];
    let g = [1.0, 2.0, 0.5];
    let mu = [0.5, -1.0, 0.0];
    let theta0 = [-1.0, 1.0, 2.0];
    for (eta, k, gamma) in [
        (1.0, 1.0, 0.0),
        (0.5, 2.0, 1.0),
        (1.0, 1.0, 10.0),
        (1.0, 1.0, 100.0),
    ] {
        let problem = Problem::new(
            Lagrangian::new(Quadratic::diagonal(h.to_vec(), mu.to_vec()).unwrap())
                .with_metric(Diagonal::new(g.to_vec()).unwrap())
                .with_eta(eta)
                .with_k(k)
                .with_gamma(gamma),
            DVector::from_column_slice(&theta0),
            Horizon::Infinite,
            End::Equilibrium { guess: None },
        )
        .unwrap();
        let closed = Closed::new(&h, &g, &mu, &theta0, eta, k, gamma);
        let sol = Bvp::default().with_tol(1e-10).solve(&problem).unwrap();
        assert!(sol.accuracy.tolerance_met());
        let end = sol.end_time();
        let mut worst = 0.0_f64;
        for i in 0..=20 {
            let t = end * i as f64 / 20.0;
            let (th, p) = sol.eval(t);
            worst = worst.max(rel_err(&th, &closed.theta(t)));
            let _ = p;
        }
        let p0 = rel_err(&sol.p[0], &closed.p(0.0));
        let cost = (sol.cost - closed.cost()).abs() / closed.cost();
        eprintln!(
            "γ={gamma}: θ err {worst:.2e}, p0 err {p0:.2e}, J err {cost:.2e}, nodes {}, T {end:.1}, iters {}",
            sol.diagnostics.nodes, sol.diagnostics.iterations
        );
        // Required accuracy: 1e-9 relative (solver tol 1e-10 bounds the local error; the
        // linear problem adds no truncation error).
        assert!(worst < 1e-9, "γ={gamma}: trajectory error {worst:e}");
        assert!(p0 < 1e-9, "γ={gamma}: p(0) error {p0:e}");
        assert!(cost < 1e-9, "γ={gamma}: cost error {cost:e}");
        // Beyond the truncation the linearised tail: at 3 and 30 times T against the closed
        // form (absolute: the deviation itself decays to nothing), and at 1e100 the minimum.
        for t in [3.0 * end, 30.0 * end, 1e100] {
            let (th, p) = sol.eval(t);
            let err = th
                .iter()
                .zip(closed.theta(t))
                .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-9, "γ={gamma}, t = {t:e}: θ error {err:e}");
            assert!(
                p.iter().all(|v| v.is_finite()),
                "γ={gamma}, t = {t:e}: p {p:?}"
            );
        }
    }
}

#[test]
fn full_hessian_quadratic_matches_eigenbasis_closed_form() {
    let hm = DMatrix::from_row_slice(3, 3, &[2.0, 0.6, -0.3, 0.6, 1.0, 0.2, -0.3, 0.2, 3.0]);
    let mu = DVector::from_vec(vec![0.1, -0.2, 0.3]);
    let theta0 = DVector::from_vec(vec![1.0, 0.5, -1.0]);
    let eig = hm.clone().symmetric_eigen();
    let q = &eig.eigenvectors;
    let delta0 = q.transpose() * (&theta0 - &mu);
    for (eta, k, gamma) in [
        (1.0, 1.0, 0.0),
        (0.7, 1.5, 1.0),
        (1.0, 1.0, 10.0),
        (1.0, 1.0, 100.0),
    ] {
        let problem = Problem::new(
            Lagrangian::new(Quadratic::new(hm.clone(), mu.clone()).unwrap())
                .with_eta(eta)
                .with_k(k)
                .with_gamma(gamma),
            theta0.clone(),
            Horizon::Infinite,
            End::Equilibrium { guess: None },
        )
        .unwrap();
        let r: Vec<f64> = eig
            .eigenvalues
            .iter()
            .map(|h| (gamma * gamma / 4.0 + eta * k * h).sqrt() - gamma / 2.0)
            .collect();
        let theta_at = |t: f64| -> DVector<f64> {
            let decayed = DVector::from_iterator(3, (0..3).map(|i| delta0[i] * (-r[i] * t).exp()));
            &mu + q * decayed
        };
        let cost: f64 = (0..3).map(|i| r[i] * delta0[i].powi(2) / (2.0 * eta)).sum();
        let p0 = -(q * DVector::from_iterator(3, (0..3).map(|i| r[i] * delta0[i])));
        let sol = Bvp::default().with_tol(1e-10).solve(&problem).unwrap();
        let end = sol.end_time();
        let mut worst = 0.0_f64;
        for i in 0..=20 {
            let t = end * i as f64 / 20.0;
            worst = worst.max(rel_err(&sol.eval(t).0, theta_at(t).as_slice()));
        }
        let e_p0 = rel_err(&sol.p[0], p0.as_slice());
        let e_j = (sol.cost - cost).abs() / cost;
        eprintln!(
            "full H γ={gamma}: θ {worst:.2e} p0 {e_p0:.2e} J {e_j:.2e} nodes {}",
            sol.diagnostics.nodes
        );
        assert!(
            worst < 1e-9 && e_p0 < 1e-9 && e_j < 1e-9,
            "γ={gamma}: {worst:e} {e_p0:e} {e_j:e}"
        );
    }
}

#[test]
fn one_dimensional_fixed_and_free_end() {
    // 1D, G = 1, f = 0, L = h θ²/2: θ'' - γθ' - ηkh θ = 0 with θ = A e^{λ1 t} + B e^{λ2 t},
    // λ = γ/2 ± sqrt(γ²/4 + ηkh).
    for (gamma, t_end) in [(0.0f64, 2.0f64), (1.0, 5.0), (10.0, 3.0), (100.0, 2.0)] {
        let (eta, k, h) = (1.0f64, 1.0f64, 2.0f64);
        let s = (gamma * gamma / 4.0 + eta * k * h).sqrt();
        let (l1, l2) = (gamma / 2.0 + s, gamma / 2.0 - s);
        let (th0, th_t) = (1.0, 0.3);
        // Fixed end: A + B = th0, A e^{l1 T} + B e^{l2 T} = th_t; scaled to avoid overflow.
        let e1 = (-l1 * t_end).exp(); // A' = A e^{l1 T}
        let b = (th0 - th_t * e1) / (1.0 - (l2 * t_end).exp() * e1);
        let a_scaled = th_t - b * (l2 * t_end).exp();
        let exact = |t: f64| a_scaled * (l1 * (t - t_end)).exp() + b * (l2 * t).exp();
        let exact_dot = |t: f64| a_scaled * l1 * (l1 * (t - t_end)).exp() + b * l2 * (l2 * t).exp();
        let problem = Problem::new(
            Lagrangian::new(Quadratic::diagonal(vec![h], vec![0.0]).unwrap()).with_gamma(gamma),
            DVector::from_vec(vec![th0]),
            Horizon::Finite(t_end),
            End::Fixed(DVector::from_vec(vec![th_t])),
        )
        .unwrap();
        let sol = Bvp::default().with_tol(1e-10).solve(&problem).unwrap();
        let mut worst = 0.0_f64;
        for i in 0..=40 {
            let t = t_end * i as f64 / 40.0;
            worst = worst.max((sol.eval(t).0[0] - exact(t)).abs());
        }
        let p0 = (sol.p[0][0] - exact_dot(0.0)).abs() / exact_dot(0.0).abs();
        eprintln!(
            "fixed γ={gamma}: θ {worst:.2e} p0 {p0:.2e} nodes {}",
            sol.diagnostics.nodes
        );
        assert!(worst < 1e-9 && p0 < 1e-9, "γ={gamma}: {worst:e} {p0:e}");
    }
}

#[test]
fn twelve_dimensional_quadratic_on_dense_panels_matches_closed_form() {
    // D = 12 takes the panel-by-panel (dense-kernel) factorisation of the Newton matrix
    // instead of the scalar band; the answer must not change.
    let d = 12;
    let h: Vec<f64> = (0..d).map(|i| 0.3 + 0.4 * i as f64).collect();
    let g: Vec<f64> = (0..d).map(|i| 0.5 + 0.1 * (i % 5) as f64).collect();
    let mu: Vec<f64> = (0..d).map(|i| 0.1 * (i as f64 - 5.0)).collect();
    let theta0: Vec<f64> = (0..d).map(|i| (i as f64 * 0.9).sin()).collect();
    for gamma in [0.5, 10.0] {
        let problem = Problem::new(
            Lagrangian::new(Quadratic::diagonal(h.clone(), mu.clone()).unwrap())
                .with_metric(Diagonal::new(g.clone()).unwrap())
                .with_gamma(gamma),
            DVector::from_column_slice(&theta0),
            Horizon::Infinite,
            End::Equilibrium { guess: None },
        )
        .unwrap();
        let closed = Closed::new(&h, &g, &mu, &theta0, 1.0, 1.0, gamma);
        let sol = Bvp::default().with_tol(1e-10).solve(&problem).unwrap();
        assert!(sol.accuracy.tolerance_met());
        let end = sol.end_time();
        let worst = (0..=20)
            .map(|i| {
                let t = end * i as f64 / 20.0;
                rel_err(&sol.eval(t).0, &closed.theta(t))
            })
            .fold(0.0_f64, f64::max);
        let p0 = rel_err(&sol.p[0], &closed.p(0.0));
        let cost = (sol.cost - closed.cost()).abs() / closed.cost();
        // As for the three-dimensional cases: 1e-9 relative at tol 1e-10.
        assert!(worst < 1e-9, "γ={gamma}: trajectory error {worst:e}");
        assert!(p0 < 1e-9, "γ={gamma}: p(0) error {p0:e}");
        assert!(cost < 1e-9, "γ={gamma}: cost error {cost:e}");
    }
}

/// With k = 0 the loss does not enter the objective: the optimal learner stays at θ0 and never
/// reaches the loss minimum the infinite horizon aims for. Lengthening the truncation cannot
/// help; the solver says so instead of returning a trajectory that stops short.
#[test]
fn unreachable_equilibrium_is_a_typed_error() {
    let problem = lossnav_problems::Spec::from_json(
        r#"{"name": "k = 0", "loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
            "eta": 1.0, "k": 0.0, "gamma": 1.0, "theta0": [1.0],
            "horizon": "infinite", "end": "equilibrium"}"#,
    )
    .unwrap()
    .to_problem()
    .unwrap();
    match Bvp::default().solve(&problem).unwrap_err() {
        lossnav_solvers::SolverError::TruncationLimit {
            gap, gap_target, ..
        } => {
            // θ stays at 1, the minimum is at 0.
            assert!(
                (gap - 1.0).abs() < 1e-9 && gap_target < 1e-3,
                "{gap} {gap_target}"
            );
        }
        other => panic!("expected a truncation error, got {other}"),
    }
}

/// A horizon of 1e-300 to a fixed end needs a velocity of about 1e300 and a cost that
/// overflows: every solver reports it as non-finite rather than `converged` with `null`s.
#[test]
fn overflowing_cost_is_a_typed_error() {
    let problem = lossnav_problems::Spec::from_json(
        r#"{"name": "short", "loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
            "theta0": [1.0], "horizon": 1e-300, "end": {"fixed": [2.0]}}"#,
    )
    .unwrap()
    .to_problem()
    .unwrap();
    let results = [
        Bvp::default().solve(&problem),
        lossnav_solvers::Direct::default().solve(&problem),
        lossnav_solvers::Shooting::default().solve(&problem),
    ];
    for result in results {
        match result {
            Err(lossnav_solvers::SolverError::NonFinite { .. }) => {}
            Err(other) => panic!("expected a non-finite error, got {other}"),
            Ok(s) => panic!("{} returned cost {} as converged", s.method, s.cost),
        }
    }
}

/// The memory estimate is checked before the Newton matrix is allocated: a limit below what the
/// mesh needs is a typed error that points to the direct method, not an allocation failure.
#[test]
fn memory_beyond_the_limit_is_refused_before_allocation() {
    use lossnav_problems::{End, Horizon, Lagrangian, Problem, Quadratic};
    use lossnav_solvers::{Bvp, SolverError};
    let d = 40;
    let loss = Quadratic::diagonal(vec![1.0; d], vec![0.0; d]).unwrap();
    let p = Problem::new(
        Lagrangian::new(loss).with_gamma(0.5),
        nalgebra::DVector::from_element(d, 1.0),
        Horizon::Finite(3.0),
        End::Free {
            terminal_cost: None,
        },
    )
    .unwrap();
    // 25 nodes of the first mesh: 25 · 8 · (8·40² + 104·40) bytes, plus 8 · 120·40² for the
    // dense workspaces: ≈ 4.9 MB. (At D = 500 the estimate of the final 57-node mesh, 1.18 GB,
    // is 17 % above the measured peak of the solve, 1.01 GB: docs/benchmarks.md.)
    assert_eq!(
        Bvp::memory_estimate(d, 25),
        8 * (25 * (8 * d * d + 104 * d) + 120 * d * d)
    );
    let bvp = Bvp {
        max_memory: 1 << 20,
        ..Bvp::default()
    };
    match bvp.solve(&p) {
        Err(e @ SolverError::MemoryLimit { .. }) => {
            let text = e.to_string();
            assert!(text.contains("--method direct"), "{text}");
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    // With room it solves.
    assert!(Bvp::default().solve(&p).is_ok());
}
