#!/usr/bin/env bash
# Text-to-image search by the mih index: ORDER BY icode <~> jdsh.encode_text(...) LIMIT k over the
# image codes of the Wikipedia items is planned as a mih index scan (and not with index scans
# off), and returns what a sequential scan returns for 7 text queries x k = 1, 10, 100.
#
#   tests/cluster/models_index_query.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_index_query
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

say "image codes of model wiki (encode_table), mih index"
q -c "ALTER TABLE wikipedia ADD COLUMN icode bitcode(64)" >/dev/null
n=$(q -c "SELECT jdsh.encode_table('wiki', 'wikipedia', 'image', 'icode', 'image', batch_size => 100)")
[ "$n" = 2866 ] || fail "encode_table (image) set $n rows, not 2866"
q -c "CREATE INDEX wikipedia_icode_mih ON wikipedia USING mih (icode)" -c "ANALYZE wikipedia" >/dev/null
plan=$(q -c "EXPLAIN (COSTS OFF) SELECT id FROM wikipedia
              ORDER BY icode <~> jdsh.encode_text('wiki', (SELECT text FROM wikipedia WHERE id = 5)) LIMIT 10")
grep -q 'Index Scan using wikipedia_icode_mih' <<<"$plan" || fail "the text-to-image query is not a mih index scan: $plan"
plan=$(q -c "SET enable_indexscan = off" -c "EXPLAIN (COSTS OFF) SELECT id FROM wikipedia
              ORDER BY icode <~> jdsh.encode_text('wiki', (SELECT text FROM wikipedia WHERE id = 5)) LIMIT 10")
grep -q 'wikipedia_icode_mih' <<<"$plan" && fail "with enable_indexscan off the query still uses the index: $plan"
# All queries in one session: "@@ QID K idx|seq" before the "id|distance" lines of each, nearest
# first.
KNN_QIDS="5 77 640 1500 2174 2400 2866"
script="$FILES/knn.sql"
: >"$script"
for qid in $KNN_QIDS; do
  for k in 1 10 100; do
    for how in idx seq; do
      [ "$how" = seq ] && echo "SET enable_indexscan = off; SET enable_bitmapscan = off;" >>"$script"
      cat >>"$script" <<SQL
\echo @@ $qid $k $how
SELECT id, icode <~> jdsh.encode_text('wiki', (SELECT text FROM wikipedia WHERE id = $qid)) FROM wikipedia
 ORDER BY icode <~> jdsh.encode_text('wiki', (SELECT text FROM wikipedia WHERE id = $qid)) LIMIT $k;
RESET enable_indexscan; RESET enable_bitmapscan;
SQL
    done
  done
done
q -f "$script" >"$FILES/knn.out" || fail "the k-NN queries failed"
knn() { awk -v key="@@ $1 $2 $3" '/^@@ / {on = ($0 == key); next} on' "$FILES/knn.out"; }
n_cmp=0
for qid in $KNN_QIDS; do
  for k in 1 10 100; do
    idx=$(knn "$qid" "$k" idx)
    seq=$(knn "$qid" "$k" seq)
    # Equal distance lists (in order), and equal ids below the last distance (rows at the last
    # distance are ties: any of them is right).
    dmax=$(tail -1 <<<"$seq" | cut -d'|' -f2)
    if [ "$(cut -d'|' -f2 <<<"$idx")" != "$(cut -d'|' -f2 <<<"$seq")" ] ||
       [ "$(awk -F'|' -v m="$dmax" '$2 < m {print $1}' <<<"$idx" | sort)" != "$(awk -F'|' -v m="$dmax" '$2 < m {print $1}' <<<"$seq" | sort)" ] ||
       [ "$(wc -l <<<"$idx")" != "$k" ]; then
      soft_fail "text query $qid, k=$k: the index scan returns $(tr '\n' ' ' <<<"$idx" | cut -c1-200), the sequential scan $(tr '\n' ' ' <<<"$seq" | cut -c1-200)"
    fi
    n_cmp=$((n_cmp + 1))
  done
done
say "plan: Index Scan using wikipedia_icode_mih; $n_cmp k-NN results (7 text queries x k=1,10,100) equal to a sequential scan's"

assert_no_crash "the test" ""
finish
