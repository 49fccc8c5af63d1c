/* The driver thread of a ResourceManager (see driver_thread.h): two FIFO lists under one
 * mutex, a condition variable the thread sleeps on, and the driver calls themselves. */
#include "resourcemanager/driver_thread.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/assert.h"

typedef struct {
    sl_rm_op_t *head, *tail;
} op_list_t;

struct sl_rm_driver_thread_s {
    sl_rm_driver_t *driver; /* used by `thread` alone until it is joined */
    pthread_t thread;
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;      /* signalled when `queue` grows or `cancelled` is set */
    op_list_t queue;
    op_list_t done;
    bool cancelled;
};

static void list_push(op_list_t *l, sl_rm_op_t *op) {
    op->_next = NULL;
    if (l->tail)
        l->tail->_next = op;
    else
        l->head = op;
    l->tail = op;
}

static sl_rm_op_t *list_pop(op_list_t *l) {
    sl_rm_op_t *op = l->head;
    if (op) {
        l->head = op->_next;
        if (l->head == NULL)
            l->tail = NULL;
        op->_next = NULL;
    }
    return op;
}

static void list_free(op_list_t *l) {
    sl_rm_op_t *op;
    while ((op = list_pop(l)) != NULL)
        sl_rm_op_free(op);
}

/* ---- Operations ---- */

static int op_new(sl_rm_op_kind_t kind, const char *tag, sl_rm_op_t **out) {
    sl_rm_op_t *op = sl_calloc(1, sizeof *op);
    if (op == NULL)
        return SL_ENOMEM;
    op->kind = kind;
    snprintf(op->tag, sizeof op->tag, "%s", tag ? tag : "");
    *out = op;
    return 0;
}

int sl_rm_op_start(const char *tag, const sl_rm_profile_t *profile, const char *const *argv,
                   const char *const *env, sl_rm_op_t **out) {
    sl_rm_op_t *op;
    int rc = op_new(SL_RM_OP_START, tag, &op);
    if (rc)
        return rc;
    size_t n = 0;
    while (argv && argv[n])
        n++;
    op->argv = sl_calloc(n + 1, sizeof *op->argv);
    for (size_t i = 0; op->argv && i < n; i++)
        if ((op->argv[i] = sl_strdup(argv[i])) == NULL) {
            rc = SL_ENOMEM;
            break;
        }
    if (op->argv == NULL || rc) {
        sl_rm_op_free(op);
        return SL_ENOMEM;
    }
    op->profile = *profile;
    op->env = env;
    *out = op;
    return 0;
}

int sl_rm_op_stop(const char *tag, const char *worker, sl_rm_op_t **out) {
    int rc = op_new(SL_RM_OP_STOP, tag, out);
    if (rc == 0)
        snprintf((*out)->worker, sizeof (*out)->worker, "%s", worker);
    return rc;
}

int sl_rm_op_poll(sl_rm_op_t **out) { return op_new(SL_RM_OP_POLL, "poll", out); }

void sl_rm_op_free(sl_rm_op_t *op) {
    if (op == NULL)
        return;
    for (size_t i = 0; op->argv && op->argv[i]; i++)
        sl_free(op->argv[i]);
    sl_free(op->argv);
    sl_free(op->ended);
    sl_free(op);
}

/* ---- The thread ---- */

static void on_ended(void *arg, const sl_rm_worker_t *w, const char *reason) {
    sl_rm_op_t *op = arg;
    SL_ASSERT(op->nended < op->_cap);
    sl_rm_ended_t *e = &op->ended[op->nended++];
    snprintf(e->id, sizeof e->id, "%s", w->id);
    e->state = w->state;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
}

static void run(sl_rm_driver_t *d, sl_rm_op_t *op) {
    switch (op->kind) {
    case SL_RM_OP_START:
        op->status = sl_rm_driver_start_worker(d, &op->profile, (const char *const *)op->argv, op->env, op->worker,
                                               sizeof op->worker, op->err, sizeof op->err);
        break;
    case SL_RM_OP_STOP:
        op->status = sl_rm_driver_stop_worker(d, op->worker, op->err, sizeof op->err);
        break;
    case SL_RM_OP_POLL: {
        /* Room for every worker before asking: a worker poll reports is gone from the driver,
         * so a report that found no room would be lost for good. */
        const sl_rm_worker_t *ws;
        size_t n = sl_rm_driver_list(d, &ws);
        if (n && (op->ended = sl_calloc(n, sizeof *op->ended)) == NULL) {
            op->status = SL_ENOMEM;
            snprintf(op->err, sizeof op->err, "%s: out of memory", sl_rm_driver_kind(d));
            break;
        }
        op->_cap = n;
        op->status = sl_rm_driver_poll(d, on_ended, op, op->err, sizeof op->err);
        break;
    }
    }
}

static void *thread_main(void *arg) {
    sl_rm_driver_thread_t *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->cancelled && t->queue.head == NULL)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->cancelled)
            break;
        sl_rm_op_t *op = list_pop(&t->queue);
        /* The driver call runs outside the lock: submitting and collecting never wait for
         * a Slurm command. */
        pthread_mutex_unlock(&t->mu);
        run(t->driver, op);
        pthread_mutex_lock(&t->mu);
        list_push(&t->done, op);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int sl_rm_driver_thread_create(sl_rm_driver_t *d, sl_rm_driver_thread_t **out) {
    sl_rm_driver_thread_t *t = sl_calloc(1, sizeof *t);
    if (t == NULL)
        return SL_ENOMEM;
    t->driver = d;
    int rc = pthread_mutex_init(&t->mu, NULL);
    if (rc) {
        sl_free(t);
        return -rc;
    }
    if ((rc = pthread_cond_init(&t->cv, NULL)) != 0) {
        pthread_mutex_destroy(&t->mu);
        sl_free(t);
        return -rc;
    }
    if ((rc = pthread_create(&t->thread, NULL, thread_main, t)) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        sl_free(t);
        return -rc;
    }
    *out = t;
    return 0;
}

int sl_rm_driver_thread_submit(sl_rm_driver_thread_t *t, sl_rm_op_t *op) {
    pthread_mutex_lock(&t->mu);
    int rc = t->cancelled ? SL_ECANCELED : 0;
    if (rc == 0)
        list_push(&t->queue, op);
    pthread_mutex_unlock(&t->mu);
    if (rc == 0)
        pthread_cond_signal(&t->cv);
    return rc;
}

sl_rm_op_t *sl_rm_driver_thread_take_done(sl_rm_driver_thread_t *t) {
    pthread_mutex_lock(&t->mu);
    sl_rm_op_t *op = list_pop(&t->done);
    pthread_mutex_unlock(&t->mu);
    return op;
}

void sl_rm_driver_thread_cancel(sl_rm_driver_thread_t *t) {
    op_list_t dropped;
    pthread_mutex_lock(&t->mu);
    t->cancelled = true;
    dropped = t->queue;
    t->queue.head = t->queue.tail = NULL;
    pthread_mutex_unlock(&t->mu);
    pthread_cond_signal(&t->cv);
    list_free(&dropped);
}

void sl_rm_driver_thread_destroy(sl_rm_driver_thread_t *t) {
    if (t == NULL)
        return;
    sl_rm_driver_thread_cancel(t);
    int rc = pthread_join(t->thread, NULL);
    SL_ASSERT(rc == 0); /* only a programming error (joined twice, from itself) can fail it */
    list_free(&t->done);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    sl_free(t);
}
