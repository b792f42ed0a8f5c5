/* dot.c: the dot product of dense layers, the zero count of every layer's
   output (the sparsity statistics, on every run: it must cost next to
   nothing), ReLU with both counts, and the count of NaN and infinities in
   weights at load. */
#include <string.h>

#include "kernels.h"

RX_MULTIVERSION
float rx_dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

RX_MULTIVERSION
void rx_count_zeros(const float *x, int64_t planes, int64_t plane, int64_t *counts)
{
    if (plane == 1) { /* dense layers: a channel is one value */
        for (int64_t p = 0; p < planes; p++) counts[p] = x[p] == 0.0f;
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *v = x + p * plane;
        int64_t total = 0;
        for (int64_t i0 = 0; i0 < plane; i0 += 1 << 30) { /* 32-bit lanes: 16 per vector */
            const int64_t n = plane - i0 < (1 << 30) ? plane - i0 : (1 << 30);
            int32_t z = 0; /* no omp simd: its reduction goes through memory, slow on short planes */
            for (int64_t i = 0; i < n; i++) z += v[i0 + i] == 0.0f;
            total += z;
        }
        counts[p] = total;
    }
}

RX_MULTIVERSION
void rx_relu_count(const float *x, float *y, int64_t planes, int64_t plane, int64_t *zeros, int64_t *in_zeros)
{
    if (!zeros) { /* statistics off */
        #pragma GCC ivdep
        for (int64_t i = 0; i < planes * plane; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    if (plane == 1) { /* dense layers: a channel is one value, counted without a loop per channel */
        #pragma GCC ivdep
        for (int64_t p = 0; p < planes; p++) {
            const float v = x[p], r = v > 0.0f ? v : 0.0f;
            if (in_zeros) in_zeros[p] = v == 0.0f;
            zeros[p] = r == 0.0f;
            y[p] = r;
        }
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *a = x + p * plane;
        float *b = y + p * plane;
        int64_t out_total = 0, in_total = 0;
        for (int64_t i0 = 0; i0 < plane; i0 += 1 << 30) {
            const int64_t n = plane - i0 < (1 << 30) ? plane - i0 : (1 << 30);
            int32_t zo = 0, zi = 0;
            #pragma GCC ivdep /* b may be a (in place): element i is read before it is written */
            for (int64_t i = i0; i < i0 + n; i++) {
                float v = a[i], r = v > 0.0f ? v : 0.0f;
                zi += v == 0.0f;
                zo += r == 0.0f;
                b[i] = r;
            }
            out_total += zo, in_total += zi;
        }
        zeros[p] = out_total;
        if (in_zeros) in_zeros[p] = in_total;
    }
}

RX_MULTIVERSION
int64_t rx_count_nonfinite(const float *x, int64_t n)
{
    int64_t total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 1 << 30) {
        const int64_t end = n - i0 < (1 << 30) ? n : i0 + (1 << 30);
        int32_t bad = 0;
        for (int64_t i = i0; i < end; i++) {
            uint32_t bits;
            memcpy(&bits, &x[i], sizeof bits);
            bad += (bits & 0x7f800000u) == 0x7f800000u;
        }
        total += bad;
    }
    return total;
}
