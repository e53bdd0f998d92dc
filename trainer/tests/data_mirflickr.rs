//! The MIRFlickr loader and protocol splits against the data card (section 2) and methods.md 1.9
//! (the file: `data/mirflickr25k/items.csv.gz`). Fails, with a message saying how to get it, when
//! the data are missing.

mod common;

use jdsh_trainer::data::mirflickr;

#[test]
fn counts_and_splits_match_the_data_card() {
    let m = common::mirflickr();
    assert_eq!(m.len(), 20_015);
    let mut counts = [0usize; 24];
    m.labels.sets.iter().flatten().for_each(|&c| counts[c as usize] += 1);
    assert_eq!(
        counts,
        [
            2647, 179, 644, 986, 3230, 581, 4614, 1554, 813, 6320, 704, 4743, 2243, 7848, 7413, 2740, 811,
            1133, 6818, 8463, 1840, 2450, 3981, 2885
        ]
    );
    assert!(m.tags.iter().all(|t| !t.is_empty()) && m.labels.sets.iter().all(|l| !l.is_empty()));
    // Mean tags per item 4.64 (data card).
    let mean = m.tags.iter().map(Vec::len).sum::<usize>() as f64 / m.len() as f64;
    assert!((mean - 4.64).abs() < 0.01, "{mean}");

    let s = m.dcmh_split(mirflickr::DCMH_SEED);
    assert_eq!((s.query.len(), s.retrieval.len(), s.train.len()), (2_000, 18_015, 10_000));
    let in_query: std::collections::HashSet<_> = s.query.iter().collect();
    assert!(s.retrieval.iter().all(|i| !in_query.contains(i)));
    assert!(s.train.iter().all(|i| s.retrieval.binary_search(i).is_ok()));
    assert_eq!(m.dcmh_split(mirflickr::DCMH_SEED), s, "the split is a function of the seed");
    assert_ne!(m.dcmh_split(mirflickr::DCMH_SEED + 1).query, s.query);

    let j = m.jdsh_split(1);
    assert_eq!((j.query.len(), j.train.len(), j.retrieval.len()), (2_000, 5_000, 18_015));
    assert!(j.train.iter().all(|i| j.retrieval.binary_search(i).is_ok()));

    let sparse = m.tag_sparse(&s.query[..3]);
    assert_eq!(sparse.to_dense(), m.tag_matrix(&s.query[..3]));
    assert_eq!(sparse.cols, 1_386);
}
