//! What a solver returns: the trajectory, its continuous extension, the cost and diagnostics.
//!
//! The shared vocabulary of every method: [`Solution`] with its [`Accuracy`] and
//! [`Diagnostics`], the Hermite interpolant between nodes (`hermite.rs`), the second-order
//! result a solution carries ([`SecondOrder`], computed in `certify/`), and the [`Guess`] a
//! solve may start from. Uses: the problem crate and the error type only, so every folder may
//! depend on it and it on none.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::{Lagrangian, Points};

use crate::error::SolverError;

pub(crate) mod hermite;
mod second_order;

pub use second_order::{Certificate, SecondOrder, Verdict};

/// An initial guess `t ↦ (θ(t), p(t))`.
pub type Guess<'a> = dyn Fn(f64) -> (Vec<f64>, Vec<f64>) + 'a;

/// Solver diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics {
    /// Newton iterations summed over all meshes (and continuation steps).
    pub iterations: usize,
    /// Mesh nodes of the final solution.
    pub nodes: usize,
    /// Largest per-interval error estimate on the final mesh (≤ tol when the tolerance is met).
    pub max_residual: f64,
    /// Meshes solved (refinements + coarsenings + 1).
    pub mesh_passes: usize,
    /// Continuation used to reach the answer, if any (`"k"`, `"theta0"`), with its steps.
    pub continuation: Option<(String, usize)>,
}

/// What was verified about a solution's first-order conditions (the optimality conditions the
/// path satisfies up to discretisation error). The second-order check, whether the path is a
/// minimum, is [`Solution::second_order`].
#[derive(Debug, Clone, PartialEq)]
pub enum Accuracy {
    /// The solver's error estimate met the requested tolerance.
    Met {
        /// What was estimated.
        measure: &'static str,
        /// The estimate.
        estimate: f64,
        /// The tolerance it meets.
        tol: f64,
    },
    /// A fixed mesh was asked for ([`crate::bvp::Bvp::with_fixed_mesh`], for convergence studies)
    /// and its error estimate is above the tolerance: the result is what that mesh gives.
    FixedMeshAbove {
        /// What was estimated.
        measure: &'static str,
        /// The estimate.
        estimate: f64,
        /// The tolerance it misses.
        tol: f64,
    },
    /// The path's error was not estimated; only the optimiser's stopping test passed.
    NotEstimated {
        /// The optimiser's final gradient norm of the discretised objective.
        gradient_norm: f64,
        /// Why no estimate was made.
        reason: String,
    },
}

impl Accuracy {
    /// True when an error estimate met the tolerance.
    pub fn tolerance_met(&self) -> bool {
        matches!(self, Self::Met { .. })
    }

    /// One line: what was verified, with the numbers.
    pub fn describe(&self) -> String {
        match self {
            Self::Met {
                measure,
                estimate,
                tol,
            } => format!("{measure} {estimate:.2e} ≤ tol {tol:.1e}"),
            Self::FixedMeshAbove {
                measure,
                estimate,
                tol,
            } => format!("fixed mesh: {measure} {estimate:.2e} above tol {tol:.1e}"),
            Self::NotEstimated {
                gradient_norm,
                reason,
            } => format!(
                "error not estimated ({reason}); the optimiser's gradient norm is \
                 {gradient_norm:.2e}"
            ),
        }
    }

    /// The JSON form: `verified` (`"tolerance met"`, `"fixed mesh above tolerance"`, `"not
    /// estimated"`) with the numbers and `text`, the [`Accuracy::describe`] line.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let text = self.describe();
        match self {
            Self::Met {
                measure,
                estimate,
                tol,
            } => {
                json!({"verified": "tolerance met", "measure": measure, "estimate": estimate, "tol": tol, "text": text})
            }
            Self::FixedMeshAbove {
                measure,
                estimate,
                tol,
            } => {
                json!({"verified": "fixed mesh above tolerance", "measure": measure, "estimate": estimate, "tol": tol, "text": text})
            }
            Self::NotEstimated {
                gradient_norm,
                reason,
            } => {
                json!({"verified": "not estimated", "gradient_norm": gradient_norm, "reason": reason, "text": text})
            }
        }
    }
}

/// The infinite-horizon tail: the equilibrium approached and the linearisation beyond the
/// truncation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    /// `θ*`.
    pub theta_star: DVector<f64>,
    /// `p*`.
    pub p_star: DVector<f64>,
    /// `P`: `p - p* = -η P (θ - θ*)` near the equilibrium.
    pub riccati: DMatrix<f64>,
    /// `K`: `θ̇ = K (θ - θ*)` near the equilibrium.
    pub closed_loop: DMatrix<f64>,
    /// The truncation time of the numerical trajectory.
    pub truncation: f64,
    /// Running cost `ℓ*` of resting at the equilibrium.
    pub equilibrium_running_cost: f64,
    /// η of the problem (relates `p` and `P`).
    pub eta: f64,
    /// The slowest decay rate among the modes of `K` that move (`−Re λ`; 1 when none does).
    pub slowest_rate: f64,
}

impl Tail {
    /// The time span `s` to use for `e^{Ks}`: `s` itself, capped where every decaying mode of
    /// `K` has fallen below `e^{−800}` (far under f64's smallest normal number relative to the
    /// start). Beyond that the answer cannot change, while `e^{Ks}` for `s` like 1e100 costs
    /// hundreds of squarings and ends in `∞·0`.
    fn effective_span(&self, s: f64) -> f64 {
        // Non-decaying modes (rate zero: directions that do not move) are unaffected by `s`.
        s.min(800.0 / self.slowest_rate)
    }
}

/// One vector of length [`NodeValues::dim`] per mesh node, stored contiguously (node-major):
/// `values[i]` is node `i`'s vector. One allocation for the whole path instead of one per node.
///
/// ```
/// use lossnav_solvers::solution::NodeValues;
/// let v = NodeValues::from_flat(vec![1.0, 2.0, 3.0, 4.0], 2);
/// assert_eq!(v.len(), 2);
/// assert_eq!(v[1], [3.0, 4.0]);
/// assert_eq!(v.last(), Some(&[3.0, 4.0][..]));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeValues {
    values: Vec<f64>,
    dim: usize,
    len: usize,
}

impl NodeValues {
    /// From node-major `values` of `values.len() / dim` nodes.
    ///
    /// # Panics
    /// If `dim` does not divide the length (a zero `dim` only holds no values).
    pub fn from_flat(values: Vec<f64>, dim: usize) -> Self {
        assert!(
            values.len() % dim.max(1) == 0 && (dim > 0 || values.is_empty()),
            "{} values do not split into vectors of length {dim}",
            values.len()
        );
        let len = values.len() / dim.max(1);
        Self { values, dim, len }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length of each node's vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The nodes' vectors in order.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, f64> {
        self.values.chunks_exact(self.dim.max(1))
    }

    /// The first node's vector.
    pub fn first(&self) -> Option<&[f64]> {
        self.iter().next()
    }

    /// The last node's vector.
    pub fn last(&self) -> Option<&[f64]> {
        self.iter().next_back()
    }

    /// All values, node-major.
    pub fn as_flat(&self) -> &[f64] {
        &self.values
    }

    /// One `Vec` per node (for serialisation and callers that want owned rows).
    pub fn to_nested(&self) -> Vec<Vec<f64>> {
        self.iter().map(<[f64]>::to_vec).collect()
    }
}

impl std::ops::Index<usize> for NodeValues {
    type Output = [f64];
    fn index(&self, i: usize) -> &[f64] {
        assert!(i < self.len, "node {i} of {}", self.len);
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

impl<'a> IntoIterator for &'a NodeValues {
    type Item = &'a [f64];
    type IntoIter = std::slice::ChunksExact<'a, f64>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An optimal trajectory.
#[derive(Debug, Clone)]
pub struct Solution {
    /// The method that produced it (`"bvp"`, ...).
    pub method: String,
    /// What was verified about the first-order conditions (see also `second_order`).
    pub accuracy: Accuracy,
    /// Mesh times.
    pub t: Vec<f64>,
    /// `θ` at each mesh time.
    pub theta: NodeValues,
    /// `p = G(θ)(θ̇ - f)` at each mesh time.
    pub p: NodeValues,
    /// `θ̇` at each mesh time.
    pub theta_dot: NodeValues,
    /// The objective `J` (see [`Solution::cost_is_relative`]).
    pub cost: f64,
    /// True for `γ = 0` on an infinite horizon: `cost` is `∫ (ℓ - ℓ*) dt`, relative to the
    /// running cost `ℓ*` at the target equilibrium (the absolute cost is infinite unless
    /// `ℓ* = 0`).
    pub cost_is_relative: bool,
    /// `L(θ(t), t)` at each mesh time.
    pub loss: Vec<f64>,
    /// Kinetic term `(1/2η) pᵀMp` at each mesh time.
    pub kinetic: Vec<f64>,
    /// Current-value Hamiltonian `ℋ` at each mesh time.
    pub hamiltonian: Vec<f64>,
    /// Solver diagnostics.
    pub diagnostics: Diagnostics,
    /// Infinite horizon: the equilibrium and the linearised tail.
    pub tail: Option<Tail>,
    /// The second-order check (docs/theory.md §7): whether the path is a strict local minimum of
    /// `J`, a saddle (with its number of descent directions), or was not checked and why.
    pub second_order: SecondOrder,
    /// `dθ/dt, dp/dt` at the nodes, node-major (for the interpolant).
    pub(crate) slopes: Vec<f64>,
    /// Sixth-order boundary-value solutions: second derivatives at the nodes, node-major, for
    /// the quintic interpolant; empty otherwise (cubic interpolant).
    pub(crate) curvatures: Vec<f64>,
}

/// What a solver knows besides the nodal trajectory.
pub(crate) struct Summary {
    pub method: &'static str,
    pub accuracy: Accuracy,
    pub cost: f64,
    pub cost_is_relative: bool,
    pub diagnostics: Diagnostics,
    pub tail: Option<Tail>,
}

impl Solution {
    /// The solution if every reported number is finite; otherwise the first that is not, as
    /// an error. A converged solve can still overflow (a horizon so short that the velocity
    /// overflows, say): that must not reach the user as `null`s next to a met tolerance.
    pub(crate) fn finite(self, lag: &Lagrangian) -> Result<Self, SolverError> {
        if !self.cost.is_finite() {
            return Err(SolverError::NonFinite {
                what: "the cost".into(),
                t: self.t.last().copied().unwrap_or(0.0),
            });
        }
        let finite = |v: &f64| v.is_finite();
        let vectors = [("θ", &self.theta), ("θ̇", &self.theta_dot), ("p", &self.p)];
        let scalars = [
            ("loss", &self.loss),
            ("kinetic term", &self.kinetic),
            ("ℋ", &self.hamiltonian),
        ];
        let first_bad = vectors
            .iter()
            .find_map(|(what, v)| Some((*what, v.iter().position(|x| !x.iter().all(finite))?)))
            .or_else(|| {
                scalars
                    .iter()
                    .find_map(|(what, v)| Some((*what, v.iter().position(|x| !finite(x))?)))
            });
        if let Some((what, i)) = first_bad {
            let culprit = crate::error::culprit(lag, &self.theta[i], self.t[i]);
            return Err(SolverError::NonFinite {
                what: match culprit {
                    Some(c) => format!("the solution's {what} ({c})"),
                    None => format!("the solution's {what}"),
                },
                t: self.t[i],
            });
        }
        Ok(self)
    }

    /// Builds a solution from nodal states `y = (θ, p)` and slopes `(θ̇, ṗ)` (node-major),
    /// computing the path quantities (loss, kinetic term, ℋ).
    pub(crate) fn from_nodes(
        lag: &Lagrangian,
        t: Vec<f64>,
        y: &[f64],
        slopes: Vec<f64>,
        summary: Summary,
    ) -> Self {
        let d = lag.dim();
        let n = 2 * d;
        let nodes = t.len();
        let mut theta = Vec::with_capacity(nodes * d);
        let mut p = Vec::with_capacity(nodes * d);
        let mut theta_dot = Vec::with_capacity(nodes * d);
        // The loss at every node in one batch (one pass over an expression's tape, one call
        // into a Python loss), the kinetic and drift terms node by node.
        let mut loss = vec![0.0; nodes];
        lag.loss().values(Points::new(y, d, n, &t), &mut loss);
        let mut kinetic = Vec::with_capacity(nodes);
        let mut hamiltonian = Vec::with_capacity(nodes);
        for (i, &ti) in t.iter().enumerate() {
            let (th, pp) = y[i * n..(i + 1) * n].split_at(d);
            theta.extend_from_slice(th);
            p.extend_from_slice(pp);
            theta_dot.extend_from_slice(&slopes[i * n..i * n + d]);
            let (k, h) = lag.kinetic_and_hamiltonian(ti, th, pp, loss[i]);
            kinetic.push(k);
            hamiltonian.push(h);
        }
        let (theta, p, theta_dot) = (
            NodeValues::from_flat(theta, d),
            NodeValues::from_flat(p, d),
            NodeValues::from_flat(theta_dot, d),
        );
        Self {
            method: summary.method.to_string(),
            accuracy: summary.accuracy,
            t,
            theta,
            p,
            theta_dot,
            cost: summary.cost,
            cost_is_relative: summary.cost_is_relative,
            loss,
            kinetic,
            hamiltonian,
            diagnostics: summary.diagnostics,
            tail: summary.tail,
            second_order: SecondOrder::Unchecked("the second-order check was not requested".into()),
            slopes,
            curvatures: Vec::new(),
        }
    }

    /// The solution with second derivatives at the nodes (node-major, or empty): [`Solution::eval`]
    /// then interpolates with quintic instead of cubic Hermite polynomials.
    pub(crate) fn with_curvatures(mut self, curvatures: Vec<f64>) -> Self {
        debug_assert!(curvatures.is_empty() || curvatures.len() == self.slopes.len());
        self.curvatures = curvatures;
        self
    }

    /// One line saying what was verified: the first-order accuracy and the second-order
    /// verdict, e.g. `collocation error estimate (order 6) 3.10e-10 ≤ tol 1.0e-8; second
    /// order: strict local minimum`.
    pub fn status(&self) -> String {
        format!(
            "{}; second order: {}",
            self.accuracy.describe(),
            self.second_order.describe()
        )
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.theta.dim()
    }

    /// The final time of the mesh (the truncation time for infinite horizons).
    pub fn end_time(&self) -> f64 {
        self.t.last().copied().unwrap_or(0.0)
    }

    /// `(θ(t), p(t))` from the interpolant of the solver's order (the quintic Hermite
    /// interpolant for the sixth-order boundary-value scheme, cubic otherwise). For infinite horizons, times beyond
    /// the truncation follow the linearisation `θ(t) = θ* + e^{K(t-T)}(θ(T) - θ*)`; times
    /// before 0 clamp to 0.
    pub fn eval(&self, t: f64) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let n = 2 * d;
        let end = self.end_time();
        if t > end {
            if let Some(tail) = &self.tail {
                let delta0 = DVector::from_iterator(
                    d,
                    self.theta
                        .last()
                        .unwrap()
                        .iter()
                        .zip(tail.theta_star.iter())
                        .map(|(a, b)| a - b),
                );
                let delta = (&tail.closed_loop * tail.effective_span(t - end)).exp() * delta0;
                let theta = &tail.theta_star + &delta;
                let p = &tail.p_star - (&tail.riccati * &delta) * tail.eta;
                return (theta.as_slice().to_vec(), p.as_slice().to_vec());
            }
        }
        let mut out = vec![0.0; n];
        self.eval_into(t, &mut out);
        let p = out.split_off(d);
        (out, p)
    }

    /// [`Solution::eval`] into `out` (`θ` then `p`, `2D` values) without allocating, on the
    /// solved interval (`t` is clamped to it; the infinite-horizon tail is `eval`'s).
    pub(crate) fn eval_into(&self, t: f64, out: &mut [f64]) {
        let d = self.dim();
        let n = 2 * d;
        let t = t.clamp(self.t[0], self.end_time());
        let i = match self.t.binary_search_by(|v| v.total_cmp(&t)) {
            Ok(i) => i.min(self.t.len() - 2),
            Err(i) => i.saturating_sub(1).min(self.t.len() - 2),
        };
        let h = self.t[i + 1] - self.t[i];
        let x = (t - self.t[i]) / h;
        // The two nodes' states side by side: (θ, p) at i, then at i + 1.
        let mut y = [0.0; 32];
        let mut heap = Vec::new();
        let y: &mut [f64] = if 2 * n <= y.len() {
            &mut y[..2 * n]
        } else {
            heap.resize(2 * n, 0.0);
            &mut heap
        };
        for (k, node) in [i, i + 1].into_iter().enumerate() {
            y[k * n..k * n + d].copy_from_slice(&self.theta[node]);
            y[k * n + d..(k + 1) * n].copy_from_slice(&self.p[node]);
        }
        let (y0, y1) = y.split_at(n);
        let a =
            |k: usize| (!self.curvatures.is_empty()).then(|| &self.curvatures[k * n..(k + 1) * n]);
        let e0 = hermite::End {
            y: y0,
            f: &self.slopes[i * n..(i + 1) * n],
            a: a(i),
        };
        let e1 = hermite::End {
            y: y1,
            f: &self.slopes[(i + 1) * n..(i + 2) * n],
            a: a(i + 1),
        };
        hermite::value_at(x, h, e0, e1, &mut out[..n]);
    }
}

fn matrix_json(m: &DMatrix<f64>) -> serde_json::Value {
    serde_json::Value::from(
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
    )
}

impl Solution {
    /// The solution as the JSON document `lossnav solve` writes, without the problem's name
    /// and the `--at` samples: method, status, accuracy, cost, theta_end, cost_is_relative, the
    /// per-node arrays t, theta, p, loss, kinetic, hamiltonian, diagnostics, second_order and,
    /// for infinite horizons, equilibrium.
    ///
    /// ```
    /// use lossnav_problems::load_problem;
    /// use lossnav_solvers::Bvp;
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
    /// let solution = Bvp::default().solve(&load_problem(path).unwrap()).unwrap();
    /// // `Solution` is `Serialize`: the same document.
    /// let text = serde_json::to_string(&solution).unwrap();
    /// let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    /// assert_eq!(doc["second_order"]["verdict"], "minimum");
    /// assert_eq!(doc["t"].as_array().unwrap().len(), solution.t.len());
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let d = &self.diagnostics;
        let mut doc = json!({
            "method": self.method,
            "status": self.status(),
            "accuracy": self.accuracy.to_json(),
            "cost": self.cost,
            "theta_end": self.theta.last(),
            "cost_is_relative": self.cost_is_relative,
            "t": self.t,
            "theta": self.theta.to_nested(),
            "p": self.p.to_nested(),
            "loss": self.loss,
            "kinetic": self.kinetic,
            "hamiltonian": self.hamiltonian,
            "diagnostics": {
                "iterations": d.iterations,
                "nodes": d.nodes,
                "max_residual": d.max_residual,
                "mesh_passes": d.mesh_passes,
                "continuation": d.continuation.as_ref().map(|(p, steps)| json!({"parameter": p, "steps": steps})),
            },
            "second_order": self.second_order.to_json(),
        });
        if self.method == "direct" {
            doc["diagnostics"]["gradient_norm"] = json!(d.max_residual);
        }
        if let Some(tail) = &self.tail {
            doc["equilibrium"] = json!({
                "theta": tail.theta_star.as_slice(),
                "p": tail.p_star.as_slice(),
                "riccati": matrix_json(&tail.riccati),
                "closed_loop": matrix_json(&tail.closed_loop),
                "truncation": tail.truncation,
                "running_cost": tail.equilibrium_running_cost,
            });
        }
        doc
    }
}

/// Serialises as [`Solution::to_json`].
impl serde::Serialize for Solution {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}
