#!/bin/sh
# Rescaling from a checkpoint: a windowed keyed job with checkpoints runs at parallelism FROM,
# is killed with SIGKILL after at least one checkpoint completed, and resumes with
# --from-checkpoint at parallelism TO. Its sources' splits, keyed state and sink are
# redistributed (docs/checkpoints.md, "Rescaling"); the final CSV (exactly-once sink) must
# equal the one of an uninterrupted run at FROM: the same header and the same multiset of rows.
# usage: rescale.sh SLUICE JOB BACKEND FROM TO [SIZE]
#   JOB: a Nexmark query (q5, q7, ...; SIZE = events) or the path of examples/sensor_job.so
#   (SIZE = readings).
set -u
SLUICE=$1 JOB=$2 BACKEND=$3 FROM=$4 TO=$5 SIZE=${6:-2000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON="-D taskmanager.numberOfTaskSlots=4 -D state.backend.type=$BACKEND -D state.backend.rocksdb.localdir=$WORK/rocks"
CKPT="-D execution.checkpointing.interval=100ms -D state.checkpoints.dir=$WORK/ck -D state.checkpoints.num-retained=2"
NAME="$(basename "$JOB" .so) $BACKEND $FROM->$TO"

# run PARALLELISM OUTPUT [more options]: the job in the background, its pid in $pid.
run() {
    p=$1 out=$2
    shift 2
    case "$JOB" in
    *.so)
        # shellcheck disable=SC2086
        "$SLUICE" run $COMMON ${QUIET-"--quiet"} --parallelism "$p" "$@" "$JOB" --readings "$SIZE" --output "$out" 2>> "$WORK/err" & ;;
    *)
        # shellcheck disable=SC2086
        "$SLUICE" nexmark --query "$JOB" --events "$SIZE" $COMMON ${QUIET-"--quiet"} --parallelism "$p" "$@" --output "$out" \
            2>> "$WORK/err" & ;;
    esac
    pid=$!
}

run "$FROM" "$WORK/expected.csv"
wait $pid || { echo "FAIL $NAME: reference run"; cat "$WORK/err"; exit 1; }

# shellcheck disable=SC2086
run "$FROM" "$WORK/got.csv" $CKPT
i=0
while [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do
    ls "$WORK"/ck/*/chk-*/_metadata >/dev/null 2>&1 && break
    sleep 0.05
    i=$((i + 1))
done
sleep "0.$(od -An -N1 -tu1 /dev/urandom | tr -d ' ' | awk '{printf "%03d", $1 * 2}')"
kill -9 $pid 2>/dev/null || { echo "FAIL $NAME: the run ended before it could be killed"; exit 1; }
wait $pid 2>/dev/null
job=$(ls -d "$WORK"/ck/*)
ls "$job"/chk-*/_metadata >/dev/null 2>&1 || { echo "FAIL $NAME: killed before any checkpoint completed"; exit 1; }

# Not quiet: its log must say what it restored.
QUIET="--quiet -D log.level=info"
# shellcheck disable=SC2086
run "$TO" "$WORK/got.csv" $CKPT --from-checkpoint "$job"
wait $pid || { echo "FAIL $NAME: the rescaled run failed"; cat "$WORK/err"; exit 1; }
grep -q "restoring from" "$WORK/err" || { echo "FAIL $NAME: the resumed run did not restore"; cat "$WORK/err"; exit 1; }

same() { [ "$(head -n 1 "$1")" = "$(head -n 1 "$2")" ] &&
    [ "$(tail -n +2 "$1" | LC_ALL=C sort | cksum)" = "$(tail -n +2 "$2" | LC_ALL=C sort | cksum)" ]; }
rows=$(($(wc -l < "$WORK/expected.csv") - 1))
[ "$rows" -gt 0 ] || { echo "FAIL $NAME: the reference run wrote no rows"; exit 1; }
if ! same "$WORK/expected.csv" "$WORK/got.csv"; then
    echo "FAIL $NAME: output after rescaling differs from the uninterrupted run"
    tail -n +2 "$WORK/expected.csv" | LC_ALL=C sort > "$WORK/a"
    tail -n +2 "$WORK/got.csv" | LC_ALL=C sort > "$WORK/b"
    diff "$WORK/a" "$WORK/b" | head -n 10
    echo "(rows: expected $rows, got $(($(wc -l < "$WORK/got.csv") - 1)))"
    exit 1
fi
echo "ok $NAME: the same $rows rows after SIGKILL and a restore at parallelism $TO"
