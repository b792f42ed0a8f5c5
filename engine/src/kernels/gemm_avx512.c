/* gemm_avx512.c: 6 filters x 64 pixels, 24 zmm accumulators; the weights
   are broadcast from memory, four pixel vectors loaded per k. */
#include <immintrin.h>

#include "gemm.h"

#if defined(__x86_64__)
enum { MR = RX_MR, NR = 64 };

__attribute__((target("avx512f")))
static void kernel(int64_t k, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, int rows,
                   int cols, const float *bias, int init)
{
    __m512 r00, r01, r02, r03, r10, r11, r12, r13, r20, r21, r22, r23;
    __m512 r30, r31, r32, r33, r40, r41, r42, r43, r50, r51, r52, r53;
    __mmask16 m[4];
    for (int j = 0; j < 4; j++) {
        int left = cols - 16 * j;
        m[j] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
    }
#define LOAD(i, x0, x1, x2, x3)                                                                      \
    if (init) {                                                                                      \
        x0 = x1 = x2 = x3 = _mm512_set1_ps(bias && i < rows ? bias[i] : 0.0f);                      \
    } else if (i < rows) {                                                                           \
        x0 = _mm512_maskz_loadu_ps(m[0], c + i * ldc);                                               \
        x1 = _mm512_maskz_loadu_ps(m[1], c + i * ldc + 16);                                          \
        x2 = _mm512_maskz_loadu_ps(m[2], c + i * ldc + 32);                                          \
        x3 = _mm512_maskz_loadu_ps(m[3], c + i * ldc + 48);                                          \
    } else {                                                                                         \
        x0 = x1 = x2 = x3 = _mm512_setzero_ps();                                                     \
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
        x = _mm512_set1_ps(ap[i]);                                                                   \
        x0 = _mm512_fmadd_ps(x, b0, x0); x1 = _mm512_fmadd_ps(x, b1, x1);                            \
        x2 = _mm512_fmadd_ps(x, b2, x2); x3 = _mm512_fmadd_ps(x, b3, x3);
        ROW(0, r00, r01, r02, r03) ROW(1, r10, r11, r12, r13) ROW(2, r20, r21, r22, r23)
        ROW(3, r30, r31, r32, r33) ROW(4, r40, r41, r42, r43) ROW(5, r50, r51, r52, r53)
#undef ROW
    }
#define STORE(i, x0, x1, x2, x3)                                                                     \
    if (i < rows) {                                                                                  \
        _mm512_mask_storeu_ps(c + i * ldc, m[0], x0);                                                \
        _mm512_mask_storeu_ps(c + i * ldc + 16, m[1], x1);                                           \
        _mm512_mask_storeu_ps(c + i * ldc + 32, m[2], x2);                                           \
        _mm512_mask_storeu_ps(c + i * ldc + 48, m[3], x3);                                           \
    }
    STORE(0, r00, r01, r02, r03) STORE(1, r10, r11, r12, r13) STORE(2, r20, r21, r22, r23)
    STORE(3, r30, r31, r32, r33) STORE(4, r40, r41, r42, r43) STORE(5, r50, r51, r52, r53)
#undef STORE
}

/* Four rows at a time, two accumulators each: eight chains hide the FMA
   latency, and x is loaded once for four rows. */
__attribute__((target("avx512f")))
static void gemv(const float *w, int64_t rows, int64_t n, const float *x, const float *bias, float *y)
{
    const __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
    const int64_t body = n - n % 16;
    for (int64_t r = 0; r < rows; r += 4) {
        const float *w0 = w + r * n;
        const float *w1 = r + 1 < rows ? w0 + n : w0, *w2 = r + 2 < rows ? w0 + 2 * n : w0;
        const float *w3 = r + 3 < rows ? w0 + 3 * n : w0;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        int64_t i = 0;
        for (; i + 32 <= body; i += 32) {
            __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i + 16), x1, a1);
            b0 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i), x0, b0);
            b1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i + 16), x1, b1);
            c0 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i), x0, c0);
            c1 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i + 16), x1, c1);
            d0 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i), x0, d0);
            d1 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i + 16), x1, d1);
        }
        for (; i < n; i += 16) {
            __mmask16 m = i < body ? (__mmask16)0xffff : tail;
            __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w0 + i), x0, a0);
            b0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w1 + i), x0, b0);
            c0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w2 + i), x0, c0);
            d0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w3 + i), x0, d0);
        }
        float s[4] = {_mm512_reduce_add_ps(_mm512_add_ps(a0, a1)), _mm512_reduce_add_ps(_mm512_add_ps(b0, b1)),
                      _mm512_reduce_add_ps(_mm512_add_ps(c0, c1)), _mm512_reduce_add_ps(_mm512_add_ps(d0, d1))};
        for (int j = 0; j < 4 && r + j < rows; j++) y[r + j] = (bias ? bias[r + j] : 0.0f) + s[j];
    }
}

const rx_gemm_isa rx_gemm_avx512 = {"avx512", NR, kernel, gemv};
#else
const rx_gemm_isa rx_gemm_avx512 = {"avx512", 0, 0, 0};
#endif
