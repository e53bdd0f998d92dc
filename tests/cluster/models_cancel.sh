#!/usr/bin/env bash
# Cancelling a training: pg_cancel_backend, statement_timeout and pg_terminate_backend stop a
# running jdsh.train within a few seconds (57014, 57014, 57P01), leave no model row and crash
# nothing; the session stays usable (trains again) after a statement timeout.
#
#   tests/cluster/models_cancel.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_cancel
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
# "Promptly" for a cancel: from pg_cancel_backend to the client's error.
CANCEL_MAX_MS=5000
models_fixture

say "cancel, statement_timeout and terminate during jdsh.train"
# bg_train NAME OUTFILE [SQL before]: a long training in the background (application_name
# jdsh_models_bg); sets BG.
bg_train() {
  local name=$1 outfile=$2 pre=${3:-SELECT 1}
  PGAPPNAME=jdsh_models_bg "$PG_BIN/psql" -X -qAt -v VERBOSITY=verbose -c "SET client_min_messages = notice" -c "$pre" \
    -c "SELECT * FROM jdsh.train('$name', $TRAIN_SRC, 'image', 'text', 'label', epochs => 1000)" >"$outfile" 2>&1 &
  BG=$!
  BG_PIDS+=("$BG")
}
# wait_for PATTERN FILE SECONDS: until the file matches (0) or time runs out / BG ended (1).
wait_for() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    grep -qE "$1" "$2" && return 0
    alive "$BG" || { grep -qE "$1" "$2"; return; }
    sleep 0.1
  done
  return 1
}
# wait_bg SECONDS: milliseconds until BG ended, or fails.
wait_bg() {
  local t0 i
  t0=$(date +%s%N)
  for i in $(seq 1 $(($1 * 20))); do
    alive "$BG" || { wait "$BG" 2>/dev/null || true; echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }
    sleep 0.05
  done
  return 1
}
signal_bg() { q -c "SELECT $1(pid) FROM pg_stat_activity WHERE application_name = 'jdsh_models_bg'"; }

bg_train cancelme "$FILES/cancel.out"
wait_for 'jdsh.train: epoch 1/1000' "$FILES/cancel.out" 120 || fail "no first-epoch NOTICE from the background training: $(tail -3 "$FILES/cancel.out")"
[ "$(signal_bg pg_cancel_backend)" = t ] || fail "pg_cancel_backend found no training backend"
ms=$(wait_bg 60) || fail "the training was still running 60 s after pg_cancel_backend"
grep -q 'ERROR:  57014: canceling statement due to user request' "$FILES/cancel.out" ||
  soft_fail "a cancelled training did not report 57014 'canceling statement due to user request': $(grep -m1 ERROR "$FILES/cancel.out")"
[ "$ms" -le "$CANCEL_MAX_MS" ] || soft_fail "cancel took ${ms} ms (more than $CANCEL_MAX_MS ms)"
[ "$(rows_of cancelme)" = 0 ] || soft_fail "a cancelled training left a model row"
say "pg_cancel_backend: 57014 after ${ms} ms, no model row"

t0=$(date +%s%N)
out=$(qv -v ON_ERROR_STOP=0 -f - <<SQL
SET statement_timeout = '2s';
SELECT * FROM jdsh.train('timeout', $TRAIN_SRC, 'image', 'text', 'label', epochs => 1000);
RESET statement_timeout;
SELECT 'after', version, epochs FROM jdsh.train('after_timeout', 'SELECT * FROM wikipedia WHERE id % 8 = 0', 'image', 'text', epochs => 1);
SQL
) || true
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_no_crash "statement_timeout during jdsh.train" "$out"
grep -q 'ERROR:  57014: canceling statement due to statement timeout' <<<"$out" ||
  soft_fail "statement_timeout did not stop the training with 57014: $(grep -m1 ERROR <<<"$out")"
[ "$(rows_of timeout)" = 0 ] || soft_fail "a timed-out training left a model row"
grep -q '^after|1|1$' <<<"$out" || soft_fail "the session could not train again after a statement timeout: $out"
[ "$ms" -le $((2000 + CANCEL_MAX_MS + 3000)) ] || soft_fail "statement_timeout = 2s: the session took ${ms} ms"
say "statement_timeout = 2s: 57014, no model row, the same session trains again (${ms} ms in all)"

bg_train killme "$FILES/terminate.out"
wait_for 'jdsh.train: epoch 1/1000' "$FILES/terminate.out" 120 || fail "no first-epoch NOTICE: $(tail -3 "$FILES/terminate.out")"
[ "$(signal_bg pg_terminate_backend)" = t ] || fail "pg_terminate_backend found no training backend"
ms=$(wait_bg 60) || fail "the training was still running 60 s after pg_terminate_backend"
grep -q 'FATAL:  57P01: terminating connection due to administrator command' "$FILES/terminate.out" ||
  soft_fail "a terminated training did not report 57P01: $(grep -m1 -E 'FATAL|ERROR' "$FILES/terminate.out")"
[ "$(rows_of killme)" = 0 ] || soft_fail "a terminated training left a model row"
assert_no_crash "pg_terminate_backend during jdsh.train" ""
say "pg_terminate_backend: 57P01 after ${ms} ms, no model row, no crash"

assert_no_crash "the test" ""
finish
