//! Cost of the second-order check and of the search on the Figure 1 problem:
//! `cargo run --release --example certificate_cost`; `… certificate_cost check` runs the check
//! alone 100 times (for `valgrind --tool=callgrind`), `… certificate_cost d50` times the
//! boundary-value solve and the check on the D = 50 infinite-horizon quadratic.

use std::time::Instant;

use lossnav::problems::load_problem;
use lossnav::solvers::{certificate, Bvp, Search};

fn main() {
    let problem = load_problem("problems/specs/figure1-double-well.json").unwrap();
    let bvp = Bvp::default().with_tol(1e-8);
    if std::env::args().nth(1).as_deref() == Some("check") {
        // The check alone, for instruction counts (`valgrind --tool=callgrind`).
        let sol = bvp.solve(&problem).unwrap();
        for _ in 0..100 {
            std::hint::black_box(certificate::check(&problem, &sol));
        }
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("d50") {
        let big = lossnav::testbed::random_spd_quadratic(50).0;
        let bare = Bvp {
            second_order: false,
            ..bvp.clone()
        };
        let reps = 5;
        let start = Instant::now();
        let mut sol = None;
        for _ in 0..reps {
            sol = Some(bare.solve(&big).unwrap());
        }
        let solve = start.elapsed().as_secs_f64() / reps as f64;
        let sol = sol.unwrap();
        let start = Instant::now();
        let mut checked = None;
        for _ in 0..reps {
            checked = Some(certificate::check(&big, &sol));
        }
        let check = start.elapsed().as_secs_f64() / reps as f64;
        let checked = checked.unwrap();
        let c = checked.certificate().unwrap();
        println!(
            "D = 50 quadratic (tol 1e-8, {} nodes): solve {:.3} s, check {:.3} s ({} elements, {:?}, smallest eigenvalue {:.6e})",
            sol.t.len(),
            solve,
            check,
            c.elements,
            c.verdict,
            c.smallest_eigenvalue
        );
        return;
    }
    let reps = 200;
    let start = Instant::now();
    let mut sol = None;
    for _ in 0..reps {
        sol = Some(bvp.solve(&problem).unwrap());
    }
    let solve = start.elapsed().as_secs_f64() / reps as f64;
    let sol = sol.unwrap();
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(certificate::check(&problem, &sol));
    }
    let check = start.elapsed().as_secs_f64() / reps as f64;
    let start = Instant::now();
    let searches = 20;
    for _ in 0..searches {
        std::hint::black_box(Search::default().solve(&problem).unwrap());
    }
    let search = start.elapsed().as_secs_f64() / searches as f64;
    // What a sweep repeats per grid point besides the solve: the spec to a problem (parse,
    // record, differentiate).
    let text = std::fs::read_to_string("problems/specs/figure1-double-well.json").unwrap();
    let start = Instant::now();
    for _ in 0..reps {
        let spec = lossnav::problems::Spec::from_json(&text).unwrap();
        std::hint::black_box(spec.to_problem().unwrap());
    }
    let compile = start.elapsed().as_secs_f64() / reps as f64;
    println!(
        "spec to problem (parse, record, differentiate): {:.3} ms",
        compile * 1e3
    );
    let c = sol.second_order.certificate().unwrap();
    println!(
        "Figure 1 (tol 1e-8, {} nodes): solve incl. check {:.3} ms, check alone {:.3} ms ({} elements), search {:.2} ms",
        sol.t.len(),
        solve * 1e3,
        check * 1e3,
        c.elements,
        search * 1e3
    );
}
