/* winograd.c: the F(4x4, 3x3) and F(2x2, 3x3) transforms, one code for
   both: every function takes the tile (4 or 2) and is inlined with it
   constant. The input transform works across the tiles of a block and the
   output transform across 16 filters, so that the compiler vectorises. */
#include <string.h>

#include "gemm.h"
#include "kernels.h"
#include "winograd.h"

enum { LANES = 16 };

/* Inlined into each instruction-set clone of its callers (RX_MULTIVERSION),
   with the tile constant: a plain inline may be compiled once, for the
   baseline. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* F(4x4): G g for the three values of one kernel row or column. */
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

/* U = G g G^T of one 3x3 kernel k, row-major: (tile + 2)^2 values. */
static inline void filter_transform(int tile, const float *k, float *r)
{
    if (tile == 4) {
        float t[3][6];
        for (int col = 0; col < 3; col++) g_rows(k[col], k[3 + col], k[6 + col], t[col]); /* G g */
        for (int i = 0; i < 6; i++) g_rows(t[0][i], t[1][i], t[2][i], r + 6 * i);          /* (G g) G^T */
        return;
    }
    float t[4][3]; /* F(2x2): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
    for (int col = 0; col < 3; col++) {
        float g0 = k[col], g1 = k[3 + col], g2 = k[6 + col];
        t[0][col] = g0, t[1][col] = 0.5f * (g0 + g1 + g2), t[2][col] = 0.5f * (g0 - g1 + g2), t[3][col] = g2;
    }
    for (int i = 0; i < 4; i++) {
        float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
        r[4 * i] = g0, r[4 * i + 1] = 0.5f * (g0 + g1 + g2), r[4 * i + 2] = 0.5f * (g0 - g1 + g2), r[4 * i + 3] = g2;
    }
}

/* The filter transforms run at load; u is far larger than any cache, so
   they go a few channels at a time and write each point's rows of nr
   filters side by side in one contiguous run. */
enum { FILTER_CHANNELS = 8 };

void rx_winograd_filters(int tile, const float *g, int64_t filters, int64_t channels, int nr, float *u)
{
    const int points = rx_winograd_points(tile);
    const int64_t blocks = (filters + nr - 1) / nr;
    #pragma omp parallel for schedule(dynamic) if (filters * channels > 4096)
    for (int64_t fb = 0; fb < blocks; fb++)
        for (int64_t c0 = 0; c0 < channels; c0 += FILTER_CHANNELS) {
            const int64_t cn = channels - c0 < FILTER_CHANNELS ? channels - c0 : FILTER_CHANNELS;
            float r[FILTER_CHANNELS][RX_NR_MAX][RX_WINO_POINTS_MAX];
            for (int64_t c = 0; c < cn; c++)
                for (int64_t j = 0; j < nr; j++) {
                    int64_t f = fb * nr + j;
                    if (f < filters) filter_transform(tile, g + (f * channels + c0 + c) * 9, r[c][j]);
                    else memset(r[c][j], 0, sizeof r[c][j]);
                }
            for (int p = 0; p < points; p++) {
                float *dst = u + ((p * blocks + fb) * channels + c0) * nr;
                for (int64_t c = 0; c < cn; c++)
                    for (int64_t j = 0; j < nr; j++) dst[c * nr + j] = r[c][j][p];
            }
        }
}

/* y[k * ys + l] = (B^T x)[k] for the tile + 2 values x[k * xs + l], l < lanes. */
ALWAYS_INLINE void input_step(int tile, const float *x, int64_t xs, float *y, int64_t ys, int lanes)
{
    if (tile == 4) {
        for (int l = 0; l < lanes; l++) {
            float d0 = x[l], d1 = x[xs + l], d2 = x[2 * xs + l], d3 = x[3 * xs + l], d4 = x[4 * xs + l];
            float d5 = x[5 * xs + l];
            y[l] = 4 * d0 - 5 * d2 + d4;
            y[ys + l] = -4 * d1 - 4 * d2 + d3 + d4;
            y[2 * ys + l] = 4 * d1 - 4 * d2 - d3 + d4;
            y[3 * ys + l] = -2 * d1 - d2 + 2 * d3 + d4;
            y[4 * ys + l] = 2 * d1 - d2 - 2 * d3 + d4;
            y[5 * ys + l] = 4 * d1 - 5 * d3 + d5;
        }
    } else {
        for (int l = 0; l < lanes; l++) {
            float d0 = x[l], d1 = x[xs + l], d2 = x[2 * xs + l], d3 = x[3 * xs + l];
            y[l] = d0 - d2;
            y[ys + l] = d1 + d2;
            y[2 * ys + l] = d2 - d1;
            y[3 * ys + l] = d1 - d3;
        }
    }
}

/* y[k * ys + l] = (A^T x)[k], tile values from tile + 2, l < LANES. */
ALWAYS_INLINE void output_step(int tile, const float *x, int64_t xs, float *y, int64_t ys)
{
    if (tile == 4) {
        for (int l = 0; l < LANES; l++) {
            float m0 = x[l], m1 = x[xs + l], m2 = x[2 * xs + l], m3 = x[3 * xs + l], m4 = x[4 * xs + l];
            float m5 = x[5 * xs + l];
            y[l] = m0 + m1 + m2 + m3 + m4;
            y[ys + l] = m1 - m2 + 2 * (m3 - m4);
            y[2 * ys + l] = m1 + m2 + 4 * (m3 + m4);
            y[3 * ys + l] = m1 - m2 + 8 * (m3 - m4) + m5;
        }
    } else {
        for (int l = 0; l < LANES; l++) {
            float m0 = x[l], m1 = x[xs + l], m2 = x[2 * xs + l], m3 = x[3 * xs + l];
            y[l] = m0 + m1 + m2;
            y[ys + l] = m1 - m2 - m3;
        }
    }
}

/* The input transform takes a whole block of tiles at once (a multiple of
   RX_MR, so each group of RX_MR tiles is written as runs of RX_MR floats). */
enum { BLOCK = RX_WINO_BLOCK_MAX };

/* The tiles of a block in runs along one tile row: lanes [l0, l0 + n) are
   tiles whose input patches start at (y, x), (y, x + tile), ... */
typedef struct tile_run {
    int l0, n;
    int64_t y, x;
} tile_run;

static int tile_runs(int64_t t0, int64_t count, int64_t tiles_w, int tile, int64_t pad_top, int64_t pad_left,
                     tile_run *runs)
{
    int n = 0;
    for (int64_t l = 0; l < count;) {
        const int64_t at = t0 + l, tx = at % tiles_w, len = tiles_w - tx < count - l ? tiles_w - tx : count - l;
        runs[n++] = (tile_run){(int)l, (int)len, at / tiles_w * tile - pad_top, tx * tile - pad_left};
        l += len;
    }
    return n;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* dst[j * BLOCK + t] = row[tile * t + j] for t < n <= 16 and j < tile + 2,
   by deinterleaving whole vectors. Only row[lo .. hi) is read, the rest
   taken as zero (masked loads): row points into an input row, or past
   either of its ends where the patches overhang the padding. */
__attribute__((target("avx512f")))
static void columns16(const float *row, int64_t lo, int64_t hi, int tile, int n, float *dst)
{
    const __mmask16 keep = rx_lanes16(n);
#define LOAD(at) _mm512_maskz_loadu_ps(rx_lanes16(hi - (at)) & (uint16_t)~rx_lanes16(lo - (at)), row + (at))
    const __m512i step = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 e0, e1;
    if (tile == 4) {
        const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
        __m512 v0 = LOAD(0), v1 = LOAD(16), v2 = LOAD(32), v3 = LOAD(48);
        __m512 e[4];
        for (int j = 0; j < 4; j++) {
            __m512i at = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
            __m512 lo = _mm512_permutex2var_ps(v0, at, v1), hi = _mm512_permutex2var_ps(v2, at, v3);
            e[j] = _mm512_shuffle_f32x4(lo, hi, 0x44); /* lanes 0-7 of lo, then 0-7 of hi */
            _mm512_mask_storeu_ps(dst + j * BLOCK, keep, e[j]);
        }
        e0 = e[0], e1 = e[1];
    } else {
        const __m512i idx = _mm512_slli_epi32(step, 1); /* 0, 2, ..., 30 */
        __m512 v0 = LOAD(0), v1 = LOAD(16);
        e0 = _mm512_permutex2var_ps(v0, idx, v1);
        e1 = _mm512_permutex2var_ps(v0, _mm512_add_epi32(idx, _mm512_set1_epi32(1)), v1);
        _mm512_mask_storeu_ps(dst, keep, e0);
        _mm512_mask_storeu_ps(dst + BLOCK, keep, e1);
    }
#undef LOAD
    /* the last two columns are the first two one tile on (read only for a
       16th tile, and only inside [lo, hi)) */
    const int64_t n0 = 16 * tile, n1 = n0 + 1;
    const float next0 = n == 16 && n0 >= lo && n0 < hi ? row[n0] : 0.0f;
    const float next1 = n == 16 && n1 >= lo && n1 < hi ? row[n1] : 0.0f;
    __m512 a = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(next0)),
                                                       _mm512_castps_si512(e0), 1));
    __m512 b = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(next1)),
                                                       _mm512_castps_si512(e1), 1));
    _mm512_mask_storeu_ps(dst + tile * BLOCK, keep, a);
    _mm512_mask_storeu_ps(dst + (tile + 1) * BLOCK, keep, b);
}

/* The same with AVX2, 8 tiles at a time: t < n <= 8. */
__attribute__((target("avx2")))
static void columns8(const float *row, int64_t lo, int64_t hi, int tile, int n, float *dst)
{
    const __m256i keep = rx_lanes8(n);
#define LOAD(at) _mm256_maskload_ps(row + (at), _mm256_andnot_si256(rx_lanes8(lo - (at)), rx_lanes8(hi - (at))))
    __m256 e0, e1;
    if (tile == 4) {
        const __m256 v0 = LOAD(0), v1 = LOAD(8), v2 = LOAD(16), v3 = LOAD(24);
        /* tiles 0 2 | 1 3 of v0, v1 and 4 6 | 5 7 of v2, v3 interleaved, then
           each column's tiles put back in order */
        const __m256 a = _mm256_unpacklo_ps(v0, v1), b = _mm256_unpackhi_ps(v0, v1);
        const __m256 c = _mm256_unpacklo_ps(v2, v3), d = _mm256_unpackhi_ps(v2, v3);
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        __m256 e[4] = {_mm256_shuffle_ps(a, c, 0x44), _mm256_shuffle_ps(a, c, 0xee), _mm256_shuffle_ps(b, d, 0x44),
                       _mm256_shuffle_ps(b, d, 0xee)};
        for (int j = 0; j < 4; j++) {
            e[j] = _mm256_permutevar8x32_ps(e[j], order);
            _mm256_maskstore_ps(dst + j * BLOCK, keep, e[j]);
        }
        e0 = e[0], e1 = e[1];
    } else {
        const __m256 v0 = LOAD(0), v1 = LOAD(8);
        /* even and odd floats, in 64-bit pairs 0 2 1 3: put back in order */
        e0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0x88)), 0xd8));
        e1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0xdd)), 0xd8));
        _mm256_maskstore_ps(dst, keep, e0);
        _mm256_maskstore_ps(dst + BLOCK, keep, e1);
    }
#undef LOAD
    const int64_t n0 = 8 * tile, n1 = n0 + 1;
    const float next0 = n == 8 && n0 >= lo && n0 < hi ? row[n0] : 0.0f;
    const float next1 = n == 8 && n1 >= lo && n1 < hi ? row[n1] : 0.0f;
    const __m256i on = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);
    _mm256_maskstore_ps(dst + tile * BLOCK, keep,
                        _mm256_blend_ps(_mm256_permutevar8x32_ps(e0, on), _mm256_set1_ps(next0), 0x80));
    _mm256_maskstore_ps(dst + (tile + 1) * BLOCK, keep,
                        _mm256_blend_ps(_mm256_permutevar8x32_ps(e1, on), _mm256_set1_ps(next1), 0x80));
}
#endif

/* d[(i * span + j) * BLOCK + l] = the input at row i, column j of lane l's
   patch (span = tile + 2), zero outside the plane. Each input row a run
   covers is read 16 tiles at a time, in place (copying every row was 3.5%
   of VGG-16's run); every column j of the patches is then a constant-stride
   slice of it, which vectorises. With AVX-512 and AVX2 the padding is
   masked off the loads (columns16, columns8; AVX2's transform per channel
   took twice as long with the compiler's loop); the portable code copies
   rows at an edge zero-padded into `row`.
   On small images every run is at an edge: copying those (two memsets and
   a memcpy per row) was a third of the transform, 1145 against 700 ticks
   per channel of a 14x14 F(2x2) layer. Lanes past the runs are left as
   they are. */
ALWAYS_INLINE void gather_patches(const float *plane, int64_t height, int64_t width, const tile_run *runs,
                                  int nruns, int tile, float *d)
{
    const int span = tile + 2;
#if defined(__x86_64__)
    const rx_gemm_isa *isa = rx_gemm_select();
    const bool avx512 = isa == &rx_gemm_avx512, avx2 = isa == &rx_gemm_avx2;
#endif
    float row[4 * 16 + 2];
    for (int r = 0; r < nruns; r++) {
        const tile_run *u = &runs[r];
        /* columns [lo, hi) of the run's patches lie inside the plane */
        int64_t lo = u->x < 0 ? -u->x : 0, hi = width - u->x;
        for (int i = 0; i < span; i++) {
            const int64_t y = u->y + i;
            const bool inside = y >= 0 && y < height;
            for (int t0 = 0; t0 < u->n; t0 += 16) { /* 16 tiles at a time: one vector of lanes */
                const int n = u->n - t0 < 16 ? u->n - t0 : 16;
                const int64_t c0 = (int64_t)tile * t0, c1 = c0 + (int64_t)tile * n + 2;
                float *dst = d + i * span * BLOCK + u->l0 + t0;
#if defined(__x86_64__)
                if (avx512 || avx2) { /* in place, the padding masked off: no copy */
                    const int64_t a = inside ? lo - c0 : 0, b = inside ? hi - c0 : 0;
                    const float *at = plane + (inside ? y : 0) * width + u->x + c0;
                    if (avx512) columns16(at, a, b, tile, n, dst);
                    else {
                        columns8(at, a, b, tile, n < 8 ? n : 8, dst);
                        if (n > 8) columns8(at + 8 * tile, a - 8 * tile, b - 8 * tile, tile, n - 8, dst + 8);
                    }
                    continue;
                }
#endif
                const float *src = row;
                if (inside && c0 >= lo && c1 <= hi) {
                    src = plane + y * width + u->x + c0;
                } else { /* an edge: its columns [a, b) inside the plane copied, the rest zero */
                    int64_t a = c0 < lo ? lo : c0, b = c1 < hi ? c1 : hi;
                    if (!inside || b < a) a = b = c0;
                    memset(row, 0, (size_t)(a - c0) * sizeof *row);
                    if (b > a) memcpy(row + (a - c0), plane + y * width + u->x + a, (size_t)(b - a) * sizeof *row);
                    memset(row + (b - c0), 0, (size_t)(c1 - b) * sizeof *row);
                }
                for (int j = 0; j < span; j++) {
                    if (tile == 4) for (int t = 0; t < n; t++) dst[j * BLOCK + t] = src[4 * t + j]; /* constant strides vectorise */
                    else for (int t = 0; t < n; t++) dst[j * BLOCK + t] = src[2 * t + j];
                }
            }
        }
    }
}

/* Prefetches what gather_patches will read of a plane: the input rows of
   the runs' patches. Issued for the next channel while this one is
   transformed: each channel is 6 short runs of rows (a few cache lines
   each) in a plane of its own, too many streams for the prefetchers, and
   the transform waited on memory. VGG-16's 224x224x64 layer on its own
   (input transform, one thread): 3.9-4.4 ms -> 3.0-3.2; in the whole net
   (layer, one / two threads) 10.5-10.8 -> 10.2-10.4 and 5.7-6.0 -> 5.35-5.6;
   a 112x112x64 -> 128 layer 4.43-4.70 -> 4.35 and 2.23-2.46 -> 2.20-2.23.
   Two channels ahead was no better; prefetching the output transform's
   rows for writing, or storing them as vectors (transposed in
   registers), gained nothing: that side is bound by the writes. */
static inline void prefetch_patches(const float *plane, int64_t height, int64_t width, const tile_run *runs, int nruns,
                                    int tile)
{
    for (int r = 0; r < nruns; r++) {
        const tile_run *u = &runs[r];
        int64_t x0 = u->x < 0 ? 0 : u->x, x1 = u->x + (int64_t)tile * u->n + 2;
        if (x1 > width) x1 = width;
        for (int i = 0; i < tile + 2; i++) {
            const int64_t y = u->y + i;
            if (y < 0 || y >= height || x1 <= x0) continue;
            const char *p = (const char *)(plane + y * width + x0), *end = (const char *)(plane + y * width + x1);
            for (p = (const char *)((uintptr_t)p & ~(uintptr_t)63); p < end; p += 64) __builtin_prefetch(p);
        }
    }
}

ALWAYS_INLINE void input_tiles(int tile, const float *in, int64_t channels, int64_t height, int64_t width,
                               int64_t pad_top, int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count,
                               float *v)
{
    const int span = tile + 2, points = span * span;
    const int64_t groups = (count + RX_MR - 1) / RX_MR;
    tile_run runs[BLOCK];
    const int nruns = tile_runs(t0, count, tiles_w, tile, pad_top, pad_left, runs);
    /* Only as many lanes as there are tiles, in whole vectors: small images
       (deep layers) have a few tiles per block. Lanes past the tiles: 0. */
    const int lanes = (int)((count + LANES - 1) / LANES * LANES);
    float d[RX_WINO_POINTS_MAX][BLOCK], rows[RX_WINO_POINTS_MAX][BLOCK], out[RX_WINO_POINTS_MAX][BLOCK];
    for (int p = 0; p < points; p++) memset(&d[p][count], 0, (size_t)(lanes - count) * sizeof(float));
    for (int64_t c = 0; c < channels; c++) {
        if (c + 1 < channels) prefetch_patches(in + (c + 1) * height * width, height, width, runs, nruns, tile);
        gather_patches(in + c * height * width, height, width, runs, nruns, tile, (float *)d);
        for (int i = 0; i < span; i++) /* along rows, then columns */
            input_step(tile, (float *)d + i * span * BLOCK, BLOCK, (float *)rows + i * span * BLOCK, BLOCK, lanes);
        for (int j = 0; j < span; j++)
            input_step(tile, (float *)rows + j * BLOCK, span * BLOCK, (float *)out + j * BLOCK, span * BLOCK, lanes);
        for (int64_t g = 0; g < groups; g++) {
            float *dst = v + (g * channels + c) * points * RX_MR;
            for (int p = 0; p < points; p++) memcpy(dst + p * RX_MR, &out[p][g * RX_MR], RX_MR * sizeof(float));
        }
    }
}

ALWAYS_INLINE void output_tiles(int tile, const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias,
                                int64_t tiles_w, int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    const int span = tile + 2, points = span * span;
    for (int64_t t = 0; t < count; t++) {
        int64_t at = t0 + t, oy = at / tiles_w * tile, ox = at % tiles_w * tile;
        int64_t ny = out_h - oy < tile ? out_h - oy : tile, nx = out_w - ox < tile ? out_w - ox : tile;
        for (int64_t f = f0; f < f1; f += LANES) {
            float x[RX_WINO_POINTS_MAX][LANES], half[4 * 6][LANES], y[4 * 4][LANES];
            const int lanes = f1 - f < LANES ? (int)(f1 - f) : LANES;
            for (int p = 0; p < points; p++) {
                const float *src = m + (t * points + p) * ldm + f;
                if (lanes == LANES) memcpy(x[p], src, sizeof x[p]);
                else for (int l = 0; l < LANES; l++) x[p][l] = l < lanes ? src[l] : 0.0f;
            }
            for (int j = 0; j < span; j++) /* along columns, then rows */
                output_step(tile, (float *)x + j * LANES, span * LANES, (float *)half + j * LANES, span * LANES);
            for (int i = 0; i < tile; i++)
                output_step(tile, (float *)half + i * span * LANES, LANES, (float *)y + i * tile * LANES, LANES);
            for (int l = 0; l < lanes; l++) {
                float b = bias ? bias[f + l] : 0.0f;
                float *plane = out + (f + l) * out_h * out_w + oy * out_w + ox;
                for (int64_t i = 0; i < ny; i++)
                    for (int64_t j = 0; j < nx; j++) plane[i * out_w + j] = y[i * tile + j][l] + b;
            }
        }
    }
}

/* The tile as a constant in each, for the compiler. */
RX_MULTIVERSION
static void input4(const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                   int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v)
{
    input_tiles(4, in, channels, height, width, pad_top, pad_left, tiles_w, t0, count, v);
}

RX_MULTIVERSION
static void input2(const float *in, int64_t channels, int64_t height, int64_t width, int64_t pad_top,
                   int64_t pad_left, int64_t tiles_w, int64_t t0, int64_t count, float *v)
{
    input_tiles(2, in, channels, height, width, pad_top, pad_left, tiles_w, t0, count, v);
}

RX_MULTIVERSION
static void output4(const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias, int64_t tiles_w,
                    int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    output_tiles(4, m, ldm, f0, f1, bias, tiles_w, t0, count, out, out_h, out_w);
}

RX_MULTIVERSION
static void output2(const float *m, int64_t ldm, int64_t f0, int64_t f1, const float *bias, int64_t tiles_w,
                    int64_t t0, int64_t count, float *out, int64_t out_h, int64_t out_w)
{
    output_tiles(2, m, ldm, f0, f1, bias, tiles_w, t0, count, out, out_h, out_w);
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
