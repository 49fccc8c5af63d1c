/* The REST server's parts: the server (rest_server.c) parses requests and routes them to the
 * handlers of rest_jobs.c and rest_jars.c, which answer with a status and a JSON document. */
#ifndef SL_REST_REST_INTERNAL_H
#define SL_REST_REST_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmaster/dispatcher.h"
#include "rest/rest.h"

struct MHD_Daemon;
typedef struct sl_rest_trigger_s sl_rest_trigger_t;
struct MHD_Connection;
struct MHD_Response;

struct sl_rest_s {
    struct MHD_Daemon *mhd;
    sl_jobmanager_t *jm;
    sl_dispatcher_t *dispatcher;
    int port;
    bool submit_enabled, cancel_enabled;
    char upload_dir[4096];
    bool own_upload_dir;       /* created here, removed at stop */
    pthread_mutex_t run_mu;    /* one jar run at a time: user code runs in this process */
    char savepoints_dir[1024]; /* state.savepoints.dir: where savepoints go when not told */
    sl_rest_trigger_t *triggers; /* savepoint requests, newest first (rest_savepoints.c) */
    bool tls, client_auth;     /* security.ssl.rest.* (rest_tls.c) */
    char *tls_cert, *tls_key, *tls_trust; /* PEM text; libmicrohttpd reads it while it runs */
    char *start_err;           /* while starting: where libmicrohttpd's complaint goes */
    size_t start_errlen;
};

#define SL_REST_MAX_JSON_BODY (1u << 20)

/* A request as the handlers see it. */
typedef struct sl_rest_req_s {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;          /* without the /v1 prefix and the query */
    const uint8_t *body;       /* the whole body (JSON requests), or NULL */
    size_t body_len;
    const char *upload_path;   /* a jar upload: the file it was written to, or NULL */
    const char *upload_name;   /* ... and its name as the client gave it */
} sl_rest_req_t;

/* What a handler answers: an HTTP status and a document (ownership passes to the server). */
typedef struct sl_rest_reply_s {
    unsigned status;
    json_t *body;
} sl_rest_reply_t;

/* Fills an error reply {"errors": [message]}. */
void sl_rest_error(sl_rest_reply_t *out, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Route handlers: true when the path is theirs (out filled). */
bool sl_rest_jobs_route(sl_rest_t *r, const sl_rest_req_t *q, sl_rest_reply_t *out);
bool sl_rest_jars_route(sl_rest_t *r, const sl_rest_req_t *q, sl_rest_reply_t *out);
/* The web monitor's page (rest_web.c) at GET / and /index.html: true with *out set (NULL when
 * out of memory). */
bool sl_rest_web_route(const sl_rest_req_t *q, struct MHD_Response **out, unsigned *status);
/* /jobs/:id/savepoints..., /jobs/:id/stop: `sub` is what follows the job's id. */
bool sl_rest_savepoints_route(sl_rest_t *r, const sl_rest_req_t *q, const char *job, const char *sub,
                              sl_rest_reply_t *out);
/* Forgets the savepoint requests (ones still running complete into their own records). */
void sl_rest_savepoints_cleanup(sl_rest_t *r);

/* Jar storage (rest_jars.c): the upload directory, made private when created here. */
int sl_rest_jars_init(sl_rest_t *r, const struct sl_config_s *config, char *err, size_t errlen);
void sl_rest_jars_cleanup(sl_rest_t *r);
/* Where an upload is written before it is accepted: a new private file in the upload
 * directory; *fd is open for writing. */
int sl_rest_jars_stage(sl_rest_t *r, char *path, size_t pathlen, int *fd);

/* HTTPS (rest_tls.c): reads the PEM files of security.ssl.rest.* when it is enabled (errors
 * name the option and file); a request over it with authentication-enabled must carry a
 * client certificate that verifies, else why says what is wrong. */
int sl_rest_tls_load(sl_rest_t *r, const struct sl_config_s *c, char *err, size_t errlen);
void sl_rest_tls_free(sl_rest_t *r);
bool sl_rest_tls_client_ok(struct MHD_Connection *c, char *why, size_t whylen);

/* The limit on an uploaded job library, the one a job can ship (SL_LIBRARY_MAX_BYTES). */
size_t sl_rest_max_upload(void);

#endif
