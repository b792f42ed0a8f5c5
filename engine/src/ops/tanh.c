/* tanh.c: y = tanh(x), in place like relu. Zero only where x is zero. */
#include <math.h>

#include "op.h"

static void run(const rx_exec *e)
{
    const int64_t n = e->batch * rx_shape_elements(&e->layer->out);
    const float *x = e->in[0];
    float *y = e->out;
    RX_PARALLEL_FOR(n > 32768 ? e->threads : 1, i, n, y[i] = tanhf(x[i]););
}

const rx_op rx_op_tanh = {
    .name = "tanh", .min_inputs = 1, .max_inputs = 1, .in_place = true, .infer = rx_infer_same_shape, .run = run,
};
