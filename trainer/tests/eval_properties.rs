//! Properties of the Hamming-ranking metrics on random codes and labels.

use jdsh_core::code::Code;
use jdsh_trainer::data::Labels;
use jdsh_trainer::eval::evaluate_codes;
use proptest::prelude::*;

fn code(bits: &[bool]) -> Code {
    let mut c = Code::zeros(bits.len() as u32);
    bits.iter().enumerate().for_each(|(i, &b)| c.set(i as u32, b));
    c
}

fn case() -> impl Strategy<Value = (Vec<Code>, Vec<Code>, Labels, Labels)> {
    (1usize..=24, 1usize..=8, 1usize..=40).prop_flat_map(|(nbits, nq, nr)| {
        let codes = |n| proptest::collection::vec(proptest::collection::vec(any::<bool>(), nbits), n);
        let labels = |n| proptest::collection::vec(proptest::collection::vec(0u32..4, 1..3), n);
        (codes(nq), codes(nr), labels(nq), labels(nr)).prop_map(|(q, r, ql, rl)| {
            (
                q.iter().map(|b| code(b)).collect(),
                r.iter().map(|b| code(b)).collect(),
                Labels { classes: 4, sets: ql },
                Labels { classes: 4, sets: rl },
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pr_curve_and_map_properties((q, r, ql, rl) in case()) {
        let n = r.len();
        let rep = evaluate_codes(&q, &r, &ql, &rl, &[1, n, n + 5], &[1, n]).unwrap();
        let curve = rep.pr_curve.clone().unwrap();
        prop_assert_eq!(curve.len(), q[0].nbits() as usize + 1);
        // Recall never decreases with the radius, and the largest radius retrieves everything.
        for w in curve.windows(2) {
            prop_assert!(w[1].recall >= w[0].recall - 1e-12);
        }
        let any_relevant = (0..q.len()).any(|i| (0..n).any(|j| ql.relevant(i, &rl, j)));
        let last = curve.last().unwrap();
        let full_recall = if any_relevant { 1.0 } else { 0.0 };
        prop_assert!((last.recall - full_recall).abs() < 1e-12);
        // At the largest radius precision is each query's share of relevant items (every query
        // retrieves all n items), which is also P@n.
        prop_assert!((last.precision - rep.precision_at[1].1).abs() < 1e-12);
        for p in &curve {
            prop_assert!((0.0..=1.0).contains(&p.precision) && (0.0..=1.0).contains(&p.recall));
        }
        // MAP@n = MAP@(n + 5) = MAP@all; MAP@1 = P@1 under the "relevant retrieved" convention.
        prop_assert!((rep.map_at[1].1 - rep.map_all).abs() < 1e-12);
        prop_assert!((rep.map_at[2].1 - rep.map_all).abs() < 1e-12);
        prop_assert!((rep.map_at[0].1 - rep.precision_at[0].1).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&rep.map_all));
    }
}
