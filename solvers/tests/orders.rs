//! Measured orders of accuracy of the boundary-value schemes: the Figure 1 problem on fixed
//! uniform meshes of 20, 40 and 80 intervals against a reference solved far more accurately.
//! Halving `h` must divide the error by about `2^order` for the nodal values, for the
//! interpolant between nodes ([`Solution::eval`]) and for the cost.

use lossnav_problems::load_problem;
use lossnav_solvers::{Bvp, Scheme, Solution};

fn figure1() -> lossnav_problems::Problem {
    load_problem(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../problems/specs/figure1-double-well.json"
    ))
    .unwrap()
}

/// Largest deviation of θ and p from the reference at the mesh nodes, and on a grid of 999
/// times that avoids the nodes of every mesh used (the interpolant).
fn errors(sol: &Solution, reference: &Solution) -> (f64, f64) {
    let dev = |t: f64| {
        let ((a, pa), (b, pb)) = (sol.eval(t), reference.eval(t));
        a.iter()
            .zip(&b)
            .chain(pa.iter().zip(&pb))
            .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
    };
    let nodes = sol.t.iter().map(|&t| dev(t)).fold(0.0, f64::max);
    let between = (1..1000)
        .map(|i| dev(4.0 * (i as f64 - 0.5) / 999.5))
        .fold(0.0, f64::max);
    (nodes, between)
}

/// log₂ of successive error ratios.
fn orders(e: &[f64]) -> Vec<f64> {
    e.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
}

fn measured(scheme: Scheme) -> [Vec<f64>; 3] {
    let problem = figure1();
    // Tolerance 1e-13 with the sixth-order scheme: path error about 1e-13 (measured by
    // `cargo run --release --example accuracy_figure1`), far below the errors measured here
    // (≥ 1e-10 on 80 intervals).
    let reference = Bvp {
        scheme: Scheme::Order6,
        second_order: false,
        ..Bvp::default().with_tol(1e-13)
    }
    .solve(&problem)
    .unwrap();
    let (mut at_nodes, mut between, mut cost) = (vec![], vec![], vec![]);
    for intervals in [20, 40, 80] {
        let sol = Bvp {
            scheme,
            second_order: false,
            ..Bvp::default().with_fixed_mesh(intervals)
        }
        .solve(&problem)
        .unwrap();
        let (n, b) = errors(&sol, &reference);
        at_nodes.push(n);
        between.push(b);
        cost.push((sol.cost - reference.cost).abs());
    }
    eprintln!("{scheme:?}: nodes {at_nodes:?}, between {between:?}, cost {cost:?}");
    [orders(&at_nodes), orders(&between), orders(&cost)]
}

/// The sixth-order scheme converges at order 6 at the nodes, between them (the quintic
/// interpolant) and in the cost. Bounds: ±0.6 around 6 leaves room for the pre-asymptotic
/// first halving on 20 intervals; order 5 (a wrong interpolant or stage) or 4 (a
/// wrong weight) falls outside.
#[test]
fn sixth_order_scheme_converges_at_order_six() {
    for (what, o) in ["nodes", "interpolant", "cost"]
        .iter()
        .zip(measured(Scheme::Order6))
    {
        for r in o {
            assert!((5.4..=6.6).contains(&r), "{what}: measured order {r:.2}");
        }
    }
}

/// The fourth-order scheme (Lobatto IIIA) converges at order 4 everywhere.
#[test]
fn fourth_order_scheme_converges_at_order_four() {
    for (what, o) in ["nodes", "interpolant", "cost"]
        .iter()
        .zip(measured(Scheme::Order4))
    {
        for r in o {
            assert!((3.6..=4.4).contains(&r), "{what}: measured order {r:.2}");
        }
    }
}
