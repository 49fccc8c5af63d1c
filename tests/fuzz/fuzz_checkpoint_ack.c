/* Fuzz target: a TaskManager's AcknowledgeCheckpoint as the JobMaster decodes it
 * (src/minicluster/ack_codec.h). Whatever the bytes: an error, or an ack whose file names are
 * single path components and whose saved values fit, which converts back to a message with
 * the same content. */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "minicluster/ack_codec.h"
#include "rpc/message.h"

#define CHECK(c)                                                                        \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "fuzz_checkpoint_ack: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Sluice__Rpc__AcknowledgeCheckpoint *m = sluice__rpc__acknowledge_checkpoint__unpack(NULL, size, data);
    if (m == NULL)
        return 0;
    sl_task_ack_t *ack = NULL;
    char err[256] = "";
    int rc = sl_ack_from_msg(m, &ack, err, sizeof err);
    if (rc) {
        CHECK((rc == SL_EPARSE && err[0]) || rc == SL_ENOMEM);
        CHECK(ack == NULL);
    } else {
        CHECK(ack->nhandles == m->n_handles && ack->nops == m->n_extras);
        for (uint32_t i = 0; i < ack->nhandles; i++) {
            CHECK(ack->handles[i].name[0] != '\0' && strchr(ack->handles[i].name, '/') == NULL);
            CHECK(strcmp(ack->handles[i].name, "..") != 0 && strcmp(ack->handles[i].name, ".") != 0);
        }
        CHECK((ack->status != 0) == (m->decline != NULL));
        Sluice__Rpc__AcknowledgeCheckpoint back;
        sl_ack_msg_scratch_t sc;
        CHECK(sl_ack_to_msg(ack, m->job_id, m->attempt, &back, &sc) == 0);
        CHECK(back.n_handles == m->n_handles && back.checkpoint_id == m->checkpoint_id);
        for (size_t i = 0; i < back.n_handles; i++)
            CHECK(strcmp(back.handles[i]->name, m->handles[i]->name) == 0 && back.handles[i]->size == m->handles[i]->size);
        for (size_t i = 0; i < back.n_extras; i++)
            CHECK(back.extras[i]->n_entries == m->extras[i]->n_entries);
        sl_ack_msg_scratch_free(&sc);
        sl_task_ack_free(ack);
    }
    sluice__rpc__acknowledge_checkpoint__free_unpacked(m, NULL);
    return 0;
}
