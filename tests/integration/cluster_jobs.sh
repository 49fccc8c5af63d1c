#!/bin/sh
# Jobs on a cluster of processes: a JobManager whose local driver starts one TaskManager
# process per slot, Nexmark queries at parallelism 3 submitted to it (`--jobmanager`), their
# results identical to the same query on the embedded mini-cluster; then a TaskManager killed
# with SIGKILL in the middle of a job: the job fails with an error naming it, the command exits
# non-zero, and no process is left behind.
# usage: cluster_jobs.sh SLUICE
set -u
SLUICE=$1
WORK=${SL_KEEP_DIR:-$(mktemp -d)}
export SLUICE_SECRET="cluster-jobs-$$"
JM=""
cleanup() {
    [ -n "$JM" ] && kill "$JM" 2>/dev/null && wait "$JM" 2>/dev/null
    pkill -9 -f -- "--jobmanager 127.0.0.1:$PORT " 2>/dev/null
    [ -n "${SL_KEEP_DIR:-}" ] || rm -rf "$WORK"
}
PORT=0
trap cleanup EXIT

"$SLUICE" jobmanager --port 0 -D resourcemanager.driver=local -D taskmanager.numberOfTaskSlots=1 \
    -D resourcemanager.log-dir="$WORK/logs" -D resourcemanager.taskmanager-timeout=20s \
    -D heartbeat.interval=200ms -D heartbeat.timeout=2s > "$WORK/jm.out" 2> "$WORK/jm.err" &
JM=$!
i=0
until grep -q "listening on" "$WORK/jm.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 200 ] || { echo "FAIL: the JobManager did not start"; cat "$WORK/jm.err"; exit 1; }
    sleep 0.05
done
PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$WORK/jm.out")

same() { [ "$(LC_ALL=C sort "$1" | cksum)" = "$(LC_ALL=C sort "$2" | cksum)" ]; }

for q in q5 q8 q3 q7; do
    rm -f "$WORK/dist.csv" "$WORK/local.csv"
    if ! timeout 300 "$SLUICE" nexmark --query $q --events 1000000 -p 3 --jobmanager "127.0.0.1:$PORT" \
        --output "$WORK/dist.csv" 2> "$WORK/submit.err"; then
        echo "FAIL $q on the cluster:"; cat "$WORK/submit.err"; tail -n 20 "$WORK/jm.err"; exit 1
    fi
    "$SLUICE" nexmark --query $q --events 1000000 -p 3 --quiet -D taskmanager.numberOfTaskSlots=3 \
        --output "$WORK/local.csv" || { echo "FAIL $q locally"; exit 1; }
    rows=$(($(wc -l < "$WORK/local.csv") - 1))
    same "$WORK/dist.csv" "$WORK/local.csv" ||
        { echo "FAIL $q: the cluster's result differs ($(wc -l < "$WORK/dist.csv") lines vs $rows + 1)"; exit 1; }
    [ "$rows" -gt 0 ] || [ $q = q3 ] || { echo "FAIL $q: no rows, the comparison proves nothing"; exit 1; }
    echo "ok $q p=3 on 3 TaskManager processes: $rows rows identical to the embedded run"
done
started=$(ls "$WORK"/logs/local-*.log 2>/dev/null | wc -l)
[ "$started" -ge 3 ] || { echo "FAIL: expected TaskManagers started by the local driver, saw $started"; exit 1; }

# A TaskManager killed in the middle of a job: the job fails naming it, quickly.
timeout 300 "$SLUICE" nexmark --query q5 --events 200000000 -p 3 --jobmanager "127.0.0.1:$PORT" \
    > /dev/null 2> "$WORK/killed.err" &
job=$!
i=0
until [ $i -gt 30 ] && [ "$(pgrep -f -- "--jobmanager 127.0.0.1:$PORT --id" | wc -l)" -ge 3 ]; do
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "FAIL: the long job did not start"; exit 1; }
    sleep 0.1
done
victim=$(pgrep -f -- "--jobmanager 127.0.0.1:$PORT --id" | head -n 1)
kill -9 "$victim"
wait $job
st=$?
[ $st -ne 0 ] && [ $st -ne 124 ] || { echo "FAIL: the job's command exited $st after a TaskManager died"; exit 1; }
grep -q "failed" "$WORK/killed.err" || { echo "FAIL: no failure reported:"; cat "$WORK/killed.err"; exit 1; }
echo "ok SIGKILL of a TaskManager during a job: $(grep -m1 -o "failed: .*" "$WORK/killed.err" | cut -c1-160)"

# The JobManager stops its TaskManagers when it goes; nothing stays behind.
kill "$JM"
wait "$JM"
JM=""
i=0
while pgrep -f -- "--jobmanager 127.0.0.1:$PORT " > /dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if pgrep -f -- "--jobmanager 127.0.0.1:$PORT " > /dev/null; then
    echo "FAIL: TaskManager processes outlived the JobManager"; exit 1
fi
echo "ok no TaskManager process left after the JobManager stopped"
