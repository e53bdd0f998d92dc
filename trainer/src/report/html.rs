//! The small pieces of HTML the report is built from: escaping and images as data URIs.

use base64::Engine;

/// `s` with the five characters that matter in HTML text and attribute values escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The media type of image bytes a browser shows, from their signature (None: not an image
/// format the page can embed).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// An `<img>` with the bytes inline (so the page needs no server and no network), or a
/// placeholder saying why there is no picture.
pub fn img(bytes: &[u8], alt: &str) -> String {
    match image_type(bytes) {
        Some(mime) => format!(
            r#"<img src="data:{mime};base64,{}" alt="{}">"#,
            base64::engine::general_purpose::STANDARD.encode(bytes),
            escape(alt)
        ),
        None => format!(r#"<div class="no-image" title="{}">not PNG, JPEG, GIF or WebP</div>"#, escape(alt)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom's & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/a&gt;"
        );
        assert_eq!(escape("plain text ✓"), "plain text ✓");
    }

    #[test]
    fn recognises_image_signatures() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some("image/jpeg"));
        assert_eq!(image_type(b"GIF89a"), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"%PDF-1.7"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn embeds_images_as_data_uris() {
        let tag = img(b"\x89PNG\r\n\x1a\n", "a \"cat\"");
        assert_eq!(tag, r#"<img src="data:image/png;base64,iVBORw0KGgo=" alt="a &quot;cat&quot;">"#);
        assert!(img(b"not an image", "x").contains("no-image"));
    }
}
