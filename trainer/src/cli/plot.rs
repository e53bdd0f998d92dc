//! Precision-recall curves (one point per Hamming radius) as an SVG file: the report page's
//! chart ([`crate::report::pr_chart`]), written alone.

use std::path::Path;

use crate::eval::PrPoint;
use crate::report::pr_chart;

/// Draws one line per `(label, points)` into `path`.
pub fn pr_svg(path: &Path, title: &str, curves: &[(&str, &[PrPoint])]) -> Result<(), String> {
    std::fs::write(path, pr_chart::svg(title, curves)).map_err(|e| format!("{}: {e}", path.display()))
}
