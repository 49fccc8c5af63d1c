#!/bin/sh
# Async I/O against a real redis-server: Nexmark q13 enriches bids with a side input held in
# Redis (nexmark:side:<k> = side-<k>) through the built-in async lookup.
#   reference  the result equals SQLite's join over the dumped events
#   kills      SIGKILL at random moments with requests in flight, resumed from checkpoints:
#              the same rows as the uninterrupted run (checkpoint_recovery.sh)
#   restart    redis-server killed and restarted during the job: with retries the job goes on
#              and its result is still exact; without retries it fails with a clear error
#   bad        an unreachable Redis, a reply of the wrong type: clear errors, non-zero exit
# usage: async_redis.sh SLUICE NEXMARK_DIR CASE
set -u
SLUICE=$1 DIR=$2 CASE=$3
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
# Below the ephemeral range (32768+) so no outgoing connection holds it; tried again if taken.
PORT=$((20000 + $$ % 12000))
cleanup() {
    [ -f "$WORK/redis.pid" ] && kill -9 "$(cat "$WORK/redis.pid")" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

start_redis() {
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --dbfilename side.rdb --appendonly no --save '' \
        --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" || return 1
    i=0
    until redis-cli -p "$PORT" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "redis-server did not start on $PORT"; tail -n 3 "$WORK/redis.log"; return 1; }
        sleep 0.05
    done
}

kill_redis() {
    kill -9 "$(cat "$WORK/redis.pid")" 2>/dev/null
    while redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done
}

tries=0
until start_redis; do
    tries=$((tries + 1))
    [ $tries -lt 5 ] || exit 1
    PORT=$((20000 + (PORT + 997 - 20000) % 12000))
done
seq 0 9999 | awk '{printf "SET nexmark:side:%d side-%d\n", $1, $1}' | redis-cli -p "$PORT" >/dev/null
[ "$(redis-cli -p "$PORT" dbsize)" = 10000 ] || { echo "FAIL: seeding Redis"; exit 1; }
redis-cli -p "$PORT" save >/dev/null # a restarted server loads the side input from side.rdb

same_rows() { [ "$(head -n 1 "$1")" = "$(head -n 1 "$2")" ] &&
    [ "$(tail -n +2 "$1" | LC_ALL=C sort | cksum)" = "$(tail -n +2 "$2" | LC_ALL=C sort | cksum)" ]; }

case $CASE in
reference)
    REDIS_ARG="--redis 127.0.0.1:$PORT"
    for mode in ordered unordered; do
        # shellcheck disable=SC2086
        sh "$HERE/nexmark_reference.sh" "$SLUICE" "$DIR" q13 2 200000 $REDIS_ARG \
            -D table.exec.async-lookup.output-mode=$mode || exit 1
    done
    ;;
kills)
    SL_EXPECT_OPSTATE=1 sh "$HERE/checkpoint_recovery.sh" "$SLUICE" q13 hashmap 1000000 2 \
        --redis "127.0.0.1:$PORT" -D table.exec.async-lookup.output-mode=unordered || exit 1
    ;;
restart)
    EVENTS=1000000
    "$SLUICE" nexmark --query q13 --events $EVENTS --parallelism 2 --quiet --redis "127.0.0.1:$PORT" \
        --dump-events "$WORK/events" --output "$WORK/expected.csv" || { echo "FAIL: run without failures"; exit 1; }
    sh "$DIR/reference.sh" "$WORK/events" q13 "$WORK/sqlite.csv"
    same_rows "$WORK/expected.csv" "$WORK/sqlite.csv" || { echo "FAIL: q13 differs from SQLite"; exit 1; }

    # With retries: Redis dies and comes back; nothing may be lost or changed.
    "$SLUICE" nexmark --query q13 --events $EVENTS --parallelism 2 --quiet --redis "127.0.0.1:$PORT" \
        -D table.exec.async-lookup.retry-strategy=exponential-delay -D table.exec.async-lookup.max-attempts=30 \
        -D table.exec.async-lookup.retry-delay=20ms -D table.exec.async-lookup.retry-max-delay=500ms \
        --output "$WORK/got.csv" 2> "$WORK/err" &
    pid=$!
    sleep 0.5
    kill_redis
    sleep 1
    start_redis || exit 1
    wait $pid
    st=$?
    [ $st -eq 0 ] || { echo "FAIL: with retries the job exited $st"; cat "$WORK/err"; exit 1; }
    [ "$(redis-cli -p "$PORT" dbsize)" = 10000 ] || { echo "FAIL: the side input did not come back"; exit 1; }
    same_rows "$WORK/expected.csv" "$WORK/got.csv" ||
        { echo "FAIL: after a Redis restart the result differs ($(wc -l < "$WORK/got.csv") lines)"; exit 1; }
    echo "ok restart: Redis killed and restarted, $(($(wc -l < "$WORK/got.csv") - 1)) rows identical"

    # Without retries: a clear failure naming Redis, no hang, non-zero exit.
    "$SLUICE" nexmark --query q13 --events $EVENTS --parallelism 2 --quiet --redis "127.0.0.1:$PORT" \
        --output "$WORK/failed.csv" 2> "$WORK/err" &
    pid=$!
    sleep 0.5
    kill_redis
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid; echo "FAIL: without retries the job hung after Redis died"; exit 1
    fi
    wait $pid
    st=$?
    [ $st -ne 0 ] || { echo "FAIL: without retries the job succeeded although Redis died"; exit 1; }
    grep -q "127.0.0.1:$PORT" "$WORK/err" ||
        { echo "FAIL: the error does not name the Redis address:"; cat "$WORK/err"; exit 1; }
    echo "ok restart: without retries the job failed (exit $st): $(grep -m1 -o "async.*" "$WORK/err" | cut -c1-160)"
    ;;
bad)
    # An unreachable Redis: a clear error naming the address, quickly, non-zero exit.
    closed=$((PORT + 1))
    if timeout 60 "$SLUICE" nexmark --query q13 --events 1000 --quiet --redis "127.0.0.1:$closed" \
        --output "$WORK/x.csv" 2> "$WORK/err"; then
        echo "FAIL: q13 against a closed port succeeded"; exit 1
    fi
    grep -q "127.0.0.1:$closed" "$WORK/err" || { echo "FAIL: unreachable Redis not named:"; cat "$WORK/err"; exit 1; }
    echo "ok bad: unreachable Redis: $(grep -m1 -o "sluice: .*" "$WORK/err" | cut -c1-200)"
    # A reply of the wrong type (a hash where a string is expected) fails the job naming the key.
    redis-cli -p "$PORT" del nexmark:side:1000 >/dev/null
    redis-cli -p "$PORT" hset nexmark:side:1000 f v >/dev/null
    if timeout 60 "$SLUICE" nexmark --query q13 --events 20000 --quiet --redis "127.0.0.1:$PORT" \
        --output "$WORK/x.csv" 2> "$WORK/err"; then
        echo "FAIL: a WRONGTYPE reply went unnoticed"; exit 1
    fi
    grep -q "nexmark:side:1000" "$WORK/err" || { echo "FAIL: the bad key is not named:"; cat "$WORK/err"; exit 1; }
    echo "ok bad: wrong reply type: $(grep -m1 -o "async.*" "$WORK/err" | cut -c1-200)"
    ;;
*)
    echo "usage: async_redis.sh SLUICE NEXMARK_DIR reference|kills|restart|bad" >&2
    exit 2
    ;;
esac
