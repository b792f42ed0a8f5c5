/* gemm_generic.c: the portable micro-kernel, plain C the compiler may
   vectorise; also the reference the others are tested against. */
#include "gemm.h"

enum { MR = RX_MR, NR = 16 };

static void kernel(int64_t k, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, int rows,
                   int cols, const float *bias, int init)
{
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = init ? (bias && i < rows ? bias[i] : 0.0f) : (i < rows && j < cols ? c[i * ldc + j] : 0.0f);
    for (int64_t p = 0; p < k; p++)
        for (int i = 0; i < MR; i++) {
            float ai = a[p * lda + i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[p * NR + j];
        }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) c[i * ldc + j] = acc[i][j];
}

static void gemv(const float *w, int64_t ld, int64_t width, const int32_t *idx, const float *val, int64_t nnz,
                 float *y)
{
    int64_t k = 0;
    for (; k + 4 <= nnz; k += 4) {
        const float *r0 = w + idx[k] * ld, *r1 = w + idx[k + 1] * ld, *r2 = w + idx[k + 2] * ld;
        const float *r3 = w + idx[k + 3] * ld;
        const float v0 = val[k], v1 = val[k + 1], v2 = val[k + 2], v3 = val[k + 3];
        for (int64_t u = 0; u < width; u++) {
            float a = y[u];
            a += v0 * r0[u];
            a += v1 * r1[u];
            a += v2 * r2[u];
            a += v3 * r3[u];
            y[u] = a;
        }
    }
    for (; k < nnz; k++) {
        const float *r = w + idx[k] * ld;
        const float v = val[k];
        for (int64_t u = 0; u < width; u++) y[u] += v * r[u];
    }
}

const rx_gemm_isa rx_gemm_generic = {"generic", NR, kernel, gemv};
