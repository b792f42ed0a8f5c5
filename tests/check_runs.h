/* check_runs.h: the operator suites' check of a model against a plain
   reference (criterion asserts, so a header of its own, not support.c,
   which run_tensor links too). */
#ifndef TEST_CHECK_RUNS_H
#define TEST_CHECK_RUNS_H

#include <criterion/criterion.h>
#include <stdlib.h>

#include "support.h"

/* Relative error allowed against the double-precision references. */
#define TOLERANCE 1e-5

/* Runs the model with batch 1 and 2 on 1 and 2 threads: each result must be
   within TOLERANCE of the reference `want` (one sample; the batch repeats
   the input). */
static inline void check_runs(const rectify_model *m, const float *in, int64_t in_n, const double *want,
                       int64_t want_n, const char *what)
{
    float *in2 = malloc((size_t)in_n * 2 * sizeof *in2);
    for (int64_t i = 0; i < in_n; i++) in2[i] = in2[in_n + i] = in[i];
    for (int threads = 1; threads <= 2; threads++)
        for (int batch = 1; batch <= 2; batch++) {
            int64_t count = 0;
            float *got = run_model(m, batch == 1 ? in : in2, batch, threads, &count);
            cr_assert_not_null(got, "%s: run failed", what);
            cr_assert_eq(count, want_n * batch, "%s: %lld outputs, want %lld", what, (long long)count,
                         (long long)(want_n * batch));
            for (int b = 0; b < batch; b++) {
                double e = rel_error(got + b * want_n, want, want_n);
                cr_assert(e <= TOLERANCE, "%s (threads %d, batch %d, sample %d): relative error %g", what,
                          threads, batch, b, e);
            }
            free(got);
        }
    free(in2);
}

#endif
