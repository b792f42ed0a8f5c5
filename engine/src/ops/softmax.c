/* softmax.c: y = exp(x - max) / sum exp(x - max) over the channel (or
   feature) axis, at every pixel. */
#include <math.h>

#include "op.h"

static void run(const rx_exec *e)
{
    const int64_t channels = rx_shape_channels(&e->layer->out), plane = rx_shape_plane(&e->layer->out);
    const int64_t vectors = e->batch * plane;
    RX_PARALLEL_FOR(vectors > 64 ? e->threads : 1, v, vectors, {
        int64_t b = v / plane, p = v % plane;
        const float *x = e->in[0] + b * channels * plane + p;
        float *y = e->out + b * channels * plane + p;
        float top = x[0];
        for (int64_t c = 1; c < channels; c++) if (x[c * plane] > top) top = x[c * plane];
        double sum = 0.0;
        for (int64_t c = 0; c < channels; c++) sum += (y[c * plane] = expf(x[c * plane] - top));
        float inv = (float)(1.0 / sum);
        for (int64_t c = 0; c < channels; c++) y[c * plane] *= inv;
    });
}

const rx_op rx_op_softmax = {
    .name = "softmax", .min_inputs = 1, .max_inputs = 1, .infer = rx_infer_same_shape, .run = run,
};
