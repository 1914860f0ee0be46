//! Why a problem may have no optimal path: a probe run after a solve failed, so the message
//! names the cause (the loss, the metric, the drift, an unbounded loss) rather than only the
//! solver's symptom (a stalled continuation, a Newton iteration that did not converge).
//!
//! The probe samples the straight path from `θ0` to a fixed end, then follows the flow
//! `θ̇ = f − G⁻¹∇L` from `θ0` (the direction an optimal learner starts to move in the
//! short-horizon limit) in steps of 1 % of `1 + |θ|` while the loss falls, and reports the
//! first point where the problem is undefined, or (without a fixed end) that the loss falls
//! without bound. It stops as soon as the loss rises: at a basin the flow's fixed steps
//! overshoot, and a drift may carry it uphill, neither of which says anything against the
//! problem. It is a
//! heuristic that explains failures; it never decides whether a solution is accepted.

use lossnav_problems::Problem;

/// Steps of the probe: at 1 % of `1 + |θ|` each, enough to leave a unit ball many times over.
const STEPS: usize = 4000;
/// The largest dimension probed (each step evaluates the metric once; dense expression
/// metrics cost `O(D³)`).
const MAX_DIM: usize = 2000;

/// A sentence naming what makes `problem` ill-posed near the flow from θ0, with a remedy; none
/// when the probe finds nothing (which does not prove the problem well posed).
///
/// ```
/// use lossnav_problems::Spec;
/// let spec = Spec::from_json(r#"{"loss": {"expr": "ln(x1)"}, "theta0": [1.0],
///     "horizon": 4, "end": "free"}"#).unwrap();
/// let why = lossnav_solvers::diagnose::ill_posed(&spec.to_problem().unwrap()).unwrap();
/// assert!(why.contains("the loss is not finite"), "{why}");
/// ```
pub fn ill_posed(problem: &Problem) -> Option<String> {
    let lag = problem.lagrangian();
    let d = problem.dim();
    if d > MAX_DIM {
        return None;
    }
    let mut theta = problem.theta0().as_slice().to_vec();
    let at = |th: &[f64]| crate::error::vector(th);
    if let Some(c) = crate::error::culprit(lag, &theta, 0.0) {
        return Some(format!("at θ0: {c}"));
    }
    if let lossnav_problems::End::Fixed(end) = problem.end() {
        // Any path to a fixed end crosses the segment's neighbourhood; a straight one is the
        // simplest witness.
        for i in 1..=64 {
            let s = i as f64 / 64.0;
            let point: Vec<f64> = theta
                .iter()
                .zip(end.iter())
                .map(|(a, b)| a + s * (b - a))
                .collect();
            if let Some(c) = crate::error::culprit(lag, &point, 0.0) {
                return Some(format!(
                    "on the straight path from θ0 to the fixed end, {c}"
                ));
            }
        }
    }
    let l0 = lag.loss().value(&theta, 0.0);
    // An unbounded loss leaves no minimum to plan toward only when nothing pins the end.
    let end_free = !matches!(problem.end(), lossnav_problems::End::Fixed(_));
    let mut previous = l0;
    let (mut g, mut mg, mut f) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    for _ in 0..STEPS {
        if crate::budget::Budget::expired() {
            return None;
        }
        lag.loss().gradient(&theta, 0.0, &mut g);
        lag.metric().mobility_mul(&theta, &g, &mut mg);
        lag.drift().value(&theta, 0.0, &mut f);
        let dir: Vec<f64> = f.iter().zip(&mg).map(|(f, m)| f - m).collect();
        let norm = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
        let size = theta.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm.is_nan() || norm <= 1e-10 * (1.0 + size) {
            // At rest (or NaN, which `culprit` has ruled out at this point): nothing to blame.
            return None;
        }
        let step = 0.01 * (1.0 + size) / norm;
        for (t, v) in theta.iter_mut().zip(&dir) {
            *t += step * v;
        }
        if let Some(c) = crate::error::culprit(lag, &theta, 0.0) {
            return Some(format!("moving downhill from θ0 (along f − G⁻¹∇L), {c}"));
        }
        let l = lag.loss().value(&theta, 0.0);
        // The loss rose: the flow has reached a basin (and overshoots it) or a drift carries
        // it uphill. Either way nothing more is learnt about the loss falling.
        if l >= previous {
            return None;
        }
        previous = l;
        if end_free && l < l0 - 1e8 * (1.0 + l0.abs()) {
            return Some(format!(
                "the loss falls without bound downhill from θ0 (L = {l:.3e} at θ = {}, against \
                 {l0:.4} at θ0): there is no minimum to plan toward; bound the loss below (a \
                 confining term such as + c·|θ|^4) or fix the end point",
                at(&theta)
            ));
        }
    }
    None
}
