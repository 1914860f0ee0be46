//! Progress on a terminal: a one-line status of a running solve (the solver's latest report:
//! stage, iteration, the measure it reports and its value, elapsed time), and a bar for work
//! of known size (escape grids, training steps). Nothing is drawn when standard error is not a
//! terminal, so piped and redirected runs see no extra output.

use indicatif::{ProgressBar, ProgressStyle};

use lossnav_solvers::observe::{Observer, Progress};

/// A spinner with the latest report, cleared when dropped.
pub(crate) struct StatusLine(ProgressBar);

impl StatusLine {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Self(bar)
    }
}

impl Observer for StatusLine {
    fn progress(&self, p: &Progress) {
        self.0.set_message(format!(
            "{}: {}, iteration {}, {} {:.2e}, {:.1} s",
            p.solver, p.stage, p.iteration, p.measure, p.value, p.elapsed
        ));
        self.0.tick();
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A progress bar over `len` units of work: each report puts the bar at its iteration (counted
/// over the whole work by the caller), with the report's stage as the message. Cleared when
/// dropped.
pub(crate) struct CountBar {
    bar: ProgressBar,
}

impl CountBar {
    /// A bar of `len` units; `unit` names them ("grid points", "steps").
    pub(crate) fn new(len: u64, unit: &str) -> Self {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{msg:>24}} [{{bar:40}}] {{pos}}/{{len}} {unit}, {{eta}} left"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self { bar }
    }
}

impl Observer for CountBar {
    fn progress(&self, p: &Progress) {
        self.bar.set_position(p.iteration as u64);
        self.bar.set_message(p.stage.clone());
    }
}

impl Drop for CountBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
