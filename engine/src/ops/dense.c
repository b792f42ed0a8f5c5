/* dense.c: y = W x + b, W is [units, in] as PyTorch's Linear. */
#include "op.h"
#include "../kernels/kernels.h"

static const char *const fields[] = {"units", "bias", NULL};

static rectify_status parse(rx_ctx *c, const cJSON *j, rx_params *p)
{
    rectify_status st = rx_json_int(c, j, "units", true, 0, 1, RECTIFY_MAX_DIM, &p->units);
    return st ? st : rx_json_bool(c, j, "bias", true, &p->bias);
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    if (in[0]->rank != 1)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "dense needs a flat input (add a flatten layer), got rank %d",
                        in[0]->rank);
    int64_t n = in[0]->d[0];
    l->out = (rx_shape){1, {l->p.units}};
    if (rx_mul_overflow(n, l->p.units, &l->macs))
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "the layer's size overflows");
    l->params = l->macs + (l->p.bias ? l->p.units : 0);
    rx_shape ws = {2, {l->p.units, n}};
    rectify_status st = rx_declare_tensor(c, m, l, "weight", &ws, n, l->p.units, false);
    if (st || !l->p.bias) return st;
    rx_shape bs = {1, {l->p.units}};
    return rx_declare_tensor(c, m, l, "bias", &bs, n, l->p.units, true);
}

static void run(const rx_exec *e)
{
    const int64_t n = e->in_shape[0]->d[0], units = e->layer->p.units;
    const float *w = rx_weight(e->model, e->layer, 0);
    const float *bias = e->layer->p.bias ? rx_weight(e->model, e->layer, 1) : NULL;
    const rx_gemv_kernel gemv = rx_gemm_select()->gemv;
    /* Rows in chunks of 16 per thread: every core streams its own weights. */
    const int64_t chunk = 16, chunks = (units + chunk - 1) / chunk;
    const int threads = units * n < 65536 ? 1 : e->threads;
    for (int64_t b = 0; b < e->batch; b++) {
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t r0 = c * chunk, rows = units - r0 < chunk ? units - r0 : chunk;
            gemv(w + r0 * n, rows, n, e->in[0] + b * n, bias ? bias + r0 : NULL, e->out + b * units + r0);
        }
    }
}

const rx_op rx_op_dense = {
    .name = "dense", .fields = fields, .min_inputs = 1, .max_inputs = 1,
    .parse = parse, .infer = infer, .run = run,
};
