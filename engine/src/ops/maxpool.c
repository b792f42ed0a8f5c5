/* maxpool.c: y = max over the window; padding never wins (it is -inf), as
   in PyTorch's MaxPool2d, with dilation and ceil_mode. */
#include <math.h>

#include "op.h"
#include "../kernels/kernels.h"

static const char *const fields[] = {"kernel", "stride", "padding", "dilation", "ceil_mode", NULL};

static rectify_status parse(rx_ctx *c, const cJSON *j, rx_params *p)
{
    rectify_status st = rx_parse_window(c, j, &p->win, true);
    return st ? st : rx_json_bool(c, j, "ceil_mode", false, &p->ceil_mode);
}

/* Shared by both pools: PyTorch's rules for their output size. */
rectify_status rx_pool_infer(rx_ctx *c, rx_layer *l, const rx_shape *in)
{
    const rx_window *w = &l->p.win;
    if (in->rank != 3)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "%s needs a CxHxW input, got rank %d", l->op->name, in->rank);
    if (2 * w->pt > w->kh || 2 * w->pb > w->kh || 2 * w->pl > w->kw || 2 * w->pr > w->kw)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "padding must be at most half the kernel (%lldx%lld)",
                        (long long)w->kh, (long long)w->kw);
    int64_t oh = rx_window_out(in->d[1], w->kh, w->sh, w->pt, w->pb, w->dh, l->p.ceil_mode);
    int64_t ow = rx_window_out(in->d[2], w->kw, w->sw, w->pl, w->pr, w->dw, l->p.ceil_mode);
    if (oh < 1 || ow < 1)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "kernel %lldx%lld is larger than the padded input %lldx%lld",
                        (long long)w->kh, (long long)w->kw, (long long)(in->d[1] + w->pt + w->pb),
                        (long long)(in->d[2] + w->pl + w->pr));
    l->out = (rx_shape){3, {in->d[0], oh, ow}};
    return RECTIFY_OK;
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    (void)m;
    return rx_pool_infer(c, l, in[0]);
}

/* First and one-past-last kernel taps that land inside [0, size). */
static void taps(int64_t origin, int64_t dilation, int64_t k, int64_t size, int64_t *first, int64_t *last)
{
    int64_t lo = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    int64_t hi = size - origin <= 0 ? 0 : (size - origin + dilation - 1) / dilation;
    *first = lo;
    *last = hi < k ? hi : k;
}

/* The larger of a and b, NaN if either is, a on a tie (+0 before -0):
   PyTorch's max pooling, which scans a window in order and takes a value
   only when it is greater or NaN. */
static inline float max_nan(float a, float b) { return b > a || b != b ? b : a; }

/* One output whose window crosses the left or right edge. */
static float edge(const float *x, const rx_window *w, int64_t y0, int64_t ki0, int64_t ki1, int64_t ox, int64_t wd)
{
    int64_t x0 = ox * w->sw - w->pl, kj0, kj1;
    taps(x0, w->dw, w->kw, wd, &kj0, &kj1);
    float best = -INFINITY;
    for (int64_t ki = ki0; ki < ki1; ki++) {
        const float *row = x + (y0 + ki * w->dh) * wd + x0;
        for (int64_t kj = kj0; kj < kj1; kj++) {
            best = max_nan(best, row[kj * w->dw]);
        }
    }
    return best;
}

/* 2x2 windows of stride 2 of one plane (rows of wd floats) into oh x ow,
   vectorised for each instruction set (a plain loop before, which lost a
   NaN standing first in a pair: 224x224x64 -> 112x112, one thread / two,
   0.77-0.83 -> 0.62-0.73 ms, 0.38-0.41 -> 0.23-0.32). */
RX_MULTIVERSION
static void pool2x2(const float *x, int64_t wd, int64_t oh, int64_t ow, float *y)
{
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * wd, *r1 = r0 + wd;
        float *yr = y + oy * ow;
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = max_nan(max_nan(r0[2 * ox], r0[2 * ox + 1]), max_nan(r1[2 * ox], r1[2 * ox + 1]));
    }
}

/* A ReLU before the pool runs in it (rx_exec.relu_in) where the windows
   tile the input exactly, 2x2 of stride 2 on even sides: every input float
   is read once, so the ReLU's zeros and its input's are counted as they
   are read, and the ReLU's pass over the tensor (a read and a write) is
   saved. Each input goes through the ReLU before the maximum: the maximum
   first and the ReLU after it would give 0 where a NaN met positives (the
   ReLU makes NaN 0), and this gives the two layers' outputs bit for bit.
   ReLU values are never NaN, so their maxima need no NaN rule. */
static bool takes_relu(const rx_layer *l, const rx_shape *in)
{
    const rx_window *w = &l->p.win;
    return w->kh == 2 && w->kw == 2 && w->sh == 2 && w->sw == 2 && w->dh == 1 && w->dw == 1 && w->pt == 0 &&
           w->pl == 0 && w->pb == 0 && w->pr == 0 && in->d[1] == 2 * l->out.d[1] && in->d[2] == 2 * l->out.d[2];
}

static inline float relu(float v) { return v > 0.0f ? v : 0.0f; }
static inline float max2(float a, float b) { return b > a ? b : a; }

/* pool2x2 of ReLU values over a whole plane of 2oh x 2ow floats; *zeros
   and *relu_zeros (when not NULL) the plane's zeros of x and of max(x, 0). */
RX_MULTIVERSION
static void pool2x2_relu(const float *x, int64_t oh, int64_t ow, float *y, int64_t *zeros, int64_t *relu_zeros)
{
    const int64_t wd = 2 * ow;
    int64_t eq = 0, pos = 0;
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * wd, *r1 = r0 + wd;
        float *yr = y + oy * ow;
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = max2(max2(relu(r0[2 * ox]), relu(r0[2 * ox + 1])), max2(relu(r1[2 * ox]), relu(r1[2 * ox + 1])));
        if (!relu_zeros) continue;
        for (int64_t i0 = 0; i0 < 2 * wd; i0 += 1 << 30) { /* a row pair: 2 x 2ow floats */
            const int64_t end = 2 * wd - i0 < (1 << 30) ? 2 * wd : i0 + (1 << 30);
            int32_t e = 0, p = 0;
            for (int64_t i = i0; i < end; i++) e += r0[i] == 0.0f, p += r0[i] > 0.0f;
            eq += e, pos += p;
        }
    }
    if (relu_zeros) *relu_zeros = 4 * oh * ow - pos;
    if (zeros) *zeros = eq;
}

#if defined(__x86_64__) && defined(__GNUC__)
#  include <immintrin.h>
#  define RX_POOL_AVX512 1
/* max_nan over 16 lanes. */
__attribute__((target("avx512f"))) static inline __m512 max_nan16(__m512 a, __m512 b)
{
    const __mmask16 take = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
    return _mm512_mask_mov_ps(a, take, b);
}

/* pool2x2 with AVX-512, 16 outputs at a time and a masked last vector: the
   compiler's loop left rows of fewer than 16 outputs to scalar code, where
   VGG-16's 14- and 7-wide pools and the CIFAR VGG's 4-wide one spent most
   of their time. The same maxima in the same order: bit for bit pool2x2.
   Interleaved with the loop before, one thread: VGG-16's five pools
   0.94/0.30/0.39/0.52/0.28 -> 0.69/0.32/0.08/0.09/0.02 ms, LeNet-5's
   1.4/1.0 -> 0.5/0.4 us, the CIFAR VGG's last 5.3 -> 2.4 us. Masked loads
   only for the last vector: with a mask every time (all lanes but the
   last) the 224x224x64 pool took 1.96 ms instead of 0.94. */
__attribute__((target("avx512f")))
static void pool2x2_avx512(const float *x, int64_t wd, int64_t oh, int64_t ow, float *y)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * wd, *r1 = r0 + wd;
        float *yr = y + oy * ow;
        int64_t ox = 0;
#define RX_POOL16(a0, b0, a1, b1)                                                                             \
        max_nan16(max_nan16(_mm512_permutex2var_ps(a0, even, b0), _mm512_permutex2var_ps(a0, odd, b0)),     \
                  max_nan16(_mm512_permutex2var_ps(a1, even, b1), _mm512_permutex2var_ps(a1, odd, b1)))
        for (; ox + 16 <= ow; ox += 16)
            _mm512_storeu_ps(yr + ox, RX_POOL16(_mm512_loadu_ps(r0 + 2 * ox), _mm512_loadu_ps(r0 + 2 * ox + 16),
                                                _mm512_loadu_ps(r1 + 2 * ox), _mm512_loadu_ps(r1 + 2 * ox + 16)));
        if (ox < ow) { /* n < 16 outputs left: 2n inputs a row */
            const int64_t n = ow - ox;
            const __mmask16 lo = rx_lanes16(2 * n), hi = rx_lanes16(2 * n - 16);
            _mm512_mask_storeu_ps(yr + ox, rx_lanes16(n),
                                  RX_POOL16(_mm512_maskz_loadu_ps(lo, r0 + 2 * ox), _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16),
                                            _mm512_maskz_loadu_ps(lo, r1 + 2 * ox), _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16)));
        }
#undef RX_POOL16
    }
}

/* pool2x2_relu with AVX-512. It prefetches RX_AHEAD floats ahead of each
   row pair (into the next planes near a plane's end) when the layer's
   input takes RX_AHEAD_FROM floats or more. VGG-16's first four pools with their
   ReLUs (12.8 to 1.6 MB), one thread, statistics on: without it 0.72-0.74
   / 0.64-0.66 / 0.27-0.31 / 0.18 ms, with it 0.41-0.43 / 0.17-0.18 /
   0.082-0.085 / 0.055-0.059 (512 floats ahead: 0.47-0.50 / 0.22-0.23 /
   0.11 / 0.06; 8192: 0.46-0.48 / 0.17-0.19 / 0.087 / 0.06); its last
   (0.4 MB) 0.029-0.030 -> 0.020-0.021 ms. The CIFAR VGG's (128 to 32 KB,
   in L2) took 2.7 / 2.4 / 2.6 us with it, 2.2-2.3 / 2.1 / 2.5 without.
   It counts in int32 lanes as zeros.c's ReLU does (rx_relu_tally16);
   `count` and `ahead` are constants. Lanes past a row's end load as +0:
   neither positive nor nonzero, so the counts are the plane's floats
   less the lanes' sums; the vectors loaded empty (8 outputs or
   fewer left in the row) are not counted: with them the CIFAR VGG's pools
   of 16- and 8-float rows took 2.29 and 2.64 us with their ReLUs, 2.05 and
   2.26 without (one thread; 1.72 and 1.88 with the statistics off; a
   ReLU pass and the pool before, 2.70 and 2.50). Popcounts of compare
   masks instead of the lanes (as zeros.c counts planes of fewer than
   RX_LANES_PLANE floats) were no faster: 32 planes of 32x32, 64 of 16x16
   and 128 of 8x8 took 2.7-3.0 / 2.7-2.8 / 3.1-4.2 us against 2.6-2.7 /
   2.4-3.3 / 2.7-2.8 with the lanes; nor was one sum of both lanes' counts,
   packed into 16-bit halves (2.1 / 2.4 us against 2.0 / 2.4). */
#define RX_LANES_MAX ((int64_t)1 << 30) /* floats a plane's lane counts can take (int32 sums) */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
pool2x2_relu_lanes(const float *x, int64_t oh, int64_t ow, float *y, int64_t *zeros, int64_t *relu_zeros, bool count,
                   bool ahead)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 zero = _mm512_setzero_ps();
    const int64_t wd = 2 * ow;
    __m512i pos = _mm512_setzero_si512(), nonzero = _mm512_setzero_si512();
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * wd, *r1 = r0 + wd;
        float *yr = y + oy * ow;
        for (int64_t i = 0; ahead && i < 2 * wd; i += 16)
            _mm_prefetch((const char *)(r0 + RX_AHEAD + i), _MM_HINT_T0);
        for (int64_t ox = 0; ox < ow; ox += 16) {
            const int64_t n = ow - ox < 16 ? ow - ox : 16;
            const __mmask16 lo = rx_lanes16(2 * n), hi = rx_lanes16(2 * n - 16);
            __m512 v[4];
            if (n == 16) {
                v[0] = _mm512_loadu_ps(r0 + 2 * ox), v[1] = _mm512_loadu_ps(r0 + 2 * ox + 16);
                v[2] = _mm512_loadu_ps(r1 + 2 * ox), v[3] = _mm512_loadu_ps(r1 + 2 * ox + 16);
            } else {
                v[0] = _mm512_maskz_loadu_ps(lo, r0 + 2 * ox), v[1] = _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16);
                v[2] = _mm512_maskz_loadu_ps(lo, r1 + 2 * ox), v[3] = _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16);
            }
            for (int k = 0; k < 4; k++) {
                const __m512 r = _mm512_max_ps(v[k], zero); /* NaN: the second, 0 */
                if (count && (n > 8 || k % 2 == 0)) rx_relu_tally16(v[k], r, &pos, &nonzero);
                v[k] = r;
            }
            const __m512 m = _mm512_max_ps(_mm512_max_ps(_mm512_permutex2var_ps(v[0], even, v[1]),
                                                         _mm512_permutex2var_ps(v[0], odd, v[1])),
                                           _mm512_max_ps(_mm512_permutex2var_ps(v[2], even, v[3]),
                                                         _mm512_permutex2var_ps(v[2], odd, v[3])));
            if (n == 16) _mm512_storeu_ps(yr + ox, m);
            else _mm512_mask_storeu_ps(yr + ox, rx_lanes16(n), m);
        }
    }
    if (!count) return;
    *relu_zeros = 4 * oh * ow - _mm512_reduce_add_epi32(pos);
    if (zeros) *zeros = 4 * oh * ow - _mm512_reduce_add_epi32(nonzero);
}

__attribute__((target("avx512f")))
static void pool2x2_relu_avx512(const float *x, int64_t oh, int64_t ow, float *y, int64_t *zeros, int64_t *relu_zeros,
                                bool ahead)
{
    if (relu_zeros && ahead) pool2x2_relu_lanes(x, oh, ow, y, zeros, relu_zeros, true, true);
    else if (relu_zeros) pool2x2_relu_lanes(x, oh, ow, y, zeros, relu_zeros, true, false);
    else pool2x2_relu_lanes(x, oh, ow, y, NULL, NULL, false, ahead);
}

/* The outputs [ox0, ox1) of one row whose windows lie inside the row, for
   strides of 1 and 2 along it and no dilation there: each vector of 16
   outputs takes its window's taps in turn (the loop below, tap by tap over
   the row, ran rows of AlexNet's 27, 13 and 6 outputs in scalar code). The
   same maxima in the same order. A vector reads past its last output's taps
   (stride 2: one float) only while that stays inside the row; else masked.
   AlexNet's three pools, interleaved with the loop, one thread: 0.19/0.18/
   0.074 -> 0.065/0.062/0.038 ms; two: 0.19/0.23/0.15 -> 0.049/0.058/0.060. */
__attribute__((target("avx512f")))
static void interior_avx512(const float *x, const rx_window *w, int64_t wd, int64_t y0, int64_t ki0, int64_t ki1,
                            int64_t ox0, int64_t ox1, float *yr)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const int64_t s = w->sw, reach = (w->kw - 1) - w->pl; /* last tap's column, from ox * s */
    for (int64_t ox = ox0; ox < ox1; ox += 16) {
        const int64_t n = ox1 - ox < 16 ? ox1 - ox : 16;
        /* whole vectors while the farthest float read, (ox + 15) * s + (s - 1) + reach, is in the row */
        const bool whole = n == 16 && (ox + 16) * s - 1 + reach < wd;
        const __mmask16 lo = whole ? 0xffff : rx_lanes16(s * (n - 1) + 1), hi = whole ? 0xffff : rx_lanes16(2 * (n - 1) + 1 - 16);
        __m512 acc = _mm512_set1_ps(-INFINITY);
        for (int64_t ki = ki0; ki < ki1; ki++) {
            const float *row = x + (y0 + ki * w->dh) * wd - w->pl + ox * s;
            for (int64_t kj = 0; kj < w->kw; kj++) {
                const float *p = row + kj;
                __m512 v;
                if (s == 1) v = whole ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lo, p);
                else if (whole) v = _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
                else v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, p), even, _mm512_maskz_loadu_ps(hi, p + 16));
                acc = max_nan16(acc, v);
            }
        }
        if (n == 16) _mm512_storeu_ps(yr + ox, acc);
        else _mm512_mask_storeu_ps(yr + ox, rx_lanes16(n), acc);
    }
}
#endif

static void run(const rx_exec *e)
{
    const rx_window *w = &e->layer->p.win;
    const int64_t h = e->in_shape[0]->d[1], wd = e->in_shape[0]->d[2];
    const int64_t oh = e->layer->out.d[1], ow = e->layer->out.d[2];
    const int64_t planes = e->batch * e->layer->out.d[0];
    const bool two_by_two = w->kh == 2 && w->kw == 2 && w->sh == 2 && w->sw == 2 && w->dh == 1 && w->dw == 1 &&
                            w->pt == 0 && w->pl == 0 && 2 * oh <= h && 2 * ow <= wd;
    /* [ox0, ox1): the outputs whose kw taps all land inside the row. */
    const int64_t ox0 = w->pl <= 0 ? 0 : (w->pl + w->sw - 1) / w->sw;
    int64_t ox1 = wd - (w->kw - 1) * w->dw + w->pl; /* x0 + span <= wd  <=>  ox * sw <= this - 1 */
    ox1 = ox1 <= 0 ? 0 : (ox1 - 1) / w->sw + 1;
    if (ox1 > ow) ox1 = ow;
    if (ox1 < ox0) ox1 = ox0;
#ifdef RX_POOL_AVX512
    const bool avx512 = rx_gemm_select() == &rx_gemm_avx512, ahead = planes * h * wd >= RX_AHEAD_FROM;
#endif
    RX_PARALLEL_FOR(planes * oh * ow > 16384 ? e->threads : 1, pl, planes, {
        const float *x = e->in[0] + pl * h * wd;
        float *y = e->out + pl * oh * ow;
        if (e->relu_in) { /* takes_relu: 2x2 windows tiling the plane */
            int64_t *zeros = e->in_zeros ? e->in_zeros + pl : NULL, *relu_zeros = e->relu_zeros ? e->relu_zeros + pl : NULL;
#ifdef RX_POOL_AVX512
            if (avx512 && 4 * oh * ow <= RX_LANES_MAX) {
                pool2x2_relu_avx512(x, oh, ow, y, zeros, relu_zeros, ahead);
                continue;
            }
#endif
            pool2x2_relu(x, oh, ow, y, zeros, relu_zeros);
            continue;
        }
        if (two_by_two) { /* the common case, without bounds checks */
#ifdef RX_POOL_AVX512
            if (avx512) {
                pool2x2_avx512(x, wd, oh, ow, y);
                continue;
            }
#endif
            pool2x2(x, wd, oh, ow, y);
            continue;
        }
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t y0 = oy * w->sh - w->pt, ki0, ki1;
            taps(y0, w->dh, w->kh, h, &ki0, &ki1);
            float *yr = y + oy * ow;
            /* Outputs whose window is whole: tap by tap over the row, so that
               the compiler vectorises across outputs; NaN wins, as in PyTorch. */
            for (int64_t ox = 0; ox < ox0; ox++) yr[ox] = edge(x, w, y0, ki0, ki1, ox, wd);
#ifdef RX_POOL_AVX512
            if (avx512 && (w->sw == 1 || w->sw == 2) && w->dw == 1) {
                interior_avx512(x, w, wd, y0, ki0, ki1, ox0, ox1, yr);
                for (int64_t ox = ox1 > ox0 ? ox1 : ox0; ox < ow; ox++) yr[ox] = edge(x, w, y0, ki0, ki1, ox, wd);
                continue;
            }
#endif
            for (int64_t ox = ox0; ox < ox1; ox++) yr[ox] = -INFINITY;
            for (int64_t ki = ki0; ki < ki1; ki++) {
                const float *row = x + (y0 + ki * w->dh) * wd - w->pl;
                for (int64_t kj = 0; kj < w->kw; kj++) {
                    const float *src = row + kj * w->dw;
                    const int64_t s = w->sw;
                    for (int64_t ox = ox0; ox < ox1; ox++) yr[ox] = max_nan(yr[ox], src[ox * s]);
                }
            }
            for (int64_t ox = ox1 > ox0 ? ox1 : ox0; ox < ow; ox++) yr[ox] = edge(x, w, y0, ki0, ki1, ox, wd);
        }
    });
}

const rx_op rx_op_maxpool = {
    .name = "maxpool", .fields = fields, .min_inputs = 1, .max_inputs = 1,
    .takes_relu = takes_relu, .parse = parse, .infer = infer, .run = run,
};
