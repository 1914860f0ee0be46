//! Pictures: the paper's figures regenerated from the shipped specs and the solvers, and the
//! same views of a user's problem. Each panel is written as SVG, PNG and the JSON data behind
//! it.

mod contour;
mod fit;
mod panels;
mod plot;
mod published;
#[cfg(feature = "train")]
mod training;

use std::path::Path;

pub use contour::contour;
pub use plot::{
    axis_tick_labels, render, render_grid, render_grid_to, render_to, tick_defects, tick_labels,
    Band, Figure, Heatmap, ImageSize, Marker, Role, Series,
};
pub use published::{
    published, published_figure1, published_figure2, published_figure3, sample_times,
    PUBLISHED_GAMMAS, PUBLISHED_SAMPLING, PUBLISHED_TOL,
};
#[cfg(feature = "train")]
pub use training::{epoch_statistics, training_panels, EpochStatistics};

/// Computes every panel of Figures 1–3 and the continual-learning panels and writes each to
/// `dir`, then Figures 1 (b, c), 2 (a–d) and 3 (a–d) composed as one image each (`fig1`,
/// `fig2`, `fig3`); returns the ids written.
pub fn paper_figures(dir: &Path, size: &ImageSize) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (fig1, fig2, fig3) = (panels::figure1()?, panels::figure2()?, panels::figure3()?);
    let mut ids = Vec::new();
    for fig in fig1
        .iter()
        .chain(&fig2)
        .chain(&fig3)
        .chain(&panels::continual()?)
        .chain(&panels::task_switches()?)
        .chain(&panels::noisy_quadratic()?)
    {
        render(fig, dir, size)?;
        ids.push(fig.id.clone());
    }
    for (id, figs, cols) in [("fig1", &fig1, 2), ("fig2", &fig2, 2), ("fig3", &fig3, 2)] {
        render_grid(figs, cols, id, dir, size)?;
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// Writes the paper's panels as published (the authors' notebooks' parameters and axis ranges:
/// `pub-fig1b` … `pub-fig3d`) to `dir`, and Figures 1, 2 and 3 composed (`pub-fig1`,
/// `pub-fig2`, `pub-fig3`); returns the ids written.
pub fn published_figures(dir: &Path, size: &ImageSize) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (fig1, fig2, fig3) = (
        published::published_figure1()?,
        published::published_figure2()?,
        published::published_figure3()?,
    );
    let mut ids = Vec::new();
    for fig in fig1.iter().chain(&fig2).chain(&fig3) {
        render(fig, dir, size)?;
        ids.push(fig.id.clone());
    }
    for (id, figs, cols) in [
        ("pub-fig1", &fig1, 2),
        ("pub-fig2", &fig2, 2),
        ("pub-fig3", &fig3, 2),
    ] {
        render_grid(figs, cols, id, dir, size)?;
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// Writes the escape diagram to `out` (`.png` or `.svg`).
pub fn escape_figure(
    d: &crate::escape::EscapeDiagram,
    out: &Path,
    size: &ImageSize,
) -> Result<(), String> {
    let stem = image_stem(out)?;
    render_to(&panels::escape_figure(d, &stem), out, size)
}

/// Every panel `lossnav figures` writes (Figures 1–3, the continual-learning, task-switching
/// and noisy-quadratic panels), as data.
pub fn paper_panels() -> Result<Vec<Figure>, String> {
    let mut all = panels::figure1()?;
    all.extend(panels::figure2()?);
    all.extend(panels::figure3()?);
    all.extend(panels::continual()?);
    all.extend(panels::task_switches()?);
    all.extend(panels::noisy_quadratic()?);
    Ok(all)
}

/// The panels [`problem_figures`] draws for `spec`, as data (`stem` names them): for D = 2 the
/// landscape first, then the four time courses.
pub fn problem_panels(spec: &lossnav_problems::Spec, stem: &str) -> Result<Vec<Figure>, String> {
    panels::user_problem(spec, stem)
}

/// The panels [`fit_figures`] draws, as data (`stem` names them).
pub fn fit_panels(
    spec: &lossnav_problems::Spec,
    obs: &crate::fit::Observations,
    doc: &serde_json::Value,
    stem: &str,
) -> Result<Vec<Figure>, String> {
    fit::fit_panels(spec, obs, doc, stem)
}

/// Pictures of a user's spec written to `out` (`.png` or `.svg`): for D = 2 the landscape with
/// the optimal and gradient-flow paths goes to `out` and the time courses (θᵢ, loss, kinetic
/// term, ℋ: one panel each, in a 2 × 2 grid) to `out` with `-time` added to the stem;
/// otherwise the time courses go to `out`. Returns the files written.
pub fn problem_figures(
    spec: &lossnav_problems::Spec,
    out: &Path,
    size: &ImageSize,
) -> Result<Vec<std::path::PathBuf>, String> {
    let stem = image_stem(out)?;
    write_problem_panels(panels::user_problem(spec, &stem)?, out, &stem, size)
}

/// The pictures of [`problem_figures`] for a problem defined in Rust and a solution of it
/// (from any solver), written to `out` (`.png` or `.svg`). Returns the files written.
///
/// ```no_run
/// use lossnav::figures::{solution_figures, ImageSize};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/specs/figure1-double-well.json");
/// let problem = lossnav::problems::load_problem(path).unwrap();
/// let solution = lossnav::solvers::Bvp::default().solve(&problem).unwrap();
/// solution_figures(&problem, &solution, "mine.png".as_ref(), &ImageSize::default()).unwrap();
/// ```
pub fn solution_figures(
    problem: &lossnav_problems::Problem,
    solution: &lossnav_solvers::Solution,
    out: &Path,
    size: &ImageSize,
) -> Result<Vec<std::path::PathBuf>, String> {
    let stem = image_stem(out)?;
    write_problem_panels(
        panels::solution_panels(problem, solution, &stem)?,
        out,
        &stem,
        size,
    )
}

/// The pictures of a fit (`lossnav fit --out F.png`): the observations against the fitted
/// optimal trajectory at `out`, and (two or more free parameters) the misfit over the first
/// two with the fitted point and its 95 % confidence region at `<stem>-landscape.<ext>`
/// (61² solves). Returns the files written.
pub fn fit_figures(
    spec: &lossnav_problems::Spec,
    obs: &crate::fit::Observations,
    doc: &serde_json::Value,
    out: &Path,
    size: &ImageSize,
) -> Result<Vec<std::path::PathBuf>, String> {
    let stem = image_stem(out)?;
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("png");
    let panels = fit::fit_panels(spec, obs, doc, &stem)?;
    let mut written = Vec::new();
    for (k, panel) in panels.iter().enumerate() {
        let path = if k == 0 {
            out.to_path_buf()
        } else {
            out.with_file_name(format!("{stem}-landscape.{ext}"))
        };
        render_to(panel, &path, size)?;
        written.push(path);
    }
    Ok(written)
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

/// Writes the landscape panel (if any) to `out` and the four time-course panels as a 2 × 2
/// grid to `out` (no landscape) or to `STEM-time.EXT`.
fn write_problem_panels(
    mut figs: Vec<Figure>,
    out: &Path,
    stem: &str,
    size: &ImageSize,
) -> Result<Vec<std::path::PathBuf>, String> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    // The last four panels are the time courses.
    let time = figs.split_off(figs.len().saturating_sub(4));
    let mut written = Vec::new();
    if let Some(plane) = figs.first() {
        render_to(plane, out, size)?;
        written.push(out.to_path_buf());
        let path = out.with_file_name(format!("{stem}-time.{ext}"));
        render_grid_to(&time, 2, &path, size)?;
        written.push(path);
    } else {
        render_grid_to(&time, 2, out, size)?;
        written.push(out.to_path_buf());
    }
    Ok(written)
}
