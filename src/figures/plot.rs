//! A figure as data, and its rendering: plotters draws the SVG, resvg rasterises that SVG into
//! an anti-aliased PNG, so both files show the same picture.
//!
//! Text uses the DejaVu Sans font embedded in the binary, both for plotters' layout and for
//! the rasteriser (no system font libraries needed). A panel is laid out as a title, the plot
//! with a colour bar beside it when there is a background field, and the legend in a strip
//! beneath the axes, outside the data.

use std::path::Path;
use std::sync::{Arc, Once, OnceLock};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::atomic::TempPath;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The size of one panel and the resolution of PNG images.
///
/// Sizes are in CSS pixels (1/96 inch), the units of the SVG; a PNG is `width · dpi / 96`
/// pixels wide. A composed figure is a grid of panels of this size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageSize {
    /// Width of one panel.
    pub width: u32,
    /// Height of one panel.
    pub height: u32,
    /// Resolution of PNG images in dots per inch.
    pub dpi: f64,
}

impl Default for ImageSize {
    /// 800 × 600 panels; PNGs at 192 dpi (twice the SVG's pixel size, sharp on print and on
    /// high-density screens).
    fn default() -> Self {
        Self {
            width: 800,
            height: 600,
            dpi: 192.0,
        }
    }
}

/// The largest PNG written, in pixels: 2.5·10⁸ pixels are 1 GB of RGBA while rendering.
const MAX_PIXELS: f64 = 2.5e8;

impl ImageSize {
    /// A panel size, checked: width and height from 240 to 8000 CSS pixels (smaller panels
    /// have no room for their labels) and a resolution from 24 to 2400 dpi.
    pub fn new(width: u32, height: u32, dpi: f64) -> Result<Self, String> {
        for (name, v) in [("width", width), ("height", height)] {
            if !(240..=8000).contains(&v) {
                return Err(format!(
                    "the panel {name} {v} is outside 240..=8000 (CSS pixels, 1/96 inch)"
                ));
            }
        }
        if !(24.0..=2400.0).contains(&dpi) {
            return Err(format!("the resolution {dpi} dpi is outside 24..=2400"));
        }
        let size = Self { width, height, dpi };
        size.png_pixels(1, 1)?;
        Ok(size)
    }

    /// The PNG size of a grid of `rows × cols` panels, refused above [`MAX_PIXELS`].
    fn png_pixels(&self, rows: usize, cols: usize) -> Result<(u32, u32), String> {
        let scale = self.dpi / 96.0;
        let w = (self.width as f64 * cols as f64 * scale).round();
        let h = (self.height as f64 * rows as f64 * scale).round();
        if w * h > MAX_PIXELS {
            return Err(format!(
                "a {w} × {h} pixel image is larger than the limit of {MAX_PIXELS:.1e} pixels: \
                 lower the resolution or the panel size"
            ));
        }
        Ok((w as u32, h as u32))
    }
}

/// A colour-mapped scalar field on a grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heatmap {
    /// Grid abscissae.
    pub xs: Vec<f64>,
    /// Grid ordinates.
    pub ys: Vec<f64>,
    /// `values[j * xs.len() + i]` at `(xs[i], ys[j])`.
    pub values: Vec<f64>,
    /// What the field is, for the colour bar ("L(θ)").
    pub label: String,
    /// Values of the contour lines drawn over the field (marked on the colour bar).
    pub levels: Vec<f64>,
    /// The colour scale: a value `v` sits at `((v − min) / (max − min))^exponent` of the
    /// way up the colour bar (see [`Heatmap::new`]).
    pub exponent: f64,
}

impl Heatmap {
    /// A field sampled on a grid, with `levels` contour levels evenly spaced on its colour
    /// scale. The scale is a power of the normalised value whose exponent puts the median
    /// sample at the middle of the colour bar (clamped to `[0.1, 1]`): a narrow valley in a
    /// steep landscape (Rosenbrock's: half the samples below 4 % of the range) keeps half the
    /// colours and contours instead of one, and a bowl gets about the square root.
    pub fn new(xs: Vec<f64>, ys: Vec<f64>, values: Vec<f64>, label: &str, levels: usize) -> Self {
        let (lo, hi) = finite_range(&values);
        let exponent = median_exponent(&values, lo, hi);
        let levels = if lo < hi {
            (1..=levels)
                .map(|k| k as f64 / (levels + 1) as f64)
                .map(|s| lo + (hi - lo) * s.powf(1.0 / exponent))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            xs,
            ys,
            values,
            label: label.into(),
            levels,
            exponent,
        }
    }
}

/// The smallest and largest finite values (`(∞, −∞)` when there are none).
fn finite_range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        })
}

/// The exponent `a ∈ [0.1, 1]` with `m^a = 1/2` for the median `m` of the normalised finite
/// values: the median sample lands mid-scale.
fn median_exponent(values: &[f64], lo: f64, hi: f64) -> f64 {
    // Also true for NaN bounds (no finite values).
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return 1.0;
    }
    let mut x: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| (v - lo) / (hi - lo))
        .collect();
    let mid = x.len() / 2;
    let (_, m, _) = x.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if m <= 0.0 {
        return 0.1;
    }
    if m >= 0.5 {
        return 1.0;
    }
    (0.5f64.ln() / m.ln()).clamp(0.1, 1.0)
}

/// A polyline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Dashed line.
    pub dashed: bool,
    /// What the curve is; its colour follows (see [`Role`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Series {
    /// The series in the colour of `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }
}

/// What a curve or a point is. Each role has one colour in every figure, and curves without a
/// role (families such as one path per γ) take colours no role uses, so red always reads
/// "optimal" and blue "gradient flow".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The optimal path, or the rule derived from it: red.
    Optimal,
    /// Gradient flow, or gradient descent: blue.
    GradientFlow,
    /// Natural-gradient flow: purple.
    NaturalGradient,
    /// A minimum of the loss (drawn as a ring): black.
    Minimum,
    /// The initial point θ0: black.
    Start,
}

impl Role {
    /// The role's colour.
    pub fn colour(self) -> RGBColor {
        match self {
            Role::Optimal => RGBColor(214, 39, 40),
            Role::GradientFlow => RGBColor(31, 119, 180),
            Role::NaturalGradient => RGBColor(148, 103, 189),
            Role::Minimum | Role::Start => RGBColor(0, 0, 0),
        }
    }
}

/// A labelled point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// Legend label.
    pub name: String,
    /// Position.
    pub at: (f64, f64),
    /// Colour of the series with this index (default: a colour of its own).
    pub color_of: Option<usize>,
    /// Drawn as a ring around the point, so a dot at the same place stays visible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ring: bool,
    /// What the point is; its colour follows, before `color_of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// A shaded band between two curves over the same abscissae (mean ± one standard deviation).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Shaded bands, drawn beneath the curves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<Band>,
    /// The x axis counts whole units (epochs): ticks only at integers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub x_integer: bool,
    /// The x values are log₁₀ of the quantity shown: a logarithmic axis, labelled in the
    /// quantity (decades 10⁻³ … 10³, or the values between when it spans under two).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub x_log: bool,
    /// The y values are log₁₀ of the quantity shown (as `x_log`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub y_log: bool,
}

impl Figure {
    /// An empty panel.
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
            bands: Vec::new(),
            x_integer: false,
            x_log: false,
            y_log: false,
        }
    }
}

/// Tableau 10 without the colours [`Role`]s own (red, blue, purple): the colours of curves
/// and points that have no role, in order. Distinct for the common forms of colour blindness
/// in the pairs used for overlapping curves here, and distinct from the viridis background.
const PALETTE: [RGBColor; 7] = [
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];

/// The colour of every curve, point cloud and marker of a panel, in the order of `fig`'s
/// lists: a role's colour, else (markers) the colour of the series named by `color_of`, else
/// the next palette colour.
struct Colours {
    series: Vec<RGBColor>,
    scatter: Vec<RGBColor>,
    markers: Vec<RGBColor>,
}

fn colours(fig: &Figure) -> Colours {
    let mut free = PALETTE.iter().copied().cycle();
    let series: Vec<RGBColor> = fig
        .series
        .iter()
        .map(|s| {
            s.role
                .map_or_else(|| free.next().unwrap_or(BLACK), Role::colour)
        })
        .collect();
    let scatter = fig
        .scatter
        .iter()
        .map(|s| {
            s.role
                .map_or_else(|| free.next().unwrap_or(BLACK), Role::colour)
        })
        .collect();
    let markers = fig
        .markers
        .iter()
        .map(|m| match (m.role, m.color_of) {
            (Some(role), _) => role.colour(),
            (None, Some(k)) if k < series.len() => series[k],
            _ => free.next().unwrap_or(BLACK),
        })
        .collect();
    Colours {
        series,
        scatter,
        markers,
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid; a failure would only lose text, never the plot.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The background's colour at `s ∈ [0, 1]`: viridis, lightened a quarter toward white so
/// the curves drawn over it stand out. Opaque, so neighbouring cells may overlap (which
/// hides the seams an anti-aliasing rasteriser leaves between abutting rectangles).
fn background(s: f64) -> RGBColor {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let c: RGBColor = ViridisRGB.get_color_normalized(s.clamp(0.0, 1.0), 0.0, 1.0);
    let light = |v: u8| (0.75 * v as f64 + 0.25 * 255.0).round() as u8;
    RGBColor(light(c.0), light(c.1), light(c.2))
}

/// Where a value sits on the colour scale: a power of the normalised value (the heatmap's
/// exponent), which spreads the low-loss region where the trajectories live.
fn scale_position(v: f64, lo: f64, hi: f64, exponent: f64) -> f64 {
    ((v - lo) / (hi - lo).max(f64::MIN_POSITIVE))
        .clamp(0.0, 1.0)
        .powf(exponent)
}

/// The labelled values of a colour bar over `[lo, hi]` with the scale's `exponent`, as
/// (value, position on the bar in `[0, 1]`, label): round values near six evenly spaced
/// positions, each rounded to a power of ten below its distance to the neighbouring targets,
/// so a strongly bent scale reads 0, 10, 100, 500, 1200, 2000 instead of crowding linear
/// ticks at one end. Labels are distinct and increasing, at least 6 % of the bar apart.
fn colour_bar_ticks(lo: f64, hi: f64, exponent: f64) -> Vec<(f64, f64, String)> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
        return Vec::new();
    }
    let position = |v: f64| scale_position(v, lo, hi, exponent);
    if exponent >= 1.0 - 1e-12 {
        let (ticks, decimals) = nice_ticks(lo, hi, 6);
        return ticks
            .into_iter()
            .map(|v| (v, position(v), tick_label(v, decimals)))
            .collect();
    }
    let targets: Vec<f64> = (0..=5)
        .map(|k| lo + (hi - lo) * (k as f64 / 5.0).powf(1.0 / exponent))
        .collect();
    let mut out: Vec<(f64, f64, String)> = Vec::new();
    for (k, &t) in targets.iter().enumerate() {
        let gap = [
            k.checked_sub(1).map(|j| t - targets[j]),
            targets.get(k + 1).map(|u| u - t),
        ]
        .into_iter()
        .flatten()
        .fold(f64::INFINITY, f64::min);
        if !(gap > 0.0 && gap.is_finite()) {
            continue;
        }
        let power = gap.log10().floor() as i32;
        let unit = 10f64.powi(power);
        let mut v = (t / unit).round() * unit;
        if v < lo {
            v += unit;
        }
        if v > hi {
            v -= unit;
        }
        let pos = position(v);
        if !(lo..=hi).contains(&v) || out.last().is_some_and(|last| pos < last.1 + 0.06) {
            continue;
        }
        let label = tick_label(v, (-power).max(0) as usize);
        if out.last().is_some_and(|last| last.2 == label) {
            continue;
        }
        out.push((v, pos, label));
    }
    out
}

/// About `target` round tick values in `[lo, hi]` (steps of 1, 2, 2.5 or 5 times a power of
/// ten) and the number of decimals that shows them exactly.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, usize) {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return (vec![lo], 3);
    }
    let mag = 10f64.powf((span / target as f64).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag);
    let decimals = step_decimals(step / mag, mag);
    let first = (lo / step - 1e-9).ceil();
    // Rounded to the decimals shown, so 3 × 0.2 is the 0.6 its label says.
    let unit = 10f64.powi(decimals as i32);
    let ticks = (0..=target * 2 + 2)
        .map(|i| ((first + i as f64) * step * unit).round() / unit)
        .take_while(|v| *v <= hi + 1e-9 * span)
        .collect();
    (ticks, decimals)
}

/// The decimals that show multiples of the step `m · mag` exactly (`mag` a power of ten,
/// `m` one of 1, 2, 2.5, 5, 10).
fn step_decimals(m: f64, mag: f64) -> usize {
    let of_mag = (-mag.log10()).round().max(0.0) as usize;
    if (m - 2.5).abs() < 1e-9 {
        of_mag + 1
    } else if m >= 10.0 - 1e-9 {
        of_mag.saturating_sub(1)
    } else {
        of_mag
    }
}

/// At most this many labelled ticks per axis (plotters' default, written out because the
/// labels are computed from the same number).
const AXIS_LABELS: usize = 11;

/// The ticks plotters draws on an axis over `[lo, hi]` with at most `labels` of them (its own
/// key points: the labels are formatted from exactly these values), and the labels: the
/// fewest decimals that tell every tick apart and show each to well within its step, with
/// −0 and rounding residue (`-5.6e-17` for 0) printed as 0.
pub(crate) fn axis_labels(lo: f64, hi: f64, labels: usize) -> Vec<(f64, String)> {
    let ticks = key_points(lo, hi, labels);
    let step = ticks
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(hi - lo, f64::min);
    let (decimals, scientific) = label_format(&ticks, step);
    ticks
        .iter()
        .map(|&v| (v, format_tick(v, step, decimals, scientific)))
        .collect()
}

/// plotters' key points of `[lo, hi]`, at most `labels` of them (none for an empty range).
fn key_points(lo: f64, hi: f64, labels: usize) -> Vec<f64> {
    use plotters::coord::ranged1d::{BoldPoints, Ranged};
    use plotters::coord::types::RangedCoordf64;
    // A width that overflows (−1e308..1e308) would make plotters' search for a step run on.
    if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
        return Vec::new();
    }
    RangedCoordf64::from(lo..hi).key_points(BoldPoints(labels))
}

/// Ticks and labels of a logarithmic axis whose values are log₁₀ of the quantity over
/// `[lo, hi]`: the decades in range labelled 10ᵏ (plain 0.01 … 1000 between 10⁻² and 10³)
/// when it spans two decades or more, else plotters' ticks labelled with the quantity
/// `10^v` to the digits that tell them apart.
pub(crate) fn log_axis_labels(lo: f64, hi: f64, labels: usize) -> Vec<(f64, String)> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
        return Vec::new();
    }
    if hi - lo >= 2.0 {
        let ticks = key_points(lo, hi, label_count(true, lo, hi, labels));
        // Whole decades only (plotters' steps over whole spans are whole when asked for at
        // most one tick per decade).
        return ticks
            .into_iter()
            .filter(|v| (v - v.round()).abs() < 1e-9)
            .map(|v| (v, decade(v.round() as i32)))
            .collect();
    }
    let ticks = key_points(lo, hi, labels);
    for digits in 1..=6 {
        let text: Vec<String> = ticks
            .iter()
            .map(|v| significant(10f64.powf(*v), digits))
            .collect();
        if text.windows(2).all(|w| w[0] != w[1]) {
            return ticks.into_iter().zip(text).collect();
        }
    }
    ticks
        .iter()
        .map(|v| (*v, format!("{:e}", 10f64.powf(*v))))
        .collect()
}

/// `10ᵏ` as a reader writes it: 0.01, 0.1, 1, 10, 100, 1000 near 1, superscripts beyond.
fn decade(k: i32) -> String {
    if (-2..=3).contains(&k) {
        return significant(10f64.powi(k), 1);
    }
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits: String = k
        .unsigned_abs()
        .to_string()
        .chars()
        .map(|c| SUP[c.to_digit(10).unwrap_or(0) as usize])
        .collect();
    format!("10{}{digits}", if k < 0 { "⁻" } else { "" })
}

/// `v` to `digits` significant digits, in plain decimals, without trailing zeros.
fn significant(v: f64, digits: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - mag).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The decimals (and whether to use scientific notation) for labels of `ticks` spaced by
/// `step`: the fewest with distinct labels that each read back within 1 % of a step.
fn label_format(ticks: &[f64], step: f64) -> (usize, bool) {
    let largest = ticks.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    // Plain decimals between 1e-4 and 1e5; scientific beyond, as a reader expects.
    let scientific = largest >= 1e5 || (largest > 0.0 && step < 1e-4);
    for decimals in 0..=15 {
        let labels: Vec<String> = ticks
            .iter()
            .map(|&v| format_tick(v, step, decimals, scientific))
            .collect();
        let distinct = labels.windows(2).all(|w| w[0] != w[1]);
        let faithful = labels
            .iter()
            .zip(ticks)
            .all(|(l, v)| l.parse::<f64>().is_ok_and(|x| (x - v).abs() <= 0.01 * step));
        if distinct && faithful {
            return (decimals, scientific);
        }
    }
    (15, scientific)
}

/// One tick label: `decimals` after the point (of the mantissa, when `scientific`); a value
/// within a millionth of a step of zero is 0.
fn format_tick(v: f64, step: f64, decimals: usize, scientific: bool) -> String {
    let v = if v.abs() <= 1e-6 * step { 0.0 } else { v };
    unsigned_zero(if scientific && v != 0.0 {
        format!("{v:.decimals$e}")
    } else {
        format!("{v:.decimals$}")
    })
}

/// A label that reads as zero without its minus sign ("-0.0" reads as a different number
/// from "0.0").
fn unsigned_zero(s: String) -> String {
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// The tick labels a panel's axes show, as drawn: `[x, y]`, each in increasing value.
pub fn tick_labels(fig: &Figure) -> [Vec<String>; 2] {
    let labels = |ticks: Vec<(f64, String)>| ticks.into_iter().map(|t| t.1).collect();
    let [x, y] = panel_ticks(fig);
    [labels(x), labels(y)]
}

/// The ticks (value, label) of a panel's two axes, as drawn.
fn panel_ticks(fig: &Figure) -> [Vec<(f64, String)>; 2] {
    let (x, y) = (fig.x_range, fig.y_range);
    [
        if fig.x_log {
            log_axis_labels(x.0, x.1, AXIS_LABELS)
        } else {
            axis_labels(x.0, x.1, x_label_count(fig))
        },
        if fig.y_log {
            log_axis_labels(y.0, y.1, AXIS_LABELS)
        } else {
            axis_labels(y.0, y.1, AXIS_LABELS)
        },
    ]
}

/// What is wrong with the labels a panel draws on its two axes and its colour bar, one line
/// per defect (empty when they are fit to print): every label reads back as a number (decades
/// written 10⁻³ included), the values increase, no label is "-0" or rounding residue (a value
/// within a billionth of the axis span of zero but not zero), and no two labels are the same.
pub fn tick_defects(fig: &Figure) -> Vec<String> {
    let [x, y] = panel_ticks(fig);
    let mut scales = vec![("x axis", fig.x_range, x), ("y axis", fig.y_range, y)];
    if let Some(map) = &fig.heatmap {
        let (lo, hi) = finite_range(&map.values);
        let bar = colour_bar_ticks(lo, hi, map.exponent)
            .into_iter()
            .map(|(v, _, l)| (v, l))
            .collect();
        scales.push(("colour bar", (lo, hi), bar));
    }
    scales
        .into_iter()
        .flat_map(|(name, (lo, hi), ticks)| {
            let labels: Vec<String> = ticks.into_iter().map(|t| t.1).collect();
            label_defects(&format!("{}: {name}", fig.id), (hi - lo).abs(), &labels)
        })
        .collect()
}

/// The defects of one scale's labels (see [`tick_defects`]); `span` is the scale's width.
fn label_defects(at: &str, span: f64, labels: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let at = |what: &str| format!("{at} {labels:?}: {what}");
    if labels.len() < 2 {
        return vec![at("fewer than two labels")];
    }
    let mut read = Vec::new();
    for label in labels {
        match read_label(label) {
            Some(v) => read.push(v),
            None => out.push(at(&format!("{label:?} does not read as a number"))),
        }
        if label.starts_with('-') && read_label(label) == Some(0.0) {
            out.push(at(&format!("{label:?} is a negative zero")));
        }
    }
    if let Some(v) = read.iter().find(|v| **v != 0.0 && v.abs() < 1e-9 * span) {
        out.push(at(&format!("{v:e} is rounding residue of 0")));
    }
    if read.len() == labels.len() && !read.windows(2).all(|w| w[0] < w[1]) {
        out.push(at("the values do not increase (or repeat)"));
    }
    out
}

/// A tick label's value: a plain or scientific number, or a decade written `10⁻³`.
fn read_label(label: &str) -> Option<f64> {
    if let Ok(v) = label.parse::<f64>() {
        return Some(v);
    }
    let exp = label.strip_prefix("10")?;
    let plain: String = exp
        .chars()
        .map(|c| match c {
            '⁻' => Some('-'),
            c => "⁰¹²³⁴⁵⁶⁷⁸⁹"
                .chars()
                .position(|s| s == c)
                .and_then(|d| char::from_digit(d as u32, 10)),
        })
        .collect::<Option<String>>()?;
    Some(10f64.powi(plain.parse().ok()?))
}

/// How many labelled ticks plotters is asked for on an axis over `[lo, hi]`: the decades of a
/// log axis spanning two or more, else `default`.
fn label_count(log: bool, lo: f64, hi: f64, default: usize) -> usize {
    if log && hi - lo >= 2.0 && (hi - lo).is_finite() {
        ((hi - lo).floor() as usize + 1).min(AXIS_LABELS)
    } else {
        default
    }
}

/// The tick labels of an axis over `[lo, hi]` (of whole units when `integer`; values log₁₀
/// of the quantity when `log`), as a panel with that range draws them.
pub fn axis_tick_labels(lo: f64, hi: f64, integer: bool, log: bool) -> Vec<String> {
    let mut fig = Figure::new("", "", "", "", (lo, hi), (0.0, 1.0));
    fig.x_integer = integer;
    fig.x_log = log;
    let [x, _] = tick_labels(&fig);
    x
}

/// A title as drawn within `room` pixels (`width(text, size)` measures text at a size in
/// points): one line at the largest size from 20 down to 14 pt that fits, else two lines
/// broken at the space nearest the middle at the largest size down to 11 pt that fits, else
/// two lines at 11 pt with the second cut to fit and ending in "…".
fn title_lines(title: &str, room: i32, width: &dyn Fn(&str, f64) -> i32) -> (Vec<String>, f64) {
    let sizes =
        |hi: f64, lo: f64| std::iter::successors(Some(hi), move |s| (*s > lo).then_some(s - 1.0));
    for size in sizes(20.0, 14.0) {
        if width(title, size) <= room {
            return (vec![title.to_string()], size);
        }
    }
    let chars: Vec<char> = title.chars().collect();
    let middle = chars.len() / 2;
    let split = (0..chars.len())
        .filter(|&i| chars[i] == ' ')
        .min_by_key(|&i| i.abs_diff(middle));
    let (first, second) = match split {
        Some(i) => (
            chars[..i].iter().collect::<String>(),
            chars[i + 1..].iter().collect::<String>(),
        ),
        None => (title.to_string(), String::new()),
    };
    for size in sizes(14.0, 11.0) {
        if width(&first, size) <= room && width(&second, size) <= room {
            return (vec![first, second], size);
        }
    }
    // Last resort: keep what fits of each line, marked as cut.
    let cut = |line: &str| -> String {
        if width(line, 11.0) <= room {
            return line.to_string();
        }
        let chars: Vec<char> = line.chars().collect();
        let mut n = chars.len();
        while n > 1 && width(&(chars[..n].iter().collect::<String>() + "…"), 11.0) > room {
            n -= 1;
        }
        chars[..n].iter().collect::<String>() + "…"
    };
    (vec![cut(&first), cut(&second)], 11.0)
}

/// Labelled x ticks of a panel: at most [`AXIS_LABELS`], and for an axis of whole units no
/// more than the whole numbers in range (so the steps are whole too).
fn x_label_count(fig: &Figure) -> usize {
    if fig.x_integer {
        let span = (fig.x_range.1 - fig.x_range.0).floor();
        if span.is_finite() && span >= 1.0 {
            return (span as usize + 1).min(AXIS_LABELS);
        }
    }
    AXIS_LABELS
}

/// A tick label: fixed-point with `decimals`, or scientific for very large or small values.
fn tick_label(v: f64, decimals: usize) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    unsigned_zero(format!("{v:.decimals$}"))
}

/// One legend entry: its sample and label.
enum Sample {
    Line { color: RGBColor, dashed: bool },
    Dot { color: RGBColor, radius: i32 },
    Ring { color: RGBColor },
}

/// The outer radius of a ring marker; a dot marker has radius 6.
const RING: i32 = 10;

fn legend_entries(fig: &Figure) -> Vec<(Sample, &str)> {
    let colours = colours(fig);
    let mut out = Vec::new();
    for (s, &color) in fig.series.iter().zip(&colours.series) {
        out.push((
            Sample::Line {
                color,
                dashed: s.dashed,
            },
            s.name.as_str(),
        ));
    }
    for (s, &color) in fig.scatter.iter().zip(&colours.scatter) {
        out.push((Sample::Dot { color, radius: 4 }, s.name.as_str()));
    }
    let mut seen: Vec<(&str, RGBColor, bool)> = Vec::new();
    for (m, &color) in fig.markers.iter().zip(&colours.markers) {
        // Several markers of one kind (same name, colour and shape) share one entry.
        if seen.contains(&(m.name.as_str(), color, m.ring)) {
            continue;
        }
        seen.push((m.name.as_str(), color, m.ring));
        let sample = if m.ring {
            Sample::Ring { color }
        } else {
            Sample::Dot { color, radius: 6 }
        };
        out.push((sample, m.name.as_str()));
    }
    out
}

/// SVG units per CSS pixel. plotters rounds coordinates to whole units, so drawing at four
/// units per pixel (the SVG's `viewBox`; its `width` and `height` stay in pixels) keeps curves
/// smooth to a quarter pixel instead of stair-stepped at whole pixels.
const U: i32 = 4;

/// `n` CSS pixels in SVG units.
const fn px(n: i32) -> i32 {
    n * U
}

/// A font size of `n` CSS pixels in SVG units.
fn pt(n: f64) -> f64 {
    n * U as f64
}

const LEGEND_FONT: f64 = 14.0;
const LEGEND_ROW: i32 = px(22);
const SAMPLE_WIDTH: i32 = px(30);

/// Packs the legend entries into rows no wider than `width`: each row is a list of
/// (entry index, entry width).
fn legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Sample, &str)],
    width: i32,
) -> Vec<Vec<(usize, i32)>> {
    let font = ("sans-serif", pt(LEGEND_FONT)).into_font();
    let mut rows: Vec<Vec<(usize, i32)>> = Vec::new();
    let mut used = 0;
    for (i, (_, label)) in entries.iter().enumerate() {
        // A failed measurement (never with the embedded font) falls back to a wide guess.
        let text = area
            .estimate_text_size(label, &font.clone().into())
            .map(|s| s.0 as i32)
            .unwrap_or(px(8) * label.chars().count() as i32);
        let w = SAMPLE_WIDTH + px(8) + text + px(24);
        match rows.last_mut() {
            Some(row) if used + w <= width => {
                row.push((i, w));
                used += w;
            }
            _ => {
                rows.push(vec![(i, w)]);
                used = w;
            }
        }
    }
    rows
}

fn draw_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    sample: &Sample,
    (x, y): (i32, i32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    match *sample {
        Sample::Line { color, dashed } => {
            let style = color.stroke_width(px(3) as u32);
            if dashed {
                area.draw(&plotters::element::DashedPathElement::new(
                    vec![(x, y), (x + SAMPLE_WIDTH, y)],
                    px(10),
                    px(6),
                    style,
                ))
            } else {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + SAMPLE_WIDTH, y)],
                    style,
                ))
            }
        }
        Sample::Dot { color, radius } => {
            let c = (x + SAMPLE_WIDTH / 2, y);
            area.draw(&Circle::new(c, px(radius), color.filled()))?;
            area.draw(&Circle::new(
                c,
                px(radius),
                WHITE.stroke_width(px(1) as u32),
            ))
        }
        Sample::Ring { color } => area.draw(&Circle::new(
            (x + SAMPLE_WIDTH / 2, y),
            px(RING) - px(3) / 2,
            color.stroke_width(px(3) as u32),
        )),
    }
}

/// The colour bar of `map` in `area`, spanning the plot's rows `rows` (absolute pixels):
/// the colour scale with labelled values, the contour levels marked across it, and the
/// field's name along its side.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &Heatmap,
    rows: std::ops::Range<i32>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lo, hi) = finite_range(&map.values);
    if !(lo.is_finite() && hi.is_finite()) {
        return Ok(());
    }
    let offset = area.get_pixel_range().1.start;
    let (top, bottom) = (rows.start - offset, rows.end - offset);
    let (x0, x1) = (px(14), px(32));
    let height = (bottom - top).max(1);
    // The bar is drawn in colour-scale position: evenly spaced colours, values placed where
    // their colour is.
    let y_at = |s: f64| bottom - (s * height as f64).round() as i32;
    let y_of = |v: f64| y_at(scale_position(v, lo, hi, map.exponent));
    for k in 0..height {
        let c = background((k as f64 + 0.5) / height as f64);
        area.draw(&Rectangle::new(
            [(x0, bottom - k - 1), (x1, bottom - k)],
            c.filled(),
        ))?;
    }
    for &level in &map.levels {
        let y = y_of(level);
        area.draw(&PathElement::new(
            vec![(x0, y), (x1, y)],
            BLACK.mix(0.6).stroke_width(px(1) as u32),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        BLACK.stroke_width(px(1) as u32),
    ))?;
    let font = ("sans-serif", pt(14.0)).into_font();
    let label = font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let mut widest = 0;
    for (_, s, text) in colour_bar_ticks(lo, hi, map.exponent) {
        let y = y_at(s);
        area.draw(&PathElement::new(
            vec![(x1, y), (x1 + px(4), y)],
            BLACK.stroke_width(px(1) as u32),
        ))?;
        widest = widest.max(
            area.estimate_text_size(&text, &font.clone().into())
                .map(|s| s.0)
                .unwrap_or(40),
        );
        area.draw_text(&text, &label, (x1 + px(7), y))?;
    }
    // Read from bottom to top, as a y-axis label.
    let name = ("sans-serif", pt(16.0))
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    area.draw_text(
        &map.label,
        &name,
        (x1 + px(12) + widest as i32, (top + bottom) / 2),
    )
}

/// Draws one panel into `area`.
fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    area.fill(&WHITE).map_err(e)?;
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    // The title shrinks to fit the panel's width, down to 14 pt on one line, then breaks into
    // two lines (down to 11 pt); only a title too long for that ends in an ellipsis. It never
    // runs past the panel or into the plot.
    let width_of = |text: &str, size: f64| {
        area.estimate_text_size(text, &("sans-serif", pt(size)).into_font().into())
            .map(|s| s.0 as i32)
            .unwrap_or(px(10) * text.chars().count() as i32)
    };
    let room = w - px(24);
    let (lines, size) = title_lines(&fig.title, room, &width_of);
    let title_font = ("sans-serif", pt(size)).into_font();
    let line_h = px((size * 1.45).round() as i32);
    for (k, line) in lines.iter().enumerate() {
        area.draw_text(
            line,
            &title_font
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
            (w / 2, px(10) + k as i32 * line_h),
        )
        .map_err(e)?;
    }
    let entries = legend_entries(fig);
    let rows = legend_rows(area, &entries, w - px(40));
    let legend_h = if rows.is_empty() {
        0
    } else {
        rows.len() as i32 * LEGEND_ROW + px(8)
    };
    let title_h = if lines.len() == 1 {
        px(40)
    } else {
        px(16) + lines.len() as i32 * line_h
    };
    let (_, rest) = area.split_vertically(title_h);
    let (body, legend) = rest.split_vertically((h - title_h - legend_h).max(1));
    let bar_w = if fig.heatmap.is_some() { px(105) } else { 0 };
    let (plot, bar) = body.split_horizontally((w - bar_w).max(1));
    let mut chart = ChartBuilder::on(&plot)
        .margin(px(6))
        .margin_right(if bar_w > 0 { px(4) } else { px(24) })
        .x_label_area_size(px(50))
        .y_label_area_size(px(74))
        .build_cartesian_2d(fig.x_range.0..fig.x_range.1, fig.y_range.0..fig.y_range.1)
        .map_err(e)?;
    let [x_ticks, y_ticks] = panel_ticks(fig);
    // The counts plotters computes its key points from: the same as the labels'.
    let x_count = label_count(fig.x_log, fig.x_range.0, fig.x_range.1, x_label_count(fig));
    let y_count = label_count(fig.y_log, fig.y_range.0, fig.y_range.1, AXIS_LABELS);
    // The labels of exactly the values plotters asks for (the same key points).
    let lookup = |ticks: &[(f64, String)], v: f64| {
        ticks
            .iter()
            .min_by(|a, b| (a.0 - v).abs().total_cmp(&(b.0 - v).abs()))
            .map_or_else(|| format!("{v}"), |t| t.1.clone())
    };
    let (x_label, y_label) = (
        |v: &f64| lookup(&x_ticks, *v),
        |v: &f64| lookup(&y_ticks, *v),
    );
    chart
        .configure_mesh()
        .x_labels(x_count)
        .y_labels(y_count)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(&fig.x_label)
        .y_desc(&fig.y_label)
        .label_style(("sans-serif", pt(14.0)))
        .axis_desc_style(("sans-serif", pt(16.0)))
        .set_all_tick_mark_size(px(5))
        .axis_style(BLACK.stroke_width(px(1) as u32))
        .bold_line_style(BLACK.mix(0.08).stroke_width(px(1) as u32))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;
    if let Some(map) = &fig.heatmap {
        let (lo, hi) = finite_range(&map.values);
        let (nx, ny) = (map.xs.len(), map.ys.len());
        let cells = (0..ny.saturating_sub(1)).flat_map(|j| {
            (0..nx.saturating_sub(1)).map(move |i| {
                let v = 0.25
                    * (map.values[j * nx + i]
                        + map.values[j * nx + i + 1]
                        + map.values[(j + 1) * nx + i]
                        + map.values[(j + 1) * nx + i + 1]);
                // Each cell reaches halfway into its upper and right neighbours, which paint
                // over the overlap: no background shows between cells.
                let x1 = (map.xs[i + 1] + 0.5 * (map.xs[i + 1] - map.xs[i])).min(map.xs[nx - 1]);
                let y1 = (map.ys[j + 1] + 0.5 * (map.ys[j + 1] - map.ys[j])).min(map.ys[ny - 1]);
                Rectangle::new(
                    [(map.xs[i], map.ys[j]), (x1, y1)],
                    background(scale_position(v, lo, hi, map.exponent)).filled(),
                )
            })
        });
        chart.draw_series(cells).map_err(e)?;
        colour_bar(&bar, map, chart.plotting_area().get_pixel_range().1).map_err(e)?;
    }
    if !fig.contours.is_empty() {
        chart
            .draw_series(fig.contours.iter().map(|s| {
                PathElement::new(vec![s[0], s[1]], BLACK.mix(0.4).stroke_width(px(1) as u32))
            }))
            .map_err(e)?;
    }
    let colours = colours(fig);
    for b in &fig.bands {
        let color = colours.series.get(b.color_of).copied().unwrap_or(BLACK);
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
    for (s, colour) in fig.series.iter().zip(&colours.series) {
        let style = colour.stroke_width(px(3) as u32);
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    s.points.clone(),
                    px(10),
                    px(6),
                    style,
                ))
                .map_err(e)?;
        } else {
            chart
                .draw_series(LineSeries::new(s.points.clone(), style))
                .map_err(e)?;
        }
    }
    for (sc, &color) in fig.scatter.iter().zip(&colours.scatter) {
        chart
            .draw_series(
                sc.points
                    .iter()
                    .map(|&p| Circle::new(p, px(4), color.filled())),
            )
            .map_err(e)?;
    }
    for (m, &color) in fig.markers.iter().zip(&colours.markers) {
        let shapes = if m.ring {
            vec![Circle::new(
                m.at,
                px(RING) - px(3) / 2,
                color.stroke_width(px(3) as u32),
            )]
        } else {
            vec![
                Circle::new(m.at, px(6), color.filled()),
                Circle::new(m.at, px(6), WHITE.stroke_width(px(1) as u32)),
            ]
        };
        chart.draw_series(shapes).map_err(e)?;
    }
    let font = ("sans-serif", pt(LEGEND_FONT)).into_font();
    let text = font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|&(_, w)| w).sum::<i32>() - px(24);
        let mut x = (w - total) / 2;
        let y = px(4) + r as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        for &(i, width) in row {
            draw_sample(&legend, &entries[i].0, (x, y)).map_err(e)?;
            legend
                .draw_text(entries[i].1, &text, (x + SAMPLE_WIDTH + px(8), y))
                .map_err(e)?;
            x += width;
        }
    }
    Ok(())
}

/// Draws `figs` as a grid with `cols` columns of `size` panels; returns the SVG text.
fn svg_grid(figs: &[Figure], cols: usize, size: &ImageSize) -> Result<String, String> {
    register_font();
    let cols = cols.clamp(1, figs.len().max(1));
    let rows = figs.len().div_ceil(cols).max(1);
    let mut svg = String::new();
    let (w, h) = (size.width * cols as u32, size.height * rows as u32);
    let canvas = (w * U as u32, h * U as u32);
    {
        let root = SVGBackend::with_string(&mut svg, canvas).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, fig) in root.split_evenly((rows, cols)).iter().zip(figs) {
            draw(area, fig)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    // The document's size in CSS pixels; the drawing keeps its finer units in the viewBox.
    let header = format!("<svg width=\"{}\" height=\"{}\"", canvas.0, canvas.1);
    if !svg.starts_with(&header) {
        return Err("the SVG backend wrote an unexpected header".into());
    }
    Ok(format!(
        "<svg width=\"{w}\" height=\"{h}\"{}",
        &svg[header.len()..]
    ))
}

/// The font database of the rasteriser: the embedded DejaVu Sans as every generic family.
fn fonts() -> Arc<resvg::usvg::fontdb::Database> {
    static DB: OnceLock<Arc<resvg::usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = resvg::usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        db.set_serif_family("DejaVu Sans");
        db.set_monospace_family("DejaVu Sans");
        Arc::new(db)
    })
    .clone()
}

/// Rasterises `svg` (a grid of `rows × cols` panels of `size`) into an anti-aliased PNG.
fn png(svg: &str, rows: usize, cols: usize, size: &ImageSize) -> Result<Vec<u8>, String> {
    let (w, h) = size.png_pixels(rows, cols)?;
    let options = resvg::usvg::Options {
        fontdb: fonts(),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_str(svg, &options)
        .map_err(|e| format!("the figure's SVG does not parse: {e}"))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| format!("cannot allocate a {w} × {h} pixel image"))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    let sx = w as f32 / tree.size().width();
    let sy = h as f32 / tree.size().height();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(sx, sy),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| format!("cannot encode the PNG: {e}"))
}

/// Writes `bytes` to `path` atomically (under a temporary name, then renamed).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = TempPath::beside(path, true).map_err(|e| e.to_string())?;
    std::fs::write(tmp.path(), bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tmp.persist()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes one panel as `DIR/ID.svg`, `DIR/ID.png` and its data as `DIR/ID.json`, each
/// atomically.
pub fn render(fig: &Figure, dir: &Path, size: &ImageSize) -> Result<(), String> {
    render_grid(std::slice::from_ref(fig), 1, &fig.id, dir, size)
}

/// Writes panels as one image, a grid with `cols` columns: `DIR/ID.svg`, `DIR/ID.png` and
/// the panels' data as `DIR/ID.json` (one panel: its object; several: an array), each
/// atomically.
pub fn render_grid(
    figs: &[Figure],
    cols: usize,
    id: &str,
    dir: &Path,
    size: &ImageSize,
) -> Result<(), String> {
    let cols = cols.clamp(1, figs.len().max(1));
    let rows = figs.len().div_ceil(cols).max(1);
    let svg = svg_grid(figs, cols, size)?;
    let png = png(&svg, rows, cols, size)?;
    let json = match figs {
        [one] => serde_json::to_string_pretty(one),
        _ => serde_json::to_string_pretty(figs),
    }
    .map_err(|e| e.to_string())?;
    write_file(&dir.join(format!("{id}.svg")), svg.as_bytes())?;
    write_file(&dir.join(format!("{id}.png")), &png)?;
    write_file(&dir.join(format!("{id}.json")), json.as_bytes())
}

/// Writes panels as one image (a grid with `cols` columns) to `path`, as SVG or PNG by its
/// extension, atomically.
pub fn render_grid_to(
    figs: &[Figure],
    cols: usize,
    path: &Path,
    size: &ImageSize,
) -> Result<(), String> {
    let cols = cols.clamp(1, figs.len().max(1));
    let rows = figs.len().div_ceil(cols).max(1);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => write_file(path, svg_grid(figs, cols, size)?.as_bytes()),
        Some("png") => write_file(path, &png(&svg_grid(figs, cols, size)?, rows, cols, size)?),
        _ => Err(format!(
            "{}: the output must end in .png or .svg",
            path.display()
        )),
    }
}

/// Writes one panel to `path`, as SVG or PNG by its extension, atomically.
pub fn render_to(fig: &Figure, path: &Path, size: &ImageSize) -> Result<(), String> {
    render_grid_to(std::slice::from_ref(fig), 1, path, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_defects_catch_each_kind() {
        let check = |labels: &[&str]| {
            let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            label_defects("t", 1.0, &labels)
        };
        assert!(check(&["0", "0.5", "1"]).is_empty());
        assert!(check(&["10⁻³", "0.01", "0.1"]).is_empty());
        assert_eq!(check(&["-0", "0.5"]).len(), 1);
        assert_eq!(check(&["0.4", "0.4", "0.5"]).len(), 1);
        assert_eq!(check(&["-5.6e-17", "1"]).len(), 1);
        assert_eq!(check(&["1", "0.5"]).len(), 1);
        assert_eq!(check(&["x", "1"]).len(), 1);
        assert_eq!(check(&["1"]).len(), 1);
    }

    #[test]
    fn colour_bar_ticks_are_distinct_increasing_and_placed_on_the_scale() {
        for (lo, hi) in [
            (0.0, 1.0),
            (-0.52, 4.1),
            (0.0, 2500.0),
            (1e-3, 7e5),
            (-3.0, -2.9),
        ] {
            for exponent in [1.0, 0.6, 0.3, 0.1] {
                let ticks = colour_bar_ticks(lo, hi, exponent);
                assert!(ticks.len() >= 2, "{lo} {hi} {exponent}: {ticks:?}");
                for w in ticks.windows(2) {
                    assert!(w[0].0 < w[1].0 && w[1].1 >= w[0].1 + 0.06, "{ticks:?}");
                    assert_ne!(w[0].2, w[1].2, "{ticks:?}");
                }
                for (v, s, _) in &ticks {
                    assert!((lo..=hi).contains(v), "{ticks:?}");
                    assert_eq!(*s, scale_position(*v, lo, hi, exponent));
                }
            }
        }
    }

    #[test]
    fn the_median_sample_sits_mid_scale() {
        // A bowl: L = r² on a square; a valley: most samples far below the range's middle.
        let bowl: Vec<f64> = (0..=40)
            .flat_map(|j| (0..=40).map(move |i| (i as f64 / 20.0 - 1.0, j as f64 / 20.0 - 1.0)))
            .map(|(x, y)| x * x + y * y)
            .collect();
        let a = median_exponent(&bowl, 0.0, 2.0);
        assert!((0.4..0.7).contains(&a), "{a}");
        let mut sorted = bowl.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        assert!((scale_position(median, 0.0, 2.0, a) - 0.5).abs() < 1e-12);
        let valley: Vec<f64> = (0..1000)
            .map(|k| if k < 600 { 0.01 } else { 1000.0 })
            .collect();
        assert_eq!(median_exponent(&valley, 0.0, 1000.0), 0.1);
        assert_eq!(median_exponent(&[1.0, 1.0], 1.0, 1.0), 1.0);
    }

    #[test]
    fn roles_keep_their_colours_and_others_never_take_them() {
        let mut fig = Figure::new("f", "", "", "", (0.0, 1.0), (0.0, 1.0));
        let line = |name: &str| Series {
            name: name.into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            dashed: false,
            role: None,
        };
        for k in 0..9 {
            fig.series.push(line(&format!("family {k}")));
        }
        fig.series.push(line("optimal").with_role(Role::Optimal));
        fig.series.push(line("flow").with_role(Role::GradientFlow));
        fig.markers.push(Marker {
            name: "end".into(),
            at: (0.0, 0.0),
            color_of: Some(9),
            ring: false,
            role: None,
        });
        fig.markers.push(Marker {
            name: "minimum".into(),
            at: (0.0, 0.0),
            color_of: Some(0),
            ring: true,
            role: Some(Role::Minimum),
        });
        let c = colours(&fig);
        let reserved = [
            Role::Optimal,
            Role::GradientFlow,
            Role::NaturalGradient,
            Role::Minimum,
        ]
        .map(Role::colour);
        assert!(c.series[..9].iter().all(|x| !reserved.contains(x)));
        assert_eq!(c.series[9], Role::Optimal.colour());
        assert_eq!(c.series[10], Role::GradientFlow.colour());
        assert_eq!(c.markers, [Role::Optimal.colour(), Role::Minimum.colour()]);
    }

    #[test]
    fn ticks_are_round_and_inside() {
        let (t, d) = nice_ticks(0.0, 1.0, 6);
        assert_eq!(t, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(d, 1);
        let (t, d) = nice_ticks(-0.13, 2.61, 6);
        assert_eq!(d, 1);
        assert!(t.iter().all(|v| (-0.13..=2.61).contains(v)));
        let (t, d) = nice_ticks(0.0, 0.25, 5);
        assert_eq!(t, vec![0.0, 0.05, 0.1, 0.15, 0.2, 0.25]);
        assert_eq!(d, 2);
        assert_eq!(tick_label(-0.0000001 + 1e-7, 2), "0.00");
        assert_eq!(tick_label(-0.004, 2), "0.00");
        let labels = |lo, hi| -> Vec<String> {
            axis_labels(lo, hi, AXIS_LABELS)
                .into_iter()
                .map(|t| t.1)
                .collect()
        };
        // plotters' steps on these ranges: 2, 0.1, 0.05, 0.01.
        assert_eq!(labels(0.0, 16.0)[..3], ["0", "2", "4"]);
        assert_eq!(labels(-0.22, 0.64)[..3], ["-0.2", "-0.1", "0.0"]);
        assert_eq!(labels(0.0, 0.5)[..3], ["0.00", "0.05", "0.10"]);
        assert_eq!(labels(0.67, 0.76)[..2], ["0.67", "0.68"]);
        assert_eq!(labels(-0.93, -0.27)[..2], ["-0.9", "-0.8"]);
        assert_eq!(labels(1e6, 3e6)[..2], ["1.0e6", "1.2e6"]);
        assert_eq!(nice_ticks(0.0, 2.5, 6).1, 1);
        assert_eq!(tick_label(2.5e7, 1), "2.5e7");
    }

    #[test]
    fn long_titles_wrap_and_never_overflow() {
        // A monospace stand-in: 10 px per character per 10 pt.
        let width = |t: &str, size: f64| (t.chars().count() as f64 * size) as i32;
        let (lines, size) = title_lines("short title", 1000, &width);
        assert_eq!((lines.len(), size), (1, 20.0));
        let long = "a rather long problem name that goes on: optimal path and gradient flow";
        let (lines, size) = title_lines(long, 900, &width);
        assert_eq!(lines.len(), 2);
        assert!(
            lines.iter().all(|l| width(l, size) <= 900),
            "{lines:?} at {size}"
        );
        assert_eq!(
            lines.concat().len() + 1,
            long.len(),
            "nothing cut: {lines:?}"
        );
        let (lines, _) = title_lines(&"x".repeat(400), 900, &width);
        assert!(lines.iter().all(|l| width(l, 11.0) <= 900), "{lines:?}");
        assert!(lines[0].ends_with('…'));
    }

    #[test]
    fn sizes_are_checked() {
        assert!(ImageSize::new(100, 600, 96.0).is_err());
        assert!(ImageSize::new(800, 600, 0.0).is_err());
        assert!(ImageSize::new(800, 600, f64::NAN).is_err());
        // 8000 × 8000 at 2400 dpi: 25 times too many pixels.
        assert!(ImageSize::new(8000, 8000, 2400.0).is_err());
        let s = ImageSize::new(800, 600, 192.0).unwrap();
        assert_eq!(s.png_pixels(2, 2).unwrap(), (3200, 2400));
    }
}
