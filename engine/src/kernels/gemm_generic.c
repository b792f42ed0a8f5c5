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

static void gemv(const float *w, int64_t rows, int64_t n, const float *x, const float *bias, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = w + r * n;
        float acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += row[i + j] * x[i + j];
        float s = 0.0f;
        for (; i < n; i++) s += row[i] * x[i];
        for (int j = 0; j < 8; j++) s += acc[j];
        y[r] = (bias ? bias[r] : 0.0f) + s;
    }
}

const rx_gemm_isa rx_gemm_generic = {"generic", NR, kernel, gemv};
