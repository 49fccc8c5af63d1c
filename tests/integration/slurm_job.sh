#!/bin/sh
# A job in per-job mode on a real single-node Slurm that this test starts (munge, slurmctld,
# slurmd via scripts/slurm-cluster.sh): `sluice nexmark --target slurm` gets its TaskManagers as
# Slurm jobs (seen in squeue), finishes with the same result as the embedded run, and leaves no
# Slurm job behind; a second job interrupted with SIGINT cancels its Slurm jobs too.
# Needs root (slurmd); exits 77 (skipped) otherwise.
# usage: slurm_job.sh SLUICE SOURCE_DIR
set -u
SLUICE=$1 SRC=$2
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root for slurmd"; exit 77; }
WORK=$(mktemp -d)
chmod 755 "$WORK" # munged runs as the munge user and must reach its directory below
BASE=$((26000 + ($$ % 1500) * 2))
export SLUICE_SECRET="slurm-job-$$"
cleanup() {
    [ -n "${SLURM_CONF:-}" ] && scancel --quiet --user=root 2>/dev/null
    sh "$SRC/scripts/slurm-cluster.sh" stop "$WORK/slurm" > /dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
SL_SLURMCTLD_PORT=$BASE SL_SLURMD_PORT=$((BASE + 1)) sh "$SRC/scripts/slurm-cluster.sh" start "$WORK/slurm" \
    > "$WORK/start.out" 2>&1 || { echo "FAIL: cannot start Slurm"; cat "$WORK/start.out"; exit 1; }
export SLURM_CONF="$WORK/slurm/slurm.conf"
OPTS="-D taskmanager.numberOfTaskSlots=1 -D taskmanager.memory.process.size=256mb -D resourcemanager.log-dir=$WORK/tm"

# watch_squeue FILE: records the most Slurm jobs seen running at once, until killed.
watch_squeue() {
    echo 0 > "$1"
    while :; do
        n=$(squeue -h -t RUNNING 2>/dev/null | wc -l)
        [ "$n" -gt "$(cat "$1")" ] && echo "$n" > "$1"
        sleep 0.2
    done
}

watch_squeue "$WORK/max" &
watcher=$!
# shellcheck disable=SC2086
timeout 300 "$SLUICE" nexmark --query q5 --events 3000000 -p 2 --target slurm $OPTS --output "$WORK/slurm.csv" \
    2> "$WORK/run.err"
st=$?
kill $watcher
[ $st -eq 0 ] || { echo "FAIL: the job on Slurm exited $st"; cat "$WORK/run.err"; exit 1; }
"$SLUICE" nexmark --query q5 --events 3000000 -p 2 --quiet --output "$WORK/local.csv" || exit 1
[ "$(LC_ALL=C sort "$WORK/slurm.csv" | cksum)" = "$(LC_ALL=C sort "$WORK/local.csv" | cksum)" ] ||
    { echo "FAIL: the result on Slurm differs from the embedded run"; exit 1; }
[ "$(cat "$WORK/max")" -ge 2 ] || { echo "FAIL: squeue never showed the 2 TaskManager jobs"; exit 1; }
left=$(squeue -h | wc -l)
[ "$left" -eq 0 ] || { echo "FAIL: $left Slurm jobs left after the job"; squeue; exit 1; }
echo "ok q5 p=2 with --target slurm: TaskManagers as Slurm jobs ($(cat "$WORK/max") seen running)," \
     "$(($(wc -l < "$WORK/local.csv") - 1)) rows identical, no Slurm job left"

# Interrupting the command cancels the job and its Slurm jobs.
# shellcheck disable=SC2086
"$SLUICE" nexmark --query q5 --events 0 -p 2 --target slurm $OPTS 2> "$WORK/cancel.err" &
job=$!
i=0
until [ "$(squeue -h -t RUNNING 2>/dev/null | wc -l)" -ge 2 ]; do
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "FAIL: the second job's TaskManagers never ran"; cat "$WORK/cancel.err"; exit 1; }
    sleep 0.1
done
sleep 1
kill -INT $job
wait $job
st=$?
[ $st -eq 130 ] || { echo "FAIL: the interrupted job exited $st"; cat "$WORK/cancel.err"; exit 1; }
i=0
while [ "$(squeue -h | wc -l)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
left=$(squeue -h | wc -l)
[ "$left" -eq 0 ] || { echo "FAIL: $left Slurm jobs left after cancelling"; squeue; exit 1; }
echo "ok SIGINT cancels the job and its Slurm jobs (exit 130, squeue empty)"
