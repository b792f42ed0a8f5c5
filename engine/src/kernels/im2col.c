/* im2col.c: packs the pixels a convolution reads into the k-major panels of
   the GEMM (kernels/gemm.h): panel slice s holds pixels [s*nr, s*nr + nr)
   as kc rows of nr floats. Rows along an output row are copied as runs
   (strided for strides of 2 and 4: vector permutes), without a division
   per run, which is what keeps packing cheap next to the multiply. */
#include <string.h>

#include "kernels.h"

/* dst gets n values of the pixel range starting at j, splitting at slices
   (nr is a power of two). */
static inline void put_run(float *panel, int64_t kc, int64_t kk, int nr, int64_t j, const float *src, int64_t n)
{
    while (n > 0) {
        int64_t off = j & (nr - 1), take = nr - off < n ? nr - off : n;
        float *dst = panel + ((j - off) * kc + kk * nr) + off; /* slice j/nr starts at (j - off) * kc */
        if (src) memcpy(dst, src, (size_t)take * sizeof *dst), src += take;
        else memset(dst, 0, (size_t)take * sizeof *dst);
        j += take, n -= take;
    }
}

/* The same with a source stride (convolutions with stride > 1). */
static inline void put_strided(float *panel, int64_t kc, int64_t kk, int nr, int64_t j, const float *src, int64_t stride,
                               int64_t n)
{
    while (n > 0) {
        int64_t off = j & (nr - 1), take = nr - off < n ? nr - off : n;
        float *dst = panel + ((j - off) * kc + kk * nr) + off;
        /* constant strides, which the compiler vectorises with permutes */
        if (stride == 2) for (int64_t t = 0; t < take; t++) dst[t] = src[t * 2];
        else if (stride == 4) for (int64_t t = 0; t < take; t++) dst[t] = src[t * 4];
        else for (int64_t t = 0; t < take; t++) dst[t] = src[t * stride];
        src += take * stride, j += take, n -= take;
    }
}

/* The tap of an im2col row: input channel c, kernel row ki and column kj.
   Found once by division, then stepped row by row. */
typedef struct rx_tap {
    int64_t c, ki, kj;
} rx_tap;

static inline rx_tap tap_of(const rx_window *w, int64_t k)
{
    const int64_t taps = w->kh * w->kw;
    return (rx_tap){k / taps, k % taps / w->kw, k % taps % w->kw};
}

static inline void tap_next(const rx_window *w, rx_tap *t)
{
    if (++t->kj == w->kw) {
        t->kj = 0;
        if (++t->ki == w->kh) t->ki = 0, t->c++;
    }
}

/* t in [lo, hi): the outputs of a row segment starting at ix0 (stride s)
   whose input column lies inside [0, width). */
static inline void valid_range(int64_t ix0, int64_t s, int64_t width, int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t l = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s, h = width - ix0 <= 0 ? 0 : (width - ix0 + s - 1) / s;
    if (h > n) h = n;
    if (l > h) l = h;
    *lo = l, *hi = h;
}

RX_MULTIVERSION
void rx_im2col(const rx_conv_geometry *g, const float *in, int64_t p0, int64_t np, int64_t k0, int64_t kc, int nr,
               float *panel)
{
    const rx_window *w = &g->win;
    const int64_t ow = g->out_width, s = w->sw;
    /* Divisions once: the first pixel's row and column, the first row's
       channel and tap; then everything steps. */
    const int64_t oy0 = p0 / ow, ox0 = p0 % ow;
    rx_tap tp = tap_of(w, k0);
    for (int64_t kk = 0; kk < kc; kk++, tap_next(w, &tp)) {
        const int64_t c = tp.c, ki = tp.ki, kj = tp.kj;
        const float *plane = in + c * g->height * g->width;
        const int64_t shift = kj * w->dw - w->pl; /* ix = ox * s + shift */
        int64_t full_lo, full_hi;                 /* for a whole output row (ox from 0) */
        valid_range(shift, s, g->width, ow, &full_lo, &full_hi);
        int64_t j = 0, oy = oy0, ox = ox0;
        while (j < np) {
            int64_t n = ow - ox < np - j ? ow - ox : np - j; /* the rest of this output row */
            int64_t iy = oy * w->sh - w->pt + ki * w->dh;
            if (iy < 0 || iy >= g->height) {
                put_run(panel, kc, kk, nr, j, NULL, n);
            } else {
                int64_t lo, hi; /* outputs [ox + lo, ox + hi) read inside the row */
                if (ox == 0) {
                    lo = full_lo < n ? full_lo : n, hi = full_hi < n ? full_hi : n;
                } else {
                    valid_range(ox * s + shift, s, g->width, n, &lo, &hi);
                }
                put_run(panel, kc, kk, nr, j, NULL, lo);
                if (hi > lo) {
                    const float *src = plane + iy * g->width + (ox + lo) * s + shift;
                    if (s == 1) put_run(panel, kc, kk, nr, j + lo, src, hi - lo);
                    else put_strided(panel, kc, kk, nr, j + lo, src, s, hi - lo);
                }
                put_run(panel, kc, kk, nr, j + hi, NULL, n - hi);
            }
            j += n, oy++, ox = 0;
        }
        /* zero the tail of the last slice: the micro-kernel reads whole slices */
        int64_t end = (np + nr - 1) / nr * nr;
        if (end > np) put_run(panel, kc, kk, nr, np, NULL, end - np);
    }
}

/* The slices of one tap, N (the kernel's nr) a constant: whole-vector
   moves, no loop over a run-time width. */
static inline __attribute__((always_inline)) void pack_tap(float *panel, int64_t kc, int64_t kk, const float *src,
                                                           int64_t slices, int N)
{
    for (int64_t s = 0; s < slices; s++) {
        float *dst = panel + s * kc * N + kk * N;
        for (int t = 0; t < N; t++) dst[t] = src[s * N + t];
    }
}

RX_MULTIVERSION
void rx_pack_wide(const float *slab, int64_t plane, int64_t row, const rx_window *w, int64_t k0, int64_t kc,
                  int64_t slices, int nr, float *panel)
{
    rx_tap tp = tap_of(w, k0);
    for (int64_t kk = 0; kk < kc; kk++, tap_next(w, &tp)) {
        const float *src = slab + tp.c * plane + tp.ki * w->dh * row + tp.kj * w->dw;
        if (nr == 64) pack_tap(panel, kc, kk, src, slices, 64);
        else if (nr == 16) pack_tap(panel, kc, kk, src, slices, 16);
        else pack_tap(panel, kc, kk, src, slices, nr);
    }
}
