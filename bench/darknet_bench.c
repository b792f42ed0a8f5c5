/*
 * darknet_bench.c: times one forward pass of a Darknet network at batch 1,
 * against Debian's libdarknet (package `darknet`: /usr/lib/darknet), and
 * prints one JSON document on stdout. Darknet is single-threaded here (the
 * Debian library is built without OpenMP).
 *
 *   darknet_bench CFG WEIGHTS [--input FILE] [--warmup W] [--repeats R]
 *                 [--max-repeats M] [--min-seconds S] [--dump PREFIX]
 *
 * bench/run.py writes CFG and WEIGHTS from the same model.json and
 * safetensors file as the other engines. Built by bench/run.py with
 *   cc -O2 darknet_bench.c -I/usr/lib/darknet/include -L/usr/lib/darknet
 *      -ldarknet -Wl,-rpath,/usr/lib/darknet
 * (not by meson: the darknet package is optional).
 */
#define _GNU_SOURCE
#include <darknet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static int write_f32(const char *path, const float *v, int n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(v, sizeof(float), (size_t)n, f);
    return (fclose(f) == 0 && w == (size_t)n) ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *cfg = NULL, *weights = NULL, *input_path = NULL, *dump = NULL;
    int warmup = 1, repeats = 5, max_repeats = 1000;
    double min_seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (!strcmp(a, "--input") && v) { input_path = v; i++; }
        else if (!strcmp(a, "--warmup") && v) { warmup = atoi(v); i++; }
        else if (!strcmp(a, "--repeats") && v) { repeats = atoi(v); i++; }
        else if (!strcmp(a, "--max-repeats") && v) { max_repeats = atoi(v); i++; }
        else if (!strcmp(a, "--min-seconds") && v) { min_seconds = atof(v); i++; }
        else if (!strcmp(a, "--dump") && v) { dump = v; i++; }
        else if (a[0] == '-') goto usage;
        else if (!cfg) cfg = a;
        else if (!weights) weights = a;
        else goto usage;
    }
    if (!cfg || !weights || repeats < 1) goto usage;
    if (warmup < 1) warmup = 1;
    if (max_repeats < repeats) max_repeats = repeats;

    /* darknet prints its layer table on stderr and exits on errors */
    double t0 = now();
    network *net = load_network((char *)cfg, (char *)weights, 0);
    set_batch_network(net, 1);
    double load_s = now() - t0;

    int n_in = net->inputs;
    float *input = malloc((size_t)n_in * sizeof *input);
    if (input_path) {
        FILE *f = fopen(input_path, "rb");
        if (!f || fread(input, sizeof(float), (size_t)n_in, f) != (size_t)n_in) {
            fprintf(stderr, "darknet_bench: %s: cannot read %d floats\n", input_path, n_in);
            return 1;
        }
        fclose(f);
    } else {
        for (int i = 0; i < n_in; i++) input[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
    }

    t0 = now();
    network_predict(net, input);
    double first_s = now() - t0;
    for (int w = 1; w < warmup; w++) network_predict(net, input);

    double *times = malloc((size_t)max_repeats * sizeof *times);
    double *cpu = malloc((size_t)max_repeats * sizeof *cpu);
    int runs = 0;
    double start = now();
    while (runs < max_repeats && (runs < repeats || now() - start < min_seconds)) {
        double a = now(), ca = process_cpu();
        network_predict(net, input);
        times[runs] = now() - a;
        cpu[runs++] = process_cpu() - ca;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    double *s = malloc((size_t)runs * sizeof *s);
    memcpy(s, times, (size_t)runs * sizeof *s);
    double med = median_sort(s, runs);
    double sum = 0;
    for (int r = 0; r < runs; r++) sum += s[r];
    double med_cpu = median_sort(cpu, runs);

    printf("{\n  \"engine\": \"darknet\",\n  \"threads\": 1,\n");
    printf("  \"load_ms\": %.4f,\n  \"first_run_ms\": %.4f,\n  \"warmup\": %d,\n  \"runs\": %d,\n",
           load_s * 1e3, first_s * 1e3, warmup, runs);
    printf("  \"median_ms\": %.4f,\n  \"min_ms\": %.4f,\n  \"max_ms\": %.4f,\n  \"mean_ms\": %.4f,\n",
           med * 1e3, s[0] * 1e3, s[runs - 1] * 1e3, sum / runs * 1e3);
    printf("  \"median_cpu_ms\": %.4f,\n", med_cpu * 1e3);
    long long hwm = vm_hwm_bytes();
    printf("  \"layers\": %d,\n  \"peak_rss_bytes\": %lld,\n  \"ru_maxrss_bytes\": %lld", net->n,
           hwm > 0 ? hwm : (long long)ru.ru_maxrss * 1024, (long long)ru.ru_maxrss * 1024);

    if (dump) {
        float *out = network_predict(net, input);
        char path[4096];
        snprintf(path, sizeof path, "%s.out.f32", dump);
        int ok = write_f32(path, out, net->outputs) == 0;
        int logits = 0;
        if (net->n >= 2 && net->layers[net->n - 1].type == SOFTMAX) {
            layer l = net->layers[net->n - 2];
            snprintf(path, sizeof path, "%s.logits.f32", dump);
            ok = ok && write_f32(path, l.output, l.outputs) == 0;
            logits = 1;
        }
        printf(",\n  \"dump\": \"%s\",\n  \"dump_logits\": %s", ok ? dump : "",
               logits ? "true" : "false");
    }
    printf("\n}\n");
    free(s);
    free(times);
    free(cpu);
    free(input);
    free_network(net);
    return 0;

usage:
    fprintf(stderr, "usage: darknet_bench CFG WEIGHTS [--input FILE] [--warmup W] [--repeats R]\n"
                    "                     [--max-repeats M] [--min-seconds S] [--dump PREFIX]\n");
    return 2;
}
