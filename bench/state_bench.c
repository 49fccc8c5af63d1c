/* Keyed-state and checkpoint benchmark.
 *
 * 1. State access: keyed value-state updates/s (get + put of an 8-byte counter under the
 *    current key, as a rolling count does) on the RocksDB backend, against RocksDB's raw put
 *    rate on the same encoded keys measured in the same run; and the heap backend's rate.
 * 2. Checkpoint cost: with STATE_MB of RocksDB state, a full (portable) snapshot against
 *    incremental checkpoints after 1% of the keys changed: bytes uploaded and seconds. Then
 *    what the compaction style costs readers: random get + put over the whole state, and the
 *    instance's size on disk (what the latest checkpoint references).
 *
 * usage: state_bench [STATE_MB (default 2048)] [UPDATES (default 2000000)] [ROUNDS (default 32)]
 *                    [level|universal (default level)] [bloom|nobloom (default bloom)] */
#include <sluice/error.h>

#include <rocksdb/c.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/storage.h"
#include "core/key_group.h"
#include "core/murmur.h"
#include "state/keyed_state.h"
#include "state/rocksdb_backend.h"
#include "state/snapshot.h"
#include "taskexecutor/task.h"
#include "taskexecutor/task_incremental.h"

#define MAXP 128

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "state_bench: %s: %s\n", what, sl_strerror(rc));
    exit(1);
}

static void set_key(sl_keyed_backend_t *b, const uint64_t *k) {
    sl_keyed_backend_set_key(b, k, 8, sl_key_group_of(sl_murmur3_32(k, 8, 0), MAXP));
}

static uint64_t key_of(uint64_t i, uint64_t n) { return (i * 0x9E3779B97F4A7C15ULL) % n; }

/* get + put of a counter per update, over `keys` distinct keys. */
static double updates(sl_keyed_backend_t *b, uint64_t n, uint64_t keys) {
    uint32_t id;
    int rc = sl_state_register(b, "count", SL_STATE_VALUE, &id);
    if (rc)
        die("register", rc);
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = key_of(i, keys), c = 0;
        set_key(b, &k);
        const void *v;
        uint32_t len;
        if (sl_state_value_get(b, id, NULL, 0, &v, &len) == 1)
            memcpy(&c, v, 8);
        c++;
        if ((rc = sl_state_value_put(b, id, NULL, 0, &c, 8)) != 0)
            die("put", rc);
    }
    return (double)n / (now_s() - t0);
}

/* RocksDB alone: get + put of the same keys (encoded as the backend does) with the same
 * options (WAL off). */
static double raw_updates(const char *dir, uint64_t n, uint64_t keys) {
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(o, dir, &err);
    if (err)
        die(err, SL_EIO);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(wo, 1);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = key_of(i, keys), c = 0;
        uint8_t key[18];
        uint32_t kg = sl_key_group_of(sl_murmur3_32(&k, 8, 0), MAXP), klen = 8, nslen = 0;
        key[0] = (uint8_t)(kg >> 8);
        key[1] = (uint8_t)kg;
        memcpy(key + 2, &klen, 4);
        memcpy(key + 6, &k, 8);
        memcpy(key + 14, &nslen, 4);
        size_t vlen;
        char *v = rocksdb_get(db, ro, (const char *)key, sizeof key, &vlen, &err);
        if (v && vlen == 8)
            memcpy(&c, v, 8);
        free(v);
        c++;
        rocksdb_put(db, wo, (const char *)key, sizeof key, (const char *)&c, 8, &err);
        if (err)
            die(err, SL_EIO);
    }
    double r = (double)n / (now_s() - t0);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_readoptions_destroy(ro);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    return r;
}

typedef struct {
    FILE *f;
    uint64_t bytes;
} file_sink_t;

static int to_file(void *arg, const void *p, size_t n) {
    file_sink_t *s = arg;
    s->bytes += n;
    return fwrite(p, 1, n, s->f) == n ? 0 : SL_EIO;
}

static void fill(sl_keyed_backend_t *b, uint32_t id, uint64_t from, uint64_t to, uint64_t step, uint32_t version) {
    uint64_t val[13]; /* 104 bytes that do not compress, so state size means bytes on disk */
    for (uint64_t k = from; k < to; k += step) {
        set_key(b, &k);
        uint64_t x = k * 0x9E3779B97F4A7C15ULL + version + 1;
        for (int i = 0; i < 13; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            val[i] = x;
        }
        int rc = sl_state_value_put(b, id, NULL, 0, val, sizeof val);
        if (rc)
            die("fill", rc);
    }
}

static uint64_t tree_bytes;

static int add_file_size(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)p, (void)ftw;
    if (flag == FTW_F)
        tree_bytes += (uint64_t)st->st_size;
    return 0;
}

/* Bytes of the regular files below `dir`. */
static uint64_t dir_bytes(const char *dir) {
    tree_bytes = 0;
    if (nftw(dir, add_file_size, 16, FTW_PHYS) != 0)
        die("measuring the instance's size on disk", SL_EIO);
    return tree_bytes;
}

/* Random get + put over all `keys` of the big state: the reads a compaction style makes slow
 * (every sorted run that may hold the key is searched, bloom filters skip most). */
static double random_updates(sl_keyed_backend_t *b, uint32_t id, uint64_t keys, uint64_t n) {
    uint64_t x = 88172645463325252ULL, val[13];
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t k = x % keys;
        set_key(b, &k);
        const void *v;
        uint32_t len;
        int rc = sl_state_value_get(b, id, NULL, 0, &v, &len);
        if (rc != 1 || len != sizeof val)
            die("random get", rc < 0 ? rc : SL_EIO);
        memcpy(val, v, sizeof val);
        val[0]++;
        if ((rc = sl_state_value_put(b, id, NULL, 0, val, sizeof val)) != 0)
            die("random put", rc);
    }
    return (double)n / (now_s() - t0);
}

/* The upload thread acknowledges here; the ack lives on the caller's stack. */
static void bench_ack(void *arg, sl_task_ack_t *ack) {}

static void checkpoint_cost(const char *dir, uint64_t state_mb, uint64_t rounds, const sl_rocksdb_options_t *opts) {
    uint64_t keys = state_mb * 1024 * 1024 / 126; /* ~126 bytes per entry (key, value, encoding) */
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/big", dir);
    sl_keyed_backend_t *b;
    int rc = sl_rocksdb_backend_create(path, NULL, opts, MAXP, 0, MAXP - 1, &b, err, sizeof err);
    if (rc)
        die(err, rc);
    uint32_t id;
    sl_state_register(b, "v", SL_STATE_VALUE, &id);
    double t0 = now_s();
    fill(b, id, 0, keys, 1, 0);
    printf("state: %llu keys, %.0f MB of RocksDB state, built in %.1f s\n", (unsigned long long)keys,
           (double)b->vt->memory_bytes(b) / 1048576.0, now_s() - t0);

    sl_ckpt_storage_t st;
    if ((rc = sl_ckpt_storage_init(&st, dir, "bench", err, sizeof err)) != 0)
        die(err, rc);
    sl_job_vertex_t vx = {.id = 0};
    sl_task_t t;
    memset(&t, 0, sizeof t);
    t.state = b;
    t.storage = &st;
    t.vertex = &vx;
    t.on_ack = bench_ack;

    /* Full: every entry, in the portable format. */
    snprintf(path, sizeof path, "%s/full.state", dir);
    file_sink_t fs = {fopen(path, "w"), 0};
    t0 = now_s();
    rc = sl_state_snapshot_write(b, NULL, to_file, &fs);
    fflush(fs.f);
    fsync(fileno(fs.f));
    fclose(fs.f);
    double full_s = now_s() - t0;
    if (rc)
        die("full snapshot", rc);
    printf("full checkpoint:          %10.1f MB uploaded  %7.2f s\n", (double)fs.bytes / 1048576.0, full_s);
    unlink(path);

    /* Incremental: the first uploads every SST file, later ones only new files (and the files
     * compactions rewrote, which is why single checkpoints vary: the average is the figure). */
    double sum_up = 0, sum_s = 0;
    for (uint64_t c = 1; c <= rounds + 1; c++) {
        if (c > 1)
            fill(b, id, c, keys, 100, (uint32_t)c); /* 1% of the keys change */
        sl_task_ack_t ack;
        memset(&ack, 0, sizeof ack);
        t0 = now_s();
        rc = sl_task_incremental_snapshot(&t, c, &ack);
        if (rc == 1) { /* asynchronous upload: the checkpoint's duration includes it */
            sl_task_incremental_wait(&t);
            rc = ack.status;
        }
        if (rc != 0)
            die(ack.error, rc);
        double s = now_s() - t0;
        sl_task_incremental_complete(&t, c);
        uint32_t shared = 0;
        for (uint32_t h = 0; h < ack.nhandles; h++)
            shared += ack.handles[h].shared;
        printf("incremental checkpoint %2llu: %10.1f MB uploaded  %7.2f s  (%u SST files%s)\n", (unsigned long long)c,
               (double)ack.bytes_uploaded / 1048576.0, s, shared, c > 1 ? "" : ", the first: everything");
        if (c > 1) {
            sum_up += (double)ack.bytes_uploaded;
            sum_s += s;
        }
        free(ack.handles);
    }
    double changed = (double)(keys / 100) * 126;
    printf("after 1%% of keys changed (%.1f MB), over %llu incremental checkpoints: %.1f MB uploaded and %.2f s on "
           "average; uploaded/changed %.2fx; full/incremental time %.1fx\n",
           changed / 1048576.0, (unsigned long long)rounds, sum_up / rounds / 1048576.0, sum_s / rounds,
           sum_up / rounds / changed, full_s / (sum_s / rounds));
    snprintf(path, sizeof path, "%s/big", dir); /* the instance (path held the full snapshot's file) */
    uint64_t disk = dir_bytes(path);
    double rate = random_updates(b, id, keys, 200000);
    printf("after the checkpoints: %.0f MB on disk (%.2fx the %.0f MB of entries); random get + put over all keys: "
           "%.0f updates/s\n",
           (double)disk / 1048576.0, (double)disk / ((double)keys * 126), (double)keys * 126 / 1048576.0, rate);
    sl_task_incremental_free(&t);
    sl_keyed_backend_destroy(b);
    char rm[512];
    sl_ckpt_remove_tree(st.job_dir, rm, sizeof rm);
    sl_ckpt_storage_destroy(&st);
}

int main(int argc, char **argv) {
    uint64_t state_mb = argc > 1 ? strtoull(argv[1], NULL, 10) : 2048;
    uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000;
    uint64_t rounds = argc > 3 ? strtoull(argv[3], NULL, 10) : 32;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress as it happens, also into a file */
    sl_rocksdb_options_t opts = {SL_ROCKSDB_COMPACTION_LEVEL, true};
    if (argc > 4)
        opts.compaction = strcmp(argv[4], "universal") == 0 ? SL_ROCKSDB_COMPACTION_UNIVERSAL
                                                            : SL_ROCKSDB_COMPACTION_LEVEL;
    if (argc > 5)
        opts.bloom_filter = strcmp(argv[5], "nobloom") != 0;
    uint64_t keys = 100000;
    char dir[] = "/tmp/sl-state-bench-XXXXXX", path[128], err[256];
    if (mkdtemp(dir) == NULL)
        return 1;
    printf("RocksDB: %s compaction, %s\n", opts.compaction == SL_ROCKSDB_COMPACTION_UNIVERSAL ? "universal" : "level",
           opts.bloom_filter ? "bloom filters" : "no bloom filters");
    printf("State access, %llu updates (get + put) over %llu keys\n", (unsigned long long)n, (unsigned long long)keys);
    sl_keyed_backend_t *b;
    if (sl_heap_backend_create(MAXP, 0, MAXP - 1, &b))
        return 1;
    double heap = updates(b, n, keys);
    sl_keyed_backend_destroy(b);
    /* Raw RocksDB before and after the backend, on fresh databases: the machine is noisy and
     * RocksDB's own background work varies, so the reference is their mean. */
    snprintf(path, sizeof path, "%s/raw1", dir);
    double raw1 = raw_updates(path, n, keys);
    snprintf(path, sizeof path, "%s/rdb", dir);
    if (sl_rocksdb_backend_create(path, NULL, &opts, MAXP, 0, MAXP - 1, &b, err, sizeof err))
        return 1;
    double rdb = updates(b, n, keys);
    sl_keyed_backend_destroy(b);
    snprintf(path, sizeof path, "%s/raw2", dir);
    double raw2 = raw_updates(path, n, keys), raw = (raw1 + raw2) / 2;
    printf("heap backend        %12.0f updates/s (one core)\n", heap);
    printf("RocksDB raw         %12.0f updates/s (mean of %.0f before and %.0f after)\n", raw, raw1, raw2);
    printf("RocksDB backend     %12.0f updates/s   %.0f%% of raw\n", rdb, 100.0 * rdb / raw);
    if (state_mb)
        checkpoint_cost(dir, state_mb, rounds, &opts);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
