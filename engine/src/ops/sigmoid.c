/* sigmoid.c: y = 1 / (1 + exp(-x)), in place like relu. Never exactly zero
   unless x < -103 (expf underflows), so its sparsity is near-zeros (--eps). */
#include <math.h>

#include "op.h"

static void run(const rx_exec *e)
{
    const int64_t n = e->batch * rx_shape_elements(&e->layer->out);
    const float *x = e->in[0];
    float *y = e->out;
    RX_PARALLEL_FOR(n > 32768 ? e->threads : 1, i, n, y[i] = 1.0f / (1.0f + expf(-x[i])););
}

const rx_op rx_op_sigmoid = {
    .name = "sigmoid", .min_inputs = 1, .max_inputs = 1, .in_place = true, .infer = rx_infer_same_shape, .run = run,
};
