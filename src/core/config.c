/* Configuration (see config.h): values are kept as validated text plus a parsed integer. */
#include "core/config.h"

#include <sluice/error.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/assert.h"

typedef struct {
    char *text;    /* as given (NULL = default) */
    int64_t num;   /* parsed: int, bool (0/1), duration ms, memory bytes */
} value_t;

struct sl_config_s {
    size_t n;
    value_t *values; /* parallel to sl_options */
};

static size_t option_count(void) {
    size_t n = 0;
    while (sl_options[n].key)
        n++;
    return n;
}

static int find(const char *key) {
    for (int i = 0; sl_options[i].key; i++)
        if (strcmp(sl_options[i].key, key) == 0)
            return i;
    return -1;
}

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    if (errno || end == s || *end)
        return SL_EINVAL;
    *out = v;
    return 0;
}

/* Splits "<number><space?><unit>" into number and unit. */
static int split_unit(const char *s, double *num, const char **unit) {
    char *end;
    errno = 0;
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return SL_EINVAL;
    double v = strtod(s, &end);
    if (errno || end == s)
        return SL_EINVAL;
    while (*end == ' ')
        end++;
    *num = v;
    *unit = end;
    return 0;
}

int sl_parse_duration_ms(const char *s, int64_t *out) {
    static const struct {
        const char *u;
        double ms;
    } units[] = {{"", 1},      {"ms", 1},       {"milli", 1},   {"millis", 1},      {"millisecond", 1},
                 {"milliseconds", 1}, {"s", 1000}, {"sec", 1000}, {"secs", 1000},   {"second", 1000},
                 {"seconds", 1000}, {"min", 60000}, {"m", 60000}, {"minute", 60000}, {"minutes", 60000},
                 {"h", 3600000}, {"hour", 3600000}, {"hours", 3600000}, {"d", 86400000}, {"day", 86400000},
                 {"days", 86400000}};
    double v;
    const char *unit;
    if (split_unit(s, &v, &unit))
        return SL_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i].u) == 0) {
            double ms = v * units[i].ms;
            if (!(ms > -9.2e18 && ms < 9.2e18)) /* converting out of range would be undefined */
                return SL_ERANGE;
            *out = (int64_t)ms;
            return 0;
        }
    return SL_EINVAL;
}

int sl_parse_memory(const char *s, int64_t *out) {
    static const struct {
        const char *u;
        double b;
    } units[] = {{"", 1},         {"b", 1},         {"bytes", 1},     {"k", 1024.0},      {"kb", 1024.0},
                 {"kib", 1024.0}, {"m", 1048576.0}, {"mb", 1048576.0}, {"mib", 1048576.0}, {"g", 1073741824.0},
                 {"gb", 1073741824.0}, {"gib", 1073741824.0}, {"t", 1099511627776.0}, {"tb", 1099511627776.0}};
    double v;
    const char *unit;
    if (split_unit(s, &v, &unit))
        return SL_EINVAL;
    char lower[16];
    size_t n = strlen(unit);
    if (n >= sizeof lower)
        return SL_EINVAL;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)unit[i]);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(lower, units[i].u) == 0) {
            double b = v * units[i].b;
            if (!(b > -9.2e18 && b < 9.2e18))
                return SL_ERANGE;
            *out = (int64_t)b;
            return 0;
        }
    return SL_EINVAL;
}

static const char *type_word(const sl_option_t *o) {
    switch (o->type) {
    case SL_OPT_INT:
        return "an integer";
    case SL_OPT_BOOL:
        return "true or false";
    case SL_OPT_DURATION:
        return "a duration such as '100 ms' or '5 s'";
    case SL_OPT_MEMORY:
        return "a memory size such as '32kb' or '64 mb'";
    case SL_OPT_ENUM:
        return o->values;
    default:
        return "a string";
    }
}

static bool enum_ok(const char *values, const char *v) {
    size_t n = strlen(v);
    const char *p = values;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        p += len + (e ? 1 : 0);
    }
    return false;
}

/* Parses `text` for option `o`; on error writes a message naming the key. */
static int parse_value(const sl_option_t *o, const char *text, int64_t *num, char *err, size_t errlen) {
    int rc = 0;
    *num = 0;
    switch (o->type) {
    case SL_OPT_INT:
        rc = parse_int(text, num);
        break;
    case SL_OPT_BOOL:
        if (strcmp(text, "true") == 0)
            *num = 1;
        else if (strcmp(text, "false") != 0)
            rc = SL_EINVAL;
        break;
    case SL_OPT_DURATION:
        rc = sl_parse_duration_ms(text, num);
        break;
    case SL_OPT_MEMORY:
        rc = sl_parse_memory(text, num);
        break;
    case SL_OPT_ENUM:
        rc = enum_ok(o->values, text) ? 0 : SL_EINVAL;
        break;
    case SL_OPT_STRING:
        break;
    }
    if (rc == 0 && (o->type == SL_OPT_INT || o->type == SL_OPT_DURATION || o->type == SL_OPT_MEMORY) &&
        (*num < o->min || *num > o->max)) {
        if (err)
            snprintf(err, errlen, "invalid value '%s' for '%s': must be between %lld and %lld", text, o->key,
                     (long long)o->min, (long long)o->max);
        return SL_ECONFIG;
    }
    if (rc) {
        if (err)
            snprintf(err, errlen, "invalid value '%s' for '%s': expected %s", text, o->key, type_word(o));
        return SL_ECONFIG;
    }
    return 0;
}

int sl_config_create(sl_config_t **out) {
    sl_config_t *c = sl_calloc(1, sizeof *c);
    size_t n = option_count();
    if (c == NULL)
        return SL_ENOMEM;
    c->values = sl_calloc(n, sizeof *c->values);
    if (c->values == NULL) {
        sl_free(c);
        return SL_ENOMEM;
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_value(&sl_options[i], sl_options[i].dflt, &c->values[i].num, NULL, 0);
        SL_ASSERT(rc == 0); /* defaults are part of the program */
    }
    *out = c;
    return 0;
}

void sl_config_destroy(sl_config_t *c) {
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        sl_free(c->values[i].text);
    sl_free(c->values);
    sl_free(c);
}

int sl_config_copy(const sl_config_t *src, sl_config_t **out) {
    int rc = sl_config_create(out);
    for (size_t i = 0; rc == 0 && i < src->n; i++) {
        (*out)->values[i].num = src->values[i].num;
        if (src->values[i].text && ((*out)->values[i].text = sl_strdup(src->values[i].text)) == NULL)
            rc = SL_ENOMEM;
    }
    if (rc && *out) {
        sl_config_destroy(*out);
        *out = NULL;
    }
    return rc;
}

int sl_config_set(sl_config_t *c, const char *key, const char *value, char *err, size_t errlen) {
    int i = find(key);
    if (i < 0) {
        if (err)
            snprintf(err, errlen, "unknown configuration key '%s'", key);
        return SL_ECONFIG;
    }
    int64_t num;
    int rc = parse_value(&sl_options[i], value, &num, err, errlen);
    if (rc)
        return rc;
    char *t = sl_strdup(value);
    if (t == NULL)
        return SL_ENOMEM;
    sl_free(c->values[i].text);
    c->values[i].text = t;
    c->values[i].num = num;
    return 0;
}

int sl_config_set_arg(sl_config_t *c, const char *kv, char *err, size_t errlen) {
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        if (err)
            snprintf(err, errlen, "expected key=value, got '%s'", kv);
        return SL_ECONFIG;
    }
    char key[256];
    size_t n = (size_t)(eq - kv);
    if (n >= sizeof key) {
        if (err)
            snprintf(err, errlen, "configuration key too long in '%s'", kv);
        return SL_ECONFIG;
    }
    memcpy(key, kv, n);
    key[n] = '\0';
    return sl_config_set(c, key, eq + 1, err, errlen);
}

/* ---- YAML: nested mappings flatten to dotted keys; scalars are values. ---- */

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    sl_config_t *c;
    /* Mappings already walked: an alias makes libyaml reuse a node, and a mapping reached
     * twice (a self-reference, or "billion laughs") would recurse forever or explode. */
    const yaml_node_t *seen[256];
    uint32_t nseen;
} yaml_ctx_t;

static int yaml_fail(yaml_ctx_t *y, size_t line, const char *msg) {
    if (y->err)
        snprintf(y->err, y->errlen, "%s:%zu: %s", y->path, line + 1, msg);
    return SL_ECONFIG;
}

static int walk(yaml_ctx_t *y, yaml_document_t *doc, yaml_node_t *node, const char *prefix) {
    if (node->type != YAML_MAPPING_NODE)
        return yaml_fail(y, node->start_mark.line, "expected a mapping of configuration keys");
    for (uint32_t i = 0; i < y->nseen; i++)
        if (y->seen[i] == node)
            return yaml_fail(y, node->start_mark.line, "a mapping used twice through an alias (*) is not supported");
    if (y->nseen == sizeof y->seen / sizeof y->seen[0])
        return yaml_fail(y, node->start_mark.line, "more than 256 nested mappings");
    y->seen[y->nseen++] = node;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
            return yaml_fail(y, node->start_mark.line, "configuration keys must be plain words");
        char key[512];
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", (const char *)k->data.scalar.value);
        int rc;
        if (v->type == YAML_MAPPING_NODE) {
            rc = walk(y, doc, v, key);
        } else if (v->type == YAML_SCALAR_NODE) {
            char msg[512];
            rc = sl_config_set(y->c, key, (const char *)v->data.scalar.value, msg, sizeof msg);
            if (rc == SL_ECONFIG)
                return yaml_fail(y, k->start_mark.line, msg);
        } else {
            char msg[600];
            snprintf(msg, sizeof msg, "'%s': lists are not configuration values", key);
            return yaml_fail(y, k->start_mark.line, msg);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int sl_config_load_yaml(sl_config_t *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        if (err)
            snprintf(err, errlen, "cannot open configuration file '%s': %s", path, strerror(e));
        return e == ENOENT ? SL_ENOENT : SL_EIO;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return SL_ENOMEM;
    }
    yaml_parser_set_input_file(&parser, f);
    yaml_ctx_t y = {.path = path, .err = err, .errlen = errlen, .c = c};
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        char msg[512];
        snprintf(msg, sizeof msg, "invalid YAML: %s", parser.problem ? parser.problem : "parse error");
        rc = yaml_fail(&y, parser.problem_mark.line, msg);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root != NULL && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
            rc = walk(&y, &doc, root, "");
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

static int index_of(const char *key, sl_option_type_t t1, sl_option_type_t t2) {
    int i = find(key);
    SL_ASSERT(i >= 0);
    SL_ASSERT(sl_options[i].type == t1 || sl_options[i].type == t2);
    return i;
}

int64_t sl_config_int(const sl_config_t *c, const char *key) { return c->values[index_of(key, SL_OPT_INT, SL_OPT_INT)].num; }
bool sl_config_bool(const sl_config_t *c, const char *key) { return c->values[index_of(key, SL_OPT_BOOL, SL_OPT_BOOL)].num != 0; }
int64_t sl_config_duration_ms(const sl_config_t *c, const char *key) {
    return c->values[index_of(key, SL_OPT_DURATION, SL_OPT_DURATION)].num;
}
int64_t sl_config_bytes(const sl_config_t *c, const char *key) { return c->values[index_of(key, SL_OPT_MEMORY, SL_OPT_MEMORY)].num; }

const char *sl_config_str(const sl_config_t *c, const char *key) {
    int i = index_of(key, SL_OPT_STRING, SL_OPT_ENUM);
    return c->values[i].text ? c->values[i].text : sl_options[i].dflt;
}

bool sl_config_is_set(const sl_config_t *c, const char *key) {
    int i = find(key);
    return i >= 0 && c->values[i].text != NULL;
}

int sl_config_for_each(const sl_config_t *c, int (*cb)(void *, const char *, const char *, bool), void *arg) {
    for (size_t i = 0; i < c->n; i++) {
        int rc = cb(arg, sl_options[i].key, c->values[i].text ? c->values[i].text : sl_options[i].dflt,
                    c->values[i].text == NULL);
        if (rc)
            return rc;
    }
    return 0;
}

int sl_config_set_lines(sl_config_t *c, const uint8_t *data, size_t len, char *err, size_t errlen) {
    char line[4096];
    size_t start = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= len; i++) {
        if (i < len && data[i] != '\n')
            continue;
        size_t n = i - start < sizeof line - 1 ? i - start : sizeof line - 1;
        if (n == 0) { /* an empty line, or no data at all (data may then be NULL) */
            start = i + 1;
            continue;
        }
        memcpy(line, data + start, n);
        line[n] = '\0';
        start = i + 1;
        rc = sl_config_set_arg(c, line, err, errlen);
    }
    return rc;
}
