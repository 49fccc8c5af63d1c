/* Data-plane benchmark: a keyBy (hash) exchange between two processes on loopback. Process A
 * (forked) writes 100-byte rows with sl_record_writer into C remote channels; process B
 * reads them with sl_record_reader. Prints throughput (MB/s, records/s, and the CPU time both
 * processes spent per MB, which is less at the mercy of other load on a shared machine) for
 * each segment size, next to iperf3 on loopback measured in the same run, and latency p50/p99
 * at 50% of the measured maximum rate with buffer timeout 0 (flush per record) and 10 ms
 * (first segment size). Rows carry their CLOCK_MONOTONIC send time (same machine); the
 * maximum-rate phases read the clock once per 256 rows, so the bench's own clock reads stay
 * out of the figure. Prints figures; never fails on time.
 * usage: [SL_BENCH_TLS=DIR] shuffle_bench [SECONDS=5] [CHANNELS=4] [SEGMENTS_KIB=32,64,128] [MODE=all|max]
 * MODE max runs only the maximum-rate phases (no iperf3, no latency), for perf stat/record. */
#include <sluice/error.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "network/net.h"
#include "network/record_writer.h"
#include "rpc/tls.h"

#include "bench_tls.h"

#define CREDIT 4u
#define ROW_BYTES 100u
#define MAXCH 16
#define SECRET "bench-secret"
#define MAXSEG 8

static sl_tls_ctx_t *g_tls;


typedef struct {
    double seconds;
    double rate;      /* records/s; 0 = as fast as possible */
    int timeout_ms;   /* -1 = flush when full, 0 = every record, else every timeout_ms */
    uint32_t channels;
    uint32_t segment; /* bytes */
} phase_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int select_by_key(void *arg, const sl_row_t *row, uint32_t n) {
    return (int)(mix64((uint64_t)sl_row_i64(row, 0)) % n);
}

static sl_net_t *start_tm(const char *id) {
    sl_net_config_t cfg = {.id = id, .secret = (const uint8_t *)SECRET, .secret_len = strlen(SECRET), .tls = g_tls};
    sl_net_t *net;
    char err[256];
    if (sl_net_create(&cfg, &net, err, sizeof err) < 0) {
        fprintf(stderr, "shuffle_bench: %s\n", err);
        exit(1);
    }
    return net;
}

static void sleep_until(int64_t t) {
    struct timespec ts = {t / 1000000000ll, t % 1000000000ll};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* ---- process A: the producer ---- */

static int produce(sl_record_writer_t *w, const phase_t *ph) {
    static char pad[ROW_BYTES];
    memset(pad, 'p', sizeof pad);
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    int64_t start = now_ns(), end = start + (int64_t)(ph->seconds * 1e9), next_flush = start;
    /* Size the padding once so that a row is ROW_BYTES long. */
    sl_row_builder_start(&b, 3);
    sl_row_set_i64(&b, 0, 0);
    sl_row_set_i64(&b, 1, 0);
    sl_row_set_str(&b, 2, pad, 0);
    sl_row_t probe;
    int rc = sl_row_builder_finish(&b, &probe);
    uint32_t padlen = probe.len < ROW_BYTES ? ROW_BYTES - probe.len : 0;
    int64_t t = start;
    for (int64_t i = 0; rc == 0; i++) {
        /* At full speed the clock is read once per 256 rows (the send time is only used by
         * the latency phases, which pace every row anyway). */
        if (ph->rate > 0 || (i & 255) == 0)
            t = now_ns();
        if ((i & 255) == 0 && t >= end)
            break;
        if (ph->rate > 0) {
            int64_t due = start + (int64_t)(i * 1e9 / ph->rate);
            if (due > t + 20000)
                sleep_until(due);
            if (t >= end)
                break;
            t = now_ns();
        }
        sl_row_builder_start(&b, 3);
        sl_row_set_i64(&b, 0, i);
        sl_row_set_i64(&b, 1, t);
        sl_row_set_str(&b, 2, pad, padlen);
        sl_row_t r;
        rc = sl_row_builder_finish(&b, &r);
        if (rc == 0)
            rc = sl_record_writer_write(w, &r, t);
        if (rc == 0 && ph->timeout_ms > 0 && t >= next_flush) {
            rc = sl_record_writer_flush(w);
            next_flush = t + ph->timeout_ms * 1000000ll;
        }
    }
    if (rc == 0)
        rc = sl_record_writer_event(w, SL_CH_END, 0);
    sl_row_builder_destroy(&b);
    return rc;
}

static void run_producer(const phase_t *ph, int port_fd, int done_fd) {
    sl_net_t *net = start_tm("tm-a");
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    static sl_channel_t ch[MAXCH];
    sl_channel_t *chp[MAXCH];
    sl_net_channel_t *h[MAXCH];
    sl_network_memory_init(&nm, 64u << 20, ph->segment);
    sl_mailbox_init(&mb);
    for (uint32_t i = 0; i < ph->channels; i++) {
        sl_channel_init(&ch[i], CREDIT, &mb, sl_net_mailbox(net), 0, i);
        chp[i] = &ch[i];
        sl_net_export(net, 100 + i, &ch[i], &h[i]);
    }
    sl_record_writer_t w;
    sl_record_writer_init(&w, SL_PART_HASH, chp, ph->channels, CREDIT, &nm, &mb);
    w.select = select_by_key;
    w.flush_every_record = ph->timeout_ms == 0;
    int port = sl_net_port(net);
    if (write(port_fd, &port, sizeof port) != sizeof port)
        _exit(2);
    int rc = produce(&w, ph);
    char c;
    /* The consumer says when everything arrived; only then may the channels go. */
    if (read(done_fd, &c, 1) != 1)
        rc = -1;
    for (uint32_t i = 0; i < ph->channels; i++)
        sl_net_channel_close(h[i]);
    for (uint32_t i = 0; i < ph->channels; i++)
        sl_channel_destroy(&ch[i]);
    sl_record_writer_destroy(&w);
    sl_net_destroy(net);
    _exit(rc == 0 ? 0 : 1);
}

/* ---- process B: the consumer ---- */

typedef struct {
    uint64_t records, bytes;
    int64_t first_ns, last_ns;
    int64_t *lat;
    size_t nlat, cap_lat;
    int errors;
    double cpu_s; /* user + system time of both processes */
} result_t;

static void on_buffer(sl_record_reader_t *rd, sl_buffer_t *buf, result_t *res) {
    uint32_t pos = 0;
    sl_row_t r;
    int64_t ts;
    int64_t now = now_ns();
    res->bytes += buf->len;
    while (sl_record_reader_next(rd, buf, &pos, &r, &ts) == 1) {
        res->records++;
        if (res->lat && res->nlat < res->cap_lat)
            res->lat[res->nlat++] = now - sl_row_i64(&r, 1);
    }
}

static void consume(sl_net_t *net, int port, const phase_t *ph, result_t *res) {
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    static sl_channel_t ch[MAXCH];
    sl_buffer_pool_t *pool[MAXCH];
    sl_net_channel_t *h[MAXCH];
    static sl_record_reader_t rd[MAXCH];
    sl_network_memory_init(&nm, 64u << 20, ph->segment);
    sl_mailbox_init(&mb);
    for (uint32_t i = 0; i < ph->channels; i++) {
        sl_buffer_pool_create(&nm, CREDIT, &pool[i]);
        sl_channel_init(&ch[i], CREDIT, sl_net_mailbox(net), &mb, 0, i);
        if (sl_net_import(net, "127.0.0.1", port, "tm-a", 100 + i, &ch[i], pool[i], &h[i]) < 0)
            exit(1);
    }
    uint32_t ended = 0;
    while (ended < ph->channels) {
        void *ready;
        if (sl_mailbox_wait_ready(&mb, INT64_MAX, &ready) != 1)
            continue;
        sl_channel_t *c = ready;
        uint32_t i = (uint32_t)(c - ch);
        sl_channel_entry_t e;
        if (sl_channel_poll(c, &e) != 1)
            continue;
        if (e.kind == SL_CH_END) {
            char msg[512];
            if (sl_net_channel_error(h[i], msg, sizeof msg)) {
                fprintf(stderr, "shuffle_bench: %s\n", msg);
                res->errors++;
            }
            ended++;
            continue;
        }
        if (e.kind != SL_CH_BUFFER)
            continue;
        if (!res->first_ns)
            res->first_ns = now_ns();
        on_buffer(&rd[i], e.buf, res);
        res->last_ns = now_ns();
        sl_channel_release(c, e.buf);
    }
    for (uint32_t i = 0; i < ph->channels; i++) {
        sl_net_channel_close(h[i]);
        sl_channel_destroy(&ch[i]);
        sl_record_reader_destroy(&rd[i]);
        sl_buffer_pool_destroy(pool[i]);
    }
    sl_mailbox_destroy(&mb);
    sl_network_memory_destroy(&nm);
}

static double tv_s(struct timeval tv) {
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static double rusage_s(const struct rusage *ru) {
    return tv_s(ru->ru_utime) + tv_s(ru->ru_stime);
}

static void run_phase(const phase_t *ph, result_t *res) {
    struct rusage self0, self1, child;
    getrusage(RUSAGE_SELF, &self0);
    int port_pipe[2], done_pipe[2];
    if (pipe(port_pipe) || pipe(done_pipe))
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(port_pipe[0]);
        close(done_pipe[1]);
        run_producer(ph, port_pipe[1], done_pipe[0]);
    }
    close(port_pipe[1]);
    close(done_pipe[0]);
    int port;
    if (read(port_pipe[0], &port, sizeof port) != sizeof port)
        exit(1);
    sl_net_t *net = start_tm("tm-b");
    consume(net, port, ph, res);
    if (write(done_pipe[1], "x", 1) != 1)
        res->errors++;
    int status;
    if (wait4(pid, &status, 0, &child) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        res->errors++;
    sl_net_destroy(net);
    getrusage(RUSAGE_SELF, &self1);
    res->cpu_s = rusage_s(&self1) - rusage_s(&self0) + rusage_s(&child);
    close(port_pipe[0]);
    close(done_pipe[1]);
}

/* ---- iperf3 reference ---- */

static double iperf3_bytes_per_s(void) {
    int port = 20000 + (int)(getpid() % 20000);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "iperf3 -s -1 -p %d >/dev/null 2>&1", port);
    pid_t srv = fork();
    if (srv == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    usleep(300000);
    snprintf(cmd, sizeof cmd, "iperf3 -c 127.0.0.1 -p %d -t 3 -J 2>/dev/null", port);
    FILE *f = popen(cmd, "r");
    static char out[1 << 20];
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    if (f)
        pclose(f);
    out[n] = '\0';
    int status;
    waitpid(srv, &status, 0);
    /* end.sum_received.bits_per_second (what the receiver got). */
    char *p = strstr(out, "\"sum_received\"");
    p = p ? strstr(p, "\"bits_per_second\"") : NULL;
    if (!p)
        return 0;
    p = strchr(p, ':');
    return p ? strtod(p + 1, NULL) / 8.0 : 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_latency(const char *name, result_t *r, double rate) {
    qsort(r->lat, r->nlat, sizeof *r->lat, cmp_i64);
    if (r->nlat == 0) {
        printf("%-34s no samples\n", name);
        return;
    }
    printf("%-34s %9.0f rec/s target  p50 %8.1f us  p99 %8.1f us  (%zu samples%s)\n", name, rate,
           r->lat[r->nlat / 2] / 1e3, r->lat[r->nlat * 99 / 100] / 1e3, r->nlat, r->errors ? ", ERRORS" : "");
}

static uint32_t parse_segments(const char *arg, uint32_t *kib) {
    uint32_t n = 0;
    for (const char *p = arg; *p && n < MAXSEG;) {
        char *endp;
        unsigned long v = strtoul(p, &endp, 10);
        if (endp == p || v < 1 || v > 1024) {
            fprintf(stderr, "shuffle_bench: segment sizes are KiB in 1..1024, comma separated: %s\n", arg);
            exit(2);
        }
        kib[n++] = (uint32_t)v;
        p = *endp == ',' ? endp + 1 : endp;
    }
    return n;
}

static double elapsed_s(const result_t *r) {
    return (r->last_ns - r->first_ns) / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    uint32_t channels = argc > 2 ? (uint32_t)atoi(argv[2]) : 4;
    if (channels < 1 || channels > MAXCH)
        channels = 4;
    uint32_t kib[MAXSEG];
    uint32_t nseg = parse_segments(argc > 3 ? argv[3] : "32,64,128", kib);
    int max_only = argc > 4 && strcmp(argv[4], "max") == 0;
    sl_log_set_level(SL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    g_tls = bench_tls();

    double bps[MAXSEG];
    printf("shuffle: %u channels, %u-byte rows, credit %u, %.0f s per phase%s\n", channels, ROW_BYTES, CREDIT,
           seconds, g_tls ? ", TLS" : "");
    for (uint32_t k = 0; k < nseg; k++) {
        phase_t max = {.seconds = seconds, .channels = channels, .timeout_ms = -1, .segment = kib[k] * 1024u};
        result_t r = {0};
        run_phase(&max, &r);
        bps[k] = r.bytes / elapsed_s(&r);
        char name[64];
        snprintf(name, sizeof name, "keyBy exchange, %u KiB segments", kib[k]);
        printf("%-34s %8.1f MB/s  %11.0f records/s  %6.3f ms CPU/MB%s\n", name, bps[k] / 1e6,
               r.records / elapsed_s(&r), r.cpu_s * 1e3 / (r.bytes / 1e6), r.errors ? "  ERRORS" : "");
    }
    if (max_only)
        return 0;
    double iperf = iperf3_bytes_per_s();
    printf("%-34s %8.1f MB/s\n", "iperf3 loopback (same run)", iperf / 1e6);
    for (uint32_t k = 0; iperf > 0 && k < nseg; k++) {
        char name[64];
        snprintf(name, sizeof name, "ratio to iperf3, %u KiB segments", kib[k]);
        printf("%-34s %8.1f %%\n", name, 100.0 * bps[k] / iperf);
    }

    /* Latency at 50% of the maximum rate of the same flush policy, measured just before. */
    int timeouts[2] = {0, 10};
    for (int k = 0; k < 2; k++) {
        phase_t mp = {.seconds = 2, .rate = 0, .timeout_ms = timeouts[k], .channels = channels,
                      .segment = kib[0] * 1024u};
        result_t mr = {0};
        run_phase(&mp, &mr);
        double mrate = mr.records / elapsed_s(&mr);
        phase_t ph = mp;
        ph.seconds = 3;
        ph.rate = mrate / 2;
        result_t lr = {0};
        lr.cap_lat = (size_t)(ph.rate * ph.seconds) + 1024;
        lr.lat = malloc(lr.cap_lat * sizeof *lr.lat);
        run_phase(&ph, &lr);
        char name[64];
        snprintf(name, sizeof name, "buffer timeout %d ms: max", timeouts[k]);
        printf("%-34s %8.1f MB/s  %11.0f records/s\n", name, mr.bytes / elapsed_s(&mr) / 1e6, mrate);
        snprintf(name, sizeof name, "buffer timeout %d ms: latency", timeouts[k]);
        print_latency(name, &lr, ph.rate);
        free(lr.lat);
    }
    return 0;
}
