//! Overrides of `Landscape::value_and_gradient` against `value` and `gradient` called
//! separately (independent code paths: the overrides share work the two do not).

use lossnav_problems::nalgebra::{DMatrix, DVector};
use lossnav_problems::{Landscape, LowRankQuadratic, Quadratic, TwoLayerTanh};

fn agree(loss: &dyn Landscape, theta: &[f64]) {
    let d = theta.len();
    let (mut g1, mut g2) = (vec![0.0; d], vec![0.0; d]);
    let v1 = loss.value_and_gradient(theta, 0.0, &mut g1);
    loss.gradient(theta, 0.0, &mut g2);
    let v2 = loss.value(theta, 0.0);
    // The same floating-point operations in a different grouping: equal to rounding.
    assert!(
        (v1 - v2).abs() <= 1e-13 * v2.abs().max(1.0),
        "{}: {v1} vs {v2}",
        loss.describe()
    );
    for (a, b) in g1.iter().zip(&g2) {
        assert!(
            (a - b).abs() <= 1e-13 * b.abs().max(1.0),
            "{}: {a} vs {b}",
            loss.describe()
        );
    }
}

#[test]
fn overrides_agree_with_value_and_gradient() {
    let theta: Vec<f64> = (0..6).map(|i| (1.3 * i as f64).sin()).collect();
    let dense = DMatrix::from_fn(6, 6, |i, j| if i == j { 2.0 } else { 0.1 });
    let mu = DVector::from_fn(6, |i, _| 0.1 * i as f64);
    agree(&Quadratic::new(dense, mu.clone()).unwrap(), &theta);
    agree(
        &Quadratic::diagonal(vec![1.0, 2.0, 3.0, 0.5, 0.7, 1.1], vec![0.2; 6]).unwrap(),
        &theta,
    );
    let u = DMatrix::from_fn(6, 2, |i, j| 0.1 * (i + j) as f64);
    let low = LowRankQuadratic::new(DVector::from_element(6, 1.5), u, mu).unwrap();
    agree(&low, &theta);
    let inputs: Vec<Vec<f64>> = (0..5)
        .map(|s| (0..3).map(|k| (0.7 * (s * 3 + k) as f64).cos()).collect())
        .collect();
    let targets: Vec<f64> = (0..5).map(|s| 0.2 * s as f64).collect();
    let net = TwoLayerTanh::new(inputs, targets, 2).unwrap();
    let w: Vec<f64> = (0..net.dim())
        .map(|i| 0.3 * (0.9 * i as f64).sin())
        .collect();
    agree(&net, &w);
}
