/*
 * bench_rectify.c: times one model in rectify at batch 1 and prints one JSON
 * document on stdout.
 *
 *   bench_rectify MODEL [--weights FILE] [--threads N] [--warmup W]
 *                 [--repeats R] [--max-repeats M] [--min-seconds S]
 *                 [--input FILE] [--dump PREFIX] [--stats-cost[-null]] [--speedup]
 *
 * What it does, in order:
 *   1. rectify_model_load (timed: "load_ms"), rectify_session_create with N
 *      threads ("session_ms");
 *   2. the first run, timed on its own ("first_run_ms": page faults of mapped
 *      weights, first touch of activations, thread start-up);
 *   3. W - 1 more warm-up runs (W >= 1 counts the first run);
 *   4. timed runs until at least R runs AND S seconds are done, or M runs:
 *      each run timed with clock_gettime(CLOCK_MONOTONIC); after each, every
 *      layer's last-run seconds from rectify_session_layer_stats;
 *   5. with --dump PREFIX, one more (untimed) run with an observer that keeps
 *      the output of the model and the input of a final softmax (the logits),
 *      written as raw float32 to PREFIX.out.f32 and PREFIX.logits.f32;
 *   6. with --stats-cost, what the sparsity statistics cost: as many more
 *      runs, alternately with them off (rectify_session_set_statistics) and
 *      on, layer times off in both as a session has them by default (the
 *      timed runs above have them on, for the per-layer medians), in this
 *      one process (the same code, memory and placement: two
 *      builds differ by more than 1% in code layout alone), the pairs'
 *      order swapped every pair; --stats-cost-null does the same with the
 *      statistics on in both halves: the method's own bias and noise;
 *   7. with --speedup (and --threads N > 1), the N-thread speed-up the same
 *      way: as many more runs, alternately on one thread and on N
 *      (rectify_session_set_threads), in this one process, so that a slow
 *      stretch of the machine (this VM's second vCPU has them) falls on both
 *      halves instead of on one process: separate processes gave VGG-16
 *      1.52x in one harness run where its other processes gave 1.7-1.8x.
 *      A run right after the thread count changes is not timed: the threads
 *      it wakes and the caches it moves to cost a switch, not the N threads
 *      (VGG-16, interleaved: 2.5-8% slower on two threads when timed, the
 *      speed-up 1.68-1.86x against 1.79-1.95x without those runs).
 *
 * The input is the raw float32 file given by --input (input_size floats), or
 * else uniform values in [-1, 1) from a fixed seed.
 *
 * JSON: {"model", "threads", "load_ms", "session_ms", "first_run_ms",
 * "warmup", "runs", "median_ms", "min_ms", "max_ms", "mean_ms",
 * "median_cpu_ms" (process CPU time of a run, all threads), "total_macs",
 * "gflops" (2 x MACs / median), "weight_bytes", "peak_rss_bytes" (the
 * process's peak resident memory up to the end of timing: VmHWM, see
 * vm_hwm_bytes), "ru_maxrss_bytes" (getrusage), "layers": [{"index", "name",
 * "op", "fused_into" (the layer whose kernel runs it, or null), "macs", "params", "median_ms",
 * "min_ms", "zeros", "elements"}], "layer_sum_ms",
 * with --stats-cost "stats_cost": {"pairs", "median_on_ms", "median_off_ms",
 * "ratio" (median on / median off), "median_pair_ratio"}; with --speedup
 * "speedup": {"pairs", "threads", "median_one_ms", "median_many_ms", "ratio"
 * (median one / median many), "median_pair_ratio"}}.
 */
#define _GNU_SOURCE
#include <rectify.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

/* median of v[0..n) (sorts a copy in tmp) */
static double median(const double *v, int n, double *tmp)
{
    if (n > 0) memcpy(tmp, v, (size_t)n * sizeof *tmp);
    return median_sort(tmp, n);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_rectify MODEL [--weights FILE] [--threads N] [--warmup W]\n"
            "                     [--repeats R] [--max-repeats M] [--min-seconds S]\n"
            "                     [--input FILE] [--dump PREFIX] [--stats-cost[-null]] [--speedup]\n");
    return 2;
}

typedef struct capture {
    int layer;      /* layer whose output to keep, or -1 */
    float *data;
    int64_t n;
} capture;

static int observe(void *user, int layer, const rectify_tensor *out)
{
    capture *c = user;
    if (layer == c->layer && c->data == NULL) {
        c->data = malloc((size_t)out->elements * sizeof(float));
        if (c->data) {
            memcpy(c->data, out->data, (size_t)out->elements * sizeof(float));
            c->n = out->elements;
        }
    }
    return 0;
}

static int write_f32(const char *path, const float *v, int64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(v, sizeof(float), (size_t)n, f);
    return (fclose(f) == 0 && w == (size_t)n) ? 0 : -1;
}

/* How a pair's two halves differ: statistics on and off, or one thread and
   `threads`. */
typedef enum { STATS_COST, STATS_COST_NULL, SPEEDUP } alternation;

static void set_half(rectify_session *s, alternation what, int threads, int first)
{
    if (what == SPEEDUP) rectify_session_set_threads(s, first ? 1 : threads);
    else rectify_session_set_statistics(s, first || what == STATS_COST_NULL);
}

/* Pairs of runs, the halves alternated and their order swapped every pair,
   until `repeats` pairs and min_seconds are done (at most max_pairs); a[i]
   and b[i] the first and second halves' seconds, ratio[i] their ratio.
   Returns the pairs, or -1 when a run fails. */
static int alternate(rectify_session *s, alternation what, int threads, const float *input, size_t n_in,
                     int repeats, int max_pairs, double min_seconds, double *a, double *b, double *ratio)
{
    rectify_error err;
    int pairs = 0, last = -1;
    const double start = now();
    while (pairs < max_pairs && (pairs < repeats || now() - start < min_seconds)) {
        for (int k = 0; k < 2; k++) {
            const int first = (k + pairs) % 2;
            set_half(s, what, threads, first);
            /* A thread count just changed: one run untimed (see 7. above). */
            if (what == SPEEDUP && first != last && rectify_session_run(s, input, n_in, &err) != RECTIFY_OK) {
                fprintf(stderr, "bench_rectify: %s\n", err.message);
                return -1;
            }
            last = first;
            const double t = now();
            if (rectify_session_run(s, input, n_in, &err) != RECTIFY_OK) {
                fprintf(stderr, "bench_rectify: %s\n", err.message);
                return -1;
            }
            (first ? a : b)[pairs] = now() - t;
        }
        ratio[pairs] = a[pairs] / b[pairs];
        pairs++;
    }
    set_half(s, what, threads, what == SPEEDUP ? 0 : 1); /* as created: statistics on, `threads` threads */
    return pairs;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *weights = NULL, *input_path = NULL, *dump = NULL;
    int threads = 1, warmup = 2, repeats = 5, max_repeats = 1000, stats_cost = 0, speedup = 0;
    double min_seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (!strcmp(a, "--weights") && v) { weights = v; i++; }
        else if (!strcmp(a, "--threads") && v) { threads = atoi(v); i++; }
        else if (!strcmp(a, "--warmup") && v) { warmup = atoi(v); i++; }
        else if (!strcmp(a, "--repeats") && v) { repeats = atoi(v); i++; }
        else if (!strcmp(a, "--max-repeats") && v) { max_repeats = atoi(v); i++; }
        else if (!strcmp(a, "--min-seconds") && v) { min_seconds = atof(v); i++; }
        else if (!strcmp(a, "--input") && v) { input_path = v; i++; }
        else if (!strcmp(a, "--dump") && v) { dump = v; i++; }
        else if (!strcmp(a, "--stats-cost")) stats_cost = 1;
        else if (!strcmp(a, "--stats-cost-null")) stats_cost = 2;
        else if (!strcmp(a, "--speedup")) speedup = 1;
        else if (a[0] == '-') return usage();
        else if (!model_path) model_path = a;
        else return usage();
    }
    if (!model_path || threads < 1 || repeats < 1 || (speedup && threads < 2)) return usage();
    if (warmup < 1) warmup = 1;
    if (max_repeats < repeats) max_repeats = repeats;

    rectify_error err;
    rectify_load_options lo = {0};
    lo.weights_path = weights;
    rectify_model *model = NULL;
    double t0 = now();
    if (rectify_model_load(model_path, &lo, &model, &err) != RECTIFY_OK) {
        fprintf(stderr, "bench_rectify: %s\n", err.message);
        return 1;
    }
    double load_s = now() - t0;

    rectify_session_options so = {0};
    so.threads = threads;
    so.batch = 1;
    rectify_session *session = NULL;
    t0 = now();
    if (rectify_session_create(model, &so, &session, &err) != RECTIFY_OK) {
        fprintf(stderr, "bench_rectify: %s\n", err.message);
        rectify_model_destroy(model);
        return 1;
    }
    double session_s = now() - t0;
    rectify_session_set_layer_times(session, 1); /* the per-layer medians; off for --stats-cost and --speedup */

    size_t n_in = rectify_model_input_size(model);
    float *input = malloc(n_in * sizeof *input);
    if (!input) { fprintf(stderr, "bench_rectify: out of memory\n"); return 1; }
    if (input_path) {
        FILE *f = fopen(input_path, "rb");
        if (!f || fread(input, sizeof(float), n_in, f) != n_in) {
            fprintf(stderr, "bench_rectify: %s: cannot read %zu floats: %s\n", input_path, n_in,
                    f ? "file too short" : strerror(errno));
            return 1;
        }
        fclose(f);
    } else {
        uint64_t s = 0x9E3779B97F4A7C15ull;
        for (size_t i = 0; i < n_in; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            input[i] = (float)((double)(s >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
        }
    }

    int nl = rectify_model_layer_count(model);
    rectify_layer_info *info = calloc((size_t)nl, sizeof *info);
    for (int l = 0; l < nl; l++) rectify_model_layer(model, l, &info[l]);
    int64_t total_macs = 0;
    for (int l = 0; l < nl; l++) total_macs += info[l].macs;

    /* first run, then the rest of the warm-up */
    t0 = now();
    if (rectify_session_run(session, input, n_in, &err) != RECTIFY_OK) {
        fprintf(stderr, "bench_rectify: %s\n", err.message);
        return 1;
    }
    double first_s = now() - t0;
    for (int w = 1; w < warmup; w++)
        if (rectify_session_run(session, input, n_in, &err) != RECTIFY_OK) {
            fprintf(stderr, "bench_rectify: %s\n", err.message);
            return 1;
        }

    double *times = malloc((size_t)max_repeats * sizeof *times);
    double *cpu_times = malloc((size_t)max_repeats * sizeof *cpu_times);
    double *layer_t = malloc((size_t)max_repeats * (size_t)nl * sizeof *layer_t);
    double *tmp = malloc((size_t)max_repeats * sizeof *tmp);
    if (!times || !cpu_times || !layer_t || !tmp) { fprintf(stderr, "bench_rectify: out of memory\n"); return 1; }
    int runs = 0;
    double start = now();
    while (runs < max_repeats && (runs < repeats || now() - start < min_seconds)) {
        double a = now(), ca = process_cpu();
        if (rectify_session_run(session, input, n_in, &err) != RECTIFY_OK) {
            fprintf(stderr, "bench_rectify: %s\n", err.message);
            return 1;
        }
        times[runs] = now() - a;
        cpu_times[runs] = process_cpu() - ca;
        for (int l = 0; l < nl; l++) {
            rectify_layer_stats st;
            rectify_session_layer_stats(session, l, &st);
            layer_t[(size_t)runs * nl + l] = st.seconds;
        }
        runs++;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long ru_maxrss = (long long)ru.ru_maxrss * 1024;
    long long hwm = vm_hwm_bytes();
    long long peak_rss = hwm > 0 ? hwm : ru_maxrss;

    double med = median(times, runs, tmp), mn = times[0], mx = times[0], sum = 0;
    for (int r = 0; r < runs; r++) {
        if (times[r] < mn) mn = times[r];
        if (times[r] > mx) mx = times[r];
        sum += times[r];
    }
    rectify_memory_info mem;
    rectify_model_memory(model, &mem);

    printf("{\n  \"model\": ");
    json_string(stdout, rectify_model_name(model));
    printf(",\n  \"engine\": \"rectify\",\n  \"version\": \"%s\",\n", rectify_version());
    printf("  \"threads\": %d,\n  \"load_ms\": %.4f,\n  \"session_ms\": %.4f,\n", threads,
           load_s * 1e3, session_s * 1e3);
    printf("  \"first_run_ms\": %.4f,\n  \"warmup\": %d,\n  \"runs\": %d,\n", first_s * 1e3,
           warmup, runs);
    printf("  \"median_ms\": %.4f,\n  \"min_ms\": %.4f,\n  \"max_ms\": %.4f,\n  \"mean_ms\": %.4f,\n",
           med * 1e3, mn * 1e3, mx * 1e3, sum / runs * 1e3);
    printf("  \"median_cpu_ms\": %.4f,\n", median(cpu_times, runs, tmp) * 1e3);
    printf("  \"total_macs\": %lld,\n  \"gflops\": %.3f,\n", (long long)total_macs,
           med > 0 ? 2.0 * (double)total_macs / med / 1e9 : 0.0);
    printf("  \"weight_bytes\": %lld,\n  \"planned_activation_bytes\": %lld,\n",
           (long long)mem.weight_bytes, (long long)mem.planned_bytes);
    printf("  \"peak_rss_bytes\": %lld,\n  \"ru_maxrss_bytes\": %lld,\n", peak_rss, ru_maxrss);
    printf("  \"layers\": [");
    double *col = malloc((size_t)runs * sizeof *col);
    double layer_sum = 0;
    for (int l = 0; l < nl; l++) {
        double lmin = 1e300;
        for (int r = 0; r < runs; r++) {
            col[r] = layer_t[(size_t)r * nl + l];
            if (col[r] < lmin) lmin = col[r];
        }
        double lm = median(col, runs, tmp);
        layer_sum += lm;
        printf("%s\n    {\"index\": %d, \"name\": ", l ? "," : "", l);
        json_string(stdout, info[l].name);
        printf(", \"op\": ");
        json_string(stdout, info[l].op);
        printf(", \"fused_into\": ");
        if (info[l].fused_into >= 0) json_string(stdout, info[info[l].fused_into].name);
        else printf("null");
        rectify_layer_stats st; /* the last run's zeros: the same input every run */
        rectify_session_layer_stats(session, l, &st);
        printf(", \"macs\": %lld, \"params\": %lld, \"median_ms\": %.4f, \"min_ms\": %.4f, \"zeros\": %lld, "
               "\"elements\": %lld}",
               (long long)info[l].macs, (long long)info[l].params, lm * 1e3, lmin * 1e3, (long long)st.zeros,
               (long long)st.elements);
    }
    printf("\n  ],\n  \"layer_sum_ms\": %.4f", layer_sum * 1e3);

    double *first = times, *second = cpu_times, *pair = layer_t; /* reused */
    rectify_session_set_layer_times(session, 0); /* as a session has them unless asked */
    if (stats_cost) {
        int pairs = alternate(session, stats_cost == 2 ? STATS_COST_NULL : STATS_COST, threads, input, n_in, repeats,
                              max_repeats, min_seconds, first, second, pair);
        if (pairs < 0) return 1;
        double mon = median(first, pairs, tmp), moff = median(second, pairs, tmp);
        printf(",\n  \"stats_cost\": {\"pairs\": %d, \"median_on_ms\": %.5f, \"median_off_ms\": %.5f, "
               "\"ratio\": %.4f, \"median_pair_ratio\": %.4f}",
               pairs, mon * 1e3, moff * 1e3, mon / moff, median(pair, pairs, tmp));
    }
    if (speedup) {
        int pairs = alternate(session, SPEEDUP, threads, input, n_in, repeats, max_repeats, min_seconds, first,
                              second, pair);
        if (pairs < 0) return 1;
        double one = median(first, pairs, tmp), many = median(second, pairs, tmp);
        printf(",\n  \"speedup\": {\"pairs\": %d, \"threads\": %d, \"median_one_ms\": %.5f, "
               "\"median_many_ms\": %.5f, \"ratio\": %.4f, \"median_pair_ratio\": %.4f}",
               pairs, threads, one * 1e3, many * 1e3, one / many, median(pair, pairs, tmp));
    }

    if (dump) {
        /* the logits: the input of a softmax that is output 0, if any */
        int out_layer = rectify_model_output_layer(model, 0);
        capture cap = {-1, NULL, 0};
        if (out_layer >= 0 && !strcmp(info[out_layer].op, "softmax") && info[out_layer].input_count == 1)
            cap.layer = info[out_layer].inputs[0];
        rectify_session_set_observer(session, observe, &cap);
        if (rectify_session_run(session, input, n_in, &err) != RECTIFY_OK) {
            fprintf(stderr, "bench_rectify: %s\n", err.message);
            return 1;
        }
        rectify_session_set_observer(session, NULL, NULL);
        rectify_tensor out;
        char path[4096];
        int ok = rectify_session_output(session, 0, &out) == RECTIFY_OK;
        snprintf(path, sizeof path, "%s.out.f32", dump);
        ok = ok && write_f32(path, out.data, out.elements) == 0;
        if (cap.data) {
            snprintf(path, sizeof path, "%s.logits.f32", dump);
            ok = ok && write_f32(path, cap.data, cap.n) == 0;
        }
        printf(",\n  \"dump\": ");
        json_string(stdout, ok ? dump : "");
        printf(",\n  \"dump_logits\": %s", cap.data ? "true" : "false");
        free(cap.data);
    }
    printf("\n}\n");

    free(col);
    free(times);
    free(cpu_times);
    free(layer_t);
    free(tmp);
    free(info);
    free(input);
    rectify_session_destroy(session);
    rectify_model_destroy(model);
    return 0;
}
