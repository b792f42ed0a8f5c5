/* zeros.c: the sparsity statistics' counting, on every run, so it must cost
   next to nothing: the zeros of each plane of a layer's output, and ReLU
   with the zeros of both its sides in its one pass.

   Planes are short in small nets (25 to 784 floats in LeNet-5), so the
   AVX-512 kernels count with a compare mask and a popcount per 16 floats
   and finish a plane with a masked tail: no horizontal sum per plane
   (except a ReLU on planes of 256 floats or more, or in a convolution's
   blocks, which counts in vector lanes: relu_tally). On
   LeNet-5's shapes (6x784 to 16x25 floats, one thread, in cache) that made
   ReLU with counting 1.1 to 2.7 times and the count 1.1 to 2 times faster
   than the compiler's AVX-512 vectorisation of the generic loops. The same
   written for AVX2 (movemask, popcount) was no faster than the compiler's
   AVX2 clone of those loops, which other CPUs run, but for a convolution's
   fused ReLU, which counts in lanes with AVX2 too (relu_block_avx2). The
   ISA is the GEMM's (rx_gemm_select: RECTIFY_ISA applies). */
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
static int64_t count_add_generic(const float *x, int64_t n, int64_t *totals)
{
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t z = x[i] == 0.0f;
        totals[i] += z;
        total += z;
    }
    return total;
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

/* Plain loads but for the last vector: masked loads throughout took 1.3x
   to 1.8x the time (planes 6 of 196 floats, 16 of 25, AlexNet's 64 of 169,
   VGG-16's 512 of 196: 139/71/1411/11588 ticks, now 88/55/785/7468). */
AVX512 static void count_short_planes(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
    const __m512 zero = _mm512_setzero_ps();
    const int64_t total = planes * plane;
    int64_t p = 0, end = plane, sa = 0, sb = 0, i = 0;
    for (; i + 16 <= total; i += 16) {
        const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), zero, _CMP_EQ_OQ);
        RX_STREAM_STEP(i, eq, 0, counts[p] = sa);
    }
    if (i < total) {
        const __mmask16 m = rx_lanes16(total - i);
        const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i), zero, _CMP_EQ_OQ);
        RX_STREAM_STEP(i, eq, 0, counts[p] = sa);
    }
    if (p < planes) counts[p] = sa;
}

AVX512 static void count_zeros_avx512(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
    const __m512 zero = _mm512_setzero_ps();
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

/* totals[i] += x[i] == 0 for the lanes of m (i from 0, 16 of them): the
   flags' mask subtracts -1 from two vectors of totals; returns how many. */
AVX512 static inline __attribute__((always_inline)) int64_t count_add16(const float *x, __mmask16 m, int64_t *totals)
{
    const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x), _mm512_setzero_ps(), _CMP_EQ_OQ);
    const __m512i minus_one = _mm512_set1_epi64(-1);
    const __m512i a = _mm512_maskz_loadu_epi64((__mmask8)m, totals);
    const __m512i b = _mm512_maskz_loadu_epi64((__mmask8)(m >> 8), totals + 8);
    _mm512_mask_storeu_epi64(totals, (__mmask8)m, _mm512_mask_sub_epi64(a, (__mmask8)eq, a, minus_one));
    _mm512_mask_storeu_epi64(totals + 8, (__mmask8)(m >> 8), _mm512_mask_sub_epi64(b, (__mmask8)(eq >> 8), b, minus_one));
    return rx_popcount16(eq);
}

/* Whole vectors, then the last masked (a constant mask compiles to plain
   loads and stores). */
AVX512 static int64_t count_add_avx512(const float *x, int64_t n, int64_t *totals)
{
    int64_t total = 0, i = 0;
    for (; i + 16 <= n; i += 16) total += count_add16(x + i, 0xffff, totals + i);
    if (i < n) total += count_add16(x + i, rx_lanes16(n - i), totals + i);
    return total;
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

/* A ReLU's counts: zeros of its input and positives of its output, in
   one of two ways. In vector lanes (int32) with integer operations only:
   y's bits are nonzero where y > 0 (y = max(x, 0) is +0 for every other
   x, NaN included) and x's bits shifted left by one are zero where x is
   +0 or -0, so min(bits, 1) added into the lanes counts the positives of y
   and the nonzeros of x, summed across the lanes at the end. Against
   popcounts of compare masks, a convolution's fused blocks took 0.71x,
   0.69x and 0.87x the time (LeNet-5's 6 planes of 28 rows of 28 floats, 16
   of 10 of 10; VGG-16's 16 of 2 of 224) and planes of 1024 and 256 floats
   in place 0.70x and 0.80x; against compare masks subtracted into the lanes
   (two compares a vector: the pass is bound by its vector operations),
   32 planes of 1024 floats just written by a scattered store took 0.90x
   (3633 -> 3276 ticks; the ReLU alone takes 1743). On planes of fewer than
   RX_LANES_PLANE floats, summing each one's lanes cost more (128 planes of
   64: 1.16x, 64 of 16: 2.7x): they count with popcounts, into eq and pos. */
typedef struct relu_tally {
    __m512i lane_nonzero, lane_pos;
    int64_t lane_floats; /* counted in the lanes */
    int64_t eq, pos;
} relu_tally;

#define RX_LANES_PLANE 256

AVX512 static inline relu_tally relu_tally_zero(void)
{
    return (relu_tally){_mm512_setzero_si512(), _mm512_setzero_si512(), 0, 0, 0};
}

/* The lanes' sums, into eq and pos (int32 as the lanes are: at most
   RX_RELU_RUN floats counted in them). */
AVX512 static inline relu_tally relu_tally_sum(relu_tally t)
{
    t.eq += t.lane_floats - _mm512_reduce_add_epi32(t.lane_nonzero);
    t.pos += _mm512_reduce_add_epi32(t.lane_pos);
    t.lane_nonzero = t.lane_pos = _mm512_setzero_si512();
    t.lane_floats = 0;
    return t;
}

/* Floats counted in lanes before they are summed. */
#define RX_RELU_RUN ((int64_t)1 << 30)

/* b = max(a, 0) over n floats, n at most RX_RELU_RUN (b may be a: each
   vector is read before it is written), counted into t in its lanes or,
   not `lanes`, with popcounts (a constant: the function is inlined). The
   last vector masked: a masked store costs more than a plain one on Zen.
   Its lanes past n load as +0: neither positive nor nonzero. */
AVX512 static inline __attribute__((always_inline)) void relu_run(const float *a, float *b, int64_t n, relu_tally *t,
                                                                  bool lanes, bool ahead)
{
    const __m512 zero = _mm512_setzero_ps();
    int64_t i = 0;
    if (lanes) {
        __m512i nonzero = t->lane_nonzero, pos = t->lane_pos; /* the stores may alias t: kept in locals */
        for (; i + 16 <= n; i += 16) {
            if (ahead) _mm_prefetch((const char *)(a + i + RX_AHEAD), _MM_HINT_T0);
            const __m512 v = _mm512_loadu_ps(a + i), y = _mm512_max_ps(v, zero); /* NaN: the second, 0 */
            _mm512_storeu_ps(b + i, y);
            rx_relu_tally16(v, y, &pos, &nonzero);
        }
        if (i < n) {
            const __mmask16 m = rx_lanes16(n - i);
            const __m512 v = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_max_ps(v, zero);
            _mm512_mask_storeu_ps(b + i, m, y);
            rx_relu_tally16(v, y, &pos, &nonzero);
        }
        t->lane_nonzero = nonzero, t->lane_pos = pos, t->lane_floats += n;
        return;
    }
    int64_t eq = 0, pos = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(a + i);
        const __mmask16 gt = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        eq += rx_popcount16(_mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ)), pos += rx_popcount16(gt);
        _mm512_storeu_ps(b + i, _mm512_maskz_mov_ps(gt, v));
    }
    if (i < n) {
        const __mmask16 m = rx_lanes16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, a + i);
        const __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, zero, _CMP_GT_OQ);
        eq += rx_popcount16(_mm512_mask_cmp_ps_mask(m, v, zero, _CMP_EQ_OQ)), pos += rx_popcount16(gt);
        _mm512_mask_storeu_ps(b + i, m, _mm512_maskz_mov_ps(gt, v));
    }
    t->eq += eq, t->pos += pos;
}

/* With counts (zeros not NULL): without, the generic loop is as fast. */
AVX512 static void relu_count_avx512(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros,
                                     int64_t *in_zeros)
{
    if (rx_streamed(plane)) {
        relu_short_planes(x, y, planes, plane, zeros, in_zeros);
        return;
    }
    const bool ahead = planes * plane >= RX_AHEAD_FROM;
    for (int64_t p = 0; p < planes; p++) {
        relu_tally t = relu_tally_zero();
        if (plane < RX_LANES_PLANE) {
            relu_run(x + p * plane, y + p * plane, plane, &t, false, false);
        } else {
            for (int64_t i = 0; i < plane; i += RX_RELU_RUN) {
                const int64_t n = plane - i < RX_RELU_RUN ? plane - i : RX_RELU_RUN;
                if (ahead) relu_run(x + p * plane + i, y + p * plane + i, n, &t, true, true);
                else relu_run(x + p * plane + i, y + p * plane + i, n, &t, true, false);
                t = relu_tally_sum(t);
            }
        }
        zeros[p] = plane - t.pos;
        if (in_zeros) in_zeros[p] = t.eq;
    }
}

AVX512 static void relu_block_avx512(const float *x, float *y, const rx_block *k, int64_t *zeros,
                                     int64_t *relu_zeros)
{
    for (int64_t p = 0; p < k->planes; p++) { /* a task's block: RX_WIDE_MAX floats at most (conv.c) */
        relu_tally t = relu_tally_zero();
        for (int64_t r = 0; r < k->rows; r++)
            relu_run(x + p * k->xp + r * k->xr, y + p * k->yp + r * k->yr, k->n, &t, true, false);
        if (!zeros) continue; /* statistics off: the lanes' counts are dropped (the
                                 portable loop, which LeNet-5 ran then, was 1.5% slower) */
        t = relu_tally_sum(t);
        zeros[p] += t.eq;
        relu_zeros[p] += k->rows * k->n - t.pos;
    }
}
#endif

#ifdef RX_X86
/* A convolution's fused ReLU with AVX2, counting in vector lanes (8 a
   vector) as relu_run does: the compiler's AVX2 clone of the portable
   loop summed each row's lanes and ran a row's last floats one at a time,
   so that on AVX2 LeNet-5's statistics (rows of 28 and 10 floats) cost
   9.5-12.7% of its run; now 3.0-3.7% (RECTIFY_ISA=avx2, five processes
   each, alternated), its run with them 0.0216-0.0219 -> 0.0198-0.0201 ms.
   A ReLU layer in place keeps the portable loop: the same lanes there made
   the CIFAR VGG's statistics no cheaper (1.013-1.016 -> 1.024-1.027). */
#  define AVX2 __attribute__((target("avx2")))

typedef struct relu_tally8 {
    __m256i nonzero, pos; /* lanes: nonzeros of the input, positives of the output */
    int64_t floats;       /* counted in them */
} relu_tally8;

AVX2 static inline int64_t rx_sum8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* relu_run's lanes with AVX2: b = max(a, 0) over n floats (n at most
   RX_RELU_RUN; b may be a), the last vector masked. */
AVX2 static inline __attribute__((always_inline)) void relu_run8(const float *a, float *b, int64_t n, relu_tally8 *t)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256i one = _mm256_set1_epi32(1);
    __m256i nonzero = t->nonzero, pos = t->pos; /* the stores may alias t: kept in locals */
    int64_t i = 0;
#define RX_RELU_LANES8(v, y)                                                                                   \
    (pos = _mm256_add_epi32(pos, _mm256_min_epu32(_mm256_castps_si256(y), one)),                               \
     nonzero = _mm256_add_epi32(nonzero, _mm256_min_epu32(_mm256_slli_epi32(_mm256_castps_si256(v), 1), one)))
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(a + i), y = _mm256_max_ps(v, zero); /* NaN: the second, 0 */
        _mm256_storeu_ps(b + i, y);
        RX_RELU_LANES8(v, y);
    }
    if (i < n) {
        const __m256i m = rx_lanes8(n - i);
        const __m256 v = _mm256_maskload_ps(a + i, m), y = _mm256_max_ps(v, zero); /* lanes past n: +0 */
        _mm256_maskstore_ps(b + i, m, y);
        RX_RELU_LANES8(v, y);
    }
#undef RX_RELU_LANES8
    t->nonzero = nonzero, t->pos = pos, t->floats += n;
}

AVX2 static void relu_block_avx2(const float *x, float *y, const rx_block *k, int64_t *zeros, int64_t *relu_zeros)
{
    for (int64_t p = 0; p < k->planes; p++) { /* a task's block: RX_WIDE_MAX floats at most (conv.c) */
        relu_tally8 t = {_mm256_setzero_si256(), _mm256_setzero_si256(), 0};
        for (int64_t r = 0; r < k->rows; r++) relu_run8(x + p * k->xp + r * k->xr, y + p * k->yp + r * k->yr, k->n, &t);
        if (!zeros) continue;
        zeros[p] += t.floats - rx_sum8(t.nonzero);
        relu_zeros[p] += t.floats - rx_sum8(t.pos);
    }
}

#endif

void rx_relu_block(const float *x, float *y, const rx_block *k, int64_t *zeros, int64_t *relu_zeros)
{
#ifdef RX_X86
    const rx_gemm_isa *isa = rx_gemm_select();
    if (isa == &rx_gemm_avx512) relu_block_avx512(x, y, k, zeros, relu_zeros);
    else if (isa == &rx_gemm_avx2) relu_block_avx2(x, y, k, zeros, relu_zeros);
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

int64_t rx_count_add(const float *x, int64_t n, int64_t *totals)
{
#ifdef RX_X86
    if (rx_gemm_select() == &rx_gemm_avx512) return count_add_avx512(x, n, totals);
#endif
    return count_add_generic(x, n, totals);
}

void rx_relu_count(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros, int64_t *in_zeros)
{
#ifdef RX_X86
    const rx_gemm_isa *isa = zeros ? rx_gemm_select() : NULL;
    if (isa == &rx_gemm_avx512) relu_count_avx512(x, y, planes, plane, zeros, in_zeros);
    else
#endif
    relu_count_generic(x, y, planes, plane, zeros, in_zeros);
}
