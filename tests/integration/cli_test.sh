#!/bin/sh
# End-to-end checks of the `sluice` command: jobs that must work, and bad input that must give
# a clear error naming the cause with a non-zero exit (never a crash).
# usage: cli_test.sh SLUICE WORD_COUNT_JOB_SO SENSOR_JOB_SO
set -u
SLUICE=$1 WC=$2 SENSOR=$3
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fails=0 passes=0

# expect_fail NAME EXPECTED_TEXT command...: exit 1 or 2 (not a signal) and the text on stderr.
expect_fail() {
    name=$1 text=$2
    shift 2
    "$@" > "$WORK/out" 2> "$WORK/err"
    st=$?
    if [ $st -eq 0 ] || [ $st -gt 2 ]; then
        echo "FAIL $name: exit status $st (want 1 or 2)"; cat "$WORK/err"; fails=$((fails + 1)); return
    fi
    if ! grep -q -- "$text" "$WORK/err"; then
        echo "FAIL $name: stderr lacks '$text':"; cat "$WORK/err"; fails=$((fails + 1)); return
    fi
    passes=$((passes + 1))
}

expect_ok() {
    name=$1
    shift
    "$@" > "$WORK/out" 2> "$WORK/err"
    st=$?
    if [ $st -ne 0 ]; then
        echo "FAIL $name: exit status $st"; cat "$WORK/err"; fails=$((fails + 1)); return 1
    fi
    passes=$((passes + 1))
}

expect_fail unknown-command "unknown command 'frobnicate'" "$SLUICE" frobnicate
expect_fail unknown-query "unknown Nexmark query 'q6'" "$SLUICE" nexmark --query q6 --events 10
expect_fail bad-parallelism "invalid value '0' for --parallelism" "$SLUICE" nexmark --query q0 --events 10 --parallelism 0
expect_fail bad-events "invalid value 'ten' for --events" "$SLUICE" nexmark --query q0 --events ten
expect_fail unknown-option "unknown option '--frob'" "$SLUICE" nexmark --query q0 --frob
expect_fail unknown-key "paralelism.default" "$SLUICE" nexmark --query q0 --events 10 -D paralelism.default=2
expect_fail bad-value "parallelism.default" "$SLUICE" nexmark --query q0 --events 10 -D parallelism.default=abc
printf 'parallelism.default: 2\nnot.a.key: 1\n' > "$WORK/conf.yaml"
expect_fail yaml-unknown-key "not.a.key" "$SLUICE" run -c "$WORK/conf.yaml" wordcount --lines 10
expect_fail missing-config "$WORK/nope.yaml" "$SLUICE" run -c "$WORK/nope.yaml" wordcount --lines 10
expect_fail too-few-slots "needs 4 slots" "$SLUICE" nexmark --query q0 --events 10 --parallelism 4 \
    -D taskmanager.numberOfTaskSlots=1
expect_fail missing-input "$WORK/missing.txt" "$SLUICE" run "$WC" --input "$WORK/missing.txt"
expect_fail missing-library "cannot read job library" "$SLUICE" run "$WORK/none.so"

# A library without the entry point, and one naming a function it does not define.
printf 'int unrelated = 1;\n' > "$WORK/nomain.c"
cc -shared -fPIC -o "$WORK/nomain.so" "$WORK/nomain.c"
expect_fail no-entry-point "no entry point 'sluice_job_main'" "$SLUICE" run "$WORK/nomain.so"
cat > "$WORK/nosym.c" <<'C'
#include <sluice/job.h>
int sluice_job_main(sl_job_t *job, int argc, char **argv) {
    sl_stream_t *s = sl_source_generator(job, "gen", "no_such_generator", "x:int64", 10);
    sl_sink_discard(s, "discard");
    return 0;
}
C
cc -shared -fPIC -I"$SRC/include" -o "$WORK/nosym.so" "$WORK/nosym.c"
expect_fail missing-symbol "no_such_generator" "$SLUICE" run "$WORK/nosym.so"

# A malformed CSV line is reported with file and line.
printf 'a:int64,b:string\n' > /dev/null
cat > "$WORK/csvjob.c" <<'C'
#include <sluice/job.h>
int sluice_job_main(sl_job_t *job, int argc, char **argv) {
    sl_stream_t *s = sl_source_csv(job, "csv", argv[1], "id:int64,name:string", 1);
    sl_sink_discard(s, "discard");
    return 0;
}
C
cc -shared -fPIC -I"$SRC/include" -o "$WORK/csvjob.so" "$WORK/csvjob.c"
printf 'id,name\n1,ok\n2,fine\nthree,bad\n4,late\n' > "$WORK/bad.csv"
expect_fail malformed-csv "bad.csv:4" "$SLUICE" run "$WORK/csvjob.so" "$WORK/bad.csv"
expect_ok csv-skip "$SLUICE" run -D csv.ignore-parse-errors=true "$WORK/csvjob.so" "$WORK/bad.csv"

# Jobs that must work, with checked results.
printf 'the cat\nthe dog, the END\n' > "$WORK/text.txt"
if expect_ok word-count-library "$SLUICE" run "$WC" --input "$WORK/text.txt" --output "$WORK/wc.csv"; then
    if [ "$(LC_ALL=C sort "$WORK/wc.csv" | tr '\n' ' ')" != "cat,1 dog,1 end,1 the,3 word,count " ]; then
        echo "FAIL word-count-library: wrong result:"; cat "$WORK/wc.csv"; fails=$((fails + 1))
    fi
fi
if expect_ok builtin-wordcount "$SLUICE" run -p 2 wordcount --lines 1000 --output "$WORK/bw.csv"; then
    total=$(tail -n +2 "$WORK/bw.csv" | awk -F, '{s += $2} END {print s}')
    [ "$total" = "8000" ] || { echo "FAIL builtin-wordcount: $total words, want 8000"; fails=$((fails + 1)); }
fi
if expect_ok sensor-windows "$SLUICE" run -p 2 "$SENSOR" --readings 50000 --output "$WORK/s2.csv"; then
    "$SLUICE" run -p 1 "$SENSOR" --readings 50000 --output "$WORK/s1.csv" 2>/dev/null
    if ! cmp -s "$WORK/s1.csv" "$WORK/s2.csv" && \
       [ "$(LC_ALL=C sort "$WORK/s1.csv")" != "$(LC_ALL=C sort "$WORK/s2.csv")" ]; then
        echo "FAIL sensor-windows: parallelism 1 and 2 differ"; fails=$((fails + 1))
    fi
    [ "$(wc -l < "$WORK/s1.csv")" -gt 1 ] || { echo "FAIL sensor-windows: no alert rows"; fails=$((fails + 1)); }
fi

# Builder errors are reported before the job runs: a field index out of range, a missing
# user aggregate.
cat > "$WORK/badfield.c" <<'C'
#include <sluice/job.h>
int sluice_job_main(sl_job_t *job, int argc, char **argv) {
    sl_stream_t *s = sl_source_csv(job, "csv", argv[1], "id:int64,name:string", 1);
    if (argc > 2)
        s = sl_stream_aggregate(sl_stream_key_by(s, "id"), "agg", "agg(no_such_aggregate)");
    else
        s = sl_stream_key_by(s, "5");
    sl_sink_discard(s, "out");
    return 0;
}
C
cc -shared -fPIC -I"$SRC/include" -o "$WORK/badfield.so" "$WORK/badfield.c"
expect_fail field-out-of-range "field index 5 out of range" "$SLUICE" run "$WORK/badfield.so" "$WORK/bad.csv"
expect_fail missing-aggregate "no_such_aggregate" "$SLUICE" run "$WORK/badfield.so" "$WORK/bad.csv" agg

# A checkpoint directory that cannot be created or written: the path and the cause, before the
# job processes anything. Root ignores permission bits, so as root the second run is made by
# nobody (setpriv), from a copy of the binary in a directory nobody can enter.
CKPT="-D execution.checkpointing.interval=100ms"
: > "$WORK/plainfile"
# shellcheck disable=SC2086
expect_fail ckpt-dir-under-file "cannot create directory $WORK/plainfile: a file of that name exists" \
    "$SLUICE" nexmark --query q5 --events 1000 --quiet $CKPT -D state.checkpoints.dir="$WORK/plainfile/ck"
RO=$(mktemp -d)
chmod 0755 "$RO"
mkdir "$RO/ro"
cp "$SLUICE" "$RO/sluice"
if [ "$(id -u)" -eq 0 ]; then
    # shellcheck disable=SC2086
    expect_fail ckpt-dir-not-writable "cannot create directory $RO/ro/ck: Permission denied" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$RO/sluice" nexmark --query q5 --events 1000 \
        --quiet $CKPT -D state.checkpoints.dir="$RO/ro/ck"
else
    chmod 0555 "$RO/ro"
    # shellcheck disable=SC2086
    expect_fail ckpt-dir-not-writable "cannot create directory $RO/ro/ck: Permission denied" \
        "$RO/sluice" nexmark --query q5 --events 1000 --quiet $CKPT -D state.checkpoints.dir="$RO/ro/ck"
fi
rm -rf "$RO"

# -D wins over a configuration file wherever it appears on the command line.
printf 'parallelism.default: 1\n' > "$WORK/p1.yaml"
if expect_ok override-order "$SLUICE" run -D parallelism.default=2 -c "$WORK/p1.yaml" wordcount --lines 10; then
    grep -q "par 2" "$WORK/err" || { echo "FAIL override-order: -D before -c lost:"; cat "$WORK/err"; fails=$((fails + 1)); }
fi

# The cluster commands: bad addresses, a port in use, nobody to register with.
export SLUICE_SECRET=cli-test-secret
expect_fail tm-no-address "--jobmanager must be HOST:PORT" "$SLUICE" taskmanager
expect_fail tm-bad-address "--jobmanager must be HOST:PORT, not 'nowhere'" "$SLUICE" taskmanager --jobmanager nowhere
expect_fail tm-unreachable "connect to 127.0.0.1:1 failed" "$SLUICE" taskmanager --jobmanager 127.0.0.1:1 \
    -D taskmanager.registration.timeout=1s
expect_fail cluster-missing-checkpoint "--from-checkpoint no/such/dir: No such file" "$SLUICE" nexmark --query q5 \
    --events 10 --jobmanager 127.0.0.1:1 --from-checkpoint no/such/dir
expect_fail savepoint-usage "usage: sluice savepoint JOB" "$SLUICE" savepoint --jobmanager 127.0.0.1:1
expect_fail stop-usage "usage: sluice stop JOB" "$SLUICE" stop
expect_fail savepoint-no-dir "no savepoint directory" "$SLUICE" savepoint job-1 --jobmanager 127.0.0.1:1
expect_fail savepoint-unreachable "connect to 127.0.0.1:1 failed" "$SLUICE" savepoint job-1 "$WORK/sp" \
    --jobmanager 127.0.0.1:1
expect_fail cluster-bad-target "--target must be local or slurm" "$SLUICE" nexmark --query q5 --events 10 --target yarn
expect_fail jm-bad-driver "resourcemanager.driver" "$SLUICE" jobmanager --port 0 -D resourcemanager.driver=yarn
expect_fail jm-bad-host "cannot listen on" "$SLUICE" jobmanager --host 203.0.113.77 --port 0
expect_fail jm-rest-bad-address "rest.bind-address 'no.such.host.invalid'" "$SLUICE" jobmanager --port 0 \
    -D rest.bind-address=no.such.host.invalid
expect_fail jm-rest-tls-no-keystore "security.ssl.rest.keystore is required" "$SLUICE" jobmanager --port 0 \
    -D security.ssl.rest.enabled=true
printf 'not a pem\n' > "$WORK/bad.pem"
expect_fail jm-rest-tls-bad-pem "security.ssl.rest.keystore $WORK/bad.pem: not a PEM file" "$SLUICE" jobmanager \
    --port 0 -D security.ssl.rest.enabled=true -D security.ssl.rest.keystore="$WORK/bad.pem" \
    -D security.ssl.rest.key="$WORK/bad.pem"
# A port in use: a JobManager takes one, a second is refused naming it.
"$SLUICE" jobmanager --port 0 > "$WORK/jm.out" 2> "$WORK/jm.err" &
jm=$!
i=0
while [ $i -lt 100 ] && ! grep -q "listening on" "$WORK/jm.out" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$WORK/jm.out")
if [ -n "$port" ]; then
    expect_fail jm-port-in-use "address already in use" "$SLUICE" jobmanager --port "$port"
    expect_fail tm-wrong-secret "wrong shared secret" env SLUICE_SECRET=other "$SLUICE" taskmanager \
        --jobmanager "127.0.0.1:$port"
    rest=$(sed -n 's|REST API on http://[0-9.]*:\([0-9]*\)/v1|\1|p' "$WORK/jm.out")
    expect_fail jm-rest-port-in-use "cannot serve REST on 127.0.0.1:$rest: .*in use" "$SLUICE" jobmanager --port 0 \
        -D rest.port="$rest"
else
    echo "FAIL jobmanager did not start:"; cat "$WORK/jm.err"; fails=$((fails + 1))
fi
kill "$jm" 2>/dev/null
wait "$jm"
[ $? -eq 0 ] || { echo "FAIL jobmanager did not exit cleanly on SIGTERM"; fails=$((fails + 1)); }
unset SLUICE_SECRET

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
