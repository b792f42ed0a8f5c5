/* prng.c: xoshiro256**, splitmix64, and Box-Muller with portable math. */
#include <float.h>
#include <math.h>

#include "prng.h"

/* Fused multiply-adds round once instead of twice and would change results
   between machines that have them and machines that don't. meson passes
   -ffp-contract=off where the compiler knows it; this is for the others. */
#if !defined(__GNUC__) || defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* x87 keeps doubles in 80-bit registers, so results would depend on register
   allocation; the promise of identical files does not hold there. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#  warning "double arithmetic is not evaluated in double: rectify init output may differ from other machines"
#endif

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

void prng_seed(prng *rng, uint64_t seed)
{
    /* splitmix64 never yields four zero words, the one state xoshiro must
       avoid. */
    for (int i = 0; i < 4; i++)
        rng->state[i] = splitmix64(&seed);
    rng->spare = 0.0;
    rng->has_spare = 0;
}

static uint64_t rotate_left(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(prng *rng)
{
    uint64_t *s = rng->state;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

#define TWO_TO_MINUS_53 (1.0 / 9007199254740992.0)
#define LN_2 0.6931471805599453094172321
#define TWO_PI 6.283185307179586476925287
#define SQRT_HALF 0.7071067811865475244008444

/* Natural logarithm of x > 0 (here x is in (0, 1]). x = m * 2^e with m in
   [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172,
   whose series to s^21 leaves an error below 1e-18. frexp is exact. */
static double portable_log(double x)
{
    int exponent;
    double m = frexp(x, &exponent);
    if (m < SQRT_HALF) {
        m *= 2.0;
        exponent -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double series = 1.0 / 21.0;
    for (int k = 19; k >= 1; k -= 2)
        series = 1.0 / k + s2 * series;
    return 2.0 * s * series + exponent * LN_2;
}

/* sin and cos of x for |x| <= pi/4, by Taylor series to x^17 and x^16:
   the first term left out is below 2e-18. */
static void small_sincos(double x, double *sine, double *cosine)
{
    double x2 = x * x;
    double s = 1.0, c = 1.0;
    for (int n = 8; n >= 1; n--) {
        s = 1.0 - x2 / ((2.0 * n) * (2.0 * n + 1.0)) * s;
        c = 1.0 - x2 / ((2.0 * n - 1.0) * (2.0 * n)) * c;
    }
    *sine = x * s;
    *cosine = c;
}

/* sin and cos of 2 pi k / 2^53 for 0 <= k < 2^53. The quadrant and the
   remainder come from the integer k, so the reduction is exact. */
static void turn_sincos(uint64_t k, double *sine, double *cosine)
{
    uint64_t quadrant = (k + ((uint64_t)1 << 49)) >> 51;  /* nearest quarter, 0..4 */
    int64_t remainder = (int64_t)k - (int64_t)(quadrant << 51); /* |.| <= 2^49 */
    double s, c;
    small_sincos((double)remainder * TWO_TO_MINUS_53 * TWO_PI, &s, &c);
    switch (quadrant & 3) {
    case 0: *sine = s;  *cosine = c;  break;
    case 1: *sine = c;  *cosine = -s; break;
    case 2: *sine = -s; *cosine = -c; break;
    default: *sine = -c; *cosine = s; break;
    }
}

double prng_normal(prng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    /* u in (0, 1], never 0, so the logarithm is finite. */
    double u = (double)((prng_next(rng) >> 11) + 1) * TWO_TO_MINUS_53;
    uint64_t turn = prng_next(rng) >> 11;
    double radius = sqrt(-2.0 * portable_log(u));
    double sine, cosine;
    turn_sincos(turn, &sine, &cosine);
    rng->spare = radius * sine;
    rng->has_spare = 1;
    return radius * cosine;
}
