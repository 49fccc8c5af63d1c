#!/bin/sh
# The JobManager's REST API against a real cluster (local driver, TaskManager processes): a job
# library uploaded (multipart as Flink's clients send it, and as a raw body), listed, run at
# p=3 with arguments and options, its status followed to FINISHED and its rows identical to the
# embedded run; an unbounded job cancelled with PATCH; a savepoint and a stop-with-savepoint
# followed to COMPLETED and a run restored from it; bad requests answered with a 4xx naming
# the cause while the JobManager keeps serving; submission switched off; the upload directory
# gone when the JobManager stops.
# usage: cluster_rest.sh SLUICE SENSOR_JOB_SO SLOW_SINK_JOB_SO
set -u
SLUICE=$1 SENSOR=$2 SLOW=$3
. "$(dirname "$0")/cluster_lib.sh"
setup_cluster_test rest

# http METHOD PATH [curl args...]: the status code on stdout, the body in $WORK/body.json.
http() {
    _m=$1 _p=$2
    shift 2
    curl -s -o "$WORK/body.json" -w '%{http_code}' -X "$_m" "$@" "$REST$_p"
}
# expect STATUS TEXT METHOD PATH [curl args...]: the reply has STATUS and its body TEXT.
expect() {
    _want=$1 _text=$2
    shift 2
    _got=$(http "$@")
    [ "$_got" = "$_want" ] || fail "$1 $2: status $_got, expected $_want: $(cat "$WORK/body.json")"
    grep -q -- "$_text" "$WORK/body.json" || fail "$1 $2: '$_text' not in $(cat "$WORK/body.json")"
}
same() { [ "$(LC_ALL=C sort "$1" | cksum)" = "$(LC_ALL=C sort "$2" | cksum)" ]; }
# wait_state JOBID STATE: polls GET /jobs/JOBID until its state is STATE.
wait_state() {
    _i=0
    while :; do
        [ "$(http GET "/jobs/$1")" = 200 ] || fail "GET /jobs/$1: $(cat "$WORK/body.json")"
        _s=$(jq -r .state "$WORK/body.json")
        [ "$_s" = "$2" ] && return
        case $_s in FAILED|CANCELED|FINISHED) fail "job $1 ended $_s, expected $2: $(cat "$WORK/body.json")" ;; esac
        _i=$((_i + 1))
        [ $_i -lt 1200 ] || fail "job $1 is still $_s"
        sleep 0.1
    done
}

SLUICE_LOG=info start_local_jobmanager -D resourcemanager.taskmanager-timeout=20s

# 1. Overview of an empty cluster.
expect 200 '"jobs-running":0' GET /overview
jq -e '.taskmanagers == 0 and ."slots-available" == 0' "$WORK/body.json" > /dev/null || fail "overview: $(cat "$WORK/body.json")"
expect 200 '"jobs":\[\]' GET /jobs
code=$(curl -s -o "$WORK/index.html" -w '%{http_code} %{content_type}' "${REST%/v1}/")
[ "$code" = "200 text/html; charset=utf-8" ] && grep -q "<title>Sluice JobManager</title>" "$WORK/index.html" &&
    grep -q "fetch('/v1/jobs/overview')" "$WORK/index.html" || fail "the web monitor page: $code"
echo "ok GET /v1/overview and /v1/jobs on an empty cluster; the web monitor page at /"

# 2. Upload (multipart field "jarfile", and a raw body) and list.
expect 200 '"status":"success"' POST /jars/upload -F "jarfile=@$SENSOR"
jar=$(jq -r .id "$WORK/body.json")
updir=$(dirname "$(jq -r .filename "$WORK/body.json")")
[ -d "$updir" ] || fail "the upload directory $updir does not exist"
cmp -s "$updir/$jar" "$SENSOR" || fail "the stored library differs from the uploaded one"
expect 200 '"status":"success"' POST '/jars/upload?filename=second.so' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$SENSOR"
jar2=$(jq -r .id "$WORK/body.json")
expect 200 "\"id\":\"$jar\"" GET /jars
[ "$(jq '.files | length' "$WORK/body.json")" = 2 ] || fail "GET /jars: $(cat "$WORK/body.json")"
jq -e ".files[] | select(.id == \"$jar2\" and .name == \"second.so\")" "$WORK/body.json" > /dev/null ||
    fail "GET /jars does not list $jar2 as second.so"
expect 200 '{}' DELETE "/jars/$jar2"
expect 404 'no such jar' DELETE "/jars/$jar2"
echo "ok job library uploaded (multipart and raw), listed, deleted"

# 3. Run it at p=3 with arguments and options: the rows equal the embedded run's.
expect 200 '"jobid"' POST "/jars/$jar/run" -H 'Content-Type: application/json' \
    -d "{\"programArgsList\": [\"--readings\", \"60000\", \"--output\", \"$WORK/rest.csv\"], \"parallelism\": 3,
         \"configuration\": {\"pipeline.max-parallelism\": 64}}"
job=$(jq -r .jobid "$WORK/body.json")
wait_state "$job" FINISHED
jq -e '.name == "sensor_job" and ."end-time" >= ."start-time" and .duration >= 0' "$WORK/body.json" > /dev/null ||
    fail "job details: $(cat "$WORK/body.json")"
"$SLUICE" run -p 3 -D taskmanager.numberOfTaskSlots=3 --quiet "$SENSOR" --readings 60000 --output "$WORK/local.csv" \
    2> /dev/null || fail "the sensor job locally"
rows=$(($(wc -l < "$WORK/local.csv") - 1))
[ "$rows" -gt 0 ] || fail "the embedded run gave no rows: the comparison proves nothing"
same "$WORK/rest.csv" "$WORK/local.csv" || fail "the REST-submitted job's rows differ from the embedded run's"
expect 200 "\"jid\":\"$job\"" GET /jobs/overview
expect 200 '"root-exception":null' GET "/jobs/$job/exceptions"
echo "ok POST /v1/jars/:id/run at p=3: FINISHED, $rows rows identical to the embedded run"

# 4. An unbounded run (Flink's older "programArgs" string), cancelled with PATCH.
expect 200 '"jobid"' POST "/jars/$jar/run" -d "{\"programArgs\": \"--readings 0 --output $WORK/unbounded.csv\",
                                               \"parallelism\": 2}"
job2=$(jq -r .jobid "$WORK/body.json")
wait_state "$job2" RUNNING
expect 200 '"jobs-running":1' GET /overview
jq -e '.taskmanagers >= 2' "$WORK/body.json" > /dev/null || fail "overview while running: $(cat "$WORK/body.json")"
expect 202 '{}' PATCH "/jobs/$job2?mode=cancel"
i=0
until [ "$(http GET "/jobs/$job2")" = 200 ] && [ "$(jq -r .state "$WORK/body.json")" = CANCELED ]; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "the cancelled job is $(jq -r .state "$WORK/body.json")"
    sleep 0.1
done
expect 409 'already CANCELED' PATCH "/jobs/$job2"
echo "ok an unbounded job run through REST is cancelled with PATCH /v1/jobs/:id (CANCELED, a second cancel 409)"

# 5. Savepoints: triggered, followed to COMPLETED, a stop with savepoint, a run restored from it.
# wait_savepoint JOBID REQUEST: polls the request until COMPLETED; its body stays in body.json.
wait_savepoint() {
    _i=0
    until [ "$(http GET "/jobs/$1/savepoints/$2")" = 200 ] && jq -e '.status.id == "COMPLETED"' "$WORK/body.json" > /dev/null; do
        _i=$((_i + 1))
        [ $_i -lt 600 ] || fail "savepoint request $2 of job $1: $(cat "$WORK/body.json")"
        sleep 0.1
    done
}
expect 200 '"status":"success"' POST /jars/upload -F "jarfile=@$SLOW"
slow=$(jq -r .id "$WORK/body.json")
ckdir="{\"state.checkpoints.dir\": \"$WORK/ck\", \"execution.checkpointing.interval\": \"300ms\"}"
expect 200 '"jobid"' POST "/jars/$slow/run" -d "{\"programArgsList\": [\"--sink-rate\", \"20000\"], \"parallelism\": 2,
                                                \"configuration\": $ckdir}"
job3=$(jq -r .jobid "$WORK/body.json")
wait_state "$job3" RUNNING
expect 202 '"request-id"' POST "/jobs/$job3/savepoints" -d "{\"target-directory\": \"$WORK/sp\", \"cancel-job\": false}"
wait_savepoint "$job3" "$(jq -r '."request-id"' "$WORK/body.json")"
sp1=$(jq -r .operation.location "$WORK/body.json")
[ -f "$sp1/chk-${sp1##*-}/_metadata" ] || fail "savepoint $sp1 has no _metadata: $(cat "$WORK/body.json")"
expect 200 '"state":"RUNNING"' GET "/jobs/$job3"
expect 202 '"request-id"' POST "/jobs/$job3/stop" -d "{\"targetDirectory\": \"$WORK/sp\"}"
stopreq=$(jq -r '."request-id"' "$WORK/body.json")
wait_savepoint "$job3" "$stopreq"
sp2=$(jq -r .operation.location "$WORK/body.json")
[ "$sp2" != "$sp1" ] && [ -f "$sp2/chk-${sp2##*-}/_metadata" ] || fail "stop: savepoint $sp2"
wait_state "$job3" FINISHED
expect 404 'no savepoint request' GET "/jobs/$job3/savepoints/0123"
expect 200 '"jobid"' POST "/jars/$slow/run" -d "{\"programArgsList\": [\"--sink-rate\", \"20000\"], \"parallelism\": 3,
                                                \"savepointPath\": \"$sp2\", \"configuration\": $ckdir}"
job4=$(jq -r .jobid "$WORK/body.json")
wait_state "$job4" RUNNING
grep -q "job $job4 .*restoring $sp2" "$WORK/jm.err" || fail "job $job4 did not restore from $sp2"
expect 400 'must be an absolute path' POST "/jobs/$job4/savepoints" -d '{"target-directory": "relative"}'
expect 400 'drain is not supported' POST "/jobs/$job4/stop" -d "{\"targetDirectory\": \"$WORK/sp\", \"drain\": true}"
expect 400 'no target-directory given and no state.savepoints.dir' POST "/jobs/$job4/savepoints" -d '{}'
expect 404 'no such job' POST /jobs/no-such-job/savepoints -d "{\"target-directory\": \"$WORK/sp\"}"
expect 202 '{}' PATCH "/jobs/$job4"
wait_state "$job4" CANCELED
echo "ok savepoint and stop-with-savepoint through REST (COMPLETED, _metadata there, job FINISHED), a run restored from it at p=3"

# 6. Bad requests: a 4xx naming the cause, and the JobManager keeps serving.
printf 'not a library' > "$WORK/garbage.so"
expect 400 'not a shared library' POST /jars/upload -F "jarfile=@$WORK/garbage.so"
expect 400 'no job library in the request' POST /jars/upload -F "other=x"
head -c $((49 * 1024 * 1024)) /dev/zero > "$WORK/huge.so"
# Refused on its declared length, before the body is read; chunked (no length), after it.
expect 413 'larger than 48 MiB' POST '/jars/upload?filename=huge.so' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$WORK/huge.so"
expect 413 'larger than 48 MiB' POST '/jars/upload?filename=huge.so' -H 'Content-Type: application/octet-stream' \
    -H 'Transfer-Encoding: chunked' --data-binary "@$WORK/huge.so"
rm -f "$WORK/huge.so"
expect 400 'line 1, column' POST "/jars/$jar/run" -d '{"programArgsList": ['
expect 400 'programArgsList must be an array' POST "/jars/$jar/run" -d '{"programArgsList": "x"}'
expect 400 'parallelism must be an integer' POST "/jars/$jar/run" -d '{"parallelism": 0}'
expect 400 'no.such.option' POST "/jars/$jar/run" -d '{"configuration": {"no.such.option": "1"}}'
expect 400 'savepointPath must be an absolute path' POST "/jars/$jar/run" -d '{"savepointPath": "sp"}'
expect 400 'returned SL_EINVAL' POST "/jars/$jar/run" -d '{"programArgsList": ["--bogus"]}'
expect 404 'no such jar' POST /jars/nope.so/run -d '{}'
expect 404 "not found" GET "/jars/../../etc/passwd" --path-as-is
expect 404 'no such job' GET /jobs/no-such-job
expect 404 'no such job' PATCH /jobs/no-such-job
expect 405 'use GET' DELETE /jobs
expect 404 'not found: GET /nothing/here' GET /nothing/here
head -c 2000000 /dev/zero | tr '\0' ' ' > "$WORK/big.json"
expect 413 'request body larger than' POST "/jars/$jar/run" --data-binary "@$WORK/big.json"
cc -shared -fPIC -x c -o "$WORK/nomain.so" - <<'CSRC' || fail "cannot build a library without an entry point"
int not_the_entry_point(void) { return 0; }
CSRC
expect 200 '"status":"success"' POST /jars/upload -F "jarfile=@$WORK/nomain.so"
expect 400 "no entry point 'sluice_job_main'" POST "/jars/$(jq -r .id "$WORK/body.json")/run" -d '{}'
expect 200 '"jobs-failed":0' GET /overview
kill -0 "$JM" 2> /dev/null || fail "the JobManager died"
echo "ok bad uploads, bodies, options, arguments, paths and methods get a 4xx naming the cause; the JobManager serves on"

# 7. The JobManager stops: its upload directory goes with it.
kill "$JM"
wait "$JM"
JM=""
[ ! -e "$updir" ] || fail "the upload directory $updir outlived the JobManager"
echo "ok the upload directory is removed when the JobManager stops"

# 8. Submission and cancellation can be switched off.
start_jobmanager -D resourcemanager.driver=standalone -D web.submit.enable=false -D web.cancel.enable=false
expect 403 'web.submit.enable=false' POST /jars/upload -F "jarfile=@$SENSOR"
expect 403 'web.cancel.enable=false' PATCH /jobs/any
expect 200 '"files":\[\]' GET /jars
echo "ok web.submit.enable=false and web.cancel.enable=false refuse uploads, runs and cancels (403)"

# 9. Per-job mode serves the job's REST API when rest.port is given.
timeout 120 "$SLUICE" run --target local -D rest.port=0 -D resourcemanager.log-dir="$WORK/logs" -p 1 "$SLOW" \
    --rows 6000 --sink-rate 2000 2> "$WORK/perjob.err" &
pj=$!
i=0
until grep -q "REST API on" "$WORK/perjob.err" 2> /dev/null; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "per-job mode printed no REST address: $(cat "$WORK/perjob.err")"
    sleep 0.05
done
REST="http://$(sed -n 's|REST API on http://\([0-9.:]*\)/v1|\1|p' "$WORK/perjob.err")/v1"
i=0
until [ "$(http GET /jobs)" = 200 ] && jq -e '.jobs[0].status == "RUNNING"' "$WORK/body.json" > /dev/null; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "per-job REST: $(cat "$WORK/body.json")"
    sleep 0.05
done
wait $pj || fail "the per-job run failed: $(cat "$WORK/perjob.err")"
echo "ok per-job mode with rest.port: GET /v1/jobs shows the job RUNNING, then the run exits 0"

check_sanitizer_logs
