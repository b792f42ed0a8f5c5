/* dense.c: y = W x + b, W is [units, in] as PyTorch's Linear.

   Two kernels. The dense one streams all of W (rx_gemm_select()->gemv, 16
   rows per task). The sparse one (kernels/sparse_gemv.c) gathers the input's
   non-zeros and reads only the rows of a transposed copy of W that they
   meet: after a ReLU most inputs are zero and most of W need not be read.
   Which runs is decided per sample from the input's measured sparsity; the
   thresholds below were measured with bench/sparse (see its README).
   The transposed copy doubles the layer's weight memory, so it is made only
   for layers whose input comes from a ReLU (through flatten or maxpool,
   which keep its zeros) and whose weights are at most RX_SPARSE_COPY_MAX
   bytes: a model stays within its weight file's size plus a little (VGG-16's
   fc6 and fc7 would add 456 MiB). RECTIFY_SPARSE=off (read at load) never
   makes it; RECTIFY_SPARSE=on makes it for every layer and uses the sparse
   kernel at any sparsity (for tests and bench/sparse). */
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "../kernels/kernels.h"
#include "../kernels/sparse_gemv.h"

/* Input sparsity from which the sparse kernel is faster, measured by
   bench/sparse/threshold on LeNet-5 to VGG-16 shapes with 1 and 2 threads:
   weights beyond any cache (VGG-16's fc6, fc7: the dense kernel waits on
   memory) break even at 0.4 to 0.6, weights that stay in cache at 0.6 to
   0.9. Each is set at or above the highest crossover seen. */
#define RX_SPARSE_FROM 0.8f
#define RX_SPARSE_FROM_LARGE 0.6f
#define RX_LARGE_WEIGHTS (32 << 20) /* bytes */
#define RX_SPARSE_COPY_MAX (16 << 20) /* bytes of weights worth a transposed copy */

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

/* The gathered non-zeros: n indices and n values. */
static int64_t scratch(const rx_layer *l, const rx_shape *const *in)
{
    (void)l;
    return 2 * in[0]->d[0];
}

/* Whether the input is a ReLU's output, perhaps flattened or max-pooled. */
static bool input_after_relu(const rectify_model *m, const rx_layer *l)
{
    for (int in = l->inputs[0]; in >= 0; in = m->layers[in].inputs[0]) {
        const rx_op *op = m->layers[in].op;
        if (op == &rx_op_relu) return true;
        if (op != &rx_op_flatten && op != &rx_op_maxpool) return false;
    }
    return false;
}

static rectify_status prepare(rectify_model *m, rx_layer *l, rectify_error *err)
{
    const char *mode = getenv("RECTIFY_SPARSE");
    bool off = mode && strcmp(mode, "off") == 0, on = mode && strcmp(mode, "on") == 0;
    l->sparse_from = 2.0f;
    if (off || (!on && !input_after_relu(m, l))) return RECTIFY_OK;
    const rx_tensor *t = &m->tensors[l->tensor_first];
    const int64_t units = t->shape.d[0], n = t->shape.d[1];
    if (!on && units * n * (int64_t)sizeof(float) > RX_SPARSE_COPY_MAX) return RECTIFY_OK;
    float *wt = rx_malloc_aligned(&m->allocator, (size_t)(units * n) * sizeof *wt);
    if (!wt) return rx_fail(err, RECTIFY_ERR_NOMEM, "layer \"%s\": out of memory transposing weights", l->name);
    /* In tiles, so that both sides are read and written a cache line at a time. */
    for (int64_t r0 = 0; r0 < units; r0 += 32)
        for (int64_t i0 = 0; i0 < n; i0 += 32)
            for (int64_t r = r0; r < r0 + 32 && r < units; r++)
                for (int64_t i = i0; i < i0 + 32 && i < n; i++) wt[i * units + r] = t->data[r * n + i];
    l->packed = wt;
    l->sparse_from = on ? 0.0f : units * n * 4 >= RX_LARGE_WEIGHTS ? RX_SPARSE_FROM_LARGE : RX_SPARSE_FROM;
    return RECTIFY_OK;
}

static void run_sparse(const rx_exec *e, const float *bias, const int32_t *idx, const float *val, int64_t nnz,
                       float *y, int threads)
{
    const int64_t units = e->layer->p.units;
    /* One contiguous range of outputs per thread, in multiples of 16. */
    const int64_t per = ((units + threads - 1) / threads + 15) & ~(int64_t)15;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t r0 = t * per, rows = units - r0 < per ? units - r0 : per;
        if (rows > 0) rx_sparse_gemv_cols(e->layer->packed, units, r0, rows, idx, val, nnz, bias, y);
    }
}

RX_MULTIVERSION
static int64_t count_zeros(const float *x, int64_t n)
{
    int64_t zeros = 0;
    #pragma omp simd reduction(+ : zeros)
    for (int64_t i = 0; i < n; i++) zeros += x[i] == 0.0f;
    return zeros;
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
    int32_t *idx = (int32_t *)e->scratch;
    float *val = e->scratch + n;
    for (int64_t b = 0; b < e->batch; b++) {
        const float *x = e->in[0] + b * n;
        /* Counting first (vectorised) is cheaper than gathering for nothing. */
        if (e->layer->packed && (float)count_zeros(x, n) >= e->layer->sparse_from * (float)n) {
            int64_t nnz = rx_gather_nonzero(x, n, idx, val);
            run_sparse(e, bias, idx, val, nnz, e->out + b * units, threads);
            continue;
        }
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t r0 = c * chunk, rows = units - r0 < chunk ? units - r0 : chunk;
            gemv(w + r0 * n, rows, n, x, bias ? bias + r0 : NULL, e->out + b * units + r0);
        }
    }
}

const rx_op rx_op_dense = {
    .name = "dense", .fields = fields, .min_inputs = 1, .max_inputs = 1,
    .parse = parse, .infer = infer, .scratch = scratch, .run = run, .prepare = prepare,
};
