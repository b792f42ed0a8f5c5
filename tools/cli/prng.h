/*
 * prng.h: a random number generator that gives the same numbers on every
 * machine, so that `rectify init --seed N` writes the same file everywhere.
 *
 * xoshiro256** (Blackman and Vigna) seeded through splitmix64, and normal
 * variates by Box-Muller. The logarithm, sine and cosine Box-Muller needs are
 * computed here from +, -, *, / and sqrt only, all of which IEEE 754 rounds
 * exactly; the C library's log/sin/cos may differ in the last bit between
 * implementations, and that bit can change a float32 weight.
 */
#ifndef RECTIFY_CLI_PRNG_H
#define RECTIFY_CLI_PRNG_H

#include <stdint.h>

typedef struct prng {
    uint64_t state[4];
    double spare;       /* Box-Muller makes normals in pairs */
    int has_spare;
} prng;

void prng_seed(prng *rng, uint64_t seed);
uint64_t prng_next(prng *rng);

/* A standard normal variate (mean 0, standard deviation 1). */
double prng_normal(prng *rng);

#endif /* RECTIFY_CLI_PRNG_H */
