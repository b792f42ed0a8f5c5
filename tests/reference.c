/* reference.c: the operators written as plainly as possible, from their
   PyTorch definitions, with double accumulation. Never optimise these. */
#include <math.h>

#include "support.h"

int ref_out_size(int in, int k, int s, int p0, int p1, int d, int ceil_mode)
{
    double room = in + p0 + p1 - d * (k - 1) - 1;
    int out = (int)(ceil_mode ? ceil(room / s) : floor(room / s)) + 1;
    if (ceil_mode && (out - 1) * s >= in + p0) out--;
    return out;
}

void ref_conv(const float *x, int c, int h, int w, const float *weight, const float *bias, int cout, int groups,
              ref_window win, double *y, int oh, int ow)
{
    int cin_g = c / groups, cout_g = cout / groups;
    for (int o = 0; o < cout; o++) {
        int g = o / cout_g;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double sum = bias ? bias[o] : 0.0;
                for (int ci = 0; ci < cin_g; ci++)
                    for (int ki = 0; ki < win.kh; ki++)
                        for (int kj = 0; kj < win.kw; kj++) {
                            int iy = oy * win.sh - win.pt + ki * win.dh;
                            int ix = ox * win.sw - win.pl + kj * win.dw;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            int cc = g * cin_g + ci;
                            sum += (double)x[(cc * h + iy) * w + ix] *
                                   weight[((o * cin_g + ci) * win.kh + ki) * win.kw + kj];
                        }
                y[(o * oh + oy) * ow + ox] = sum;
            }
    }
}

void ref_maxpool(const float *x, int c, int h, int w, ref_window win, double *y, int oh, int ow)
{
    for (int ch = 0; ch < c; ch++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double best = -INFINITY;
                for (int ki = 0; ki < win.kh; ki++)
                    for (int kj = 0; kj < win.kw; kj++) {
                        int iy = oy * win.sh - win.pt + ki * win.dh;
                        int ix = ox * win.sw - win.pl + kj * win.dw;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w && x[(ch * h + iy) * w + ix] > best)
                            best = x[(ch * h + iy) * w + ix];
                    }
                y[(ch * oh + oy) * ow + ox] = best;
            }
}

void ref_avgpool(const float *x, int c, int h, int w, ref_window win, int include_pad, double *y, int oh, int ow)
{
    for (int ch = 0; ch < c; ch++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double sum = 0;
                int valid = 0, padded = 0;
                for (int ki = 0; ki < win.kh; ki++)
                    for (int kj = 0; kj < win.kw; kj++) {
                        int iy = oy * win.sh - win.pt + ki, ix = ox * win.sw - win.pl + kj;
                        /* cells of the padded input count for the divisor; cells past it do not */
                        if (iy < h + win.pb && ix < w + win.pr) padded++;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                            sum += x[(ch * h + iy) * w + ix];
                            valid++;
                        }
                    }
                int count = include_pad ? padded : valid;
                y[(ch * oh + oy) * ow + ox] = count ? sum / count : 0.0;
            }
}

void ref_dense(const float *x, int n, const float *weight, const float *bias, int units, double *y)
{
    for (int u = 0; u < units; u++) {
        double sum = bias ? bias[u] : 0.0;
        for (int i = 0; i < n; i++) sum += (double)weight[u * n + i] * x[i];
        y[u] = sum;
    }
}

void ref_softmax(const float *x, int c, int plane, double *y)
{
    for (int p = 0; p < plane; p++) {
        double top = -INFINITY, sum = 0;
        for (int ch = 0; ch < c; ch++) top = fmax(top, x[ch * plane + p]);
        for (int ch = 0; ch < c; ch++) sum += exp(x[ch * plane + p] - top);
        for (int ch = 0; ch < c; ch++) y[ch * plane + p] = exp(x[ch * plane + p] - top) / sum;
    }
}
