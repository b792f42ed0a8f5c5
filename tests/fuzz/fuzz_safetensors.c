/* fuzz_safetensors.c: the safetensors reader. The input is the bytes of a
   weights file, bound against two fixed graphs: a tiny one (conv with and
   without bias, pool, dense) and the shipped lenet5-mnist. A file that
   binds is run once; one refused for NaN or infinity is loaded again with
   allow_nonfinite and run, so non-finite values go through every kernel.
   A file that binds to the tiny graph is also packed (packed.c): the packed
   file must load back and compute the same outputs, and again with one
   byte of its table changed (where and to what: from the input) it must
   load and run or be refused cleanly. */
#include <unistd.h>

#include "fuzz.h"

#ifndef FUZZ_SOURCE_ROOT
#  error "build with -DFUZZ_SOURCE_ROOT=\"...\" (tests/fuzz/build.sh does)"
#endif

static const char tiny_json[] =
    "{\"format\": \"rectify\", \"version\": 1, \"name\": \"tiny\","
    " \"input\": {\"name\": \"x\", \"shape\": [2, 6, 6]},"
    " \"layers\": ["
    "  {\"name\": \"c1\", \"op\": \"conv\", \"out_channels\": 4, \"kernel\": 3, \"padding\": 1},"
    "  {\"name\": \"r\", \"op\": \"relu\"},"
    "  {\"name\": \"p\", \"op\": \"maxpool\", \"kernel\": 2},"
    "  {\"name\": \"c2\", \"op\": \"conv\", \"out_channels\": 2, \"kernel\": 1, \"bias\": false},"
    "  {\"name\": \"f\", \"op\": \"flatten\"},"
    "  {\"name\": \"fc\", \"op\": \"dense\", \"units\": 3},"
    "  {\"name\": \"prob\", \"op\": \"softmax\"}]}";

static char *lenet_json;
static size_t lenet_size;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FILE *f = fopen(FUZZ_SOURCE_ROOT "/models/lenet5-mnist/model.json", "rb");
    FUZZ_CHECK(f != NULL);
    lenet_json = malloc(1 << 16);
    lenet_size = fread(lenet_json, 1, 1 << 16, f);
    fclose(f);
    FUZZ_CHECK(lenet_size > 0 && lenet_size < (1 << 16));
    return 0;
}

/* Output 0 of one run (malloc'd, *count floats), or NULL when the run failed. */
static float *run_output(const rectify_model *m, const float *input, size_t n, int64_t *count)
{
    rectify_session_options so = {.threads = 1};
    rectify_session *s = NULL;
    rectify_error err;
    FUZZ_CHECK(rectify_session_create(m, &so, &s, &err) == RECTIFY_OK);
    float *out = NULL;
    rectify_tensor t;
    if (fuzz_run(s, m, input, n) == RECTIFY_OK && rectify_session_output(s, 0, &t) == RECTIFY_OK) {
        out = malloc((size_t)t.elements * sizeof *out);
        memcpy(out, t.data, (size_t)t.elements * sizeof *out);
        *count = t.elements;
    }
    rectify_session_destroy(s);
    return out;
}

static void try_packed(const char *json, size_t json_size, const rectify_model *m, const float *input, size_t n,
                       const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/rectify-fuzz-%d.rxpack", (int)getpid());
    rectify_error err;
    FUZZ_CHECK(rectify_model_save_packed(m, path, &err) == RECTIFY_OK);
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    size_t packed_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *packed = malloc(packed_size);
    FUZZ_CHECK(fread(packed, 1, packed_size, f) == packed_size);
    fclose(f);
    unlink(path);
    rectify_load_options options = {.allow_nonfinite = 1};
    rectify_model *back = NULL;
    FUZZ_CHECK(rectify_model_load_memory(json, json_size, packed, packed_size, NULL, &options, &back, &err) ==
               RECTIFY_OK);
    int64_t want_n = 0, got_n = 0;
    float *want = run_output(m, input, n, &want_n), *got = run_output(back, input, n, &got_n);
    FUZZ_CHECK(want && got && want_n == got_n && memcmp(want, got, (size_t)want_n * sizeof *want) == 0);
    rectify_model_destroy(back);
    free(want);
    free(got);
    /* One byte of the header or the table changed. */
    size_t table = 48 + 200 * (size_t)rectify_model_tensor_count(m);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    packed[h % table] ^= (uint8_t)(h >> 24 | 1);
    rectify_status st = rectify_model_load_memory(json, json_size, packed, packed_size, NULL, &options, &back, &err);
    if (st == RECTIFY_OK) {
        free(run_output(back, input, n, &got_n));
        rectify_model_destroy(back);
    } else {
        FUZZ_CHECK(back == NULL);
        fuzz_check_failure(st, &err);
    }
    free(packed);
}

static void try_model(const char *json, size_t json_size, const uint8_t *data, size_t size)
{
    rectify_load_options options = {0};
    rectify_model *m = NULL;
    rectify_error err;
    rectify_status st = rectify_model_load_memory(json, json_size, data, size, NULL, &options, &m, &err);
    if (st == RECTIFY_ERR_INVALID) {
        /* allow_nonfinite changes only the outcome of non-finite weights. */
        FUZZ_CHECK(m == NULL);
        options.allow_nonfinite = 1;
        rectify_error first = err;
        st = rectify_model_load_memory(json, json_size, data, size, NULL, &options, &m, &err);
        if (st == RECTIFY_OK) {
            FUZZ_CHECK(strstr(first.message, "infinite values (of ") != NULL);
        } else if (st != RECTIFY_ERR_INVALID || strcmp(first.message, err.message) != 0) {
            fprintf(stderr, "without allow_nonfinite: %s\nwith it: %s\n", first.message, err.message);
            abort();
        }
    }
    if (st != RECTIFY_OK) {
        FUZZ_CHECK(m == NULL);
        fuzz_check_failure(st, &err);
        return;
    }
    fuzz_walk_model(m);
    rectify_session_options so = {.threads = 1};
    rectify_session *s = NULL;
    FUZZ_CHECK(rectify_session_create(m, &so, &s, &err) == RECTIFY_OK);
    size_t n = rectify_model_input_size(m);
    float *input = malloc(n * sizeof *input);
    for (size_t i = 0; i < n; i++) input[i] = (float)((i * 7919) % 23) / 11.0f - 1.0f;
    FUZZ_CHECK(fuzz_run(s, m, input, n) == RECTIFY_OK);
    if (json == tiny_json) try_packed(json, json_size, m, input, n, data, size);
    free(input);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each graph gets the files whose size could be its (tiny: about 600
       bytes, lenet5-mnist: 248 kB in F32, 124 kB in F16), with a wide
       overlap: the header's checks run either way, at half the cost. */
    if (size < 65536) try_model(tiny_json, sizeof tiny_json - 1, data, size);
    if (size >= 2048) try_model(lenet_json, lenet_size, data, size);
    return 0;
}
