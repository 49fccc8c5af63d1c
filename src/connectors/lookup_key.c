/* Lookup keys from row fields (see lookup_key.h). */
#include "connectors/lookup_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t sl_lookup_field_text(const sl_row_t *in, uint32_t i, sl_type_t t, char num[40], const char **out) {
    uint32_t len;
    switch (t) {
    case SL_TYPE_STRING:
    case SL_TYPE_BYTES:
        *out = sl_row_str(in, i, &len);
        return len;
    case SL_TYPE_BOOL:
        *out = sl_row_bool(in, i) ? "true" : "false";
        return strlen(*out);
    case SL_TYPE_DOUBLE: {
        double v = sl_row_f64(in, i);
        snprintf(num, 40, "%.15g", v);
        if (strtod(num, NULL) != v)
            snprintf(num, 40, "%.17g", v);
        break;
    }
    default:
        snprintf(num, 40, "%lld", (long long)sl_row_i64(in, i));
        break;
    }
    *out = num;
    return strlen(num);
}
