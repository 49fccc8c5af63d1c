/* Fuzz target: sl_schema_parse on the input as a NUL-terminated string.
 * On success the schema must format (sl_schema_format) and re-parse to the same fields. */
#include <sluice/error.h>
#include <sluice/row.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_schema_parse: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *spec = malloc(size + 1);
    if (spec == NULL)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';

    char err[256];
    sl_schema_t *s = NULL;
    int rc = sl_schema_parse(spec, &s, err, sizeof err);
    if (rc != 0) {
        CHECK(rc == SL_EPARSE || rc == SL_ENOMEM);
        CHECK(memchr(err, '\0', sizeof err) != NULL);
        free(spec);
        return 0;
    }
    uint32_t n = sl_schema_nfields(s);
    CHECK(n >= 1 && n <= SL_ROW_MAX_FIELDS);
    for (uint32_t i = 0; i < n; i++) {
        const sl_field_t *f = sl_schema_field(s, i);
        CHECK(f != NULL && f->name != NULL && f->name[0] != '\0');
        CHECK((unsigned)f->type <= SL_TYPE_BYTES);
        CHECK(sl_schema_index(s, f->name) == (int)i);
    }
    CHECK(sl_schema_field(s, n) == NULL);

    /* Round trip: format, parse again, same fields. */
    size_t cap = (size_t)n * 80 + 1;
    char *text = malloc(cap);
    CHECK(text != NULL);
    CHECK(sl_schema_format(s, text, cap) == 0);
    sl_schema_t *s2 = NULL;
    rc = sl_schema_parse(text, &s2, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "re-parse of '%s' failed: %s\n", text, err);
    CHECK(rc == 0);
    CHECK(sl_schema_nfields(s2) == n);
    for (uint32_t i = 0; i < n; i++) {
        const sl_field_t *a = sl_schema_field(s, i), *b = sl_schema_field(s2, i);
        CHECK(strcmp(a->name, b->name) == 0 && a->type == b->type && a->nullable == b->nullable);
    }
    /* A too-small buffer must be refused, not overrun (ASan checks the heap buffer). */
    size_t small = strlen(text);
    char *tiny = malloc(small ? small : 1);
    CHECK(sl_schema_format(s, tiny, small ? small : 1) == SL_ERANGE);
    free(tiny);

    sl_schema_t *r = sl_schema_ref(s);
    CHECK(r == s);
    sl_schema_destroy(r);
    sl_schema_destroy(s2);
    sl_schema_destroy(s);
    free(text);
    free(spec);
    return 0;
}
