//! PNG plots with plotters: scatter plots of 2-D samples against a reference.

use anyhow::{anyhow, Result};
use ndarray::ArrayView2;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Registers a sans-serif TrueType font for titles and labels (DejaVu Sans or Liberation Sans
/// from the system font folders). Returns `false` when none is installed; plots then carry no
/// text, but are still drawn.
pub fn fonts_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        const CANDIDATES: &[&str] = &[
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ];
        for path in CANDIDATES {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// One set of points in a scatter panel.
pub struct Series<'a> {
    /// Points as rows (the first two columns are plotted).
    pub points: ArrayView2<'a, f64>,
    /// RGB colour.
    pub color: (u8, u8, u8),
}

/// Writes a grid of scatter panels (one per `(title, series)`) sharing the axis range `lim`
/// (`[-lim, lim]` on both axes) to a PNG file.
pub fn scatter_panels(
    path: &Path,
    panels: &[(String, Vec<Series<'_>>)],
    lim: f64,
    cols: usize,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (320 * cols as u32, 320 * rows as u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let areas = root.split_evenly((rows, cols));
    let text = fonts_available();
    for ((title, series), area) in panels.iter().zip(areas.iter()) {
        let mut builder = ChartBuilder::on(area);
        builder.margin(6);
        if text {
            builder
                .caption(title, ("sans-serif", 16))
                .x_label_area_size(18)
                .y_label_area_size(24);
        }
        let mut chart = builder
            .build_cartesian_2d(-lim..lim, -lim..lim)
            .map_err(|e| anyhow!("plot: {e}"))?;
        if text {
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(5)
                .y_labels(5)
                .draw()
                .map_err(|e| anyhow!("plot: {e}"))?;
        }
        for s in series {
            let color = RGBColor(s.color.0, s.color.1, s.color.2).mix(0.35);
            chart
                .draw_series(
                    s.points
                        .rows()
                        .into_iter()
                        .filter(|r| r.len() >= 2 && r[0].abs() <= lim && r[1].abs() <= lim)
                        .map(|r| Circle::new((r[0], r[1]), 1, color.filled())),
                )
                .map_err(|e| anyhow!("plot: {e}"))?;
        }
    }
    root.present()
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}
