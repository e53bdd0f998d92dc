//! Precision-recall curves (one point per Hamming radius) as an SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::eval::PrPoint;

/// Draws one line per `(label, points)` into `path`.
pub fn pr_svg(path: &Path, title: &str, curves: &[(&str, &[PrPoint])]) -> Result<(), String> {
    let root = SVGBackend::new(path, (640, 480)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc("recall").y_desc("precision").draw().map_err(|e| err(&e))?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (k, (label, points)) in curves.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let series = points.iter().map(|p| (p.recall, p.precision));
        chart
            .draw_series(LineSeries::new(series, colour))
            .map_err(|e| err(&e))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
