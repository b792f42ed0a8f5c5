/* layout.c: the dense layer as the engine runs it (weights packed
   transposed at load, the input's non-zeros gathered, only the rows they
   meet read) against the row-major GEMV it replaced, which streamed all of
   W [units][n] as loaded whatever the input. For dense-layer shapes from
   LeNet-5 to VGG-16's head and input sparsities from 0 to 99% (zeros at
   random positions), prints the median time of each, the speedup, and the
   rate at which each would read all of W (GB/s: compare with bench/peak's
   read bandwidth at 0% sparsity).

   The engine side is a one-layer model ([n,1,1] -> flatten -> dense) loaded
   from memory and timed through rectify_session_layer_stats, twice: as
   shipped ("skip") and with RECTIFY_SPARSE=off ("all": every row read, the
   zeros multiplied). The row GEMV is a copy of the AVX-512 kernel dense.c
   ran before (four rows at a time, 16 rows per task over the threads);
   without AVX-512 its column is empty. Runs interleave the three kinds.

     sparse_layout [--threads N] [--reps R] [--shapes a,b,...]
*/
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rectify.h"
#include "../bench_util.h"

typedef struct shape { const char *name; int64_t n, units; } shape;

static const shape shapes[] = {
    {"lenet5.fc1", 400, 120},
    {"cifar", 2048, 512},
    {"vgg16.fc8", 4096, 1000},
    {"vgg16.fc7", 4096, 4096},
    {"alexnet.fc6", 9216, 4096},
    {"vgg16.fc6", 25088, 4096},
};

static const double sparsities[] = {0.0, 0.25, 0.4, 0.5, 0.75, 0.9, 0.99};
#define SPARSITIES (int)(sizeof sparsities / sizeof sparsities[0])

static uint64_t state = 88172645463325252ull;
static double uniform(void)
{
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

#if defined(__x86_64__)
/* The kernel dense.c ran before its weights were packed: y[r] = bias[r] +
   W[r, :] . x, four rows at a time, two accumulators each. */
__attribute__((target("avx512f")))
static void row_gemv(const float *w, int64_t rows, int64_t n, const float *x, const float *bias, float *y)
{
    const __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
    const int64_t body = n - n % 16;
    for (int64_t r = 0; r < rows; r += 4) {
        const float *w0 = w + r * n;
        const float *w1 = r + 1 < rows ? w0 + n : w0, *w2 = r + 2 < rows ? w0 + 2 * n : w0;
        const float *w3 = r + 3 < rows ? w0 + 3 * n : w0;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        int64_t i = 0;
        for (; i + 32 <= body; i += 32) {
            __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i + 16), x1, a1);
            b0 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i), x0, b0);
            b1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i + 16), x1, b1);
            c0 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i), x0, c0);
            c1 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i + 16), x1, c1);
            d0 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i), x0, d0);
            d1 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i + 16), x1, d1);
        }
        for (; i < n; i += 16) {
            __mmask16 m = i < body ? (__mmask16)0xffff : tail;
            __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w0 + i), x0, a0);
            b0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w1 + i), x0, b0);
            c0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w2 + i), x0, c0);
            d0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w3 + i), x0, d0);
        }
        float s[4] = {_mm512_reduce_add_ps(_mm512_add_ps(a0, a1)), _mm512_reduce_add_ps(_mm512_add_ps(b0, b1)),
                      _mm512_reduce_add_ps(_mm512_add_ps(c0, c1)), _mm512_reduce_add_ps(_mm512_add_ps(d0, d1))};
        for (int j = 0; j < 4 && r + j < rows; j++) y[r + j] = bias[r + j] + s[j];
    }
}

static double time_rows(const float *w, int64_t n, int64_t units, const float *x, const float *bias, float *y,
                        int threads)
{
    const int64_t chunk = 16, chunks = (units + chunk - 1) / chunk;
    threads = units * n < 65536 ? 1 : threads;
    double t0 = now();
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t r0 = c * chunk, rows = units - r0 < chunk ? units - r0 : chunk;
        row_gemv(w + r0 * n, rows, n, x, bias + r0, y + r0);
    }
    return now() - t0;
}
#endif

static rectify_model *load(const shape *s, const unsigned char *st, size_t size, const char *mode)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"format\":\"rectify\",\"version\":1,\"name\":\"%s\",\"input\":{\"shape\":[%lld,1,1]},"
             "\"layers\":[{\"name\":\"f\",\"op\":\"flatten\"},{\"name\":\"d\",\"op\":\"dense\",\"units\":%lld}]}",
             s->name, (long long)s->n, (long long)s->units);
    if (mode) setenv("RECTIFY_SPARSE", mode, 1); else unsetenv("RECTIFY_SPARSE");
    rectify_model *m;
    rectify_error err;
    if (rectify_model_load_memory(json, strlen(json), st, size, NULL, NULL, &m, &err)) {
        fprintf(stderr, "sparse_layout: %s\n", err.message);
        exit(1);
    }
    unsetenv("RECTIFY_SPARSE");
    return m;
}

/* The safetensors file of d.weight [units, n] and d.bias [units]. */
static unsigned char *safetensors(const shape *s, const float *w, const float *bias, size_t *size)
{
    char header[256];
    const unsigned long long wb = 4ull * (unsigned long long)(s->n * s->units);
    const unsigned long long bb = 4ull * (unsigned long long)s->units;
    int used = snprintf(header, sizeof header,
                        "{\"d.weight\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[0,%llu]},"
                        "\"d.bias\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}}",
                        (long long)s->units, (long long)s->n, wb, (long long)s->units, wb, wb + bb);
    while (used % 8) header[used++] = ' ';
    *size = 8 + (size_t)used + wb + bb;
    unsigned char *out = malloc(*size);
    for (int b = 0; b < 8; b++) out[b] = (unsigned char)((uint64_t)used >> (8 * b));
    memcpy(out + 8, header, (size_t)used);
    memcpy(out + 8 + used, w, wb);
    memcpy(out + 8 + used + wb, bias, bb);
    return out;
}

static double layer_seconds(rectify_session *s, const float *x, size_t n)
{
    rectify_error err;
    if (rectify_session_run(s, x, n, &err)) {
        fprintf(stderr, "sparse_layout: %s\n", err.message);
        exit(1);
    }
    rectify_layer_stats st;
    rectify_session_layer_stats(s, 1, &st);
    return st.seconds;
}

/* Whether a comma-separated item of list starts name ("vgg16" lists all three). */
static int listed(const char *list, const char *name)
{
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len && strncmp(name, p, len) == 0) return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--shapes") == 0 && i + 1 < argc) only = argv[++i];
        else { fprintf(stderr, "usage: sparse_layout [--threads N] [--reps R] [--shapes a,b,...]\n"); return 2; }
    }
    int avx512 = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
#endif
    printf("# %d threads; median ms of interleaved runs; GB/s: all of W over the time\n", threads);
    printf("%-12s %12s %6s %9s %9s %9s %7s %9s %9s %9s\n", "shape", "in->out", "zeros", "rows_ms", "all_ms",
           "skip_ms", "speedup", "rows_GB/s", "all_GB/s", "skip_GB/s");
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape *s = &shapes[k];
        if (only && !listed(only, s->name)) continue;
        const int64_t n = s->n, units = s->units;
        const int r = reps ? reps : n * units > 10000000 ? 15 : 201;
        float *w = malloc((size_t)(n * units) * sizeof *w), *bias = malloc((size_t)units * sizeof *bias);
        float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)units * sizeof *y);
        for (int64_t i = 0; i < n * units; i++) w[i] = (float)(uniform() - 0.5);
        for (int64_t u = 0; u < units; u++) bias[u] = 0.1f;
        size_t size;
        unsigned char *st = safetensors(s, w, bias, &size);
        rectify_model *skip = load(s, st, size, NULL), *all = load(s, st, size, "off");
        free(st);
        rectify_session_options o = {.threads = threads};
        rectify_session *ss, *sa;
        rectify_error err;
        if (rectify_session_create(skip, &o, &ss, &err) || rectify_session_create(all, &o, &sa, &err)) {
            fprintf(stderr, "sparse_layout: %s\n", err.message);
            return 1;
        }
        double *t[3];
        for (int j = 0; j < 3; j++) t[j] = calloc((size_t)r, sizeof(double));
        const double gb = 4e-9 * (double)(n * units);
        for (int z = 0; z < SPARSITIES; z++) {
            for (int64_t i = 0; i < n; i++) x[i] = uniform() < sparsities[z] ? 0.0f : (float)uniform();
            for (int i = -1; i < r; i++) { /* -1: a warm-up of each */
                double rows = 0;
#if defined(__x86_64__)
                if (avx512) rows = time_rows(w, n, units, x, bias, y, threads);
#endif
                double a = layer_seconds(sa, x, (size_t)n), b = layer_seconds(ss, x, (size_t)n);
                if (i >= 0) t[0][i] = rows, t[1][i] = a, t[2][i] = b;
            }
            double rows = median_sort(t[0], r), a = median_sort(t[1], r), b = median_sort(t[2], r);
            char shape_text[32];
            snprintf(shape_text, sizeof shape_text, "%lld->%lld", (long long)n, (long long)units);
            printf("%-12s %12s %5.0f%% %9.3f %9.3f %9.3f %7.2f %9.1f %9.1f %9.1f\n", s->name, shape_text,
                   100 * sparsities[z], 1e3 * rows, 1e3 * a, 1e3 * b, avx512 ? rows / b : a / b,
                   avx512 ? gb / rows : 0.0, gb / a, gb / b);
            fflush(stdout);
        }
        for (int j = 0; j < 3; j++) free(t[j]);
        rectify_session_destroy(ss), rectify_session_destroy(sa);
        rectify_model_destroy(skip), rectify_model_destroy(all);
        free(w), free(bias), free(x), free(y);
    }
    return 0;
}
