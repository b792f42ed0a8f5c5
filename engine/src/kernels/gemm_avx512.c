/* gemm_avx512.c: 6 filters x 64 pixels, 24 zmm accumulators; the weights
   are broadcast from memory, four pixel vectors loaded per k. */
#include <immintrin.h>

#include "kernels.h"

#if defined(__x86_64__)
enum { MR = RX_MR, NR = 64 };

/* R rows (filters, or Winograd's tiles) of the micro-tile, a constant in
   each instance below: a partial tile (the 4 filters left of 16, the 1 tile
   left of VGG's 49 on 14x14) costs its rows, not six. */
__attribute__((target("avx512f"), always_inline))
static inline void tile(int64_t k, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, const int R,
                        int cols, const float *bias, int init)
{
    __m512 r00, r01, r02, r03, r10, r11, r12, r13, r20, r21, r22, r23;
    __m512 r30, r31, r32, r33, r40, r41, r42, r43, r50, r51, r52, r53;
    __mmask16 m[4];
    for (int j = 0; j < 4; j++) {
        int left = cols - 16 * j;
        m[j] = rx_lanes16(left);
    }
#define LOAD(i, x0, x1, x2, x3)                                                                      \
    if (i >= R) {                                                                                    \
        x0 = x1 = x2 = x3 = _mm512_setzero_ps();                                                     \
    } else if (init) {                                                                               \
        x0 = x1 = x2 = x3 = _mm512_set1_ps(bias ? bias[i] : 0.0f);                                   \
    } else {                                                                                         \
        x0 = _mm512_maskz_loadu_ps(m[0], c + i * ldc);                                               \
        x1 = _mm512_maskz_loadu_ps(m[1], c + i * ldc + 16);                                          \
        x2 = _mm512_maskz_loadu_ps(m[2], c + i * ldc + 32);                                          \
        x3 = _mm512_maskz_loadu_ps(m[3], c + i * ldc + 48);                                          \
    }
    LOAD(0, r00, r01, r02, r03) LOAD(1, r10, r11, r12, r13) LOAD(2, r20, r21, r22, r23)
    LOAD(3, r30, r31, r32, r33) LOAD(4, r40, r41, r42, r43) LOAD(5, r50, r51, r52, r53)
#undef LOAD
    for (int64_t p = 0; p < k; p++) {
        const float *bp = b + p * NR, *ap = a + p * lda;
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        __m512 b2 = _mm512_load_ps(bp + 32), b3 = _mm512_load_ps(bp + 48);
        __m512 x;
#define ROW(i, x0, x1, x2, x3)                                                                       \
        if (i < R) {                                                                                 \
            x = _mm512_set1_ps(ap[i]);                                                               \
            x0 = _mm512_fmadd_ps(x, b0, x0); x1 = _mm512_fmadd_ps(x, b1, x1);                        \
            x2 = _mm512_fmadd_ps(x, b2, x2); x3 = _mm512_fmadd_ps(x, b3, x3);                        \
        }
        ROW(0, r00, r01, r02, r03) ROW(1, r10, r11, r12, r13) ROW(2, r20, r21, r22, r23)
        ROW(3, r30, r31, r32, r33) ROW(4, r40, r41, r42, r43) ROW(5, r50, r51, r52, r53)
#undef ROW
    }
#define STORE(i, x0, x1, x2, x3)                                                                     \
    if (i < R) {                                                                                  \
        _mm512_mask_storeu_ps(c + i * ldc, m[0], x0);                                                \
        _mm512_mask_storeu_ps(c + i * ldc + 16, m[1], x1);                                           \
        _mm512_mask_storeu_ps(c + i * ldc + 32, m[2], x2);                                           \
        _mm512_mask_storeu_ps(c + i * ldc + 48, m[3], x3);                                           \
    }
    STORE(0, r00, r01, r02, r03) STORE(1, r10, r11, r12, r13) STORE(2, r20, r21, r22, r23)
    STORE(3, r30, r31, r32, r33) STORE(4, r40, r41, r42, r43) STORE(5, r50, r51, r52, r53)
#undef STORE
}

RX_KERNEL_BY_ROWS("avx512f", tile)

/* Eight rows of w at a time: y is loaded and stored once per eight rows,
   and eight streams of weights keep the prefetchers busy. */
__attribute__((target("avx512f")))
static void gemv(const float *w, int64_t ld, int64_t width, const int32_t *idx, const float *val, int64_t nnz,
                 float *y)
{
    const int64_t body = width - width % 16;
    const __mmask16 tail = (__mmask16)((1u << (width % 16)) - 1);
    int64_t k = 0;
    for (; k + 8 <= nnz; k += 8) {
        const float *r0 = w + idx[k] * ld, *r1 = w + idx[k + 1] * ld, *r2 = w + idx[k + 2] * ld;
        const float *r3 = w + idx[k + 3] * ld, *r4 = w + idx[k + 4] * ld, *r5 = w + idx[k + 5] * ld;
        const float *r6 = w + idx[k + 6] * ld, *r7 = w + idx[k + 7] * ld;
        const __m512 v0 = _mm512_set1_ps(val[k]), v1 = _mm512_set1_ps(val[k + 1]);
        const __m512 v2 = _mm512_set1_ps(val[k + 2]), v3 = _mm512_set1_ps(val[k + 3]);
        const __m512 v4 = _mm512_set1_ps(val[k + 4]), v5 = _mm512_set1_ps(val[k + 5]);
        const __m512 v6 = _mm512_set1_ps(val[k + 6]), v7 = _mm512_set1_ps(val[k + 7]);
        int64_t u = 0;
#define ROWS(a, load, at)                                                                            \
        a = _mm512_fmadd_ps(v0, load(r0 + at), a); a = _mm512_fmadd_ps(v1, load(r1 + at), a);       \
        a = _mm512_fmadd_ps(v2, load(r2 + at), a); a = _mm512_fmadd_ps(v3, load(r3 + at), a);       \
        a = _mm512_fmadd_ps(v4, load(r4 + at), a); a = _mm512_fmadd_ps(v5, load(r5 + at), a);       \
        a = _mm512_fmadd_ps(v6, load(r6 + at), a); a = _mm512_fmadd_ps(v7, load(r7 + at), a);
        for (; u + 32 <= body; u += 32) {
            __m512 a = _mm512_loadu_ps(y + u), b = _mm512_loadu_ps(y + u + 16);
            ROWS(a, _mm512_loadu_ps, u) ROWS(b, _mm512_loadu_ps, u + 16)
            _mm512_storeu_ps(y + u, a);
            _mm512_storeu_ps(y + u + 16, b);
        }
        for (; u < width; u += 16) {
            const __mmask16 m = u < body ? (__mmask16)0xffff : tail;
#define MASKED(p) _mm512_maskz_loadu_ps(m, p)
            __m512 a = MASKED(y + u);
            ROWS(a, MASKED, u)
            _mm512_mask_storeu_ps(y + u, m, a);
#undef MASKED
        }
#undef ROWS
    }
    for (; k < nnz; k++) {
        const float *r = w + idx[k] * ld;
        const __m512 v = _mm512_set1_ps(val[k]);
        for (int64_t u = 0; u < width; u += 16) {
            const __mmask16 m = u < body ? (__mmask16)0xffff : tail;
            __m512 a = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, r + u), _mm512_maskz_loadu_ps(m, y + u));
            _mm512_mask_storeu_ps(y + u, m, a);
        }
    }
}

const rx_gemm_isa rx_gemm_avx512 = {"avx512", NR, kernel, gemv};
#else
const rx_gemm_isa rx_gemm_avx512 = {"avx512", 0, 0, 0};
#endif
