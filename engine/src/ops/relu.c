/* relu.c: y = max(x, 0), in place: it writes into its input's buffer unless
   another layer still needs that input (the planner decides). It counts the
   zeros of its output, and of its input when the session asks (the layer
   before it: a convolution's pre-activations), as it goes: the statistics
   then cost no pass of their own over either tensor. */
#include <omp.h>

#include "op.h"
#include "../kernels/kernels.h"

static void run(const rx_exec *e)
{
    const int64_t plane = rx_shape_plane(&e->layer->out);
    const int64_t planes = e->batch * rx_shape_channels(&e->layer->out), n = planes * plane;
    const float *x = e->in[0];
    float *y = e->out;
    RX_PARALLEL(n > 32768 ? e->threads : 1, t, nt, {
        const int64_t p0 = planes * t / nt, p1 = planes * (t + 1) / nt;
        rx_relu_count(x + p0 * plane, y + p0 * plane, p1 - p0, plane, e->zeros ? e->zeros + p0 : NULL,
                      e->in_zeros ? e->in_zeros + p0 : NULL);
    });
}

const rx_op rx_op_relu = {
    .name = "relu", .min_inputs = 1, .max_inputs = 1, .in_place = true, .counts_zeros = true,
    .infer = rx_infer_same_shape, .run = run,
};
