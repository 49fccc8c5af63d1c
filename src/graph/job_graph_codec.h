/* JobGraph codec: a finalized JobGraph to bytes and back, for the graph that the client and
 * the JobManager ship to every TaskManager (SubmitJob.job_graph, SubmitTask.job_graph).
 *
 * The bytes are a packed sluice.graph.JobGraph (job_graph.proto; layout and every check in
 * docs/job-graph.md). Operators travel as (kind, params) and user functions as symbol names,
 * resolved on the TaskManager after it has loaded the shipped job library. The decoder treats
 * its input as hostile: anything it accepts is a graph that passes sl_job_graph_validate(), and
 * anything else is refused with an error naming what and where. All functions are pure (no
 * shared state) and may be called from any thread. */
#ifndef SL_GRAPH_JOB_GRAPH_CODEC_H
#define SL_GRAPH_JOB_GRAPH_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "graph/job_graph.h"

#define SL_JOB_GRAPH_FORMAT_VERSION 1
/* Limits of what a decoder accepts. A real graph is a few KiB; the limits keep a malformed
 * message from costing more than a bounded amount of memory and time. */
#define SL_JOB_GRAPH_MAX_BYTES (8u << 20)
#define SL_JOB_GRAPH_MAX_NODES 65536u
#define SL_JOB_GRAPH_MAX_EDGES (4u * SL_JOB_GRAPH_MAX_NODES)
#define SL_JOB_GRAPH_MAX_PARAMS 1024u       /* per node */
#define SL_JOB_GRAPH_MAX_PARALLELISM 32768u /* pipeline.max-parallelism's upper bound */
#define SL_JOB_GRAPH_MAX_KEY_FIELDS 8u      /* sl_node_key_t.fields */

/* Packs the finalized graph `g` (borrowed) into *out, a buffer of *len bytes that the caller
 * owns and frees with sl_free().
 * Errors: SL_EJOB when `g` is not finalized or fails sl_job_graph_validate() (call it for the
 * message: what a decoder would refuse is never sent), SL_ERANGE when the encoding is larger
 * than SL_JOB_GRAPH_MAX_BYTES, SL_ENOMEM. On error *out and *len are untouched. */
int sl_job_graph_encode(const sl_job_graph_t *g, uint8_t **out, size_t *len);

/* Unpacks and validates `len` bytes into *g (caller's memory, overwritten). On success the
 * caller owns *g and frees it with sl_job_graph_destroy(); on error *g is left zeroed (destroy
 * is then a harmless no-op) and `err` (if not NULL) receives a message such as
 * "job graph: node 3 ('q5-count'): input schema 0: ...".
 * Errors: SL_EPARSE for anything malformed, SL_ENOMEM. */
int sl_job_graph_decode(const uint8_t *data, size_t len, sl_job_graph_t *g, char *err, size_t errlen);

/* The consistency checks decode applies to what it received, on any graph: ids and indices in
 * range, schemas present and matching along edges, keys within their input's schema, known
 * partitioners, parallelism within 1..max_parallelism, and vertices (chains) that agree with
 * the nodes' vertex and chain_index fields and with the chained edges. The graph must be
 * memory-consistent (every count matches its array). Errors: SL_EJOB with a message in `err`
 * (if not NULL) naming the node, edge or vertex, SL_ENOMEM. */
int sl_job_graph_validate(const sl_job_graph_t *g, char *err, size_t errlen);

#endif
