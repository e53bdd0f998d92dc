#!/usr/bin/env bash
# The backend's model cache follows the registry: a long-lived session sees a model retrained,
# renamed, dropped (one version or all) or imported in another session at its next statement,
# also inside a READ COMMITTED transaction block; inside a REPEATABLE READ one it keeps its
# snapshot's version and takes the new one after the commit.
#
#   tests/cluster/models_cache.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_cache
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

say "a long-lived session sees retrained, renamed and dropped models"
coproc SA { "$PG_BIN/psql" -X -qAt -v VERBOSITY=verbose 2>&1; }
# bash unsets SA_PID as soon as the coprocess exits: keep our own copy for the final wait.
sa_pid=$SA_PID
BG_PIDS+=("$sa_pid")
# sa SQL: runs one statement in session A and prints its output.
sa() {
  local line
  printf '%s;\n\\echo __sa_done__\n' "$1" >&"${SA[1]}"
  while IFS= read -r -t 120 line <&"${SA[0]}"; do
    [ "$line" = __sa_done__ ] && return 0
    printf '%s\n' "$line"
  done
  # (in a command substitution: fail would only end the subshell)
  echo "FAILED: session A did not answer: $1" >&2
  exit 1
}
code_v() { q -c "SELECT jdsh.encode_text('wiki', $X, $1)"; }
retrain() {  # retrain SEED: a new version of wiki (few epochs); prints the version
  q -F '|' -c "SELECT version FROM jdsh.train('wiki', $TRAIN_SRC, 'image', 'text', 'label', epochs => 3, options => '{\"seed\": $1}')"
}
c1=$(sa "SELECT jdsh.encode_text('wiki', $X)")
[ "$c1" = "$(code_v 1)" ] || fail "session A's code with wiki is not version 1's: $c1"
v2=$(retrain 7) && [ "$v2" = 2 ] || fail "retraining wiki gave version '$v2', not 2"
c2=$(sa "SELECT jdsh.encode_text('wiki', $X)")
[ "$c2" = "$(code_v 2)" ] && [ "$c2" != "$c1" ] ||
  soft_fail "after a retrain in another session, session A encodes $c2; version 2 gives $(code_v 2), version 1 $c1"
# Inside a READ COMMITTED transaction block: a cached lookup takes no lock that would read the
# invalidation queue; the next statement must still see the new version.
sa "BEGIN" >/dev/null
c=$(sa "SELECT jdsh.encode_text('wiki', $X)")
v3=$(retrain 8)
c3=$(sa "SELECT jdsh.encode_text('wiki', $X)")
sa "COMMIT" >/dev/null
[ "$c" = "$c2" ] && [ "$c3" = "$(code_v "$v3")" ] && [ "$c3" != "$c2" ] ||
  soft_fail "READ COMMITTED transaction block: after a retrain (v$v3) session A's next statement encodes $c3, version $v3 gives $(code_v "$v3"), version 2 $c2"
# REPEATABLE READ: the transaction's snapshot decides (the old version), and after it the new one.
sa "BEGIN ISOLATION LEVEL REPEATABLE READ" >/dev/null
c=$(sa "SELECT jdsh.encode_text('wiki', $X)")
v4=$(retrain 9)
c_rr=$(sa "SELECT jdsh.encode_text('wiki', $X)")
sa "COMMIT" >/dev/null
c4=$(sa "SELECT jdsh.encode_text('wiki', $X)")
[ "$c" = "$c3" ] && [ "$c_rr" = "$c3" ] || soft_fail "REPEATABLE READ: session A switched models inside its transaction ($c, then $c_rr; its snapshot has version $v3: $c3)"
[ "$c4" = "$(code_v "$v4")" ] && [ "$c4" != "$c3" ] ||
  soft_fail "after a REPEATABLE READ transaction that saw a retrain, session A still encodes $c4, not version $v4's $(code_v "$v4")"
say "session A: v1 -> v2 after a retrain; v3 inside a READ COMMITTED block; v3 kept inside REPEATABLE READ, v4 after it"
q -c "SELECT jdsh.rename_model('wiki', 'wiki_renamed')" >/dev/null
out=$(sa "SELECT jdsh.encode_text('wiki', $X)")
grep -q 'ERROR:  42704' <<<"$out" || soft_fail "after a rename in another session, session A still encodes with the old name: $out"
[ "$(sa "SELECT jdsh.encode_text('wiki_renamed', $X)")" = "$c4" ] || soft_fail "session A does not find the renamed model"
q -c "SELECT jdsh.rename_model('wiki_renamed', 'wiki')" >/dev/null
[ "$(sa "SELECT jdsh.encode_text('wiki', $X)")" = "$c4" ] || soft_fail "session A does not see wiki renamed back"
q -c "SELECT jdsh.drop_model('wiki', $v4)" >/dev/null
[ "$(sa "SELECT jdsh.encode_text('wiki', $X)")" = "$c3" ] ||
  soft_fail "after dropping version $v4 in another session, session A does not encode with version $v3"
q -c "SELECT jdsh.import_model('tmp', jdsh.export_model('wiki', 1))" >/dev/null
[ "$(sa "SELECT jdsh.encode_text('tmp', $X)")" = "$c1" ] || soft_fail "session A: imported model tmp does not encode as wiki v1"
q -c "SELECT jdsh.drop_model('tmp')" >/dev/null
out=$(sa "SELECT jdsh.encode_text('tmp', $X)")
grep -q 'ERROR:  42704' <<<"$out" || soft_fail "after drop_model in another session, session A still encodes with it: $out"
printf '\\q\n' >&"${SA[1]}"
wait "$sa_pid" 2>/dev/null || true
say "session A: renamed model gone under its old name and found under the new one; dropped version and model gone"

assert_no_crash "the test" ""
finish
