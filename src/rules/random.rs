//! Reproducible random streams for the Monte Carlo simulations: one splitmix64 stream per
//! `(seed, path)`, so a path's numbers do not depend on which thread runs it or in what order.

/// Uniform, standard normal (Box–Muller, both values used) and unit exponential samples.
pub(crate) struct PathStream {
    state: u64,
    spare: Option<f64>,
}

impl PathStream {
    /// The stream of path `path` under `seed`.
    pub(crate) fn new(seed: u64, path: u64) -> Self {
        Self {
            state: seed ^ path.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03,
            spare: None,
        }
    }

    /// Uniform in (0, 1), never 0.
    pub(crate) fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }

    /// Unit exponential.
    pub(crate) fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }
}
