/* im2col.c: packs the pixels a convolution reads into the k-major panels of
   the GEMM (kernels/gemm.h): panel slice s holds pixels [s*nr, s*nr + nr)
   as kc rows of nr floats. Rows along an output row are copied as runs when
   the stride is 1, which is what keeps packing cheap next to the multiply. */
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
        for (int64_t t = 0; t < take; t++) dst[t] = src[t * stride];
        src += take * stride, j += take, n -= take;
    }
}

void rx_im2col(const rx_conv_geometry *g, const float *in, int64_t p0, int64_t np, int64_t k0, int64_t kc, int nr,
               float *panel)
{
    const rx_window *w = &g->win;
    const int64_t taps = w->kh * w->kw, ow = g->out_width;
    for (int64_t kk = 0; kk < kc; kk++) {
        int64_t k = k0 + kk, c = k / taps, tap = k % taps, ki = tap / w->kw, kj = tap % w->kw;
        const float *plane = in + c * g->height * g->width;
        int64_t j = 0;
        while (j < np) {
            int64_t p = p0 + j, oy = p / ow, ox = p % ow;
            int64_t n = ow - ox < np - j ? ow - ox : np - j; /* the rest of this output row */
            int64_t iy = oy * w->sh - w->pt + ki * w->dh;
            if (iy < 0 || iy >= g->height) {
                put_run(panel, kc, kk, nr, j, NULL, n);
            } else if (w->sw == 1) {
                /* ix = ox - pl + kj*dw: valid where 0 <= ix < width */
                int64_t shift = kj * w->dw - w->pl;
                int64_t lo = -shift > ox ? -shift : ox, hi = g->width - shift < ox + n ? g->width - shift : ox + n;
                if (hi <= lo) {
                    put_run(panel, kc, kk, nr, j, NULL, n);
                } else {
                    put_run(panel, kc, kk, nr, j, NULL, lo - ox);
                    put_run(panel, kc, kk, nr, j + lo - ox, plane + iy * g->width + lo + shift, hi - lo);
                    put_run(panel, kc, kk, nr, j + hi - ox, NULL, ox + n - hi);
                }
            } else {
                /* ix = ix0 + t*sw: valid for t in [lo, hi) */
                const int64_t s = w->sw, ix0 = ox * s - w->pl + kj * w->dw;
                int64_t lo = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s, hi = g->width - ix0 <= 0 ? 0 : (g->width - ix0 + s - 1) / s;
                if (hi > n) hi = n;
                if (lo > hi) lo = hi;
                put_run(panel, kc, kk, nr, j, NULL, lo);
                put_strided(panel, kc, kk, nr, j + lo, plane + iy * g->width + ix0 + lo * s, s, hi - lo);
                put_run(panel, kc, kk, nr, j + hi, NULL, n - hi);
            }
            j += n;
        }
        /* zero the tail of the last slice: the micro-kernel reads whole slices */
        int64_t end = (np + nr - 1) / nr * nr;
        if (end > np) put_run(panel, kc, kk, nr, np, NULL, end - np);
    }
}
