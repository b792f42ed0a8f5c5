/* gemm_avx2.c: 6 filters x 16 pixels, twelve ymm accumulators (AVX2+FMA). */
#include <immintrin.h>

#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
enum { MR = RX_MR, NR = 16 };

/* R rows, a constant in each instance: a partial tile costs its rows (as
   in gemm_avx512.c). */
__attribute__((target("avx2,fma"), always_inline))
static inline void tile(int64_t k, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, const int R,
                        int cols, const float *bias, int init)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    /* masks for a partial tile of pixels */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
#define LOAD(i, r0, r1)                                                                         \
    if (i >= R) {                                                                               \
        r0 = r1 = _mm256_setzero_ps();                                                          \
    } else if (init) {                                                                          \
        r0 = r1 = _mm256_set1_ps(bias ? bias[i] : 0.0f);                                        \
    } else {                                                                                    \
        r0 = _mm256_maskload_ps(c + i * ldc, m0);                                               \
        r1 = _mm256_maskload_ps(c + i * ldc + 8, m1);                                           \
    }
    LOAD(0, c00, c01) LOAD(1, c10, c11) LOAD(2, c20, c21) LOAD(3, c30, c31) LOAD(4, c40, c41) LOAD(5, c50, c51)
#undef LOAD
    for (int64_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b + p * NR), b1 = _mm256_load_ps(b + p * NR + 8);
        const float *ap = a + p * lda;
        __m256 x;
#define ROW(i, r0, r1)                                                                          \
        if (i < R) { x = _mm256_broadcast_ss(ap + i); r0 = _mm256_fmadd_ps(x, b0, r0); r1 = _mm256_fmadd_ps(x, b1, r1); }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
    }
#define STORE(i, r0, r1)                                                                        \
    if (i < R) {                                                                             \
        _mm256_maskstore_ps(c + i * ldc, m0, r0);                                               \
        _mm256_maskstore_ps(c + i * ldc + 8, m1, r1);                                           \
    }
    STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41)
    STORE(5, c50, c51)
#undef STORE
}

RX_KERNEL_BY_ROWS("avx2,fma", tile)

/* As the AVX-512 one: eight rows of w at a time, 16 outputs per step. */
__attribute__((target("avx2,fma")))
static void gemv(const float *w, int64_t ld, int64_t width, const int32_t *idx, const float *val, int64_t nnz,
                 float *y)
{
    const int64_t body = width - width % 8;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(width % 8)), lane);
    const __m256i all = _mm256_set1_epi32(-1);
    int64_t k = 0;
    for (; k + 8 <= nnz; k += 8) {
        const float *r0 = w + idx[k] * ld, *r1 = w + idx[k + 1] * ld, *r2 = w + idx[k + 2] * ld;
        const float *r3 = w + idx[k + 3] * ld, *r4 = w + idx[k + 4] * ld, *r5 = w + idx[k + 5] * ld;
        const float *r6 = w + idx[k + 6] * ld, *r7 = w + idx[k + 7] * ld;
        const __m256 v0 = _mm256_set1_ps(val[k]), v1 = _mm256_set1_ps(val[k + 1]);
        const __m256 v2 = _mm256_set1_ps(val[k + 2]), v3 = _mm256_set1_ps(val[k + 3]);
        const __m256 v4 = _mm256_set1_ps(val[k + 4]), v5 = _mm256_set1_ps(val[k + 5]);
        const __m256 v6 = _mm256_set1_ps(val[k + 6]), v7 = _mm256_set1_ps(val[k + 7]);
        int64_t u = 0;
#define ROWS(a, load, at)                                                                            \
        a = _mm256_fmadd_ps(v0, load(r0 + at), a); a = _mm256_fmadd_ps(v1, load(r1 + at), a);       \
        a = _mm256_fmadd_ps(v2, load(r2 + at), a); a = _mm256_fmadd_ps(v3, load(r3 + at), a);       \
        a = _mm256_fmadd_ps(v4, load(r4 + at), a); a = _mm256_fmadd_ps(v5, load(r5 + at), a);       \
        a = _mm256_fmadd_ps(v6, load(r6 + at), a); a = _mm256_fmadd_ps(v7, load(r7 + at), a);
        for (; u + 16 <= body; u += 16) {
            __m256 a = _mm256_loadu_ps(y + u), b = _mm256_loadu_ps(y + u + 8);
            ROWS(a, _mm256_loadu_ps, u) ROWS(b, _mm256_loadu_ps, u + 8)
            _mm256_storeu_ps(y + u, a);
            _mm256_storeu_ps(y + u + 8, b);
        }
        for (; u < width; u += 8) {
            const __m256i m = u < body ? all : tail;
#define MASKED(p) _mm256_maskload_ps(p, m)
            __m256 a = MASKED(y + u);
            ROWS(a, MASKED, u)
            _mm256_maskstore_ps(y + u, m, a);
#undef MASKED
        }
#undef ROWS
    }
    for (; k < nnz; k++) {
        const float *r = w + idx[k] * ld;
        const __m256 v = _mm256_set1_ps(val[k]);
        for (int64_t u = 0; u < width; u += 8) {
            const __m256i m = u < body ? all : tail;
            __m256 a = _mm256_fmadd_ps(v, _mm256_maskload_ps(r + u, m), _mm256_maskload_ps(y + u, m));
            _mm256_maskstore_ps(y + u, m, a);
        }
    }
}

const rx_gemm_isa rx_gemm_avx2 = {"avx2", NR, kernel, gemv};
#else
const rx_gemm_isa rx_gemm_avx2 = {"avx2", 0, 0, 0};
#endif
