#!/bin/sh
# Backpressure across processes: a JobManager (standalone driver) and two TaskManager processes
# started by hand with one slot each and a small explicit memory bound; a job (examples/
# slow_sink_job.c) whose unbounded generator source keys 100-byte rows to a sink, at p=2, so
# subtask i of both vertices runs in slot i and the keyBy exchange crosses processes. Only sink
# subtask 1 is slow: source subtask 0's only slow consumer is in the other process, so what
# throttles it is the data plane's credit, nothing local.
#
# First a baseline (the sink takes rows as they come) measures how fast the source can run; then
# the slow job runs for a while with every process's RSS (VmRSS, VmHWM) and the subtasks'
# progress sampled each second. Asserted:
#  (a) at every sample the source has emitted at most what the sinks consumed plus what the
#      network memory of both TaskManagers can hold, i.e. its rate fell to the sink's (the
#      baseline shows it would otherwise run far ahead), and the sinks really consumed rows;
#  (b) every process's peak RSS stays under taskmanager.memory.process.size (the TaskManagers'
#      bound; the JobManager is held to it too), and no process's RSS grows between the middle
#      and the end of the run by more than a small margin (under ASan with its quarantine off);
#  then `sluice cancel` ends the job (CANCELED, the command exits 130, the subtasks stop), and
#  stopping the JobManager leaves no process behind.
# usage: cluster_backpressure.sh SLUICE SLOW_SINK_JOB_SO
set -u
SLUICE=$1 JOBLIB=$2
WORK=${SL_KEEP_DIR:-$(mktemp -d)}
export SLUICE_SECRET="cluster-backpressure-$$"
PROCESS_MB=${SL_BP_PROCESS_MB:-256}  # taskmanager.memory.process.size of each TaskManager
NET_MB=${SL_BP_NETWORK_MB:-2}        # taskmanager.memory.network.size
RATE=${SL_BP_SINK_RATE:-20000}       # rows/s of the slow sink subtask
RUN_S=${SL_BP_SECONDS:-16}           # samples of the slow job - 1, one a second (plus their cost)
ROW_BYTES=100
GROWTH_KB=${SL_BP_GROWTH_KB:-8192}   # allowed RSS growth, middle -> end
JM="" TMS="" SUBMIT=""
cleanup() {
    for p in $SUBMIT $TMS $JM; do kill "$p" 2>/dev/null; done
    sleep 0.5
    for p in $SUBMIT $TMS $JM; do kill -9 "$p" 2>/dev/null; done
    [ -n "${SL_KEEP_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP PIPE
fail() {
    echo "FAIL: $*"
    for f in "$WORK"/jm.err "$WORK"/tm-*.err "$WORK"/submit*.err; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done
    exit 1
}

# Under ASan, freed memory waits in the quarantine (256 MiB by default) before it is reused,
# so RSS grows with every free even when the engine holds nothing more: the processes started
# here run without quarantine, and RSS then shows live memory plus the shadow (bound kept).
if grep -aq "__asan_init" "$SLUICE"; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    echo "ASan build: processes run with the ASan quarantine off (ASAN_OPTIONS=$ASAN_OPTIONS), so that RSS" \
        "shows live memory; use-after-free detection is weaker here (cluster_jobs runs with it)"
fi

"$SLUICE" jobmanager --port 0 -D resourcemanager.driver=standalone -D heartbeat.interval=500ms \
    -D heartbeat.timeout=10s > "$WORK/jm.out" 2> "$WORK/jm.err" &
JM=$!
i=0
until grep -q "listening on" "$WORK/jm.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 400 ] || fail "the JobManager did not start"
    sleep 0.05
done
PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$WORK/jm.out")
JMADDR="127.0.0.1:$PORT"

MEMOPTS="-D taskmanager.memory.process.size=${PROCESS_MB}m -D taskmanager.memory.network.size=${NET_MB}m"
for n in a b; do
    # shellcheck disable=SC2086
    "$SLUICE" taskmanager --jobmanager "$JMADDR" --slots 1 --id "bp-tm-$n" -D heartbeat.interval=500ms \
        -D heartbeat.timeout=10s $MEMOPTS 2> "$WORK/tm-$n.err" &
    TMS="$TMS $!"
done
for n in a b; do
    i=0
    until grep -q "registered with the JobManager" "$WORK/tm-$n.err" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 400 ] || fail "TaskManager bp-tm-$n did not register"
        sleep 0.05
    done
done
set -- $TMS
TMA=$1 TMB=$2

# kb PID FIELD: VmRSS or VmHWM of a process in KiB (0 when it is gone).
kb() { awk -v f="$2:" '$1 == f {print $2; found = 1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
# rows WHAT: the rows all subtasks of the source or the sink reported (stats files).
rows() { cat "$STATS/$1"-* 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# count FILE: the rows one subtask reported.
count() { awk '{print $1}' "$STATS/$1" 2>/dev/null; }
now_ms() { date +%s%3N; }
# per_s ROWS MS: a rate in rows per second.
per_s() { echo $(($1 * 1000 / ($2 > 0 ? $2 : 1))); }
pid_of() { awk '{print $2}' "$STATS/$1" 2>/dev/null; }

# submit NAME ARGS...: submits the job library at p=2 in the background ($SUBMIT), waits until
# every subtask reported progress and sets $JOBID.
submit() {
    name=$1
    shift
    STATS="$WORK/stats-$name"
    rm -rf "$STATS"
    mkdir -p "$STATS"
    # shellcheck disable=SC2086
    "$SLUICE" run --jobmanager "$JMADDR" -p 2 $MEMOPTS "$JOBLIB" --stats "$STATS" "$@" \
        > /dev/null 2> "$WORK/submit-$name.err" &
    SUBMIT=$!
    i=0
    until [ -f "$STATS/source-0" ] && [ -f "$STATS/source-1" ] && [ -f "$STATS/sink-0" ] && [ -f "$STATS/sink-1" ]; do
        i=$((i + 1))
        [ $i -lt 1200 ] || fail "job $name: not every subtask reported progress within 120 s"
        alive "$SUBMIT" || fail "job $name ended before it ran"
        sleep 0.1
    done
    "$SLUICE" list --jobmanager "$JMADDR" > "$WORK/list.out" 2>&1 || fail "sluice list"
    JOBID=$(awk '$2 == "RUNNING" {print $1}' "$WORK/list.out" | tail -n 1)
    [ -n "$JOBID" ] || fail "job $name is not RUNNING: $(cat "$WORK/list.out")"
}

# cancel NAME: sluice cancel; the submitting command must exit 130 and the subtasks stop.
cancel() {
    "$SLUICE" cancel "$JOBID" --jobmanager "$JMADDR" 2> "$WORK/cancel.err" || fail "sluice cancel $JOBID"
    i=0
    while alive "$SUBMIT"; do
        i=$((i + 1))
        [ $i -lt 600 ] || fail "job $1 did not end within 60 s of its cancel"
        sleep 0.1
    done
    wait "$SUBMIT"
    st=$?
    SUBMIT=""
    [ $st -eq 130 ] || fail "the canceled job $1's command exited $st"
    "$SLUICE" list --jobmanager "$JMADDR" > "$WORK/list.out" 2>&1
    grep -q "^$JOBID *CANCELED" "$WORK/list.out" || fail "job $1 is not CANCELED: $(cat "$WORK/list.out")"
    # The subtasks really stopped: the source's count no longer moves.
    s0=$(rows source)
    sleep 1
    s1=$(rows source)
    [ "$s0" -eq "$s1" ] || fail "job $1's source still runs after the cancel ($s0 -> $s1 rows)"
}

# ---- Baseline: the same job, no sink throttled. ----
submit baseline --sink-rate 0
sleep 1
b0=$(rows source) bt0=$(now_ms)
sleep 3
b1=$(rows source) bt1=$(now_ms)
BASE_RATE=$(per_s $((b1 - b0)) $((bt1 - bt0)))
cancel baseline
echo "baseline (no slow sink): the source emits $BASE_RATE rows/s"

# ---- The slow job ----
submit slow --sink-rate "$RATE" --slow-subtask 1
# Sink subtask 1, the slow one, runs in the other process than source subtask 0.
P_SRC0=$(pid_of source-0) P_SINK1=$(pid_of sink-1)
[ "$P_SRC0" = "$TMA" ] || [ "$P_SRC0" = "$TMB" ] || fail "source subtask 0 runs in pid $P_SRC0, no TaskManager"
[ "$P_SINK1" = "$TMA" ] || [ "$P_SINK1" = "$TMB" ] || fail "sink subtask 1 runs in pid $P_SINK1, no TaskManager"
[ "$P_SRC0" != "$P_SINK1" ] || fail "source 0 and the slow sink 1 run in the same process: no exchange crosses processes"
echo "placement: source 0 + sink 0 in TaskManager pid $P_SRC0, source 1 + slow sink 1 in pid $P_SINK1"

# In flight at most: both TaskManagers' network memory (producer pools and receive buffers are
# two budgets of taskmanager.memory.network.size each), counted in rows.
INFLIGHT_MAX=$((2 * 2 * NET_MB * 1048576 / ROW_BYTES))
sleep 2 # let the buffers fill: from here on the source can only follow the sink
printf '%6s %10s %10s %9s %9s %9s %9s\n' t source sink in-flight "JM KiB" "TM-a KiB" "TM-b KiB"
t=0 max_inflight=0 T0=$(now_ms)
while [ $t -le "$RUN_S" ]; do
    ms=$(now_ms) src=$(rows source) snk=$(rows sink) s0=$(count source-0) k1=$(count sink-1)
    inflight=$((src - snk))
    ra=$(kb "$TMA" VmRSS) rb=$(kb "$TMB" VmRSS) rj=$(kb "$JM" VmRSS)
    printf '%6s %10d %10d %9d %9d %9d %9d\n' "$(((ms - T0) / 1000)).$(((ms - T0) % 1000 / 100))" "$src" "$snk" $inflight "$rj" "$ra" "$rb"
    [ "$ra" -gt 0 ] && [ "$rb" -gt 0 ] && [ "$rj" -gt 0 ] || fail "a process is gone (RSS JM $rj, TM $ra $rb)"
    [ $inflight -le $INFLIGHT_MAX ] ||
        fail "no backpressure: the source is $inflight rows ahead of the sinks (network memory holds $INFLIGHT_MAX)"
    [ $inflight -gt $max_inflight ] && max_inflight=$inflight
    if [ $t -eq 0 ]; then ms0=$ms src0=$src snk0=$snk s0_0=$s0 k1_0=$k1; fi
    if [ $t -eq $((RUN_S / 2)) ]; then
        srcm=$src snkm=$snk mid_a=$ra mid_b=$rb mid_j=$rj
    fi
    t=$((t + 1))
    [ $t -gt "$RUN_S" ] || sleep 1
done
ms_end=$ms src_end=$src snk_end=$snk end_a=$ra end_b=$rb end_j=$rj s0_end=$s0 k1_end=$k1
hwm_a=$(kb "$TMA" VmHWM) hwm_b=$(kb "$TMB" VmHWM) hwm_j=$(kb "$JM" VmHWM)

# (a) Backpressure.
[ "$snk_end" -gt "$snk0" ] && [ "$k1_end" -gt "$k1_0" ] || fail "the sinks consumed nothing ($snk0 -> $snk_end)"
RUN_MS=$((ms_end - ms0))
src_rate=$(per_s $((src_end - src0)) $RUN_MS)
snk_rate=$(per_s $((snk_end - snk0)) $RUN_MS)
echo "over $((RUN_MS / 1000)).$((RUN_MS % 1000 / 100)) s: source $src_rate rows/s (subtask 0, whose slow consumer" \
    "is remote: $(per_s $((s0_end - s0_0)) $RUN_MS) rows/s), sinks $snk_rate rows/s" \
    "(the slow subtask 1, throttled to $RATE rows/s: $(per_s $((k1_end - k1_0)) $RUN_MS) rows/s)"
echo "in flight at most $max_inflight rows = $((max_inflight * ROW_BYTES / 1024)) KiB" \
    "(bound: $INFLIGHT_MAX rows = the network memory of both TaskManagers)"
# Not vacuous: unthrottled, the source would have run past the bound within the run.
[ $((BASE_RATE * RUN_MS / 1000)) -gt $((snk_end - snk0 + INFLIGHT_MAX)) ] ||
    fail "the baseline source ($BASE_RATE rows/s) is too slow to show backpressure against $snk_rate rows/s"
# Second half: what the source emitted is what the sinks consumed, within the bound.
[ $((src_end - srcm)) -le $((snk_end - snkm + INFLIGHT_MAX)) ] ||
    fail "second half: the source emitted $((src_end - srcm)) rows, the sinks consumed $((snk_end - snkm))"
echo "ok backpressure across processes: the source follows the slow sink ($src_rate vs $snk_rate rows/s;" \
    "unthrottled $BASE_RATE rows/s)"

# (b) Memory.
echo "peak RSS (VmHWM): JobManager $((hwm_j / 1024)) MiB, TaskManager a $((hwm_a / 1024)) MiB," \
    "TaskManager b $((hwm_b / 1024)) MiB (bound ${PROCESS_MB} MiB);" \
    "RSS middle -> end: JM $mid_j -> $end_j KiB, TM a $mid_a -> $end_a KiB, TM b $mid_b -> $end_b KiB"
for v in "TaskManager-a:$hwm_a" "TaskManager-b:$hwm_b" "JobManager:$hwm_j"; do
    [ "${v#*:}" -le $((PROCESS_MB * 1024)) ] || fail "${v%%:*} peak RSS ${v#*:} KiB over ${PROCESS_MB} MiB"
done
for v in "TaskManager-a:$mid_a:$end_a" "TaskManager-b:$mid_b:$end_b" "JobManager:$mid_j:$end_j"; do
    w=${v#*:}
    m=${w%%:*} e=${w#*:}
    [ $((e - m)) -le "$GROWTH_KB" ] || fail "${v%%:*} RSS grew from $m to $e KiB in the second half"
done
echo "ok memory: every process under ${PROCESS_MB} MiB, no RSS growth over ${GROWTH_KB} KiB in the second half"

cancel slow
echo "ok sluice cancel: the job is CANCELED, its command exited 130, its subtasks stopped"

# Stopping the JobManager stops the TaskManagers; no process is left.
kill "$JM"
wait "$JM"
i=0
while [ $i -lt 100 ]; do
    left=""
    for p in $TMS; do alive "$p" && left="$left $p"; done
    [ -z "$left" ] && break
    sleep 0.1
    i=$((i + 1))
done
[ -z "$left" ] || fail "processes left after the JobManager stopped:$left"
JM=""
for p in $TMS; do wait "$p"; done # reap them
TMS=""
echo "ok no process left"

if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK"/*.err 2>/dev/null; then
    fail "a sanitizer reported errors in the processes above"
fi
