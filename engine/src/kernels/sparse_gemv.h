/* sparse_gemv.h: what the dense layers' kernel (rx_gemm_select()->gemv)
   needs around it: the input's non-zeros, gathered once per sample, and the
   weights packed once at load into the layout it reads. */
#ifndef RX_SPARSE_GEMV_H
#define RX_SPARSE_GEMV_H

#include <stdint.h>

/* Writes the indices and values of the non-zeros of x[0..n) to idx and val;
   returns how many there are. -0.0 counts as zero. */
int64_t rx_gather_nonzero(const float *x, int64_t n, int32_t *idx, float *val);

/* wt[i*ld + r] = w[r*n + i] for r0 <= r < r0 + 16 and i0 <= i < i1, 0
   where r >= rows: sixteen rows of the weights as loaded ([rows][n],
   PyTorch's Linear) transposed into one block of the packed layout (see
   dense.c); r0 and ld are multiples of 16, ld at least r0 + 16. */
void rx_transpose_rows(const float *w, int64_t rows, int64_t n, int64_t r0, int64_t i0, int64_t i1, float *wt,
                       int64_t ld);

#endif
