#!/bin/sh
# The job library travels with the job (SubmitJob.library_bytes -> DeployJob.library_bytes):
# - the sensor job submitted from a copy that is deleted as soon as the job is submitted gives
#   the embedded run's result, so the TaskManagers loaded what they were sent, not the path;
# - their private copies (TMPDIR/sluice-tm-*/lib-*.so, dir 0700, file 0600) are gone shortly
#   after the job (SL_LIBRARY_CACHE_LINGER_MS) and the directories when the TaskManagers exit;
# - a garbage x.so is refused by the CLI naming it and dlopen's reason, one above 48 MiB naming
#   it and its size; a library that loads on
#   the submitting side but not on the TaskManagers (a dependency they do not find) fails the
#   job naming the library and dlopen's reason; the cluster keeps running: a next job succeeds.
# usage: cluster_library.sh SLUICE SENSOR_JOB_SO NEEDS_LIB_JOB_SO NEEDED_LIB_DIR
set -u
SLUICE=$1 SENSOR=$2 NEEDS=$3 NEEDED_DIR=$4
WORK=${SL_KEEP_DIR:-$(mktemp -d)}
export SLUICE_SECRET="cluster-library-$$"
JM=""
PORT=0
cleanup() {
    [ -n "$JM" ] && kill "$JM" 2>/dev/null && wait "$JM" 2>/dev/null
    pkill -9 -f -- "--jobmanager 127.0.0.1:$PORT " 2>/dev/null
    [ -n "${SL_KEEP_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$WORK/jm.err"; exit 1; }

# The TaskManagers inherit the JobManager's environment: their libraries go under $WORK/tmp.
mkdir -p "$WORK/tmp"
TMPDIR="$WORK/tmp" "$SLUICE" jobmanager --port 0 -D resourcemanager.driver=local -D taskmanager.numberOfTaskSlots=1 \
    -D resourcemanager.log-dir="$WORK/logs" -D resourcemanager.taskmanager-timeout=120s \
    -D heartbeat.interval=200ms -D heartbeat.timeout=2s > "$WORK/jm.out" 2> "$WORK/jm.err" &
JM=$!
i=0
until grep -q "listening on" "$WORK/jm.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "the JobManager did not start"
    sleep 0.05
done
PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$WORK/jm.out")
JMADDR="127.0.0.1:$PORT"

same() { [ "$(LC_ALL=C sort "$1" | cksum)" = "$(LC_ALL=C sort "$2" | cksum)" ]; }
libfiles() { find "$WORK/tmp" -name 'lib-*.so' 2>/dev/null | wc -l; }

"$SLUICE" run -p 3 -D taskmanager.numberOfTaskSlots=3 --quiet "$SENSOR" --readings 60000 --output "$WORK/local.csv" \
    2> /dev/null || fail "sensor job locally"

# 1. Submitted from a copy that disappears once the job is submitted.
mkdir -p "$WORK/copy"
cp "$SENSOR" "$WORK/copy/sensor_copy.so"
timeout 300 "$SLUICE" run --jobmanager "$JMADDR" -p 3 "$WORK/copy/sensor_copy.so" --readings 60000 \
    --output "$WORK/dist.csv" 2> "$WORK/submit.err" &
job=$!
i=0
until grep -q "submitted to" "$WORK/submit.err" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 600 ] || { cat "$WORK/submit.err"; fail "the job was not submitted"; }
    sleep 0.02
done
rm -rf "$WORK/copy"
wait $job || { cat "$WORK/submit.err"; fail "the sensor job from a deleted copy failed on the cluster"; }
same "$WORK/dist.csv" "$WORK/local.csv" || fail "the result of the shipped library differs from the embedded run"
echo "ok job library shipped: submitted from a copy deleted after submission, $(($(wc -l < "$WORK/local.csv") - 1)) rows identical to the embedded run"

# 2. The TaskManagers' private copies: there right after the job (lingering for a restart),
#    private, then gone.
n=$(libfiles)
[ "$n" -ge 1 ] || fail "no private library file under $WORK/tmp right after the job (expected lingering copies)"
for f in $(find "$WORK/tmp" -name 'lib-*.so'); do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f"), not 600"
    [ "$(stat -c %a "$(dirname "$f")")" = 700 ] || fail "$(dirname "$f") is not mode 700"
done
i=0
while [ "$(libfiles)" -gt 0 ]; do
    i=$((i + 1))
    [ $i -lt 150 ] || fail "TaskManagers' library files still there 15 s after the job: $(find "$WORK/tmp" -type f)"
    sleep 0.1
done
echo "ok the TaskManagers' $n private copies (mode 600 in 700 directories) were removed after the job"

# 3. Garbage: refused by the CLI, naming the file and dlopen's reason.
echo "this is not a shared object" > "$WORK/x.so"
"$SLUICE" run --jobmanager "$JMADDR" -p 2 "$WORK/x.so" 2> "$WORK/garbage.err"
st=$?
[ $st -ne 0 ] || fail "a garbage x.so was accepted"
grep -q "x.so" "$WORK/garbage.err" && grep -q "invalid ELF header\|file too short" "$WORK/garbage.err" ||
    { cat "$WORK/garbage.err"; fail "the garbage library's error names neither it nor dlopen's reason"; }
echo "ok garbage x.so refused: $(head -n 1 "$WORK/garbage.err")"

# A library above the limit (a valid one padded to 49 MiB: the loader ignores what follows).
cp "$SENSOR" "$WORK/big.so"
truncate -s 49M "$WORK/big.so"
"$SLUICE" run --jobmanager "$JMADDR" -p 2 "$WORK/big.so" 2> "$WORK/big.err"
st=$?
[ $st -ne 0 ] || fail "a 49 MiB library was shipped"
grep -q "big.so is 49.0 MiB (51380224 bytes): at most 48 MiB" "$WORK/big.err" ||
    { cat "$WORK/big.err"; fail "the oversized library's error does not name it and its size"; }
echo "ok a 49 MiB library refused: $(head -n 1 "$WORK/big.err" | cut -c1-160)"

# 4. Loads where it is submitted (LD_LIBRARY_PATH), not on the TaskManagers.
LD_LIBRARY_PATH="$NEEDED_DIR" timeout 300 "$SLUICE" run --jobmanager "$JMADDR" -p 2 \
    -D restart-strategy.fixed-delay.attempts=0 "$NEEDS" --readings 1000 --output "$WORK/needs.csv" \
    2> "$WORK/needs.err"
st=$?
[ $st -ne 0 ] && [ $st -ne 124 ] || { cat "$WORK/needs.err"; fail "the job whose library cannot load exited $st"; }
grep -q "cannot load the job library needs_lib_job.so: .*libsl_test_needed.so" "$WORK/needs.err" ||
    { cat "$WORK/needs.err"; fail "the failure does not name the library and dlopen's reason"; }
echo "ok a library the TaskManagers cannot load fails the job: $(grep -o "cannot load the job library.*" "$WORK/needs.err" | head -n 1 | cut -c1-160)"
[ "$(libfiles)" -eq 0 ] || fail "the unloadable library's files were kept: $(find "$WORK/tmp" -type f)"

# 5. The cluster keeps running: the next job succeeds, on the same TaskManagers.
tms_before=$(pgrep -f -- "--jobmanager $JMADDR --id" | wc -l)
timeout 300 "$SLUICE" run --jobmanager "$JMADDR" -p 3 "$SENSOR" --readings 60000 --output "$WORK/dist2.csv" \
    2> "$WORK/submit2.err" || { cat "$WORK/submit2.err"; fail "the job after the failures failed"; }
same "$WORK/dist2.csv" "$WORK/local.csv" || fail "the job after the failures gave another result"
[ "$tms_before" -ge 2 ] || fail "TaskManagers did not survive the failed deployment ($tms_before left)"
echo "ok the cluster keeps running: the next job's result is exact ($tms_before TaskManagers were still up)"

# 6. At exit the TaskManagers remove their directories.
kill "$JM"
wait "$JM"
JM=""
i=0
while pgrep -f -- "--jobmanager $JMADDR " > /dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
pgrep -f -- "--jobmanager $JMADDR " > /dev/null && fail "TaskManager processes outlived the JobManager"
left=$(find "$WORK/tmp" -mindepth 1 | head -n 5)
[ -z "$left" ] || fail "left behind by the TaskManagers: $left"
echo "ok the TaskManagers removed their library directories at exit"

if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK"/*.err "$WORK"/logs/*.log \
    2>/dev/null; then
    fail "a sanitizer reported errors in the processes above"
fi
