//! Grouped bar charts as PNG, for evaluation reports.

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;

/// Fonts tried in turn; Debian's fonts-dejavu-core provides the first.
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// One series of bars: a name and one value per group.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(120, 144, 156),
    RGBColor(30, 136, 229),
    RGBColor(67, 160, 71),
    RGBColor(251, 140, 0),
];

/// Draws `series` as horizontal bars grouped by `groups` (values in 0..=1, the axis
/// named `measure`) into a PNG at `path`. Horizontal, so long group names stay readable.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    measure: &str,
    groups: &[String],
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    grouped_bars_to(path, title, measure, groups, series, 1.0)
}

/// [`grouped_bars`] with the value axis running from 0 to `x_max`.
pub fn grouped_bars_to(
    path: &Path,
    title: &str,
    measure: &str,
    groups: &[String],
    series: &[Series<'_>],
    x_max: f64,
) -> anyhow::Result<()> {
    register_font()?;
    let per_group = series.len() + 1;
    let slots = groups.len() * per_group;
    let height = 120 + 14 * slots as u32;
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(200)
        .build_cartesian_2d(0.0..x_max, 0..slots)?;
    // Slot 0 is at the bottom; list groups top to bottom in their given order.
    let group_at = |slot: usize| groups.len().checked_sub(1 + slot / per_group);
    let label_of = |slot: &usize| match (slot % per_group == per_group / 2, group_at(*slot)) {
        (true, Some(group)) => groups[group].clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(slots)
        .y_label_formatter(&label_of)
        .y_label_style(("sans-serif", 15))
        .x_desc(measure)
        .x_label_style(("sans-serif", 15))
        .draw()?;
    for (index, s) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let bars = s.values.iter().enumerate().map(move |(group, &value)| {
            let y = (groups.len() - 1 - group) * per_group + (series.len() - index);
            Rectangle::new(
                [(0.0, y), (value.clamp(0.0, x_max), y + 1)],
                colour.filled(),
            )
        });
        chart
            .draw_series(bars)?
            .label(s.name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))
}

/// Registers the first font found as "sans-serif" (once per process).
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONT_FILES
                .iter()
                .find_map(|path| std::fs::read(path).ok())
                .ok_or("no font found for charts; install Debian's fonts-dejavu-core")?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "cannot read the chart font".to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
