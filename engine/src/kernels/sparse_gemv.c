/* sparse_gemv.c: dense layers that skip zero inputs (see sparse_gemv.h). */
#include "kernels.h"
#include "sparse_gemv.h"

RX_MULTIVERSION
int64_t rx_gather_nonzero(const float *x, int64_t n, int32_t *idx, float *val)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        /* Branch-free: write always, advance only on a non-zero. */
        idx[nnz] = (int32_t)i;
        val[nnz] = x[i];
        nnz += x[i] != 0.0f;
    }
    return nnz;
}

RX_MULTIVERSION
void rx_sparse_gemv_rows(const float *w, int64_t rows, int64_t n, const int32_t *idx, const float *val,
                         int64_t nnz, const float *bias, float *y)
{
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        #pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int64_t k = 0; k < nnz; k++) {
            const int32_t i = idx[k];
            const float v = val[k];
            a0 += w0[i] * v, a1 += w1[i] * v, a2 += w2[i] * v, a3 += w3[i] * v;
        }
        y[r] = a0 + (bias ? bias[r] : 0.0f);
        y[r + 1] = a1 + (bias ? bias[r + 1] : 0.0f);
        y[r + 2] = a2 + (bias ? bias[r + 2] : 0.0f);
        y[r + 3] = a3 + (bias ? bias[r + 3] : 0.0f);
    }
    for (; r < rows; r++) {
        const float *w0 = w + r * n;
        float a = 0.0f;
        #pragma omp simd reduction(+ : a)
        for (int64_t k = 0; k < nnz; k++) a += w0[idx[k]] * val[k];
        y[r] = a + (bias ? bias[r] : 0.0f);
    }
}

/* Outputs per block: an accumulator of this many floats stays in L1. */
#define COLS_BLOCK 1024

RX_MULTIVERSION
void rx_sparse_gemv_cols(const float *wt, int64_t units, int64_t r0, int64_t rows, const int32_t *idx,
                         const float *val, int64_t nnz, const float *bias, float *y)
{
    float acc[COLS_BLOCK];
    for (int64_t b0 = 0; b0 < rows; b0 += COLS_BLOCK) {
        const int64_t width = rows - b0 < COLS_BLOCK ? rows - b0 : COLS_BLOCK;
        const float *base = wt + r0 + b0;
        for (int64_t r = 0; r < width; r++) acc[r] = bias ? bias[r0 + b0 + r] : 0.0f;
        int64_t k = 0;
        for (; k + 4 <= nnz; k += 4) {
            const float *c0 = base + (int64_t)idx[k] * units, *c1 = base + (int64_t)idx[k + 1] * units;
            const float *c2 = base + (int64_t)idx[k + 2] * units, *c3 = base + (int64_t)idx[k + 3] * units;
            const float v0 = val[k], v1 = val[k + 1], v2 = val[k + 2], v3 = val[k + 3];
            #pragma omp simd
            for (int64_t r = 0; r < width; r++) acc[r] += c0[r] * v0 + c1[r] * v1 + c2[r] * v2 + c3[r] * v3;
        }
        for (; k < nnz; k++) {
            const float *c0 = base + (int64_t)idx[k] * units;
            const float v0 = val[k];
            #pragma omp simd
            for (int64_t r = 0; r < width; r++) acc[r] += c0[r] * v0;
        }
        for (int64_t r = 0; r < width; r++) y[r0 + b0 + r] = acc[r];
    }
}
