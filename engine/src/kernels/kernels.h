/* kernels.h: the compute loops shared by operators. Each is compiled for
   several instruction sets and picked at run time (RX_MULTIVERSION). */
#ifndef RX_KERNELS_H
#define RX_KERNELS_H

#include "../internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(RX_NO_MULTIVERSION)
#  define RX_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#  define RX_MULTIVERSION
#endif

/* Output pixels per panel, and filters per task. */
#define RX_PANEL_COLS 128
#define RX_PANEL_ROWS 64

typedef struct rx_conv_geometry {
    int64_t channels, height, width;    /* of one group's input */
    int64_t out_height, out_width;
    rx_window win;
} rx_conv_geometry;

/* im2col of output pixels [col0, col0 + cols) of one group's input into a
   panel of k rows by RX_PANEL_COLS floats (k = channels * kh * kw); columns
   past `cols` are zeroed. */
void rx_pack_panel(const rx_conv_geometry *g, const float *in, int64_t col0, int64_t cols,
                   float *panel);

/* out[m*ldo + j] = bias[m] (or 0) + sum_k w[m*ldw + k] * panel[k*RX_PANEL_COLS + j]
   for m < rows, j < cols. */
void rx_panel_gemm(int64_t rows, int64_t k, int64_t cols, const float *w, int64_t ldw,
                   const float *panel, float *out, int64_t ldo, const float *bias);

/* sum_i a[i] * b[i] */
float rx_dot(const float *a, const float *b, int64_t n);

#endif
