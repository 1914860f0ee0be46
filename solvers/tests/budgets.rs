//! Work budgets: every solver ends with a typed error naming what ran out, and a badly scaled
//! problem fails in a bounded number of iterations instead of crawling through the whole
//! budget. (No timing assertions: budgets are checked through what the errors report.)

use std::sync::{Arc, Mutex};

use lossnav_problems::{load_problem, Spec};
use lossnav_solvers::observe::{Observer, Progress};
use lossnav_solvers::{Bvp, Direct, Search, SolverError};

fn shipped(name: &str) -> lossnav_problems::Problem {
    load_problem(format!(
        "{}/../problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn a_wall_clock_budget_ends_each_solver_with_time_limit() {
    let p = shipped("figure1-double-well");
    // 1 µs: spent before the first Newton or L-BFGS iteration on any machine.
    let tiny = 1e-6;
    for result in [
        Bvp::default().with_max_seconds(tiny).solve(&p),
        Direct::default().with_max_seconds(tiny).solve(&p),
    ] {
        match result {
            Err(e @ SolverError::TimeLimit { .. }) => {
                assert!(e.to_string().contains("time budget ran out"), "{e}")
            }
            other => panic!("expected TimeLimit, got {other:?}"),
        }
    }
    // The search shares one budget across its solves and does not swallow it as a failure.
    let search = Search {
        bvp: Bvp::default().with_max_seconds(tiny),
        ..Search::default()
    };
    assert!(matches!(
        search.solve(&p),
        Err(SolverError::TimeLimit { .. })
    ));
    // Invalid budgets are refused up front.
    assert!(matches!(
        Bvp::default().with_max_seconds(0.0).solve(&p),
        Err(SolverError::InvalidOption {
            name: "max_seconds",
            ..
        })
    ));
    // With room, the same solves succeed; a budget too long to represent as an instant
    // (1e19 s) is no budget, not a panic.
    assert!(Bvp::default().with_max_seconds(60.0).solve(&p).is_ok());
    assert!(Bvp::default().with_max_seconds(1e19).solve(&p).is_ok());
    let shooting = lossnav_solvers::Shooting {
        max_seconds: 1e19,
        ..Default::default()
    };
    let sol = shooting.solve(&p).unwrap();
    // Shooting reports the residual its Newton test checked, against the bound it used.
    match sol.accuracy {
        lossnav_solvers::Accuracy::Met { estimate, tol, .. } => assert!(estimate <= tol),
        other => panic!("{other:?}"),
    }
}

/// A drift of 10⁶ on a horizon of 2 with 100 intervals: the fastest rate times the mesh
/// spacing is 2·10⁴, far beyond what the discretisation resolves, and L-BFGS crawls. It used to
/// run 8916 iterations (47 s) before its line search failed; the rate test stops it once the
/// iterations it would still need exceed the budget, before the budget is spent. The in-place
/// L-BFGS gets further than argmin's did: depending on rounding it reaches a gradient norm
/// within 10× of the tolerance, where the cost (1.2·10⁹) no longer resolves the decrease of a
/// step and the line search fails, in 0.7 s; that is the same typed failure with the same
/// advice.
#[test]
fn a_badly_scaled_problem_fails_within_a_few_windows() {
    let spec = Spec::from_json(
        r#"{"name": "huge drift",
            "loss": {"quadratic": {"hessian": [[1, 0], [0, 1]], "minimum": [0, 0]}},
            "drift": {"linear": [[0, 1e6], [-1e6, 0]]},
            "eta": 1, "k": 1, "gamma": 0.1, "theta0": [1, 1], "horizon": 2}"#,
    )
    .unwrap();
    let direct = Direct::default();
    match direct.solve(&spec.to_problem().unwrap()) {
        Err(SolverError::OptimizerFailed {
            iterations, reason, ..
        }) => {
            assert!(
                (iterations as u64) < direct.max_iterations,
                "{iterations} iterations: the rate test did not fire before the budget"
            );
            assert!(
                reason.contains("too slow")
                    || reason.contains("stalled")
                    || reason.contains("rounding level"),
                "{reason}"
            );
            assert!(reason.contains("badly conditioned"), "{reason}");
        }
        other => panic!("expected OptimizerFailed, got {other:?}"),
    }
}

#[derive(Default)]
struct Log(Mutex<Vec<Progress>>);

impl Observer for Log {
    fn progress(&self, p: &Progress) {
        self.0.lock().unwrap().push(p.clone());
    }
}

/// Observers hear every mesh pass of the boundary-value solver, and their last report is the
/// largest error estimate of the final mesh, the one the solution reports.
#[test]
fn observers_hear_each_mesh_pass() {
    let p = shipped("figure1-double-well");
    let log = Arc::new(Log::default());
    let sol = Bvp::default().with_observer(log.clone()).solve(&p).unwrap();
    let reports = log.0.lock().unwrap();
    assert!(!reports.is_empty());
    assert!(reports.iter().all(|r| r.solver == "bvp"));
    // The certificate re-solves nothing: the last report is the final mesh's.
    let last = reports.last().unwrap();
    assert_eq!(last.value, sol.diagnostics.max_residual);
    assert!(reports.len() >= sol.diagnostics.mesh_passes);
    assert!(reports.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
}

/// The equilibrium's Newton iteration works with dense 2D×2D matrices: at D = 10⁵ (480 GB) it
/// is refused before allocating, where it aborted the process.
#[test]
fn a_dense_equilibrium_search_beyond_memory_is_refused() {
    use lossnav_problems::{Lagrangian, Quadratic};
    let d = 100_000;
    let loss = Quadratic::diagonal(vec![1.0; d], vec![0.0; d]).unwrap();
    let lag = Lagrangian::new(loss);
    let theta0 = nalgebra::DVector::from_element(d, 1.0);
    match lossnav_solvers::equilibrium::find_equilibrium(&lag, &theta0, None) {
        Err(SolverError::MemoryLimit { dim, estimate, .. }) => {
            assert_eq!(dim, d);
            assert!(estimate > 16 << 30);
        }
        other => panic!(
            "expected a memory refusal, got {:?}",
            other.map(|e| e.iterations)
        ),
    }
}
