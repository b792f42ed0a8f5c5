/* gemm_avx2.c: 6 filters x 16 pixels, twelve ymm accumulators (AVX2+FMA). */
#include <immintrin.h>

#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
enum { MR = RX_MR, NR = 16 };

__attribute__((target("avx2,fma")))
static void kernel(int64_t k, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, int rows,
                   int cols, const float *bias, int init)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    /* masks for a partial tile of pixels */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
#define LOAD(i, r0, r1)                                                                         \
    if (init) {                                                                                 \
        r0 = r1 = _mm256_set1_ps(bias && i < rows ? bias[i] : 0.0f);                            \
    } else if (i < rows) {                                                                      \
        r0 = _mm256_maskload_ps(c + i * ldc, m0);                                               \
        r1 = _mm256_maskload_ps(c + i * ldc + 8, m1);                                           \
    } else {                                                                                    \
        r0 = r1 = _mm256_setzero_ps();                                                          \
    }
    LOAD(0, c00, c01) LOAD(1, c10, c11) LOAD(2, c20, c21) LOAD(3, c30, c31) LOAD(4, c40, c41) LOAD(5, c50, c51)
#undef LOAD
    for (int64_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b + p * NR), b1 = _mm256_load_ps(b + p * NR + 8);
        const float *ap = a + p * lda;
        __m256 x;
        x = _mm256_broadcast_ss(ap + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ap + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ap + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ap + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(ap + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(ap + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
#define STORE(i, r0, r1)                                                                        \
    if (i < rows) {                                                                             \
        _mm256_maskstore_ps(c + i * ldc, m0, r0);                                               \
        _mm256_maskstore_ps(c + i * ldc + 8, m1, r1);                                           \
    }
    STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41)
    STORE(5, c50, c51)
#undef STORE
}

__attribute__((target("avx2,fma")))
static float sum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Two rows at a time, two accumulators each: four chains hide FMA latency. */
__attribute__((target("avx2,fma")))
static void gemv(const float *w, int64_t rows, int64_t n, const float *x, const float *bias, float *y)
{
    int64_t r = 0;
    for (; r < rows; r += 2) {
        const float *w0 = w + r * n, *w1 = r + 1 < rows ? w0 + n : w0;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i + 8), x1, a1);
            b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), x0, b0);
            b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i + 8), x1, b1);
        }
        float s0 = sum8(_mm256_add_ps(a0, a1)), s1 = sum8(_mm256_add_ps(b0, b1));
        for (; i < n; i++) s0 += w0[i] * x[i], s1 += w1[i] * x[i];
        y[r] = (bias ? bias[r] : 0.0f) + s0;
        if (r + 1 < rows) y[r + 1] = (bias ? bias[r + 1] : 0.0f) + s1;
    }
}

const rx_gemm_isa rx_gemm_avx2 = {"avx2", NR, kernel, gemv};
#else
const rx_gemm_isa rx_gemm_avx2 = {"avx2", 0, 0, 0};
#endif
