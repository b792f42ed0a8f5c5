/*
 * peak.c: this machine's single-precision FMA peak and memory bandwidth, as
 * one JSON document on stdout. The yardsticks of bench/run.py's "% of peak"
 * and "% of bandwidth" columns.
 *
 * FMA peak: ACC independent chains of vfmadd (acc = acc * a + b) in registers,
 * enough of them to cover the FMA latency on both pipes of a Zen or Intel
 * core (4 cycles x 2 pipes = 8 in flight; 12 used). One kernel per ISA
 * (AVX-512F with zmm, AVX2+FMA with ymm), compiled with
 * __attribute__((target)) and chosen at run time with __builtin_cpu_supports,
 * so the binary runs on a CPU without AVX-512 too. Each thread runs the
 * kernel on its own; GFLOP/s = threads x iterations x ACC x lanes x 2 / time.
 *
 * Bandwidth: a buffer of --size-mib (default 1024 MiB) touched first by the
 * threads that later read it (first-touch placement), then
 *   read:  every float loaded once and summed (vector loads, 8 accumulators);
 *   copy:  src -> dst, each of --size-mib, regular stores; counted as read +
 *          write bytes (STREAM's convention; the write-allocate reads are not
 *          counted).
 * Each measurement is the best of --reps repetitions, as two rates: "wall"
 * (work / the team's wall time) and the one reported as the rate, "cpu" (per
 * thread, work / that thread's CPU time, summed over threads): on a machine
 * shared with other processes the latter does not count the time slices the
 * threads lost, so it stays the machine's capability.
 *
 * Usage: peak [--threads 1,2] [--size-mib 1024] [--reps 5] [--fma-ms 200]
 *             [--no-bandwidth] [--no-fma]
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACC 12

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- FMA kernels: return a value depending on every chain so nothing is
   optimised away. Values converge to b / (1 - a): no overflow, no denormals. */

__attribute__((target("avx512f"), noinline))
static float fma_avx512(long iters)
{
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    __m512 acc[ACC];
    for (int i = 0; i < ACC; i++) acc[i] = _mm512_set1_ps((float)i * 0.01f);
    for (long n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < ACC; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < ACC; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline))
static float fma_avx2(long iters)
{
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    __m256 acc[ACC];
    for (int i = 0; i < ACC; i++) acc[i] = _mm256_set1_ps((float)i * 0.01f);
    for (long n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < ACC; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 s = acc[0];
    for (int i = 1; i < ACC; i++) s = _mm256_add_ps(s, acc[i]);
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

typedef float (*fma_fn)(long);

static volatile float sink;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Two rates of one measurement, each the best over the repetitions:
   wall: work / wall time of the team; cpu: the sum over threads of each
   thread's work / its own CPU time, i.e. the rate while the thread was
   actually running. On a machine shared with other processes the cpu rate
   is the stable one (time slices lost to others do not count), and it is
   the one used as the yardstick. */
typedef struct rate { double wall, cpu; } rate;

#define MAX_THREADS 64

/* GFLOP/s of `threads` threads each running fn(iters). */
static rate fma_rate(fma_fn fn, int lanes, int threads, long iters, int reps)
{
    rate best = {0, 0};
    double per_thread = (double)iters * ACC * lanes * 2.0;
    for (int r = 0; r < reps; r++) {
        double t0 = 0, t1 = 0, cpu[MAX_THREADS] = {0};
        float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
#pragma omp barrier
#pragma omp master
            t0 = now();
            double c0 = thread_cpu();
            total += fn(iters);
            cpu[omp_get_thread_num() % MAX_THREADS] = thread_cpu() - c0;
#pragma omp barrier
#pragma omp master
            t1 = now();
        }
        sink = total;
        double w = per_thread * threads / (t1 - t0) / 1e9, c = 0;
        for (int t = 0; t < threads && t < MAX_THREADS; t++) c += per_thread / cpu[t] / 1e9;
        if (w > best.wall) best.wall = w;
        if (c > best.cpu) best.cpu = c;
    }
    return best;
}

/* ---- Bandwidth kernels over [begin, end) of a float array. ---- */

__attribute__((target("avx512f")))
static float read_avx512(const float *p, size_t n)
{
    __m512 s[8];
    for (int i = 0; i < 8; i++) s[i] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 128 <= n; i += 128)
        for (int k = 0; k < 8; k++) s[k] = _mm512_add_ps(s[k], _mm512_loadu_ps(p + i + 16 * k));
    for (int k = 1; k < 8; k++) s[0] = _mm512_add_ps(s[0], s[k]);
    float r = _mm512_reduce_add_ps(s[0]);
    for (; i < n; i++) r += p[i];
    return r;
}

__attribute__((target("avx2")))
static float read_avx2(const float *p, size_t n)
{
    __m256 s[8];
    for (int i = 0; i < 8; i++) s[i] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) s[k] = _mm256_add_ps(s[k], _mm256_loadu_ps(p + i + 8 * k));
    for (int k = 1; k < 8; k++) s[0] = _mm256_add_ps(s[0], s[k]);
    float t[8], r = 0;
    _mm256_storeu_ps(t, s[0]);
    for (int k = 0; k < 8; k++) r += t[k];
    for (; i < n; i++) r += p[i];
    return r;
}

static float read_plain(const float *p, size_t n)
{
    float r = 0;
    for (size_t i = 0; i < n; i++) r += p[i];
    return r;
}

__attribute__((target("avx512f")))
static void copy_avx512(float *d, const float *s, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(d + i + 16 * k, _mm512_loadu_ps(s + i + 16 * k));
    for (; i < n; i++) d[i] = s[i];
}

__attribute__((target("avx2")))
static void copy_avx2(float *d, const float *s, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(d + i + 8 * k, _mm256_loadu_ps(s + i + 8 * k));
    for (; i < n; i++) d[i] = s[i];
}

static void copy_plain(float *d, const float *s, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = s[i];
}

typedef float (*read_fn)(const float *, size_t);
typedef void (*copy_fn)(float *, const float *, size_t);

static void chunk(size_t n, int t, int nt, size_t *b, size_t *e)
{
    size_t per = (n / (size_t)nt) & ~(size_t)63;
    *b = per * (size_t)t;
    *e = (t == nt - 1) ? n : *b + per;
}

/* GB/s (1e9 bytes per second) as wall and cpu rates (see fma_rate).
   kind 0: read, 1: copy. */
static rate bandwidth(int kind, read_fn rf, copy_fn cf, float *src, float *dst,
                      size_t n, int threads, int reps)
{
    rate best = {0, 0};
    double mult = kind == 0 ? 1.0 : 2.0;
    for (int r = 0; r < reps; r++) {
        double t0 = 0, t1 = 0, cpu[MAX_THREADS] = {0}, bytes[MAX_THREADS] = {0};
        float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            size_t b, e;
            int me = omp_get_thread_num();
            chunk(n, me, omp_get_num_threads(), &b, &e);
#pragma omp barrier
#pragma omp master
            t0 = now();
            double c0 = thread_cpu();
            if (kind == 0)
                total += rf(src + b, e - b);
            else
                cf(dst + b, src + b, e - b);
            cpu[me % MAX_THREADS] = thread_cpu() - c0;
            bytes[me % MAX_THREADS] = (double)(e - b) * sizeof(float) * mult;
#pragma omp barrier
#pragma omp master
            t1 = now();
        }
        sink = total;
        double w = (double)n * sizeof(float) * mult / (t1 - t0) / 1e9, c = 0;
        for (int t = 0; t < threads && t < MAX_THREADS; t++) c += bytes[t] / cpu[t] / 1e9;
        if (w > best.wall) best.wall = w;
        if (c > best.cpu) best.cpu = c;
    }
    return best;
}

static int parse_threads(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1024) return -1;
        out[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t') c++;
                c[strcspn(c, "\n")] = 0;
                /* JSON-safe: drop quotes and backslashes */
                size_t j = 0;
                for (; *c && j + 1 < cap; c++)
                    if (*c != '"' && *c != '\\') out[j++] = *c;
                out[j] = 0;
            }
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    int threads[16] = {1, 2}, nthreads = 2;
    long size_mib = 1024;
    int reps = 5, fma_ms = 200, do_bw = 1, do_fma = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc) {
            nthreads = parse_threads(argv[++i], threads, 16);
            for (int t = 0; t < nthreads; t++)
                if (threads[t] > MAX_THREADS) nthreads = -1;
            if (nthreads <= 0) { fprintf(stderr, "peak: bad --threads\n"); return 2; }
        } else if (!strcmp(a, "--size-mib") && i + 1 < argc) {
            size_mib = atol(argv[++i]);
            if (size_mib < 1) { fprintf(stderr, "peak: bad --size-mib\n"); return 2; }
        } else if (!strcmp(a, "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1) reps = 1;
        } else if (!strcmp(a, "--fma-ms") && i + 1 < argc) {
            fma_ms = atoi(argv[++i]);
            if (fma_ms < 1) fma_ms = 1;
        } else if (!strcmp(a, "--no-bandwidth")) {
            do_bw = 0;
        } else if (!strcmp(a, "--no-fma")) {
            do_fma = 0;
        } else {
            fprintf(stderr,
                    "usage: peak [--threads 1,2] [--size-mib 1024] [--reps 5] [--fma-ms 200] "
                    "[--no-bandwidth] [--no-fma]\n");
            return 2;
        }
    }

    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    char model[256];
    cpu_model(model, sizeof model);

    printf("{\n  \"cpu\": \"%s\",\n  \"cores\": %d,\n", model, omp_get_num_procs());
    printf("  \"isa\": {\"avx512f\": %s, \"avx2_fma\": %s},\n", has512 ? "true" : "false",
           has2 ? "true" : "false");
    printf("  \"accumulators\": %d,\n", ACC);

    /* best[t] over ISAs for the summary */
    double best_fma[16] = {0};
    const char *best_isa[16] = {0};
    printf("  \"fma\": [");
    int first = 1;
    if (do_fma) {
        struct { const char *name; fma_fn fn; int lanes; int ok; } isas[] = {
            {"avx512", fma_avx512, 16, has512},
            {"avx2", fma_avx2, 8, has2},
        };
        for (int k = 0; k < 2; k++) {
            if (!isas[k].ok) continue;
            /* calibrate: iterations for about fma_ms on one thread */
            long iters = 1 << 16;
            for (;;) {
                double t0 = now();
                sink = isas[k].fn(iters);
                double dt = now() - t0;
                if (dt > 0.02 || iters > (1L << 34)) {
                    iters = (long)((double)iters * (fma_ms / 1000.0) / dt) + 1;
                    break;
                }
                iters *= 4;
            }
            for (int t = 0; t < nthreads; t++) {
                rate g = fma_rate(isas[k].fn, isas[k].lanes, threads[t], iters, reps);
                printf("%s\n    {\"isa\": \"%s\", \"threads\": %d, \"gflops\": %.2f, "
                       "\"gflops_wall\": %.2f}",
                       first ? "" : ",", isas[k].name, threads[t], g.cpu, g.wall);
                first = 0;
                if (g.cpu > best_fma[t]) { best_fma[t] = g.cpu; best_isa[t] = isas[k].name; }
            }
        }
    }
    printf("%s],\n", first ? "" : "\n  ");

    double best_read[16] = {0}, best_copy[16] = {0};
    printf("  \"bandwidth\": [");
    first = 1;
    if (do_bw) {
        size_t n = (size_t)size_mib * 1024 * 1024 / sizeof(float);
        float *src = NULL, *dst = NULL;
        if (posix_memalign((void **)&src, 64, n * sizeof(float)) ||
            posix_memalign((void **)&dst, 64, n * sizeof(float))) {
            fprintf(stderr, "peak: cannot allocate 2 x %ld MiB\n", size_mib);
            return 1;
        }
        int maxt = 1;
        for (int t = 0; t < nthreads; t++) if (threads[t] > maxt) maxt = threads[t];
        /* first touch by the largest team, same static chunks */
#pragma omp parallel num_threads(maxt)
        {
            size_t b, e;
            chunk(n, omp_get_thread_num(), omp_get_num_threads(), &b, &e);
            for (size_t i = b; i < e; i++) { src[i] = (float)(i & 1023) * 1e-3f; dst[i] = 0; }
        }
        read_fn rf = has512 ? read_avx512 : has2 ? read_avx2 : read_plain;
        copy_fn cf = has512 ? copy_avx512 : has2 ? copy_avx2 : copy_plain;
        for (int t = 0; t < nthreads; t++) {
            rate r = bandwidth(0, rf, cf, src, dst, n, threads[t], reps);
            rate c = bandwidth(1, rf, cf, src, dst, n, threads[t], reps);
            best_read[t] = r.cpu;
            best_copy[t] = c.cpu;
            printf("%s\n    {\"kind\": \"read\", \"threads\": %d, \"gbs\": %.2f, \"gbs_wall\": %.2f},"
                   "\n    {\"kind\": \"copy\", \"threads\": %d, \"gbs\": %.2f, \"gbs_wall\": %.2f}",
                   first ? "" : ",", threads[t], r.cpu, r.wall, threads[t], c.cpu, c.wall);
            first = 0;
        }
        printf("\n  ");
        free(src);
        free(dst);
    }
    printf("],\n  \"size_mib\": %ld,\n", size_mib);

    /* summary keyed by thread count, for the harness */
    printf("  \"summary\": {");
    for (int t = 0; t < nthreads; t++) {
        printf("%s\n    \"%d\": {\"peak_gflops\": %.2f, \"peak_isa\": \"%s\", "
               "\"read_gbs\": %.2f, \"copy_gbs\": %.2f}",
               t ? "," : "", threads[t], best_fma[t], best_isa[t] ? best_isa[t] : "none",
               best_read[t], best_copy[t]);
    }
    printf("\n  }\n}\n");
    return 0;
}
