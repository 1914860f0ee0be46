//! A figure as data, and its rendering to SVG and PNG with plotters.
//!
//! Text uses the DejaVu Sans font embedded in the binary (no system font libraries needed).

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::atomic::TempPath;

/// A colour-mapped scalar field on a grid.
#[derive(Debug, Clone, Serialize)]
pub struct Heatmap {
    /// Grid abscissae.
    pub xs: Vec<f64>,
    /// Grid ordinates.
    pub ys: Vec<f64>,
    /// `values[j * xs.len() + i]` at `(xs[i], ys[j])`.
    pub values: Vec<f64>,
}

/// A polyline.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Dashed line.
    pub dashed: bool,
}

/// A labelled point.
#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    /// Legend label.
    pub name: String,
    /// Position.
    pub at: (f64, f64),
    /// Colour of the series with this index (default: a colour of its own).
    pub color_of: Option<usize>,
}

/// Splits a polyline into dashes: alternate pieces of about 1/80 of its length.
fn dashes(points: &[(f64, f64)], scale: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let norm = |a: (f64, f64), b: (f64, f64)| {
        (((b.0 - a.0) / scale.0).powi(2) + ((b.1 - a.1) / scale.1).powi(2)).sqrt()
    };
    let total: f64 = points.windows(2).map(|w| norm(w[0], w[1])).sum();
    let piece = (total / 80.0).max(f64::MIN_POSITIVE);
    let mut out = Vec::new();
    let mut current = Vec::new();
    let (mut acc, mut on) = (0.0, true);
    for w in points.windows(2) {
        let len = norm(w[0], w[1]);
        let steps = (len / piece * 4.0).ceil().max(1.0) as usize;
        for k in 0..steps {
            let s0 = k as f64 / steps as f64;
            let p = (
                w[0].0 + s0 * (w[1].0 - w[0].0),
                w[0].1 + s0 * (w[1].1 - w[0].1),
            );
            if on {
                current.push(p);
            }
            acc += len / steps as f64;
            if acc >= piece {
                acc = 0.0;
                if on && current.len() > 1 {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
                on = !on;
            }
        }
    }
    if on {
        current.push(*points.last().unwrap_or(&(0.0, 0.0)));
        if current.len() > 1 {
            out.push(current);
        }
    }
    out
}

/// A shaded band between two curves over the same abscissae (mean ± one standard deviation).
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    /// Abscissae.
    pub xs: Vec<f64>,
    /// Lower edge.
    pub lower: Vec<f64>,
    /// Upper edge.
    pub upper: Vec<f64>,
    /// Drawn in the colour of the series with this index.
    pub color_of: usize,
}

/// Everything a panel shows; exported as JSON next to the images.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// File stem (`fig1b`, ...).
    pub id: String,
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// x range.
    pub x_range: (f64, f64),
    /// y range.
    pub y_range: (f64, f64),
    /// Background field.
    pub heatmap: Option<Heatmap>,
    /// Contour segments.
    pub contours: Vec<[(f64, f64); 2]>,
    /// Curves.
    pub series: Vec<Series>,
    /// Points.
    pub markers: Vec<Marker>,
    /// Point clouds (one legend entry each).
    pub scatter: Vec<Series>,
    /// Legend in the lower-left corner (plane plots) instead of the upper right (time plots).
    pub legend_lower_left: bool,
    /// Legend in the lower-right corner (curves that rise toward the top, such as accuracy).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub legend_lower_right: bool,
    /// Shaded bands, drawn beneath the curves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<Band>,
}

impl Figure {
    /// An empty panel: no curves, legend in the upper right.
    pub fn new(
        id: &str,
        title: &str,
        x_label: &str,
        y_label: &str,
        x_range: (f64, f64),
        y_range: (f64, f64),
    ) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_range,
            y_range,
            heatmap: None,
            contours: Vec::new(),
            series: Vec::new(),
            markers: Vec::new(),
            scatter: Vec::new(),
            legend_lower_left: false,
            legend_lower_right: false,
            bands: Vec::new(),
        }
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        // The embedded font is valid; a failure would only lose text, never the plot.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// Viridis-like colour ramp for `s ∈ [0, 1]`.
fn ramp(s: f64) -> RGBColor {
    let s = s.clamp(0.0, 1.0);
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = s * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let lerp = |a: f64, b: f64| (a + f * (b - a)) as u8;
    RGBColor(
        lerp(stops[i].0, stops[i + 1].0),
        lerp(stops[i].1, stops[i + 1].1),
        lerp(stops[i].2, stops[i + 1].2),
    )
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&fig.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(fig.x_range.0..fig.x_range.1, fig.y_range.0..fig.y_range.1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(&fig.x_label)
        .y_desc(&fig.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(e)?;
    if let Some(h) = &fig.heatmap {
        let (lo, hi) = h
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let nx = h.xs.len();
        let rects = (0..h.ys.len().saturating_sub(1)).flat_map(|j| {
            (0..nx.saturating_sub(1)).map(move |i| {
                let v = h.values[j * nx + i];
                // A square-root ramp spreads the low-loss region, where trajectories live.
                let s = ((v - lo) / (hi - lo).max(f64::MIN_POSITIVE)).sqrt();
                Rectangle::new(
                    [(h.xs[i], h.ys[j]), (h.xs[i + 1], h.ys[j + 1])],
                    ramp(s).mix(0.75).filled(),
                )
            })
        });
        chart.draw_series(rects).map_err(e)?;
    }
    if !fig.contours.is_empty() {
        chart
            .draw_series(
                fig.contours
                    .iter()
                    .map(|s| PathElement::new(vec![s[0], s[1]], BLACK.mix(0.35))),
            )
            .map_err(e)?;
    }
    for b in &fig.bands {
        let color = PALETTE[b.color_of % PALETTE.len()];
        let outline: Vec<(f64, f64)> =
            b.xs.iter()
                .zip(&b.upper)
                .map(|(&x, &y)| (x, y))
                .chain(b.xs.iter().zip(&b.lower).rev().map(|(&x, &y)| (x, y)))
                .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                color.mix(0.2).filled(),
            )))
            .map_err(e)?;
    }
    for (k, s) in fig.series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let style = color.stroke_width(3);
        let anno = if s.dashed {
            let scale = (fig.x_range.1 - fig.x_range.0, fig.y_range.1 - fig.y_range.0);
            chart
                .draw_series(
                    dashes(&s.points, scale)
                        .into_iter()
                        .map(move |c| PathElement::new(c, style)),
                )
                .map_err(e)?
        } else {
            chart
                .draw_series(LineSeries::new(s.points.clone(), style))
                .map_err(e)?
        };
        anno.label(&s.name).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
        });
    }
    for (k, sc) in fig.scatter.iter().enumerate() {
        let color = PALETTE[(k + 3) % PALETTE.len()];
        chart
            .draw_series(sc.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(e)?
            .label(&sc.name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    for (k, m) in fig.markers.iter().enumerate() {
        let color = PALETTE[m.color_of.unwrap_or(k + fig.series.len()) % PALETTE.len()];
        chart
            .draw_series(std::iter::once(Circle::new(m.at, 7, color.filled())))
            .map_err(e)?
            .label(&m.name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    if !fig.series.is_empty() || !fig.markers.is_empty() || !fig.scatter.is_empty() {
        let corner = if fig.legend_lower_right {
            SeriesLabelPosition::LowerRight
        } else if fig.legend_lower_left {
            SeriesLabelPosition::LowerLeft
        } else {
            SeriesLabelPosition::UpperRight
        };
        chart
            .configure_series_labels()
            .position(corner)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Writes `DIR/ID.svg`, `DIR/ID.png` and `DIR/ID.json`, each atomically (written under a
/// temporary name, then renamed).
pub fn render(fig: &Figure, dir: &Path) -> Result<(), String> {
    register_font();
    let size = (800, 600);
    let target = |ext: &str| dir.join(format!("{}.{ext}", fig.id));
    let tmp = |ext: &str| TempPath::beside(&target(ext), true).map_err(|e| e.to_string());
    let moved = |t: TempPath, ext: &str| {
        t.persist()
            .map_err(|e| format!("cannot write {}: {e}", target(ext).display()))
    };
    // plotters picks the image format from the extension, so the temporary name ends in it.
    let svg = tmp("svg")?;
    draw(SVGBackend::new(svg.path(), size).into_drawing_area(), fig)?;
    moved(svg, "svg")?;
    let png = tmp("png")?;
    draw(
        BitMapBackend::new(png.path(), size).into_drawing_area(),
        fig,
    )?;
    moved(png, "png")?;
    let json = serde_json::to_string_pretty(fig).map_err(|e| e.to_string())?;
    let file = tmp("json")?;
    std::fs::write(file.path(), json).map_err(|e| e.to_string())?;
    moved(file, "json")
}

/// Writes panels side by side as one image: `DIR/ID.svg`, `DIR/ID.png` and the panels' data
/// as `DIR/ID.json`, each atomically.
pub fn render_row(figs: &[Figure], id: &str, dir: &Path) -> Result<(), String> {
    render_row_to(figs, &dir.join(format!("{id}.svg")))?;
    render_row_to(figs, &dir.join(format!("{id}.png")))?;
    let target = dir.join(format!("{id}.json"));
    let tmp = TempPath::beside(&target, true).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(figs).map_err(|e| e.to_string())?;
    std::fs::write(tmp.path(), json).map_err(|e| e.to_string())?;
    tmp.persist()
        .map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// Writes panels side by side (700×520 each) as one image to `path`, as SVG or PNG by its
/// extension, atomically.
pub fn render_row_to(figs: &[Figure], path: &Path) -> Result<(), String> {
    write_panels(figs, (700 * figs.len().max(1) as u32, 520), path)
}

/// Writes one figure (800×600) to `path`, as SVG or PNG by its extension, atomically.
pub fn render_to(fig: &Figure, path: &Path) -> Result<(), String> {
    write_panels(std::slice::from_ref(fig), (800, 600), path)
}

/// Draws `figs` side by side into an image of `size`, written under a temporary name (which
/// ends in the extension: plotters picks the format from it) and renamed to `path`.
fn write_panels(figs: &[Figure], size: (u32, u32), path: &Path) -> Result<(), String> {
    register_font();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let tmp = TempPath::beside(path, true).map_err(|e| e.to_string())?;
    fn panels<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        figs: &[Figure],
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        for (area, fig) in root
            .split_evenly((1, figs.len().max(1)))
            .into_iter()
            .zip(figs)
        {
            draw(area, fig)?;
        }
        Ok(())
    }
    match ext.as_deref() {
        Some("svg") => panels(SVGBackend::new(tmp.path(), size).into_drawing_area(), figs)?,
        Some("png") => panels(
            BitMapBackend::new(tmp.path(), size).into_drawing_area(),
            figs,
        )?,
        _ => {
            return Err(format!(
                "{}: the output must end in .png or .svg",
                path.display()
            ))
        }
    }
    tmp.persist()
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}
