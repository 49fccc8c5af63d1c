#!/bin/sh
# Checkpoints and savepoints of jobs on a cluster of processes (a JobManager whose local driver
# starts one TaskManager process per slot):
#  - the TaskManagers SIGKILLed after checkpoints completed: the job restarts from the latest one
#    (the JobManager's log names it) and the exactly-once output equals the embedded run's, on
#    the heap and on RocksDB (incremental: shared files uploaded by TaskManagers);
#  - `sluice savepoint` of a running job, then `sluice stop` (stop-with-savepoint): the job ends
#    FINISHED, and a new job started --from-savepoint (at the same parallelism, and rescaled
#    2 -> 3 and 3 -> 1) completes the output exactly; after 2 -> 3 a source subtask without
#    splits finishes at once: checkpoints go on and a stop-with-savepoint still works;
#  - bad input: a savepoint of an unknown job, of a job without checkpoint storage, a corrupt
#    savepoint, and a savepoint of another job: clear errors, the cluster keeps running.
# usage: cluster_checkpoints.sh SLUICE
set -u
SLUICE=$1
. "$(dirname "$0")/cluster_lib.sh"
setup_cluster_test checkpoints

start_local_jobmanager -D resourcemanager.taskmanager-timeout=20s
AT="--jobmanager 127.0.0.1:$PORT"

same() { [ "$(head -n 1 "$1")" = "$(head -n 1 "$2")" ] &&
    [ "$(tail -n +2 "$1" | LC_ALL=C sort | cksum)" = "$(tail -n +2 "$2" | LC_ALL=C sort | cksum)" ]; }
reference() { # reference QUERY EVENTS OUT: the embedded run
    "$SLUICE" nexmark --query "$1" --events "$2" -p 3 --quiet -D taskmanager.numberOfTaskSlots=3 --output "$3" ||
        fail "reference run of $1"
}
# wait_checkpoint DIR: until a checkpoint of the newest job directory under DIR completed.
wait_checkpoint() {
    i=0
    until ls "$1"/*/chk-*/_metadata > /dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 1200 ] || fail "no checkpoint completed under $1"
        sleep 0.05
    done
}
running_id() { # the id of the job RUNNING on the cluster
    i=0
    while :; do
        id=$("$SLUICE" list $AT | awk '/ RUNNING / {print $1; exit}')
        [ -n "$id" ] && { echo "$id"; return; }
        i=$((i + 1))
        [ $i -lt 300 ] || fail "no job is running"
        sleep 0.1
    done
}

# 1. SIGKILL of the TaskManagers after checkpoints: restart from the latest, exact output.
for backend in hashmap rocksdb; do
    ck="$WORK/ck-$backend"
    seen=$(wc -l < "$WORK/jm.err") # the JobManager's log lines of earlier rounds
    events=8000000
    [ $backend = rocksdb ] && events=2000000 # slower per record: as long a run with fewer
    timeout 300 "$SLUICE" nexmark --query q5 --events $events -p 3 $AT --output "$WORK/killed-$backend.csv" \
        -D state.backend.type=$backend -D state.backend.rocksdb.localdir="$WORK/rocks" \
        -D execution.checkpointing.interval=200ms -D state.checkpoints.dir="$ck" \
        -D restart-strategy.fixed-delay.delay=200ms 2> "$WORK/killed.err" &
    job=$!
    wait_checkpoint "$ck"
    # Every TaskManager (idle ones of earlier jobs may linger): the job must come back on new ones.
    pkill -9 -f -- "--jobmanager 127.0.0.1:$PORT --id" || fail "no TaskManager to kill"
    wait $job || { cat "$WORK/killed.err"; fail "$backend: the job did not survive the lost TaskManager"; }
    tail -n +$((seen + 1)) "$WORK/jm.err" | grep -q "restart 1 of .* from $ck/.*/chk-[0-9]*" ||
        fail "$backend: the restart did not name the checkpoint it restored"
    reference q5 $events "$WORK/ref.csv"
    same "$WORK/killed-$backend.csv" "$WORK/ref.csv" || fail "$backend: the restored job's output differs"
    if [ $backend = rocksdb ]; then
        ls "$ck"/*/shared/* > /dev/null 2>&1 || fail "rocksdb: no shared (incremental) file was uploaded"
    fi
    echo "ok $backend: TaskManagers killed, restarted $(grep -o "from $ck/[^ ]*" "$WORK/jm.err" | tail -n 1 |
        sed "s|$WORK/||"), $(($(wc -l < "$WORK/ref.csv") - 1)) rows exact"
done

# 2. Savepoint, stop-with-savepoint, resume (same parallelism, then rescaled 3 -> 2).
EVENTS=16000000
reference q5 $EVENTS "$WORK/ref16.csv"
for case in 3:3 2:3 3:1; do
    start_p=${case%:*} resume_p=${case#*:}
    out="$WORK/sp-$start_p-$resume_p.csv"
    timeout 300 "$SLUICE" nexmark --query q5 --events $EVENTS -p "$start_p" $AT --output "$out" \
        -D execution.checkpointing.interval=500ms -D state.checkpoints.dir="$WORK/ck-sp" 2> "$WORK/sp.err" &
    job=$!
    id=$(running_id)
    sp1=$("$SLUICE" savepoint "$id" "$WORK/savepoints" $AT 2> "$WORK/savepoint.err") ||
        { cat "$WORK/savepoint.err"; fail "sluice savepoint"; }
    [ -f "$sp1/chk-${sp1##*-}/_metadata" ] || fail "the savepoint $sp1 has no _metadata"
    ! ls "$sp1"/shared/* > /dev/null 2>&1 || fail "the savepoint $sp1 references shared files"
    sp2=$("$SLUICE" stop "$id" --savepoint "$WORK/savepoints" $AT 2> "$WORK/stop.err") ||
        { cat "$WORK/stop.err"; fail "sluice stop"; }
    wait $job || { cat "$WORK/sp.err"; fail "the stopped job's command failed"; }
    grep -q "finished" "$WORK/sp.err" || fail "the stopped job did not end FINISHED"
    [ "$sp1" != "$sp2" ] || fail "stop returned the earlier savepoint"
    [ ! -f "$out" ] || fail "the stopped job wrote its final output: it ran to the end before the stop"
    timeout 300 "$SLUICE" nexmark --query q5 --events $EVENTS -p "$resume_p" $AT --output "$out" \
        --from-savepoint "$sp2" 2> "$WORK/resume.err" || { cat "$WORK/resume.err"; fail "resume from $sp2"; }
    same "$out" "$WORK/ref16.csv" || fail "the output after stop at p=$start_p and resume at p=$resume_p differs"
    echo "ok p=$start_p: savepoint $(basename "$sp1"), stop with $(basename "$sp2"), resumed at p=$resume_p:" \
        "$(($(wc -l < "$out") - 1)) rows exact"
    [ "$start_p" = 2 ] && sp_p2=$sp2
done

# 2b. Finished tasks: resumed at p=3 from the p=2 stop savepoint, the third source subtask has no
# split and finishes at once. Checkpoints go on (listed finished in their _metadata), and a
# stop-with-savepoint works; resumed from it, the output is exact.
out="$WORK/sp-2-3.csv" # the path the savepoint's sink wrote
timeout 300 "$SLUICE" nexmark --query q5 --events $EVENTS -p 3 $AT --output "$out" --from-savepoint "$sp_p2" \
    -D execution.checkpointing.interval=200ms -D state.checkpoints.dir="$WORK/ck-fin" 2> "$WORK/fin.err" &
job=$!
id=$(running_id)
i=0
until grep -q '"finished": *true' "$WORK"/ck-fin/*/chk-*/_metadata 2> /dev/null; do
    i=$((i + 1))
    [ $i -lt 1200 ] || fail "no checkpoint completed after a source subtask finished"
    sleep 0.05
done
sp3=$("$SLUICE" stop "$id" --savepoint "$WORK/savepoints" $AT 2> "$WORK/stop.err") ||
    { cat "$WORK/stop.err"; fail "sluice stop with a finished subtask"; }
wait $job || { cat "$WORK/fin.err"; fail "the stopped job's command failed"; }
grep -q '"finished": *true' "$sp3"/chk-*/_metadata || fail "the savepoint $sp3 lists no finished subtask"
timeout 300 "$SLUICE" nexmark --query q5 --events $EVENTS -p 3 $AT --output "$out" --from-savepoint "$sp3" \
    2> "$WORK/resume.err" || { cat "$WORK/resume.err"; fail "resume from $sp3"; }
same "$out" "$WORK/ref16.csv" || fail "the output after a stop with a finished subtask differs"
echo "ok finished subtask: checkpoints went on, stop with $(basename "$sp3"), resumed at p=3:" \
    "$(($(wc -l < "$out") - 1)) rows exact"

# 3. Bad input.
expect() { grep -q -- "$2" "$1" || { echo "FAIL: $3: expected '$2' in:"; cat "$1"; exit 1; }; }
"$SLUICE" savepoint no-such-job "$WORK/savepoints" $AT 2> "$WORK/bad.err" && fail "savepoint of an unknown job"
expect "$WORK/bad.err" "no such job" "unknown job"
timeout 300 "$SLUICE" nexmark --query q5 --events 0 -p 3 $AT 2> "$WORK/nock.err" &
job=$!
id=$(running_id)
"$SLUICE" savepoint "$id" "$WORK/savepoints" $AT 2> "$WORK/bad.err" && fail "savepoint without checkpoint storage"
expect "$WORK/bad.err" "no state.checkpoints.dir" "no checkpoint storage"
"$SLUICE" cancel "$id" $AT 2> /dev/null
wait $job
echo "ok savepoint of an unknown job / a job without state.checkpoints.dir: $(cut -c1-100 "$WORK/bad.err")"
cp -r "$sp2" "$WORK/corrupt"
f=$(ls "$WORK"/corrupt/chk-*/*.state | head -n 1)
printf 'X' | dd of="$f" bs=1 seek=20 conv=notrunc 2> /dev/null
timeout 120 "$SLUICE" nexmark --query q5 --events 1000 -p 3 $AT --from-savepoint "$WORK/corrupt" \
    2> "$WORK/bad.err" && fail "a corrupt savepoint was accepted"
expect "$WORK/bad.err" "checksum mismatch in $f" "corrupt savepoint"
timeout 120 "$SLUICE" nexmark --query q7 --events 1000 -p 3 $AT --from-savepoint "$sp2" \
    2> "$WORK/bad.err" && fail "a savepoint of another job was accepted"
expect "$WORK/bad.err" "which this job does not have" "savepoint of another job"
echo "ok corrupt savepoint and another job's savepoint refused, naming the file / the state"
timeout 120 "$SLUICE" nexmark --query q5 --events 100000 -p 3 $AT --output "$WORK/after.csv" 2> /dev/null ||
    fail "the cluster did not run a job after the bad input"
echo "ok the cluster still runs jobs"

kill "$JM"
wait "$JM"
JM=""
check_sanitizer_logs
