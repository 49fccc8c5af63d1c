# Shared by the cluster integration scripts (sourced, not run): a work directory, cleanup of
# every process of the test's cluster, starting a JobManager and waiting until it listens, and
# the sanitizer check of the processes' logs. The caller sets SLUICE, then calls
# setup_cluster_test NAME.

# setup_cluster_test NAME: WORK (SL_KEEP_DIR keeps it), the cluster's shared secret, and an
# EXIT trap that stops the JobManager and any TaskManager of it.
setup_cluster_test() {
    WORK=${SL_KEEP_DIR:-$(mktemp -d)}
    export SLUICE_SECRET="cluster-$1-$$"
    JM=""
    PORT=0
    trap cluster_cleanup EXIT
}

cluster_cleanup() {
    [ -n "$JM" ] && kill "$JM" 2>/dev/null && wait "$JM" 2>/dev/null
    pkill -9 -f -- "--jobmanager 127.0.0.1:$PORT " 2>/dev/null
    [ -n "${SL_KEEP_DIR:-}" ] || rm -rf "$WORK"
}

fail() { echo "FAIL: $*"; tail -n 20 "$WORK/jm.err"; exit 1; }

# start_jobmanager ARGS...: `sluice jobmanager --port 0 ARGS...` in the background, its output
# in $WORK/jm.out and $WORK/jm.err; sets JM (its pid), PORT, JMADDR (127.0.0.1:PORT) and REST
# (the base URL of its REST API, http[s]://127.0.0.1:P/v1).
start_jobmanager() {
    "$SLUICE" jobmanager --port 0 "$@" > "$WORK/jm.out" 2> "$WORK/jm.err" &
    JM=$!
    _i=0
    until grep -q "listening on" "$WORK/jm.out" 2>/dev/null; do
        _i=$((_i + 1))
        [ $_i -lt 400 ] || fail "the JobManager did not start"
        sleep 0.05
    done
    until grep -q "REST API on" "$WORK/jm.out" 2>/dev/null; do
        _i=$((_i + 1))
        [ $_i -lt 400 ] || fail "the JobManager's REST API did not start"
        sleep 0.05
    done
    PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$WORK/jm.out")
    JMADDR="127.0.0.1:$PORT"
    REST=$(sed -n 's|REST API on \(https*://[0-9.:]*/v1\)|\1|p' "$WORK/jm.out")
}

# A JobManager whose local driver starts one TaskManager process per slot, quick to notice
# lost ones; extra ARGS are passed on.
start_local_jobmanager() {
    start_jobmanager -D resourcemanager.driver=local -D taskmanager.numberOfTaskSlots=1 \
        -D resourcemanager.log-dir="$WORK/logs" -D heartbeat.interval=200ms -D heartbeat.timeout=2s "$@"
}

# Fails when a sanitizer reported anything in the processes' logs.
check_sanitizer_logs() {
    if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK"/*.err "$WORK"/logs/*.log \
        2>/dev/null; then
        echo "FAIL: a sanitizer reported errors in the processes above"; exit 1
    fi
}
