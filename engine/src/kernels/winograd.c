/* winograd.c: the F(4x4, 3x3) transforms. The input and output transforms
   work on 16 tiles at a time so that the compiler vectorises across tiles. */
#include <string.h>

#include "gemm.h"
#include "kernels.h"
#include "winograd.h"

enum { LANES = 16 };

void rx_winograd_filters(const float *g, int64_t filters, int64_t channels, int nr, float *u)
{
    const int64_t blocks = (filters + nr - 1) / nr;
    memset(u, 0, (size_t)(RX_WINO_POINTS * blocks * channels * nr) * sizeof *u);
    for (int64_t f = 0; f < filters; f++)
        for (int64_t c = 0; c < channels; c++) {
            const float *k = g + (f * channels + c) * 9;
            float t[6][3], r[6][6];
            for (int j = 0; j < 3; j++) { /* G g: along the kernel's rows */
                float g0 = k[j], g1 = k[3 + j], g2 = k[6 + j];
                t[0][j] = g0 / 4;
                t[1][j] = -(g0 + g1 + g2) / 6;
                t[2][j] = -(g0 - g1 + g2) / 6;
                t[3][j] = g0 / 24 + g1 / 12 + g2 / 6;
                t[4][j] = g0 / 24 - g1 / 12 + g2 / 6;
                t[5][j] = g2;
            }
            for (int i = 0; i < 6; i++) { /* (G g) G^T */
                float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                r[i][0] = g0 / 4;
                r[i][1] = -(g0 + g1 + g2) / 6;
                r[i][2] = -(g0 - g1 + g2) / 6;
                r[i][3] = g0 / 24 + g1 / 12 + g2 / 6;
                r[i][4] = g0 / 24 - g1 / 12 + g2 / 6;
                r[i][5] = g2;
            }
            for (int p = 0; p < RX_WINO_POINTS; p++)
                u[((p * blocks + f / nr) * channels + c) * nr + f % nr] = r[p / 6][p % 6];
        }
}

/* B^T x for six values, each a vector of LANES tiles. */
#define BT(x, y, L)                                                                  \
    for (int l = 0; l < L; l++) {                                                    \
        float d0 = x[0][l], d1 = x[1][l], d2 = x[2][l], d3 = x[3][l], d4 = x[4][l];  \
        float d5 = x[5][l];                                                          \
        y[0][l] = 4 * d0 - 5 * d2 + d4;                                              \
        y[1][l] = -4 * d1 - 4 * d2 + d3 + d4;                                        \
        y[2][l] = 4 * d1 - 4 * d2 - d3 + d4;                                         \
        y[3][l] = -2 * d1 - d2 + 2 * d3 + d4;                                        \
        y[4][l] = 2 * d1 - d2 - 2 * d3 + d4;                                         \
        y[5][l] = 4 * d1 - 5 * d3 + d5;                                              \
    }

RX_MULTIVERSION
void rx_winograd_input(const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                       int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v)
{
    const int64_t padded = (count + RX_MR - 1) / RX_MR * RX_MR;
    for (int64_t t = 0; t < padded; t += LANES) {
        int64_t y0[LANES], x0[LANES];
        bool inside[LANES];
        for (int l = 0; l < LANES; l++) {
            int64_t tile = t0 + t + l;
            y0[l] = tile / tiles_w * RX_WINO_TILE - pad_top;
            x0[l] = tile % tiles_w * RX_WINO_TILE - pad_left;
            inside[l] = t + l < count && y0[l] >= 0 && x0[l] >= 0 && y0[l] + 6 <= height && x0[l] + 6 <= width;
        }
        const int lanes = padded - t < LANES ? (int)(padded - t) : LANES;
        for (int64_t c = 0; c < channels; c++) {
            const float *plane = in + c * height * width;
            float d[6][6][LANES], rows[6][6][LANES], out[6][6][LANES];
            for (int l = 0; l < LANES; l++) {
                if (inside[l]) {
                    const float *src = plane + y0[l] * width + x0[l];
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) d[i][j][l] = src[i * width + j];
                } else {
                    bool real = t + l < count;
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int64_t y = y0[l] + i, x = x0[l] + j;
                            d[i][j][l] = real && y >= 0 && y < height && x >= 0 && x < width ? plane[y * width + x] : 0.0f;
                        }
                }
            }
            for (int i = 0; i < 6; i++) {
                float(*x)[LANES] = d[i];
                float(*y)[LANES] = rows[i];
                BT(x, y, LANES) /* along each row */
            }
            for (int j = 0; j < 6; j++) {
                float col[6][LANES], res[6][LANES];
                for (int i = 0; i < 6; i++) memcpy(col[i], rows[i][j], sizeof col[i]);
                BT(col, res, LANES)
                for (int i = 0; i < 6; i++) memcpy(out[i][j], res[i], sizeof res[i]);
            }
            for (int l = 0; l < lanes; l++) {
                int64_t tile = t + l, g = tile / RX_MR, i = tile % RX_MR;
                float *dst = v + (g * channels + c) * RX_WINO_POINTS * RX_MR + i;
                for (int p = 0; p < RX_WINO_POINTS; p++) dst[p * RX_MR] = out[p / 6][p % 6][l];
            }
        }
    }
}

/* A^T x for six values into four. */
#define AT(x, y, L)                                                                  \
    for (int l = 0; l < L; l++) {                                                    \
        float m0 = x[0][l], m1 = x[1][l], m2 = x[2][l], m3 = x[3][l], m4 = x[4][l];  \
        float m5 = x[5][l];                                                          \
        y[0][l] = m0 + m1 + m2 + m3 + m4;                                            \
        y[1][l] = m1 - m2 + 2 * (m3 - m4);                                           \
        y[2][l] = m1 + m2 + 4 * (m3 + m4);                                           \
        y[3][l] = m1 - m2 + 8 * (m3 - m4) + m5;                                      \
    }

RX_MULTIVERSION
void rx_winograd_output(const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias,
                        int64_t tiles_w, int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    for (int64_t t = 0; t < count; t++) {
        int64_t tile = t0 + t, oy = tile / tiles_w * RX_WINO_TILE, ox = tile % tiles_w * RX_WINO_TILE;
        int64_t ny = out_h - oy < 4 ? out_h - oy : 4, nx = out_w - ox < 4 ? out_w - ox : 4;
        for (int64_t f = f0; f < f1; f += LANES) {
            float x[6][6][LANES], half[4][6][LANES], y[4][4][LANES];
            const int lanes = f1 - f < LANES ? (int)(f1 - f) : LANES;
            for (int p = 0; p < RX_WINO_POINTS; p++) {
                const float *src = m + (t * RX_WINO_POINTS + p) * ldm + f;
                for (int l = 0; l < LANES; l++) x[p / 6][p % 6][l] = l < lanes ? src[l] : 0.0f;
            }
            for (int j = 0; j < 6; j++) { /* along columns */
                float col[6][LANES], res[4][LANES];
                for (int i = 0; i < 6; i++) memcpy(col[i], x[i][j], sizeof col[i]);
                AT(col, res, LANES)
                for (int i = 0; i < 4; i++) memcpy(half[i][j], res[i], sizeof res[i]);
            }
            for (int i = 0; i < 4; i++) {
                float(*row)[LANES] = half[i];
                float(*res)[LANES] = y[i];
                AT(row, res, LANES)
            }
            for (int l = 0; l < lanes; l++) {
                float b = bias ? bias[f + l] : 0.0f;
                float *plane = out + (f + l) * out_h * out_w + oy * out_w + ox;
                for (int64_t i = 0; i < ny; i++)
                    for (int64_t j = 0; j < nx; j++) plane[i * out_w + j] = y[i][j][l] + b;
            }
        }
    }
}
