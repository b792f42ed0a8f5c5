/* add.c: the element-wise sum of 2..8 inputs of one shape (a residual
   connection), added left to right in float: ((x0 + x1) + x2) + ..., as
   PyTorch evaluates a + b + c. Not in place: the planner gives it a buffer
   of its own; a relu after it takes that buffer over. */
#include <omp.h>

#include "op.h"

static const char *input_name(const rectify_model *m, const rx_layer *l, int e)
{
    return l->inputs[e] < 0 ? m->input_name : m->layers[l->inputs[e]].name;
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    for (int e = 1; e < l->input_count; e++) {
        bool same = in[e]->rank == in[0]->rank;
        for (int d = 0; same && d < in[0]->rank; d++) same = in[e]->d[d] == in[0]->d[d];
        if (!same) {
            char a[64], b[64];
            rx_shape_format(in[0], a, sizeof a);
            rx_shape_format(in[e], b, sizeof b);
            return rx_cfail(c, RECTIFY_ERR_INVALID,
                            "add needs inputs of one shape: input \"%s\" is %s, input \"%s\" is %s",
                            input_name(m, l, 0), a, input_name(m, l, e), b);
        }
    }
    l->out = *in[0];
    return RECTIFY_OK;
}

/* y[i0..i1) = the sum of the k inputs there. */
static void add_range(float *y, const float *x0, const float *x1, const float *const *in, int k, int64_t i0,
                      int64_t i1)
{
    #pragma omp simd
    for (int64_t i = i0; i < i1; i++) y[i] = x0[i] + x1[i];
    for (int j = 2; j < k; j++) {
        const float *x = in[j];
        #pragma omp simd
        for (int64_t i = i0; i < i1; i++) y[i] += x[i];
    }
}

static void run(const rx_exec *e)
{
    const int64_t n = e->batch * rx_shape_elements(&e->layer->out);
    const int k = e->layer->input_count;
    const float *x0 = e->in[0], *x1 = e->in[1];
    float *y = e->out;
    RX_PARALLEL(n > 32768 ? e->threads : 1, t, nt, {
        /* one contiguous range per thread, every input added into it */
        const int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
        add_range(y, x0, x1, e->in, k, i0, i1);
    });
}

const rx_op rx_op_add = {
    .name = "add", .min_inputs = 2, .max_inputs = RECTIFY_MAX_INPUTS, .infer = infer, .run = run,
};
