/* test_ops_graph.c: the operators that join branches, concat and add,
   against plain references on random shapes (branches made by random 1x1 or
   3x3 convs and dense layers, the model input itself, an input named twice),
   with 1 and 2 threads and a batch of 1 and 2; a ReLU after an add runs in
   place; shape mismatches and input counts give errors naming the inputs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_runs.h"
#include "support.h"

#define JSON_SIZE 8192

/* A branch of the test graphs: either the model input itself or a conv
   (rank 3) / dense (rank 1) of it, with its reference output. */
typedef struct branch {
    char name[16];
    int channels;        /* C for rank 3, N for rank 1 */
    int k;               /* conv kernel (odd, padded to keep H x W) */
    float *weight, *bias;
    double *ref;         /* its output, channels x plane */
} branch;

static void free_branches(branch *b, int n)
{
    for (int i = 0; i < n; i++) free(b[i].weight), free(b[i].bias), free(b[i].ref);
}

/* Makes n branches of the input (c x h x w, or n_in features for rank 1):
   a branch is the input itself with probability 1/4 when `allow_input` and
   channels fit. Appends the branch layers to json and their tensors to t. */
static void make_branches(rng *r, int rank, const float *in, int c, int h, int w, branch *b, int n,
                          bool same_channels, int fixed_channels, char *json, size_t *used, ttensor *t,
                          int *nt)
{
    int64_t plane = rank == 3 ? (int64_t)h * w : 1;
    int in_features = rank == 3 ? c : c * h * w;
    for (int i = 0; i < n; i++) {
        branch *x = &b[i];
        memset(x, 0, sizeof *x);
        x->channels = same_channels ? fixed_channels : rng_int(r, 1, 9);
        bool is_input = x->channels == (rank == 3 ? c : in_features) && rng_int(r, 0, 3) == 0 && rank == 3;
        x->ref = malloc((size_t)(x->channels * plane) * sizeof *x->ref);
        if (is_input) {
            snprintf(x->name, sizeof x->name, "input");
            for (int64_t e = 0; e < x->channels * plane; e++) x->ref[e] = in[e];
        } else if (rank == 3) {
            snprintf(x->name, sizeof x->name, "b%d", i);
            x->k = rng_int(r, 0, 1) ? 3 : 1;
            int64_t wn = (int64_t)x->channels * c * x->k * x->k;
            x->weight = random_floats(r, wn, -1, 1);
            x->bias = random_floats(r, x->channels, -1, 1);
            ref_window win = {x->k, x->k, 1, 1, x->k / 2, x->k / 2, x->k / 2, x->k / 2, 1, 1};
            ref_conv(in, c, h, w, x->weight, x->bias, x->channels, 1, win, x->ref, h, w);
            *used += (size_t)snprintf(json + *used, JSON_SIZE - *used,
                                      "{\"name\":\"%s\",\"op\":\"conv\",\"inputs\":[\"input\"],\"out_channels\":%d,"
                                      "\"kernel\":%d,\"padding\":%d},",
                                      x->name, x->channels, x->k, x->k / 2);
            char *wname = malloc(32), *bname = malloc(32);
            snprintf(wname, 32, "%s.weight", x->name);
            snprintf(bname, 32, "%s.bias", x->name);
            t[(*nt)++] = (ttensor){wname, 4, {x->channels, c, x->k, x->k}, x->weight};
            t[(*nt)++] = (ttensor){bname, 1, {x->channels}, x->bias};
        } else {
            snprintf(x->name, sizeof x->name, "d%d", i);
            x->weight = random_floats(r, (int64_t)x->channels * in_features, -1, 1);
            x->bias = random_floats(r, x->channels, -1, 1);
            ref_dense(in, in_features, x->weight, x->bias, x->channels, x->ref);
            *used += (size_t)snprintf(json + *used, JSON_SIZE - *used,
                                      "{\"name\":\"%s\",\"op\":\"dense\",\"inputs\":[\"flat\"],\"units\":%d},",
                                      x->name, x->channels);
            char *wname = malloc(32), *bname = malloc(32);
            snprintf(wname, 32, "%s.weight", x->name);
            snprintf(bname, 32, "%s.bias", x->name);
            t[(*nt)++] = (ttensor){wname, 2, {x->channels, in_features}, x->weight};
            t[(*nt)++] = (ttensor){bname, 1, {x->channels}, x->bias};
        }
    }
}

static void free_tensor_names(ttensor *t, int nt)
{
    for (int i = 0; i < nt; i++) free((void *)t[i].name);
}

static void concat_case(rng *r, int rank, int trials)
{
    for (int trial = 0; trial < trials; trial++) {
        int c = rng_int(r, 1, 6), h = rng_int(r, 1, 12), w = rng_int(r, 1, 12);
        if (trial % 10 == 0) h = 37, w = 41; /* more than the parallel threshold */
        int n = rng_int(r, 2, RECTIFY_MAX_INPUTS);
        int64_t in_n = (int64_t)c * h * w;
        float *in = random_floats(r, in_n, -2, 2);
        char json[JSON_SIZE];
        size_t used = (size_t)snprintf(json, sizeof json,
                                       "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                                       "\"layers\":[%s",
                                       c, h, w, rank == 1 ? "{\"name\":\"flat\",\"op\":\"flatten\"}," : "");
        branch b[RECTIFY_MAX_INPUTS];
        ttensor t[2 * RECTIFY_MAX_INPUTS];
        int nt = 0;
        make_branches(r, rank, in, c, h, w, b, n, false, 0, json, &used, t, &nt);
        /* sometimes the same branch twice */
        if (n > 2 && rng_int(r, 0, 2) == 0) {
            int from = rng_int(r, 0, n - 2);
            b[n - 1].channels = b[from].channels;
            memcpy(b[n - 1].name, b[from].name, sizeof b[n - 1].name);
            free(b[n - 1].ref);
            int64_t plane = rank == 3 ? (int64_t)h * w : 1;
            b[n - 1].ref = malloc((size_t)(b[from].channels * plane) * sizeof(double));
            memcpy(b[n - 1].ref, b[from].ref, (size_t)(b[from].channels * plane) * sizeof(double));
        }
        used += (size_t)snprintf(json + used, sizeof json - used, "{\"name\":\"cat\",\"op\":\"concat\",\"inputs\":[");
        for (int i = 0; i < n; i++)
            used += (size_t)snprintf(json + used, sizeof json - used, "%s\"%s\"", i ? "," : "", b[i].name);
        used += (size_t)snprintf(json + used, sizeof json - used, "]}],\"outputs\":[\"cat\"]}");
        rectify_error err;
        rectify_model *m = load_json(json, t, nt, &err);
        cr_assert_not_null(m, "%s\n%s", err.message, json);
        int64_t plane = rank == 3 ? (int64_t)h * w : 1, total = 0;
        for (int i = 0; i < n; i++) total += b[i].channels;
        rectify_layer_info info;
        cr_assert_eq(rectify_model_layer(m, rectify_model_find_layer(m, "cat"), &info), RECTIFY_OK);
        cr_assert_eq(info.rank, rank);
        cr_assert_eq(info.shape[0], total);
        cr_assert_eq(info.macs, 0);
        cr_assert_eq(info.params, 0);
        double *want = malloc((size_t)(total * plane) * sizeof *want);
        int64_t at = 0;
        for (int i = 0; i < n; i++)
            for (int64_t e = 0; e < b[i].channels * plane; e++) want[at++] = b[i].ref[e];
        check_runs(m, in, in_n, want, total * plane, json);
        free(want);
        free(in);
        free_tensor_names(t, nt);
        free_branches(b, n);
        rectify_model_destroy(m);
    }
}

Test(ops_graph, concat_channels_matches_reference_on_random_shapes) { rng r = {11}; concat_case(&r, 3, 60); }
Test(ops_graph, concat_features_matches_reference_on_random_shapes) { rng r = {12}; concat_case(&r, 1, 40); }

static void add_case(rng *r, int rank, int trials)
{
    for (int trial = 0; trial < trials; trial++) {
        int c = rng_int(r, 1, 6), h = rng_int(r, 1, 12), w = rng_int(r, 1, 12);
        if (trial % 10 == 0) h = 45, w = 39;
        int n = rng_int(r, 2, RECTIFY_MAX_INPUTS);
        int channels = rank == 3 ? (rng_int(r, 0, 1) ? c : rng_int(r, 1, 7)) : rng_int(r, 1, 30);
        int64_t in_n = (int64_t)c * h * w;
        float *in = random_floats(r, in_n, -2, 2);
        char json[JSON_SIZE];
        size_t used = (size_t)snprintf(json, sizeof json,
                                       "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                                       "\"layers\":[%s",
                                       c, h, w, rank == 1 ? "{\"name\":\"flat\",\"op\":\"flatten\"}," : "");
        branch b[RECTIFY_MAX_INPUTS];
        ttensor t[2 * RECTIFY_MAX_INPUTS];
        int nt = 0;
        make_branches(r, rank, in, c, h, w, b, n, true, channels, json, &used, t, &nt);
        /* add, then a relu: the relu must run in place on the add's buffer */
        used += (size_t)snprintf(json + used, sizeof json - used, "{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[");
        for (int i = 0; i < n; i++)
            used += (size_t)snprintf(json + used, sizeof json - used, "%s\"%s\"", i ? "," : "", b[i].name);
        used += (size_t)snprintf(json + used, sizeof json - used,
                                 "]},{\"name\":\"r\",\"op\":\"relu\"}],\"outputs\":[\"r\"]}");
        rectify_error err;
        rectify_model *m = load_json(json, t, nt, &err);
        cr_assert_not_null(m, "%s\n%s", err.message, json);
        int64_t plane = rank == 3 ? (int64_t)h * w : 1, size = channels * plane;
        rectify_layer_info sum, relu;
        cr_assert_eq(rectify_model_layer(m, rectify_model_find_layer(m, "sum"), &sum), RECTIFY_OK);
        cr_assert_eq(rectify_model_layer(m, rectify_model_find_layer(m, "r"), &relu), RECTIFY_OK);
        cr_assert_eq(sum.elements, size);
        cr_assert_not(sum.in_place, "add must not run in place");
        cr_assert(relu.in_place, "the relu after an add must run in place: %s", json);
        cr_assert_eq(relu.buffer, sum.buffer);
        for (int i = 0; i < n; i++) {
            rectify_layer_info bi;
            int idx = rectify_model_find_layer(m, b[i].name);
            if (idx < 0) continue; /* the model input */
            cr_assert_eq(rectify_model_layer(m, idx, &bi), RECTIFY_OK);
            cr_assert_neq(bi.buffer, sum.buffer, "add's output shares a buffer with input %s", b[i].name);
        }
        /* reference: the float branch outputs summed left to right, relu */
        double *want = malloc((size_t)size * sizeof *want);
        for (int64_t e = 0; e < size; e++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += b[i].ref[e];
            want[e] = s > 0 ? s : 0;
        }
        check_runs(m, in, in_n, want, size, json);
        free(want);
        free(in);
        free_tensor_names(t, nt);
        free_branches(b, n);
        rectify_model_destroy(m);
    }
}

Test(ops_graph, add_relu_matches_reference_on_random_shapes) { rng r = {13}; add_case(&r, 3, 60); }
Test(ops_graph, add_features_matches_reference_on_random_shapes) { rng r = {14}; add_case(&r, 1, 40); }

/* The sum is exactly float addition left to right, as PyTorch's a + b + c. */
Test(ops_graph, add_is_float_sum_left_to_right)
{
    const char *json =
        "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[1,1,4]},"
        "\"layers\":[{\"name\":\"a\",\"op\":\"relu\",\"inputs\":[\"input\"]},"
        "{\"name\":\"s\",\"op\":\"add\",\"inputs\":[\"input\",\"input\",\"a\"]}]}";
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_not_null(m, "%s", err.message);
    const float in[4] = {1e8f, -3.0f, 0.5f, 16777216.0f};
    for (int threads = 1; threads <= 2; threads++) {
        int64_t n;
        float *out = run_model(m, in, 1, threads, &n);
        cr_assert_not_null(out);
        cr_assert_eq(n, 4);
        for (int i = 0; i < 4; i++) {
            volatile float a = in[i], r = in[i] > 0 ? in[i] : 0.0f;
            volatile float s = a + a;
            s = s + r;
            cr_assert_eq(out[i], s, "element %d: %.9g, want %.9g", i, out[i], (double)s);
        }
        free(out);
    }
    rectify_model_destroy(m);
}

/* A ResNet basic block and a SqueezeNet fire module, chained: the DAG runs,
   buffers are reused, and the result matches the reference. */
Test(ops_graph, residual_block_and_fire_module)
{
    rng r = {15};
    const int c = 4, h = 9, w = 7;
    const char *json =
        "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[4,9,7]},\"layers\":["
        "{\"name\":\"conv1\",\"op\":\"conv\",\"out_channels\":4,\"kernel\":3,\"padding\":1},"
        "{\"name\":\"relu1\",\"op\":\"relu\"},"
        "{\"name\":\"conv2\",\"op\":\"conv\",\"out_channels\":4,\"kernel\":3,\"padding\":1},"
        "{\"name\":\"add\",\"op\":\"add\",\"inputs\":[\"conv2\",\"input\"]},"
        "{\"name\":\"relu2\",\"op\":\"relu\"},"
        "{\"name\":\"squeeze\",\"op\":\"conv\",\"out_channels\":2,\"kernel\":1},"
        "{\"name\":\"squeeze_relu\",\"op\":\"relu\"},"
        "{\"name\":\"e1\",\"op\":\"conv\",\"out_channels\":3,\"kernel\":1,\"inputs\":[\"squeeze_relu\"]},"
        "{\"name\":\"e1_relu\",\"op\":\"relu\"},"
        "{\"name\":\"e3\",\"op\":\"conv\",\"out_channels\":5,\"kernel\":3,\"padding\":1,\"inputs\":[\"squeeze_relu\"]},"
        "{\"name\":\"e3_relu\",\"op\":\"relu\"},"
        "{\"name\":\"cat\",\"op\":\"concat\",\"inputs\":[\"e1_relu\",\"e3_relu\"]}]}";
    float *w1 = random_floats(&r, 4 * 4 * 9, -0.5f, 0.5f), *b1 = random_floats(&r, 4, -0.5f, 0.5f);
    float *w2 = random_floats(&r, 4 * 4 * 9, -0.5f, 0.5f), *b2 = random_floats(&r, 4, -0.5f, 0.5f);
    float *ws = random_floats(&r, 2 * 4, -1, 1), *bs = random_floats(&r, 2, -0.5f, 0.5f);
    float *we1 = random_floats(&r, 3 * 2, -1, 1), *be1 = random_floats(&r, 3, -0.5f, 0.5f);
    float *we3 = random_floats(&r, 5 * 2 * 9, -1, 1), *be3 = random_floats(&r, 5, -0.5f, 0.5f);
    ttensor t[10] = {{"conv1.weight", 4, {4, 4, 3, 3}, w1}, {"conv1.bias", 1, {4}, b1},
                     {"conv2.weight", 4, {4, 4, 3, 3}, w2}, {"conv2.bias", 1, {4}, b2},
                     {"squeeze.weight", 4, {2, 4, 1, 1}, ws}, {"squeeze.bias", 1, {2}, bs},
                     {"e1.weight", 4, {3, 2, 1, 1}, we1}, {"e1.bias", 1, {3}, be1},
                     {"e3.weight", 4, {5, 2, 3, 3}, we3}, {"e3.bias", 1, {5}, be3}};
    rectify_error err;
    rectify_model *m = load_json(json, t, 10, &err);
    cr_assert_not_null(m, "%s", err.message);
    float *in = random_floats(&r, c * h * w, -2, 2);
    const int plane = h * w;
    ref_window k3 = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, k1 = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    double y1[4 * 63], y2[4 * 63], ys[2 * 63], ye1[3 * 63], ye3[5 * 63], want[8 * 63];
    float f1[4 * 63], f2[4 * 63], fs[2 * 63];
    ref_conv(in, 4, h, w, w1, b1, 4, 1, k3, y1, h, w);
    for (int i = 0; i < 4 * plane; i++) f1[i] = y1[i] > 0 ? (float)y1[i] : 0.0f;
    ref_conv(f1, 4, h, w, w2, b2, 4, 1, k3, y2, h, w);
    for (int i = 0; i < 4 * plane; i++) {
        double s = y2[i] + in[i];
        f2[i] = s > 0 ? (float)s : 0.0f;
    }
    ref_conv(f2, 4, h, w, ws, bs, 2, 1, k1, ys, h, w);
    for (int i = 0; i < 2 * plane; i++) fs[i] = ys[i] > 0 ? (float)ys[i] : 0.0f;
    ref_conv(fs, 2, h, w, we1, be1, 3, 1, k1, ye1, h, w);
    ref_conv(fs, 2, h, w, we3, be3, 5, 1, k3, ye3, h, w);
    for (int i = 0; i < 3 * plane; i++) want[i] = ye1[i] > 0 ? ye1[i] : 0;
    for (int i = 0; i < 5 * plane; i++) want[3 * plane + i] = ye3[i] > 0 ? ye3[i] : 0;
    check_runs(m, in, c * h * w, want, 8 * plane, "residual block + fire module");
    rectify_layer_info info;
    cr_assert_eq(rectify_model_layer(m, rectify_model_find_layer(m, "relu2"), &info), RECTIFY_OK);
    cr_assert(info.in_place, "relu after add in place");
    cr_assert_eq(rectify_model_layer(m, rectify_model_find_layer(m, "squeeze_relu"), &info), RECTIFY_OK);
    cr_assert(info.in_place, "squeeze_relu is read by two layers but only after the relu: in place");
    rectify_memory_info mem;
    rectify_model_memory(m, &mem);
    cr_assert_lt(mem.planned_bytes, mem.unplanned_bytes);
    free(w1), free(b1), free(w2), free(b2), free(ws), free(bs), free(we1), free(be1), free(we3), free(be3);
    free(in);
    rectify_model_destroy(m);
}

static void expect_error(const char *json, rectify_status status, const char *const *needles)
{
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_null(m, "must fail: %s", json);
    cr_assert_eq(err.status, status, "status %d for %s: %s", err.status, json, err.message);
    for (; *needles; needles++)
        cr_assert(strstr(err.message, *needles), "message \"%s\" lacks \"%s\"", err.message, *needles);
}

#define HEAD "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"name\":\"x\",\"shape\":[2,8,8]},\"layers\":["

Test(ops_graph, concat_and_add_errors_name_inputs_and_shapes)
{
    expect_error(HEAD "{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":2},"
                      "{\"name\":\"cat\",\"op\":\"concat\",\"inputs\":[\"x\",\"p\"]}]}",
                 RECTIFY_ERR_INVALID,
                 (const char *const[]){"\"cat\"", "concat", "input \"x\" is 2x8x8", "input \"p\" is 2x4x4", NULL});
    expect_error(HEAD "{\"name\":\"f\",\"op\":\"flatten\"},"
                      "{\"name\":\"cat\",\"op\":\"concat\",\"inputs\":[\"x\",\"f\"]}]}",
                 RECTIFY_ERR_INVALID,
                 (const char *const[]){"\"cat\"", "input \"x\" is 2x8x8", "input \"f\" is 128", NULL});
    expect_error(HEAD "{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":[1,2]},"
                      "{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"x\",\"x\",\"p\"]}]}",
                 RECTIFY_ERR_INVALID,
                 (const char *const[]){"\"sum\"", "add needs inputs of one shape", "input \"x\" is 2x8x8",
                                       "input \"p\" is 2x8x4", NULL});
    expect_error(HEAD "{\"name\":\"f\",\"op\":\"flatten\"},{\"name\":\"g\",\"op\":\"global_avgpool\",\"inputs\":[\"x\"]},"
                      "{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"g\",\"f\"]}]}",
                 RECTIFY_ERR_INVALID,
                 (const char *const[]){"\"sum\"", "input \"g\" is 2x1x1", "input \"f\" is 128", NULL});
    /* input counts */
    expect_error(HEAD "{\"name\":\"cat\",\"op\":\"concat\"}]}", RECTIFY_ERR_INVALID,
                 (const char *const[]){"\"cat\"", "concat takes 2 to 8 inputs, it has 1", NULL});
    expect_error(HEAD "{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"x\"]}]}", RECTIFY_ERR_INVALID,
                 (const char *const[]){"\"sum\"", "add takes 2 to 8 inputs, it has 1", NULL});
    expect_error(HEAD "{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]}]}",
                 RECTIFY_ERR_LIMIT, (const char *const[]){"\"sum\"", "9 inputs", NULL});
    /* no fields */
    expect_error(HEAD "{\"name\":\"cat\",\"op\":\"concat\",\"axis\":1,\"inputs\":[\"x\",\"x\"]}]}",
                 RECTIFY_ERR_INVALID, (const char *const[]){"\"cat\"", "axis", NULL});
}

Test(ops_graph, concat_and_add_of_eight_inputs)
{
    const char *json = HEAD "{\"name\":\"cat\",\"op\":\"concat\",\"inputs\":[\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]},"
                            "{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]}],"
                            "\"outputs\":[\"cat\",\"sum\"]}";
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_not_null(m, "%s", err.message);
    rng r = {16};
    float *in = random_floats(&r, 128, -1, 1);
    rectify_session *s;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_run(s, in, 128, &err), RECTIFY_OK, "%s", err.message);
    rectify_tensor cat, sum;
    cr_assert_eq(rectify_session_output(s, 0, &cat), RECTIFY_OK);
    cr_assert_eq(rectify_session_output(s, 1, &sum), RECTIFY_OK);
    cr_assert_eq(cat.shape[1], 16);
    cr_assert_eq(cat.elements, 8 * 128);
    for (int i = 0; i < 8 * 128; i++) cr_assert_eq(cat.data[i], in[i % 128]);
    for (int i = 0; i < 128; i++) cr_assert_float_eq(sum.data[i], 8 * in[i], 1e-6);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
    free(in);
}
