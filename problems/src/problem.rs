//! A complete optimal-control problem: Lagrangian, start, horizon and end condition.

use std::sync::Arc;

use nalgebra::DVector;

use crate::error::{check_finite, ProblemError, Result};
use crate::lagrangian::Lagrangian;
use crate::landscape::{gradient_vec, Landscape};

/// How long the learner plans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Horizon {
    /// A finite horizon `T > 0`.
    Finite(f64),
    /// `T = ∞`: the trajectory must approach an equilibrium.
    Infinite,
}

/// The condition at the end of the horizon (docs/theory.md §2).
#[derive(Clone)]
pub enum End {
    /// `θ(T) = θ_T`.
    Fixed(DVector<f64>),
    /// Free end point with terminal cost `e^{-γT} Φ(θ(T))` (none: `Φ = 0`);
    /// the condition is `p(T) = -η ∇Φ(θ(T))`.
    Free {
        /// Φ, if any.
        terminal_cost: Option<Arc<dyn Landscape>>,
    },
    /// Infinite horizon: approach an equilibrium of the Hamiltonian system, optionally the
    /// one nearest a guess.
    Equilibrium {
        /// A guess of the equilibrium `θ*`.
        guess: Option<DVector<f64>>,
    },
}

impl std::fmt::Debug for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl End {
    /// `θ(T) = values` (a fixed end point).
    ///
    /// ```
    /// use lossnav_problems::End;
    /// assert!(matches!(End::fixed(&[1.0, 0.0]), End::Fixed(v) if v.len() == 2));
    /// ```
    pub fn fixed(values: &[f64]) -> Self {
        End::Fixed(DVector::from_column_slice(values))
    }

    /// A free end point without terminal cost.
    ///
    /// ```
    /// use lossnav_problems::End;
    /// assert!(matches!(End::free(), End::Free { terminal_cost: None }));
    /// ```
    pub fn free() -> Self {
        End::Free {
            terminal_cost: None,
        }
    }

    /// Infinite horizon: approach the equilibrium the solver finds from θ0 (no guess).
    pub fn equilibrium() -> Self {
        End::Equilibrium { guess: None }
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            End::Fixed(v) => format!("fixed at {}", short_list(v.as_slice())),
            End::Free {
                terminal_cost: None,
            } => "free (no terminal cost)".to_string(),
            End::Free {
                terminal_cost: Some(c),
            } => format!("free with terminal cost {}", c.describe()),
            End::Equilibrium { guess: None } => "equilibrium (found from theta0)".to_string(),
            End::Equilibrium { guess: Some(g) } => {
                format!("equilibrium near {}", short_list(g.as_slice()))
            }
        }
    }
}

/// `[a, b, …]` in full up to eight values, else the first four and the count: a description
/// stays one line at any `D`.
pub fn short_list(v: &[f64]) -> String {
    if v.len() <= 8 {
        format!("{v:?}")
    } else {
        let head: Vec<String> = v[..4].iter().map(|x| format!("{x:?}")).collect();
        format!("[{}, … ({} values)]", head.join(", "), v.len())
    }
}

/// What is solved: minimise `J[θ]` from `θ(0) = θ0` over the horizon with the end condition.
///
/// ```
/// use nalgebra::dvector;
/// use lossnav_problems::{End, Horizon, Lagrangian, Problem, Quadratic};
/// let loss = Quadratic::diagonal(vec![1.0, 4.0], vec![0.0, 0.0]).unwrap();
/// let problem = Problem::new(
///     Lagrangian::new(loss).with_gamma(1.0),
///     dvector![1.0, 1.0],
///     Horizon::Infinite,
///     End::Equilibrium { guess: None },
/// ).unwrap();
/// assert_eq!(problem.dim(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Problem {
    name: String,
    lagrangian: Lagrangian,
    theta0: DVector<f64>,
    horizon: Horizon,
    end: End,
}

impl Problem {
    /// Checks the pieces against each other and the start point:
    /// dimensions, parameter ranges, horizon and end condition, and that the loss, its
    /// gradient, the metric and the drift are finite at `θ0`.
    pub fn new(
        lagrangian: Lagrangian,
        theta0: DVector<f64>,
        horizon: Horizon,
        end: End,
    ) -> Result<Self> {
        lagrangian.validate()?;
        let d = lagrangian.dim();
        if theta0.len() != d {
            return Err(ProblemError::dimension(
                "theta0",
                format!("{d} entries (the dimension of the loss)"),
                format!("{} entries", theta0.len()),
            ));
        }
        check_finite("theta0", theta0.as_slice())?;
        match horizon {
            Horizon::Finite(t) if !(t.is_finite() && t > 0.0) => {
                return Err(ProblemError::Parameter {
                    name: "horizon".into(),
                    value: t,
                    requirement: "a finite number > 0, or \"infinite\"".into(),
                });
            }
            _ => {}
        }
        let check_point = |field: &str, v: &DVector<f64>| -> Result<()> {
            if v.len() != d {
                return Err(ProblemError::dimension(
                    field,
                    format!("{d} entries (the length of theta0)"),
                    format!("{} entries", v.len()),
                ));
            }
            check_finite(field, v.as_slice())
        };
        match (&end, horizon) {
            (End::Equilibrium { .. }, Horizon::Finite(t)) => {
                return Err(ProblemError::EndCondition(format!(
                    "\"equilibrium\" needs an infinite horizon, but the horizon is {t}; \
                     use \"fixed\", \"free\" or \"cost\" for a finite horizon"
                )));
            }
            (End::Fixed(_) | End::Free { .. }, Horizon::Infinite) => {
                return Err(ProblemError::EndCondition(
                    "an infinite horizon needs the end condition \"equilibrium\"".into(),
                ));
            }
            (End::Fixed(v), _) => check_point("end.fixed", v)?,
            (End::Equilibrium { guess: Some(g) }, _) => check_point("end.equilibrium", g)?,
            (
                End::Free {
                    terminal_cost: Some(c),
                },
                _,
            ) if c.dim() != d => {
                return Err(ProblemError::dimension(
                    "end.cost",
                    format!("dimension {d} (that of theta0)"),
                    format!("dimension {}", c.dim()),
                ));
            }
            _ => {}
        }
        let problem = Self {
            name: String::new(),
            lagrangian,
            theta0,
            horizon,
            end,
        };
        problem.check_start()?;
        Ok(problem)
    }

    fn check_start(&self) -> Result<()> {
        let th = self.theta0.as_slice();
        let lag = &self.lagrangian;
        let d = self.dim();
        let not_finite = |what: &str, value: f64| ProblemError::NotFiniteAtStart {
            what: what.to_string(),
            theta0: th.to_vec(),
            value,
        };
        let first_bad = |v: &[f64]| v.iter().copied().find(|x| !x.is_finite());
        let l = lag.loss().value(th, 0.0);
        if !l.is_finite() {
            return Err(not_finite("the loss", l));
        }
        if let Some(v) = first_bad(gradient_vec(lag.loss(), th, 0.0).as_slice()) {
            return Err(not_finite("the gradient of the loss", v));
        }
        // M·1 has a non-finite entry exactly when M has one (NaN and ±∞ propagate through a
        // sum of entries times one), without forming the D×D mobility.
        let mut m1 = vec![0.0; d];
        lag.metric().mobility_mul(th, &vec![1.0; d], &mut m1);
        if let Some(v) = first_bad(&m1) {
            return Err(not_finite("the mobility (inverse metric)", v));
        }
        let mut f = vec![0.0; d];
        lag.drift().value(th, 0.0, &mut f);
        if let Some(v) = first_bad(&f) {
            return Err(not_finite("the drift", v));
        }
        if let End::Free {
            terminal_cost: Some(c),
        } = &self.end
        {
            let v = c.value(th, 0.0);
            if !v.is_finite() {
                return Err(not_finite("the terminal cost", v));
            }
        }
        Ok(())
    }

    /// Gives the problem a name (shown in summaries and results).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The name (may be empty).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The Lagrangian.
    pub fn lagrangian(&self) -> &Lagrangian {
        &self.lagrangian
    }
    /// The start point θ0.
    pub fn theta0(&self) -> &DVector<f64> {
        &self.theta0
    }
    /// The horizon.
    pub fn horizon(&self) -> Horizon {
        self.horizon
    }
    /// The end condition.
    pub fn end(&self) -> &End {
        &self.end
    }
    /// Number of parameters `D`.
    pub fn dim(&self) -> usize {
        self.theta0.len()
    }

    /// The same problem with other pieces (for continuation and sweeps); re-validated.
    pub fn with_lagrangian(&self, lagrangian: Lagrangian) -> Result<Self> {
        Self::new(
            lagrangian,
            self.theta0.clone(),
            self.horizon,
            self.end.clone(),
        )
        .map(|p| p.with_name(self.name.clone()))
    }

    /// The same problem from another start point (for sensitivities); re-validated.
    pub fn with_theta0(&self, theta0: DVector<f64>) -> Result<Self> {
        Self::new(
            self.lagrangian.clone(),
            theta0,
            self.horizon,
            self.end.clone(),
        )
        .map(|p| p.with_name(self.name.clone()))
    }

    /// The same problem with another end condition (for sensitivities); re-validated.
    pub fn with_end(&self, end: End) -> Result<Self> {
        Self::new(
            self.lagrangian.clone(),
            self.theta0.clone(),
            self.horizon,
            end,
        )
        .map(|p| p.with_name(self.name.clone()))
    }

    /// The same problem on another horizon (for continuation in the horizon); re-validated.
    pub fn with_horizon(&self, horizon: Horizon) -> Result<Self> {
        Self::new(
            self.lagrangian.clone(),
            self.theta0.clone(),
            horizon,
            self.end.clone(),
        )
        .map(|p| p.with_name(self.name.clone()))
    }
}
