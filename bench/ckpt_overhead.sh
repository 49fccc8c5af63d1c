#!/bin/sh
# Cost of checkpoints on a Nexmark query: the same run without checkpoints and with one every
# second, REPEAT times each (interleaved, so a noisy neighbour hits both alike), printing every
# run's wall seconds, CPU seconds (user + system of the process) and completed checkpoints, then
# the medians and the difference. Prints figures, asserts nothing.
# usage: bench/ckpt_overhead.sh BUILD_DIR QUERY EVENTS [hashmap|rocksdb] [REPEAT]
set -u
B=${1:-build}/sluice
Q=${2:-q8}
N=${3:-40000000}
BACKEND=${4:-hashmap}
R=${5:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
i=0
while [ $i -lt "$R" ]; do
    i=$((i + 1))
    for mode in none 1s; do
        rm -rf "$WORK/ck" "$WORK/rocks"
        set -- -D state.backend.type="$BACKEND" -D state.backend.rocksdb.localdir="$WORK/rocks"
        [ "$mode" = 1s ] && set -- "$@" -D execution.checkpointing.interval=1s -D state.checkpoints.dir="$WORK/ck"
        /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$B" nexmark --query "$Q" --events "$N" --quiet "$@" \
            > "$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
        ck=$(sed -n 's/^checkpoints: \([0-9]*\) completed.*/\1/p' "$WORK/out")
        read -r wall user sys < "$WORK/time"
        cpu=$(echo "$user $sys" | awk '{printf "%.2f", $1 + $2}')
        echo "$Q $BACKEND $N checkpoints=$mode run $i: ${wall} s wall, ${cpu} CPU-s, ${ck:-0} checkpoints"
        echo "$wall" >> "$WORK/wall.$mode"
        echo "$cpu" >> "$WORK/cpu.$mode"
    done
done
w0=$(median < "$WORK/wall.none"); w1=$(median < "$WORK/wall.1s")
c0=$(median < "$WORK/cpu.none"); c1=$(median < "$WORK/cpu.1s")
echo "median of $R: none ${w0} s wall ${c0} CPU-s; every 1s ${w1} s wall ${c1} CPU-s;" \
    "wall $(echo "$w0 $w1" | awk '{printf "%+.0f%%", ($2 / $1 - 1) * 100}')," \
    "CPU $(echo "$c0 $c1" | awk '{printf "%+.0f%%", ($2 / $1 - 1) * 100}')"
