//! Conjugate points by Jacobi's test: an independent second-order check.
//!
//! The Jacobi fields that start at `δθ(0) = 0` solve the linearised Hamiltonian system
//! `d/dt (δθ, δp) = J(t) (δθ, δp)` (the exact field Jacobian along the solution) from
//! `(U, V)(0) = (0, I)`. A conjugate point is a time where `det U(t) = 0`. By the Morse index
//! theorem the number of descent directions of the second variation is the number of conjugate
//! points in `(0, T]` (with multiplicity), plus, for a free end (terminal cost `Φ`, or the
//! tail's `½δθᵀPδθ` on an infinite horizon), the number of negative eigenvalues of the
//! terminal form `Uᵀ(V + η∇²Φ U)` at `T`.
//!
//! This module integrates the system with classical fourth-order Runge–Kutta on a fine grid,
//! keeping the frame `(U, V)` orthonormal by Gram–Schmidt with a positive triangular factor
//! (which rescales `det U` by a positive number, so its sign changes are exactly those of the
//! unnormalised fields), and counts sign changes of `det U`. It shares nothing with
//! [`crate::certify::certificate`] beyond the field Jacobian, which is why the two are compared.

use nalgebra::DMatrix;

use lossnav_problems::{FieldWorkspace, Problem};

use crate::solution::Solution;

/// What Jacobi's test found.
#[derive(Debug, Clone, PartialEq)]
pub struct ConjugatePoints {
    /// Times in `(0, T]` where `det U` changes sign (linear interpolation between steps). A
    /// free-end path that lingers near a hyperbolic equilibrium can have one just before `T`.
    pub times: Vec<f64>,
    /// Descent directions: conjugate points plus negative eigenvalues of the terminal form.
    pub index: usize,
    /// Runge–Kutta steps taken.
    pub steps: usize,
}

/// Jacobi's test along `solution` as a solution of `problem`, with at least `min_steps` steps
/// (more where the linearised system is fast: `h·ω ≤ 0.02`).
pub fn conjugate_points(
    problem: &Problem,
    solution: &Solution,
    min_steps: usize,
) -> Result<ConjugatePoints, String> {
    let lag = problem.lagrangian();
    if !lag.metric().is_invertible() {
        return Err("a singular mobility: Jacobi's test needs the Legendre condition".into());
    }
    let d = lag.dim();
    let n = 2 * d;
    let t_end = solution.end_time();
    let mut ws = FieldWorkspace::new(d);
    let mut jac = DMatrix::zeros(n, n);
    let omega = solution
        .t
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            lag.field_jacobian(t, &solution.theta[i], &solution.p[i], &mut jac, &mut ws);
            jac.norm()
        })
        .fold(0.0_f64, f64::max);
    let steps = min_steps.max((t_end * omega / 0.02).ceil() as usize);
    let h = t_end / steps as f64;
    let mut jacobian_at = |t: f64| {
        let (theta, p) = solution.eval(t);
        let mut j = DMatrix::zeros(n, n);
        lag.field_jacobian(t, &theta, &p, &mut j, &mut ws);
        j
    };
    // (U; V) as one 2D×D matrix.
    let mut y = DMatrix::<f64>::zeros(n, d);
    for i in 0..d {
        y[(d + i, i)] = 1.0;
    }
    let det_u = |y: &DMatrix<f64>| y.view((0, 0), (d, d)).determinant();
    let mut times = Vec::new();
    let mut previous = f64::NAN;
    let mut ja = jacobian_at(0.0);
    for k in 0..steps {
        let t = k as f64 * h;
        let jm = jacobian_at(t + 0.5 * h);
        let jb = jacobian_at(t + h);
        let k1 = &ja * &y;
        let k2 = &jm * (&y + &k1 * (0.5 * h));
        let k3 = &jm * (&y + &k2 * (0.5 * h));
        let k4 = &jb * (&y + &k3 * h);
        let next = &y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        let det = det_u(&next);
        if k > 0 && previous.is_finite() && det.signum() != previous.signum() {
            times.push(t + h * previous / (previous - det));
        }
        // Orthonormalise the frame: next = Q R, R with positive diagonal, y ← Q.
        let qr = next.clone().qr();
        let r = qr.r();
        let mut q = qr.q();
        for c in 0..d {
            if r[(c, c)] < 0.0 {
                for row in 0..n {
                    q[(row, c)] = -q[(row, c)];
                }
            }
        }
        // The determinant of U in the new frame (det U / det R, det R > 0): its sign is the
        // reference for the next step.
        y = q;
        previous = det_u(&y);
        ja = jb;
    }
    let terminal = crate::certify::certificate::terminal_hessian(problem, solution);
    let mut index = times.len();
    if let Some(phi) = terminal {
        let u = y.view((0, 0), (d, d)).into_owned();
        let v = y.view((d, 0), (d, d)).into_owned();
        let form = u.transpose() * (v + phi * lag.eta() * &u);
        let form = 0.5 * (&form + form.transpose());
        index += form
            .symmetric_eigenvalues()
            .iter()
            .filter(|&&l| l < 0.0)
            .count();
    }
    Ok(ConjugatePoints {
        times,
        index,
        steps,
    })
}
