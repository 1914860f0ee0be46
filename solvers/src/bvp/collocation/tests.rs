use super::*;
use lossnav_problems::{AutoDiff, DoubleWell, Landscape, Quadratic};

fn field(sys: &System, y: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; y.len()];
    sys.eval(0.3, y, &mut out, &mut FieldWorkspace::new(y.len() / 2));
    out
}

/// The assembled collocation Jacobian matches central differences of the residual, for
/// both schemes, every end condition and (for the affine fields) both assemblies, on a nonlinear problem (`D = 2`, scalar band) and a coupled
/// quadratic (`D = 8`, dense panels), on a nonuniform mesh.
/// The sixth-order blocks assembled from Jacobians evaluated in chunks of intervals (with a
/// partial last chunk) equal those evaluated point by point, bit for bit: the same
/// arithmetic in another order of evaluation.
#[test]
fn chunked_jacobian_assembly_matches_pointwise_bit_for_bit() {
    let t = [0.0, 0.3, 0.5, 1.1, 1.4, 1.5, 2.0];
    let well: Arc<dyn Landscape> = Arc::new(AutoDiff(DoubleWell::figure1()));
    let s = lossnav_problems::expr::Scope::new(
        vec!["a".into(), "b".into(), "c".into()],
        Default::default(),
    )
    .unwrap();
    let expr: Arc<dyn Landscape> = Arc::new(
        lossnav_problems::ExprLoss::parse("loss", "a^4 - a*b + sin(b*c) + c^2*t", &s).unwrap(),
    );
    // The expression loss also with a nonlinear drift and a state-dependent metric (the
    // Jacobian blocks beyond the loss Hessian), and as the linearised system (the copied
    // Jacobians of a non-autonomous linearisation).
    let rows = vec![
        vec!["1 + 0.5*b^2".into(), "0.1*a*b".into(), "0".into()],
        vec!["0.1*a*b".into(), "1 + 0.3*a^2".into(), "0".into()],
        vec!["0".into(), "0".into(), "1 + 0.2*sin(c)".into()],
    ];
    let texts: Vec<String> = vec![
        "-0.3*b + 0.1*sin(a*c)".into(),
        "0.2*a".into(),
        "-c^3".into(),
    ];
    let metric = lossnav_problems::ExprMetric::parse("metric", &rows, &s, &[0.1; 3]).unwrap();
    let drift = lossnav_problems::ExprDrift::parse("drift", &texts, &s).unwrap();
    let plain = |loss: &Arc<dyn Landscape>| Lagrangian::from_arc(loss.clone()).with_gamma(0.3);
    let cases = [
        (plain(&well), 2usize, false),
        (plain(&expr), 3, false),
        (plain(&expr).with_metric(metric).with_drift(drift), 3, false),
        (plain(&expr), 3, true),
    ];
    for (lag, d, linearised) in cases {
        let theta0 = vec![0.1; d];
        let end = EndCondition::Fixed(vec![1.0; d]);
        let lin = Linearisation::new(&lag, vec![0.2; 2 * d]);
        assert!(!linearised || lin.autonomous.is_none());
        let sys = System {
            order6: true,
            linearised: linearised.then_some(&lin),
            ..System::new(&lag, &theta0, &end)
        };
        let m = t.len() * 2 * d;
        let y: Vec<f64> = (0..m).map(|k| 0.3 * ((k as f64) * 0.7).sin()).collect();
        let assembled = |chunk: usize| {
            let mut ws = Workspace::new(d);
            sys.eval_nodes(&t, &y, &mut ws).unwrap();
            let mut jac = NewtonMatrix::default();
            jac.reset(d, t.len() - 1);
            sys.interval_jacobians_in(&t, &y, chunk, &mut ws, &mut jac);
            (0..m)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| jac.get(i, j).to_bits())
                .collect::<Vec<_>>()
        };
        let pointwise = assembled(1);
        assert!(pointwise.iter().any(|&b| b != 0));
        for chunk in [2, 4, 6] {
            assert!(assembled(chunk) == pointwise, "D = {d}, chunks of {chunk}");
        }
    }
}

#[test]
fn jacobian_matches_finite_differences_of_the_residual() {
    let t = [0.0, 0.3, 0.5, 1.1, 1.4];
    let well: Arc<dyn Landscape> = Arc::new(AutoDiff(DoubleWell::figure1()));
    let h8 = DMatrix::from_fn(8, 8, |i, j| if i == j { 2.0 + i as f64 } else { 0.1 });
    let quad: Arc<dyn Landscape> =
        Arc::new(Quadratic::new(h8, nalgebra::DVector::zeros(8)).unwrap());
    let h3 = DMatrix::from_fn(3, 3, |i, j| if i == j { 1.5 + i as f64 } else { -0.2 });
    let quad3: Arc<dyn Landscape> =
        Arc::new(Quadratic::new(h3, nalgebra::DVector::from_element(3, 0.3)).unwrap());
    // The third case is affine with every ingredient: a rotation-plus-decay drift with an
    // offset and a diagonal metric (`D = 3`, scalar band).
    for (loss, d) in [(well, 2usize), (quad, 8), (quad3, 3)] {
        let mut lag = Lagrangian::from_arc(loss.clone()).with_gamma(0.3);
        if d == 3 {
            let a =
                DMatrix::from_row_slice(3, 3, &[-0.2, 0.5, 0.0, -0.5, -0.2, 0.1, 0.0, -0.1, -0.3]);
            lag = lag
                .with_drift(
                    lossnav_problems::Affine::new(a, nalgebra::dvector![0.1, 0.0, -0.2]).unwrap(),
                )
                .with_metric(lossnav_problems::Diagonal::new(vec![0.5, 1.0, 2.0]).unwrap());
            assert!(lag.has_affine_field());
        }
        let theta0 = vec![0.1; d];
        let ends = [
            EndCondition::Fixed(vec![1.0; d]),
            EndCondition::Free {
                eta: 1.0,
                cost: Some(loss.clone()),
            },
            EndCondition::Projection {
                theta_star: vec![1.0; d],
                p_star: vec![0.05; d],
                eta_p: DMatrix::from_fn(d, d, |i, j| if i == j { 2.0 } else { 0.3 }),
            },
        ];
        let m = t.len() * 2 * d;
        let y: Vec<f64> = (0..m).map(|k| 0.3 * ((k as f64) * 0.7).sin()).collect();
        // Every end condition, both schemes, and for the quadratic both the general
        // assembly and the constant-Jacobian one.
        let cases = ends.iter().flat_map(|e| {
            [(false, false), (true, false), (false, true), (true, true)]
                .map(|(order6, general)| (e, order6, general))
        });
        for (end, order6, general) in cases {
            let sys = System {
                order6,
                affine: !general && lag.has_affine_field(),
                ..System::new(&lag, &theta0, end)
            };
            let mut ws = Workspace::new(d);
            let residual = |y: &[f64], ws: &mut Workspace| {
                let mut r = vec![0.0; m];
                sys.eval_nodes(&t, y, ws).unwrap();
                sys.residual(&t, y, ws, &mut r).unwrap();
                r
            };
            sys.eval_nodes(&t, &y, &mut ws).unwrap();
            let mut jac = NewtonMatrix::default();
            jac.reset(d, t.len() - 1);
            sys.jacobian(&t, &y, &mut ws, &mut jac);
            let eps = 1e-6;
            for col in 0..m {
                let (mut up, mut down) = (y.clone(), y.clone());
                up[col] += eps;
                down[col] -= eps;
                let (ru, rd) = (residual(&up, &mut ws), residual(&down, &mut ws));
                for row in 0..m {
                    let fd = (ru[row] - rd[row]) / (2.0 * eps);
                    // Central differences: O(eps²) ≈ 1e-12 truncation plus ~1e-10 rounding.
                    let exact = jac.get(row, col);
                    assert!(
                        (fd - exact).abs() < 1e-8,
                        "D = {d}, order 6 {order6}, general {general}, ({row}, {col}): exact {exact} vs difference {fd}"
                    );
                }
            }
        }
    }
}

/// Newton's stopping rule (a small predicted remainder after a contracting correction)
/// returns an iterate within the tolerance of the exact solution of the collocation
/// equations: the Figure 1 problem on a fixed mesh, from a straight line with its constant
/// velocity's momentum and from rest (a larger first step), against the same iteration run
/// to near rounding level.
#[test]
fn newton_stops_within_tolerance_of_the_collocation_solution() {
    let lag = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.1);
    let (theta0, target) = (vec![-0.6, 0.55], vec![1.0625, 0.0]);
    let end = EndCondition::Fixed(target.clone());
    let sys = System::new(&lag, &theta0, &end);
    let t: Vec<f64> = (0..=60).map(|i| 4.0 * i as f64 / 60.0).collect();
    for momentum in [1.0, 0.0] {
        let start: Vec<f64> = t
            .iter()
            .flat_map(|&ti| {
                let s = ti / 4.0;
                let th = [0, 1].map(|j| theta0[j] + s * (target[j] - theta0[j]));
                let p = [0, 1].map(|j| momentum * (target[j] - theta0[j]) / 4.0);
                [th[0], th[1], p[0], p[1]]
            })
            .collect();
        let solve = |tol: f64| {
            let mut y = start.clone();
            let opts = NewtonOptions {
                tol,
                max_iterations: 50,
                deadline: None,
            };
            sys.newton(&t, &mut y, opts, &mut Workspace::new(2))
                .unwrap();
            y
        };
        let exact = solve(1e-13);
        for tol in [1e-4, 1e-6, 1e-9, 1e-11] {
            let y = solve(tol);
            let diff: Vec<f64> = y.iter().zip(&exact).map(|(a, b)| a - b).collect();
            let error = scaled_norm(&diff, &exact);
            // The tolerance bounds the scaled error of the returned iterate (the reference
            // is within 1e-13 of the solution).
            assert!(
                error <= tol,
                "start {momentum}, tol {tol:e}: error {error:e}"
            );
        }
    }
}

/// The linearised field is exact for a quadratic loss (an affine field), and for a
/// nonlinear one its error shrinks as the square of the distance to the reference.
#[test]
fn linearised_field_is_first_order_exact() {
    let end = EndCondition::Fixed(vec![0.0, 0.0]);
    let theta0 = [0.0, 0.0];
    let reference = [0.4, -0.2, 0.1, 0.3];
    let direction = [0.3, -0.7, 0.5, 0.2];
    let quad = Lagrangian::new(Quadratic::diagonal(vec![1.0, 3.0], vec![0.5, 0.0]).unwrap())
        .with_gamma(0.5);
    let well = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.5);
    for (lag, affine) in [(&quad, true), (&well, false)] {
        let full = System::new(lag, &theta0, &end);
        let lin = Linearisation::new(lag, reference.to_vec());
        let linear = System {
            linearised: Some(&lin),
            ..System::new(lag, &theta0, &end)
        };
        let mut errors = Vec::new();
        for eps in [1e-1, 5e-2] {
            let y: Vec<f64> = reference
                .iter()
                .zip(&direction)
                .map(|(r, v)| r + eps * v)
                .collect();
            let (a, b) = (field(&full, &y), field(&linear, &y));
            errors.push(
                a.iter()
                    .zip(&b)
                    .fold(0.0_f64, |m, (x, z)| m.max((x - z).abs())),
            );
        }
        if affine {
            // Rounding only: a handful of operations on O(1) numbers.
            assert!(errors.iter().all(|&e| e < 1e-14), "{errors:?}");
        } else {
            // Halving the distance quarters a second-order error (ratio 4, up to the
            // third-order term's share at these distances).
            let ratio = errors[0] / errors[1];
            assert!(
                (ratio - 4.0).abs() < 0.3,
                "ratio {ratio}, errors {errors:?}"
            );
        }
    }
}

/// Evaluating many states at once gives the pointwise field bit for bit, for the full
/// field (batched loss gradients) and the linearised one (point by point).
#[test]
fn many_states_match_pointwise_evaluation() {
    let end = EndCondition::Fixed(vec![0.0, 0.0]);
    let theta0 = [0.0, 0.0];
    let lag = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.5);
    let lin = Linearisation::new(&lag, vec![0.4, -0.2, 0.1, 0.3]);
    let full = System::new(&lag, &theta0, &end);
    let linear = System {
        linearised: Some(&lin),
        ..System::new(&lag, &theta0, &end)
    };
    let t = [0.0, 0.3, 0.9, 1.7];
    let y: Vec<f64> = (0..16).map(|i| (i as f64 * 0.61).cos()).collect();
    for sys in [&full, &linear] {
        let mut ws = FieldWorkspace::new(2);
        let mut many = vec![0.0; 16];
        sys.eval_many(&t, &y, &mut many, &mut ws);
        for (j, &tj) in t.iter().enumerate() {
            let mut one = [0.0; 4];
            sys.eval(tj, &y[4 * j..4 * j + 4], &mut one, &mut ws);
            assert_eq!(many[4 * j..4 * j + 4], one, "state {j}");
        }
    }
}
