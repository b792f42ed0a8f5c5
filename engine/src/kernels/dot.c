/* dot.c: the dot product of dense layers. */
#include "kernels.h"

RX_MULTIVERSION
float rx_dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
