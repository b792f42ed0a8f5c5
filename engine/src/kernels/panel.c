/* panel.c: implicit-GEMM convolution in plain C that compilers vectorise;
   the hand-written micro-kernels of the speed work replace rx_panel_gemm. */
#include <string.h>

#include "kernels.h"

void rx_pack_panel(const rx_conv_geometry *g, const float *in, int64_t col0, int64_t cols,
                   float *panel)
{
    const rx_window *w = &g->win;
    int64_t row = 0;
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = in + c * g->height * g->width;
        for (int64_t ki = 0; ki < w->kh; ki++)
            for (int64_t kj = 0; kj < w->kw; kj++, row++) {
                float *dst = panel + row * RX_PANEL_COLS;
                int64_t oy = col0 / g->out_width, ox = col0 % g->out_width;
                for (int64_t j = 0; j < cols; j++) {
                    int64_t iy = oy * w->sh - w->pt + ki * w->dh;
                    int64_t ix = ox * w->sw - w->pl + kj * w->dw;
                    dst[j] = (iy >= 0 && iy < g->height && ix >= 0 && ix < g->width)
                                 ? plane[iy * g->width + ix] : 0.0f;
                    if (++ox == g->out_width) ox = 0, oy++;
                }
                if (cols < RX_PANEL_COLS) memset(dst + cols, 0, (size_t)(RX_PANEL_COLS - cols) * sizeof *dst);
            }
    }
}

RX_MULTIVERSION
void rx_panel_gemm(int64_t rows, int64_t k, int64_t cols, const float *w, int64_t ldw,
                   const float *panel, float *out, int64_t ldo, const float *bias)
{
    enum { R = 4, N = RX_PANEL_COLS };
    for (int64_t m0 = 0; m0 < rows; m0 += R) {
        int64_t r = rows - m0 < R ? rows - m0 : R;
        float acc[R][N];
        for (int i = 0; i < R; i++) {
            float b0 = (bias && i < r) ? bias[m0 + i] : 0.0f;
            for (int j = 0; j < N; j++) acc[i][j] = b0;
        }
        const float *w0 = w + m0 * ldw;
        const float *w1 = r > 1 ? w0 + ldw : w0, *w2 = r > 2 ? w0 + 2 * ldw : w0, *w3 = r > 3 ? w0 + 3 * ldw : w0;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *p = panel + kk * N;
            float a0 = w0[kk], a1 = w1[kk], a2 = w2[kk], a3 = w3[kk];
            for (int j = 0; j < N; j++) {
                float x = p[j];
                acc[0][j] += a0 * x;
                acc[1][j] += a1 * x;
                acc[2][j] += a2 * x;
                acc[3][j] += a3 * x;
            }
        }
        for (int64_t i = 0; i < r; i++) memcpy(out + (m0 + i) * ldo, acc[i], (size_t)cols * sizeof(float));
    }
}

RX_MULTIVERSION
float rx_dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
