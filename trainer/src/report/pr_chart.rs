//! Precision-recall curves (one point per Hamming radius) drawn as SVG text, without a plotting
//! library: the report page embeds the chart inline and the CLI writes it to a file.

use std::fmt::Write;

use super::html::escape;
use crate::eval::PrPoint;

/// Line colours, one per curve (colour-blind-safe Okabe-Ito hues).
const COLOURS: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;

fn x(recall: f64) -> f64 {
    LEFT + recall.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
}

fn y(precision: f64) -> f64 {
    HEIGHT - BOTTOM - precision.clamp(0.0, 1.0) * (HEIGHT - TOP - BOTTOM)
}

/// One chart: recall on x, precision on y, both 0..1, one polyline (with a dot per radius) per
/// `(label, points)`, and a legend. Non-finite points are skipped.
pub fn svg(title: &str, curves: &[(&str, &[PrPoint])]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="pr-chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>"##);
    let _ = write!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for t in 0..=5 {
        let v = t as f64 / 5.0;
        let (gx, gy) = (x(v), y(v));
        let _ = write!(
            s,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{:.1}" stroke="#e4e4e4"/><line x1="{:.1}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#e4e4e4"/>"##,
            y(0.0),
            y(1.0),
            x(0.0),
            x(1.0)
        );
        let _ = write!(
            s,
            r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{v:.1}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"#,
            y(0.0) + 15.0,
            x(0.0) - 6.0,
            gy + 4.0
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        x(0.0),
        y(1.0),
        x(1.0) - x(0.0),
        y(0.0) - y(1.0)
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">recall</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">precision</text>"#,
        (x(0.0) + x(1.0)) / 2.0,
        HEIGHT - 8.0,
        (y(0.0) + y(1.0)) / 2.0
    );
    for (k, (label, points)) in curves.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.recall.is_finite() && p.precision.is_finite())
            .map(|p| (x(p.recall), y(p.precision)))
            .collect();
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = write!(
            s,
            r#"<polyline class="curve" data-label="{}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            escape(label),
            path.join(" ")
        );
        for (a, b) in &pts {
            let _ = write!(s, r#"<circle cx="{a:.1}" cy="{b:.1}" r="1.8" fill="{colour}"/>"#);
        }
        // Legend in the top right corner, where precision-recall curves rarely pass.
        let longest = curves.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0) as f64;
        let ly = y(1.0) + 14.0 + 16.0 * k as f64;
        let lx = x(1.0) - 34.0 - 6.2 * longest;
        let _ = write!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 18.0,
            lx + 24.0,
            ly + 4.0,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(radius: u32, precision: f64, recall: f64) -> PrPoint {
        PrPoint { radius, precision, recall }
    }

    #[test]
    fn one_polyline_per_curve_with_every_finite_point() {
        let a = [p(0, 1.0, 0.0), p(1, 0.5, 0.5), p(2, 0.25, 1.0)];
        let b = [p(0, f64::NAN, 0.0), p(1, 0.2, 1.0)];
        let s = svg("t <&>", &[("image->text", &a), ("text->image", &b)]);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        // Corners of the plot area: (recall 0, precision 1) and (1, 0.25).
        assert!(s.contains(&format!("{:.1},{:.1}", x(0.0), y(1.0))));
        assert!(s.contains(&format!("{:.1},{:.1}", x(1.0), y(0.25))));
        // The NaN point is skipped: b draws one point only.
        assert_eq!(s.matches("<circle").count(), 4);
        assert!(s.contains("t &lt;&amp;&gt;") && s.contains("image-&gt;text"));
    }
}
