/* Fuzz target: a checkpoint's _metadata (JSON + checksum trailer), read at restore from a
 * directory another process wrote. Any input gives 0 or an error with a message naming the
 * file, never a crash. Inputs get a valid trailer half of the time, so the JSON parser and the
 * field validation are reached, not only the checksum check. */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checksum.h"
#include "checkpoint/metadata.h"

#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "fuzz_ckpt_metadata: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[] = "/tmp/sl_fuzz_metadata_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    FILE *f = fdopen(fd, "w");
    fwrite(data, 1, size, f);
    if (size && (data[0] & 1)) /* seal the input as a well-formed body */
        fprintf(f, "%scrc32c %08x\n", size && data[size - 1] == '\n' ? "" : "\n",
                sl_crc32c(0, data, size) ^ 0u);
    fclose(f);
    sl_ckpt_metadata_t md;
    char err[1024] = "";
    int rc = sl_ckpt_metadata_read(path, &md, err, sizeof err);
    if (rc == 0) {
        CHECK(md.job_id != NULL);
        for (uint32_t i = 0; i < md.n_operators; i++)
            CHECK(md.operators[i].kg_first <= md.operators[i].kg_last);
        sl_ckpt_metadata_free(&md);
    } else {
        CHECK(err[0] != '\0');
    }
    unlink(path);
    return 0;
}
