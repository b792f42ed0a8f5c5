/* weights.c: the safetensors file, checked entry by entry against the
   tensors the graph declared, then bound to the layers. F32 data is used in
   place (mapped); F16, BF16 and misaligned F32 are widened into one buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels/kernels.h"

typedef struct entry {
    int tensor;          /* index in m->tensors */
    int dtype;           /* 0 F32, 1 F16, 2 BF16 */
    uint64_t begin, end;
} entry;

typedef struct by_name { const char *name; int index; } by_name;

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const by_name *)a)->name, ((const by_name *)b)->name);
}

static int compare_entries(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void format_dims(char *buf, size_t size, const int64_t *d, int rank)
{
    size_t used = snprintf(buf, size, "[");
    for (int i = 0; i < rank && used < size; i++)
        used += snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)d[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

static rectify_status parse_entry(rx_ctx *c, const cJSON *item, const rectify_model *m,
                                  const by_name *sorted, uint64_t data_size, entry *e)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets", NULL};
    char what[RECTIFY_MAX_NAME + 48];
    snprintf(what, sizeof what, "tensor \"%.*s\"", RECTIFY_MAX_NAME, item->string);
    rectify_status st = rx_json_check_keys(c, item, what, fields);
    if (st) return st;
    by_name key = {item->string, 0};
    const by_name *hit = bsearch(&key, sorted, (size_t)m->tensor_count, sizeof key, compare_by_name);
    if (!hit)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s is used by no layer of the model", what);
    const rx_tensor *t = &m->tensors[hit->index];
    e->tensor = hit->index;
    const cJSON *dtype = rx_json_get(item, "dtype");
    if (!cJSON_IsString(dtype)) return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: \"dtype\" must be a string", what);
    e->dtype = strcmp(dtype->valuestring, "F32") == 0 ? 0 : strcmp(dtype->valuestring, "F16") == 0 ? 1
             : strcmp(dtype->valuestring, "BF16") == 0 ? 2 : -1;
    if (e->dtype < 0)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: dtype \"%.20s\" is not supported (F32, F16 or BF16)", what,
                        dtype->valuestring);
    const cJSON *shape = rx_json_get(item, "shape");
    if (!cJSON_IsArray(shape)) return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: \"shape\" must be an array", what);
    int64_t dims[RECTIFY_MAX_RANK + 1];
    int rank = 0;
    int64_t elements = 1;
    for (const cJSON *d = shape->child; d; d = d->next, rank++) {
        if (rank > RECTIFY_MAX_RANK)
            return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: rank over %d", what, RECTIFY_MAX_RANK);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > RECTIFY_MAX_DIM ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: shape[%d] must be an integer in 0..%d", what, rank,
                            RECTIFY_MAX_DIM);
        dims[rank] = (int64_t)d->valuedouble;
        if (rx_mul_overflow(elements, dims[rank], &elements))
            return rx_cfail(c, RECTIFY_ERR_LIMIT, "%s: the shape's product overflows", what);
    }
    bool same = rank == t->shape.rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == t->shape.d[i];
    if (!same) {
        char got[128], want[128];
        format_dims(got, sizeof got, dims, rank);
        format_dims(want, sizeof want, t->shape.d, t->shape.rank);
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s has shape %s, layer \"%s\" needs %s", what, got,
                        m->layers[t->layer].name, want);
    }
    const cJSON *offsets = rx_json_get(item, "data_offsets");
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: \"data_offsets\" must be [begin, end]", what);
    const cJSON *first = offsets->child, *second = first->next;
    if (!cJSON_IsNumber(first) || !cJSON_IsNumber(second))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: \"data_offsets\" must be [begin, end], two integers", what);
    double b = first->valuedouble, end = second->valuedouble;
    /* compared as doubles before any cast: a huge value is just out of range */
    if (!(b >= 0 && end >= b && end <= (double)data_size) || b != floor(b) || end != floor(end))
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: data_offsets [%.17g, %.17g] are not inside the %llu bytes of data",
                        what, b, end, (unsigned long long)data_size);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)end;
    uint64_t want_bytes = (uint64_t)elements * (e->dtype == 0 ? 4 : 2);
    if (e->end - e->begin != want_bytes)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s: data_offsets span %llu bytes, its shape and dtype need %llu",
                        what, (unsigned long long)(e->end - e->begin), (unsigned long long)want_bytes);
    return RECTIFY_OK;
}

rectify_status rx_bind_weights(rectify_model *m, const char *file, rectify_error *err)
{
    rx_ctx c = {.err = err, .file = file};
    const unsigned char *data = m->weights.data;
    size_t size = m->weights.size;
    if (size < 8 || !data) return rx_cfail(&c, RECTIFY_ERR_PARSE, "%zu bytes: too short for a safetensors file", size);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | data[i];
    if (header > RECTIFY_MAX_HEADER_BYTES)
        return rx_cfail(&c, RECTIFY_ERR_LIMIT, "header of %llu bytes, more than the limit of %u",
                        (unsigned long long)header, RECTIFY_MAX_HEADER_BYTES);
    if (header < 2 || header > size - 8)
        return rx_cfail(&c, RECTIFY_ERR_PARSE, "header of %llu bytes does not fit in the file's %zu bytes",
                        (unsigned long long)header, size);
    const unsigned char *base = data + 8 + header;
    uint64_t data_size = size - 8 - header;
    cJSON *root = NULL;
    by_name *sorted = calloc((size_t)m->tensor_count + 1, sizeof *sorted);
    int count = 0;
    entry *entries = NULL;
    rectify_status st = RECTIFY_OK;
    if (!sorted) { st = rx_cfail(&c, RECTIFY_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < m->tensor_count; i++) sorted[i] = (by_name){m->tensors[i].name, i};
    qsort(sorted, (size_t)m->tensor_count, sizeof *sorted, compare_by_name);
    if ((st = rx_json_parse(&c, (const char *)data + 8, (size_t)header, &root))) goto done;
    if (!cJSON_IsObject(root)) { st = rx_cfail(&c, RECTIFY_ERR_PARSE, "the header is not a JSON object"); goto done; }
    int n = cJSON_GetArraySize(root);
    entries = calloc((size_t)n + 1, sizeof *entries);
    if (!entries) { st = rx_cfail(&c, RECTIFY_ERR_NOMEM, "out of memory"); goto done; }
    for (const cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(item)) { st = rx_cfail(&c, RECTIFY_ERR_INVALID, "__metadata__ must be an object"); goto done; }
            for (const cJSON *kv = item->child; kv; kv = kv->next)
                if (!cJSON_IsString(kv)) {
                    st = rx_cfail(&c, RECTIFY_ERR_INVALID, "__metadata__ value \"%.100s\" must be a string", kv->string);
                    goto done;
                }
            continue;
        }
        if ((st = parse_entry(&c, item, m, sorted, data_size, &entries[count]))) goto done;
        count++;
    }
    /* Every tensor the graph needs, once. */
    for (int i = 0; i < count; i++) m->tensors[entries[i].tensor].data = (const float *)1;
    for (int i = 0; i < m->tensor_count; i++)
        if (!m->tensors[i].data) {
            const rx_tensor *t = &m->tensors[i];
            st = rx_cfail(&c, RECTIFY_ERR_INVALID, "tensor \"%s\" is missing (layer \"%s\" needs it)", t->name,
                          m->layers[t->layer].name);
            goto done;
        }
    /* No two tensors share bytes. */
    qsort(entries, (size_t)count, sizeof *entries, compare_entries);
    for (int i = 1; i < count; i++)
        if (entries[i].begin < entries[i - 1].end) {
            st = rx_cfail(&c, RECTIFY_ERR_INVALID, "tensors \"%s\" and \"%s\" overlap in the file",
                          m->tensors[entries[i - 1].tensor].name, m->tensors[entries[i].tensor].name);
            goto done;
        }
    /* ... and, as the safetensors format requires, no bytes between them. */
    uint64_t covered = 0;
    for (int i = 0; i < count && !st; i++) {
        if (entries[i].begin > covered)
            st = rx_cfail(&c, RECTIFY_ERR_INVALID, "bytes %llu..%llu of the data belong to no tensor",
                          (unsigned long long)covered, (unsigned long long)entries[i].begin);
        covered = entries[i].end;
    }
    if (!st && covered != data_size)
        st = rx_cfail(&c, RECTIFY_ERR_INVALID, "%llu bytes after the last tensor belong to no tensor",
                      (unsigned long long)(data_size - covered));
    if (st) goto done;
    /* Bind: F32 aligned in place, the rest widened into m->owned. */
    int64_t owned = 0;
    for (int i = 0; i < count; i++) {
        const entry *e = &entries[i];
        bool direct = e->dtype == 0 && ((uintptr_t)(base + e->begin) % sizeof(float)) == 0;
        if (!direct) owned += m->tensors[e->tensor].elements;
    }
    if (owned) {
        m->owned = rx_calloc(&m->allocator, (size_t)owned, sizeof *m->owned);
        if (!m->owned) { st = rx_cfail(&c, RECTIFY_ERR_NOMEM, "out of memory widening %lld weights", (long long)owned); goto done; }
    }
    float *next = m->owned;
    m->weight_bytes = 0;
    for (int i = 0; i < count; i++) {
        const entry *e = &entries[i];
        rx_tensor *t = &m->tensors[e->tensor];
        const unsigned char *src = base + e->begin;
        m->weight_bytes += t->elements * 4;
        if (e->dtype == 0 && ((uintptr_t)src % sizeof(float)) == 0) {
            t->data = (const float *)src;
            continue;
        }
        for (int64_t k = 0; k < t->elements; k++) {
            if (e->dtype == 0) memcpy(&next[k], src + 4 * k, 4);
            else {
                uint16_t h = (uint16_t)(src[2 * k] | src[2 * k + 1] << 8);
                if (e->dtype == 1) next[k] = half_to_float(h);
                else { uint32_t bits = (uint32_t)h << 16; memcpy(&next[k], &bits, 4); }
            }
        }
        t->data = next;
        next += t->elements;
    }
done:
    if (st) for (int i = 0; i < m->tensor_count; i++) m->tensors[i].data = NULL;
    cJSON_Delete(root);
    free(sorted);
    free(entries);
    return st;
}

/* NaN and infinity in the bound weights: the first tensor holding any is
   named with its count, and the number of such tensors. */
rectify_status rx_check_finite(const rectify_model *m, const char *file, rectify_error *err)
{
    int bad_tensors = 0, first = -1;
    int64_t first_nan = 0, first_inf = 0;
    for (int i = 0; i < m->tensor_count; i++) {
        const rx_tensor *t = &m->tensors[i];
        if (!t->data) continue;
        /* Chunks of 1 Mi values over the threads: a VGG's weights are half a
           gigabyte, read here for the first time (page faults included). */
        const int64_t chunk = 1 << 20, chunks = (t->elements + chunk - 1) / chunk;
        int64_t nonfinite = 0;
        #pragma omp parallel for reduction(+ : nonfinite) schedule(dynamic) if (chunks > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t k0 = c * chunk, n = t->elements - k0 < chunk ? t->elements - k0 : chunk;
            nonfinite += rx_count_nonfinite(t->data + k0, n);
        }
        if (!nonfinite) continue;
        if (first < 0) {
            first = i;
            for (int64_t k = 0; k < t->elements; k++) {
                uint32_t bits;
                memcpy(&bits, &t->data[k], sizeof bits);
                if ((bits & 0x7f800000u) == 0x7f800000u) (bits & 0x007fffffu) ? first_nan++ : first_inf++;
            }
        }
        bad_tensors++;
    }
    if (first < 0) return RECTIFY_OK;
    const rx_tensor *t = &m->tensors[first];
    char more[64] = "";
    if (bad_tensors > 1) snprintf(more, sizeof more, ", and %d more tensor%s some", bad_tensors - 1,
                                  bad_tensors > 2 ? "s hold" : " holds");
    return rx_fail(err, RECTIFY_ERR_INVALID,
                   "%s: tensor \"%s\" holds %lld NaN and %lld infinite values (of %lld)%s; "
                   "set allow_nonfinite to load such weights",
                   file, t->name, (long long)first_nan, (long long)first_inf, (long long)t->elements, more);
}
