/* Standalone driver for the fuzz targets when libFuzzer is unavailable (gcc builds, ctest).
 * Runs every file of a corpus directory, then deterministic pseudo-random mutations of them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Usage: driver <corpus-dir | file>...
 * Env: SL_FUZZ_ITERS (mutated inputs, default 20000), SL_FUZZ_SEED (PRNG seed, default 1),
 *      SL_FUZZ_SECONDS (wall-clock cap on the mutation phase, default 8),
 *      SL_FUZZ_MAX_LEN (largest mutated input, default 8192). */

typedef struct {
    uint8_t *data;
    size_t size;
    char *name;
} seed_t;

static seed_t *seeds;
static size_t nseeds, capseeds;
static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64: deterministic across platforms */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static int read_file(const char *path, uint8_t **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    *out = buf;
    *len = n;
    return 0;
}

static void add_seed(const char *path) {
    uint8_t *d;
    size_t n;
    if (read_file(path, &d, &n) != 0) {
        fprintf(stderr, "driver: cannot read %s\n", path);
        exit(2);
    }
    if (nseeds == capseeds) {
        capseeds = capseeds ? capseeds * 2 : 16;
        seeds = realloc(seeds, capseeds * sizeof *seeds);
        if (!seeds)
            exit(2);
    }
    seeds[nseeds++] = (seed_t){d, n, strdup(path)};
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "driver: %s: not found\n", path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_seed(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        exit(2);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = realloc(names, cap * sizeof *names);
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str); /* readdir order is not deterministic */
    for (size_t i = 0; i < n; i++) {
        add_seed(names[i]);
        free(names[i]);
    }
    free(names);
}

/* Runs one input from a heap buffer of exactly `size` bytes, so ASan sees any overread. */
static void run(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        exit(2);
    if (size)
        memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static const uint32_t interesting32[] = {0, 1, 7, 8, 11, 12, 16, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000,
                                         0xffff, 0x10000, 0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff,
                                         0x80000000, 0xfffffff0, 0xfffffffe, 0xffffffff};
static const char *tokens[] = {",", "\"", "\"\"", "?", ":", "\n", "\r", "\r\n", "\\", "=", " ", "\t",
                               "-", "#", "true", "false", "null", "~", "{", "}", "[", "]", "- ", ": ",
                               "9223372036854775807", "-9223372036854775808", "2147483648", "1e309",
                               "nan", "inf", "0x10", "ms", "s", "min", "h", "kb", "mb", "gb", "tb",
                               "99999999999999999999", "string", "bytes", "int32", "int64", "double",
                               "timestamp", "bool", "\xff", "\0", "%s%n"};

/* One mutation of buf[0..*len) in place; buf has room for `cap` bytes. */
static void mutate_once(uint8_t *buf, size_t *len, size_t cap) {
    size_t n = *len;
    switch (rnd_below(11)) {
    case 0: /* flip a bit */
        if (n)
            buf[rnd_below(n)] ^= (uint8_t)(1u << rnd_below(8));
        break;
    case 1: /* random byte */
        if (n)
            buf[rnd_below(n)] = (uint8_t)rnd();
        break;
    case 2: /* interesting 32-bit little-endian value */
        if (n >= 4) {
            uint32_t v = interesting32[rnd_below(sizeof interesting32 / sizeof *interesting32)];
            if (rnd() & 1)
                v += (uint32_t)rnd_below(16) - 8u;
            memcpy(buf + rnd_below(n - 3), &v, 4);
        }
        break;
    case 3: /* delete a range */
        if (n) {
            size_t at = rnd_below(n), k = 1 + rnd_below(n - at < 16 ? n - at : 16);
            memmove(buf + at, buf + at + k, n - at - k);
            *len = n - k;
        }
        break;
    case 4: /* insert random bytes */
    case 5: { /* insert a token */
        const uint8_t *src;
        size_t k;
        uint8_t tmp[8];
        if (rnd() & 1) {
            const char *t = tokens[rnd_below(sizeof tokens / sizeof *tokens)];
            src = (const uint8_t *)t;
            k = t[0] ? strlen(t) : 1;
        } else {
            k = 1 + rnd_below(sizeof tmp);
            for (size_t i = 0; i < k; i++)
                tmp[i] = (uint8_t)rnd();
            src = tmp;
        }
        if (n + k > cap)
            break;
        size_t at = rnd_below(n + 1);
        memmove(buf + at + k, buf + at, n - at);
        memcpy(buf + at, src, k);
        *len = n + k;
        break;
    }
    case 6: /* duplicate a chunk */
        if (n) {
            size_t from = rnd_below(n), k = 1 + rnd_below(n - from);
            if (n + k > cap)
                break;
            size_t at = rnd_below(n + 1);
            uint8_t *chunk = malloc(k);
            memcpy(chunk, buf + from, k);
            memmove(buf + at + k, buf + at, n - at);
            memcpy(buf + at, chunk, k);
            free(chunk);
            *len = n + k;
        }
        break;
    case 7: /* truncate */
        if (n)
            *len = rnd_below(n);
        break;
    case 8: { /* splice with another seed */
        const seed_t *o = &seeds[rnd_below(nseeds)];
        if (o->size == 0)
            break;
        size_t from = rnd_below(o->size), k = 1 + rnd_below(o->size - from);
        size_t at = rnd_below(n + 1);
        if (at + k > cap)
            k = cap - at;
        memcpy(buf + at, o->data + from, k);
        if (at + k > n)
            *len = at + k;
        break;
    }
    case 9: /* add/subtract a small value from a byte */
        if (n)
            buf[rnd_below(n)] += (uint8_t)(rnd_below(35) - 17);
        break;
    default: /* overwrite with a copy of another part of itself */
        if (n >= 2) {
            size_t from = rnd_below(n), to = rnd_below(n), k = 1 + rnd_below(n - (from > to ? from : to));
            memmove(buf + to, buf + from, k);
        }
        break;
    }
}

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 0) : dflt;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus-dir | file>...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        add_path(argv[i]);
    long iters = env_long("SL_FUZZ_ITERS", 20000);
    double seconds = (double)env_long("SL_FUZZ_SECONDS", 8);
    size_t maxlen = (size_t)env_long("SL_FUZZ_MAX_LEN", 8192);
    rng_state = (uint64_t)env_long("SL_FUZZ_SEED", 1);

    for (size_t i = 0; i < nseeds; i++)
        run(seeds[i].data, seeds[i].size);
    printf("driver: %zu corpus inputs ok\n", nseeds);
    if (nseeds == 0 || iters <= 0)
        return 0;

    size_t biggest = 0;
    for (size_t i = 0; i < nseeds; i++)
        if (seeds[i].size > biggest)
            biggest = seeds[i].size;
    size_t cap = biggest * 2 + 64 > maxlen ? biggest * 2 + 64 : maxlen;
    uint8_t *buf = malloc(cap);
    double start = now_s();
    long done = 0;
    for (; done < iters; done++) {
        if ((done & 255) == 0 && now_s() - start > seconds)
            break;
        const seed_t *s = &seeds[rnd_below(nseeds)];
        size_t len = s->size < cap ? s->size : cap;
        memcpy(buf, s->data, len);
        size_t k = 1 + rnd_below(rnd_below(8) + 1); /* mostly few mutations, sometimes many */
        for (size_t m = 0; m < k; m++)
            mutate_once(buf, &len, cap);
        if (getenv("SL_FUZZ_DUMP")) { /* writes each input before running it, for reproduction */
            FILE *f = fopen(getenv("SL_FUZZ_DUMP"), "wb");
            if (f) {
                fwrite(buf, 1, len, f);
                fclose(f);
            }
        }
        run(buf, len);
    }
    free(buf);
    printf("driver: %ld mutated inputs ok (seed %ld, %.1f s)\n", done, env_long("SL_FUZZ_SEED", 1),
           now_s() - start);
    return 0;
}
