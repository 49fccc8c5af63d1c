/* Fuzz target: JobGraph decoding (src/graph/job_graph_codec.h), what a TaskManager runs on the
 * graph bytes of SubmitTask. Whatever the bytes, decode returns 0 with a graph that passes
 * validation, or SL_EPARSE with a message and a zeroed graph; an accepted graph encodes,
 * decodes again, and encodes to the same bytes (encode o decode is stable). */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/job_graph.h"
#include "graph/job_graph_codec.h"

#define CHECK(c)                                                                                \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            fprintf(stderr, "fuzz_job_graph: check failed: %s (line %d)\n", #c, __LINE__);     \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_job_graph_t g;
    char err[512];
    int rc = sl_job_graph_decode(data, size, &g, err, sizeof err);
    if (rc != 0) {
        CHECK(rc == SL_EPARSE);
        CHECK(memchr(err, '\0', sizeof err) != NULL && strncmp(err, "job graph: ", 11) == 0);
        CHECK(g.nodes == NULL && g.nnodes == 0 && g.vertices == NULL && g.name == NULL);
        return 0;
    }
    CHECK(sl_job_graph_validate(&g, err, sizeof err) == 0);

    uint8_t *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK(sl_job_graph_encode(&g, &b1, &l1) == 0);
    sl_job_graph_t g2;
    rc = sl_job_graph_decode(b1, l1, &g2, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "fuzz_job_graph: re-decode failed: %s\n", err);
    CHECK(rc == 0);
    CHECK(g2.nnodes == g.nnodes && g2.nedges == g.nedges && g2.nvertices == g.nvertices);
    CHECK(sl_job_graph_encode(&g2, &b2, &l2) == 0);
    CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);

    sl_free(b1);
    sl_free(b2);
    sl_job_graph_destroy(&g2);
    sl_job_graph_destroy(&g);
    return 0;
}
