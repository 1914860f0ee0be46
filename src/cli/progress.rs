//! A one-line status of a running solve on a terminal: the solver's latest progress report
//! (stage, iteration, the measure it reports and its value, elapsed time). Nothing is drawn
//! when standard error is not a terminal, so piped and redirected runs see no extra output.

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
