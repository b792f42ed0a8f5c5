/* global_avgpool.c: y[c] = mean of x[c, :, :]; CxHxW -> Cx1x1. */
#include "op.h"

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    (void)m;
    if (in[0]->rank != 3)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "global_avgpool needs a CxHxW input, got rank %d", in[0]->rank);
    l->out = (rx_shape){3, {in[0]->d[0], 1, 1}};
    return RECTIFY_OK;
}

static void run(const rx_exec *e)
{
    const int64_t plane = e->in_shape[0]->d[1] * e->in_shape[0]->d[2];
    const int64_t planes = e->batch * e->in_shape[0]->d[0];
    RX_PARALLEL_FOR(planes * plane > 32768 ? e->threads : 1, p, planes, {
        const float *x = e->in[0] + p * plane;
        double sum = 0.0;
        for (int64_t i = 0; i < plane; i++) sum += x[i];
        e->out[p] = (float)(sum / (double)plane);
    });
}

const rx_op rx_op_global_avgpool = {
    .name = "global_avgpool", .min_inputs = 1, .max_inputs = 1, .infer = infer, .run = run,
};
