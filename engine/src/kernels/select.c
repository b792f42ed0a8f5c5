/* select.c: which micro-kernels this CPU runs, decided once per process.
   RECTIFY_ISA=avx2 or generic forces a narrower set, so that the paths a
   machine without AVX-512 takes are tested here too. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static const rx_gemm_isa *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("RECTIFY_ISA");
    bool avx512 = false, avx2 = false;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    if (want && strcmp(want, "generic") == 0) avx512 = avx2 = false;
    if (want && strcmp(want, "avx2") == 0) avx512 = false;
    chosen = avx512 ? &rx_gemm_avx512 : avx2 ? &rx_gemm_avx2 : &rx_gemm_generic;
}

const rx_gemm_isa *rx_gemm_select(void)
{
    pthread_once(&once, choose);
    return chosen;
}
