#!/bin/sh
# Proves a Nexmark query's final result equal to a reference computed independently:
# the events the run used are dumped to CSV, SQLite runs the query's SQL over them, and the
# two result sets must be identical (as sorted multisets of rows, header included).
# usage: nexmark_reference.sh SLUICE NEXMARK_DIR QUERY PARALLELISM [EVENTS [sluice options...]]
set -eu
SLUICE=$1 DIR=$2 Q=$3 P=$4 EVENTS=${5:-${SL_NEXMARK_EVENTS:-200000}}
shift 4
[ $# -gt 0 ] && shift
# Remaining arguments (e.g. -D state.backend.type=rocksdb) go to the run.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$SLUICE" nexmark --query "$Q" --events "$EVENTS" --parallelism "$P" --quiet \
    -D taskmanager.numberOfTaskSlots=4 "$@" --dump-events "$WORK/events" --output "$WORK/result.csv"
sh "$DIR/reference.sh" "$WORK/events" "$Q" "$WORK/expected.csv"
head -n 1 "$WORK/result.csv" > "$WORK/got.header"
head -n 1 "$WORK/expected.csv" > "$WORK/want.header"
tail -n +2 "$WORK/result.csv" | LC_ALL=C sort > "$WORK/got.rows"
tail -n +2 "$WORK/expected.csv" | LC_ALL=C sort > "$WORK/want.rows"
rows=$(wc -l < "$WORK/want.rows")
if ! cmp -s "$WORK/got.header" "$WORK/want.header"; then
    echo "FAIL $Q p=$P: header differs: got '$(cat "$WORK/got.header")' want '$(cat "$WORK/want.header")'"
    exit 1
fi
if ! cmp -s "$WORK/got.rows" "$WORK/want.rows"; then
    echo "FAIL $Q p=$P: result differs from the SQLite reference ($rows expected rows)"
    diff "$WORK/want.rows" "$WORK/got.rows" | head -n 20
    exit 1
fi
if [ "$rows" -eq 0 ] && [ "$Q" != "q3" ]; then
    echo "FAIL $Q p=$P: the reference has no rows: the test would prove nothing"
    exit 1
fi
echo "ok $Q p=$P $*: $rows rows identical to the SQLite reference ($EVENTS events)"
