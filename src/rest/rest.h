/* The JobManager's REST API (Flink's paths where they fit, under /v1 or without it): cluster
 * overview, jobs (list, status, cancel) and job libraries ("jars": upload, list, delete, run).
 * Served by libmicrohttpd on rest.bind-address:rest.port, one thread per connection, JSON
 * replies, errors as {"errors": ["..."]} with a 4xx/5xx status.
 *
 * SECURITY
 * A jar run executes the library's sluice_job_main inside the JobManager (as Flink's jar run
 * handler does) and there is no authentication on this port: it binds to 127.0.0.1 by default,
 * web.submit.enable=false turns uploads and runs off, web.cancel.enable=false cancellation. */
#ifndef SL_REST_REST_H
#define SL_REST_REST_H

#include <stddef.h>

#include "jobmaster/jobmanager.h"

struct sl_config_s;
typedef struct sl_rest_s sl_rest_t;

/* Starts serving; the JobManager must outlive the server. Errors name the address or the
 * upload directory in err. */
int sl_rest_start(const struct sl_config_s *config, sl_jobmanager_t *jm, sl_rest_t **out, char *err, size_t errlen);
/* The port it listens on (rest.port, or the one chosen when that is 0). */
int sl_rest_port(const sl_rest_t *r);
/* "https" with security.ssl.rest.enabled, else "http". */
const char *sl_rest_scheme(const sl_rest_t *r);
/* Stops serving (requests in progress finish) and removes the upload directory it created. */
void sl_rest_stop(sl_rest_t *r);

#endif
