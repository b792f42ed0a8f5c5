#define _POSIX_C_SOURCE 200809L /* setenv */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int rng_int(rng *r, int lo, int hi) { return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

float rng_float(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next(r) >> 40) / (double)(1ull << 24));
}

float *random_floats(rng *r, int64_t n, float lo, float hi)
{
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = rng_float(r, lo, hi);
    return p;
}

unsigned char *st_build(const ttensor *t, int n, size_t *size)
{
    char header[65536];
    size_t used = (size_t)snprintf(header, sizeof header, "{");
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        int64_t elements = 1;
        used += (size_t)snprintf(header + used, sizeof header - used, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                                 i ? "," : "", t[i].name);
        for (int d = 0; d < t[i].rank; d++) {
            elements *= t[i].shape[d];
            used += (size_t)snprintf(header + used, sizeof header - used, d ? ",%lld" : "%lld",
                                     (long long)t[i].shape[d]);
        }
        used += (size_t)snprintf(header + used, sizeof header - used, "],\"data_offsets\":[%llu,%llu]}",
                                 (unsigned long long)offset, (unsigned long long)(offset + 4 * elements));
        offset += 4 * (uint64_t)elements;
    }
    used += (size_t)snprintf(header + used, sizeof header - used, "}");
    while (used % 8) header[used++] = ' ';
    *size = 8 + used + offset;
    unsigned char *out = malloc(*size);
    for (int b = 0; b < 8; b++) out[b] = (unsigned char)((uint64_t)used >> (8 * b));
    memcpy(out + 8, header, used);
    unsigned char *p = out + 8 + used;
    for (int i = 0; i < n; i++) {
        int64_t elements = 1;
        for (int d = 0; d < t[i].rank; d++) elements *= t[i].shape[d];
        memcpy(p, t[i].data, (size_t)elements * 4);
        p += elements * 4;
    }
    return out;
}

rectify_model *load_json(const char *json, const ttensor *t, int n, rectify_error *err)
{
    size_t size;
    unsigned char *st = st_build(t, n, &size);
    rectify_model *m = NULL;
    rectify_model_load_memory(json, strlen(json), st, size, NULL, NULL, &m, err);
    free(st);
    return m;
}

rectify_model *conv_model(rng *r, int cin, int cout, int h, int w, int groups, ref_window win, int bias, float scale,
                          float **weight, float **b, char *json, size_t json_size, rectify_error *err)
{
    snprintf(json, json_size,
             "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
             "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":%d,\"kernel\":[%d,%d],"
             "\"stride\":[%d,%d],\"padding\":[%d,%d,%d,%d],\"dilation\":[%d,%d],\"groups\":%d,\"bias\":%s}]}",
             cin, h, w, cout, win.kh, win.kw, win.sh, win.sw, win.pt, win.pl, win.pb, win.pr, win.dh, win.dw, groups,
             bias ? "true" : "false");
    int64_t wn = (int64_t)cout * (cin / groups) * win.kh * win.kw;
    *weight = random_floats(r, wn, -scale, scale), *b = random_floats(r, cout, -1, 1);
    ttensor t[2] = {{"c.weight", 4, {cout, cin / groups, win.kh, win.kw}, *weight}, {"c.bias", 1, {cout}, *b}};
    return load_json(json, t, bias ? 2 : 1, err);
}

rectify_model *winograd_conv(rng *r, const char *variant, int cin, int cout, int side, float **weight,
                             float **bias, rectify_error *err)
{
    char json[1024];
    float *w, *b;
    setenv("RECTIFY_WINOGRAD", variant, 1);
    rectify_model *m = conv_model(r, cin, cout, side, side, 1, (ref_window){3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 1, 0.1f,
                                  &w, &b, json, sizeof json, err);
    unsetenv("RECTIFY_WINOGRAD");
    if (weight) *weight = w;
    else free(w);
    if (bias) *bias = b;
    else free(b);
    return m;
}

const shared_winograd_case shared_winograd_cases[SHARED_WINOGRAD_CASES] = {
    {"4", 384, 320, 8, 3}, {"4", 448, 384, 6, 1}, {"2", 576, 512, 4, 3}, {"2", 640, 480, 4, 1},
};

float *run_model(const rectify_model *m, const float *in, int batch, int threads, int64_t *count)
{
    rectify_session_options o = {.threads = threads, .batch = batch};
    rectify_session *s;
    rectify_error err;
    if (rectify_session_create(m, &o, &s, &err)) {
        fprintf(stderr, "session: %s\n", err.message);
        return NULL;
    }
    size_t n = rectify_model_input_size(m) * (size_t)batch;
    float *out = NULL;
    rectify_tensor t;
    if (rectify_session_run(s, in, n, &err) == RECTIFY_OK && rectify_session_output(s, 0, &t) == RECTIFY_OK) {
        out = malloc((size_t)t.elements * sizeof *out);
        memcpy(out, t.data, (size_t)t.elements * sizeof *out);
        *count = t.elements;
    } else {
        fprintf(stderr, "run: %s\n", err.message);
    }
    rectify_session_destroy(s);
    return out;
}

bool vector_kernels(void)
{
    const char *isa = getenv("RECTIFY_ISA");
    if (isa && strcmp(isa, "generic") == 0) return false;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") || (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
#else
    return false;
#endif
}

double rel_error(const float *a, const double *b, int64_t n)
{
    double diff = 0, top = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] == b[i] ? 0.0 : fabs((double)a[i] - b[i]); /* equal infinities too */
        if (d > diff || isnan(d)) diff = isnan(d) ? INFINITY : d;
        if (isfinite(b[i]) && fabs(b[i]) > top) top = fabs(b[i]);
    }
    return diff / (top > 1e-30 ? top : 1.0);
}
