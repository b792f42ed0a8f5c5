/* winograd.c: the F(4x4, 3x3) and F(2x2, 3x3) transforms. The input and
   output transforms work on 16 tiles at a time so that the compiler
   vectorises across tiles. */
#include <string.h>

#include "gemm.h"
#include "kernels.h"
#include "winograd.h"

enum { LANES = 16 };

/* G g for the three values of one kernel row or column. */
static inline void g_rows(float g0, float g1, float g2, float r[6])
{
    const float sixth = 1.0f / 6, twelfth = 1.0f / 12, twentyfourth = 1.0f / 24;
    r[0] = 0.25f * g0;
    r[1] = -(g0 + g1 + g2) * sixth;
    r[2] = -(g0 - g1 + g2) * sixth;
    r[3] = g0 * twentyfourth + g1 * twelfth + g2 * sixth;
    r[4] = g0 * twentyfourth - g1 * twelfth + g2 * sixth;
    r[5] = g2;
}

/* The filter transforms run at load; u is far larger than any cache, so
   they go a few channels at a time and write each point's rows of nr
   filters side by side in one contiguous run. */
enum { FILTER_CHANNELS = 8 };

static void filters4(const float *g, int64_t filters, int64_t channels, int nr, float *u)
{
    const int64_t blocks = (filters + nr - 1) / nr;
    #pragma omp parallel for schedule(dynamic) if (filters * channels > 4096)
    for (int64_t fb = 0; fb < blocks; fb++)
        for (int64_t c0 = 0; c0 < channels; c0 += FILTER_CHANNELS) {
            const int64_t cn = channels - c0 < FILTER_CHANNELS ? channels - c0 : FILTER_CHANNELS;
            float r[FILTER_CHANNELS][RX_NR_MAX][36];
            for (int64_t c = 0; c < cn; c++)
                for (int64_t j = 0; j < nr; j++) {
                    int64_t f = fb * nr + j;
                    float *rr = r[c][j];
                    if (f >= filters) { memset(rr, 0, sizeof r[c][j]); continue; }
                    const float *k = g + (f * channels + c0 + c) * 9;
                    float t[3][6], q[6];
                    for (int col = 0; col < 3; col++) g_rows(k[col], k[3 + col], k[6 + col], t[col]); /* G g */
                    for (int i = 0; i < 6; i++) {                                                    /* (G g) G^T */
                        g_rows(t[0][i], t[1][i], t[2][i], q);
                        memcpy(rr + 6 * i, q, sizeof q);
                    }
                }
            for (int p = 0; p < 36; p++) {
                float *dst = u + ((p * blocks + fb) * channels + c0) * nr;
                for (int64_t c = 0; c < cn; c++)
                    for (int64_t j = 0; j < nr; j++) dst[c * nr + j] = r[c][j][p];
            }
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

#if defined(__x86_64__)
#include <immintrin.h>

/* d[i][j][l] = src[i * width + 4 * l + j]: the 6x6 patches of 16 tiles side
   by side in one tile row, all inside the image, by deinterleaving whole
   vectors instead of 576 scalar loads. */
__attribute__((target("avx512f")))
static void gather16(const float *src, int64_t width, float d[6][6][LANES])
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    for (int i = 0; i < 6; i++) {
        const float *row = src + i * width;
        __m512 v0 = _mm512_loadu_ps(row), v1 = _mm512_loadu_ps(row + 16);
        __m512 v2 = _mm512_loadu_ps(row + 32), v3 = _mm512_loadu_ps(row + 48);
        __m512 e[4];
        for (int j = 0; j < 4; j++) {
            __m512i at = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
            __m512 lo = _mm512_permutex2var_ps(v0, at, v1), hi = _mm512_permutex2var_ps(v2, at, v3);
            e[j] = _mm512_shuffle_f32x4(lo, hi, 0x44); /* lanes 0-7 of lo, then 0-7 of hi */
            _mm512_storeu_ps(d[i][j], e[j]);
        }
        /* columns 4 and 5 are columns 0 and 1 one tile on */
        __m512 e4 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(row[64])),
                                                            _mm512_castps_si512(e[0]), 1));
        __m512 e5 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(row[65])),
                                                            _mm512_castps_si512(e[1]), 1));
        _mm512_storeu_ps(d[i][4], e4);
        _mm512_storeu_ps(d[i][5], e5);
    }
}
#endif

/* The input transform takes a whole block of tiles at once (a multiple of
   RX_MR, so each group of RX_MR tiles is written as runs of RX_MR floats). */
enum { BLOCK = RX_WINO_BLOCK };

/* The n x n patch at (y0, x0) of a plane that crosses its edges, zero
   outside (and all zero for a lane past the last tile: real false), into
   d[(i * n + j) * BLOCK]: the valid columns are found once per tile. */
static inline void edge_patch(const float *plane, int64_t height, int64_t width, int64_t y0, int64_t x0, int n,
                              bool real, float *d)
{
    int64_t lo = x0 < 0 ? -x0 : 0, hi = width - x0 < n ? width - x0 : n;
    if (hi < lo) hi = lo;
    for (int i = 0; i < n; i++) {
        float *out = d + (int64_t)i * n * BLOCK;
        int64_t y = y0 + i;
        if (!real || y < 0 || y >= height) {
            for (int j = 0; j < n; j++) out[j * BLOCK] = 0.0f;
            continue;
        }
        const float *row = plane + y * width;
        for (int64_t j = 0; j < lo; j++) out[j * BLOCK] = 0.0f;
        for (int64_t j = lo; j < hi; j++) out[j * BLOCK] = row[x0 + j];
        for (int64_t j = hi; j < n; j++) out[j * BLOCK] = 0.0f;
    }
}


RX_MULTIVERSION
static void input4(const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                   int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v)
{
    const int64_t groups = (count + RX_MR - 1) / RX_MR;
    const bool vector_gather = rx_gemm_select() == &rx_gemm_avx512;
    int64_t y0[BLOCK], x0[BLOCK];
    bool inside[BLOCK], row_of_16[BLOCK / LANES];
    for (int l = 0; l < BLOCK; l++) {
        int64_t tile = t0 + l;
        y0[l] = tile / tiles_w * 4 - pad_top;
        x0[l] = tile % tiles_w * 4 - pad_left;
        inside[l] = l < count && y0[l] >= 0 && x0[l] >= 0 && y0[l] + 6 <= height && x0[l] + 6 <= width;
    }
    for (int q = 0; q < BLOCK / LANES; q++) { /* sixteen tiles in one row, all inside */
        int a = q * LANES, z = a + LANES - 1;
        row_of_16[q] = vector_gather && inside[a] && inside[z] && y0[a] == y0[z] && x0[z] == x0[a] + 4 * (LANES - 1);
    }
    /* Only as many lanes as there are tiles, in whole vectors: small images
       (deep layers) have a few tiles per block. */
    const int lanes = (int)((count + LANES - 1) / LANES * LANES);
    for (int64_t c = 0; c < channels; c++) {
        const float *plane = in + c * height * width;
        float d[6][6][BLOCK], rows[6][6][BLOCK], out[6][6][BLOCK];
        for (int q = 0; q < lanes / LANES; q++) {
#if defined(__x86_64__)
            if (row_of_16[q]) {
                float part[6][6][LANES];
                gather16(plane + y0[q * LANES] * width + x0[q * LANES], width, part);
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 6; j++) memcpy(&d[i][j][q * LANES], part[i][j], sizeof part[i][j]);
                continue;
            }
#endif
            for (int l = q * LANES; l < (q + 1) * LANES; l++) {
                if (inside[l]) {
                    const float *src = plane + y0[l] * width + x0[l];
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) d[i][j][l] = src[i * width + j];
                } else {
                    edge_patch(plane, height, width, y0[l], x0[l], 6, l < count, &d[0][0][l]);
                }
            }
        }
        for (int i = 0; i < 6; i++) {
            float(*x)[BLOCK] = d[i];
            float(*y)[BLOCK] = rows[i];
            BT(x, y, lanes) /* along each row */
        }
        for (int j = 0; j < 6; j++) {
            float col[6][BLOCK], res[6][BLOCK];
            for (int i = 0; i < 6; i++) memcpy(col[i], rows[i][j], (size_t)lanes * sizeof(float));
            BT(col, res, lanes)
            for (int i = 0; i < 6; i++) memcpy(out[i][j], res[i], (size_t)lanes * sizeof(float));
        }
        for (int64_t g = 0; g < groups; g++) {
            float *dst = v + (g * channels + c) * 36 * RX_MR;
            for (int p = 0; p < 36; p++) memcpy(dst + p * RX_MR, &out[p / 6][p % 6][g * RX_MR], RX_MR * sizeof(float));
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
static void output4(const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias, int64_t tiles_w,
                    int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    for (int64_t t = 0; t < count; t++) {
        int64_t tile = t0 + t, oy = tile / tiles_w * 4, ox = tile % tiles_w * 4;
        int64_t ny = out_h - oy < 4 ? out_h - oy : 4, nx = out_w - ox < 4 ? out_w - ox : 4;
        for (int64_t f = f0; f < f1; f += LANES) {
            float x[6][6][LANES], half[4][6][LANES], y[4][4][LANES];
            const int lanes = f1 - f < LANES ? (int)(f1 - f) : LANES;
            for (int p = 0; p < 36; p++) {
                const float *src = m + (t * 36 + p) * ldm + f;
                if (lanes == LANES) memcpy(x[p / 6][p % 6], src, sizeof x[0][0]);
                else for (int l = 0; l < LANES; l++) x[p / 6][p % 6][l] = l < lanes ? src[l] : 0.0f;
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

/* F(2x2, 3x3): 4x4 input tiles at stride 2, 16 points. */

static void filters2(const float *g, int64_t filters, int64_t channels, int nr, float *u)
{
    const int64_t blocks = (filters + nr - 1) / nr;
    #pragma omp parallel for schedule(dynamic) if (filters * channels > 4096)
    for (int64_t fb = 0; fb < blocks; fb++)
        for (int64_t c0 = 0; c0 < channels; c0 += FILTER_CHANNELS) {
            const int64_t cn = channels - c0 < FILTER_CHANNELS ? channels - c0 : FILTER_CHANNELS;
            float r[FILTER_CHANNELS][RX_NR_MAX][16];
            for (int64_t c = 0; c < cn; c++)
                for (int64_t j = 0; j < nr; j++) {
                    int64_t f = fb * nr + j;
                    float *rr = r[c][j];
                    if (f >= filters) { memset(rr, 0, sizeof r[c][j]); continue; }
                    const float *k = g + (f * channels + c0 + c) * 9;
                    float t[4][3]; /* G g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
                    for (int col = 0; col < 3; col++) {
                        float g0 = k[col], g1 = k[3 + col], g2 = k[6 + col];
                        t[0][col] = g0, t[1][col] = 0.5f * (g0 + g1 + g2), t[2][col] = 0.5f * (g0 - g1 + g2);
                        t[3][col] = g2;
                    }
                    for (int i = 0; i < 4; i++) { /* (G g) G^T */
                        float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                        rr[4 * i] = g0, rr[4 * i + 1] = 0.5f * (g0 + g1 + g2), rr[4 * i + 2] = 0.5f * (g0 - g1 + g2);
                        rr[4 * i + 3] = g2;
                    }
                }
            for (int p = 0; p < 16; p++) {
                float *dst = u + ((p * blocks + fb) * channels + c0) * nr;
                for (int64_t c = 0; c < cn; c++)
                    for (int64_t j = 0; j < nr; j++) dst[c * nr + j] = r[c][j][p];
            }
        }
}

/* B^T x for four values, each a vector of L tiles. */
#define BT2(x, y, L)                                                                 \
    for (int l = 0; l < L; l++) {                                                    \
        float d0 = x[0][l], d1 = x[1][l], d2 = x[2][l], d3 = x[3][l];                \
        y[0][l] = d0 - d2;                                                           \
        y[1][l] = d1 + d2;                                                           \
        y[2][l] = d2 - d1;                                                           \
        y[3][l] = d1 - d3;                                                           \
    }

RX_MULTIVERSION
static void input2(const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                   int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v)
{
    const int64_t groups = (count + RX_MR - 1) / RX_MR;
    const int lanes = (int)((count + LANES - 1) / LANES * LANES);
    int64_t y0[BLOCK], x0[BLOCK];
    bool inside[BLOCK];
    for (int l = 0; l < BLOCK; l++) {
        int64_t tile = t0 + l;
        y0[l] = tile / tiles_w * 2 - pad_top;
        x0[l] = tile % tiles_w * 2 - pad_left;
        inside[l] = l < count && y0[l] >= 0 && x0[l] >= 0 && y0[l] + 4 <= height && x0[l] + 4 <= width;
    }
    for (int64_t c = 0; c < channels; c++) {
        const float *plane = in + c * height * width;
        float d[4][4][BLOCK], rows[4][4][BLOCK], out[4][4][BLOCK];
        for (int l = 0; l < lanes; l++) {
            if (inside[l]) {
                const float *src = plane + y0[l] * width + x0[l];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) d[i][j][l] = src[i * width + j];
            } else {
                edge_patch(plane, height, width, y0[l], x0[l], 4, l < count, &d[0][0][l]);
            }
        }
        for (int i = 0; i < 4; i++) {
            float(*x)[BLOCK] = d[i];
            float(*y)[BLOCK] = rows[i];
            BT2(x, y, lanes)
        }
        for (int j = 0; j < 4; j++) {
            float col[4][BLOCK], res[4][BLOCK];
            for (int i = 0; i < 4; i++) memcpy(col[i], rows[i][j], (size_t)lanes * sizeof(float));
            BT2(col, res, lanes)
            for (int i = 0; i < 4; i++) memcpy(out[i][j], res[i], (size_t)lanes * sizeof(float));
        }
        for (int64_t g = 0; g < groups; g++) {
            float *dst = v + (g * channels + c) * 16 * RX_MR;
            for (int p = 0; p < 16; p++) memcpy(dst + p * RX_MR, &out[p / 4][p % 4][g * RX_MR], RX_MR * sizeof(float));
        }
    }
}

RX_MULTIVERSION
static void output2(const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias, int64_t tiles_w,
                    int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    for (int64_t t = 0; t < count; t++) {
        int64_t tile = t0 + t, oy = tile / tiles_w * 2, ox = tile % tiles_w * 2;
        int64_t ny = out_h - oy < 2 ? out_h - oy : 2, nx = out_w - ox < 2 ? out_w - ox : 2;
        for (int64_t f = f0; f < f1; f += LANES) {
            float x[4][4][LANES], half[2][4][LANES], y[2][2][LANES];
            const int lanes = f1 - f < LANES ? (int)(f1 - f) : LANES;
            for (int p = 0; p < 16; p++) {
                const float *src = m + (t * 16 + p) * ldm + f;
                if (lanes == LANES) memcpy(x[p / 4][p % 4], src, sizeof x[0][0]);
                else for (int l = 0; l < LANES; l++) x[p / 4][p % 4][l] = l < lanes ? src[l] : 0.0f;
            }
            for (int j = 0; j < 4; j++) /* A^T along columns: [1 1 1 0; 0 1 -1 -1] */
                for (int l = 0; l < LANES; l++) {
                    half[0][j][l] = x[0][j][l] + x[1][j][l] + x[2][j][l];
                    half[1][j][l] = x[1][j][l] - x[2][j][l] - x[3][j][l];
                }
            for (int i = 0; i < 2; i++)
                for (int l = 0; l < LANES; l++) {
                    y[i][0][l] = half[i][0][l] + half[i][1][l] + half[i][2][l];
                    y[i][1][l] = half[i][1][l] - half[i][2][l] - half[i][3][l];
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

void rx_winograd_filters(int tile, const float *g, int64_t filters, int64_t channels, int nr, float *u)
{
    (tile == 2 ? filters2 : filters4)(g, filters, channels, nr, u);
}

void rx_winograd_input(int tile, const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                       int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v)
{
    (tile == 2 ? input2 : input4)(in, channels, height, width, pad_top, pad_left, tiles_w, t0, count, v);
}

void rx_winograd_output(int tile, const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias,
                        int64_t tiles_w, int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    (tile == 2 ? output2 : output4)(m, ldm, f0, f1, bias, tiles_w, t0, count, out, out_h, out_w);
}
