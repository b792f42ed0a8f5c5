/* gemm.h: the packed GEMM that convolution runs on.
   C[rows x cols] (+)= A[rows x k] * B[k x cols], where A is a block of MR
   filters packed k-major ([k][MR], zero-padded) once at load, and B a panel
   of NR output pixels packed k-major ([k][NR], zero-padded) per task. The
   micro-kernel for the CPU is chosen once at run time. */
#ifndef RX_GEMM_H
#define RX_GEMM_H

#include <stdint.h>

/* a: RX_MR floats per k, k steps lda floats apart (RX_MR when packed
   tight); b: nr floats per k, contiguous. c: rows x cols at row stride ldc.
   init: 0 accumulate into c, 1 start from bias (or zero when bias is NULL). */
typedef void (*rx_microkernel)(int64_t k, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                               int rows, int cols, const float *bias, int init);

/* y[u] += sum_k val[k] * w[idx[k]*ld + u] for u < width: the matrix-vector
   product of dense layers, over weights packed transposed (row i of w: the
   weights input i meets, ld floats apart) and read only at the rows of the
   inputs listed in idx (their non-zeros, gathered). Each row is read
   contiguously, so the memory traffic falls with the zeros. For each u the
   sum runs in the order of idx, whatever width: results do not depend on how
   the outputs are split between threads. */
typedef void (*rx_gemv_kernel)(const float *w, int64_t ld, int64_t width, const int32_t *idx, const float *val,
                               int64_t nnz, float *y);

typedef struct rx_gemm_isa {
    const char *name;     /* "avx512", "avx2", "generic" */
    int nr;               /* pixels per micro-tile (filters: RX_MR) */
    rx_microkernel kernel;
    rx_gemv_kernel gemv;
} rx_gemm_isa;

/* The best the CPU supports, or what RECTIFY_ISA (avx512, avx2, generic)
   asks for when the CPU supports it: read once per process. */
const rx_gemm_isa *rx_gemm_select(void);

/* Filters per micro-tile: the same for every ISA, so weights are packed
   once at load whatever kernel runs them. */
#define RX_MR 6
/* Pixels per micro-tile at most, k rows per cache block, micro-tiles per task. */
#define RX_NR_MAX 64
#define RX_KC 256
#define RX_TILES 4

extern const rx_gemm_isa rx_gemm_avx512, rx_gemm_avx2, rx_gemm_generic;

/* Defines a micro-kernel (static void kernel, an rx_microkernel) for CPU
   target TARGET from TILE(k, a, lda, b, c, ldc, R, cols, bias, init), an
   always-inline function of R rows: one instance per row count, a constant
   in each, so that a partial tile (4 filters left of 16, 1 Winograd tile
   left of 49) costs its rows, not RX_MR. */
#define RX_KERNEL_BY_ROWS(TARGET, TILE)                                                              \
    __attribute__((target(TARGET))) static void kernel(int64_t k, const float *a, int64_t lda,       \
                                                       const float *b, float *c, int64_t ldc,        \
                                                       int rows, int cols, const float *bias,        \
                                                       int init)                                     \
    {                                                                                                \
        switch (rows) {                                                                              \
        case 1: TILE(k, a, lda, b, c, ldc, 1, cols, bias, init); break;                              \
        case 2: TILE(k, a, lda, b, c, ldc, 2, cols, bias, init); break;                              \
        case 3: TILE(k, a, lda, b, c, ldc, 3, cols, bias, init); break;                              \
        case 4: TILE(k, a, lda, b, c, ldc, 4, cols, bias, init); break;                              \
        case 5: TILE(k, a, lda, b, c, ldc, 5, cols, bias, init); break;                              \
        case RX_MR: TILE(k, a, lda, b, c, ldc, RX_MR, cols, bias, init); break;                      \
        default: break; /* no rows: nothing to store */                                              \
        }                                                                                            \
    }

#endif
