/* fuzz.h: what the libFuzzer harnesses share: checks that turn a broken
   promise of the API into a crash libFuzzer reports. */
#ifndef RECTIFY_FUZZ_H
#define RECTIFY_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rectify.h"

#define FUZZ_CHECK(cond)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* A failed call: a status in range, the same in err, and a message that is
   NUL-terminated, not empty, and does not end in the middle of a sentence. */
static inline void fuzz_check_failure(rectify_status st, const rectify_error *err)
{
    FUZZ_CHECK(st > RECTIFY_OK && st <= RECTIFY_ERR_ARGUMENT);
    FUZZ_CHECK(err->status == st);
    const char *end = memchr(err->message, '\0', sizeof err->message);
    FUZZ_CHECK(end != NULL);
    FUZZ_CHECK(end > err->message);
}

/* Walks everything a loaded model tells: every getter on every index. */
static inline void fuzz_walk_model(const rectify_model *m)
{
    FUZZ_CHECK(rectify_model_name(m) != NULL);
    int64_t in[3];
    rectify_model_input_shape(m, in);
    FUZZ_CHECK((size_t)(in[0] * in[1] * in[2]) == rectify_model_input_size(m));
    int layers = rectify_model_layer_count(m);
    FUZZ_CHECK(layers >= 1 && layers <= RECTIFY_MAX_LAYERS);
    for (int i = 0; i < layers; i++) {
        rectify_layer_info info;
        FUZZ_CHECK(rectify_model_layer(m, i, &info) == RECTIFY_OK);
        FUZZ_CHECK(info.rank == 1 || info.rank == 3);
        FUZZ_CHECK(info.input_count >= 1 && info.input_count <= RECTIFY_MAX_INPUTS);
        for (int e = 0; e < info.input_count; e++) FUZZ_CHECK(info.inputs[e] >= -1 && info.inputs[e] < i);
        FUZZ_CHECK(rectify_model_find_layer(m, info.name) == i);
        rectify_window w;
        (void)rectify_model_layer_window(m, i, &w);
    }
    rectify_layer_info info;
    FUZZ_CHECK(rectify_model_layer(m, layers, &info) == RECTIFY_ERR_ARGUMENT);
    FUZZ_CHECK(rectify_model_layer(m, -1, &info) == RECTIFY_ERR_ARGUMENT);
    for (int i = 0; i < rectify_model_output_count(m); i++) {
        int l = rectify_model_output_layer(m, i);
        FUZZ_CHECK(l >= 0 && l < layers);
    }
    FUZZ_CHECK(rectify_model_output_layer(m, rectify_model_output_count(m)) == -1);
    for (int i = 0; i < rectify_model_tensor_count(m); i++) {
        rectify_tensor_info t;
        FUZZ_CHECK(rectify_model_tensor(m, i, &t) == RECTIFY_OK);
        FUZZ_CHECK(t.rank >= 1 && t.rank <= RECTIFY_MAX_RANK && t.elements >= 1);
    }
    for (int i = 0; i < rectify_model_label_count(m); i++) FUZZ_CHECK(rectify_model_label(m, i) != NULL);
    rectify_memory_info mem;
    rectify_model_memory(m, &mem);
    FUZZ_CHECK(mem.planned_bytes >= 0 && mem.planned_bytes <= mem.unplanned_bytes);
}

/* Runs a session on `input` and walks its outputs and statistics. Returns
   the status of the run. */
static inline rectify_status fuzz_run(rectify_session *s, const rectify_model *m, const float *input,
                                      size_t count)
{
    rectify_error err;
    rectify_status st = rectify_session_run(s, input, count, &err);
    if (st) {
        fuzz_check_failure(st, &err);
        return st;
    }
    for (int i = 0; i < rectify_model_output_count(m); i++) {
        rectify_tensor t;
        FUZZ_CHECK(rectify_session_output(s, i, &t) == RECTIFY_OK);
        volatile float sink = 0;
        for (int64_t k = 0; k < t.elements; k++) sink += t.data[k];
        (void)sink;
    }
    for (int i = 0; i < rectify_model_layer_count(m); i++) {
        rectify_layer_stats stats;
        FUZZ_CHECK(rectify_session_layer_stats(s, i, &stats) == RECTIFY_OK);
        FUZZ_CHECK(stats.zeros >= 0 && stats.zeros <= stats.elements);
        int64_t channels = rectify_session_channel_count(s, i);
        int64_t zeros[64];
        if (channels > 0 && channels <= 64) FUZZ_CHECK(rectify_session_channel_zeros(s, i, zeros, 64) == RECTIFY_OK);
        rectify_tensor t;
        (void)rectify_session_layer_output(s, i, &t);
    }
    return RECTIFY_OK;
}

#endif
