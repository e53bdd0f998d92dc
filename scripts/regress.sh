#!/usr/bin/env bash
# SQL regression tests (tests/regress/sql/*.sql against tests/regress/expected/*.out) on the
# project's cluster, with the extension as installed by scripts/setup.sh.
#   scripts/regress.sh            # run all
#   scripts/regress.sh --accept   # run, then copy the results over the expected files (review the diff!)
# expected/mih_index_1.out is the same test's output on PostgreSQL 18 and mih_index_2.out on 17
# (EXPLAIN prints InitPlans, and 18 disabled nodes, differently; pg_regress accepts any of the
# files): keep them in step when mih_index changes (JDSH_PG=18 scripts/regress.sh --accept).
set -euo pipefail
source "$(dirname "$0")/env.sh"
PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
dir="$ROOT/tests/regress"
out="$ROOT/target/regress"
mkdir -p "$out"
tests=$(cd "$dir/sql" && ls *.sql | sed 's/\.sql$//' | sort)
bash "$ROOT/scripts/cluster.sh" start >/dev/null
status=0
"$PG_REGRESS" --host="$PGHOST" --port="$PGPORT" --user=postgres \
  --dbname=jdsh_regress --load-extension=jdsh \
  --inputdir="$dir" --outputdir="$out" --bindir="$PG_BIN" $tests || status=$?
if [ "${1:-}" = "--accept" ]; then
  # A major's own expected file where the test has one (18: _1, 17: _2), else the common one.
  case "$JDSH_PG" in 18) alt=_1 ;; 17) alt=_2 ;; *) alt= ;; esac
  for t in $tests; do
    if [ -n "$alt" ] && [ -f "$dir/expected/$t$alt.out" ]; then
      cp "$out/results/$t.out" "$dir/expected/$t$alt.out"
    else
      cp "$out/results/$t.out" "$dir/expected/$t.out"
    fi
  done
  echo "accepted results into $dir/expected (review with git diff)"
  exit 0
fi
[ $status -ne 0 ] && [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"
exit $status
