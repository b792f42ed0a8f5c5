/* sparse_gemv.h: the matrix-vector product of a dense layer that skips the
   zeros of its input (what a ReLU before it leaves). The input's non-zeros
   are gathered once per sample; then only the weights they meet are read. */
#ifndef RX_SPARSE_GEMV_H
#define RX_SPARSE_GEMV_H

#include <stdint.h>

/* Writes the indices and values of the non-zeros of x[0..n) to idx and val;
   returns how many there are. */
int64_t rx_gather_nonzero(const float *x, int64_t n, int32_t *idx, float *val);

/* y[r] = (bias ? bias[r] : 0) + sum_k w[r*n + idx[k]] * val[k] for r < rows:
   the weights as loaded ([rows, n] row-major), read at the non-zero columns. */
void rx_sparse_gemv_rows(const float *w, int64_t rows, int64_t n, const int32_t *idx, const float *val,
                         int64_t nnz, const float *bias, float *y);

/* The same on a transposed copy wt [n, units] (row i: the weights input i
   meets), for outputs [r0, r0 + rows): only the rows of wt for non-zero
   inputs are read, each contiguously. */
void rx_sparse_gemv_cols(const float *wt, int64_t units, int64_t r0, int64_t rows, const int32_t *idx,
                         const float *val, int64_t nnz, const float *bias, float *y);

#endif
