/* bench_sparse.c: dense layers with and without zero skipping on real ReLU
   outputs. Loads each model twice, with RECTIFY_SPARSE=off (every dense
   layer reads all its weights, zeros multiplied) and as shipped (every
   dense layer reads only the weights its non-zero inputs meet), runs
   the same input through both, alternating, and prints per dense layer the
   input's sparsity, the fastest time of each and the speedup, then the same
   for all dense layers and for the whole network.

     bench_sparse [--runs N] [--threads N] [--control] MODEL [IMAGE]...

   --control loads both sides with RECTIFY_SPARSE=off: the "speedups" it
   prints are the measurement's own noise on this machine.

   Without IMAGE the input is an image of uniform random pixels (seed 1),
   preprocessed as model.json says: the dense layers then see the zeros the
   network's own ReLUs make of it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rectify.h"

static rectify_model *load(const char *path, const char *mode)
{
    if (mode) setenv("RECTIFY_SPARSE", mode, 1); else unsetenv("RECTIFY_SPARSE");
    rectify_error err;
    rectify_model *m;
    if (rectify_model_load(path, NULL, &m, &err) != RECTIFY_OK) {
        fprintf(stderr, "bench_sparse: %s\n", err.message);
        exit(1);
    }
    unsetenv("RECTIFY_SPARSE");
    return m;
}

static void random_input(const rectify_model *m, float *input, size_t n)
{
    int64_t shape[3];
    rectify_model_input_shape(m, shape);
    int side = (int)(shape[1] > shape[2] ? shape[1] : shape[2]) + 32;
    unsigned char *pixels = malloc((size_t)side * side * 3);
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)side * side * 3; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        pixels[i] = (unsigned char)(s >> 56);
    }
    rectify_error err;
    if (rectify_image_from_pixels(m, pixels, side, side, 3, 0, input, n, &err) != RECTIFY_OK) {
        fprintf(stderr, "bench_sparse: %s\n", err.message);
        exit(1);
    }
    free(pixels);
}

typedef struct timing { double *layer; double total; } timing;

/* Keeps each layer's fastest time and the fastest whole run. */
static void run_once(rectify_session *s, const float *input, size_t n, int layers, timing *t)
{
    rectify_error err;
    rectify_session_reset_stats(s);
    if (rectify_session_run(s, input, n, &err) != RECTIFY_OK) {
        fprintf(stderr, "bench_sparse: %s\n", err.message);
        exit(1);
    }
    double total = 0;
    for (int i = 0; i < layers; i++) {
        rectify_layer_stats st;
        rectify_session_layer_stats(s, i, &st);
        if (st.seconds < t->layer[i]) t->layer[i] = st.seconds;
        total += st.seconds;
    }
    if (total < t->total) t->total = total;
}

static int control; /* --control: both sides dense, to see the noise */

static void bench(const char *path, const char *image, int runs, int threads)
{
    /* Loaded sparse first: the model loaded second was measured faster on the
       same kernel (page placement), which would flatter the sparse side. */
    rectify_model *sparse = load(path, control ? "off" : NULL), *dense = load(path, "off");
    size_t n = rectify_model_input_size(dense);
    float *input = malloc(n * sizeof *input);
    rectify_error err;
    if (image) {
        if (rectify_image_load(dense, image, input, n, &err) != RECTIFY_OK) {
            fprintf(stderr, "bench_sparse: %s\n", err.message);
            exit(1);
        }
    } else {
        random_input(dense, input, n);
    }
    rectify_session_options o = {.threads = threads};
    rectify_session *sd, *ss;
    if (rectify_session_create(dense, &o, &sd, &err) || rectify_session_create(sparse, &o, &ss, &err)) {
        fprintf(stderr, "bench_sparse: %s\n", err.message);
        exit(1);
    }
    int layers = rectify_model_layer_count(dense);
    timing td = {calloc((size_t)layers, sizeof(double)), 1e30}, ts = {calloc((size_t)layers, sizeof(double)), 1e30};
    for (int i = 0; i < layers; i++) td.layer[i] = ts.layer[i] = 1e30;
    for (int r = 0; r < runs; r++) { /* alternating which goes first: neither finds the other's data in cache */
        if (r % 2 == 0) run_once(sd, input, n, layers, &td);
        run_once(ss, input, n, layers, &ts);
        if (r % 2 == 1) run_once(sd, input, n, layers, &td);
    }
    printf("\n%s, %s, %d threads, fastest of %d runs\n", rectify_model_name(dense),
           image ? image : "random image (seed 1)", threads, runs);
    printf("%-10s %-12s %9s %11s %11s %8s\n", "layer", "in -> out", "input 0s", "dense ms", "sparse ms", "speedup");
    double dense_sum = 0, sparse_sum = 0;
    for (int i = 0; i < layers; i++) {
        rectify_layer_info info, in;
        rectify_model_layer(dense, i, &info);
        if (strcmp(info.op, "dense") != 0) continue;
        double sparsity = 0;
        char shape[48];
        if (info.inputs[0] >= 0) {
            rectify_layer_stats st;
            rectify_session_layer_stats(ss, info.inputs[0], &st);
            rectify_model_layer(dense, info.inputs[0], &in);
            sparsity = (double)st.zeros / (double)st.elements;
            snprintf(shape, sizeof shape, "%lld->%lld", (long long)in.elements, (long long)info.elements);
        }
        printf("%-10s %-12s %8.1f%% %11.3f %11.3f %7.2fx\n", info.name, shape, 100 * sparsity, 1e3 * td.layer[i],
               1e3 * ts.layer[i], td.layer[i] / ts.layer[i]);
        dense_sum += td.layer[i];
        sparse_sum += ts.layer[i];
    }
    printf("%-10s %-12s %9s %11.3f %11.3f %7.2fx\n", "all dense", "", "", 1e3 * dense_sum, 1e3 * sparse_sum,
           dense_sum / sparse_sum);
    printf("%-10s %-12s %9s %11.3f %11.3f %7.2fx\n", "network", "", "", 1e3 * td.total, 1e3 * ts.total,
           td.total / ts.total);
    free(td.layer), free(ts.layer), free(input);
    rectify_session_destroy(sd), rectify_session_destroy(ss);
    rectify_model_destroy(dense), rectify_model_destroy(sparse);
}

int main(int argc, char **argv)
{
    int runs = 5, threads = 0, first = 1;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "--runs") == 0 && first + 1 < argc) runs = atoi(argv[first + 1]), first += 2;
        else if (strcmp(argv[first], "--control") == 0) control = 1, first++;
        else if (strcmp(argv[first], "--threads") == 0 && first + 1 < argc) threads = atoi(argv[first + 1]), first += 2;
        else break;
    }
    if (first >= argc || runs < 1) {
        fprintf(stderr, "usage: bench_sparse [--runs N] [--threads N] [--control] MODEL [IMAGE]...\n");
        return 2;
    }
    if (threads == 0) threads = 2;
    const char *model = argv[first];
    if (first + 1 >= argc) bench(model, NULL, runs, threads);
    for (int i = first + 1; i < argc; i++) bench(model, argv[i], runs, threads);
    return 0;
}
