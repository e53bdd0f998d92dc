//! `jdsh-train export`: the SQL script of a data set has the right shape, row count and values
//! (COPY text format; floats that read back to the same f32).

mod common;

use jdsh_trainer::cli::export::{self, copy_escape};

/// Undoes COPY text-format escaping of one field (the inverse of `copy_escape` for the escapes it
/// emits).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut cs = field.chars();
    while let Some(c) = cs.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match cs.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            other => panic!("unexpected escape \\{other:?} in {field:?}"),
        }
    }
    out
}

#[test]
fn copy_escaping_round_trips() {
    for s in
        ["", "plain", "tab\there", "line\nbreak", "cr\rlf\r\n", "back\\slash", "\\N", "\\.", "emoji 😀\t"]
    {
        let e = copy_escape(s);
        assert!(!e.contains(['\t', '\n', '\r']), "{e:?}");
        assert_eq!(unescape(&e), s);
    }
}

#[test]
fn wikipedia_script_has_every_pair_once_with_exact_values() {
    let train = common::wikipedia_split("train");
    let test = common::wikipedia_split("test");
    let mut buf = Vec::new();
    let rows = export::write_wikipedia(&train, &test, "wiki_t", &mut buf).unwrap();
    assert_eq!(rows, 2_173 + 693);
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let copy = lines
        .iter()
        .position(|l| l.starts_with("COPY wiki_t (id, split, image, text, label) FROM stdin;"))
        .unwrap();
    assert!(lines[..copy].iter().any(|l| l.starts_with("CREATE TABLE wiki_t (")));
    assert_eq!(lines.last(), Some(&"\\."));
    let data = &lines[copy + 1..lines.len() - 1];
    assert_eq!(data.len(), 2_866);
    assert_eq!(data.iter().filter(|l| l.split('\t').nth(1) == Some("train")).count(), 2_173);
    assert_eq!(data.iter().filter(|l| l.split('\t').nth(1) == Some("test")).count(), 693);
    // Every value reads back bit-identical.
    for (k, line) in data.iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5);
        let (split, i) = if k < 2_173 { (&train, k) } else { (&test, k - 2_173) };
        assert_eq!(f[0].parse::<u32>().unwrap(), split.ids[i]);
        let arr = |s: &str| -> Vec<u32> {
            s.strip_prefix('{')
                .unwrap()
                .strip_suffix('}')
                .unwrap()
                .split(',')
                .map(|x| x.parse::<f32>().unwrap().to_bits())
                .collect()
        };
        assert_eq!(arr(f[2]), split.image.row(i).iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        assert_eq!(arr(f[3]), split.text.row(i).iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        assert_eq!(f[4].parse::<u32>().unwrap(), split.labels.sets[i][0]);
    }
}

#[test]
fn bad_table_names_and_datasets_are_refused() {
    let mut sink = Vec::new();
    assert!(export::export_named("wikipedia", Some("x; drop table y"), &mut sink).is_err());
    assert!(export::export_named("mirflickr", None, &mut sink).is_err());
    assert!(sink.is_empty(), "nothing is written before the arguments are checked");
}
