/* Decoding a jar run request's body (see run_request.h). */
#include "rest/run_request.h"

#include <sluice/error.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"

static int parse_args(json_t *body, sl_rest_run_request_t *a, char *err, size_t errlen) {
    json_t *list = json_object_get(body, "programArgsList");
    json_t *str = json_object_get(body, "programArgs");
    if (list && !json_is_array(list)) {
        snprintf(err, errlen, "programArgsList must be an array of strings");
        return SL_EINVAL;
    }
    if (str && !json_is_string(str)) {
        snprintf(err, errlen, "programArgs must be a string");
        return SL_EINVAL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (!json_is_string(v) || a->argc >= SL_REST_MAX_ARGS) {
            snprintf(err, errlen, "programArgsList[%zu]: %s", i,
                     json_is_string(v) ? "too many arguments (at most 255)" : "not a string");
            return SL_EINVAL;
        }
        a->argv[a->argc++] = (char *)json_string_value(v);
    }
    if (list == NULL && str) {
        if ((a->split = sl_strdup(json_string_value(str))) == NULL)
            return SL_ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(a->split, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
            if (a->argc >= SL_REST_MAX_ARGS) {
                snprintf(err, errlen, "programArgs: too many arguments (at most 255)");
                return SL_EINVAL;
            }
            a->argv[a->argc++] = t;
        }
    }
    return 0;
}

static int set_option(struct sl_config_s *c, const char *key, json_t *v, char *err, size_t errlen) {
    char text[64], why[512];
    const char *s = text;
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        s = json_is_true(v) ? "true" : "false";
    else {
        snprintf(err, errlen, "configuration %.200s: the value must be a string, integer or boolean", key);
        return SL_EINVAL;
    }
    if (sl_config_set(c, key, s, why, sizeof why) != 0) {
        snprintf(err, errlen, "configuration: %s", why);
        return SL_EINVAL;
    }
    return 0;
}

static int parse_options(json_t *body, struct sl_config_s *c, char *err, size_t errlen) {
    json_t *conf = json_object_get(body, "configuration"), *v;
    const char *key;
    if (conf && !json_is_object(conf)) {
        snprintf(err, errlen, "configuration must be an object of \"key\": value");
        return SL_EINVAL;
    }
    json_object_foreach(conf, key, v) {
        if (set_option(c, key, v, err, errlen) != 0)
            return SL_EINVAL;
    }
    json_t *par = json_object_get(body, "parallelism");
    if (par && (!json_is_integer(par) || json_integer_value(par) < 1)) {
        snprintf(err, errlen, "parallelism must be an integer >= 1");
        return SL_EINVAL;
    }
    if (par && set_option(c, "parallelism.default", par, err, errlen) != 0)
        return SL_EINVAL;
    json_t *sp = json_object_get(body, "savepointPath");
    if (sp && (!json_is_string(sp) || json_string_value(sp)[0] != '/')) {
        snprintf(err, errlen, "savepointPath must be an absolute path (the JobManager resolves it)");
        return SL_EINVAL;
    }
    return sp ? set_option(c, "execution.savepoint.path", sp, err, errlen) : 0;
}

/* The body as a JSON object; errors name the line and column of bad JSON. */
static int load_object(const uint8_t *body, size_t len, json_t **out, char *err, size_t errlen) {
    json_error_t e;
    json_t *doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &e);
    if (doc == NULL) {
        snprintf(err, errlen, "request body is not JSON: line %d, column %d: %s", e.line, e.column, e.text);
        return SL_EINVAL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(err, errlen, "request body must be a JSON object");
        return SL_EINVAL;
    }
    *out = doc;
    return 0;
}

int sl_rest_run_request_parse(const uint8_t *body, size_t len, const char *library, struct sl_config_s *c,
                              sl_rest_run_request_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->argv[out->argc++] = (char *)library;
    if (len == 0)
        return 0;
    json_t *doc;
    int rc = load_object(body, len, &doc, err, errlen);
    if (rc)
        return rc;
    out->doc = doc;
    rc = parse_args(doc, out, err, errlen);
    if (rc == 0)
        rc = parse_options(doc, c, err, errlen);
    out->argv[out->argc] = NULL;
    if (rc == SL_ENOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

void sl_rest_run_request_free(sl_rest_run_request_t *r) {
    json_decref(r->doc);
    r->doc = NULL;
    sl_free(r->split);
    r->split = NULL;
}

int sl_rest_savepoint_request_parse(const uint8_t *body, size_t len, bool stop_form, char *dir, size_t dirlen,
                                    bool *stop, char *err, size_t errlen) {
    dir[0] = '\0';
    *stop = stop_form;
    if (len == 0)
        return 0;
    json_t *doc;
    int rc = load_object(body, len, &doc, err, errlen);
    if (rc)
        return rc;
    const char *dir_key = stop_form ? "targetDirectory" : "target-directory";
    json_t *d = json_object_get(doc, dir_key);
    json_t *flag = json_object_get(doc, stop_form ? "drain" : "cancel-job");
    if (d && !json_is_null(d) &&
        (!json_is_string(d) || json_string_value(d)[0] != '/' || strlen(json_string_value(d)) >= dirlen)) {
        snprintf(err, errlen, "%s must be an absolute path (the JobManager resolves it)", dir_key);
        rc = SL_EINVAL;
    } else if (flag && !json_is_boolean(flag)) {
        snprintf(err, errlen, "%s must be true or false", stop_form ? "drain" : "cancel-job");
        rc = SL_EINVAL;
    } else if (stop_form && json_is_true(flag)) {
        snprintf(err, errlen, "drain is not supported: a stop keeps event time where it is");
        rc = SL_EINVAL;
    } else {
        if (json_is_string(d))
            snprintf(dir, dirlen, "%s", json_string_value(d));
        *stop = stop_form || json_is_true(flag);
    }
    json_decref(doc);
    return rc;
}
