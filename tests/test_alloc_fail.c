/* test_alloc_fail.c: allocation failure through the allocator hook
   (rectify_load_options.allocator). For every N along a model load (from
   the folder of models/lenet5-mnist, and from memory), a session's creation
   and a run that needs new scratch, the N-th allocation fails: the call
   must return NOMEM, leave *model / *session NULL, and hold nothing (every
   block the hook gave is freed); a run that failed leaves its session
   usable, and its next run gives the same outputs as a clean session. The
   sanitizer build adds LeakSanitizer for the memory that does not go
   through the hook (tests/test_malloc_fail.c fails that too). */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rectify.h"

#define LENET TEST_SOURCE_ROOT "/models/lenet5-mnist"

/* The hook: counts the blocks it gave and not yet took back, and fails the
   fail_at-th request (counting from 1; 0: never). */
typedef struct counting {
    atomic_long requests, live;
    long fail_at;
} counting;

static void *counting_alloc(void *user, size_t size)
{
    counting *c = user;
    long n = atomic_fetch_add(&c->requests, 1) + 1;
    if (c->fail_at && n == c->fail_at) return NULL;
    void *p = malloc(size);
    if (p) atomic_fetch_add(&c->live, 1);
    return p;
}

static void counting_free(void *user, void *p)
{
    counting *c = user;
    if (p) atomic_fetch_sub(&c->live, 1);
    free(p);
}

static void arm(counting *c, long fail_at)
{
    atomic_store(&c->requests, 0);
    c->fail_at = fail_at;
}

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *size = (size_t)n;
    return buf;
}

typedef struct memory_model {
    char *json, *weights, *labels;
    size_t json_size, weights_size, labels_size;
} memory_model;

static memory_model read_lenet(void)
{
    memory_model mm;
    mm.json = read_all(LENET "/model.json", &mm.json_size);
    mm.weights = read_all(LENET "/weights.safetensors", &mm.weights_size);
    mm.labels = read_all(LENET "/labels.txt", &mm.labels_size);
    return mm;
}

static void free_lenet(memory_model *mm)
{
    free(mm->json), free(mm->weights), free(mm->labels);
}

static rectify_status load(const memory_model *mm, const rectify_allocator *a, rectify_model **m, rectify_error *err)
{
    rectify_load_options options = {.allocator = a};
    if (!mm) return rectify_model_load(LENET, &options, m, err);
    return rectify_model_load_memory(mm->json, mm->json_size, mm->weights, mm->weights_size, mm->labels, &options,
                                     m, err);
}

/* Fails each allocation of a load in turn; returns how many there were. */
static long fail_every_load_allocation(const memory_model *mm)
{
    counting c = {0};
    rectify_allocator a = {counting_alloc, counting_free, &c};
    rectify_error err;
    rectify_model *m = NULL;
    arm(&c, 0);
    cr_assert_eq(load(mm, &a, &m, &err), RECTIFY_OK, "%s", err.message);
    long total = atomic_load(&c.requests);
    cr_assert_gt(total, 3, "a load makes only %ld allocations through the hook", total);
    rectify_model_destroy(m);
    cr_assert_eq(atomic_load(&c.live), 0, "the model left %ld blocks after its destroy", atomic_load(&c.live));
    for (long n = 1; n <= total; n++) {
        arm(&c, n);
        m = (rectify_model *)&c; /* not NULL: the load must clear it */
        rectify_status st = load(mm, &a, &m, &err);
        cr_expect_eq(st, RECTIFY_ERR_NOMEM, "allocation %ld of %ld failed: status %s, \"%s\"", n, total,
                     rectify_status_name(st), err.message);
        cr_expect_eq(err.status, st);
        cr_expect_null(m, "allocation %ld of %ld failed: *model is not NULL", n, total);
        cr_expect_eq(atomic_load(&c.live), 0, "allocation %ld of %ld failed: %ld blocks left allocated", n, total,
                     atomic_load(&c.live));
        if (st == RECTIFY_OK) rectify_model_destroy(m);
    }
    /* And after all that, a load with nothing failing still works. */
    arm(&c, 0);
    cr_assert_eq(load(mm, &a, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_model_destroy(m);
    cr_expect_eq(atomic_load(&c.live), 0);
    return total;
}

Test(alloc_fail, model_load_from_folder)
{
    long total = fail_every_load_allocation(NULL);
    cr_log_info("model load from the folder: %ld allocations, each failed in turn", total);
}

Test(alloc_fail, model_load_from_memory)
{
    memory_model mm = read_lenet();
    long total = fail_every_load_allocation(&mm);
    cr_log_info("model load from memory: %ld allocations, each failed in turn", total);
    free_lenet(&mm);
}

Test(alloc_fail, graph_only_load)
{
    memory_model mm = read_lenet();
    counting c = {0};
    rectify_allocator a = {counting_alloc, counting_free, &c};
    rectify_load_options options = {.allocator = &a, .graph_only = 1};
    rectify_error err;
    rectify_model *m = NULL;
    arm(&c, 0);
    cr_assert_eq(rectify_model_load_memory(mm.json, mm.json_size, NULL, 0, NULL, &options, &m, &err), RECTIFY_OK);
    long total = atomic_load(&c.requests);
    rectify_model_destroy(m);
    for (long n = 1; n <= total; n++) {
        arm(&c, n);
        rectify_status st = rectify_model_load_memory(mm.json, mm.json_size, NULL, 0, NULL, &options, &m, &err);
        cr_expect_eq(st, RECTIFY_ERR_NOMEM, "allocation %ld of %ld: %s", n, total, err.message);
        cr_expect_null(m);
        cr_expect_eq(atomic_load(&c.live), 0);
    }
    cr_log_info("graph-only load from memory: %ld allocations, each failed in turn", total);
    free_lenet(&mm);
}

/* The ten samples' first output, from a session that never failed. */
static void reference_outputs(const rectify_model *m, const float *inputs, size_t n, float *out, size_t outputs)
{
    rectify_session *s;
    rectify_error err;
    rectify_session_options so = {.threads = 1};
    cr_assert_eq(rectify_session_create(m, &so, &s, &err), RECTIFY_OK, "%s", err.message);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(rectify_session_run(s, inputs + i * n, n, &err), RECTIFY_OK, "%s", err.message);
        rectify_tensor t;
        cr_assert_eq(rectify_session_output(s, 0, &t), RECTIFY_OK);
        cr_assert_eq((size_t)t.elements, outputs);
        memcpy(out + i * outputs, t.data, outputs * sizeof *out);
    }
    rectify_session_destroy(s);
}

Test(alloc_fail, session_create_and_run)
{
    counting c = {0};
    rectify_allocator a = {counting_alloc, counting_free, &c};
    rectify_error err;
    rectify_model *m = NULL;
    arm(&c, 0);
    cr_assert_eq(load(NULL, &a, &m, &err), RECTIFY_OK, "%s", err.message);
    const long model_blocks = atomic_load(&c.live);
    const size_t n = rectify_model_input_size(m), outputs = 10;
    float *inputs = malloc(10 * n * sizeof *inputs), expected[10 * 10];
    for (int i = 0; i < 10; i++) {
        char path[512];
        snprintf(path, sizeof path, LENET "/samples/digit-%d.png", i);
        cr_assert_eq(rectify_image_load(m, path, inputs + i * n, n, &err), RECTIFY_OK, "%s", err.message);
    }
    reference_outputs(m, inputs, n, expected, outputs);

    /* Creation: threads 1, batch 2; then every allocation failed in turn. */
    rectify_session_options so = {.threads = 1, .batch = 2};
    rectify_session *s = NULL;
    arm(&c, 0);
    cr_assert_eq(rectify_session_create(m, &so, &s, &err), RECTIFY_OK, "%s", err.message);
    long total = atomic_load(&c.requests);
    rectify_session_destroy(s);
    cr_assert_eq(atomic_load(&c.live), model_blocks);
    for (long k = 1; k <= total; k++) {
        arm(&c, k);
        s = (rectify_session *)&c;
        rectify_status st = rectify_session_create(m, &so, &s, &err);
        cr_expect_eq(st, RECTIFY_ERR_NOMEM, "allocation %ld of %ld: status %s, \"%s\"", k, total,
                     rectify_status_name(st), err.message);
        cr_expect_null(s, "allocation %ld of %ld failed: *session is not NULL", k, total);
        cr_expect_eq(atomic_load(&c.live), model_blocks, "allocation %ld of %ld failed: %ld blocks left", k, total,
                     atomic_load(&c.live) - model_blocks);
        if (st == RECTIFY_OK) rectify_session_destroy(s);
    }
    cr_log_info("session create: %ld allocations, each failed in turn", total);

    /* A run on more threads than before needs new scratch: that allocation
       fails, the run returns NOMEM and the session stays usable. */
    so.batch = 1;
    arm(&c, 0);
    cr_assert_eq(rectify_session_create(m, &so, &s, &err), RECTIFY_OK, "%s", err.message);
    const long session_blocks = atomic_load(&c.live);
    cr_assert_eq(rectify_session_run(s, inputs, n, &err), RECTIFY_OK, "%s", err.message);
    cr_expect_eq(atomic_load(&c.live), session_blocks, "a run on the session's threads allocated");
    int runs_failed = 0;
    for (int threads = 2; threads <= 4; threads++) {
        rectify_session_set_threads(s, threads);
        arm(&c, 1);
        rectify_status st = rectify_session_run(s, inputs + threads * n, n, &err);
        cr_expect_eq(st, RECTIFY_ERR_NOMEM, "a run on %d threads whose scratch cannot be allocated: %s", threads,
                     rectify_status_name(st));
        runs_failed += st == RECTIFY_ERR_NOMEM;
        cr_expect_eq(atomic_load(&c.live), session_blocks, "the failed run left blocks");
        rectify_tensor t;
        /* Back to a normal allocator: the same session runs, on those threads. */
        arm(&c, 0);
        for (int i = 0; i < 10; i++) {
            cr_assert_eq(rectify_session_run(s, inputs + i * n, n, &err), RECTIFY_OK, "%s", err.message);
            cr_assert_eq(rectify_session_output(s, 0, &t), RECTIFY_OK);
            cr_expect(memcmp(t.data, expected + i * outputs, outputs * sizeof(float)) == 0,
                      "sample %d after a failed run on %d threads differs from a clean session", i, threads);
        }
    }
    cr_log_info("session run: %d runs whose scratch allocation failed, each followed by good runs", runs_failed);
    rectify_session_destroy(s);
    cr_expect_eq(atomic_load(&c.live), model_blocks);
    rectify_model_destroy(m);
    cr_expect_eq(atomic_load(&c.live), 0, "%ld blocks left after destroying everything", atomic_load(&c.live));
    free(inputs);
}
