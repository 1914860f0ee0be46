//! What a solver returns: the trajectory, its continuous extension, the cost and diagnostics.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::Lagrangian;

use crate::hermite;

/// Solver diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics {
    /// Newton iterations summed over all meshes (and continuation steps).
    pub iterations: usize,
    /// Mesh nodes of the final solution.
    pub nodes: usize,
    /// Largest per-interval error estimate on the final mesh (≤ tol when converged).
    pub max_residual: f64,
    /// Meshes solved (refinements + coarsenings + 1).
    pub mesh_passes: usize,
    /// Continuation used to reach the answer, if any (`"k"`, `"theta0"`), with its steps.
    pub continuation: Option<(String, usize)>,
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
}

/// An optimal trajectory.
#[derive(Debug, Clone)]
pub struct Solution {
    /// The method that produced it (`"bvp"`, ...).
    pub method: String,
    /// Whether the tolerance was met.
    pub converged: bool,
    /// Mesh times.
    pub t: Vec<f64>,
    /// `θ` at each mesh time.
    pub theta: Vec<Vec<f64>>,
    /// `p = G(θ)(θ̇ - f)` at each mesh time.
    pub p: Vec<Vec<f64>>,
    /// `θ̇` at each mesh time.
    pub theta_dot: Vec<Vec<f64>>,
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
    /// `dθ/dt, dp/dt` at the nodes, node-major (for the interpolant).
    pub(crate) slopes: Vec<f64>,
}

/// What a solver knows besides the nodal trajectory.
pub(crate) struct Summary {
    pub method: &'static str,
    pub converged: bool,
    pub cost: f64,
    pub cost_is_relative: bool,
    pub diagnostics: Diagnostics,
    pub tail: Option<Tail>,
}

impl Solution {
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
        let mut theta = Vec::with_capacity(t.len());
        let mut p = Vec::with_capacity(t.len());
        let mut theta_dot = Vec::with_capacity(t.len());
        let (mut loss, mut kinetic, mut hamiltonian) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &ti) in t.iter().enumerate() {
            let (th, pp) = y[i * n..(i + 1) * n].split_at(d);
            theta.push(th.to_vec());
            p.push(pp.to_vec());
            theta_dot.push(slopes[i * n..i * n + d].to_vec());
            let (l, k, h) = lag.hamiltonian_parts(ti, th, pp);
            loss.push(l);
            kinetic.push(k);
            hamiltonian.push(h);
        }
        Self {
            method: summary.method.to_string(),
            converged: summary.converged,
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
            slopes,
        }
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.theta.first().map_or(0, Vec::len)
    }

    /// The final time of the mesh (the truncation time for infinite horizons).
    pub fn end_time(&self) -> f64 {
        self.t.last().copied().unwrap_or(0.0)
    }

    /// `(θ(t), p(t))` from the fourth-order interpolant. For infinite horizons, times beyond
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
                let delta = (&tail.closed_loop * (t - end)).exp() * delta0;
                let theta = &tail.theta_star + &delta;
                let p = &tail.p_star - (&tail.riccati * &delta) * tail.eta;
                return (theta.as_slice().to_vec(), p.as_slice().to_vec());
            }
        }
        let t = t.clamp(self.t[0], end);
        let i = match self.t.binary_search_by(|v| v.total_cmp(&t)) {
            Ok(i) => i.min(self.t.len() - 2),
            Err(i) => i.saturating_sub(1).min(self.t.len() - 2),
        };
        let h = self.t[i + 1] - self.t[i];
        let x = (t - self.t[i]) / h;
        let y0: Vec<f64> = self.theta[i].iter().chain(&self.p[i]).copied().collect();
        let y1: Vec<f64> = self.theta[i + 1]
            .iter()
            .chain(&self.p[i + 1])
            .copied()
            .collect();
        let mut out = vec![0.0; n];
        hermite::value(
            x,
            h,
            &y0,
            &self.slopes[i * n..(i + 1) * n],
            &y1,
            &self.slopes[(i + 1) * n..(i + 2) * n],
            &mut out,
        );
        let p = out.split_off(d);
        (out, p)
    }
}
