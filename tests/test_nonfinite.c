/* test_nonfinite.c: NaN and infinity in weight tensors. By default a load
   fails (INVALID) naming the first such tensor, how many of its values are
   NaN and how many infinite, and how many other tensors hold some; with
   rectify_load_options.allow_nonfinite it loads and runs. F16 and BF16 are
   checked after widening. From memory and from a folder. Also the limits
   this issue added: activation memory at load and at session creation. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rectify.h"
#include "support.h"

#define LENET TEST_SOURCE_ROOT "/models/lenet5-mnist"

static const char json[] =
    "{\"format\": \"rectify\", \"version\": 1, \"name\": \"nf\","
    " \"input\": {\"name\": \"x\", \"shape\": [1, 4, 4]},"
    " \"layers\": [{\"name\": \"c1\", \"op\": \"conv\", \"out_channels\": 2, \"kernel\": 3},"
    "  {\"name\": \"f\", \"op\": \"flatten\"},"
    "  {\"name\": \"fc\", \"op\": \"dense\", \"units\": 3}]}";

typedef struct weights {
    float c1w[18], c1b[2], fcw[24], fcb[3];
} weights;

static weights finite(void)
{
    weights w;
    for (int i = 0; i < 18; i++) w.c1w[i] = 0.1f * (float)(i % 5) - 0.2f;
    for (int i = 0; i < 2; i++) w.c1b[i] = 0.05f;
    for (int i = 0; i < 24; i++) w.fcw[i] = 0.01f * (float)(i % 7);
    for (int i = 0; i < 3; i++) w.fcb[i] = -0.1f;
    return w;
}

static rectify_status load(const weights *w, int allow, rectify_model **m, rectify_error *err)
{
    ttensor t[] = {{"c1.weight", 4, {2, 1, 3, 3}, w->c1w}, {"c1.bias", 1, {2}, w->c1b},
                   {"fc.weight", 2, {3, 8}, w->fcw}, {"fc.bias", 1, {3}, w->fcb}};
    size_t size;
    unsigned char *file = st_build(t, 4, &size);
    rectify_load_options options = {.allow_nonfinite = allow};
    rectify_status st = rectify_model_load_memory(json, strlen(json), file, size, NULL, &options, m, err);
    free(file);
    return st;
}

Test(nonfinite, finite_weights_load)
{
    weights w = finite();
    rectify_model *m;
    rectify_error err;
    cr_assert_eq(load(&w, 0, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_model_destroy(m);
}

Test(nonfinite, nan_and_inf_fail_naming_the_tensor)
{
    weights w = finite();
    w.fcw[3] = NAN;
    w.fcw[7] = -NAN;
    w.fcw[20] = INFINITY;
    rectify_model *m = (rectify_model *)&w;
    rectify_error err;
    cr_assert_eq(load(&w, 0, &m, &err), RECTIFY_ERR_INVALID);
    cr_expect_null(m);
    cr_expect(strstr(err.message, "tensor \"fc.weight\" holds 2 NaN and 1 infinite values (of 24)") != NULL, "%s",
              err.message);
    cr_expect(strstr(err.message, "allow_nonfinite") != NULL, "%s", err.message);
    cr_expect(strstr(err.message, "more tensor") == NULL, "%s", err.message);
}

Test(nonfinite, first_tensor_named_and_the_others_counted)
{
    weights w = finite();
    w.c1b[1] = -INFINITY;
    w.fcw[0] = NAN;
    w.fcb[2] = INFINITY;
    rectify_model *m;
    rectify_error err;
    cr_assert_eq(load(&w, 0, &m, &err), RECTIFY_ERR_INVALID);
    cr_expect(strstr(err.message, "tensor \"c1.bias\" holds 0 NaN and 1 infinite values (of 2)") != NULL, "%s",
              err.message);
    cr_expect(strstr(err.message, "and 2 more tensors hold some") != NULL, "%s", err.message);
}

Test(nonfinite, allowed_they_load_and_run)
{
    weights w = finite();
    w.fcw[0] = NAN;
    rectify_model *m;
    rectify_error err;
    cr_assert_eq(load(&w, 1, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_session *s;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_OK, "%s", err.message);
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = 1.0f;
    cr_assert_eq(rectify_session_run(s, x, 16, &err), RECTIFY_OK, "%s", err.message);
    rectify_tensor t;
    cr_assert_eq(rectify_session_output(s, 0, &t), RECTIFY_OK);
    cr_expect(isnan(t.data[0]), "output 0 reads the NaN weight: %g", t.data[0]);
    cr_expect(isfinite(t.data[1]) && isfinite(t.data[2]));
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

/* A safetensors file of the nf model with every tensor in F16 or BF16. */
static unsigned char *half_file(const char *dtype, uint16_t special, int at, size_t *size)
{
    static const char *names[] = {"c1.weight", "c1.bias", "fc.weight", "fc.bias"};
    static const char *shapes[] = {"[2,1,3,3]", "[2]", "[3,8]", "[3]"};
    static const int counts[] = {18, 2, 24, 3};
    char header[1024];
    int used = snprintf(header, sizeof header, "{");
    int offset = 0;
    for (int i = 0; i < 4; i++) {
        used += snprintf(header + used, sizeof header - (size_t)used, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,"
                         "\"data_offsets\":[%d,%d]}", i ? "," : "", names[i], dtype, shapes[i], offset,
                         offset + 2 * counts[i]);
        offset += 2 * counts[i];
    }
    used += snprintf(header + used, sizeof header - (size_t)used, "}");
    *size = 8 + (size_t)used + (size_t)offset;
    unsigned char *file = calloc(1, *size);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)used >> (8 * i));
    memcpy(file + 8, header, (size_t)used);
    unsigned char *data = file + 8 + used;
    for (int i = 0; i < offset / 2; i++) { /* 0.25 in both formats */
        uint16_t v = strcmp(dtype, "F16") == 0 ? 0x3400 : 0x3e80;
        if (i == at) v = special;
        data[2 * i] = (unsigned char)v, data[2 * i + 1] = (unsigned char)(v >> 8);
    }
    return file;
}

Test(nonfinite, half_precision_checked_after_widening)
{
    struct { const char *dtype; uint16_t value; const char *what; } cases[] = {
        {"F16", 0x7c00, "0 NaN and 1 infinite"}, {"F16", 0xfe00, "1 NaN and 0 infinite"},
        {"BF16", 0xff80, "0 NaN and 1 infinite"}, {"BF16", 0x7fc1, "1 NaN and 0 infinite"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t size;
        unsigned char *file = half_file(cases[k].dtype, cases[k].value, 20, &size); /* c1.bias[0]... fc.weight[0] */
        rectify_model *m;
        rectify_error err;
        rectify_load_options options = {0};
        rectify_status st = rectify_model_load_memory(json, strlen(json), file, size, NULL, &options, &m, &err);
        cr_expect_eq(st, RECTIFY_ERR_INVALID, "%s 0x%04x: %s", cases[k].dtype, cases[k].value, err.message);
        cr_expect(strstr(err.message, "\"fc.weight\"") && strstr(err.message, cases[k].what), "%s: %s",
                  cases[k].dtype, err.message);
        options.allow_nonfinite = 1;
        cr_expect_eq(rectify_model_load_memory(json, strlen(json), file, size, NULL, &options, &m, &err), RECTIFY_OK,
                     "%s", err.message);
        rectify_model_destroy(m);
        free(file);
    }
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "%s -> %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

/* lenet5-mnist copied to a temporary folder, one float of conv2.weight
   turned into NaN: rectify_model_load names the file and the tensor. */
Test(nonfinite, from_a_folder)
{
    char dir[] = "/tmp/rectify-nonfinite-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256], json_path[256];
    snprintf(json_path, sizeof json_path, "%s/model.json", dir);
    copy_file(LENET "/model.json", json_path);
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    copy_file(LENET "/labels.txt", path);
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    copy_file(LENET "/weights.safetensors", path);
    /* Find conv2.weight's data offset from the header. */
    FILE *f = fopen(path, "r+b");
    unsigned char len8[8];
    cr_assert_eq(fread(len8, 1, 8, f), 8);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | len8[i];
    char *text = calloc(1, header + 1);
    cr_assert_eq(fread(text, 1, header, f), header);
    const char *entry = strstr(text, "\"conv2.weight\"");
    cr_assert_not_null(entry);
    const char *offsets = strstr(entry, "data_offsets");
    cr_assert_not_null(offsets);
    long begin = strtol(strchr(offsets, '[') + 1, NULL, 10);
    float nan = NAN;
    fseek(f, (long)(8 + header) + begin + 4 * 17, SEEK_SET);
    fwrite(&nan, 4, 1, f);
    fclose(f);
    free(text);

    rectify_model *m;
    rectify_error err;
    cr_expect_eq(rectify_model_load(dir, NULL, &m, &err), RECTIFY_ERR_INVALID);
    cr_expect(strstr(err.message, path) == err.message, "the message starts with the file: %s", err.message);
    cr_expect(strstr(err.message, "tensor \"conv2.weight\" holds 1 NaN and 0 infinite values (of 2400)") != NULL,
              "%s", err.message);
    rectify_load_options options = {.allow_nonfinite = 1};
    cr_expect_eq(rectify_model_load(dir, &options, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_model_destroy(m);
    /* graph only: the weights are not read, nothing to check */
    options = (rectify_load_options){.graph_only = 1};
    cr_expect_eq(rectify_model_load(dir, &options, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_model_destroy(m);
    unlink(path);
    unlink(json_path);
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- RECTIFY_MAX_ACTIVATION_BYTES ---- */

Test(limits, activations_of_one_sample_over_the_limit_fail_the_load)
{
    /* Five tensors of 2^30 floats (4 GiB) alive at once: each is within
       RECTIFY_MAX_ELEMENTS, together they are 20 GiB. Graph only: nothing
       is allocated for them either way. */
    const char *text =
        "{\"format\": \"rectify\", \"version\": 1, \"name\": \"big\","
        " \"input\": {\"shape\": [1024, 1024, 1024]},"
        " \"layers\": [{\"name\": \"s\", \"op\": \"sigmoid\", \"inputs\": [\"input\"]},"
        "  {\"name\": \"t\", \"op\": \"tanh\", \"inputs\": [\"input\"]},"
        "  {\"name\": \"u\", \"op\": \"sigmoid\", \"inputs\": [\"input\"]},"
        "  {\"name\": \"a\", \"op\": \"add\", \"inputs\": [\"s\", \"t\", \"u\", \"input\"]}]}";
    rectify_load_options options = {.graph_only = 1};
    rectify_model *m = (rectify_model *)&options;
    rectify_error err;
    cr_assert_eq(rectify_model_load_memory(text, strlen(text), NULL, 0, NULL, &options, &m, &err), RECTIFY_ERR_LIMIT,
                 "%s", err.message);
    cr_expect_null(m);
    cr_expect(strstr(err.message, "bytes of activations, more than the limit of 17179869184") != NULL, "%s",
              err.message);
}

Test(limits, a_session_over_the_limit_fails_with_limit)
{
    /* lenet5-mnist needs about 10 kB per sample: batch 4096 is fine, but a
       model of 2^28-float layers (1 GiB) with batch 4096 is not. */
    const char *text =
        "{\"format\": \"rectify\", \"version\": 1, \"name\": \"wide\","
        " \"input\": {\"shape\": [1, 16384, 16384]},"
        " \"layers\": [{\"name\": \"r\", \"op\": \"relu\"}]}";
    ttensor none[1] = {{0}};
    rectify_error err;
    rectify_model *m = load_json(text, none, 0, &err);
    cr_assert_not_null(m, "%s", err.message);
    rectify_session_options so = {.threads = 1, .batch = 4096};
    rectify_session *s = (rectify_session *)&so;
    cr_expect_eq(rectify_session_create(m, &so, &s, &err), RECTIFY_ERR_LIMIT, "%s", err.message);
    cr_expect_null(s);
    cr_expect(strstr(err.message, "batch 4096") && strstr(err.message, "limit of 17179869184"), "%s", err.message);
    rectify_model_destroy(m);
}
