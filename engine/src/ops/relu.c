/* relu.c: y = max(x, 0), in place: it writes into its input's buffer unless
   another layer still needs that input (the planner decides). */
#include "op.h"

static void run(const rx_exec *e)
{
    const int64_t n = e->batch * rx_shape_elements(&e->layer->out);
    const float *x = e->in[0];
    float *y = e->out;
    RX_PARALLEL_FOR_SIMD(n > 32768 ? e->threads : 1, i, n, y[i] = x[i] > 0.0f ? x[i] : 0.0f;);
}

const rx_op rx_op_relu = {
    .name = "relu", .min_inputs = 1, .max_inputs = 1, .in_place = true, .infer = rx_infer_same_shape, .run = run,
};
