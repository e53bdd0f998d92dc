//! A report page: what models find, shown as pictures. One self-contained HTML file (images as
//! data URIs, charts as inline SVG, no script, no network) with, per model side by side: the
//! images found for text queries, the texts found for a few images, held-out MAP and the
//! precision-recall curves. The extension fills a [`Page`] from SQL (`jdsh.report`); this module
//! only renders it, so it is tested without a database.

pub mod html;
pub mod pr_chart;

use std::fmt::Write;

use html::{escape, img};

use crate::eval;

/// A model shown on the page (one column per model in every section).
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub name: String,
    pub version: i32,
    pub method: String,
    pub bits: usize,
}

/// One image a model returned.
#[derive(Debug, Clone)]
pub struct ImageHit {
    pub caption: String,
    pub image: Vec<u8>,
    pub distance: u32,
}

/// A text query and, per model (in [`Page::models`] order), the images it found, nearest first.
#[derive(Debug, Clone)]
pub struct TextQuery {
    pub text: String,
    pub hits: Vec<Vec<ImageHit>>,
}

/// One text a model returned.
#[derive(Debug, Clone)]
pub struct TextHit {
    pub text: String,
    pub distance: u32,
}

/// An image query and, per model, the texts it found, nearest first.
#[derive(Debug, Clone)]
pub struct ImageQuery {
    pub caption: String,
    pub image: Vec<u8>,
    pub hits: Vec<Vec<TextHit>>,
}

/// One retrieval direction measured for every model (in [`Page::models`] order).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// E.g. "text->image".
    pub direction: String,
    pub reports: Vec<eval::Report>,
}

/// Everything the page shows. Empty sections are left out.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub title: String,
    /// One line under the title (where the data came from, how it was ranked).
    pub subtitle: String,
    pub models: Vec<ModelCard>,
    pub image_search: Vec<TextQuery>,
    pub text_search: Vec<ImageQuery>,
    pub evaluation: Vec<Evaluation>,
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px}h2{margin-top:32px;border-bottom:1px solid #ccc}h3{margin:18px 0 6px}
.sub{color:#666;margin:0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.models{display:grid;gap:12px}
.model{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
.model h4{margin:0 0 6px;font-size:13px;color:#555}
ol.images{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px}
ol.images figure{margin:0;width:92px;text-align:center}
ol.images img,.query-image img{width:64px;height:64px;object-fit:contain;image-rendering:auto}
figcaption{font-size:10px;line-height:1.2;overflow-wrap:break-word}
.d{display:block;color:#888}
ol.texts{margin:0;padding-left:20px;font-size:13px}
.image-query{display:grid;grid-template-columns:120px 1fr;gap:12px;align-items:start}
.query-image{text-align:center;margin:0}
.no-image{width:64px;height:64px;background:#eee;font-size:9px;display:inline-block}
.charts{display:flex;flex-wrap:wrap;gap:16px}
";

fn grid(columns: usize) -> String {
    format!(
        r#"<div class="models" style="grid-template-columns:repeat({}, minmax(0, 1fr))">"#,
        columns.max(1)
    )
}

fn model_label(m: &ModelCard) -> String {
    format!("{} (v{}, {}, {} bits)", m.name, m.version, m.method, m.bits)
}

fn model_name(page: &Page, i: usize) -> String {
    page.models.get(i).map(model_label).unwrap_or_else(|| format!("model {}", i + 1))
}

fn models_section(page: &Page, s: &mut String) {
    s.push_str(r#"<section id="models"><h2>Models</h2><table><tr><th>model</th><th>version</th><th>method</th><th>bits</th></tr>"#);
    for m in &page.models {
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td class="num">{}</td><td>{}</td><td class="num">{}</td></tr>"#,
            escape(&m.name),
            m.version,
            escape(&m.method),
            m.bits
        );
    }
    s.push_str("</table></section>");
}

/// One column per model, side by side: the model's name over the list of what it returned,
/// each hit rendered by `item` into an `<li>`.
fn model_columns<T>(page: &Page, s: &mut String, hits: &[Vec<T>], list: &str, item: impl Fn(&T) -> String) {
    s.push_str(&grid(hits.len()));
    for (i, model_hits) in hits.iter().enumerate() {
        let _ =
            write!(s, r#"<div class="model"><h4>{}</h4><ol class="{list}">"#, escape(&model_name(page, i)));
        for h in model_hits {
            let _ = write!(s, "<li>{}</li>", item(h));
        }
        s.push_str("</ol></div>");
    }
    s.push_str("</div>");
}

fn image_search_section(page: &Page, s: &mut String) {
    s.push_str(r#"<section id="image-search"><h2>Images found by text</h2>"#);
    for q in &page.image_search {
        let _ = write!(s, r#"<div class="text-query"><h3>“{}”</h3>"#, escape(&q.text));
        model_columns(page, s, &q.hits, "images", |h| {
            format!(
                r#"<figure>{}<figcaption>{}<span class="d">distance {}</span></figcaption></figure>"#,
                img(&h.image, &h.caption),
                escape(&h.caption),
                h.distance
            )
        });
        s.push_str("</div>");
    }
    s.push_str("</section>");
}

fn text_search_section(page: &Page, s: &mut String) {
    s.push_str(r#"<section id="text-search"><h2>Texts found by image</h2>"#);
    for q in &page.text_search {
        let _ = write!(
            s,
            r#"<div class="image-query"><figure class="query-image">{}<figcaption>{}</figcaption></figure>"#,
            img(&q.image, &q.caption),
            escape(&q.caption)
        );
        model_columns(page, s, &q.hits, "texts", |h| {
            format!(r#"{} <span class="d">distance {}</span>"#, escape(&h.text), h.distance)
        });
        s.push_str("</div>");
    }
    s.push_str("</section>");
}

fn evaluation_section(page: &Page, s: &mut String) {
    s.push_str(r#"<section id="evaluation"><h2>Held-out quality</h2><table><tr><th>model</th>"#);
    for e in &page.evaluation {
        let _ = write!(s, "<th>{} MAP@all</th>", escape(&e.direction));
    }
    s.push_str("</tr>");
    for i in 0..page.models.len() {
        let _ = write!(s, "<tr><td>{}</td>", escape(&model_label(&page.models[i])));
        for e in &page.evaluation {
            match e.reports.get(i) {
                Some(r) => {
                    let _ = write!(s, r#"<td class="num">{:.3}</td>"#, r.map_all);
                }
                None => s.push_str("<td></td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    if let Some(r) = page.evaluation.iter().flat_map(|e| e.reports.first()).next() {
        let _ = write!(
            s,
            r#"<p class="sub">MAP over all retrieval items, Hamming ranking; e.g. {} queries against {} items. One point per Hamming radius on the curves.</p>"#,
            r.queries, r.retrieval
        );
    }
    s.push_str(r#"<div class="charts">"#);
    for e in &page.evaluation {
        // Legends name the models only: the table above gives their details.
        let labels: Vec<String> = (0..e.reports.len())
            .map(|i| page.models.get(i).map_or_else(|| format!("model {}", i + 1), |m| m.name.clone()))
            .collect();
        let curves: Vec<(&str, &[eval::PrPoint])> = e
            .reports
            .iter()
            .zip(&labels)
            .map(|(r, l)| (l.as_str(), r.pr_curve.as_deref().unwrap_or(&[])))
            .collect();
        s.push_str(&pr_chart::svg(&format!("{} precision-recall", e.direction), &curves));
    }
    s.push_str("</div></section>");
}

/// The page as one HTML document.
pub fn render(page: &Page) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="generator" content="jdsh {}"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p class="sub">{}</p>"#,
        env!("CARGO_PKG_VERSION"),
        escape(&page.title),
        escape(&page.title),
        escape(&page.subtitle)
    );
    if !page.models.is_empty() {
        models_section(page, &mut s);
    }
    if !page.image_search.is_empty() {
        image_search_section(page, &mut s);
    }
    if !page.text_search.is_empty() {
        text_search_section(page, &mut s);
    }
    if !page.evaluation.is_empty() {
        evaluation_section(page, &mut s);
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\nfake";

    fn report(map: f64) -> eval::Report {
        eval::Report {
            queries: 3,
            retrieval: 10,
            map_all: map,
            map_at: vec![],
            precision_at: vec![],
            precision_radius2: None,
            pr_curve: Some(vec![eval::PrPoint { radius: 0, precision: 1.0, recall: 0.1 }]),
        }
    }

    fn page() -> Page {
        let card = |name: &str| ModelCard { name: name.into(), version: 2, method: "dcmh".into(), bits: 64 };
        let hit = |c: &str, d| ImageHit { caption: c.into(), image: PNG.to_vec(), distance: d };
        Page {
            title: "emoji <demo>".into(),
            subtitle: "facebook images".into(),
            models: vec![card("a"), card("b")],
            image_search: vec![TextQuery {
                text: "red fruit".into(),
                hits: vec![vec![hit("RED APPLE", 3), hit("CHERRIES", 5)], vec![hit("TOMATO", 4)]],
            }],
            text_search: vec![ImageQuery {
                caption: "CAT FACE".into(),
                image: PNG.to_vec(),
                hits: vec![vec![TextHit { text: "cat pet".into(), distance: 2 }], vec![]],
            }],
            evaluation: vec![
                Evaluation { direction: "text->image".into(), reports: vec![report(0.4), report(0.5)] },
                Evaluation { direction: "image->text".into(), reports: vec![report(0.25), report(0.75)] },
            ],
        }
    }

    #[test]
    fn every_section_model_and_hit_is_on_the_page() {
        let s = render(&page());
        for id in ["models", "image-search", "text-search", "evaluation"] {
            assert!(s.contains(&format!(r#"<section id="{id}">"#)), "section {id}");
        }
        // 3 image hits + 1 image query, all embedded.
        assert_eq!(s.matches("<img src=\"data:image/png;base64,").count(), 4);
        assert!(s.contains("RED APPLE") && s.contains("TOMATO") && s.contains("cat pet"));
        assert!(s.contains("a (v2, dcmh, 64 bits)") && s.contains("b (v2, dcmh, 64 bits)"));
        assert!(s.contains(r#"<td class="num">0.750</td>"#) && s.contains(r#"<td class="num">0.400</td>"#));
        assert_eq!(s.matches("<svg").count(), 2);
        assert_eq!(s.matches("<polyline").count(), 4);
        assert!(s.contains("<title>emoji &lt;demo&gt;</title>"));
        assert!(!s.contains("<script") && !s.contains("http://www.w3.org/1999") && !s.contains("https:"));
    }

    #[test]
    fn empty_sections_are_left_out() {
        let p = Page { title: "t".into(), ..Default::default() };
        let s = render(&p);
        assert!(!s.contains("<section"));
        assert!(s.starts_with("<!DOCTYPE html>") && s.trim_end().ends_with("</html>"));
    }
}
