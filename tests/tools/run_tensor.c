/* run_tensor: runs a model on a raw tensor, for the importers' checks and
   tests/test_torch.py (not a test itself).

     run_tensor MODEL INPUT.f32 OUTDIR [--threads N] [--layers]

   INPUT.f32 holds little-endian float32 NCHW samples: its size must be a
   whole number of input samples (that number is the batch). Writes into
   OUTDIR (which must exist):
     output-<i>.f32   output i of the model (batch x its shape), raw float32
     layer-<i>.f32    with --layers: the output of layer i (execution order),
                      as the observer sees it right after the layer ran
     report.json      the model, the batch, the run time, and per layer (in
                      execution order): name, op, shape, in_place, elements,
                      zeros (the engine's statistics), seconds, and file
   Exit status 0 on success, 1 with a message on stderr otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rectify.h"

typedef struct saver {
    const char *dir;
    int failed;
} saver;

static int write_raw(const char *path, const float *data, int64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "run_tensor: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t wrote = fwrite(data, sizeof *data, (size_t)n, f);
    int bad = fclose(f) != 0 || wrote != (size_t)n;
    if (bad) fprintf(stderr, "run_tensor: %s: write failed\n", path);
    return bad;
}

static int save_layer(void *user, int layer, const rectify_tensor *out)
{
    saver *s = user;
    char path[4200];
    snprintf(path, sizeof path, "%s/layer-%d.f32", s->dir, layer);
    if (write_raw(path, out->data, out->elements)) s->failed = 1;
    return s->failed;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *input_path = NULL, *dir = NULL;
    int threads = 0, layers = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--layers") == 0) layers = 1;
        else if (!model_path) model_path = argv[i];
        else if (!input_path) input_path = argv[i];
        else if (!dir) dir = argv[i];
        else { dir = NULL; break; }
    }
    if (!model_path || !input_path || !dir || threads < 0) {
        fprintf(stderr, "usage: run_tensor MODEL INPUT.f32 OUTDIR [--threads N] [--layers]\n");
        return 1;
    }
    rectify_error err;
    rectify_model *model;
    if (rectify_model_load(model_path, NULL, &model, &err)) {
        fprintf(stderr, "run_tensor: %s\n", err.message);
        return 1;
    }
    FILE *f = fopen(input_path, "rb");
    if (!f) {
        fprintf(stderr, "run_tensor: %s: %s\n", input_path, strerror(errno));
        rectify_model_destroy(model);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t per_sample = rectify_model_input_size(model);
    size_t count = bytes > 0 ? (size_t)bytes / sizeof(float) : 0;
    if (bytes <= 0 || (size_t)bytes % sizeof(float) || count % per_sample || count / per_sample > RECTIFY_MAX_BATCH) {
        fprintf(stderr, "run_tensor: %s: %ld bytes is not a whole number of samples of %zu floats\n", input_path,
                bytes, per_sample);
        fclose(f);
        rectify_model_destroy(model);
        return 1;
    }
    float *input = malloc(count * sizeof *input);
    if (!input || fread(input, sizeof *input, count, f) != count) {
        fprintf(stderr, "run_tensor: %s: read failed\n", input_path);
        fclose(f);
        free(input);
        rectify_model_destroy(model);
        return 1;
    }
    fclose(f);
    int status = 1;
    rectify_session *session = NULL;
    rectify_session_options options = {.threads = threads, .batch = (int)(count / per_sample)};
    saver sv = {dir, 0};
    if (rectify_session_create(model, &options, &session, &err)) {
        fprintf(stderr, "run_tensor: %s\n", err.message);
        goto done;
    }
    if (layers) rectify_session_set_observer(session, save_layer, &sv);
    double t0 = now();
    if (rectify_session_run(session, input, count, &err)) {
        fprintf(stderr, "run_tensor: %s\n", err.message);
        goto done;
    }
    double seconds = now() - t0;
    char path[4200];
    for (int o = 0; o < rectify_model_output_count(model); o++) {
        rectify_tensor t;
        snprintf(path, sizeof path, "%s/output-%d.f32", dir, o);
        if (rectify_session_output(session, o, &t) || write_raw(path, t.data, t.elements)) goto done;
    }
    snprintf(path, sizeof path, "%s/report.json", dir);
    FILE *r = fopen(path, "w");
    if (!r) {
        fprintf(stderr, "run_tensor: %s: %s\n", path, strerror(errno));
        goto done;
    }
    /* names are [A-Za-z0-9_.:/-] (the loader checks): no escaping needed */
    fprintf(r, "{\"model\": \"%s\", \"batch\": %d, \"seconds\": %.6f, \"outputs\": [", rectify_model_name(model),
            options.batch, seconds);
    for (int o = 0; o < rectify_model_output_count(model); o++)
        fprintf(r, "%s%d", o ? ", " : "", rectify_model_output_layer(model, o));
    fprintf(r, "],\n \"layers\": [\n");
    for (int i = 0; i < rectify_model_layer_count(model); i++) {
        rectify_layer_info info;
        rectify_layer_stats st;
        rectify_model_layer(model, i, &info);
        rectify_session_layer_stats(session, i, &st);
        fprintf(r, "  {\"name\": \"%s\", \"op\": \"%s\", \"shape\": [", info.name, info.op);
        for (int d = 0; d < info.rank; d++) fprintf(r, "%s%lld", d ? ", " : "", (long long)info.shape[d]);
        fprintf(r, "], \"in_place\": %s, \"elements\": %lld, \"zeros\": %lld, \"seconds\": %.6f",
                info.in_place ? "true" : "false", (long long)st.elements, (long long)st.zeros, st.seconds);
        if (layers) fprintf(r, ", \"file\": \"layer-%d.f32\"", i);
        fprintf(r, "}%s\n", i + 1 < rectify_model_layer_count(model) ? "," : "");
    }
    fprintf(r, " ]}\n");
    if (fclose(r) != 0) {
        fprintf(stderr, "run_tensor: %s: write failed\n", path);
        goto done;
    }
    status = 0;
done:
    rectify_session_destroy(session);
    rectify_model_destroy(model);
    free(input);
    return status;
}
