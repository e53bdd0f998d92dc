//! Retrieval metrics for binary codes (Hamming ranking) and for real-valued embeddings (cosine
//! ranking), over a query set and a retrieval set with labels; and a model on a whole benchmark
//! ([`evaluate`], [`evaluate_named`], in `benchmark.rs`).
//!
//! Conventions (state them with every number):
//! - Relevant: the query and the item share at least one label ([`Labels::relevant`]).
//! - Ranking: ascending Hamming distance, ties broken by retrieval index (a stable sort by
//!   `(distance, index)`); for embeddings, descending cosine similarity, ties by index.
//! - AP@k of a query = (1 / R_k) * sum over the relevant positions r <= k of (hits up to r) / r,
//!   where R_k is the number of relevant items *retrieved in the top k* (the DJSRH / JDSH
//!   `calculate_top_map` convention, not min(k, #relevant)). A query with R_k = 0 scores 0 and still
//!   counts. MAP@k is the mean over all queries; MAP@all is MAP@k with k = retrieval size (then R_k is
//!   the number of relevant items, the usual AP).
//! - P@k = (relevant in the top k) / k (k larger than the retrieval set is clipped to it).
//! - Hamming-radius metrics do not depend on ties: the items within radius r are a set.
//!   Precision within radius r averages over all queries and scores 0 for a query that retrieves
//!   nothing (the ITQ / spectral-hashing evaluation convention). The PR curve has one point per
//!   radius 0..=nbits: precision averaged over the queries that retrieve at least one item, recall
//!   averaged over the queries that have at least one relevant item.

mod benchmark;

pub use benchmark::{evaluate, evaluate_named, EvalReport};

use jdsh_core::code::{hamming, Code};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Labels, Matrix};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("{what}: {items} items but {labels} label sets")]
    LabelCount { what: &'static str, items: usize, labels: usize },
    #[error("codes of different lengths: {a} and {b} bits")]
    CodeLength { a: u32, b: u32 },
    #[error("embeddings of different dimensions: {a} and {b}")]
    Dim { a: usize, b: usize },
    #[error("the retrieval set is empty")]
    EmptyRetrieval,
    #[error("embedding value is not finite")]
    NotFinite,
}

/// One point of the precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub radius: u32,
    pub precision: f64,
    pub recall: f64,
}

/// Ranking metrics of one direction (e.g. image -> text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub queries: usize,
    pub retrieval: usize,
    pub map_all: f64,
    /// (k, MAP@k) for the requested k.
    pub map_at: Vec<(usize, f64)>,
    /// (k, P@k) for the requested k.
    pub precision_at: Vec<(usize, f64)>,
    /// Hamming-only metrics (None for embeddings).
    pub precision_radius2: Option<f64>,
    pub pr_curve: Option<Vec<PrPoint>>,
}

/// Labels as bit sets, so that a relevance test is a few word ANDs.
struct LabelBits {
    words: usize,
    bits: Vec<u64>,
}

impl LabelBits {
    fn new(l: &Labels, classes: usize) -> Self {
        let words = classes.div_ceil(64).max(1);
        let mut bits = vec![0u64; words * l.len()];
        for (i, set) in l.sets.iter().enumerate() {
            for &c in set {
                let c = c as usize;
                if c < words * 64 {
                    bits[i * words + c / 64] |= 1 << (c % 64);
                }
            }
        }
        LabelBits { words, bits }
    }

    fn row(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }
}

fn relevance(ql: &Labels, rl: &Labels) -> (LabelBits, LabelBits) {
    // Largest class index actually used, so hand-built Labels with a wrong `classes` still work.
    let max_used = ql.sets.iter().chain(&rl.sets).flatten().map(|&c| c as usize + 1).max().unwrap_or(0);
    let classes = ql.classes.max(rl.classes).max(max_used);
    (LabelBits::new(ql, classes), LabelBits::new(rl, classes))
}

fn shares(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

/// Retrieval indices in Hamming-ranking order: ascending distance, ties by index. A counting sort
/// by distance (distances are 0..=nbits), stable, so O(n + nbits).
pub fn hamming_ranking(query: &Code, retrieval: &[Code]) -> Vec<u32> {
    let dist: Vec<u32> = retrieval.iter().map(|r| hamming(query.bytes(), r.bytes())).collect();
    order_by_distance(&dist, query.nbits())
}

fn order_by_distance(dist: &[u32], nbits: u32) -> Vec<u32> {
    let mut start = vec![0usize; nbits as usize + 2];
    for &d in dist {
        start[d as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut order = vec![0u32; dist.len()];
    for (j, &d) in dist.iter().enumerate() {
        order[start[d as usize]] = j as u32;
        start[d as usize] += 1;
    }
    order
}

/// Per-query numbers, summed over queries afterwards (in query order, so results are identical
/// whatever the thread count).
struct QueryStats {
    ap_all: f64,
    ap_at: Vec<f64>,
    p_at: Vec<f64>,
    /// Per radius: relevant within radius, retrieved within radius; plus total relevant.
    radius: Option<(Vec<u32>, Vec<u32>, u32)>,
}

fn ranked_stats(rel_in_order: &[bool], ks: &[usize], pks: &[usize]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = rel_in_order.len();
    let mut hits = 0usize;
    let mut sum = 0f64;
    // hits and AP sums at every prefix length we need.
    let mut prefix_hits = vec![0usize; n + 1];
    let mut prefix_sum = vec![0f64; n + 1];
    for (r, &rel) in rel_in_order.iter().enumerate() {
        if rel {
            hits += 1;
            sum += hits as f64 / (r + 1) as f64;
        }
        prefix_hits[r + 1] = hits;
        prefix_sum[r + 1] = sum;
    }
    let ap = |k: usize| {
        let k = k.min(n);
        if prefix_hits[k] == 0 {
            0.0
        } else {
            prefix_sum[k] / prefix_hits[k] as f64
        }
    };
    let p = |k: usize| {
        let k = k.min(n);
        if k == 0 {
            0.0
        } else {
            prefix_hits[k] as f64 / k as f64
        }
    };
    (ap(n), ks.iter().map(|&k| ap(k)).collect(), pks.iter().map(|&k| p(k)).collect())
}

fn check_labels(what: &'static str, items: usize, l: &Labels) -> Result<(), EvalError> {
    if items != l.len() {
        return Err(EvalError::LabelCount { what, items, labels: l.len() });
    }
    Ok(())
}

fn check_codes(query: &[Code], retrieval: &[Code]) -> Result<u32, EvalError> {
    let nbits = retrieval.first().ok_or(EvalError::EmptyRetrieval)?.nbits();
    for c in query.iter().chain(retrieval) {
        if c.nbits() != nbits {
            return Err(EvalError::CodeLength { a: nbits, b: c.nbits() });
        }
    }
    Ok(nbits)
}

/// All metrics of one direction with Hamming ranking. `map_ks` and `precision_ks` choose the k of
/// MAP@k and P@k.
pub fn evaluate_codes(
    query: &[Code],
    retrieval: &[Code],
    query_labels: &Labels,
    retrieval_labels: &Labels,
    map_ks: &[usize],
    precision_ks: &[usize],
) -> Result<Report, EvalError> {
    check_labels("queries", query.len(), query_labels)?;
    check_labels("retrieval set", retrieval.len(), retrieval_labels)?;
    let nbits = check_codes(query, retrieval)?;
    let (qb, rb) = relevance(query_labels, retrieval_labels);
    let stats: Vec<QueryStats> = query
        .par_iter()
        .enumerate()
        .map(|(i, q)| {
            let dist: Vec<u32> = retrieval.iter().map(|r| hamming(q.bytes(), r.bytes())).collect();
            let order = order_by_distance(&dist, nbits);
            let rel: Vec<bool> = (0..retrieval.len()).map(|j| shares(qb.row(i), rb.row(j))).collect();
            let in_order: Vec<bool> = order.iter().map(|&j| rel[j as usize]).collect();
            let (ap_all, ap_at, p_at) = ranked_stats(&in_order, map_ks, precision_ks);
            let mut rel_at = vec![0u32; nbits as usize + 1];
            let mut all_at = vec![0u32; nbits as usize + 1];
            for (j, &d) in dist.iter().enumerate() {
                all_at[d as usize] += 1;
                rel_at[d as usize] += rel[j] as u32;
            }
            for r in 1..=nbits as usize {
                all_at[r] += all_at[r - 1];
                rel_at[r] += rel_at[r - 1];
            }
            let total = rel_at[nbits as usize];
            QueryStats { ap_all, ap_at, p_at, radius: Some((rel_at, all_at, total)) }
        })
        .collect();
    Ok(summarise(&stats, retrieval.len(), map_ks, precision_ks, Some(nbits)))
}

fn summarise(
    stats: &[QueryStats],
    retrieval: usize,
    map_ks: &[usize],
    pks: &[usize],
    nbits: Option<u32>,
) -> Report {
    let nq = stats.len().max(1) as f64;
    let mean = |f: &dyn Fn(&QueryStats) -> f64| stats.iter().map(f).sum::<f64>() / nq;
    let map_at = map_ks.iter().enumerate().map(|(t, &k)| (k, mean(&|s| s.ap_at[t]))).collect();
    let precision_at = pks.iter().enumerate().map(|(t, &k)| (k, mean(&|s| s.p_at[t]))).collect();
    let (mut precision_radius2, mut pr_curve) = (None, None);
    if let Some(nbits) = nbits {
        let within = |s: &QueryStats, r: usize| {
            s.radius.as_ref().map_or((0, 0, 0), |(rel, all, t)| (rel[r], all[r], *t))
        };
        let r2 = 2.min(nbits as usize);
        precision_radius2 = Some(mean(&|s| {
            let (rel, all, _) = within(s, r2);
            if all == 0 {
                0.0
            } else {
                rel as f64 / all as f64
            }
        }));
        let curve = (0..=nbits as usize)
            .map(|r| {
                let (mut p, mut np, mut rc, mut nr) = (0f64, 0usize, 0f64, 0usize);
                for s in stats {
                    let (rel, all, total) = within(s, r);
                    if all > 0 {
                        p += rel as f64 / all as f64;
                        np += 1;
                    }
                    if total > 0 {
                        rc += rel as f64 / total as f64;
                        nr += 1;
                    }
                }
                PrPoint {
                    radius: r as u32,
                    precision: if np > 0 { p / np as f64 } else { 0.0 },
                    recall: if nr > 0 { rc / nr as f64 } else { 0.0 },
                }
            })
            .collect();
        pr_curve = Some(curve);
    }
    Report {
        queries: stats.len(),
        retrieval,
        map_all: mean(&|s| s.ap_all),
        map_at,
        precision_at,
        precision_radius2,
        pr_curve,
    }
}

/// MAP@k with Hamming ranking (`k = None`: MAP@all). See the module comment for the convention.
pub fn map_at(
    query: &[Code],
    retrieval: &[Code],
    query_labels: &Labels,
    retrieval_labels: &Labels,
    k: Option<usize>,
) -> Result<f64, EvalError> {
    let k = k.unwrap_or(retrieval.len());
    let r = evaluate_codes(query, retrieval, query_labels, retrieval_labels, &[k], &[])?;
    Ok(r.map_at[0].1)
}

/// P@k with Hamming ranking.
pub fn precision_at_k(
    query: &[Code],
    retrieval: &[Code],
    query_labels: &Labels,
    retrieval_labels: &Labels,
    k: usize,
) -> Result<f64, EvalError> {
    Ok(evaluate_codes(query, retrieval, query_labels, retrieval_labels, &[], &[k])?.precision_at[0].1)
}

/// Mean precision of the items within Hamming radius `radius` (0 for a query that gets none).
pub fn precision_within_radius(
    query: &[Code],
    retrieval: &[Code],
    query_labels: &Labels,
    retrieval_labels: &Labels,
    radius: u32,
) -> Result<f64, EvalError> {
    check_labels("queries", query.len(), query_labels)?;
    check_labels("retrieval set", retrieval.len(), retrieval_labels)?;
    check_codes(query, retrieval)?;
    let (qb, rb) = relevance(query_labels, retrieval_labels);
    let per: Vec<f64> = query
        .par_iter()
        .enumerate()
        .map(|(i, q)| {
            let (mut rel, mut all) = (0usize, 0usize);
            for (j, r) in retrieval.iter().enumerate() {
                if hamming(q.bytes(), r.bytes()) <= radius {
                    all += 1;
                    rel += shares(qb.row(i), rb.row(j)) as usize;
                }
            }
            if all == 0 {
                0.0
            } else {
                rel as f64 / all as f64
            }
        })
        .collect();
    Ok(per.iter().sum::<f64>() / per.len().max(1) as f64)
}

/// Precision-recall curve, one point per Hamming radius 0..=nbits.
pub fn pr_curve(
    query: &[Code],
    retrieval: &[Code],
    query_labels: &Labels,
    retrieval_labels: &Labels,
) -> Result<Vec<PrPoint>, EvalError> {
    let r = evaluate_codes(query, retrieval, query_labels, retrieval_labels, &[], &[])?;
    Ok(r.pr_curve.unwrap_or_default())
}

/// Indices of the retrieval rows by descending cosine similarity to `q` (already unit-norm rows),
/// ties by index.
fn cosine_order(q: &[f32], retrieval: &Matrix) -> Vec<u32> {
    let sims: Vec<f32> = (0..retrieval.rows).map(|j| dot(q, retrieval.row(j))).collect();
    let mut order: Vec<u32> = (0..retrieval.rows as u32).collect();
    // Stable sort; values are finite (checked), so total_cmp orders them as numbers.
    order.sort_by(|&a, &b| sims[b as usize].total_cmp(&sims[a as usize]));
    order
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit_rows(m: &Matrix) -> Result<Matrix, EvalError> {
    if m.data.iter().any(|v| !v.is_finite()) {
        return Err(EvalError::NotFinite);
    }
    let mut out = m.clone();
    for i in 0..out.rows {
        let row = out.row_mut(i);
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
    Ok(out)
}

/// MAP@all, MAP@k and P@k for real-valued embeddings ranked by cosine similarity (a reference for
/// what binarisation loses). Radius metrics are `None`.
pub fn evaluate_embeddings(
    query: &Matrix,
    retrieval: &Matrix,
    query_labels: &Labels,
    retrieval_labels: &Labels,
    map_ks: &[usize],
    precision_ks: &[usize],
) -> Result<Report, EvalError> {
    check_labels("queries", query.rows, query_labels)?;
    check_labels("retrieval set", retrieval.rows, retrieval_labels)?;
    if retrieval.rows == 0 {
        return Err(EvalError::EmptyRetrieval);
    }
    if query.cols != retrieval.cols {
        return Err(EvalError::Dim { a: query.cols, b: retrieval.cols });
    }
    let (q, r) = (unit_rows(query)?, unit_rows(retrieval)?);
    let (qb, rb) = relevance(query_labels, retrieval_labels);
    let stats: Vec<QueryStats> = (0..q.rows)
        .into_par_iter()
        .map(|i| {
            let order = cosine_order(q.row(i), &r);
            let in_order: Vec<bool> = order.iter().map(|&j| shares(qb.row(i), rb.row(j as usize))).collect();
            let (ap_all, ap_at, p_at) = ranked_stats(&in_order, map_ks, precision_ks);
            QueryStats { ap_all, ap_at, p_at, radius: None }
        })
        .collect();
    Ok(summarise(&stats, retrieval.rows, map_ks, precision_ks, None))
}

/// MAP@k for embeddings with cosine ranking (`k = None`: MAP@all).
pub fn map_at_embeddings(
    query: &Matrix,
    retrieval: &Matrix,
    query_labels: &Labels,
    retrieval_labels: &Labels,
    k: Option<usize>,
) -> Result<f64, EvalError> {
    let k = k.unwrap_or(retrieval.rows);
    Ok(evaluate_embeddings(query, retrieval, query_labels, retrieval_labels, &[k], &[])?.map_at[0].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Code {
        Code::parse(s).unwrap()
    }

    fn labels(sets: &[&[u32]]) -> Labels {
        Labels { classes: 3, sets: sets.iter().map(|s| s.to_vec()).collect() }
    }

    /// Two queries, five items, worked by hand.
    /// q0 = 0000 {0}: distances r0 2, r1 0, r2 1, r3 1, r4 4 -> order r1 r2 r3 r0 r4 (r2 before r3:
    /// same distance, smaller index); relevant (share label 0): r0 r2 r4 -> N R N R R.
    ///   AP@all = (1/2 + 2/4 + 3/5) / 3 = 0.533333; AP@3 = (1/2) / 1 = 0.5; P@3 = 1/3.
    /// q1 = 1111 {1}: distances 2 4 3 3 0 -> order r4 r0 r2 r3 r1; relevant only r1 -> N N N N R.
    ///   AP@all = (1/5) / 1 = 0.2; AP@3 = 0 (nothing relevant in the top 3); P@3 = 0.
    /// MAP@all = (0.533333 + 0.2) / 2 = 0.366667; MAP@3 = 0.25; P@3 = 1/6; P@5 = (3/5 + 1/5) / 2 = 0.4.
    fn example() -> (Vec<Code>, Vec<Code>, Labels, Labels) {
        let q = vec![code("0000"), code("1111")];
        let r = ["1100", "0000", "1000", "0001", "1111"].iter().map(|s| code(s)).collect();
        (q, r, labels(&[&[0], &[1]]), labels(&[&[0], &[1], &[0, 2], &[2], &[0]]))
    }

    #[test]
    fn hand_worked_map_and_precision() {
        let (q, r, ql, rl) = example();
        assert_eq!(hamming_ranking(&q[0], &r), [1, 2, 3, 0, 4]);
        let rep = evaluate_codes(&q, &r, &ql, &rl, &[3, 5, 100], &[3, 5]).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(rep.map_all, (1.6 / 3.0 + 0.2) / 2.0));
        assert!(close(rep.map_at[0].1, 0.25));
        assert!(close(rep.map_at[1].1, rep.map_all) && close(rep.map_at[2].1, rep.map_all));
        assert!(close(rep.precision_at[0].1, 1.0 / 6.0));
        assert!(close(rep.precision_at[1].1, 0.4));
        assert!(close(map_at(&q, &r, &ql, &rl, None).unwrap(), rep.map_all));
        assert!(close(precision_at_k(&q, &r, &ql, &rl, 3).unwrap(), 1.0 / 6.0));
    }

    /// Within radius 2: q0 gets {r1, r2, r3, r0} with 2 relevant -> 0.5; q1 gets {r4, r0}, none
    /// relevant -> 0. Mean 0.25. PR curve of q0 / q1 by radius (precision, recall):
    ///   r=0: (0, 0) / (0, 0); r=1: (1/3, 1/3) / (0, 0); r=2: (1/2, 2/3) / (0, 0);
    ///   r=3: (1/2, 2/3) / (0, 0) [q1 gets 4 items]; r=4: (3/5, 1) / (1/5, 1).
    #[test]
    fn hand_worked_radius_metrics() {
        let (q, r, ql, rl) = example();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(precision_within_radius(&q, &r, &ql, &rl, 2).unwrap(), 0.25));
        let rep = evaluate_codes(&q, &r, &ql, &rl, &[], &[]).unwrap();
        assert!(close(rep.precision_radius2.unwrap(), 0.25));
        let c = pr_curve(&q, &r, &ql, &rl).unwrap();
        let want = [(0.0, 0.0), (1.0 / 6.0, 1.0 / 6.0), (0.25, 1.0 / 3.0), (0.25, 1.0 / 3.0), (0.4, 1.0)];
        assert_eq!(c.len(), 5);
        for (p, (prec, rec)) in c.iter().zip(want) {
            assert!(close(p.precision, prec) && close(p.recall, rec), "{p:?} vs {prec} {rec}");
        }
    }

    #[test]
    fn embeddings_rank_by_cosine_with_index_ties() {
        // Query (1, 0). Items: (1, 0) sim 1, (0, 1) sim 0, (2, 0) sim 1 (tie with item 0), (-1, 0) -1.
        // Order 0 2 1 3; relevant: items 1 and 3 -> N N R R: AP = (1/3 + 2/4) / 2 = 0.416667.
        let q = Matrix::new(1, 2, vec![1.0, 0.0]);
        let r = Matrix::new(4, 2, vec![1.0, 0.0, 0.0, 1.0, 2.0, 0.0, -1.0, 0.0]);
        let ql = labels(&[&[1]]);
        let rl = labels(&[&[0], &[1], &[2], &[1, 2]]);
        let m = map_at_embeddings(&q, &r, &ql, &rl, None).unwrap();
        assert!((m - (1.0 / 3.0 + 0.5) / 2.0).abs() < 1e-9);
        assert_eq!(map_at_embeddings(&q, &r, &ql, &rl, Some(2)).unwrap(), 0.0);
    }

    #[test]
    fn input_errors() {
        let (q, r, ql, rl) = example();
        assert!(matches!(map_at(&q, &r[..4], &ql, &rl, None), Err(EvalError::LabelCount { .. })));
        let mut r2 = r.clone();
        r2[0] = code("11000");
        assert_eq!(map_at(&q, &r2, &ql, &rl, None), Err(EvalError::CodeLength { a: 5, b: 4 }));
        assert_eq!(map_at(&q, &[], &ql, &labels(&[]), None), Err(EvalError::EmptyRetrieval));
    }
}
