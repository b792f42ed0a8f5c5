/* kernels.h: the compute loops shared by operators. */
#ifndef RX_KERNELS_H
#define RX_KERNELS_H

#include "../internal.h"
#include "gemm.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(RX_NO_MULTIVERSION)
#  define RX_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#  define RX_MULTIVERSION
#endif

/* A mask of the first n of 16 vector lanes (AVX-512's __mmask16), n
   clamped to 0..16: a partial vector's lanes. */
static inline uint16_t rx_lanes16(int64_t n)
{
    return n >= 16 ? (uint16_t)0xffff : n <= 0 ? (uint16_t)0 : (uint16_t)((1u << n) - 1);
}

#if defined(__x86_64__)
#include <immintrin.h>

/* The same for 8 lanes of AVX2, as an integer vector mask (maskload,
   maskstore). */
__attribute__((target("avx2"))) static inline __m256i rx_lanes8(int64_t n)
{
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(ones + 8 - (n < 0 ? 0 : n > 8 ? 8 : n)));
}

/* Floats ahead (8 KiB) that a pass over a convolution's output just
   written prefetches (maxpool.c's ReLU, zeros.c's ReLU): the output
   transform's scattered stores leave the lines slow to read, and the
   passes' own work per vector kept too few loads in flight. */
#define RX_AHEAD 2048
/* Floats from which a pass prefetches: on smaller tensors, in L2, the
   prefetches cost more than they save (prefetching, the CIFAR VGG's
   ReLUs took 4.4-4.5 us in all instead of 2.9-3.1, its pools 7.7 instead
   of 6.8; VGG-16's ReLU layers after its Winograd ones, one thread,
   0.69-0.73 -> 0.63-0.64 ms). */
#define RX_AHEAD_FROM (1 << 16)

/* A ReLU's counts in int32 lanes, integer operations only (zeros.c,
   maxpool.c): adds 1 to *pos in each lane where y = max(x, 0) is positive
   (its bits are nonzero: y is +0 for every other x, NaN included) and to
   *nonzero where x is not +0 or -0 (its bits shifted left by one are not
   all zero). */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
rx_relu_tally16(__m512 x, __m512 y, __m512i *pos, __m512i *nonzero)
{
    const __m512i one = _mm512_set1_epi32(1);
    *pos = _mm512_add_epi32(*pos, _mm512_min_epu32(_mm512_castps_si512(y), one));
    *nonzero = _mm512_add_epi32(*nonzero, _mm512_min_epu32(_mm512_slli_epi32(_mm512_castps_si512(x), 1), one));
}
#endif

typedef struct rx_conv_geometry {
    int64_t channels, height, width;    /* of one group's input */
    int64_t out_height, out_width;
    rx_window win;
} rx_conv_geometry;

/* Packs rows [k0, k0 + kc) of the im2col matrix for output pixels
   [p0, p0 + np) into panel slices of nr pixels (see im2col.c). */
void rx_im2col(const rx_conv_geometry *g, const float *in, int64_t p0, int64_t np, int64_t k0, int64_t kc, int nr,
               float *panel);

/* The same for a stride-1 convolution over "wide" pixels: output rows as
   wide as the padded input (`row` floats), so that each row of the im2col
   matrix is a contiguous run of `slab`, a padded copy of the input
   (`plane` floats per channel) that starts at the first pixel packed.
   Packs `slices` whole slices of nr pixels. */
void rx_pack_wide(const float *slab, int64_t plane, int64_t row, const rx_window *w, int64_t k0, int64_t kc,
                  int64_t slices, int nr, float *panel);

/* sum_i a[i] * b[i] */
float rx_dot(const float *a, const float *b, int64_t n);

/* counts[p] = how many of the plane floats at x + p * plane are zero (+0 or
   -0), for p < planes. */
void rx_count_zeros(const float *x, int64_t planes, int64_t plane, int64_t *counts);

/* totals[i] += 1 where x[i] is zero (+0 or -0), for i < n; returns how
   many were: a layer's zeros per unit (planes of one float) counted and
   added to its totals in one pass. */
int64_t rx_count_add(const float *x, int64_t n, int64_t *totals);

/* y = max(x, 0) over `planes` planes of `plane` floats (y may be x), with
   zeros[p] = the zeros of plane p of y and, when in_zeros is not NULL,
   in_zeros[p] = those of x: ReLU and the statistics of both sides in one
   pass (zeros NULL: no counts). NaN gives 0, as
   x > 0 ? x : 0 does. */
void rx_relu_count(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros, int64_t *in_zeros);

/* The ReLU fused into a convolution, on a block of its output while the
   block is in cache: y = max(x, 0) over `planes` planes (filters) of `rows`
   rows of n floats, x's planes xp floats apart and its rows xr, y's yp and
   yr (y may be x). With counts (zeros not NULL), zeros[p] gains the zeros
   of plane p's block of x and relu_zeros[p] those of y's. NaN gives 0. */
typedef struct rx_block {
    int64_t planes, rows, n;
    int64_t xp, xr, yp, yr;
} rx_block;

void rx_relu_block(const float *x, float *y, const rx_block *k, int64_t *zeros, int64_t *relu_zeros);

/* totals[i] += counts[i] for i < n; returns the sum of counts[0..n). */
int64_t rx_add_counts(const int64_t *counts, int64_t n, int64_t *totals);

/* How many of x[0..n) are NaN or infinite. */
int64_t rx_count_nonfinite(const float *x, int64_t n);

#endif
