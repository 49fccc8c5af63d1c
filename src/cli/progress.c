/* Progress display: a table redrawn in place on a terminal (ANSI cursor movement), one row per
 * job vertex with records in/out per second, totals and time spent backpressured. */
#include "cli/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void sl_progress_init(sl_progress_t *p, const char *job, bool live, bool quiet) {
    memset(p, 0, sizeof *p);
    p->job = job;
    p->live = live;
    p->quiet = quiet;
}

static void human(uint64_t v, char *buf, size_t len) {
    if (v >= 10000000000ull)
        snprintf(buf, len, "%.1fG", v / 1e9);
    else if (v >= 10000000)
        snprintf(buf, len, "%.1fM", v / 1e6);
    else if (v >= 10000)
        snprintf(buf, len, "%.1fK", v / 1e3);
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void draw(sl_progress_t *p, const sl_job_progress_t *jp, bool final) {
    double dt = (jp->elapsed_ms - p->last_ms) / 1000.0;
    if (p->lines_drawn)
        fprintf(stderr, "\033[%uA", p->lines_drawn);
    fprintf(stderr, "\033[2K%s job '%s'  %.1f s\n", final ? "finished" : "running ", p->job, jp->elapsed_ms / 1000.0);
    fprintf(stderr, "\033[2K  %-44s %4s %10s %10s %10s %10s %5s\n", "vertex", "par", "in/s", "out/s", "in", "out",
            "bp%");
    for (uint32_t v = 0; v < jp->nvertices; v++) {
        const sl_vertex_progress_t *vp = &jp->vertices[v];
        char ins[16], outs[16], tin[16], tout[16];
        uint64_t din = vp->records_in - p->last_in[v], dout = vp->records_out - p->last_out[v];
        human(dt > 0 ? (uint64_t)(din / dt) : 0, ins, sizeof ins);
        human(dt > 0 ? (uint64_t)(dout / dt) : 0, outs, sizeof outs);
        human(vp->records_in, tin, sizeof tin);
        human(vp->records_out, tout, sizeof tout);
        double bp = jp->elapsed_ms > 0 ? 100.0 * vp->backpressured_ms / ((double)jp->elapsed_ms * vp->parallelism) : 0;
        char name[45];
        snprintf(name, sizeof name, "%s", vp->name);
        fprintf(stderr, "\033[2K  %-44s %4u %10s %10s %10s %10s %5.0f\n", name, vp->parallelism, ins, outs, tin, tout,
                bp > 100 ? 100 : bp);
        p->last_in[v] = vp->records_in;
        p->last_out[v] = vp->records_out;
    }
    p->lines_drawn = 2 + jp->nvertices;
    p->last_ms = jp->elapsed_ms;
}

static void summary(const sl_progress_t *p, const sl_job_progress_t *jp) {
    double s = jp->elapsed_ms / 1000.0;
    fprintf(stderr, "job '%s' finished in %.2f s\n", p->job, s);
    for (uint32_t v = 0; v < jp->nvertices; v++) {
        const sl_vertex_progress_t *vp = &jp->vertices[v];
        fprintf(stderr, "  %-50s par %-3u in %12llu  out %12llu  (%.0f in/s)\n", vp->name, vp->parallelism,
                (unsigned long long)vp->records_in, (unsigned long long)vp->records_out,
                s > 0 ? vp->records_in / s : 0.0);
    }
}

void sl_progress_update(sl_progress_t *p, const sl_job_progress_t *jp, int final) {
    if (p->last_in == NULL) {
        p->nvertices = jp->nvertices;
        p->last_in = sl_calloc(jp->nvertices, sizeof *p->last_in);
        p->last_out = sl_calloc(jp->nvertices, sizeof *p->last_out);
        if (p->last_in == NULL || p->last_out == NULL)
            p->live = false;
    }
    if (p->live && p->last_in && p->last_out)
        draw(p, jp, final);
    if (final) {
        if (!p->quiet && !p->live)
            summary(p, jp);
        sl_free(p->last_in);
        sl_free(p->last_out);
        p->last_in = p->last_out = NULL;
    }
}
