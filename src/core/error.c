/* Error code names and messages, generated from SL_ERRNO_MAP so the table is the only truth. */
#include <sluice/error.h>
#include <string.h>

const char *sl_strerror(int err) {
    switch (err) {
#define XX(name, value, msg) \
    case SL_##name:          \
        return msg;
        SL_ERRNO_MAP(XX)
#undef XX
    default:
        break;
    }
    if (err < 0 && err > -4000)
        return strerror(-err);
    return "unknown error";
}

const char *sl_err_name(int err) {
    switch (err) {
#define XX(name, value, msg) \
    case SL_##name:          \
        return "SL_" #name;
        SL_ERRNO_MAP(XX)
#undef XX
    default:
        return "SL_EUNKNOWN";
    }
}
