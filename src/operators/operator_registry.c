/* Operator kinds: the names a JobGraph uses, mapped to their implementations.
 * References are weak so a kind whose implementation is not linked in reports "unknown
 * operator kind" instead of failing the link. */
#include <string.h>

#include "operators/operator.h"

#define SL__OPS(XX)                                                                          \
    XX(map) XX(filter) XX(flat_map) XX(project) XX(watermarks)                               \
    XX(aggregate) XX(reduce) XX(process) XX(co_process)                                      \
    XX(window_aggregate) XX(window_join) XX(interval_join) XX(async)                                   \
    XX(source_csv) XX(source_lines) XX(source_socket) XX(source_generator) XX(source_nexmark) \
    XX(sink_print) XX(sink_csv) XX(sink_discard) XX(sink_fn)

#define XX(k) extern const sl_operator_vtable_t sl_op_##k __attribute__((weak));
SL__OPS(XX)
#undef XX

static const struct {
    const char *kind;
    const sl_operator_vtable_t *vt;
} registry[] = {
#define XX(k) {#k, &sl_op_##k},
    SL__OPS(XX)
#undef XX
};

const sl_operator_vtable_t *sl_operator_lookup(const char *kind) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i].kind, kind) == 0)
            return registry[i].vt; /* NULL when not linked */
    return NULL;
}
