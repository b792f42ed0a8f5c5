/* test_malloc_fail.c: allocation failure outside the allocator hook. This
   executable alone is linked with -Wl,--wrap=malloc,--wrap=calloc,
   --wrap=realloc,--wrap=free, so every malloc of the engine's own code
   (the JSON checks, the loader's and planner's temporaries, image.c's
   buffers, stb_image and stb_image_resize, which are compiled into the
   engine) comes here; cJSON, a shared library, is pointed here with
   cJSON_InitHooks. For every N along a model load (folder and memory), a
   graph-only load, and the decoding of a PNG and a JPEG (with resize and
   crop), the N-th malloc fails: the call must fail with NOMEM, never
   crash, leave *model NULL, and free what it took (counted here; the
   sanitizer build adds LeakSanitizer). A plain program, not Criterion, so
   that nothing else allocates while a failure is armed; prints
   "N passed, N failed". */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rectify.h"

#define LENET TEST_SOURCE_ROOT "/models/lenet5-mnist"

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

static long requests, live, fail_at; /* fail_at: 0 never */

static int fail_now(void)
{
    requests++;
    return fail_at && requests == fail_at;
}

void *__wrap_malloc(size_t size)
{
    if (fail_now()) return NULL;
    void *p = __real_malloc(size);
    if (p) live++;
    return p;
}

void *__wrap_calloc(size_t count, size_t size)
{
    if (fail_now()) return NULL;
    void *p = __real_calloc(count, size);
    if (p) live++;
    return p;
}

void *__wrap_realloc(void *old, size_t size)
{
    if (fail_now()) return NULL;
    void *p = __real_realloc(old, size);
    if (p && !old) live++;
    if (!p && old && size == 0) live--;
    return p;
}

void __wrap_free(void *p)
{
    if (p) live--;
    __real_free(p);
}

static void *cjson_malloc(size_t size) { return __wrap_malloc(size); }
static void cjson_free(void *p) { __wrap_free(p); }

static int passed, failed, problems; /* cases (one per scenario); problems in the current one */

static void check(int ok, const char *what, long n, const char *detail)
{
    if (ok) return;
    if (++problems <= 10) printf("FAIL %s, allocation %ld: %s\n", what, n, detail);
}

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) { printf("cannot open %s\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = __real_malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    buf[n] = '\0';
    *size = (size_t)n;
    return buf;
}

typedef rectify_status (*operation)(void *ctx, rectify_error *err);

/* Runs op with no failure to count its allocations, then once per N with
   the N-th failing. Each failure must be an error that leaves nothing
   behind. Tallies the statuses seen. */
static void fail_each(const char *what, operation op, void *ctx)
{
    rectify_error err;
    long base = live;
    problems = 0;
    requests = 0, fail_at = 0;
    rectify_status st = op(ctx, &err);
    long total = requests;
    check(st == RECTIFY_OK, what, 0, err.message);
    check(live == base, what, 0, "blocks left after a clean run");
    int statuses[8] = {0};
    for (long n = 1; n <= total; n++) {
        requests = 0, fail_at = n;
        st = op(ctx, &err);
        fail_at = 0;
        statuses[st < 8 ? st : 7]++;
        char detail[700];
        snprintf(detail, sizeof detail, "status %s, \"%s\"", rectify_status_name(st), err.message);
        /* Out of memory must read as such, wherever it happened (cJSON,
           stb, the engine's temporaries): never as bad data, never passed
           over (a check skipped for want of memory). */
        check(st == RECTIFY_ERR_NOMEM, what, n, detail);
        check(err.status == st, what, n, "err.status differs from the status returned");
        snprintf(detail, sizeof detail, "%ld blocks left (status %s)", live - base, rectify_status_name(st));
        check(live == base, what, n, detail);
    }
    printf("%-4s %-34s %4ld mallocs, each failed in turn: %d nomem, %ld other\n", problems ? "FAIL" : "ok", what,
           total, statuses[RECTIFY_ERR_NOMEM], total - statuses[RECTIFY_ERR_NOMEM]);
    if (problems) failed++;
    else passed++;
}

typedef struct load_ctx {
    const char *json, *weights, *labels;
    size_t json_size, weights_size;
    int graph_only;
} load_ctx;

static rectify_status load_folder(void *ctx, rectify_error *err)
{
    (void)ctx;
    rectify_model *m = (rectify_model *)err;
    rectify_status st = rectify_model_load(LENET, NULL, &m, err);
    if (st != RECTIFY_OK && m != NULL) { check(0, "load from the folder", requests, "*model not NULL"); m = NULL; }
    rectify_model_destroy(m);
    return st;
}

static rectify_status load_memory(void *ctx, rectify_error *err)
{
    load_ctx *c = ctx;
    rectify_load_options options = {.graph_only = c->graph_only};
    rectify_model *m = (rectify_model *)err;
    rectify_status st = rectify_model_load_memory(c->json, c->json_size, c->graph_only ? NULL : c->weights,
                                                  c->graph_only ? 0 : c->weights_size, c->labels, &options, &m, err);
    if (st != RECTIFY_OK && m != NULL) { check(0, "load from memory", requests, "*model not NULL"); m = NULL; }
    rectify_model_destroy(m);
    return st;
}

typedef struct image_ctx {
    const rectify_model *model;
    const char *bytes;
    size_t size;
    float *out;
} image_ctx;

static rectify_status load_image(void *ctx, rectify_error *err)
{
    image_ctx *c = ctx;
    return rectify_image_load_memory(c->model, c->bytes, c->size, c->out, rectify_model_input_size(c->model), err);
}

static rectify_model *graph_model(const char *json)
{
    rectify_load_options options = {.graph_only = 1};
    rectify_model *m = NULL;
    rectify_error err;
    if (rectify_model_load_memory(json, strlen(json), NULL, 0, NULL, &options, &m, &err)) {
        printf("%s\n", err.message);
        exit(1);
    }
    return m;
}

int main(void)
{
    cJSON_Hooks hooks = {cjson_malloc, cjson_free};
    cJSON_InitHooks(&hooks);
    load_ctx lc = {0};
    size_t labels_size;
    lc.json = read_all(LENET "/model.json", &lc.json_size);
    lc.weights = read_all(LENET "/weights.safetensors", &lc.weights_size);
    lc.labels = read_all(LENET "/labels.txt", &labels_size);

    fail_each("model load (folder)", load_folder, NULL);
    fail_each("model load (memory)", load_memory, &lc);
    lc.graph_only = 1;
    fail_each("model load (memory, graph only)", load_memory, &lc);

    /* Images: lenet5-mnist's gray 28x28 sample into a model that resizes it
       to 20x24 and crops 16x16, and an RGB JPEG into gray and RGB. */
    rectify_model *gray = graph_model(
        "{\"format\": \"rectify\", \"version\": 1, \"name\": \"g\", \"input\": {\"shape\": [1, 16, 16],"
        " \"preprocess\": {\"color\": \"gray\", \"resize\": [20, 24], \"crop\": [16, 16]}},"
        " \"layers\": [{\"name\": \"f\", \"op\": \"flatten\"}]}");
    rectify_model *rgb = graph_model(
        "{\"format\": \"rectify\", \"version\": 1, \"name\": \"c\", \"input\": {\"shape\": [3, 8, 8],"
        " \"preprocess\": {\"color\": \"rgb\", \"resize\": [11, 9], \"crop\": [8, 8]}},"
        " \"layers\": [{\"name\": \"f\", \"op\": \"flatten\"}]}");
    float *out = __real_malloc(3 * 16 * 16 * sizeof *out);
    image_ctx ic = {gray, NULL, 0, out};
    ic.bytes = read_all(LENET "/samples/digit-3.png", &ic.size);
    fail_each("image decode (PNG, resize, crop)", load_image, &ic);
    __real_free((void *)ic.bytes);
    ic.bytes = read_all(TEST_SOURCE_ROOT "/tests/fuzz/seeds/image/rgb.jpg", &ic.size);
    fail_each("image decode (JPEG to gray)", load_image, &ic);
    ic.model = rgb;
    fail_each("image decode (JPEG to RGB)", load_image, &ic);
    __real_free((void *)ic.bytes);
    __real_free(out);
    rectify_model_destroy(gray);
    rectify_model_destroy(rgb);
    __real_free((void *)lc.json), __real_free((void *)lc.weights), __real_free((void *)lc.labels);
    cJSON_InitHooks(NULL);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
