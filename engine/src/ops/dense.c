/* dense.c: y = W x + b, W is [units, in] as PyTorch's Linear.

   One layout and one kernel, whatever the input's zeros. At load (prepare)
   W is packed transposed, in blocks of RX_BLOCK outputs: block b holds, for
   each input i, the weights input i meets among outputs b*RX_BLOCK... (one
   row of 4 KiB). Then the original W is given back: on a mapped weights
   file its pages leave the resident set block by block (MAP_PRIVATE and
   never written: if anything read them again they would fault back from
   the file, and no API hands out weight pointers anyway); weights widened
   from F16/BF16 or loaded from memory are an owned copy, kept, so there the
   packed copy is extra. Only the bias is read as bound.
   A run gathers the input's non-zeros and rx_gemm_select()->gemv reads only
   the rows of W they meet, eight at a time: after a ReLU most inputs are
   zero and most of W need not be read. There is no threshold: with no zeros
   the gather costs n copies and the kernel streams all of W as fast as the
   row-major GEMV it replaced. A layer big enough for threads sums its
   non-zeros in two halves, each over all outputs (a block's y stays in L1),
   then adds the second half's sums: on two threads each streams whole rows
   (4 KiB, where the prefetchers work best) of half of the needed ones.
   The halves are the same whatever the thread count, so each output sums
   its inputs in the same order on one thread as on four (more threads
   also split the outputs). VGG-16's fc8 on two threads, outputs split
   (each thread half of every row) -> halves: 0.24-0.27 -> 0.17-0.20 ms.
   A zero input contributes nothing even against an infinite or NaN weight
   (allow_nonfinite), where IEEE arithmetic would give NaN. -0.0 is a zero.
   RECTIFY_SPARSE=off (read at load) reads every row, zeros included (to
   measure what skipping gains); unset or "on", zeros are skipped.

   Measured when the kernel replaced a row-major GEMV, before the halves
   (outputs split between threads), with bench/bench_rectify (He weights from
   `rectify init --seed 1`, uniform input; medians, this 2-core Zen 5, before
   -> after, ms, one thread then two): VGG-16 fc6 25088->4096 at its 39% input
   zeros 14.1 -> 8.5, 8.1 -> 4.6; fc7 (51%) 2.59 -> 1.30, 1.49 -> 0.74; fc8
   (49%) 0.61 -> 0.35, 0.34 -> 0.29. AlexNet classifier.1/.4/.6 (31/50/51%
   zeros) 5.5/2.5/0.63 -> 3.7/1.4/0.34, 2.9/1.4/0.34 -> 1.9/0.73/0.25.
   Reading every row (RECTIFY_SPARSE=off: the cost of an input without zeros)
   fc6 takes 14.5 -> 14.2 and 7.6 -> 7.1: 29 GB/s on one thread (97% of
   bench/peak's read bandwidth) and 58 GB/s on two; only the 4096->1000 layers
   on two threads are slower than the row GEMV was (0.33 -> 0.42). A VGG-16
   run peaks at 620 MiB resident, was 636 (weights file: 528 MiB); its load
   takes 0.2 to 0.45 s longer (fresh pages are slow to fault in on this
   machine). See bench/sparse/README.md. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "../kernels/kernels.h"
#include "../kernels/sparse_gemv.h"

/* Outputs per block of the packed weights: a row of a full block is 4 KiB,
   one page, so that the prefetchers stop where a row the kernel needs ends
   instead of fetching the next one, which a zero may skip. */
#define RX_BLOCK 1024
#define RX_PARALLEL_PACK (1 << 20)    /* weights from which both threads transpose */

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

/* Layers from this many weights are shared by threads and sum their
   non-zeros in two parts (run). */
#define RX_DENSE_SHARED 65536

/* The gathered non-zeros: n indices and n values; then the second part's
   sums. */
static int64_t scratch(const rx_layer *l, const rx_shape *const *in)
{
    return 2 * in[0]->d[0] + l->p.units;
}

/* Block b of the packed weights: outputs [b * RX_BLOCK, + rows), n rows of
   ld floats from b * RX_BLOCK * n on. */
static int64_t block_rows(int64_t units, int64_t b)
{
    return units - b * RX_BLOCK < RX_BLOCK ? units - b * RX_BLOCK : RX_BLOCK;
}
static int64_t block_ld(int64_t units, int64_t b) { return (block_rows(units, b) + 15) & ~(int64_t)15; }
static int64_t packed_floats(const rectify_model *m, const rx_layer *l)
{
    if (l->winograd) return -1; /* one layout only */
    const rx_tensor *t = &m->tensors[l->tensor_first];
    const int64_t units = t->shape.d[0], n = t->shape.d[1], blocks = (units + RX_BLOCK - 1) / RX_BLOCK;
    return ((blocks - 1) * RX_BLOCK + block_ld(units, blocks - 1)) * n;
}

static rectify_status prepare(rectify_model *m, rx_layer *l, rectify_error *err)
{
    const char *mode = getenv("RECTIFY_SPARSE");
    l->sparse_from = mode && strcmp(mode, "off") == 0 ? 2.0f : 0.0f;
    if (l->packed) return RECTIFY_OK; /* a packed file's */
    const rx_tensor *t = &m->tensors[l->tensor_first];
    const int64_t units = t->shape.d[0], n = t->shape.d[1], blocks = (units + RX_BLOCK - 1) / RX_BLOCK;
    unsigned char *block = rx_malloc_aligned(&m->allocator, (size_t)packed_floats(m, l) * sizeof(float) + RX_PAGE_BYTES);
    if (!block) return rx_fail(err, RECTIFY_ERR_NOMEM, "layer \"%s\": out of memory packing weights", l->name);
    /* The packed weights start on a page (a packed file keeps them there). */
    float *wt = (float *)(((uintptr_t)block + RX_PAGE_BYTES - 1) & ~(uintptr_t)(RX_PAGE_BYTES - 1));
    /* rx_check_finite has read all weights: those of the dense layers packed
       after this one are resident too. Their pages go back now (each layer
       reads its own again when packed), so that packing this one adds one
       block to the resident set, not the weights of every later layer. */
    for (int j = (int)(l - m->layers) + 1; j < m->layer_count; j++)
        if (m->layers[j].op == &rx_op_dense) {
            const rx_tensor *later = &m->tensors[m->layers[j].tensor_first];
            rx_release_mapped(&m->weights, later->data, (size_t)later->elements * sizeof *later->data);
        }
    const int threads = units * n >= RX_PARALLEL_PACK ? omp_get_max_threads() : 1;
    #pragma omp parallel num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t rows = block_rows(units, b), ld = block_ld(units, b);
        const float *w = t->data + b * RX_BLOCK * n;
        /* Each thread its own rows of the packed block (pages fault in
           parallel), sixteen rows of w at a time (read along their length). */
        #pragma omp for schedule(static)
        for (int64_t i0 = 0; i0 < n; i0 += RX_BLOCK) {
            const int64_t i1 = n - i0 < RX_BLOCK ? n : i0 + RX_BLOCK;
            for (int64_t r0 = 0; r0 < ld; r0 += 16) rx_transpose_rows(w, rows, n, r0, i0, i1, wt + b * RX_BLOCK * n, ld);
        }
        /* Those rows are read no more: their pages leave the resident set
           now rather than after the last block, so that packing needs one
           block more than the packed weights, not twice as much. */
        #pragma omp master
        rx_release_mapped(&m->weights, w, (size_t)(rows * n) * sizeof *w);
    }
    /* The pages the blocks shared at their edges. */
    rx_release_mapped(&m->weights, t->data, (size_t)(units * n) * sizeof *t->data);
    l->packed = wt;
    l->packed_block = block;
    return RECTIFY_OK;
}

/* All of x, zeros included (RECTIFY_SPARSE=off). */
static int64_t gather_all(const float *x, int64_t n, int32_t *idx, float *val)
{
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)i, val[i] = x[i];
    return n;
}

static void run(const rx_exec *e)
{
    const rx_layer *l = e->layer;
    const int64_t n = e->in_shape[0]->d[0], units = l->p.units;
    const float *bias = l->p.bias ? rx_weight(e->model, l, 1) : NULL;
    const float *wt = l->packed;
    const rx_gemv_kernel gemv = rx_gemm_select()->gemv;
    const bool shared = units * n >= RX_DENSE_SHARED;
    const int threads = shared ? e->threads : 1;
    /* A shared layer's non-zeros in two parts, each summed over all outputs
       on its own (the second into `part`) and then added: on two threads
       each streams whole rows of the weights, and every output sums the
       same values in the same order on one thread as on four. More threads
       also split the outputs, in ranges of a multiple of 16: threads / 2
       ranges when the threads are even, else as many as threads (each thread
       then takes two tasks, the static schedule's even shares). */
    const int parts = shared ? 2 : 1, ranges = threads % parts == 0 ? threads / parts : threads;
    const int64_t per = ((units + ranges - 1) / ranges + 15) & ~(int64_t)15;
    int32_t *idx = (int32_t *)e->scratch;
    float *val = e->scratch + n, *part = e->scratch + 2 * n;
    for (int64_t s = 0; s < e->batch; s++) {
        const float *x = e->in[0] + s * n;
        float *y = e->out + s * units;
        const int64_t nnz = l->sparse_from <= 1.0f ? rx_gather_nonzero(x, n, idx, val) : gather_all(x, n, idx, val);
        const int64_t half = parts == 1 || nnz < 8 ? nnz : (nnz / 2 + 7) & ~(int64_t)7; /* the kernel's groups of 8 */
        RX_PARALLEL_FOR(threads, t, parts * ranges, {
            const int64_t u0 = t % ranges * per, u1 = units - u0 < per ? units : u0 + per;
            const int64_t k0 = t < ranges ? 0 : half, k1 = t < ranges ? half : nnz;
            float *out = t < ranges ? y : part;
            if (u0 >= units) continue;
            for (int64_t u = u0; u < u1; u++) out[u] = bias && t < ranges ? bias[u] : 0.0f;
            for (int64_t b = u0 / RX_BLOCK; b * RX_BLOCK < u1; b++) {
                const int64_t first = u0 > b * RX_BLOCK ? u0 : b * RX_BLOCK;
                const int64_t end = u1 < (b + 1) * RX_BLOCK ? u1 : (b + 1) * RX_BLOCK;
                gemv(wt + b * RX_BLOCK * n + (first - b * RX_BLOCK), block_ld(units, b), end - first, idx + k0,
                     val + k0, k1 - k0, out + first);
            }
        });
        if (parts == 2)
            for (int64_t u = 0; u < units; u++) y[u] += part[u];
    }
}

const rx_op rx_op_dense = {
    .name = "dense", .fields = fields, .min_inputs = 1, .max_inputs = 1,
    .parse = parse, .infer = infer, .scratch = scratch, .run = run, .prepare = prepare,
    .packed_floats = packed_floats,
};
