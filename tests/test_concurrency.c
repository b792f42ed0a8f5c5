/* test_concurrency.c: one model shared by 8 threads, each with its own
   session, each running different images: the 10 samples of
   models/lenet5-mnist and randomly perturbed copies of them (noise, pixels
   set to zero, a shift), decoded on the threads themselves. Every output
   and every layer's zero count must be identical, bit for bit, to what one
   thread gets running the same images one after another. Meanwhile each
   thread also loads bad models and a bad image: every message must be the
   one the same load gives alone.

   A plain pthreads program (no Criterion), so that tests/tsan.sh builds it
   with ThreadSanitizer too. Prints "N passed, N failed".

   Then the checks of layers that OpenMP threads share inside one session:
   Winograd blocks, and a wide convolution with its fused ReLU.

     test_concurrency [--threads-per-session N] [--rounds R]

   N is each session's OpenMP thread count (default 2: parallel regions
   inside concurrent sessions); R how many times each thread runs its list
   (default 2). */
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rectify.h"
#include "support.h"

#define LENET TEST_SOURCE_ROOT "/models/lenet5-mnist"
#define THREADS 8
#define COPIES 3 /* perturbed copies of each sample, per thread */
#define IMAGES (10 * (1 + COPIES))

static const rectify_model *model;
static size_t input_size;
static int session_threads = 2, rounds = 2;

/* One thread's work and results. */
typedef struct job {
    int index;
    float *inputs;          /* IMAGES x input_size, built on the thread */
    float *outputs;         /* IMAGES x output elements */
    int64_t *zeros;         /* IMAGES x layers */
    int problems;
    char first_problem[600];
} job;

static int64_t output_elements;
static int layer_count;

static void problem(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(job *j, const char *fmt, ...)
{
    if (j->problems++) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->first_problem, sizeof j->first_problem, fmt, ap);
    va_end(ap);
}

static uint64_t next_random(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* The thread's images: decoded here (image loading runs concurrently too),
   then perturbed with the thread's own seed. */
static void build_inputs(job *j)
{
    uint64_t seed = 0x5eed0000u + (uint64_t)j->index;
    float *base = malloc(input_size * sizeof *base);
    for (int d = 0; d < 10; d++) {
        char path[512];
        rectify_error err;
        snprintf(path, sizeof path, LENET "/samples/digit-%d.png", (d + j->index) % 10);
        if (rectify_image_load(model, path, base, input_size, &err)) {
            problem(j, "%s", err.message);
            memset(base, 0, input_size * sizeof *base);
        }
        for (int c = 0; c <= COPIES; c++) {
            float *x = j->inputs + (size_t)(d * (1 + COPIES) + c) * input_size;
            for (size_t i = 0; i < input_size; i++) {
                float v = base[i];
                if (c == 1) v += ((float)(next_random(&seed) % 2001) - 1000.0f) / 2000.0f; /* noise */
                if (c == 2 && next_random(&seed) % 4 == 0) v = 0.0f;                       /* dropped pixels */
                if (c == 3) v = i >= 3 ? base[i - 3] : 0.0f;                               /* shifted */
                x[i] = v;
            }
        }
    }
    free(base);
}

/* Runs the job's images on a new session `rounds` times; the first round
   records, later rounds must repeat it exactly. */
static void run_job(job *j, bool record)
{
    rectify_session_options so = {.threads = session_threads};
    rectify_session *s;
    rectify_error err;
    if (rectify_session_create(model, &so, &s, &err)) {
        problem(j, "%s", err.message);
        return;
    }
    for (int r = 0; r < (record ? 1 : rounds); r++)
        for (int i = 0; i < IMAGES; i++) {
            if (rectify_session_run(s, j->inputs + (size_t)i * input_size, input_size, &err)) {
                problem(j, "%s", err.message);
                continue;
            }
            rectify_tensor t;
            rectify_session_output(s, 0, &t);
            float *want = j->outputs + (size_t)i * (size_t)output_elements;
            if (record) memcpy(want, t.data, (size_t)output_elements * sizeof *want);
            else if (memcmp(want, t.data, (size_t)output_elements * sizeof *want) != 0)
                problem(j, "image %d, round %d: outputs differ from the serial run", i, r);
            for (int l = 0; l < layer_count; l++) {
                rectify_layer_stats st;
                rectify_session_layer_stats(s, l, &st);
                int64_t *z = &j->zeros[(size_t)i * (size_t)layer_count + (size_t)l];
                if (record) *z = st.zeros;
                else if (*z != st.zeros) problem(j, "image %d, layer %d: zero counts differ", i, l);
            }
        }
    rectify_session_destroy(s);
}

/* Loads that fail, on every thread at once, give the messages they give
   alone: no state shared between loads (cJSON's error position, stb's
   failure reason are per call or per thread). */
static const char *const bad_models[] = {
    TEST_SOURCE_ROOT "/tests/data/bad/models/json-error-line-column",
    TEST_SOURCE_ROOT "/tests/data/bad/models/weights-missing-tensor",
    TEST_SOURCE_ROOT "/tests/data/bad/images/truncated.jpg",
};
#define BAD_MODELS 3
static char bad_messages[BAD_MODELS][sizeof(((rectify_error *)0)->message)];

static rectify_status load_bad(int i, rectify_error *err)
{
    if (i == 2) { /* an image */
        float *x = malloc(input_size * sizeof *x);
        rectify_status st = rectify_image_load(model, bad_models[i], x, input_size, err);
        free(x);
        return st;
    }
    rectify_model *m = NULL;
    rectify_status st = rectify_model_load(bad_models[i], NULL, &m, err);
    rectify_model_destroy(m);
    return st;
}

static void *thread_main(void *arg)
{
    job *j = arg;
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < BAD_MODELS; i++) {
            rectify_error err;
            if (load_bad((i + j->index) % BAD_MODELS, &err) == RECTIFY_OK ||
                strcmp(err.message, bad_messages[(i + j->index) % BAD_MODELS]) != 0)
                problem(j, "a failed load on a thread says \"%s\", alone it said \"%s\"", err.message,
                        bad_messages[(i + j->index) % BAD_MODELS]);
        }
    /* The images again, decoded on this thread while the others run: they
       must equal the serial decode. */
    float *serial = j->inputs;
    j->inputs = malloc((size_t)IMAGES * input_size * sizeof(float));
    build_inputs(j);
    if (memcmp(serial, j->inputs, (size_t)IMAGES * input_size * sizeof(float)) != 0)
        problem(j, "thread %d: images decoded on a thread differ from the serial decode", j->index);
    free(j->inputs);
    j->inputs = serial;
    run_job(j, false);
    return NULL;
}

/* One Winograd layer on sessions of `threads` OpenMP threads, which share
   its blocks of tiles: a thread with none left takes products of another's
   (conv.c, wino_help, for blocks of 16M multiply-adds or more; these are
   all above it). Each case runs RUNS times, each time on other inputs,
   every output bit for bit what one thread gives for those inputs (the
   same input every time would let a run reuse the scratch the one before
   left). The layers: shared_winograd_cases (support.h). With `nested`, every run is made from inside a
   2-thread OpenMP region of this program's, where the session's own region
   gets a team of one (it used to wait forever for the missing thread).
   Returns the problems, printed. */
static int winograd_shared(int threads, bool nested)
{
    enum { RUNS = 6 };
    int problems = 0;
    rng r = {7};
    for (size_t i = 0; i < SHARED_WINOGRAD_CASES; i++) {
        const shared_winograd_case *c = &shared_winograd_cases[i];
        const int cin = c->cin, cout = c->cout, side = c->side, batch = c->batch;
        const int64_t in_n = (int64_t)batch * cin * side * side;
        rectify_error err;
        rectify_model *m = winograd_conv(&r, c->variant, cin, cout, side, NULL, NULL, &err);
        float *in = random_floats(&r, in_n * RUNS, -1, 1);
        if (!m) {
            printf("FAIL winograd case %zu: %s\n", i, err.message);
            problems++;
        }
        for (int run = 0; m && run < RUNS; run++) {
            const float *x = in + run * in_n;
            int64_t n1 = 0, n[2] = {0, 0};
            float *one = run_model(m, x, batch, 1, &n1), *got[2] = {NULL, NULL};
            if (nested) {
                #pragma omp parallel num_threads(2)
                got[omp_get_thread_num()] = run_model(m, x, batch, threads, &n[omp_get_thread_num()]);
            } else {
                got[0] = run_model(m, x, batch, threads, &n[0]);
            }
            for (int k = 0; k < (nested ? 2 : 1); k++)
                if (!one || !got[k] || n[k] != n1 || memcmp(got[k], one, (size_t)n1 * sizeof *one) != 0) {
                    printf("FAIL winograd F(%sx%s) %dx%dx%d -> %d, batch %d, run %d%s: differs from one thread\n",
                           c->variant, c->variant, cin, side, side, cout, batch, run,
                           nested ? " (nested in an OpenMP region)" : "");
                    problems++;
                    run = RUNS;
                    break;
                }
            free(one), free(got[0]), free(got[1]);
        }
        free(in);
        rectify_model_destroy(m);
    }
    if (!problems)
        printf("ok   a Winograd layer's blocks shared by %d OpenMP threads%s: 4 layers x %d inputs, bit-exact\n",
               threads, nested ? ", sessions run inside an OpenMP region" : "", RUNS);
    return problems;
}

/* A wide convolution with its ReLU fused (conv.c: with the vector kernels;
   tsan.sh runs this program once more with RECTIFY_ISA=avx2 for it), of
   more than 2^20 multiply-adds a sample, so that `threads` OpenMP threads
   share it, each adding up its zeros in counters of its own that it adds
   into the session's as it moves to another sample (batch 2) and at the
   end. Over RUNS inputs: the outputs and both layers' zeros per channel
   what one thread gives. Returns the problems, printed. */
static int fused_relu_shared(int threads)
{
    enum { RUNS = 4, CIN = 16, COUT = 16, SIDE = 30, BATCH = 2 };
    const char *json = "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[16,30,30]},"
                       "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":16,\"kernel\":5,\"padding\":2},"
                       "{\"name\":\"r\",\"op\":\"relu\"}]}";
    rng r = {11};
    float *w = random_floats(&r, COUT * CIN * 25, -0.1f, 0.1f), *b = random_floats(&r, COUT, -0.5f, 0.5f);
    ttensor t[2] = {{"c.weight", 4, {COUT, CIN, 5, 5}, w}, {"c.bias", 1, {COUT}, b}};
    rectify_error err;
    rectify_model *m = load_json(json, t, 2, &err);
    const int64_t in_n = (int64_t)BATCH * CIN * SIDE * SIDE;
    float *in = random_floats(&r, in_n * RUNS, -1, 1);
    int problems = 0;
    rectify_layer_info info;
    if (!m) {
        printf("FAIL fused ReLU model: %s\n", err.message);
        problems++;
    } else if (rectify_model_layer(m, 1, &info) || info.fused_into != (vector_kernels() ? 0 : -1)) {
        printf("FAIL fused ReLU model: the ReLU is fused into %d\n", info.fused_into);
        problems++;
    }
    rectify_session *s[2] = {NULL, NULL};
    for (int k = 0; k < 2 && !problems; k++) {
        rectify_session_options o = {.threads = k ? threads : 1, .batch = BATCH};
        if (rectify_session_create(m, &o, &s[k], &err)) {
            printf("FAIL fused ReLU session: %s\n", err.message);
            problems++;
        }
    }
    for (int run = 0; run < RUNS && !problems; run++) {
        const float *out[2];
        int64_t zeros[2][2][COUT];
        for (int k = 0; k < 2 && !problems; k++) {
            rectify_tensor o;
            rectify_session_reset_stats(s[k]);
            if (rectify_session_run(s[k], in + run * in_n, (size_t)in_n, &err) || rectify_session_output(s[k], 0, &o) ||
                rectify_session_channel_zeros(s[k], 0, zeros[k][0], COUT) ||
                rectify_session_channel_zeros(s[k], 1, zeros[k][1], COUT)) {
                printf("FAIL fused ReLU run: %s\n", err.message);
                problems++;
            }
            out[k] = o.data;
        }
        if (!problems && (memcmp(out[0], out[1], (size_t)BATCH * COUT * SIDE * SIDE * sizeof(float)) != 0 ||
                          memcmp(zeros[0], zeros[1], sizeof zeros[0]) != 0)) {
            printf("FAIL fused ReLU, run %d on %d OpenMP threads: outputs or zero counts differ from one thread\n", run,
                   threads);
            problems++;
        }
    }
    if (!problems)
        printf("ok   a wide convolution and its ReLU%s shared by %d OpenMP threads: %d inputs, outputs and zeros "
               "bit-exact\n", vector_kernels() ? " (fused)" : "", threads, RUNS);
    rectify_session_destroy(s[0]), rectify_session_destroy(s[1]);
    rectify_model_destroy(m);
    free(w), free(b), free(in);
    return problems;
}

/* Sessions run from inside this program's own 2-thread OpenMP region, one
   per OpenMP thread, on two jobs' images: layers too small for a parallel
   region of their own run without one, and must still compute all their
   outputs (omp_get_thread_num() there is this region's: ReLUs once did
   only that thread's share). Returns the problems, printed. */
static int nested_in_openmp(job *jobs)
{
    int problems = 0;
    #pragma omp parallel num_threads(2) reduction(+ : problems)
    {
        job j = jobs[omp_get_thread_num()];
        j.problems = 0;
        run_job(&j, false);
        if (j.problems) {
            #pragma omp critical
            printf("FAIL job %d run inside an OpenMP region: %d problems; first: %s\n", j.index, j.problems,
                   j.first_problem);
            problems++;
        }
    }
    if (!problems) printf("ok   2 sessions run inside an OpenMP region of 2 threads, bit-exact\n");
    return problems;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads-per-session") == 0) session_threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
    }
    rectify_model *m;
    rectify_error err;
    if (rectify_model_load(LENET, NULL, &m, &err)) {
        printf("%s\n0 passed, 1 failed\n", err.message);
        return 1;
    }
    model = m;
    input_size = rectify_model_input_size(m);
    layer_count = rectify_model_layer_count(m);
    rectify_layer_info info;
    rectify_model_layer(m, rectify_model_output_layer(m, 0), &info);
    output_elements = info.elements;

    static job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        job *j = &jobs[t];
        j->index = t;
        j->inputs = malloc((size_t)IMAGES * input_size * sizeof(float));
        j->outputs = malloc((size_t)IMAGES * (size_t)output_elements * sizeof(float));
        j->zeros = malloc((size_t)IMAGES * (size_t)layer_count * sizeof(int64_t));
        build_inputs(j);
        run_job(j, true); /* serial: one thread, one job after another */
    }
    for (int i = 0; i < BAD_MODELS; i++) {
        rectify_error err;
        if (load_bad(i, &err) == RECTIFY_OK) {
            printf("%s loaded\n0 passed, 1 failed\n", bad_models[i]);
            return 1;
        }
        memcpy(bad_messages[i], err.message, sizeof err.message);
    }
    /* Different threads have different images. */
    int distinct = memcmp(jobs[0].inputs, jobs[1].inputs, (size_t)IMAGES * input_size * sizeof(float)) != 0;

    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&tid[t], NULL, thread_main, &jobs[t]);
    for (int t = 0; t < THREADS; t++) pthread_join(tid[t], NULL);

    int passed = 0, failed = 0;
    if (nested_in_openmp(jobs)) failed++;
    else passed++;
    for (int t = 0; t < THREADS; t++) {
        job *j = &jobs[t];
        if (j->problems) {
            failed++;
            printf("FAIL thread %d: %d problems; first: %s\n", t, j->problems, j->first_problem);
        } else {
            passed++;
            printf("ok   thread %d: %d images x %d rounds on its own session (%d OpenMP threads), bit-exact\n", t,
                   IMAGES, rounds, session_threads);
        }
        free(j->inputs), free(j->outputs), free(j->zeros);
    }
    if (distinct) passed++;
    else {
        failed++;
        printf("FAIL the threads' images are not different\n");
    }
    rectify_model_destroy(m);
    if (session_threads < 2) {
        printf("skip the Winograd sharing checks: sessions of %d OpenMP thread\n", session_threads);
    } else {
        for (int nested = 0; nested <= 1; nested++) {
            if (winograd_shared(session_threads, nested)) failed++;
            else passed++;
        }
        if (fused_relu_shared(session_threads)) failed++;
        else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
