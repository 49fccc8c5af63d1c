#!/bin/sh
# Deployment time on a cluster of processes: a JobManager with the local driver (16 slots per
# TaskManager), a Nexmark q8 job at parallelism 64 (3 vertices x 64 = 192 subtasks; q8 has no
# 2-vertex shape at one parallelism), measured by the JobMaster from asking for slots to every
# TaskManager having accepted its subtasks: once cold (the driver starts 4 TaskManager
# processes) and once warm (they are idle and reused). Prints figures, asserts nothing.
# usage: bench/cluster_bench.sh BUILD_DIR
set -u
B=${1:-build}/sluice
WORK=$(mktemp -d)
export SLUICE_SECRET="bench-$$"
SLUICE_LOG=info "$B" jobmanager --port 0 -D resourcemanager.driver=local -D taskmanager.numberOfTaskSlots=16 \
    -D resourcemanager.log-dir="$WORK" -D resourcemanager.taskmanager-timeout=60s \
    -D taskmanager.memory.network.size=256mb > "$WORK/jm.out" 2> "$WORK/jm.err" &
jm=$!
trap 'kill $jm 2>/dev/null; wait $jm 2>/dev/null; rm -rf "$WORK"' EXIT
i=0
until grep -q "listening on" "$WORK/jm.out" 2>/dev/null; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done
PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$WORK/jm.out")
for run in cold warm; do
    start=$(date +%s%N)
    "$B" nexmark --query q8 --events 64000 -p 64 --jobmanager "127.0.0.1:$PORT" \
        -D taskmanager.memory.network.size=256mb 2> "$WORK/$run.err" || { cat "$WORK/$run.err"; exit 1; }
    end=$(date +%s%N)
    line=$(grep "deployed in" "$WORK/jm.err" | tail -n 1 | sed 's/.*subtasks on/subtasks on/')
    echo "deploy $run: $line; submit to finished $(( (end - start) / 1000000 )) ms"
done
