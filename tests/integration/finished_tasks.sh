#!/bin/sh
# Checkpoints with finished tasks (docs/checkpoints.md, FLIP-147), end to end: a Nexmark job
# checkpointed at parallelism 2 is killed with SIGKILL and resumed at 3, where the third source
# subtask inherits no split and finishes at once while the others run on. Checkpoints must go
# on after it finished (their _metadata lists it as finished). The run is killed again after
# such a checkpoint and resumed from it at parallelism LAST: at 3 the finished subtask is
# deployed finished (it runs nothing), at 2 the partly finished source hands on the running
# subtasks' splits. The final CSV (exactly-once sink) must equal an uninterrupted run's.
# usage: finished_tasks.sh SLUICE QUERY BACKEND LAST [EVENTS]
set -u
SLUICE=$1 Q=$2 BACKEND=$3 LAST=$4 EVENTS=${5:-3000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON="-D taskmanager.numberOfTaskSlots=4 -D state.backend.type=$BACKEND -D state.backend.rocksdb.localdir=$WORK/rocks"
CKPT="-D execution.checkpointing.interval=100ms -D state.checkpoints.dir=$WORK/ck -D state.checkpoints.num-retained=2"
NAME="$Q $BACKEND 2->3->$LAST"

# run PARALLELISM OUTPUT LOG [more options]: the job in the background, its pid in $pid.
run() {
    p=$1 out=$2 log=$3
    shift 3
    # shellcheck disable=SC2086
    "$SLUICE" nexmark --query "$Q" --events "$EVENTS" $COMMON --quiet -D log.level=info --parallelism "$p" "$@" \
        --output "$out" 2> "$log" &
    pid=$!
}
fail() {
    echo "FAIL $NAME: $1"
    shift
    for f in "$@"; do tail -n 20 "$f"; done
    exit 1
}
# The job directories under ck/, oldest first.
jobs_dirs() { ls -1dtr "$WORK"/ck/* 2>/dev/null; }
# The checkpoints of job directory $1 whose _metadata lists a finished subtask, oldest first.
finished_chks() { grep -l '"finished": *true' "$1"/chk-*/_metadata 2>/dev/null | sort -t- -k2 -n; }

run 2 "$WORK/expected.csv" "$WORK/ref.log"
wait $pid || fail "reference run" "$WORK/ref.log"

# 1. Parallelism 2, killed once a checkpoint completed.
# shellcheck disable=SC2086
run 2 "$WORK/got.csv" "$WORK/1.log" $CKPT
i=0
while [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do
    ls "$WORK"/ck/*/chk-*/_metadata >/dev/null 2>&1 && break
    sleep 0.05
    i=$((i + 1))
done
kill -9 $pid 2>/dev/null || fail "the first run ended before it could be killed" "$WORK/1.log"
wait $pid 2>/dev/null
first=$(jobs_dirs | head -n 1)
ls "$first"/chk-*/_metadata >/dev/null 2>&1 || fail "killed before any checkpoint completed" "$WORK/1.log"

# 2. Resumed at parallelism 3: source subtask 3 has no split and finishes at once. Killed once
# two checkpoints taken after that completed (with num-retained=2, both are still there).
# shellcheck disable=SC2086
run 3 "$WORK/got.csv" "$WORK/2.log" $CKPT --from-checkpoint "$first"
second=""
chk=""
i=0
while [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do
    second=$(jobs_dirs | grep -v "^$first\$" | head -n 1)
    [ -n "$second" ] && [ "$(finished_chks "$second" | wc -l)" -ge 2 ] && chk=$(finished_chks "$second" | tail -n 1) &&
        break
    sleep 0.02
    i=$((i + 1))
done
kill -9 $pid 2>/dev/null || fail "the second run ended before it could be killed" "$WORK/2.log"
wait $pid 2>/dev/null
[ -n "$chk" ] || fail "checkpoints did not go on after a subtask finished" "$WORK/2.log"
grep -q "restoring from" "$WORK/2.log" || fail "the second run did not restore" "$WORK/2.log"
# Checkpoints kept completing after the subtask finished: the log says so, and so does the
# checkpoint (every subtask of the job listed, one of them finished, by name).
n=$(grep -c "checkpoint [0-9]* complete" "$WORK/2.log")
[ "$n" -ge 2 ] || fail "the log of the second run shows fewer than two completed checkpoints" "$WORK/2.log"
tr -d ' \n' < "$chk" |
    grep -q '"vertex":"v[0-9]*:nexmark[^"]*","subtask":2,"key_groups":\[[0-9]*,[0-9]*\],"handles":\[\],"extras":{},"finished":true' ||
    fail "$chk does not list source subtask 3 as finished" "$chk"
[ "$(tr -d ' \n' < "$chk" | grep -o '"finished":true' | wc -l)" -eq 1 ] || fail "$chk lists more finished subtasks" "$chk"

# 3. Resumed at parallelism LAST from that checkpoint.
chk_dir=$(dirname "$chk")
# shellcheck disable=SC2086
run "$LAST" "$WORK/got.csv" "$WORK/3.log" $CKPT --from-checkpoint "$chk_dir"
wait $pid || fail "the last run failed" "$WORK/3.log"
grep -q "restoring from .*/$(basename "$second")/$(basename "$chk_dir")\$" "$WORK/3.log" || fail "the last run did not restore $chk_dir" "$WORK/3.log"
if [ "$LAST" = 3 ]; then
    grep -q "(3/3) had finished in checkpoint .*: deployed finished" "$WORK/3.log" ||
        fail "the finished subtask was not deployed finished" "$WORK/3.log"
fi

same() { [ "$(head -n 1 "$1")" = "$(head -n 1 "$2")" ] &&
    [ "$(tail -n +2 "$1" | LC_ALL=C sort | cksum)" = "$(tail -n +2 "$2" | LC_ALL=C sort | cksum)" ]; }
rows=$(($(wc -l < "$WORK/expected.csv") - 1))
[ "$rows" -gt 0 ] || fail "the reference run wrote no rows"
if ! same "$WORK/expected.csv" "$WORK/got.csv"; then
    tail -n +2 "$WORK/expected.csv" | LC_ALL=C sort > "$WORK/a"
    tail -n +2 "$WORK/got.csv" | LC_ALL=C sort > "$WORK/b"
    diff "$WORK/a" "$WORK/b" | head -n 10
    fail "output differs from the uninterrupted run (rows: expected $rows, got $(($(wc -l < "$WORK/got.csv") - 1)))"
fi
echo "ok $NAME: $n checkpoint(s) after a source subtask finished; the same $rows rows after two SIGKILLs"
