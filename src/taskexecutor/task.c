/* Subtask execution: building the chain and the mailbox loop (see task.h). */
#include "taskexecutor/task.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/key_group.h"
#include "core/log.h"
#include "state/rocksdb_backend.h"
#include "taskexecutor/task_checkpoint.h"
#include "taskexecutor/task_async_snapshot.h"
#include "taskexecutor/task_incremental.h"

#define SOURCE_BUDGET 1024

/* ---- Construction ---- */

static int hash_select(void *arg, const sl_row_t *row, uint32_t nchannels) {
    sl_task_writer_t *tw = arg;
    int rc = sl_key_extract(&tw->key, row, &tw->key_buf);
    if (rc)
        return rc;
    uint32_t kg = sl_key_group_of(sl_key_hash(tw->key_buf.data, tw->key_buf.len), tw->max_parallelism);
    return (int)sl_key_group_operator_index(kg, tw->max_parallelism, nchannels);
}

static int resolve_key(sl_task_t *t, const sl_node_key_t *nk, const sl_schema_t *schema, sl_key_selector_t *ks,
                       const char *what) {
    memset(ks, 0, sizeof *ks);
    if (nk->fn) {
        void *fn = dlsym(t->user_lib ? t->user_lib : RTLD_DEFAULT, nk->fn);
        if (fn == NULL) {
            snprintf(t->error, sizeof t->error, "%s: key function '%s' not found", what, nk->fn);
            return SL_ESYMBOL;
        }
        ks->fn = (sl_key_fn)fn;
        return 0;
    }
    if (nk->nfields == 0)
        return 0;
    return sl_key_selector_init_fields(ks, schema, nk->fields, nk->nfields, t->error, sizeof t->error);
}

static int64_t wall_clock(void) { return sl_wall_ms(); }

static int create_operator(sl_task_t *t, uint32_t ci) {
    const sl_stream_node_t *n = &t->graph->nodes[t->vertex->nodes[ci]];
    const sl_operator_vtable_t *vt = sl_operator_lookup(n->kind);
    if (vt == NULL) {
        snprintf(t->error, sizeof t->error, "operator '%s': unknown operator kind '%s'", n->name, n->kind);
        return SL_EJOB;
    }
    sl_operator_t *op = sl_calloc(1, vt->size);
    if (op == NULL)
        return SL_ENOMEM;
    t->ops[ci] = op;
    op->vt = vt;
    op->name = n->name;
    op->params = &n->params;
    op->config = t->config;
    op->in_schema[0] = n->in_schema[0];
    op->in_schema[1] = n->in_schema[1];
    op->out_schema = n->out_schema;
    op->subtask_index = t->index;
    op->parallelism = t->vertex->parallelism;
    op->max_parallelism = t->graph->max_parallelism;
    op->user_lib = t->user_lib;
    op->timers = t->timers;
    op->current_watermark = SL_WATERMARK_MIN;
    op->now_ms = wall_clock;
    op->mailbox = &t->mailbox;
    op->service_at = INT64_MAX;
    sl_params_int(&n->params, "state.ttl_ms", 0, &op->state_ttl_ms);
    op->fn_ctx.op = op;
    op->error = t->error;
    op->error_len = sizeof t->error;
    for (uint32_t i = 0; i < n->ninputs; i++) {
        int rc = resolve_key(t, &n->key[i], n->in_schema[i], &op->key[i], n->name);
        if (rc)
            return rc;
        if (op->key[i].nfields || op->key[i].fn)
            op->state = t->state;
    }
    if (n->out_schema) {
        int rc = sl_output_init(&t->outputs[ci], sl_schema_nfields(n->out_schema));
        if (rc)
            return rc;
        op->out = &t->outputs[ci];
    }
    return 0;
}

static bool chain_is_keyed(const sl_task_t *t) {
    const sl_stream_node_t *n = &t->graph->nodes[t->vertex->nodes[0]];
    for (uint32_t i = 0; i < n->ninputs; i++)
        if (n->key[i].nfields || n->key[i].fn)
            return true;
    return false;
}

/* <localdir>/sluice-rocksdb-<pid>/<vertex>-<subtask>-<n>: unique per process and per task
 * instance, so concurrent jobs and restarts never share a directory. */
static int rocksdb_path(sl_task_t *t, char *buf, size_t len) {
    static atomic_uint instances;
    char root[4096];
    int n = sl_rocksdb_local_root(t->config, root, sizeof root) == 0
                ? snprintf(buf, len, "%s/v%u-%u-%u", root, t->vertex->id, t->index, atomic_fetch_add(&instances, 1))
                : -1;
    if (n < 0 || (size_t)n >= len) {
        snprintf(t->error, sizeof t->error, "state.backend.rocksdb.localdir is too long");
        return SL_ECONFIG;
    }
    return 0;
}

static int create_state(sl_task_t *t) {
    int rc = sl_timer_service_create(&t->timers);
    if (rc || !chain_is_keyed(t))
        return rc;
    uint32_t first, last;
    sl_key_group_range(t->graph->max_parallelism, t->vertex->parallelism, t->index, &first, &last);
    const char *type = sl_config_str(t->config, "state.backend.type");
    if (type == NULL || strcmp(type, "rocksdb") != 0)
        return sl_heap_backend_create(t->graph->max_parallelism, first, last, &t->state);
    char path[4096];
    if ((rc = rocksdb_path(t, path, sizeof path)) != 0)
        return rc;
    sl_rocksdb_options_t opts;
    sl_rocksdb_options_from_config(t->config, &opts);
    rc = sl_rocksdb_backend_create(path, t->rocksdb_memory, &opts, t->graph->max_parallelism, first, last, &t->state,
                                   t->error, sizeof t->error);
    return rc;
}

/* Connects chained operators to each other, in the order of the graph's chained edges. */
static int wire_chain(sl_task_t *t) {
    for (uint32_t e = 0; e < t->graph->nedges; e++) {
        const sl_stream_edge_t *ed = &t->graph->edges[e];
        if (!ed->chained || t->graph->nodes[ed->src].vertex != t->vertex->id)
            continue;
        uint32_t s = t->graph->nodes[ed->src].chain_index, d = t->graph->nodes[ed->dst].chain_index;
        if (sl_output_add_next(&t->outputs[s], t->ops[d], ed->dst_input)) {
            snprintf(t->error, sizeof t->error, "operator '%s': too many consumers", t->ops[s]->name);
            return SL_EJOB;
        }
    }
    return 0;
}

static int create_writers(sl_task_t *t, const sl_task_wiring_t *w, sl_network_memory_t *nm) {
    if (w->nout == 0)
        return 0;
    t->writers = sl_calloc(w->nout, sizeof *t->writers);
    if (t->writers == NULL)
        return SL_ENOMEM;
    int64_t credit = sl_config_int(t->config, "taskmanager.network.memory.buffers-per-channel");
    for (uint32_t e = 0; e < w->nout; e++) {
        const sl_stream_edge_t *ed = w->out_edges[e];
        sl_task_writer_t *tw = &t->writers[e];
        const sl_stream_node_t *dst = &t->graph->nodes[ed->dst];
        int rc = sl_record_writer_init(&tw->writer, ed->partitioner, w->out_channels[e], w->out_nchannels[e],
                                       (uint32_t)credit, nm, &t->mailbox);
        if (rc) {
            if (rc == SL_ENOBUFS)
                snprintf(t->error, sizeof t->error,
                         "insufficient network buffers for '%s' (%u channels x %lld credits): raise "
                         "taskmanager.memory.network.size",
                         t->graph->nodes[ed->src].name, w->out_nchannels[e], (long long)credit + 1);
            return rc;
        }
        t->nwriters++;
        tw->writer.flush_every_record = t->buffer_timeout_ms == 0;
        tw->max_parallelism = t->graph->max_parallelism;
        tw->chain_index = t->graph->nodes[ed->src].chain_index;
        if (ed->partitioner == SL_PART_HASH) {
            rc = resolve_key(t, &dst->key[ed->dst_input], dst->in_schema[ed->dst_input], &tw->key, dst->name);
            if (rc)
                return rc;
            tw->writer.select = hash_select;
            tw->writer.select_arg = tw;
        }
        if (sl_output_add_writer(&t->outputs[tw->chain_index], &tw->writer)) {
            snprintf(t->error, sizeof t->error, "operator '%s': too many consumers", t->graph->nodes[ed->src].name);
            return SL_EJOB;
        }
    }
    return 0;
}

int sl_task_init(sl_task_t *t, const sl_job_graph_t *g, uint32_t vertex, uint32_t index,
                 const struct sl_config_s *config, void *user_lib, const sl_task_wiring_t *w,
                 sl_network_memory_t *nm, sl_task_done_cb on_done, void *arg) {
    memset(t, 0, sizeof *t);
    t->graph = g;
    t->vertex = &g->vertices[vertex];
    t->index = index;
    t->config = config;
    t->user_lib = user_lib;
    t->on_done = on_done;
    t->on_done_arg = arg;
    t->rocksdb_memory = w->rocksdb_memory;
    t->storage = w->storage;
    t->on_ack = w->on_ack;
    t->on_ack_arg = w->on_ack_arg;
    t->restore = w->restore;
    t->combined_watermark = SL_WATERMARK_MIN;
    t->buffer_timeout_ms = sl_config_duration_ms(config, "execution.buffer-timeout");
    t->watermark_interval_ms = sl_config_duration_ms(config, "pipeline.auto-watermark-interval");
    if (t->watermark_interval_ms <= 0)
        t->watermark_interval_ms = 200;
    sl_batch_init(&t->in_batch);
    int rc = sl_mailbox_init(&t->mailbox);
    if (rc)
        return rc;
    t->nops = t->vertex->nnodes;
    t->ops = sl_calloc(t->nops, sizeof *t->ops);
    t->outputs = sl_calloc(t->nops, sizeof *t->outputs);
    t->in_channels = w->nin ? sl_calloc(w->nin, sizeof *t->in_channels) : NULL;
    t->readers = w->nin ? sl_calloc(w->nin, sizeof *t->readers) : NULL;
    t->blocked = w->nin ? sl_calloc(w->nin, sizeof *t->blocked) : NULL;
    t->deferred = w->nin ? sl_calloc(w->nin, sizeof *t->deferred) : NULL;
    if (t->ops == NULL || t->outputs == NULL ||
        (w->nin && (t->in_channels == NULL || t->readers == NULL || t->blocked == NULL || t->deferred == NULL)))
        return SL_ENOMEM;
    t->nin = w->nin;
    for (uint32_t i = 0; i < w->nin; i++) {
        t->in_channels[i] = w->in_channels[i];
        t->nin_per_input[w->in_channels[i]->input]++;
    }
    if ((rc = create_state(t)) != 0 || (rc = sl_task_restore_state(t)) != 0)
        return rc;
    for (uint32_t i = 0; i < t->nops; i++)
        if ((rc = create_operator(t, i)) != 0)
            return rc;
    if ((rc = wire_chain(t)) != 0)
        return rc;
    return create_writers(t, w, nm);
}

/* ---- Running ---- */

static int fail_with(sl_task_t *t, int rc, const char *what) {
    if (t->error[0] == '\0')
        snprintf(t->error, sizeof t->error, "%s: %s", what, sl_strerror(rc));
    return rc;
}

static void publish_progress(sl_task_t *t) {
    sl_operator_t *head = t->ops[0];
    uint64_t out = 0, bp = 0;
    for (uint32_t i = 0; i < t->nwriters; i++) {
        out += t->writers[i].writer.records_out;
        bp += t->writers[i].writer.backpressured_ms;
    }
    uint64_t in = head->vt->source_poll ? (head->out ? head->out->records_out : 0) : head->records_in;
    atomic_store_explicit(&t->records_in, in, memory_order_relaxed);
    atomic_store_explicit(&t->records_out, out, memory_order_relaxed);
    atomic_store_explicit(&t->backpressured_ms, bp, memory_order_relaxed);
}

static int flush_writers(sl_task_t *t) {
    for (uint32_t i = 0; i < t->nwriters; i++) {
        int rc = sl_record_writer_flush(&t->writers[i].writer);
        if (rc)
            return rc;
    }
    return 0;
}

static int deliver_watermark(sl_task_t *t, int64_t wm) {
    sl_operator_t *head = t->ops[0];
    head->current_watermark = wm;
    int rc = head->vt->watermark ? head->vt->watermark(head, wm) : sl_operator_default_watermark(head, wm);
    if (rc == 0 && head->out)
        rc = sl_output_flush(head->out);
    return rc;
}

/* Periodic work: watermark ticks, processing-time timers, buffer-timeout flushes. */
typedef struct {
    int64_t next_tick;
    int64_t next_flush;
} schedule_t;

/* Operators with work from other threads or due now (async I/O), then their output. */
static int run_services(sl_task_t *t, int64_t now) {
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < t->nops; i++) {
        sl_operator_t *op = t->ops[i];
        if (op->vt->service == NULL)
            continue;
        bool asked = atomic_exchange_explicit(&op->service_requested, false, memory_order_acquire);
        if (asked || now >= op->service_at) {
            rc = op->vt->service(op, now);
            if (rc == 0 && op->out)
                rc = sl_output_flush(op->out);
        }
    }
    return rc;
}

static int periodic(sl_task_t *t, schedule_t *s, int64_t now) {
    int rc = run_services(t, now);
    if (now >= s->next_tick) {
        int64_t wall = sl_wall_ms();
        for (uint32_t i = 0; rc == 0 && i < t->nops; i++) {
            sl_operator_t *op = t->ops[i];
            if (op->vt->tick)
                rc = op->vt->tick(op, wall);
            if (rc == 0 && op->out)
                rc = sl_output_flush(op->out);
        }
        s->next_tick = now + t->watermark_interval_ms;
        publish_progress(t);
    }
    if (rc == 0 && sl_timer_next(t->timers, SL_TIMER_PROC) <= sl_wall_ms()) {
        int64_t wall = sl_wall_ms();
        for (uint32_t i = 0; rc == 0 && i < t->nops; i++)
            rc = sl_operator_fire_proc_timers(t->ops[i], wall);
    }
    if (rc == 0 && t->buffer_timeout_ms > 0 && now >= s->next_flush) {
        rc = flush_writers(t);
        s->next_flush = now + t->buffer_timeout_ms;
    }
    return rc;
}

static int64_t next_deadline(sl_task_t *t, const schedule_t *s) {
    int64_t d = s->next_tick;
    for (uint32_t i = 0; i < t->nops; i++) {
        const sl_operator_t *op = t->ops[i];
        if (op->vt->service == NULL)
            continue;
        if (atomic_load_explicit(&op->service_requested, memory_order_relaxed))
            return 0; /* its signal was consumed by an operator waiting inside a callback */
        if (op->service_at < d)
            d = op->service_at;
    }
    if (t->buffer_timeout_ms > 0 && s->next_flush < d)
        d = s->next_flush;
    int64_t p = sl_timer_next(t->timers, SL_TIMER_PROC);
    if (p != INT64_MAX) {
        int64_t in_mono = sl_monotonic_ms() + (p - sl_wall_ms());
        if (in_mono < d)
            d = in_mono;
    }
    return d;
}

static int run_mails(sl_task_t *t) {
    sl_mail_t m;
    while (sl_mailbox_take_mail(&t->mailbox, &m)) {
        m.fn(m.arg);
        if (t->error_code) /* a mail (a checkpoint) failed */
            return t->error_code;
    }
    return sl_mailbox_is_cancelled(&t->mailbox) ? SL_ECANCELED : 0;
}

static int process_buffer(sl_task_t *t, sl_channel_t *ch, sl_buffer_t *buf) {
    sl_record_reader_t *r = &t->readers[ch->index];
    sl_batch_t *b = &t->in_batch;
    uint32_t pos = 0;
    int rc = 0;
    for (;;) {
        sl_row_t row;
        int64_t ts;
        int got = sl_record_reader_next(r, buf, &pos, &row, &ts);
        if (got < 0) {
            snprintf(t->error, sizeof t->error, "malformed network buffer on input channel %u", ch->index);
            rc = got;
            break;
        }
        if (got == 0)
            break;
        b->rows[b->n] = row;
        b->ts[b->n] = ts;
        b->n++;
        /* A record reassembled across buffers lives in the reader's span storage, which the
         * next spanning record reuses: process the batch before reading on. */
        bool spanned = r->span && row.data == r->span + SL_RECORD_HEADER;
        if (b->n == SL_BATCH_CAPACITY || spanned) {
            rc = sl_operator_run_batch(t->ops[0], ch->input, b);
            sl_batch_clear(b);
            if (rc)
                break;
        }
    }
    if (rc == 0 && b->n)
        rc = sl_operator_run_batch(t->ops[0], ch->input, b);
    sl_batch_clear(b);
    sl_channel_release(ch, buf);
    return rc;
}

static int update_watermark(sl_task_t *t) {
    int64_t min = INT64_MAX;
    bool any_active = false, all_ended = true;
    for (uint32_t i = 0; i < t->nin; i++) {
        sl_channel_t *c = t->in_channels[i];
        if (c->ended)
            continue;
        all_ended = false;
        if (c->idle)
            continue;
        any_active = true;
        if (c->watermark < min)
            min = c->watermark;
    }
    if (all_ended)
        min = SL_WATERMARK_MAX;
    else if (!any_active)
        return 0;
    if (min > t->combined_watermark) {
        t->combined_watermark = min;
        return deliver_watermark(t, min);
    }
    return 0;
}

static int handle_entry(sl_task_t *t, sl_channel_t *ch, const sl_channel_entry_t *e) {
    switch (e->kind) {
    case SL_CH_BUFFER:
        ch->idle = false;
        return process_buffer(t, ch, e->buf);
    case SL_CH_WATERMARK:
        ch->idle = false;
        if (e->value > ch->watermark)
            ch->watermark = e->value;
        return update_watermark(t);
    case SL_CH_IDLE:
        ch->idle = true;
        return update_watermark(t);
    case SL_CH_END: {
        const char *failure = sl_channel_failure(ch);
        if (failure) { /* a remote producer was lost: this input did not really end */
            snprintf(t->error, sizeof t->error, "input channel %u: %.900s", ch->index, failure);
            return SL_EIO;
        }
        ch->ended = true;
        int rc = 0;
        if (++t->ended_per_input[ch->input] == t->nin_per_input[ch->input] && t->ops[0]->vt->end_input) {
            rc = t->ops[0]->vt->end_input(t->ops[0], ch->input);
            if (rc == 0 && t->ops[0]->out)
                rc = sl_output_flush(t->ops[0]->out);
        }
        if (rc == 0)
            rc = sl_task_on_channel_end(t);
        return rc ? rc : update_watermark(t);
    }
    case SL_CH_BARRIER:
        return sl_task_on_barrier(t, ch, (uint64_t)e->value);
    }
    return SL_EPROTO;
}

/* End of all input: final watermark, then finish each operator head to tail, then end the
 * partitions. */
static int finish_chain(sl_task_t *t) {
    int rc = 0;
    if (t->combined_watermark != SL_WATERMARK_MAX) {
        t->combined_watermark = SL_WATERMARK_MAX;
        rc = deliver_watermark(t, SL_WATERMARK_MAX);
    }
    for (uint32_t i = 0; rc == 0 && i < t->nops; i++) {
        sl_operator_t *op = t->ops[i];
        if (op->vt->finish)
            rc = op->vt->finish(op);
        if (rc == 0 && op->out)
            rc = sl_output_flush(op->out);
    }
    for (uint32_t i = 0; rc == 0 && i < t->nwriters; i++)
        rc = sl_record_writer_event(&t->writers[i].writer, SL_CH_END, 0);
    return rc;
}

static int run_source(sl_task_t *t, schedule_t *s) {
    sl_operator_t *head = t->ops[0];
    for (;;) {
        int rc = run_mails(t);
        if (rc)
            return rc;
        int64_t now = sl_monotonic_ms();
        if ((rc = periodic(t, s, now)) != 0)
            return rc;
        uint64_t before = head->out ? head->out->records_out : 0;
        bool end = false;
        rc = head->vt->source_poll(head, SOURCE_BUDGET, &end);
        if (rc == 0 && head->out)
            rc = sl_output_flush(head->out);
        if (rc)
            return rc;
        if (end)
            return 0;
        if ((head->out ? head->out->records_out : 0) == before) {
            /* Nothing ready: sleep until the next deadline or 1 ms, whichever is first. */
            int64_t d = next_deadline(t, s);
            int64_t soon = sl_monotonic_ms() + 1;
            void *unused;
            sl_mailbox_wait_ready(&t->mailbox, d < soon ? d : soon, &unused);
        }
    }
}

static int run_consumer(sl_task_t *t, schedule_t *s) {
    uint32_t ended = 0;
    for (;;) {
        int rc = run_mails(t);
        if (rc)
            return rc;
        ended = t->ended_per_input[0] + t->ended_per_input[1];
        if (ended == t->nin)
            return 0;
        void *ready = NULL;
        if (sl_mailbox_wait_ready(&t->mailbox, next_deadline(t, s), &ready) == 1) {
            sl_channel_t *ch = ready;
            if (sl_task_hold_channel(t, ch))
                continue; /* aligning a checkpoint: this input waits */
            sl_channel_entry_t e;
            if (sl_channel_poll(ch, &e) == 1 && (rc = handle_entry(t, ch, &e)) != 0)
                return rc;
        }
        if ((rc = periodic(t, s, sl_monotonic_ms())) != 0)
            return rc;
    }
}

static int open_chain(sl_task_t *t) {
    /* Tail first, as Flink does: an operator is open before anything can emit into it. */
    for (uint32_t i = t->nops; i-- > 0;) {
        sl_operator_t *op = t->ops[i];
        if (op->vt->open) {
            int rc = op->vt->open(op);
            if (rc)
                return fail_with(t, rc, op->name);
        }
    }
    return sl_task_restore_operators(t);
}

/* A subtask restored as finished (it had finished when the checkpoint was taken): its
 * operators are never opened, run or finished (a restored file sink finishing with empty state
 * would replace its final output). Its producers finished as well (a task ends only after all
 * its inputs ended), so its inputs carry nothing but their END (watermarks or records would
 * mean an inconsistent checkpoint: records fail it), which it waits for so that every channel
 * is drained as after a normal end; then it ends its own partitions. Mails (checkpoint
 * triggers) are left unrun: sl_task_destroy frees them. */
static int run_finished(sl_task_t *t) {
    uint32_t ended = 0;
    while (ended < t->nin) {
        if (sl_mailbox_is_cancelled(&t->mailbox))
            return SL_ECANCELED;
        void *ready = NULL;
        if (sl_mailbox_wait_ready(&t->mailbox, sl_monotonic_ms() + 100, &ready) != 1)
            continue;
        sl_channel_t *ch = ready;
        sl_channel_entry_t e;
        if (sl_channel_poll(ch, &e) != 1)
            continue;
        if (e.kind == SL_CH_BUFFER) {
            /* Its producer was restored running: the checkpoint's finished subtasks are not
             * closed upstream, and these records would be lost. */
            sl_channel_release(ch, e.buf);
            snprintf(t->error, sizeof t->error, "input channel %u delivered records to a subtask restored as "
                     "finished from checkpoint %llu: its producers did not finish in it", ch->index,
                     (unsigned long long)t->restore->checkpoint_id);
            return SL_EJOB;
        } else if (e.kind == SL_CH_END && !ch->ended) {
            const char *failure = sl_channel_failure(ch);
            if (failure) {
                snprintf(t->error, sizeof t->error, "input channel %u: %.900s", ch->index, failure);
                return SL_EIO;
            }
            ch->ended = true;
            ended++;
        }
    }
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < t->nwriters; i++)
        rc = sl_record_writer_event(&t->writers[i].writer, SL_CH_END, 0);
    return rc;
}

static void *task_main(void *arg) {
    sl_task_t *t = arg;
    schedule_t s = {.next_tick = sl_monotonic_ms() + t->watermark_interval_ms,
                    .next_flush = sl_monotonic_ms() + t->buffer_timeout_ms};
    int rc;
    if (t->restore && t->restore->finished) {
        SL_INFO("%s (%u/%u) had finished in checkpoint %llu: deployed finished", t->vertex->name, t->index + 1,
                t->vertex->parallelism, (unsigned long long)t->restore->checkpoint_id);
        rc = run_finished(t);
    } else {
        rc = open_chain(t);
        if (rc == 0)
            rc = t->ops[0]->vt->source_poll ? run_source(t, &s) : run_consumer(t, &s);
        if (rc == 0)
            rc = finish_chain(t);
    }
    publish_progress(t);
    sl_task_incremental_wait(t); /* its acknowledgement goes out before the task ends */
    sl_task_async_snapshot_wait(t); /* the same for a heap snapshot being written */
    /* close runs for every operator, opened or not (a failed open leaves later ones zeroed). */
    for (uint32_t i = 0; i < t->nops; i++)
        if (t->ops[i]->vt->close)
            t->ops[i]->vt->close(t->ops[i]);
    t->error_code = rc;
    if (rc == SL_ECANCELED && sl_mailbox_is_cancelled(&t->mailbox)) {
        atomic_store(&t->state_code, SL_TASK_CANCELED);
    } else if (rc) {
        fail_with(t, rc, t->vertex->name);
        atomic_store(&t->state_code, SL_TASK_FAILED);
    } else {
        atomic_store(&t->state_code, SL_TASK_FINISHED);
    }
    if (t->on_done)
        t->on_done(t->on_done_arg, t);
    return NULL;
}

int sl_task_start(sl_task_t *t) {
    atomic_store(&t->state_code, SL_TASK_RUNNING);
    if (pthread_create(&t->thread, NULL, task_main, t) != 0) {
        atomic_store(&t->state_code, SL_TASK_FAILED);
        return SL_ENOMEM;
    }
    t->started = true;
    return 0;
}

void sl_task_cancel(sl_task_t *t) { sl_mailbox_cancel(&t->mailbox); }

void sl_task_join(sl_task_t *t) {
    if (t->started) {
        pthread_join(t->thread, NULL);
        t->started = false;
    }
}

void sl_task_destroy(sl_task_t *t) {
    sl_task_incremental_free(t);
    for (uint32_t i = 0; t->ops && i < t->nops; i++) {
        if (t->ops[i]) {
            sl_key_buf_destroy(&t->ops[i]->key_buf);
            sl_free(t->ops[i]);
        }
        if (t->outputs)
            sl_output_destroy(&t->outputs[i]);
    }
    for (uint32_t i = 0; i < t->nwriters; i++) {
        sl_record_writer_destroy(&t->writers[i].writer);
        sl_key_buf_destroy(&t->writers[i].key_buf);
    }
    for (uint32_t i = 0; i < t->nin; i++)
        sl_record_reader_destroy(&t->readers[i]);
    sl_free(t->writers);
    sl_free(t->readers);
    sl_free(t->in_channels);
    sl_free(t->blocked);
    sl_free(t->deferred);
    sl_free(t->ops);
    sl_free(t->outputs);
    sl_batch_destroy(&t->in_batch);
    sl_keyed_backend_destroy(t->state);
    if (t->timers)
        sl_timer_service_destroy(t->timers);
    sl_task_drop_checkpoint_mails(t);
    sl_mailbox_destroy(&t->mailbox);
}
