/* dot.c: the dot product of dense layers and the zero count of every layer's
   output (the sparsity statistics, on every run: it must cost next to nothing). */
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
int64_t rx_count_zeros(const float *x, int64_t n)
{
    int64_t total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 1 << 30) { /* 32-bit lanes: 16 per vector */
        const int64_t end = n - i0 < (1 << 30) ? n : i0 + (1 << 30);
        int32_t z = 0;
        #pragma omp simd reduction(+ : z)
        for (int64_t i = i0; i < end; i++) z += x[i] == 0.0f;
        total += z;
    }
    return total;
}
