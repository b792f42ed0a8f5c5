/* zeros.c: the sparsity statistics' counting, on every run, so it must cost
   next to nothing: the zeros of each plane of a layer's output, and ReLU
   with the zeros of both its sides in its one pass.

   Planes are short in small nets (25 to 784 floats in LeNet-5), so the
   AVX-512 kernels count with a compare mask and a popcount per 16 floats
   and finish a plane with a masked tail: no horizontal sum per plane. On
   LeNet-5's shapes (6x784 to 16x25 floats, one thread, in cache) that made
   ReLU with counting 1.1 to 2.7 times and the count 1.1 to 2 times faster
   than the compiler's AVX-512 vectorisation of the generic loops. The same
   written for AVX2 (movemask, popcount) was no faster than the compiler's
   AVX2 clone of those loops, which other CPUs run. The ISA is the GEMM's
   (rx_gemm_select: RECTIFY_ISA applies). */
#include "kernels.h"

/* "The loop's iterations are independent" (y may be x, element by element),
   in each compiler's words. */
#if defined(__clang__)
#  define RX_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#  define RX_IVDEP _Pragma("GCC ivdep")
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#  include <immintrin.h>
#  define RX_X86 1
#  define AVX512 __attribute__((target("avx512f,popcnt")))
#endif

/* The portable loops, compiled for each x86 level (RX_MULTIVERSION):
   32-bit counters per stretch (16 lanes a vector when vectorised), no omp
   simd (its reduction goes through memory, slow on short planes). */
RX_MULTIVERSION
static void count_zeros_generic(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
    if (plane == 1) { /* dense layers: a channel is one value */
        for (int64_t p = 0; p < planes; p++) counts[p] = x[p] == 0.0f;
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *v = x + p * plane;
        int64_t total = 0;
        for (int64_t i0 = 0; i0 < plane; i0 += 1 << 30) {
            const int64_t n = plane - i0 < (1 << 30) ? plane - i0 : (1 << 30);
            int32_t z = 0;
            for (int64_t i = 0; i < n; i++) z += v[i0 + i] == 0.0f;
            total += z;
        }
        counts[p] = total;
    }
}

RX_MULTIVERSION
static void relu_count_generic(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros,
                               int64_t *in_zeros)
{
    if (!zeros) { /* statistics off */
        RX_IVDEP
        for (int64_t i = 0; i < planes * plane; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *a = x + p * plane;
        float *b = y + p * plane;
        int64_t out_total = 0, in_total = 0;
        for (int64_t i0 = 0; i0 < plane; i0 += 1 << 30) {
            const int64_t n = plane - i0 < (1 << 30) ? plane - i0 : (1 << 30);
            int32_t zo = 0, zi = 0;
            RX_IVDEP /* b may be a (in place): element i is read before it is written */
            for (int64_t i = i0; i < i0 + n; i++) {
                float v = a[i], r = v > 0.0f ? v : 0.0f;
                zi += v == 0.0f;
                zo += r == 0.0f;
                b[i] = r;
            }
            out_total += zo, in_total += zi;
        }
        zeros[p] = out_total;
        if (in_zeros) in_zeros[p] = in_total;
    }
}

/* rx_relu_block, portable. */
RX_MULTIVERSION
static void relu_block_generic(const float *x, float *y, const rx_block *k, int64_t *zeros, int64_t *relu_zeros)
{
    for (int64_t p = 0; p < k->planes; p++) {
        int64_t in_total = 0, out_total = 0;
        for (int64_t r = 0; r < k->rows; r++) {
            const float *a = x + p * k->xp + r * k->xr;
            float *b = y + p * k->yp + r * k->yr;
            if (!zeros) {
                RX_IVDEP
                for (int64_t i = 0; i < k->n; i++) b[i] = a[i] > 0.0f ? a[i] : 0.0f;
                continue;
            }
            for (int64_t i0 = 0; i0 < k->n; i0 += 1 << 30) {
                const int64_t end = k->n - i0 < (1 << 30) ? k->n : i0 + (1 << 30);
                int32_t zi = 0, zo = 0;
                RX_IVDEP /* b may be a (in place): element i is read before it is written */
                for (int64_t i = i0; i < end; i++) {
                    float v = a[i], o = v > 0.0f ? v : 0.0f;
                    zi += v == 0.0f;
                    zo += o == 0.0f;
                    b[i] = o;
                }
                in_total += zi, out_total += zo;
            }
        }
        if (zeros) zeros[p] += in_total, relu_zeros[p] += out_total;
    }
}

#ifdef RX_X86
/* Lanes set in a mask, as a 32-bit popcount: GCC's 16-bit one (popcnt %ax)
   merges into the register's old value, chaining every count of a loop. */
static inline int64_t rx_popcount16(unsigned m)
{
    unsigned r;
    __asm__("popcnt %1, %0" : "=r"(r) : "r"(m));
    return r;
}

/* counts[p .. p + 16) = the lanes of mask m as 0 or 1. */
AVX512 static inline void store_flags(int64_t *counts, __mmask16 m)
{
    const __m512i one = _mm512_set1_epi64(1);
    _mm512_storeu_si512(counts, _mm512_maskz_mov_epi64((__mmask8)m, one));
    _mm512_storeu_si512(counts + 8, _mm512_maskz_mov_epi64((__mmask8)(m >> 8), one));
}

/* Planes of 17 to RX_SHORT_PLANE floats that end inside a vector are
   counted as one stream of vectors, a plane's end falling inside a vector
   (at most one there): counted alone, such a plane pays for its own masked
   tail and counters. In cache, ReLU with counts in time-stamp ticks a
   vector, alone / streamed: 16 planes of 100 floats 3.94 / 2.08, 16 of 25
   11.5 / 4.03, 6 of 196 2.66 / 1.93. Planes of whole vectors stay alone
   (64 of 256: 1.51 / 1.63, 128 of 64: 1.70 / 1.95). */
#define RX_SHORT_PLANE 512

static inline bool rx_streamed(int64_t plane)
{
    return plane >= 16 && plane < RX_SHORT_PLANE && plane % 16;
}

/* One vector at offset i, its mask bits a_bits and b_bits, into plane p's
   totals sa and sb; where p ends inside the vector (at `end`), the lanes
   before it close p (CLOSE) and the rest start plane p + 1. */
#define RX_STREAM_STEP(i, a_bits, b_bits, CLOSE)                                \
    do {                                                                        \
        if (end >= (i) + 16) {                                                  \
            sa += rx_popcount16(a_bits), sb += rx_popcount16(b_bits);           \
        } else {                                                                \
            const __mmask16 lo = rx_lanes16(end - (i));                         \
            sa += rx_popcount16((a_bits) & lo), sb += rx_popcount16((b_bits) & lo); \
            CLOSE;                                                              \
            p++, end += plane;                                                  \
            sa = rx_popcount16((a_bits) & ~lo), sb = rx_popcount16((b_bits) & ~lo); \
        }                                                                       \
    } while (0)

AVX512 static void count_short_planes(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
    const __m512 zero = _mm512_setzero_ps();
    const int64_t total = planes * plane;
    int64_t p = 0, end = plane, sa = 0, sb = 0;
    for (int64_t i = 0; i < total; i += 16) { /* masked loads: no store to keep whole */
        const __mmask16 m = rx_lanes16(total - i);
        const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i), zero, _CMP_EQ_OQ);
        RX_STREAM_STEP(i, eq, 0, counts[p] = sa);
    }
    if (p < planes) counts[p] = sa;
}

AVX512 static void count_zeros_avx512(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
    const __m512 zero = _mm512_setzero_ps();
    if (plane == 1) {
        int64_t p = 0;
        for (; p + 16 <= planes; p += 16) store_flags(counts + p, _mm512_cmp_ps_mask(_mm512_loadu_ps(x + p), zero, _CMP_EQ_OQ));
        for (; p < planes; p++) counts[p] = x[p] == 0.0f;
        return;
    }
    if (rx_streamed(plane)) {
        count_short_planes(x, planes, plane, counts);
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *v = x + p * plane;
        int64_t z0 = 0, z1 = 0, i = 0;
        for (; i + 32 <= plane; i += 32) { /* two chains: one popcount-add a cycle each */
            z0 += rx_popcount16(_mm512_cmp_ps_mask(_mm512_loadu_ps(v + i), zero, _CMP_EQ_OQ));
            z1 += rx_popcount16(_mm512_cmp_ps_mask(_mm512_loadu_ps(v + i + 16), zero, _CMP_EQ_OQ));
        }
        for (; i < plane; i += 16) {
            const __mmask16 m = rx_lanes16(plane - i);
            z1 += rx_popcount16(_mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, v + i), zero, _CMP_EQ_OQ));
        }
        counts[p] = z0 + z1;
    }
}

/* ReLU of planes of 16 to RX_SHORT_PLANE floats as one stream: zeros[p]
   of the output, in_zeros[p] (when not NULL) of the input. */
AVX512 static void relu_short_planes(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros,
                                     int64_t *in_zeros)
{
    const __m512 zero = _mm512_setzero_ps();
    const int64_t total = planes * plane;
    int64_t p = 0, end = plane, sa = 0, sb = 0, i = 0;
#define RX_CLOSE_RELU (zeros[p] = plane - sa, in_zeros ? in_zeros[p] = sb : 0)
    for (; i + 16 <= total; i += 16) { /* y may be x: each vector is read before it is written */
        const __m512 v = _mm512_loadu_ps(x + i);
        const __mmask16 gt = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), eq = _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ);
        _mm512_storeu_ps(y + i, _mm512_maskz_mov_ps(gt, v));
        RX_STREAM_STEP(i, gt, eq, RX_CLOSE_RELU);
    }
    if (i < total) {
        const __mmask16 m = rx_lanes16(total - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, zero, _CMP_GT_OQ);
        const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, v, zero, _CMP_EQ_OQ);
        _mm512_mask_storeu_ps(y + i, m, _mm512_maskz_mov_ps(gt, v));
        RX_STREAM_STEP(i, gt, eq, RX_CLOSE_RELU);
    }
    if (p < planes) RX_CLOSE_RELU;
#undef RX_CLOSE_RELU
}

/* b = max(a, 0) over n floats (b may be a: each vector is read before it
   is written); *eq gains the zeros of a, *pos its positives, added once at
   the end (the vector stores may alias anything: counting through the
   pointers made the CIFAR VGG's ReLUs 40% slower). The last vector masked:
   a masked store costs more than a plain one on Zen. */
AVX512 static inline __attribute__((always_inline)) void relu_run(const float *a, float *b, int64_t n, int64_t *eq,
                                                                  int64_t *pos)
{
    const __m512 zero = _mm512_setzero_ps();
    int64_t e = 0, g = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(a + i);
        const __mmask16 gt = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        e += rx_popcount16(_mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ));
        g += rx_popcount16(gt);
        _mm512_storeu_ps(b + i, _mm512_maskz_mov_ps(gt, v));
    }
    if (i < n) {
        const __mmask16 m = rx_lanes16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, a + i);
        const __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, zero, _CMP_GT_OQ);
        e += rx_popcount16(_mm512_mask_cmp_ps_mask(m, v, zero, _CMP_EQ_OQ));
        g += rx_popcount16(gt);
        _mm512_mask_storeu_ps(b + i, m, _mm512_maskz_mov_ps(gt, v));
    }
    *eq += e, *pos += g;
}

/* With counts (zeros not NULL): without, the generic loop is as fast. */
AVX512 static void relu_count_avx512(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros,
                                     int64_t *in_zeros)
{
    const __m512 zero = _mm512_setzero_ps();
    if (plane == 1) { /* dense layers: zeros and in_zeros are flags */
        int64_t p = 0;
        for (; p + 16 <= planes; p += 16) {
            const __m512 v = _mm512_loadu_ps(x + p);
            const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
            if (in_zeros) store_flags(in_zeros + p, _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ));
            store_flags(zeros + p, (__mmask16)~pos);
            _mm512_storeu_ps(y + p, _mm512_maskz_mov_ps(pos, v));
        }
        for (; p < planes; p++) {
            const float v = x[p];
            if (in_zeros) in_zeros[p] = v == 0.0f;
            zeros[p] = !(v > 0.0f);
            y[p] = v > 0.0f ? v : 0.0f;
        }
        return;
    }
    if (rx_streamed(plane)) {
        relu_short_planes(x, y, planes, plane, zeros, in_zeros);
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *a = x + p * plane;
        float *b = y + p * plane;
        int64_t pos = 0, eq = 0;
        relu_run(a, b, plane, &eq, &pos);
        zeros[p] = plane - pos;
        if (in_zeros) in_zeros[p] = eq;
    }
}

AVX512 static void relu_block_avx512(const float *x, float *y, const rx_block *k, int64_t *zeros,
                                     int64_t *relu_zeros)
{
    for (int64_t p = 0; p < k->planes; p++) {
        int64_t pos = 0, eq = 0;
        for (int64_t r = 0; r < k->rows; r++) relu_run(x + p * k->xp + r * k->xr, y + p * k->yp + r * k->yr, k->n, &eq, &pos);
        zeros[p] += eq;
        relu_zeros[p] += k->rows * k->n - pos;
    }
}
#endif

void rx_relu_block(const float *x, float *y, const rx_block *k, int64_t *zeros, int64_t *relu_zeros)
{
#ifdef RX_X86
    if (zeros && rx_gemm_select() == &rx_gemm_avx512) relu_block_avx512(x, y, k, zeros, relu_zeros);
    else
#endif
    relu_block_generic(x, y, k, zeros, relu_zeros);
}

void rx_count_zeros(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
#ifdef RX_X86
    if (rx_gemm_select() == &rx_gemm_avx512) count_zeros_avx512(x, planes, plane, counts);
    else
#endif
    count_zeros_generic(x, planes, plane, counts);
}

void rx_relu_count(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros, int64_t *in_zeros)
{
#ifdef RX_X86
    if (zeros && rx_gemm_select() == &rx_gemm_avx512) relu_count_avx512(x, y, planes, plane, zeros, in_zeros);
    else
#endif
    relu_count_generic(x, y, planes, plane, zeros, in_zeros);
}
