/* test_graph.c: a tiny graph with known weights gives known outputs; ReLU
   runs in place (same buffer); the plan reuses buffers; layers may be listed
   out of order (a DAG); statistics add up over runs and channels. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* 1x3x3 input, conv 2 filters 2x2 (known), relu, maxpool 2 stride 1 ->
   2x1x1, flatten, dense 2 -> softmax. */
static const char *tiny =
    "{\"format\":\"rectify\",\"version\":1,\"name\":\"tiny\",\"input\":{\"name\":\"x\",\"shape\":[1,3,3]},"
    "\"layers\":[{\"name\":\"conv\",\"op\":\"conv\",\"out_channels\":2,\"kernel\":2},"
    "{\"name\":\"relu\",\"op\":\"relu\"},{\"name\":\"pool\",\"op\":\"maxpool\",\"kernel\":2,\"stride\":1},"
    "{\"name\":\"flat\",\"op\":\"flatten\"},{\"name\":\"fc\",\"op\":\"dense\",\"units\":2},"
    "{\"name\":\"prob\",\"op\":\"softmax\"}],\"outputs\":[\"prob\",\"fc\"]}";

static const float conv_w[8] = {1, 0, 0, 1, /* filter 0: main diagonal */ -1, 0, 0, -1};
static const float conv_b[2] = {0, 1};
static const float fc_w[4] = {1, 0, 0, 1}, fc_b[2] = {0.5f, -0.5f};
static const float input[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static rectify_model *load_tiny(void)
{
    ttensor t[4] = {{"conv.weight", 4, {2, 1, 2, 2}, conv_w}, {"conv.bias", 1, {2}, conv_b},
                    {"fc.weight", 2, {2, 2}, fc_w}, {"fc.bias", 1, {2}, fc_b}};
    rectify_error err;
    rectify_model *m = load_json(tiny, t, 4, &err);
    cr_assert_not_null(m, "%s", err.message);
    return m;
}

Test(graph, tiny_graph_gives_known_outputs)
{
    rectify_model *m = load_tiny();
    rectify_session *s;
    rectify_error err;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_OK);
    cr_assert_eq(rectify_session_run(s, input, 9, &err), RECTIFY_OK, "%s", err.message);
    /* conv filter 0: x[i][j] + x[i+1][j+1] -> 6 8 12 14; filter 1: 1 - that -> all negative -> relu 0.
       pool: 14 and 0. fc: 14.5, -0.5. softmax. */
    rectify_tensor fc, prob;
    cr_assert_eq(rectify_session_output(s, 1, &fc), RECTIFY_OK);
    cr_assert_float_eq(fc.data[0], 14.5f, 1e-6);
    cr_assert_float_eq(fc.data[1], -0.5f, 1e-6);
    cr_assert_eq(rectify_session_output(s, 0, &prob), RECTIFY_OK);
    cr_assert_eq(prob.rank, 2);
    cr_assert_eq(prob.shape[0], 1);
    cr_assert_eq(prob.shape[1], 2);
    double e = exp(-15.0);
    cr_assert_float_eq(prob.data[0], 1.0 / (1.0 + e), 1e-6);
    cr_assert_float_eq(prob.data[1], e / (1.0 + e), 1e-9);
    /* zeros: relu has the 4 outputs of filter 1; pool has 1 of 2 */
    rectify_layer_stats st;
    rectify_session_layer_stats(s, rectify_model_find_layer(m, "relu"), &st);
    cr_assert_eq(st.elements, 8);
    cr_assert_eq(st.zeros, 4);
    rectify_session_layer_stats(s, rectify_model_find_layer(m, "pool"), &st);
    cr_assert_eq(st.zeros, 1);
    int64_t ch[2];
    cr_assert_eq(rectify_session_channel_zeros(s, rectify_model_find_layer(m, "relu"), ch, 2), RECTIFY_OK);
    cr_assert_eq(ch[0], 0);
    cr_assert_eq(ch[1], 4);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

typedef struct seen { const float *data[16]; } seen;

static int remember(void *user, int layer, const rectify_tensor *out)
{
    ((seen *)user)->data[layer] = out->data;
    return 0;
}

Test(graph, relu_writes_into_its_inputs_buffer)
{
    rectify_model *m = load_tiny();
    int conv = rectify_model_find_layer(m, "conv"), relu = rectify_model_find_layer(m, "relu");
    rectify_layer_info a, b;
    rectify_model_layer(m, conv, &a);
    rectify_model_layer(m, relu, &b);
    cr_assert(b.in_place);
    cr_assert_eq(a.buffer, b.buffer);
    /* the 2x2 convolution on a 3x3 image runs wide, but for the portable kernels */
    cr_assert_eq(b.fused_into, vector_kernels() ? conv : -1, "a ReLU in place after a wide convolution runs in it");
    cr_assert_eq(a.fused_into, -1);
    rectify_session *s;
    rectify_error err;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_OK);
    seen pointers = {0};
    rectify_session_set_observer(s, remember, &pointers);
    cr_assert_eq(rectify_session_run(s, input, 9, &err), RECTIFY_OK);
    cr_assert_not_null(pointers.data[conv]);
    cr_assert_eq(pointers.data[conv], pointers.data[relu], "relu must write where conv wrote");
    cr_assert_neq(pointers.data[conv], pointers.data[rectify_model_find_layer(m, "pool")]);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

Test(graph, relu_copies_when_its_input_is_still_needed)
{
    /* conv feeds both relu and a second branch: relu must not overwrite it */
    const char *json =
        "{\"format\":\"rectify\",\"version\":1,\"name\":\"b\",\"input\":{\"shape\":[1,2,2]},"
        "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":1,\"kernel\":1,\"bias\":false},"
        "{\"name\":\"r\",\"op\":\"relu\"},{\"name\":\"f\",\"op\":\"flatten\",\"inputs\":[\"c\"]}],"
        "\"outputs\":[\"r\",\"f\"]}";
    float w = 1;
    ttensor t = {"c.weight", 4, {1, 1, 1, 1}, &w};
    rectify_error err;
    rectify_model *m = load_json(json, &t, 1, &err);
    cr_assert_not_null(m, "%s", err.message);
    rectify_layer_info r;
    rectify_model_layer(m, rectify_model_find_layer(m, "r"), &r);
    cr_assert(!r.in_place);
    cr_assert_eq(r.fused_into, -1, "the branch reads the convolution's output: the ReLU runs on its own");
    float in[4] = {-1, 2, -3, 4};
    int64_t n;
    rectify_session *s;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_OK);
    cr_assert_eq(rectify_session_run(s, in, 4, &err), RECTIFY_OK);
    rectify_tensor relu, flat;
    rectify_session_output(s, 0, &relu);
    rectify_session_output(s, 1, &flat);
    cr_assert_eq(relu.data[0], 0.0f);
    cr_assert_eq(flat.data[0], -1.0f, "the branch must still see the negative value");
    cr_assert_eq(flat.data[3], 4.0f);
    (void)n;
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

Test(graph, plan_reuses_buffers)
{
    rectify_error err;
    rectify_model *m;
    rectify_load_options o = {.graph_only = 1};
    cr_assert_eq(rectify_model_load(TEST_SOURCE_ROOT "/models/vgg16", &o, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_memory_info mi;
    rectify_model_memory(m, &mi);
    cr_assert(mi.planned_bytes * 4 < mi.unplanned_bytes, "planned %lld, unplanned %lld",
              (long long)mi.planned_bytes, (long long)mi.unplanned_bytes);
    cr_assert(mi.buffers <= 3, "%d buffers for a chain", mi.buffers);
    rectify_model_destroy(m);
}

Test(graph, layers_listed_out_of_order_run_in_dependency_order)
{
    /* the JSON lists the relu before the conv it reads */
    const char *json =
        "{\"format\":\"rectify\",\"version\":1,\"name\":\"o\",\"input\":{\"name\":\"img\",\"shape\":[1,1,2]},"
        "\"layers\":[{\"name\":\"r\",\"op\":\"relu\",\"inputs\":[\"c\"]},"
        "{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":1,\"kernel\":1,\"inputs\":[\"img\"]}],"
        "\"outputs\":[\"r\"]}";
    float w = -2, b = 1;
    ttensor t[2] = {{"c.weight", 4, {1, 1, 1, 1}, &w}, {"c.bias", 1, {1}, &b}};
    rectify_error err;
    rectify_model *m = load_json(json, t, 2, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rectify_model_find_layer(m, "c"), 0);
    cr_assert_eq(rectify_model_find_layer(m, "r"), 1);
    float in[2] = {1, -1};
    int64_t n;
    float *out = run_model(m, in, 1, 1, &n);
    cr_assert_not_null(out);
    cr_assert_eq(out[0], 0.0f);
    cr_assert_eq(out[1], 3.0f);
    free(out);
    rectify_model_destroy(m);
}

Test(graph, statistics_accumulate_over_runs_and_reset)
{
    rectify_model *m = load_tiny();
    rectify_session *s;
    rectify_error err;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_OK);
    float other[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9}; /* filter 0 all negative, filter 1 all positive */
    cr_assert_eq(rectify_session_run(s, input, 9, &err), RECTIFY_OK);
    cr_assert_eq(rectify_session_run(s, other, 9, &err), RECTIFY_OK);
    cr_assert_eq(rectify_session_run(s, other, 9, &err), RECTIFY_OK);
    rectify_layer_stats st;
    rectify_session_layer_stats(s, rectify_model_find_layer(m, "relu"), &st);
    cr_assert_eq(st.runs, 3);
    cr_assert_eq(st.samples, 3);
    cr_assert_eq(st.total_elements, 24);
    cr_assert_eq(st.total_zeros, 12);
    cr_assert_float_eq(st.min_sparsity, 0.5, 1e-12);
    cr_assert_float_eq(st.max_sparsity, 0.5, 1e-12);
    cr_assert_float_eq(st.sum_sparsity, 1.5, 1e-12);
    int64_t ch[2];
    rectify_session_channel_zeros(s, rectify_model_find_layer(m, "relu"), ch, 2);
    cr_assert_eq(ch[0], 8);
    cr_assert_eq(ch[1], 4);
    rectify_session_reset_stats(s);
    rectify_session_layer_stats(s, rectify_model_find_layer(m, "relu"), &st);
    cr_assert_eq(st.runs, 0);
    cr_assert_eq(st.total_zeros, 0);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

Test(graph, graph_only_model_cannot_run_but_lists_its_tensors)
{
    rectify_error err;
    rectify_model *m;
    rectify_load_options o = {.graph_only = 1};
    cr_assert_eq(rectify_model_load(TEST_SOURCE_ROOT "/models/lenet5", &o, &m, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_model_tensor_count(m), 10);
    rectify_tensor_info ti;
    cr_assert_eq(rectify_model_tensor(m, 0, &ti), RECTIFY_OK);
    cr_assert_str_eq(ti.name, "conv1.weight");
    cr_assert_eq(ti.fan_in, 25);
    rectify_session *s;
    cr_assert_eq(rectify_session_create(m, NULL, &s, &err), RECTIFY_ERR_INVALID);
    cr_assert(strstr(err.message, "without weights"), "%s", err.message);
    rectify_model_destroy(m);
}
