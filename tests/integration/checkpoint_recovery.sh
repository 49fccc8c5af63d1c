#!/bin/sh
# Exactly-once across process death: a Nexmark query with checkpoints is killed with SIGKILL
# several times at moments drawn at random (each after at least one checkpoint completed), and
# resumed each time with --from-checkpoint on the job's checkpoint directory. The final CSV
# must equal the one of an uninterrupted run: the same header and the same multiset of rows
# (with two inputs, as in q4 and q8, the order rows leave a join depends on thread timing even
# without failures, so order is not part of the result).
# usage: checkpoint_recovery.sh SLUICE QUERY BACKEND [EVENTS] [KILLS] [more sluice options...]
# With SL_EXPECT_OPSTATE=1 at least one checkpoint a run was killed after must hold operator
# state (async I/O requests in flight). SL_CKPT_INTERVAL: the checkpoint interval (100ms).
set -u
SLUICE=$1 Q=$2 BACKEND=$3 EVENTS=${4:-2000000} KILLS=${5:-3}
shift 3
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON="--query $Q --events $EVENTS --quiet -D state.backend.type=$BACKEND -D state.backend.rocksdb.localdir=$WORK/rocks $*"
opstates=0
CKPT="-D execution.checkpointing.interval=${SL_CKPT_INTERVAL:-100ms} -D state.checkpoints.dir=$WORK/ck -D state.checkpoints.num-retained=2"

# shellcheck disable=SC2086
"$SLUICE" nexmark $COMMON --output "$WORK/expected.csv" || { echo "FAIL: reference run"; exit 1; }

latest_complete() { ls "$WORK"/ck/*/chk-*/_metadata 2>/dev/null | head -n 1; }

from=""
kills=0
while :; do
    # shellcheck disable=SC2086
    "$SLUICE" nexmark $COMMON $CKPT $from --output "$WORK/got.csv" 2> "$WORK/err" &
    pid=$!
    if [ "$kills" -lt "$KILLS" ]; then
        # Wait for a checkpoint of this run (a new job directory) to complete.
        before=$(ls -d "$WORK"/ck/* 2>/dev/null | wc -l)
        i=0
        while [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do
            if [ "$(ls -d "$WORK"/ck/* 2>/dev/null | wc -l)" -gt "$before" ]; then
                job=$(ls -dt "$WORK"/ck/* | head -n 1)
                ls "$job"/chk-*/_metadata >/dev/null 2>&1 && break
            fi
            sleep 0.05
            i=$((i + 1))
        done
        sleep "0.$(od -An -N1 -tu1 /dev/urandom | tr -d ' ' | awk '{printf "%03d", $1 * 2}')"
        if kill -9 $pid 2>/dev/null; then
            wait $pid 2>/dev/null
            kills=$((kills + 1))
            # The newest job directory holds this run's checkpoints.
            job=$(ls -dt "$WORK"/ck/* | head -n 1)
            if ! ls "$job"/chk-*/_metadata >/dev/null 2>&1; then
                echo "FAIL $Q $BACKEND: killed before any checkpoint completed in $job"; exit 1
            fi
            opstates=$((opstates + $(ls "$job"/chk-*/*.opstate 2>/dev/null | wc -l)))
            from="--from-checkpoint $job"
            continue
        fi
    fi
    wait $pid
    st=$?
    [ $st -eq 0 ] || { echo "FAIL $Q $BACKEND: resumed run exited $st"; cat "$WORK/err"; exit 1; }
    break
done
same() { [ "$(head -n 1 "$1")" = "$(head -n 1 "$2")" ] &&
    [ "$(tail -n +2 "$1" | LC_ALL=C sort | cksum)" = "$(tail -n +2 "$2" | LC_ALL=C sort | cksum)" ]; }
if ! same "$WORK/expected.csv" "$WORK/got.csv"; then
    echo "FAIL $Q $BACKEND: output after $kills kills differs from the uninterrupted run"
    diff "$WORK/expected.csv" "$WORK/got.csv" | head -n 10
    echo "(rows: expected $(wc -l < "$WORK/expected.csv"), got $(wc -l < "$WORK/got.csv"))"
    exit 1
fi
[ "$kills" -gt 0 ] || { echo "FAIL $Q $BACKEND: the run ended before it could be killed"; exit 1; }
if [ "${SL_EXPECT_OPSTATE:-0}" = 1 ] && [ "$opstates" -eq 0 ]; then
    echo "FAIL $Q $BACKEND: no checkpoint held requests in flight: the test proved nothing about them"; exit 1
fi
echo "ok $Q $BACKEND: the same $(($(wc -l < "$WORK/expected.csv") - 1)) rows after $kills SIGKILLs and resumes"
