/* test_embed.c: what a program embedding rectify relies on, on the shipped
   LeNet-5 and its samples: the version, models and images from memory,
   outputs by name, batches equal to single runs, statistics accumulated
   and reset, and memory: a counting allocator sees every byte freed and the
   bytes the model and session report. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define MODEL TEST_SOURCE_ROOT "/models/lenet5-mnist"
#define SAMPLES 10

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    data[n] = '\0';
    *size = (size_t)n;
    return data;
}

static rectify_model *load(const rectify_load_options *options)
{
    rectify_error err;
    rectify_model *m;
    cr_assert_eq(rectify_model_load(MODEL, options, &m, &err), RECTIFY_OK, "%s", err.message);
    return m;
}

/* The ten sample digits, preprocessed: SAMPLES x input_size floats. */
static float *samples(const rectify_model *m)
{
    size_t n = rectify_model_input_size(m);
    float *in = malloc(SAMPLES * n * sizeof *in);
    cr_assert_not_null(in);
    for (int i = 0; i < SAMPLES; i++) {
        char path[512];
        snprintf(path, sizeof path, MODEL "/samples/digit-%d.png", i);
        rectify_error err;
        cr_assert_eq(rectify_image_load(m, path, in + i * n, n, &err), RECTIFY_OK, "%s", err.message);
    }
    return in;
}

static rectify_session *session(const rectify_model *m, int batch, int threads)
{
    rectify_session_options o = {.threads = threads, .batch = batch};
    rectify_session *s;
    rectify_error err;
    cr_assert_eq(rectify_session_create(m, &o, &s, &err), RECTIFY_OK, "%s", err.message);
    return s;
}

static void run(rectify_session *s, const float *in, size_t count)
{
    rectify_error err;
    cr_assert_eq(rectify_session_run(s, in, count, &err), RECTIFY_OK, "%s", err.message);
}

/* ---- version ---- */

Test(embed, version_matches_the_project)
{
    char made[64];
    snprintf(made, sizeof made, "%d.%d.%d", RECTIFY_VERSION_MAJOR, RECTIFY_VERSION_MINOR, RECTIFY_VERSION_PATCH);
    cr_assert_str_eq(made, RECTIFY_VERSION_STRING, "the version macros disagree");
    cr_assert_str_eq(RECTIFY_VERSION_STRING, PROJECT_VERSION, "rectify.h says %s, meson.build says %s",
                     RECTIFY_VERSION_STRING, PROJECT_VERSION);
    cr_assert_str_eq(rectify_version(), RECTIFY_VERSION_STRING);
}

/* ---- from memory ---- */

Test(embed, model_from_memory_runs_like_the_folder)
{
    size_t json_size, weights_size, labels_size, image_size;
    char *json = read_all(MODEL "/model.json", &json_size);
    void *weights = read_all(MODEL "/weights.safetensors", &weights_size);
    char *labels = read_all(MODEL "/labels.txt", &labels_size);
    void *png = read_all(MODEL "/samples/digit-7.png", &image_size);
    rectify_error err;
    rectify_model *mem;
    cr_assert_eq(rectify_model_load_memory(json, json_size, weights, weights_size, labels, NULL, &mem, &err),
                 RECTIFY_OK, "%s", err.message);
    /* Everything was copied: the buffers can go. */
    memset(weights, 0, weights_size);
    free(json), free(weights), free(labels);
    rectify_model *folder = load(NULL);
    cr_assert_str_eq(rectify_model_name(mem), rectify_model_name(folder));
    cr_assert_eq(rectify_model_label_count(mem), 10);
    cr_assert_str_eq(rectify_model_label(mem, 7), "7");

    size_t n = rectify_model_input_size(mem);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    cr_assert_eq(rectify_image_load_memory(mem, png, image_size, a, n, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_image_load(folder, MODEL "/samples/digit-7.png", b, n, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_arr_eq(a, b, n * sizeof *a, "an image from memory differs from the same file");
    rectify_session *sm = session(mem, 1, 1), *sf = session(folder, 1, 1);
    run(sm, a, n);
    run(sf, b, n);
    rectify_tensor om, of;
    cr_assert_eq(rectify_session_output(sm, 0, &om), RECTIFY_OK);
    cr_assert_eq(rectify_session_output(sf, 0, &of), RECTIFY_OK);
    cr_assert_eq(om.elements, 10);
    cr_assert_arr_eq(om.data, of.data, 10 * sizeof(float), "memory and folder models disagree");
    cr_assert_gt(om.data[7], 0.9f, "digit-7 is classified as a 7");

    /* Labels and weights are needed from memory: no folder to find them. */
    rectify_model *bad;
    json = read_all(MODEL "/model.json", &json_size);
    cr_assert_eq(rectify_model_load_memory(json, json_size, NULL, 0, NULL, NULL, &bad, &err), RECTIFY_ERR_ARGUMENT);
    cr_assert_null(bad);
    rectify_load_options graph = {.graph_only = 1};
    cr_assert_eq(rectify_model_load_memory(json, json_size, NULL, 0, NULL, &graph, &bad, &err), RECTIFY_OK, "%s",
                 err.message);
    cr_assert_eq(rectify_model_label_count(bad), 0);
    rectify_model_destroy(bad);
    free(json);
    free(png), free(a), free(b);
    rectify_session_destroy(sm), rectify_session_destroy(sf);
    rectify_model_destroy(mem), rectify_model_destroy(folder);
}

/* ---- outputs by name ---- */

Test(embed, outputs_by_name)
{
    rectify_model *m = load(NULL);
    float *in = samples(m);
    rectify_session *s = session(m, 1, 1);
    rectify_tensor t, u;
    cr_assert_eq(rectify_session_output_by_name(s, "prob", &t), RECTIFY_ERR_ARGUMENT, "nothing ran yet");
    run(s, in, rectify_model_input_size(m));
    cr_assert_eq(rectify_session_output_by_name(s, "prob", &t), RECTIFY_OK);
    cr_assert_eq(rectify_session_output(s, 0, &u), RECTIFY_OK);
    cr_assert_eq(t.data, u.data);
    cr_assert_eq(t.rank, 2);
    cr_assert_eq(t.shape[0], 1);
    cr_assert_eq(t.shape[1], 10);
    cr_assert_eq(rectify_session_output_by_name(s, "no-such-layer", &t), RECTIFY_ERR_ARGUMENT);
    cr_assert_eq(rectify_session_output_by_name(s, NULL, &t), RECTIFY_ERR_ARGUMENT);
    cr_assert_eq(rectify_session_output_by_name(NULL, "prob", &t), RECTIFY_ERR_ARGUMENT);
    /* By name exactly when by index: intact layers only, same view. */
    int intact = 0;
    for (int i = 0; i < rectify_model_layer_count(m); i++) {
        rectify_layer_info info;
        rectify_model_layer(m, i, &info);
        rectify_status by_index = rectify_session_layer_output(s, i, &u);
        cr_assert_eq(rectify_session_output_by_name(s, info.name, &t), by_index, "layer %s", info.name);
        if (by_index) continue;
        intact++;
        cr_assert_eq(t.data, u.data, "layer %s", info.name);
        cr_assert_eq(t.elements, info.elements, "layer %s", info.name);
        cr_assert_eq(t.rank, info.rank + 1, "layer %s", info.name);
        for (int d = 0; d < info.rank; d++) cr_assert_eq(t.shape[d + 1], info.shape[d], "layer %s", info.name);
    }
    cr_assert_geq(intact, 1);
    free(in);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

/* ---- batches ---- */

static void assert_close(const float *a, const float *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        float scale = fabsf(b[i]) > 1e-30f ? fabsf(b[i]) : 1e-30f;
        cr_assert(a[i] == b[i] || fabsf(a[i] - b[i]) / scale <= 1e-6f, "%s: [%lld] %.9g vs %.9g", what,
                  (long long)i, a[i], b[i]);
    }
}

/* A batch of 10 equals 10 single runs, output and statistics alike. */
static void batch_equals_singles(int threads)
{
    rectify_model *m = load(NULL);
    const size_t n = rectify_model_input_size(m);
    const int layers = rectify_model_layer_count(m);
    float *in = samples(m);
    rectify_session *one = session(m, 1, threads), *all = session(m, SAMPLES, threads);
    run(all, in, SAMPLES * n);
    rectify_tensor batched;
    cr_assert_eq(rectify_session_output(all, 0, &batched), RECTIFY_OK);
    cr_assert_eq(batched.shape[0], SAMPLES);
    const int64_t per = batched.elements / SAMPLES;
    for (int i = 0; i < SAMPLES; i++) {
        run(one, in + i * n, n);
        rectify_tensor single;
        cr_assert_eq(rectify_session_output(one, 0, &single), RECTIFY_OK);
        cr_assert_eq(single.elements, per);
        char what[64];
        snprintf(what, sizeof what, "sample %d of the batch", i);
        assert_close(batched.data + i * per, single.data, per, what);
    }
    for (int l = 0; l < layers; l++) {
        rectify_layer_stats b, s;
        rectify_layer_info info;
        rectify_model_layer(m, l, &info);
        cr_assert_eq(rectify_session_layer_stats(all, l, &b), RECTIFY_OK);
        cr_assert_eq(rectify_session_layer_stats(one, l, &s), RECTIFY_OK);
        cr_assert_eq(b.runs, 1, "layer %s", info.name);
        cr_assert_eq(b.samples, SAMPLES, "layer %s", info.name);
        cr_assert_eq(b.elements, SAMPLES * info.elements, "layer %s", info.name);
        cr_assert_eq(s.runs, SAMPLES, "layer %s", info.name);
        cr_assert_eq(s.samples, SAMPLES, "layer %s", info.name);
        cr_assert_eq(s.total_elements, b.total_elements, "layer %s", info.name);
        /* The same values give the same zeros (a ReLU's zeros are exact). */
        cr_assert_eq(s.total_zeros, b.total_zeros, "layer %s", info.name);
        cr_assert_float_eq(s.min_sparsity, b.min_sparsity, 1e-12, "layer %s", info.name);
        cr_assert_float_eq(s.max_sparsity, b.max_sparsity, 1e-12, "layer %s", info.name);
        cr_assert_float_eq(s.sum_sparsity, b.sum_sparsity, 1e-9, "layer %s", info.name);
    }
    free(in);
    rectify_session_destroy(one), rectify_session_destroy(all);
    rectify_model_destroy(m);
}

Test(embed, batch_equals_single_runs) { batch_equals_singles(1); }
Test(embed, batch_equals_single_runs_on_threads) { batch_equals_singles(2); }

Test(embed, batch_input_size_is_checked)
{
    rectify_model *m = load(NULL);
    const size_t n = rectify_model_input_size(m);
    float *in = samples(m);
    rectify_session *s = session(m, 4, 1);
    rectify_error err;
    cr_assert_eq(rectify_session_run(s, in, n, &err), RECTIFY_ERR_ARGUMENT, "one sample for a batch of 4");
    cr_assert_neq(strstr(err.message, "batch 4"), NULL, "%s", err.message);
    cr_assert_eq(rectify_session_run(s, in, 4 * n, &err), RECTIFY_OK, "%s", err.message);
    free(in);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

/* ---- statistics ---- */

Test(embed, stats_accumulate_over_batches_and_reset)
{
    rectify_model *m = load(NULL);
    const size_t n = rectify_model_input_size(m);
    const int layers = rectify_model_layer_count(m);
    float *in = samples(m);
    rectify_session *s = session(m, 4, 1);
    int64_t zeros[2][64];
    cr_assert_leq(layers, 64);
    run(s, in, 4 * n);
    for (int l = 0; l < layers; l++) {
        rectify_layer_stats st;
        rectify_session_layer_stats(s, l, &st);
        zeros[0][l] = st.zeros;
    }
    run(s, in + 4 * n, 4 * n); /* digits 4..7 */
    for (int l = 0; l < layers; l++) {
        rectify_layer_stats st;
        rectify_layer_info info;
        rectify_model_layer(m, l, &info);
        rectify_session_layer_stats(s, l, &st);
        zeros[1][l] = st.zeros;
        cr_assert_eq(st.runs, 2, "layer %s", info.name);
        cr_assert_eq(st.samples, 8, "layer %s", info.name);
        cr_assert_eq(st.elements, 4 * info.elements, "layer %s: the last run's", info.name);
        cr_assert_eq(st.total_elements, 8 * info.elements, "layer %s", info.name);
        cr_assert_eq(st.total_zeros, zeros[0][l] + zeros[1][l], "layer %s", info.name);
        cr_assert_geq(st.total_seconds, st.seconds, "layer %s", info.name);
        cr_assert(st.min_sparsity <= st.max_sparsity, "layer %s", info.name);
        /* Per-channel zeros add up to the total. */
        int64_t channels = rectify_session_channel_count(s, l), per_channel[1024], sum = 0;
        cr_assert(channels > 0 && channels <= 1024);
        cr_assert_eq(rectify_session_channel_zeros(s, l, per_channel, channels), RECTIFY_OK);
        for (int64_t c = 0; c < channels; c++) sum += per_channel[c];
        cr_assert_eq(sum, st.total_zeros, "layer %s", info.name);
        if (channels > 1)
            cr_assert_eq(rectify_session_channel_zeros(s, l, per_channel, channels - 1), RECTIFY_ERR_ARGUMENT);
    }
    int relu = rectify_model_find_layer(m, "relu1");
    cr_assert_geq(relu, 0);
    cr_assert_gt(zeros[0][relu] + zeros[1][relu], 0, "a ReLU makes zeros");

    rectify_session_reset_stats(s);
    for (int l = 0; l < layers; l++) {
        rectify_layer_stats st;
        rectify_session_layer_stats(s, l, &st);
        cr_assert(st.runs == 0 && st.samples == 0 && st.total_zeros == 0 && st.total_elements == 0 &&
                  st.zeros == 0 && st.elements == 0 && st.total_seconds == 0.0 && st.sum_sparsity == 0.0 &&
                  st.min_sparsity == 0.0 && st.max_sparsity == 0.0, "layer %d after reset", l);
        int64_t channels = rectify_session_channel_count(s, l), per_channel[1024];
        rectify_session_channel_zeros(s, l, per_channel, channels);
        for (int64_t c = 0; c < channels; c++) cr_assert_eq(per_channel[c], 0);
    }
    /* After a reset, the totals start again from the next run. */
    run(s, in + 4 * n, 4 * n);
    for (int l = 0; l < layers; l++) {
        rectify_layer_stats st;
        rectify_session_layer_stats(s, l, &st);
        cr_assert_eq(st.runs, 1);
        cr_assert_eq(st.samples, 4);
        cr_assert_eq(st.total_zeros, zeros[1][l]);
        cr_assert_eq(st.total_zeros, st.zeros);
        cr_assert_eq(st.total_elements, st.elements);
    }
    free(in);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

/* ---- memory ---- */

/* A counting allocator: a 16-byte header keeps each block's size. */
typedef struct counter {
    pthread_mutex_t lock;
    int64_t allocs, frees, live, peak;
} counter;

static void *count_alloc(void *user, size_t size)
{
    counter *c = user;
    unsigned char *p = malloc(size + 16);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    pthread_mutex_lock(&c->lock);
    c->allocs++;
    c->live += (int64_t)size;
    if (c->live > c->peak) c->peak = c->live;
    pthread_mutex_unlock(&c->lock);
    return p + 16;
}

static void count_free(void *user, void *ptr)
{
    counter *c = user;
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - 16;
    size_t size;
    memcpy(&size, p, sizeof size);
    pthread_mutex_lock(&c->lock);
    c->frees++;
    c->live -= (int64_t)size;
    pthread_mutex_unlock(&c->lock);
    free(p);
}

static int64_t live(counter *c)
{
    pthread_mutex_lock(&c->lock);
    int64_t v = c->live;
    pthread_mutex_unlock(&c->lock);
    return v;
}

Test(embed, counting_allocator_sees_everything_freed_and_the_reported_bytes)
{
    counter c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    rectify_allocator a = {count_alloc, count_free, &c};
    rectify_load_options options = {.allocator = &a};
    rectify_model *m = load(&options);
    rectify_memory_info info;
    rectify_model_memory(m, &info);
    cr_assert_gt(info.model_bytes, 0);
    cr_assert_eq(info.model_bytes, live(&c), "the model reports %lld bytes, the allocator holds %lld",
                 (long long)info.model_bytes, (long long)live(&c));
    float *in = samples(m); /* images: malloc, not the allocator */
    cr_assert_eq(live(&c), info.model_bytes);
    const size_t n = rectify_model_input_size(m);

    for (int batch = 1; batch <= 8; batch *= 2) {
        int64_t before = live(&c);
        rectify_session *s = session(m, batch, 1);
        size_t bytes = rectify_session_bytes(s);
        cr_assert_eq((int64_t)bytes, live(&c) - before, "batch %d: session reports %zu, allocator holds %lld", batch,
                     bytes, (long long)(live(&c) - before));
        cr_assert_leq((int64_t)bytes, c.peak - before, "batch %d: within the observed peak", batch);
        cr_assert_geq((int64_t)bytes, batch * info.planned_bytes, "batch %d: at least the activations", batch);
        float *input = malloc((size_t)batch * n * sizeof *input);
        for (int i = 0; i < batch; i++) memcpy(input + i * n, in + (i % SAMPLES) * n, n * sizeof *input);
        int64_t allocs = c.allocs;
        run(s, input, (size_t)batch * n);
        cr_assert_eq(c.allocs, allocs, "batch %d: a run with the session's threads allocates nothing", batch);
        /* More threads: scratch grows, and the report follows. */
        rectify_session_set_threads(s, 3);
        run(s, input, (size_t)batch * n);
        cr_assert_geq(rectify_session_bytes(s), bytes);
        cr_assert_eq((int64_t)rectify_session_bytes(s), live(&c) - before, "batch %d after 3 threads", batch);
        cr_assert_leq((int64_t)rectify_session_bytes(s), c.peak - before);
        free(input);
        rectify_session_destroy(s);
        cr_assert_eq(live(&c), before, "batch %d: the session freed all it took", batch);
    }
    rectify_model_destroy(m);
    cr_assert_eq(live(&c), 0, "%lld bytes left after destroy", (long long)live(&c));
    cr_assert_eq(c.allocs, c.frees, "%lld allocations, %lld frees", (long long)c.allocs, (long long)c.frees);

    /* From memory, the weights are copied through the allocator too. */
    size_t json_size, weights_size;
    char *json = read_all(MODEL "/model.json", &json_size);
    void *weights = read_all(MODEL "/weights.safetensors", &weights_size);
    rectify_error err;
    cr_assert_eq(rectify_model_load_memory(json, json_size, weights, weights_size, NULL, &options, &m, &err),
                 RECTIFY_OK, "%s", err.message);
    rectify_model_memory(m, &info);
    cr_assert_eq(info.model_bytes, live(&c));
    cr_assert_geq(info.model_bytes, (int64_t)weights_size);
    rectify_model_destroy(m);
    cr_assert_eq(live(&c), 0);

    /* A load that fails, early or late, leaves nothing allocated. */
    cr_assert_eq(rectify_model_load_memory(json, json_size, weights, weights_size, "a\nb", &options, &m, &err),
                 RECTIFY_ERR_INVALID, "2 labels for 10 classes");
    cr_assert_null(m);
    cr_assert_eq(rectify_model_load_memory(json, json_size, weights, weights_size / 2, NULL, &options, &m, &err),
                 RECTIFY_ERR_INVALID, "truncated weights: %s", err.message);
    cr_assert_null(m);
    char *op = strstr(json, "\"relu\"");
    cr_assert_not_null(op);
    op[4] = 'X';
    cr_assert_eq(rectify_model_load_memory(json, json_size, weights, weights_size, NULL, &options, &m, &err),
                 RECTIFY_ERR_INVALID, "an unknown op");
    cr_assert_null(m);
    cr_assert_eq(live(&c), 0);
    cr_assert_eq(c.allocs, c.frees);
    free(json), free(weights), free(in);
}

/* Sessions made and run on several threads at once, through one allocator. */
typedef struct worker_arg {
    const rectify_model *model;
    const float *in;
    size_t n;
    float out[10];
    rectify_status status;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    rectify_session_options o = {.threads = 1, .batch = 2};
    rectify_session *s;
    rectify_error err;
    w->status = rectify_session_create(w->model, &o, &s, &err);
    if (w->status) return NULL;
    for (int r = 0; r < 5 && !w->status; r++) w->status = rectify_session_run(s, w->in, 2 * w->n, &err);
    rectify_tensor t;
    if (!w->status) w->status = rectify_session_output(s, 0, &t);
    if (!w->status) memcpy(w->out, t.data + 10, sizeof w->out);
    rectify_session_destroy(s);
    return NULL;
}

Test(embed, sessions_on_threads_share_a_model_and_an_allocator)
{
    counter c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    rectify_allocator a = {count_alloc, count_free, &c};
    rectify_load_options options = {.allocator = &a};
    rectify_model *m = load(&options);
    float *in = samples(m);
    const size_t n = rectify_model_input_size(m);
    worker_arg w[4];
    pthread_t ids[4];
    for (int t = 0; t < 4; t++) {
        w[t] = (worker_arg){.model = m, .in = in + 2 * t * n, .n = n};
        cr_assert_eq(pthread_create(&ids[t], NULL, worker, &w[t]), 0);
    }
    for (int t = 0; t < 4; t++) pthread_join(ids[t], NULL);
    rectify_session *s = session(m, 1, 1);
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(w[t].status, RECTIFY_OK, "thread %d", t);
        run(s, in + (2 * t + 1) * n, n);
        rectify_tensor single;
        rectify_session_output(s, 0, &single);
        assert_close(w[t].out, single.data, 10, "a thread's second sample");
    }
    rectify_session_destroy(s);
    rectify_model_destroy(m);
    cr_assert_eq(live(&c), 0);
    cr_assert_eq(c.allocs, c.frees);
    free(in);
}
