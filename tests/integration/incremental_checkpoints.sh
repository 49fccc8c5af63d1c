#!/bin/sh
# Incremental RocksDB checkpoints: after a run with many checkpoints and two retained, the files
# in shared/ are exactly those the retained checkpoints reference, and at least one SST file is
# referenced by both (it was uploaded once). Then corruption: a damaged file of the latest
# checkpoint makes a restore fall back to the older one (output still exactly-once), and with
# both damaged the restore fails with an error naming the file.
# usage: incremental_checkpoints.sh SLUICE [more sluice options, e.g. another compaction style]
# SL_CKPT_INTERVAL: the checkpoint interval (200ms).
set -u
SLUICE=$1
shift
WORK=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
RUN="--query q8 --events 12000000 --quiet -D state.backend.type=rocksdb -D state.backend.rocksdb.localdir=$WORK/rocks $*"
CKPT="-D execution.checkpointing.interval=${SL_CKPT_INTERVAL:-200ms} -D state.checkpoints.dir=$WORK/ck -D state.checkpoints.num-retained=2"
fail() { echo "FAIL: $*"; exit 1; }
# Same header and multiset of rows (a two-input join's output order follows thread timing).
same() { [ "$(head -n 1 "$1")" = "$(head -n 1 "$2")" ] &&
    [ "$(tail -n +2 "$1" | LC_ALL=C sort | cksum)" = "$(tail -n +2 "$2" | LC_ALL=C sort | cksum)" ]; }

# shellcheck disable=SC2086
"$SLUICE" nexmark $RUN --output "$WORK/expected.csv" || fail "reference run"
# shellcheck disable=SC2086
"$SLUICE" nexmark $RUN $CKPT --output "$WORK/out.csv" 2> "$WORK/err" || { cat "$WORK/err"; fail "run with checkpoints"; }
same "$WORK/expected.csv" "$WORK/out.csv" || fail "output with checkpoints differs"
JOB=$(ls -d "$WORK"/ck/*)
n=$(ls -d "$JOB"/chk-* | wc -l)
[ "$n" -eq 2 ] || fail "$n checkpoints retained, want 2"

# Shared files referenced by each retained checkpoint's metadata.
shared_of() {
    awk '/"kind": "shared"/ {s = 1} s && /"path"/ {gsub(/[",]/, "", $2); print $2; s = 0}' "$1"
}
for m in "$JOB"/chk-*/_metadata; do shared_of "$m"; done | sort > "$WORK/refs.all"
sort -u "$WORK/refs.all" > "$WORK/refs"
ls "$JOB/shared" | sort > "$WORK/files"
[ -s "$WORK/refs" ] || fail "no shared files referenced: not incremental"
cmp -s "$WORK/refs" "$WORK/files" || { diff "$WORK/refs" "$WORK/files" | head; fail "shared/ differs from the references"; }
[ "$(wc -l < "$WORK/refs.all")" -gt "$(wc -l < "$WORK/refs")" ] || fail "no SST file shared by both checkpoints"
echo "ok: shared/ holds exactly the $(wc -l < "$WORK/refs") files the 2 retained checkpoints reference"

# Corrupt one private file of the latest checkpoint: the restore falls back to the older one.
# Restores write the same output file: its committed parts are part of the checkpoint.
LATEST=$(ls -d "$JOB"/chk-* | sort -t- -k2 -n | tail -n 1)
OLDER=$(ls -d "$JOB"/chk-* | sort -t- -k2 -n | head -n 1)
victim=$(ls "$LATEST" | grep MANIFEST | head -n 1)
printf 'X' | dd of="$LATEST/$victim" bs=1 seek=10 conv=notrunc 2>/dev/null
# shellcheck disable=SC2086
"$SLUICE" nexmark $RUN $CKPT --from-checkpoint "$JOB" --output "$WORK/out.csv" 2> "$WORK/err" ||
    { cat "$WORK/err"; fail "restore with one corrupt checkpoint"; }
grep -q "checksum mismatch" "$WORK/err" || fail "the corruption was not reported"
same "$WORK/expected.csv" "$WORK/out.csv" || fail "output after the fallback restore differs"
echo "ok: corrupt $(basename "$LATEST")/$victim detected, restored from $(basename "$OLDER") instead, same rows"

# Both damaged: a clear error naming the file, non-zero exit.
victim=$(ls "$OLDER" | grep MANIFEST | head -n 1)
printf 'X' | dd of="$OLDER/$victim" bs=1 seek=10 conv=notrunc 2>/dev/null
# shellcheck disable=SC2086
if "$SLUICE" nexmark $RUN $CKPT --from-checkpoint "$JOB" --output "$WORK/out.csv" 2> "$WORK/err"; then
    fail "a restore from corrupt checkpoints succeeded"
fi
grep -q "checksum mismatch in .*$victim" "$WORK/err" || { cat "$WORK/err"; fail "the error does not name $victim"; }
echo "ok: with every checkpoint corrupt the restore fails: $(grep -o 'checksum mismatch in [^:]*' "$WORK/err" | tail -n 1)"
