//! Pictures: the paper's figures regenerated from the shipped specs and the solvers, and the
//! same views of a user's problem. Each panel is written as SVG, PNG and the JSON data behind
//! it.

mod contour;
mod panels;
mod plot;
mod training;

use std::path::Path;

pub use contour::contour;
pub use plot::{
    render, render_row, render_row_to, render_to, Band, Figure, Heatmap, Marker, Series,
};
pub use training::{epoch_statistics, training_panels, EpochStatistics};

/// Computes every panel of Figures 1–3 and the continual-learning panels and writes them to
/// `dir`; returns the panel ids.
pub fn paper_figures(dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut ids = Vec::new();
    for fig in panels::figure1()?
        .into_iter()
        .chain(panels::figure2()?)
        .chain(panels::figure3()?)
        .chain(panels::continual()?)
        .chain(panels::task_switches()?)
        .chain(panels::noisy_quadratic()?)
    {
        render(&fig, dir)?;
        ids.push(fig.id);
    }
    Ok(ids)
}

/// Writes the escape diagram to `out` (`.png` or `.svg`).
pub fn escape_figure(d: &crate::escape::EscapeDiagram, out: &Path) -> Result<(), String> {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    render_to(&panels::escape_figure(d, &stem), out)
}

/// Pictures of a user's spec written to `out` (`.png` or `.svg`): for D = 2 the landscape with
/// the optimal and gradient-flow paths goes to `out` and the time courses (θᵢ, loss, kinetic
/// term, ℋ) to `out` with `-time` added to the stem; otherwise the time courses go to `out`.
/// Returns the files written.
pub fn problem_figures(
    spec: &lossnav_problems::Spec,
    out: &Path,
) -> Result<Vec<std::path::PathBuf>, String> {
    let stem = image_stem(out)?;
    write_problem_panels(panels::user_problem(spec, &stem)?, out, &stem)
}

/// The pictures of [`problem_figures`] for a problem defined in Rust and a solution of it
/// (from any solver), written to `out` (`.png` or `.svg`). Returns the files written.
///
/// ```no_run
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/specs/figure1-double-well.json");
/// let problem = lossnav::problems::load_problem(path).unwrap();
/// let solution = lossnav::solvers::Bvp::default().solve(&problem).unwrap();
/// lossnav::figures::solution_figures(&problem, &solution, "mine.png".as_ref()).unwrap();
/// ```
pub fn solution_figures(
    problem: &lossnav_problems::Problem,
    solution: &lossnav_solvers::Solution,
    out: &Path,
) -> Result<Vec<std::path::PathBuf>, String> {
    let stem = image_stem(out)?;
    write_problem_panels(
        panels::solution_panels(problem, solution, &stem)?,
        out,
        &stem,
    )
}

/// The file stem of `out`, which must end in `.png` or `.svg` and be in an existing directory.
fn image_stem(out: &Path) -> Result<String, String> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext.to_ascii_lowercase().as_str(), "png" | "svg") {
        return Err(format!(
            "{}: the output must end in .png or .svg",
            out.display()
        ));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!(
                "cannot write {}: {} is not a directory",
                out.display(),
                dir.display()
            ));
        }
    }
    Ok(out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default())
}

/// Writes the landscape panel (if any) to `out` and the two time-course panels beside each
/// other to `out` (no landscape) or to `STEM-time.EXT`.
fn write_problem_panels(
    mut figs: Vec<Figure>,
    out: &Path,
    stem: &str,
) -> Result<Vec<std::path::PathBuf>, String> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    // The last two panels are the time courses, drawn side by side in one image.
    let time = figs.split_off(figs.len().saturating_sub(2));
    let mut written = Vec::new();
    if let Some(plane) = figs.first() {
        render_to(plane, out)?;
        written.push(out.to_path_buf());
        let path = out.with_file_name(format!("{stem}-time.{ext}"));
        render_row_to(&time, &path)?;
        written.push(path);
    } else {
        render_row_to(&time, out)?;
        written.push(out.to_path_buf());
    }
    Ok(written)
}
