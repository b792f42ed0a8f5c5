/* json.c: strict, typed reading of model.json (and safetensors headers).
   Keys are case-sensitive; duplicates and unknown keys are errors. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What duplicate_key returns when it could not allocate. */
static const char no_memory[] = "";

/* cJSON returns NULL both for bad text and when an allocation failed. When
   it fails, this grammar (cJSON 1.7's own: a UTF-8 BOM skipped, bytes up to
   0x20 as white space, raw control characters allowed in strings, numbers
   as strtod reads at most 63 of [0-9+-eE.], \u escapes with their
   surrogate rules) tells which: text it accepts failed for memory. It is
   never looser than cJSON's, so bad text is never called out of memory. */
typedef struct grammar { const unsigned char *p; size_t n, at; int depth; } grammar;

static void g_space(grammar *g) { while (g->at < g->n && g->p[g->at] <= 32) g->at++; }

static unsigned g_hex4(const unsigned char *p)
{
    unsigned h = 0;
    for (int i = 0; i < 4; i++) {
        unsigned d = p[i] >= '0' && p[i] <= '9' ? p[i] - (unsigned)'0' : p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10u
                   : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10u : 16u;
        if (d == 16) return 0; /* cJSON reads a bad digit as the code 0 */
        h = h << 4 | d;
    }
    return h;
}

static bool g_string(grammar *g)
{
    if (g->at >= g->n || g->p[g->at] != '"') return false;
    size_t end = g->at + 1;
    while (end < g->n && g->p[end] != '"') {
        if (g->p[end] == '\\') {
            if (end + 1 >= g->n) return false;
            end++;
        }
        end++;
    }
    if (end >= g->n) return false;
    for (size_t i = g->at + 1; i < end;) {
        if (g->p[i] != '\\') { i++; continue; }
        unsigned char e = g->p[i + 1];
        if (strchr("bfnrt\"\\/", e) && e) { i += 2; continue; }
        if (e != 'u' || end - i < 6) return false;
        unsigned first = g_hex4(g->p + i + 2);
        if (first >= 0xDC00 && first <= 0xDFFF) return false;
        if (first >= 0xD800 && first <= 0xDBFF) {
            if (end - (i + 6) < 6 || g->p[i + 6] != '\\' || g->p[i + 7] != 'u') return false;
            unsigned second = g_hex4(g->p + i + 8);
            if (second < 0xDC00 || second > 0xDFFF) return false;
            i += 12;
        } else {
            i += 6;
        }
    }
    g->at = end + 1;
    return true;
}

static bool g_value(grammar *g);

static bool g_list(grammar *g, unsigned char close, bool object)
{
    if (++g->depth > 1000) return false;
    g->at++;
    g_space(g);
    if (g->at < g->n && g->p[g->at] == close) { g->at++; g->depth--; return true; }
    for (;;) {
        g_space(g);
        if (object) {
            if (!g_string(g)) return false;
            g_space(g);
            if (g->at >= g->n || g->p[g->at] != ':') return false;
            g->at++;
            g_space(g);
        }
        if (!g_value(g)) return false;
        g_space(g);
        if (g->at < g->n && g->p[g->at] == ',') { g->at++; continue; }
        if (g->at < g->n && g->p[g->at] == close) { g->at++; g->depth--; return true; }
        return false;
    }
}

static bool g_value(grammar *g)
{
    const unsigned char *p = g->p + g->at;
    size_t left = g->n - g->at;
    if (left >= 4 && memcmp(p, "null", 4) == 0) { g->at += 4; return true; }
    if (left >= 5 && memcmp(p, "false", 5) == 0) { g->at += 5; return true; }
    if (left >= 4 && memcmp(p, "true", 4) == 0) { g->at += 4; return true; }
    if (left == 0) return false;
    if (*p == '"') return g_string(g);
    if (*p == '[') return g_list(g, ']', false);
    if (*p == '{') return g_list(g, '}', true);
    if (*p != '-' && !(*p >= '0' && *p <= '9')) return false;
    char number[64];
    size_t i = 0;
    for (; i < sizeof number - 1 && i < left && strchr("0123456789+-eE.", p[i]) && p[i]; i++)
        number[i] = p[i] == '.' ? *localeconv()->decimal_point : (char)p[i];
    number[i] = '\0';
    char *after;
    strtod(number, &after);
    if (after == number) return false;
    g->at += (size_t)(after - number);
    return true;
}

static bool cjson_would_parse(const char *text, size_t size)
{
    grammar g = {(const unsigned char *)text, size, 0, 0};
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) g.at = 3;
    g_space(&g);
    return g_value(&g);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a key that occurs twice in any object of the tree; `where` gets
   the path of that object ("layers[1] (layer \"c1\")", "input", ...). */
static const char *duplicate_key(const cJSON *item, char *where, size_t size)
{
    if (cJSON_IsObject(item)) {
        size_t n = 0;
        for (const cJSON *ch = item->child; ch; ch = ch->next) n++;
        if (n > 1) {
            const char **names = malloc(n * sizeof *names);
            if (!names) return no_memory;
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
    size_t used = strlen(where);
    int index = 0;
    for (const cJSON *ch = item->child; ch; ch = ch->next, index++) {
        if (cJSON_IsArray(item)) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(ch, "name");
            if (cJSON_IsString(name))
                snprintf(where + used, size - used, "[%d] (\"%.100s\")", index, name->valuestring);
            else
                snprintf(where + used, size - used, "[%d]", index);
        } else {
            snprintf(where + used, size - used, "%s%.100s", used ? "." : "", ch->string);
        }
        const char *dup = duplicate_key(ch, where, size);
        if (dup) return dup;
        where[used] = '\0';
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

/* Nesting depth of the raw text, outside strings: checked before cJSON,
   whose own limit (1000) would report a plain parse error. Also finds a
   \u0000 escape, which cJSON would silently cut a string at. */
static int scan(const char *text, size_t size, bool *escaped_nul)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    *escaped_nul = false;
    for (size_t i = 0; i < size; i++) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\' && i + 1 < size) {
                if (text[i + 1] == 'u' && i + 5 < size && memcmp(text + i + 2, "0000", 4) == 0) *escaped_nul = true;
                i++;
            } else if (ch == '"') {
                in_string = false;
            }
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > deepest) deepest = depth;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return deepest;
}

rectify_status rx_json_parse(rx_ctx *c, const char *text, size_t size, cJSON **out)
{
    *out = NULL;
    if (size > RECTIFY_MAX_JSON_BYTES)
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "%zu bytes of JSON, more than the limit of %u",
                        size, RECTIFY_MAX_JSON_BYTES);
    if (memchr(text, '\0', size))
        return rx_cfail(c, RECTIFY_ERR_PARSE, "not JSON text: it holds a NUL byte");
    bool escaped_nul;
    int nesting = scan(text, size, &escaped_nul);
    if (nesting > RECTIFY_MAX_JSON_DEPTH)
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "JSON nested %d deep, more than the limit of %d", nesting,
                        RECTIFY_MAX_JSON_DEPTH);
    if (escaped_nul) return rx_cfail(c, RECTIFY_ERR_PARSE, "a string holds an escaped NUL character (\\u0000)");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        if (cjson_would_parse(text, size)) return rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory parsing the JSON");
        /* cJSON sets `end` to where parsing stopped. cJSON_GetErrorPtr is
           global state that other threads' parses write: only a fallback,
           and only when it points into our text. */
        const char *at = end && end >= text && end <= text + size ? end : cJSON_GetErrorPtr();
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
    char where[1024] = "";
    const char *dup = duplicate_key(root, where, sizeof where);
    if (dup == no_memory) {
        cJSON_Delete(root);
        return rx_cfail(c, RECTIFY_ERR_NOMEM, "out of memory checking the JSON for duplicate keys");
    }
    if (dup) {
        rectify_status st = rx_cfail(c, RECTIFY_ERR_PARSE, "duplicate key \"%.100s\" in %s", dup,
                                     where[0] ? where : "the top-level object");
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

/* An integral JSON number; one too large for int64 saturates, so that the
   range check calls it out of range. */
static bool as_integer(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) return false;
    *out = d > 9.0e18 ? INT64_MAX : d < -9.0e18 ? INT64_MIN : (int64_t)d;
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
        return rx_cfail(c, i > max ? RECTIFY_ERR_LIMIT : RECTIFY_ERR_INVALID,
                        "field \"%s\" is %.17g, outside %lld..%lld", key, v->valuedouble,
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
            return rx_cfail(c, one > max ? RECTIFY_ERR_LIMIT : RECTIFY_ERR_INVALID,
                            "field \"%s\" is %.17g, outside %lld..%lld", key, v->valuedouble,
                            (long long)min, (long long)max);
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
            return rx_cfail(c, x > max ? RECTIFY_ERR_LIMIT : RECTIFY_ERR_INVALID,
                            "field \"%s\"[%d] is %.17g, outside %lld..%lld", key, i, e->valuedouble,
                            (long long)min, (long long)max);
        out[i] = x;
    }
    *length = n;
    return RECTIFY_OK;
}
