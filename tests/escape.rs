//! The escape diagram's switching discount against a direct comparison of the two extremals.

use nalgebra::DVector;

use lossnav::escape::escape_diagram;
use lossnav::problems::{End, Horizon, Problem, Spec};
use lossnav::solvers::Bvp;

fn cost(spec: &Spec, gamma: f64, target: [f64; 2]) -> f64 {
    let mut s = spec.clone();
    s.gamma = gamma;
    let base = s.to_problem().unwrap();
    let p = Problem::new(
        base.lagrangian().clone(),
        base.theta0().clone(),
        Horizon::Infinite,
        End::Equilibrium {
            guess: Some(DVector::from_column_slice(&target)),
        },
    )
    .unwrap();
    Bvp::default().with_tol(1e-10).solve(&p).unwrap().cost
}

#[test]
fn switching_discount_is_where_the_two_extremals_cost_the_same() {
    let spec = Spec::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/figure1-double-well-infinite.json"
    ))
    .unwrap();
    let d = escape_diagram(&spec, &[0.4, 0.9], std::slice::from_ref(&spec.theta0)).unwrap();
    assert_eq!(d.switches.len(), 1, "{:?}", d.switches);
    let s = &d.switches[0];
    assert_eq!(s.kind, "indifference");
    let (near, far) = (
        [d.minima[0][0], d.minima[0][1]],
        [d.minima[1][0], d.minima[1][1]],
    );
    assert!(near[0] < 0.0 && far[0] > 0.0);
    // Direct comparison at the switch: equal costs to 1e-6 (solves at tol 1e-10).
    let gap = cost(&spec, s.gamma, far) - cost(&spec, s.gamma, near);
    assert!(gap.abs() < 1e-6, "cost gap {gap:e} at γ* = {}", s.gamma);
    // And the choice flips across it.
    assert!(cost(&spec, s.gamma - 0.02, far) < cost(&spec, s.gamma - 0.02, near));
    assert!(cost(&spec, s.gamma + 0.02, far) > cost(&spec, s.gamma + 0.02, near));
    assert!(
        escape_diagram(&spec, &[0.0, 0.5], std::slice::from_ref(&spec.theta0)).is_err(),
        "γ = 0 is rejected"
    );
}

/// Records every report.
#[derive(Default)]
struct Log(std::sync::Mutex<Vec<lossnav::solvers::observe::Progress>>);

impl lossnav::solvers::observe::Observer for Log {
    fn progress(&self, p: &lossnav::solvers::observe::Progress) {
        self.0.lock().unwrap().push(p.clone());
    }
}

#[test]
fn the_diagram_reports_each_grid_point_once() {
    let spec = Spec::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/figure1-double-well-infinite.json"
    ))
    .unwrap();
    let starts = vec![spec.theta0.clone(), vec![-0.5, spec.theta0[1]]];
    let log = Log::default();
    let d = lossnav::escape::escape_diagram_observed(&spec, &[0.3, 1.2], &starts, &log).unwrap();
    let mut reports = log.0.into_inner().unwrap();
    // Worker threads report in any order; the counts are 1..=4, each once, out of 4.
    reports.sort_by_key(|p| p.iteration);
    assert_eq!(
        reports.iter().map(|p| p.iteration).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(reports
        .iter()
        .all(|p| p.total == Some(4) && p.solver == "escape"));
    assert_eq!(d.points.len(), 4);
}
