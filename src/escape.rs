//! The escape diagram of a double well: for which discounts γ and start points does the optimal
//! infinite-horizon trajectory cross the barrier to the far minimum?
//!
//! For each start point the two extremals — toward the near minimum (reached by descent) and
//! toward the far one — are solved over a grid of γ. The optimal one is the cheaper (γ > 0, so
//! costs are absolute and comparable). Where the choice changes between grid points, the
//! switching discount is refined by bisection on `ΔJ(γ) = J_far − J_near` to the indifference
//! point `ΔJ = 0`; where the far extremal ceases to exist first (a fold of its stable
//! manifold), the switch is that fold, bracketed by bisection on existence.

use lossnav_solvers::observe::{Observer, Progress};
use nalgebra::DVector;
use rayon::prelude::*;
use serde::Serialize;

use lossnav_problems::{End, Horizon, Problem, Spec};
use lossnav_solvers::extremals::candidate_minima;
use lossnav_solvers::Bvp;

/// The outcome at one (start point, γ).
#[derive(Debug, Clone, Serialize)]
pub struct EscapePoint {
    /// Start point.
    pub theta0: Vec<f64>,
    /// Discount.
    pub gamma: f64,
    /// Cost toward the near minimum.
    pub near_cost: Option<f64>,
    /// Cost toward the far minimum (None: no such extremal).
    pub far_cost: Option<f64>,
    /// Whether the optimal trajectory crosses to the far minimum.
    pub escapes: bool,
}

/// Where the choice switches for one start point.
#[derive(Debug, Clone, Serialize)]
pub struct Switch {
    /// Start point.
    pub theta0: Vec<f64>,
    /// The switching discount.
    pub gamma: f64,
    /// `"indifference"` (both extremals, equal cost) or `"fold"` (the far extremal ends).
    pub kind: String,
    /// `J_far − J_near` at the switch (indifference only).
    pub cost_gap: Option<f64>,
}

/// The diagram.
#[derive(Debug, Clone, Serialize)]
pub struct EscapeDiagram {
    /// The near and far minima.
    pub minima: [Vec<f64>; 2],
    /// Every grid point.
    pub points: Vec<EscapePoint>,
    /// Switching discounts.
    pub switches: Vec<Switch>,
}

fn cost_toward(spec: &Spec, theta0: &[f64], gamma: f64, target: &[f64]) -> Option<f64> {
    let mut s = spec.clone();
    s.gamma = gamma;
    s.theta0 = theta0.to_vec();
    let base = s.to_problem().ok()?;
    let p = Problem::new(
        base.lagrangian().clone(),
        DVector::from_column_slice(theta0),
        Horizon::Infinite,
        End::Equilibrium {
            guess: Some(DVector::from_column_slice(target)),
        },
    )
    .ok()?;
    let sol = Bvp::default().with_tol(1e-10).solve(&p).ok()?;
    // Only an extremal that reaches the requested minimum counts.
    let star = &sol.tail.as_ref()?.theta_star;
    let reached = star
        .iter()
        .zip(target)
        .all(|(a, b)| (a - b).abs() < 1e-6 * (1.0 + b.abs()));
    reached.then_some(sol.cost)
}

type Costs = (Option<f64>, Option<f64>);

/// Refines a switch between two grid points: regula falsi (Illinois) on `ΔJ = J_far − J_near`
/// while both extremals exist, bisection on existence otherwise.
fn locate(
    eval: &dyn Fn(f64) -> Costs,
    escapes: &dyn Fn(Costs) -> bool,
    th0: &[f64],
    (mut a, mut ca): (f64, Costs),
    (mut b, mut cb): (f64, Costs),
) -> Switch {
    let gap = |c: Costs| match c {
        (Some(n), Some(f)) => Some(f - n),
        _ => None,
    };
    let (mut wa, mut wb) = (1.0, 1.0);
    for _ in 0..80 {
        let mid = match (gap(ca), gap(cb)) {
            (Some(ga), Some(gb)) if ga != gb => {
                let m = (a * gb * wb - b * ga * wa) / (gb * wb - ga * wa);
                if m > a.min(b) && m < a.max(b) {
                    m
                } else {
                    0.5 * (a + b)
                }
            }
            _ => 0.5 * (a + b),
        };
        let cm = eval(mid);
        if let Some(gm) = gap(cm) {
            if gm.abs() <= 1e-11 * (1.0 + cm.0.unwrap_or(0.0).abs()) {
                a = mid;
                ca = cm;
                b = mid;
                cb = cm;
                break;
            }
        }
        if escapes(cm) == escapes(ca) {
            a = mid;
            ca = cm;
            wb *= 0.5;
            wa = 1.0;
        } else {
            b = mid;
            cb = cm;
            wa *= 0.5;
            wb = 1.0;
        }
        if (b - a).abs() < 1e-9 * b.abs().max(1e-12) {
            break;
        }
    }
    let gamma = 0.5 * (a + b);
    let (kind, cost_gap) = match (gap(ca), gap(cb)) {
        (Some(x), Some(y)) => ("indifference", Some(if x.abs() < y.abs() { x } else { y })),
        _ => ("fold", None),
    };
    Switch {
        theta0: th0.to_vec(),
        gamma,
        kind: kind.into(),
        cost_gap,
    }
}

/// Computes the diagram for `gammas` (all > 0) and start points `theta0s`.
pub fn escape_diagram(
    spec: &Spec,
    gammas: &[f64],
    theta0s: &[Vec<f64>],
) -> Result<EscapeDiagram, String> {
    escape_diagram_observed(spec, gammas, theta0s, &())
}

/// [`escape_diagram`], reporting to `observer` after each grid point (from the worker
/// threads): the points done so far as the iteration, out of the grid's size as the total.
pub fn escape_diagram_observed(
    spec: &Spec,
    gammas: &[f64],
    theta0s: &[Vec<f64>],
    observer: &dyn Observer,
) -> Result<EscapeDiagram, String> {
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = gammas.len() * theta0s.len();
    if gammas.iter().any(|&g| g.is_nan() || g <= 0.0) {
        return Err(
            "every γ must be > 0 (costs of different minima are comparable only with discounting)"
                .into(),
        );
    }
    let base = spec.to_problem().map_err(|e| e.to_string())?;
    let minima = candidate_minima(&base);
    if lossnav_solvers::Budget::expired() {
        return Err("the time budget ran out while looking for the minima of the loss".into());
    }
    if minima.len() != 2 {
        return Err(format!(
            "expected a double well (two minima near theta0), found {} minima",
            minima.len()
        ));
    }
    let near = minima[0].clone();
    let far = minima[1].clone();
    // Start points are independent: one rayon task each, under the caller's deadline.
    let budget = lossnav_solvers::Budget::handle();
    let rows: Vec<(Vec<EscapePoint>, Vec<Switch>)> = theta0s
        .par_iter()
        .map(|th0| {
            let _scope = budget.enter();
            let eval = |g: f64| -> (Option<f64>, Option<f64>) {
                (
                    cost_toward(spec, th0, g, &near),
                    cost_toward(spec, th0, g, &far),
                )
            };
            let escapes = |(n, f): (Option<f64>, Option<f64>)| match (n, f) {
                (Some(n), Some(f)) => f < n,
                (None, Some(_)) => true,
                _ => false,
            };
            let mut points = Vec::new();
            let mut switches = Vec::new();
            let mut prev: Option<(f64, Costs)> = None;
            for &g in gammas {
                let here = eval(g);
                points.push(EscapePoint {
                    theta0: th0.clone(),
                    gamma: g,
                    near_cost: here.0,
                    far_cost: here.1,
                    escapes: escapes(here),
                });
                if let Some((g0, before)) = prev {
                    if escapes(before) != escapes(here) {
                        switches.push(locate(&eval, &escapes, th0, (g0, before), (g, here)));
                    }
                }
                prev = Some((g, here));
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                observer.progress(&Progress {
                    solver: "escape",
                    stage: format!("γ = {g}, θ0₁ = {}", th0[0]),
                    iteration: n,
                    measure: "grid points done",
                    value: n as f64,
                    elapsed: started.elapsed().as_secs_f64(),
                    total: Some(total),
                });
            }
            (points, switches)
        })
        .collect();
    // A solve cut short by the deadline looks like an extremal that does not exist: a diagram
    // finished after the deadline may be wrong, so none is returned.
    if lossnav_solvers::Budget::expired() {
        return Err(format!(
            "the time budget ran out after {:.1} s, before the diagram was complete",
            started.elapsed().as_secs_f64()
        ));
    }
    let (points, switches) =
        rows.into_iter()
            .fold((Vec::new(), Vec::new()), |(mut p, mut s), (rp, rs)| {
                p.extend(rp);
                s.extend(rs);
                (p, s)
            });
    Ok(EscapeDiagram {
        minima: [near, far],
        points,
        switches,
    })
}
