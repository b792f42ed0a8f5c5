/* json.c: strict, typed reading of model.json (and safetensors headers).
   Keys are case-sensitive; duplicates and unknown keys are errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int depth_of(const cJSON *item)
{
    int deepest = 0;
    for (const cJSON *child = item->child; child; child = child->next) {
        int d = depth_of(child);
        if (d > deepest) deepest = d;
    }
    return (cJSON_IsArray(item) || cJSON_IsObject(item)) ? deepest + 1 : 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a key that occurs twice in any object of the tree. */
static const char *duplicate_key(const cJSON *item)
{
    if (cJSON_IsObject(item)) {
        size_t n = 0;
        for (const cJSON *ch = item->child; ch; ch = ch->next) n++;
        if (n > 1) {
            const char **names = malloc(n * sizeof *names);
            if (!names) return NULL; /* memory failure is caught later */
            size_t i = 0;
            for (const cJSON *ch = item->child; ch; ch = ch->next) names[i++] = ch->string;
            qsort(names, n, sizeof *names, compare_names);
            const char *dup = NULL;
            for (i = 1; i < n && !dup; i++)
                if (strcmp(names[i - 1], names[i]) == 0) dup = names[i];
            free(names);
            if (dup) return dup;
        }
    }
    for (const cJSON *ch = item->child; ch; ch = ch->next) {
        const char *dup = duplicate_key(ch);
        if (dup) return dup;
    }
    return NULL;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') { (*line)++; *col = 1; }
        else (*col)++;
    }
}

rectify_status rx_json_parse(rx_ctx *c, const char *text, size_t size, cJSON **out)
{
    *out = NULL;
    if (size > RECTIFY_MAX_JSON_BYTES)
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "%zu bytes of JSON, more than the limit of %u",
                        size, RECTIFY_MAX_JSON_BYTES);
    if (memchr(text, '\0', size))
        return rx_cfail(c, RECTIFY_ERR_PARSE, "not JSON text: it holds a NUL byte");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        /* cJSON_GetErrorPtr is global state; when it does not point into our
           text (another thread parsed), fall back to "somewhere". */
        if (end && end >= text && end <= text + size) at = end;
        if (at && at >= text && at <= text + size) {
            int line, col;
            line_col(text, at, &line, &col);
            return rx_cfail(c, RECTIFY_ERR_PARSE, "invalid JSON at line %d, column %d", line, col);
        }
        return rx_cfail(c, RECTIFY_ERR_PARSE, "invalid JSON (or out of memory)");
    }
    /* Trailing content other than white space is an error. */
    if (end) {
        while (end < text + size && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
            end++;
        if (end < text + size) {
            int line, col;
            line_col(text, end, &line, &col);
            cJSON_Delete(root);
            return rx_cfail(c, RECTIFY_ERR_PARSE, "unexpected text after the JSON value at line %d, column %d",
                            line, col);
        }
    }
    int depth = depth_of(root);
    if (depth > RECTIFY_MAX_JSON_DEPTH) {
        cJSON_Delete(root);
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "JSON nested %d deep, more than the limit of %d",
                        depth, RECTIFY_MAX_JSON_DEPTH);
    }
    const char *dup = duplicate_key(root);
    if (dup) {
        rectify_status st = rx_cfail(c, RECTIFY_ERR_PARSE, "duplicate key \"%.100s\"", dup);
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return RECTIFY_OK;
}

rectify_status rx_json_check_keys(rx_ctx *c, const cJSON *obj, const char *what,
                                  const char *const *allowed)
{
    if (!cJSON_IsObject(obj)) return rx_cfail(c, RECTIFY_ERR_INVALID, "%s must be an object", what);
    for (const cJSON *ch = obj->child; ch; ch = ch->next) {
        bool known = false;
        for (const char *const *a = allowed; a && *a && !known; a++) known = strcmp(*a, ch->string) == 0;
        if (!known) return rx_cfail(c, RECTIFY_ERR_INVALID, "unknown field \"%.100s\" in %s", ch->string, what);
    }
    return RECTIFY_OK;
}

const cJSON *rx_json_get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static bool as_integer(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e15) return false;
    *out = (int64_t)d;
    return true;
}

rectify_status rx_json_int(rx_ctx *c, const cJSON *obj, const char *key, bool required,
                           int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const cJSON *v = rx_json_get(obj, key);
    if (!v) {
        if (required) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" is missing", key);
        *out = def;
        return RECTIFY_OK;
    }
    int64_t i;
    if (!as_integer(v, &i))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" must be an integer", key);
    if (i < min || i > max)
        return rx_cfail(c, i > max && max >= RECTIFY_MAX_DIM ? RECTIFY_ERR_LIMIT : RECTIFY_ERR_INVALID,
                        "field \"%s\" is %lld, outside %lld..%lld", key, (long long)i,
                        (long long)min, (long long)max);
    *out = i;
    return RECTIFY_OK;
}

rectify_status rx_json_bool(rx_ctx *c, const cJSON *obj, const char *key, bool def, bool *out)
{
    const cJSON *v = rx_json_get(obj, key);
    if (!v) { *out = def; return RECTIFY_OK; }
    if (!cJSON_IsBool(v)) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v);
    return RECTIFY_OK;
}

rectify_status rx_json_number(rx_ctx *c, const cJSON *obj, const char *key, double def, double *out)
{
    const cJSON *v = rx_json_get(obj, key);
    if (!v) { *out = def; return RECTIFY_OK; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" must be a finite number", key);
    *out = v->valuedouble;
    return RECTIFY_OK;
}

rectify_status rx_json_string(rx_ctx *c, const cJSON *obj, const char *key, bool required,
                              const char *def, size_t max_len, const char **out)
{
    const cJSON *v = rx_json_get(obj, key);
    if (!v) {
        if (required) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" is missing", key);
        *out = def;
        return RECTIFY_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" must be a string", key);
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > max_len)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" must be 1 to %zu bytes long", key, max_len);
    *out = v->valuestring;
    return RECTIFY_OK;
}

rectify_status rx_json_ints(rx_ctx *c, const cJSON *obj, const char *key, bool required,
                            int64_t def, int64_t min, int64_t max, const int *accepted_lengths,
                            int64_t *out, int *length)
{
    const cJSON *v = rx_json_get(obj, key);
    int full = accepted_lengths[0];
    for (const int *a = accepted_lengths; *a; a++) if (*a > full) full = *a;
    if (!v) {
        if (required) return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" is missing", key);
        for (int i = 0; i < full; i++) out[i] = def;
        *length = 0;
        return RECTIFY_OK;
    }
    int64_t one;
    if (as_integer(v, &one)) {
        if (one < min || one > max)
            return rx_cfail(c, one > max && max >= RECTIFY_MAX_DIM ? RECTIFY_ERR_LIMIT : RECTIFY_ERR_INVALID,
                            "field \"%s\" is %lld, outside %lld..%lld", key,
                            (long long)one, (long long)min, (long long)max);
        for (int i = 0; i < full; i++) out[i] = one;
        *length = 1;
        return RECTIFY_OK;
    }
    char lengths[64] = "";
    for (const int *a = accepted_lengths; *a; a++) {
        size_t used = strlen(lengths);
        snprintf(lengths + used, sizeof lengths - used, "%s%d", a == accepted_lengths ? "" : " or ", *a);
    }
    if (!cJSON_IsArray(v))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" must be an integer or an array of %s integers",
                        key, lengths);
    int n = cJSON_GetArraySize(v);
    bool ok = false;
    for (const int *a = accepted_lengths; *a; a++) ok |= *a == n;
    if (!ok)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\" has %d values; it takes %s", key, n, lengths);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        int64_t x;
        if (!as_integer(e, &x))
            return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"%s\"[%d] must be an integer", key, i);
        if (x < min || x > max)
            return rx_cfail(c, x > max && max >= RECTIFY_MAX_DIM ? RECTIFY_ERR_LIMIT : RECTIFY_ERR_INVALID,
                            "field \"%s\"[%d] is %lld, outside %lld..%lld", key, i,
                            (long long)x, (long long)min, (long long)max);
        out[i] = x;
    }
    *length = n;
    return RECTIFY_OK;
}
