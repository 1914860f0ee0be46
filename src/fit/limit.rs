//! The gradient-flow limit of a fit (docs/theory.md §7): as `γ → ∞` with `c = ηk/γ` fixed the
//! optimal path tends to the flow `θ̇ = f − c G⁻¹∇L`, which no finite `γ` reproduces exactly.
//! A fit that runs `γ` up a valley toward that limit is compared with the limit itself, a
//! one-parameter model fitted directly.

use argmin::core::{CostFunction, Error, Executor, Jacobian, Operator, State};
use nalgebra::DMatrix;

use lossnav_problems::Problem;
use lossnav_solvers::simulate::{simulate, Rule};

use super::levenberg::LevenbergMarquardt;
use super::Observations;

/// Integrator tolerance of the flow (Tsitouras 5(4)): far below the 1e-6 relative the fitted
/// rate is read to.
const FLOW_TOL: f64 = 1e-10;

/// The flow's residuals as a function of `u = ln c`.
struct Flow<'a> {
    problem: &'a Problem,
    obs: &'a Observations,
    sigma: f64,
}

impl Flow<'_> {
    fn residuals(&self, c: f64) -> Result<Vec<f64>, Error> {
        let lag = self.problem.lagrangian();
        let d = self.problem.dim();
        let policy = move |t: f64, th: &[f64]| -> Vec<f64> {
            let mut g = vec![0.0; d];
            lag.loss().gradient(th, t, &mut g);
            let mut mg = vec![0.0; d];
            lag.metric().mobility_mul(th, &g, &mut mg);
            let mut f = vec![0.0; d];
            lag.drift().value(th, t, &mut f);
            f.iter().zip(&mg).map(|(f, m)| f - c * m).collect()
        };
        let t_end = *self
            .obs
            .t
            .last()
            .ok_or_else(|| Error::msg("no observations"))?;
        let sim = simulate(
            self.problem,
            &Rule::FirstOrder(Box::new(policy)),
            Some(t_end.max(1e-12)),
            &self.obs.t,
            FLOW_TOL,
        )
        .map_err(|e| Error::msg(e.to_string()))?;
        let mut r = Vec::with_capacity(self.obs.count());
        for (o, &t) in self.obs.t.iter().enumerate() {
            let k = sim
                .t
                .iter()
                .position(|&s| (s - t).abs() <= 1e-12 * t.abs().max(1.0))
                .ok_or_else(|| Error::msg("the flow was not sampled at an observation time"))?;
            for (j, v) in self.obs.theta[o].iter().enumerate() {
                if let Some(v) = v {
                    r.push((sim.theta[k][j] - v) / self.sigma);
                }
            }
        }
        Ok(r)
    }
}

impl Operator for &Flow<'_> {
    type Param = Vec<f64>;
    type Output = Vec<f64>;
    fn apply(&self, u: &Vec<f64>) -> Result<Vec<f64>, Error> {
        self.residuals(u[0].exp())
    }
}

impl CostFunction for &Flow<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Vec<f64>) -> Result<f64, Error> {
        Ok(0.5 * self.apply(u)?.iter().map(|x| x * x).sum::<f64>())
    }
}

impl Jacobian for &Flow<'_> {
    type Param = Vec<f64>;
    type Jacobian = DMatrix<f64>;
    /// Central differences in `ln c` extrapolated in the step (errors O(h⁴) ≈ 1e-16), as the
    /// flow has no sensitivity equations here.
    fn jacobian(&self, u: &Vec<f64>) -> Result<DMatrix<f64>, Error> {
        let h = 1e-3;
        let at = |s: f64| self.residuals((u[0] + s).exp());
        let (a, b, c, d) = (at(h)?, at(-h)?, at(h / 2.0)?, at(-h / 2.0)?);
        Ok(DMatrix::from_fn(a.len(), 1, |i, _| {
            let d1 = (a[i] - b[i]) / (2.0 * h);
            let d2 = (c[i] - d[i]) / h;
            (4.0 * d2 - d1) / 3.0
        }))
    }
}

/// The limit fitted: `c`, its standard error (from the Gauss–Newton matrix with `scale2` the
/// noise variance in residual units) and the misfit `½ Σ r²`.
pub struct LimitFit {
    /// `c = ηk/γ`.
    pub rate: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// `½ Σ r²` of the flow at `rate`.
    pub misfit: f64,
}

/// Fits the flow `θ̇ = f − c G⁻¹∇L` of `problem` to `obs`, from `c0`.
pub fn fit_limit(
    problem: &Problem,
    obs: &Observations,
    sigma: f64,
    c0: f64,
    noise_floor: f64,
) -> Result<LimitFit, String> {
    let flow = Flow {
        problem,
        obs,
        sigma,
    };
    let result = Executor::new(&flow, LevenbergMarquardt::default())
        .configure(|s| s.param(vec![c0.ln()]).max_iters(60))
        .run()
        .map_err(|e| e.to_string())?;
    let state = result.state();
    let u = state.get_best_param().ok_or("no parameter")?.clone();
    let misfit = state.get_best_cost();
    let jac = (&flow).jacobian(&u).map_err(|e| e.to_string())?;
    let m = obs.count();
    let scale2 = match obs.sigma {
        Some(_) => 1.0,
        None => (2.0 * misfit / (m - 1).max(1) as f64).max(noise_floor * noise_floor),
    };
    let jtj: f64 = jac.iter().map(|v| v * v).sum();
    let rate = u[0].exp();
    Ok(LimitFit {
        rate,
        // d c = c d(ln c).
        standard_error: rate * (scale2 / jtj).sqrt(),
        misfit,
    })
}
