/* The exactly-once CSV sink across a change of parallelism: the subtasks' output files
 * together hold exactly the rows the restored checkpoint covered plus those written after it,
 * whatever the old and new parallelisms (sinks.c, txn_file.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/op_harness.h"

/* Sink subtask k of par writing `base`, with checkpointing on. */
static void open_sink(sl_harness_t *h, const char *dir, const char *base, uint32_t par, uint32_t k) {
    char p[512], err[256];
    snprintf(p, sizeof p, "path=%s/unused.csv", dir);
    assert_int_equal(sl_harness_open(h, "sink_csv", "x:int64", NULL, NULL, NULL, NULL, p), 0);
    h->op->vt->close(h->op);
    memset((char *)h->op + sizeof(sl_operator_t), 0, h->op->vt->size - sizeof(sl_operator_t));
    assert_int_equal(sl_config_set(h->config, "execution.checkpointing.interval", "1s", err, sizeof err), 0);
    assert_int_equal(sl_params_set(&h->params, "path", base), 0);
    h->op->parallelism = par;
    h->op->subtask_index = k;
    int rc = h->op->vt->open(h->op);
    if (rc)
        fail_msg("open: %s", h->error);
}

static void push(sl_harness_t *h, const char *rows) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", rows);
    char *save = NULL;
    for (char *r = strtok_r(buf, " ", &save); r; r = strtok_r(NULL, " ", &save))
        assert_int_equal(sl_harness_push(h, 0, r, 0), 0);
}

static void snapshot(sl_harness_t *h, uint64_t id, sl_op_extras_t *x) {
    memset(x, 0, sizeof *x);
    assert_int_equal(h->op->vt->snapshot(h->op, id, x), 0);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The rows of every output file base, base.0, base.1, ..., sorted, joined by ' '. */
static void rows_of(const char *base, char *out, size_t len) {
    char pattern[512], *rows[256], line[128];
    size_t n = 0;
    snprintf(pattern, sizeof pattern, "%s*", base);
    glob_t g;
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        assert_string_equal(line, "x\n"); /* the header once per file */
        while (fgets(line, sizeof line, f) && n < 256) {
            line[strcspn(line, "\n")] = '\0';
            rows[n++] = strdup(line);
        }
        fclose(f);
    }
    globfree(&g);
    qsort(rows, n, sizeof rows[0], cmp);
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(out + off, len - off, "%s%s", i ? " " : "", rows[i]);
        free(rows[i]);
    }
}

/* Old job at parallelism 2 killed after checkpoint 2 completed (its commit notice lost),
 * restored at `par`. Returns the sorted rows of all output files. */
static void scenario(uint32_t par, const char *const *after, char *out, size_t len) {
    char dir[] = "/tmp/sl-txnrs-XXXXXX", base[128], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(base, sizeof base, "%s/out.csv", dir);
    sl_harness_t a0, a1;
    sl_op_extras_t x[2], junk;
    open_sink(&a0, dir, base, 2, 0);
    open_sink(&a1, dir, base, 2, 1);
    push(&a0, "1 2");
    push(&a1, "11");
    snapshot(&a0, 1, &junk);
    snapshot(&a1, 1, &junk);
    assert_int_equal(a0.op->vt->checkpoint_complete(a0.op, 1), 0);
    assert_int_equal(a1.op->vt->checkpoint_complete(a1.op, 1), 0);
    push(&a0, "3");
    push(&a1, "12");
    snapshot(&a0, 2, &x[0]);
    snapshot(&a1, 2, &x[1]);
    push(&a0, "4");  /* after checkpoint 2: lost, replayed by the sources */
    push(&a1, "13");
    snapshot(&a1, 3, &junk); /* pre-committed, never completed */
    sl_harness_close(&a0); /* the process dies */
    sl_harness_close(&a1);
    for (uint32_t i = 0; i < par; i++) {
        sl_harness_t b;
        open_sink(&b, dir, base, par, i);
        sl_op_extras_t sets[2];
        uint32_t n = 0;
        for (uint32_t j = i; j < 2; j += par)
            sets[n++] = x[j];
        assert_int_equal(b.op->vt->restore(b.op, 2, sets, n), 0);
        push(&b, after[i]);
        assert_int_equal(sl_harness_finish(&b), 0);
        sl_harness_close(&b);
    }
    rows_of(base, out, len);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_two_to_three(void **state) {
    const char *after[] = {"5", "14", "20"};
    char rows[1024];
    scenario(3, after, rows, sizeof rows);
    assert_string_equal(rows, "1 11 12 14 2 20 3 5");
}

static void test_two_to_one(void **state) {
    const char *after[] = {"6"};
    char rows[1024];
    scenario(1, after, rows, sizeof rows);
    assert_string_equal(rows, "1 11 12 2 3 6");
}

static void test_two_to_two(void **state) {
    const char *after[] = {"7", "17"};
    char rows[1024];
    scenario(2, after, rows, sizeof rows);
    assert_string_equal(rows, "1 11 12 17 2 3 7");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_to_three),
        cmocka_unit_test(test_two_to_one),
        cmocka_unit_test(test_two_to_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
