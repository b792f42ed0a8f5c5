/* leaky_relu.c: y = x for x > 0, slope * x otherwise (PyTorch's LeakyReLU,
   "slope" is its negative_slope, default 0.01), in place like relu. With a
   non-zero slope only zeros of its input stay zeros. */
#include "op.h"

static const char *const fields[] = {"slope", NULL};

static rectify_status parse(rx_ctx *c, const cJSON *j, rx_params *p)
{
    double slope;
    rectify_status st = rx_json_number(c, j, "slope", 0.01, &slope);
    if (st) return st;
    if (slope < -1e6 || slope > 1e6)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "field \"slope\" is %g, outside -1e6..1e6", slope);
    p->slope = (float)slope;
    return RECTIFY_OK;
}

static void run(const rx_exec *e)
{
    const int64_t n = e->batch * rx_shape_elements(&e->layer->out);
    const float slope = e->layer->p.slope;
    const float *x = e->in[0];
    float *y = e->out;
    RX_PARALLEL_FOR_SIMD(n > 32768 ? e->threads : 1, i, n, y[i] = x[i] > 0.0f ? x[i] : slope * x[i];);
}

const rx_op rx_op_leaky_relu = {
    .name = "leaky_relu", .fields = fields, .min_inputs = 1, .max_inputs = 1, .in_place = true,
    .parse = parse, .infer = rx_infer_same_shape, .run = run,
};
