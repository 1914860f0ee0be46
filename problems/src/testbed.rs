//! Deterministic pseudo-random numbers for tests, benchmarks and examples: the same instances on
//! every platform, with no random-number dependency. One 64-bit linear congruential generator
//! (Knuth's MMIX constants) serves every crate of the workspace, so a seed names the same
//! stream everywhere.
//!
//! Not for statistics: Monte Carlo estimates use the counter-based generator of
//! `lossnav::rules::random`, whose streams do not depend on the thread count.

/// Uniform draws in `[0, 1)` from `seed`: 53 bits of the generator's state per draw.
///
/// ```
/// let mut r = lossnav_problems::testbed::unit(7);
/// let x = r();
/// assert!((0.0..1.0).contains(&x));
/// assert_eq!(x, lossnav_problems::testbed::unit(7)());
/// ```
pub fn unit(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Uniform draws in `[-1, 1)` from `seed` (the stream of [`unit()`], mapped by `2x − 1`).
///
/// ```
/// let mut r = lossnav_problems::testbed::uniform(7);
/// assert!((-1.0..1.0).contains(&r()));
/// ```
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut u = unit(seed);
    move || u() * 2.0 - 1.0
}
