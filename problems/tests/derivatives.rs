//! Every exact derivative of the problem model against central finite differences, at random
//! points (proptest), for every built-in and for expression-defined pieces.

mod fd;

use std::collections::BTreeMap;

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;

use lossnav_problems::expr::Scope;
use lossnav_problems::{
    AutoDiff, DoubleWell, Drift, ExprDrift, ExprLoss, ExprMetric, FieldWorkspace, Landscape,
    Metric, Points, Quadratic, Rosenbrock, Spec,
};

/// Checks gradient, Hessian and Hessian–vector product of a landscape at `x`.
fn check_landscape(name: &str, loss: &dyn Landscape, x: &[f64], v: &[f64], t: f64) {
    let d = loss.dim();
    let mut g = vec![0.0; d];
    loss.gradient(x, t, &mut g);
    let g_fd = fd::gradient(&mut |y| loss.value(y, t), x);
    fd::assert_close(&format!("{name} gradient"), &g, &g_fd);

    let mut h = DMatrix::zeros(d, d);
    loss.hessian(x, t, &mut h);
    let h_fd = fd::jacobian(
        &mut |y| {
            let mut g = vec![0.0; d];
            loss.gradient(y, t, &mut g);
            g
        },
        x,
    );
    fd::assert_close(&format!("{name} Hessian"), &fd::rows(&h), &h_fd.concat());

    let mut hv = vec![0.0; d];
    loss.hessian_vector(x, t, v, &mut hv);
    let hv_ref = &h * DVector::from_column_slice(v);
    fd::assert_close(&format!("{name} Hessian-vector"), &hv, hv_ref.as_slice());
}

fn scope(vars: &[&str], params: &[(&str, f64)]) -> Scope {
    Scope::new(
        vars.iter().map(|s| s.to_string()).collect(),
        params
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
    )
    .unwrap()
}

fn point(d: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1.5f64..1.5, d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn quadratic_dense_and_diagonal(x in point(3), v in point(3)) {
        let h = DMatrix::from_row_slice(3, 3, &[2.0, 0.5, -0.3, 0.5, 1.0, 0.2, -0.3, 0.2, 3.0]);
        let dense = Quadratic::new(h, DVector::from_vec(vec![0.1, -0.2, 0.3])).unwrap();
        check_landscape("quadratic dense", &dense, &x, &v, 0.0);
        let diag = Quadratic::diagonal(vec![1.0, 4.0, 0.5], vec![1.0, 0.0, -1.0]).unwrap();
        check_landscape("quadratic diagonal", &diag, &x, &v, 0.0);
    }

    #[test]
    fn double_well_autodiff(x in point(3), v in point(3)) {
        let well = AutoDiff(DoubleWell { dim: 3, ..DoubleWell::figure1() });
        check_landscape("double well", &well, &x, &v, 0.0);
    }

    #[test]
    fn rosenbrock_small_and_large_dimension(x in point(16), v in point(16)) {
        // D = 2 uses scalar duals, D = 16 the dynamically sized dual vectors.
        let small = AutoDiff(Rosenbrock::classic());
        check_landscape("rosenbrock D=2", &small, &x[..2], &v[..2], 0.0);
        let large = AutoDiff(Rosenbrock::new(16, 1.0, 3.0).unwrap());
        check_landscape("rosenbrock D=16", &large, &x, &v, 0.0);
    }

    #[test]
    fn expression_loss(x in point(2), v in point(2), t in 0.0f64..3.0) {
        let s = scope(&["x", "y"], &[("a", 1.3), ("w", 0.7)]);
        let loss = ExprLoss::parse(
            "loss.expr",
            "a*(x^2-1)^2 + y^2*exp(0.3*x) + sin(w*x*y) + log(1 + x^2) + cos(t)*x + sqrt(2 + y^2)",
            &s,
        ).unwrap();
        check_landscape("expression", &loss, &x, &v, t);
        prop_assert!(loss.is_time_dependent());
    }

    /// Three parameters: every off-diagonal Hessian entry is distinct.
    #[test]
    fn expression_loss_three_parameters(x in point(3), v in point(3)) {
        let s = scope(&["x", "y", "z"], &[]);
        let loss = ExprLoss::parse(
            "loss.expr",
            "x^2*y + 3*y*z^3 - 2*x*z + exp(0.2*x*y*z) + y^2",
            &s,
        ).unwrap();
        check_landscape("expression, D = 3", &loss, &x, &v, 0.0);
    }

    #[test]
    fn expression_metric_terms(x in point(2), p in point(2)) {
        let s = scope(&["w", "x"], &[]);
        let rows = vec![
            vec!["1 + 0.5*x^2".to_string(), "0.1*w*x".to_string()],
            vec!["0.1*w*x".to_string(), "1 + 0.5*w^2 + 0.2*sin(x)".to_string()],
        ];
        let m = ExprMetric::parse("metric.expr", &rows, &s, &[0.0, 0.0]).unwrap();
        let d = 2;
        let quad = |y: &[f64]| {
            let mut mp = vec![0.0; d];
            m.mobility_mul(y, &p, &mut mp);
            mp.iter().zip(&p).map(|(a, b)| a * b).sum::<f64>()
        };
        // ∇θ(pᵀMp)
        let mut qg = vec![0.0; d];
        m.mobility_quadratic_gradient(&x, &p, &mut qg);
        fd::assert_close("metric ∇(pᵀMp)", &qg, &fd::gradient(&mut |y| quad(y), &x));
        // ∂(Mp)/∂θ and ∂²(pᵀMp)/∂θ²
        let (mut dmp, mut hess) = (DMatrix::zeros(d, d), DMatrix::zeros(d, d));
        m.mobility_derivatives(&x, &p, &mut dmp, &mut hess);
        let dmp_fd = fd::jacobian(&mut |y| { let mut o = vec![0.0; d]; m.mobility_mul(y, &p, &mut o); o }, &x);
        fd::assert_close("metric ∂(Mp)/∂θ", &fd::rows(&dmp), &dmp_fd.concat());
        let hess_fd = fd::jacobian(&mut |y| { let mut o = vec![0.0; d]; m.mobility_quadratic_gradient(y, &p, &mut o); o }, &x);
        fd::assert_close("metric ∂²(pᵀMp)/∂θ²", &fd::rows(&hess), &hess_fd.concat());
        // ∇θ(vᵀGv)
        let mut gg = vec![0.0; d];
        m.metric_quadratic_gradient(&x, &p, &mut gg);
        let gq = |y: &[f64]| { let mut o = vec![0.0; d]; m.metric_mul(y, &p, &mut o); o.iter().zip(&p).map(|(a, b)| a * b).sum::<f64>() };
        fd::assert_close("metric ∇(vᵀGv)", &gg, &fd::gradient(&mut |y| gq(y), &x));
        // M = G⁻¹: G(M p) = p.
        let mut mp = vec![0.0; d];
        m.mobility_mul(&x, &p, &mut mp);
        let mut gmp = vec![0.0; d];
        m.metric_mul(&x, &mp, &mut gmp);
        fd::assert_close("G M p", &gmp, &p);
    }

    #[test]
    fn expression_drift(x in point(2), p in point(2), t in 0.0f64..2.0) {
        let s = scope(&["u", "v"], &[("q", 0.5)]);
        let texts = vec!["-q*v + 0.1*sin(u*v) + 0.2*t*u".to_string(), "q*u - 0.3*v^3 + exp(-u^2)".to_string()];
        let f = ExprDrift::parse("drift.expr", &texts, &s).unwrap();
        let d = 2;
        let value = |y: &[f64]| { let mut o = vec![0.0; d]; f.value(y, t, &mut o); o };
        let mut jac = DMatrix::zeros(d, d);
        f.jacobian(&x, t, &mut jac);
        fd::assert_close("drift Jacobian", &fd::rows(&jac), &fd::jacobian(&mut |y| value(y), &x).concat());
        let mut jtp = vec![0.0; d];
        f.jacobian_transpose_mul(&x, t, &p, &mut jtp);
        let jtp_ref = jac.transpose() * DVector::from_column_slice(&p);
        fd::assert_close("drift Dfᵀp", &jtp, jtp_ref.as_slice());
        let mut ch = DMatrix::zeros(d, d);
        f.contracted_hessian(&x, t, &p, &mut ch);
        let ch_fd = fd::jacobian(&mut |y| { let mut o = vec![0.0; d]; f.jacobian_transpose_mul(y, t, &p, &mut o); o }, &x);
        fd::assert_close("drift Σ p_k ∇²f_k", &fd::rows(&ch), &ch_fd.concat());
    }

    #[test]
    fn hamiltonian_field_jacobian(th in point(2), p in point(2)) {
        for spec in ["fisher-metric.json", "figure1-double-well.json", "figure3-rotation.json", "figure3-anisotropic-metric.json", "partial-controllability.json"] {
            let problem = load(spec);
            let lag = problem.lagrangian();
            let d = 2;
            let mut ws = FieldWorkspace::new(d);
            let t = 0.4;
            let mut jac = DMatrix::zeros(2 * d, 2 * d);
            lag.field_jacobian(t, &th, &p, &mut jac, &mut ws);
            let y0: Vec<f64> = th.iter().chain(&p).copied().collect();
            let jac_fd = fd::jacobian(&mut |y| {
                let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
                lag.field(t, &y[..d], &y[d..], &mut a, &mut b, &mut FieldWorkspace::new(d));
                a.into_iter().chain(b).collect()
            }, &y0);
            fd::assert_close(&format!("{spec}: field Jacobian"), &fd::rows(&jac), &jac_fd.concat());
        }
    }

    /// The field computed from the mobility side must equal the Euler–Lagrange equations
    /// computed from the metric side of the Lagrangian: `∂ℓ/∂θ̇ = p/η`, `ṗ = γp + η ∂ℓ/∂θ`.
    #[test]
    fn field_matches_euler_lagrange(th in point(2), p in point(2)) {
        let problem = load("fisher-metric.json");
        let lag = problem.lagrangian();
        let d = 2;
        let t = 0.0;
        let (mut dth, mut dp) = (vec![0.0; d], vec![0.0; d]);
        lag.field(t, &th, &p, &mut dth, &mut dp, &mut FieldWorkspace::new(d));
        let (mut l_th, mut l_thdot) = (vec![0.0; d], vec![0.0; d]);
        lag.running_cost_gradients(&th, &dth, t, &mut l_th, &mut l_thdot);
        let p_over_eta: Vec<f64> = p.iter().map(|v| v / lag.eta()).collect();
        fd::assert_close("∂ℓ/∂θ̇ = p/η", &l_thdot, &p_over_eta);
        let dp_el: Vec<f64> = (0..d).map(|i| lag.gamma() * p[i] + lag.eta() * l_th[i]).collect();
        fd::assert_close("ṗ = γp + η∂ℓ/∂θ", &dp, &dp_el);
    }

    #[test]
    fn running_cost_gradients(th in point(2), thdot in point(2)) {
        let problem = load("fisher-metric.json");
        let lag = problem.lagrangian();
        let t = 0.0;
        let (mut g_th, mut g_thdot) = (vec![0.0; 2], vec![0.0; 2]);
        lag.running_cost_gradients(&th, &thdot, t, &mut g_th, &mut g_thdot);
        fd::assert_close("∂ℓ/∂θ", &g_th, &fd::gradient(&mut |y| lag.running_cost(y, &thdot, t), &th));
        fd::assert_close("∂ℓ/∂θ̇", &g_thdot, &fd::gradient(&mut |y| lag.running_cost(&th, y, t), &thdot));
        // The combined call's value (through `value_and_gradient`) against `running_cost`
        // (through `value`): the same sums, equal to rounding.
        let mut scratch = lossnav_problems::lagrangian::CostScratch::new(2);
        let l = lag.running_cost_with_gradients(&th, &thdot, t, &mut g_th, &mut g_thdot, &mut scratch);
        let direct = lag.running_cost(&th, &thdot, t);
        prop_assert!((l - direct).abs() <= 1e-13 * direct.abs().max(1.0), "{} vs {}", l, direct);
    }

    /// For autonomous problems `dℋ/dt = -(γ/η) pᵀθ̇` holds pointwise along the field.
    #[test]
    fn hamiltonian_balance_along_field(th in point(2), p in point(2)) {
        let problem = load("fisher-metric.json");
        let lag = problem.lagrangian();
        let d = 2;
        let (mut dth, mut dp) = (vec![0.0; d], vec![0.0; d]);
        lag.field(0.0, &th, &p, &mut dth, &mut dp, &mut FieldWorkspace::new(d));
        let along = |s: f64| {
            let a: Vec<f64> = th.iter().zip(&dth).map(|(x, v)| x + s * v).collect();
            let b: Vec<f64> = p.iter().zip(&dp).map(|(x, v)| x + s * v).collect();
            lag.hamiltonian(0.0, &a, &b)
        };
        let rate = fd::gradient(&mut |s| along(s[0]), &[0.0])[0];
        let expected = -lag.gamma() / lag.eta() * p.iter().zip(&dth).map(|(a, b)| a * b).sum::<f64>();
        fd::assert_close("dℋ/dt", &[rate], &[expected]);
    }
}

fn load(name: &str) -> lossnav_problems::Problem {
    let path = format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"));
    Spec::from_file(&path).unwrap().to_problem().unwrap()
}

#[test]
fn autodiff_matches_expression_for_double_well() {
    // Two independent exact routes (forward-mode AD and symbolic differentiation) must agree
    // to rounding.
    let s = scope(&["x", "y"], &[]);
    let expr = ExprLoss::parse("loss", "(x^2-1)^2 + y^2 - 0.5*x", &s).unwrap();
    let ad = AutoDiff(DoubleWell::figure1());
    for x in [[-0.6, 0.55], [1.0625, 0.0], [0.3, -1.2]] {
        let (mut g1, mut g2) = ([0.0; 2], [0.0; 2]);
        expr.gradient(&x, 0.0, &mut g1);
        ad.gradient(&x, 0.0, &mut g2);
        for i in 0..2 {
            assert!(
                (g1[i] - g2[i]).abs() < 1e-13,
                "gradient {i}: {} vs {}",
                g1[i],
                g2[i]
            );
        }
        let (mut h1, mut h2) = (DMatrix::zeros(2, 2), DMatrix::zeros(2, 2));
        expr.hessian(&x, 0.0, &mut h1);
        ad.hessian(&x, 0.0, &mut h2);
        assert!((h1 - h2).amax() < 1e-12);
    }
}

#[test]
fn singular_mobility_has_no_metric() {
    let m = lossnav_problems::Constant::from_mobility(
        "metric.mobility",
        DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 0.0]),
    )
    .unwrap();
    assert!(!m.is_invertible());
    let mut mp = [0.0; 2];
    m.mobility_mul(&[0.0, 0.0], &[3.0, 5.0], &mut mp);
    assert_eq!(mp, [3.0, 0.0], "the null direction cannot move");
    let mut gv = [0.0; 2];
    m.metric_mul(&[0.0, 0.0], &[1.0, 1.0], &mut gv);
    assert!(gv.iter().all(|v| v.is_nan()));
}

#[test]
fn two_layer_network_derivatives() {
    let inputs: Vec<Vec<f64>> = (0..7)
        .map(|i| vec![(i as f64 * 0.7).sin(), (i as f64 * 1.3).cos()])
        .collect();
    let targets: Vec<f64> = (0..7).map(|i| (i as f64 * 0.4).sin()).collect();
    let net = lossnav_problems::TwoLayerTanh::new(inputs, targets, 3).unwrap();
    assert_eq!(net.dim(), 12);
    let x: Vec<f64> = (0..12)
        .map(|i| ((i * 7 % 11) as f64 / 11.0 - 0.5) * 1.4)
        .collect();
    let v: Vec<f64> = (0..12).map(|i| (i * 5 % 13) as f64 / 13.0 - 0.5).collect();
    check_landscape("two-layer network", &net, &x, &v, 0.0);
}

/// Shipped specs that together have expression and built-in losses, state-dependent metrics
/// and drifts.
const MIXED_SPECS: [&str; 5] = [
    "fisher-metric.json",
    "figure1-double-well.json",
    "figure3-rotation.json",
    "figure3-anisotropic-metric.json",
    "partial-controllability.json",
];

/// Reproducible uniform draws in `[−0.5, 0.5)` from `seed` (the workspace's test generator).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut u = lossnav_problems::testbed::unit(seed);
    move || u() - 0.5
}

/// The field evaluated at many states at once (loss gradients in one pass over the tape for
/// expression losses, point by point for built-ins) equals the single-state field bit for bit,
/// for expression and built-in losses, metrics and drifts.
#[test]
fn batched_field_matches_pointwise_bit_for_bit() {
    let mut rnd = uniform(5);
    for spec in MIXED_SPECS {
        let problem = load(spec);
        let lag = problem.lagrangian();
        let (d, points) = (lag.dim(), 75);
        let t: Vec<f64> = (0..points).map(|_| 2.0 * rnd() + 1.0).collect();
        let y: Vec<f64> = (0..points * 2 * d).map(|_| rnd()).collect();
        let mut batch = vec![0.0; y.len()];
        let mut ws = FieldWorkspace::new(d);
        lag.field_batch(&t, &y, &mut batch, &mut ws);
        for (j, (yj, fj)) in y
            .chunks_exact(2 * d)
            .zip(batch.chunks_exact(2 * d))
            .enumerate()
        {
            let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
            lag.field(t[j], &yj[..d], &yj[d..], &mut a, &mut b, &mut ws);
            let single: Vec<f64> = a.into_iter().chain(b).collect();
            let same = single
                .iter()
                .zip(fj)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{spec}, state {j}: {fj:?} vs {single:?}");
        }
    }
    // A built-in loss takes the point-by-point default; a time-dependent expression loss the
    // tape's batch with the time as an input.
    let s = scope(&["x", "y"], &[]);
    let moving = ExprLoss::parse("loss", "sin(t)*x + x^2*y + exp(-t)*y^2", &s).unwrap();
    let lags = [
        lossnav_problems::Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.3),
        lossnav_problems::Lagrangian::new(moving).with_gamma(0.3),
    ];
    for lag in lags {
        let t = [0.0, 0.5, 1.0];
        let y: Vec<f64> = (0..12).map(|_| rnd()).collect();
        let mut batch = vec![0.0; 12];
        let mut ws = FieldWorkspace::new(2);
        lag.field_batch(&t, &y, &mut batch, &mut ws);
        for j in 0..3 {
            let (mut a, mut b) = (vec![0.0; 2], vec![0.0; 2]);
            lag.field(
                t[j],
                &y[4 * j..4 * j + 2],
                &y[4 * j + 2..4 * j + 4],
                &mut a,
                &mut b,
                &mut ws,
            );
            assert_eq!(
                [a, b].concat(),
                batch[4 * j..4 * j + 4],
                "{}",
                lag.loss().describe()
            );
        }
    }
}

/// `Landscape::values` and `Landscape::gradients` (an expression's override and the default)
/// equal `value` and `gradient` at every point bit for bit, read strided points, and leave the
/// output entries between strided gradients alone.
#[test]
fn batched_values_and_gradients_match_pointwise() {
    let s = scope(&["x", "y"], &[]);
    let moving = ExprLoss::parse("loss", "sin(t)*x + x^2*y + exp(-t)*y^2", &s).unwrap();
    let losses: [&dyn Landscape; 2] = [&moving, &AutoDiff(DoubleWell::figure1())];
    // 40 points: one full group of the tape's lanes and a partial one.
    let n = 40;
    let coords: Vec<f64> = (0..3 * n).map(|i| (i as f64 * 0.37).sin()).collect();
    let t: Vec<f64> = (0..n).map(|j| 0.1 * j as f64).collect();
    for loss in losses {
        let points = Points::new(&coords, 2, 3, &t);
        let mut values = vec![f64::NAN; n];
        loss.values(points, &mut values);
        let stride = 5;
        let mut grads = vec![-7.0; (n - 1) * stride + 2];
        loss.gradients(points, &mut grads, stride);
        for j in 0..n {
            let theta = &coords[3 * j..3 * j + 2];
            assert_eq!(values[j].to_bits(), loss.value(theta, t[j]).to_bits());
            let mut g = [0.0; 2];
            loss.gradient(theta, t[j], &mut g);
            assert_eq!(grads[j * stride..j * stride + 2], g, "{}", loss.describe());
            if j + 1 < n {
                assert!(grads[j * stride + 2..(j + 1) * stride]
                    .iter()
                    .all(|&v| v == -7.0));
            }
        }
    }
}

/// An output too short for the last strided gradient is a caller's bug, caught before any
/// write.
#[test]
#[should_panic(expected = "too short")]
fn batched_gradients_reject_a_short_output() {
    let s = scope(&["x", "y"], &[]);
    let loss = ExprLoss::parse("loss", "x^2 + y^2", &s).unwrap();
    let coords = [0.0; 6];
    let mut out = vec![0.0; 4];
    loss.gradients(Points::new(&coords, 2, 2, &[0.0, 1.0, 2.0]), &mut out, 2);
}

/// Losses read with the precedence of mathematics (`-x^2 = −x²`, `2^3^2 = 2⁹`) and numbers in
/// scientific notation, against values computed by hand; the derivatives follow the same
/// reading.
#[test]
fn expressions_read_as_written_in_mathematics() {
    let s = scope(&["x", "y"], &[]);
    let loss = ExprLoss::parse("loss", "-x^2 + 2^3^2*y - 1e-3*y^-2", &s).unwrap();
    let (x, y) = (3.0, 2.0);
    let want = -9.0 + 512.0 * y - 1e-3 / (y * y);
    assert!((loss.value(&[x, y], 0.0) - want).abs() < 1e-12);
    let mut g = [0.0; 2];
    loss.gradient(&[x, y], 0.0, &mut g);
    assert!((g[0] + 2.0 * x).abs() < 1e-12 && (g[1] - (512.0 + 2e-3 / (y * y * y))).abs() < 1e-12);
}

/// A loss with many terms differentiates without exhausting the stack: exmex recurses over
/// its expression tree, deeper with every term, and a test thread has only 2 MiB.
#[test]
fn long_sums_differentiate_without_stack_overflow() {
    let d = 40;
    let vars: Vec<String> = (0..d).map(|i| format!("x{i}")).collect();
    let text: Vec<String> = (0..d).map(|i| format!("{}*x{i}^2", i + 1)).collect();
    let names: Vec<&str> = vars.iter().map(String::as_str).collect();
    let loss = ExprLoss::parse("loss", &text.join(" + "), &scope(&names, &[])).unwrap();
    let theta = vec![1.0; d];
    // Σ (i+1) x_i² at x = 1.
    assert_eq!(loss.value(&theta, 0.0), (d * (d + 1) / 2) as f64);
}

/// The field Jacobians evaluated at many states at once (loss Hessians in one pass over the
/// tape for expression losses) equal the single-state Jacobians bit for bit, with drifts and
/// state-dependent metrics (the blocks beyond the loss Hessian); and `Landscape::hessians` (an
/// expression's override and the default) equals `hessian` at every point, over a full group
/// of the tape's lanes and a partial one.
#[test]
fn batched_field_jacobians_and_hessians_match_pointwise_bit_for_bit() {
    let mut rnd = uniform(11);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for spec in MIXED_SPECS {
        let problem = load(spec);
        let lag = problem.lagrangian();
        let (d, points) = (lag.dim(), 45);
        let n = 2 * d;
        let t: Vec<f64> = (0..points).map(|_| 2.0 * rnd() + 1.0).collect();
        let y: Vec<f64> = (0..points * n).map(|_| rnd()).collect();
        let mut batch = vec![f64::NAN; points * n * n];
        let mut ws = FieldWorkspace::new(d);
        lag.field_jacobians(&t, &y, &mut batch, &mut ws);
        let mut single = DMatrix::zeros(n, n);
        for (j, (yj, bj)) in y.chunks_exact(n).zip(batch.chunks_exact(n * n)).enumerate() {
            lag.field_jacobian(t[j], &yj[..d], &yj[d..], &mut single, &mut ws);
            assert_eq!(bits(bj), bits(single.as_slice()), "{spec}, state {j}");
        }
    }
    let s = scope(&["x", "y"], &[]);
    let moving = ExprLoss::parse("loss", "sin(t)*x + x^2*y + exp(-t)*y^2 + x*y^3", &s).unwrap();
    let losses: [&dyn Landscape; 2] = [&moving, &AutoDiff(DoubleWell::figure1())];
    let count = 40;
    let coords: Vec<f64> = (0..3 * count).map(|i| (i as f64 * 0.37).sin()).collect();
    let t: Vec<f64> = (0..count).map(|j| 0.1 * j as f64).collect();
    for loss in losses {
        let mut hs = vec![f64::NAN; count * 4];
        loss.hessians(Points::new(&coords, 2, 3, &t), &mut hs);
        let mut h = DMatrix::zeros(2, 2);
        for j in 0..count {
            loss.hessian(&coords[3 * j..3 * j + 2], t[j], &mut h);
            let what = loss.describe();
            assert_eq!(
                bits(&hs[4 * j..4 * j + 4]),
                bits(h.as_slice()),
                "{what}, point {j}"
            );
        }
    }
}
