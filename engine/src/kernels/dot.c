/* dot.c: the dot product of dense layers, the sum of a layer's zero counts
   into its totals (zeros.c counts them), and the count of NaN and
   infinities in weights at load. */
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
int64_t rx_add_counts(const int64_t *restrict counts, int64_t n, int64_t *restrict totals)
{
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += counts[i];
        totals[i] += counts[i];
    }
    return sum;
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
