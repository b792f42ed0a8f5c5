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
   within TOLERANCE of the reference `want` (one sample). The batch's second
   sample is the input reversed, held to its own run as one sample on one
   thread: a batch that read or wrote another sample's place fails. */
static inline void check_runs(const rectify_model *m, const float *in, int64_t in_n, const double *want,
                       int64_t want_n, const char *what)
{
    float *in2 = malloc((size_t)in_n * 2 * sizeof *in2);
    for (int64_t i = 0; i < in_n; i++) in2[i] = in[i], in2[in_n + i] = in[in_n - 1 - i];
    int64_t count = 0;
    float *other = run_model(m, in2 + in_n, 1, 1, &count);
    cr_assert_not_null(other, "%s: run failed", what);
    cr_assert_eq(count, want_n, "%s: %lld outputs, want %lld", what, (long long)count, (long long)want_n);
    double *want2 = malloc((size_t)want_n * sizeof *want2);
    for (int64_t i = 0; i < want_n; i++) want2[i] = other[i];
    free(other);
    for (int threads = 1; threads <= 2; threads++)
        for (int batch = 1; batch <= 2; batch++) {
            float *got = run_model(m, batch == 1 ? in : in2, batch, threads, &count);
            cr_assert_not_null(got, "%s: run failed", what);
            cr_assert_eq(count, want_n * batch, "%s: %lld outputs, want %lld", what, (long long)count,
                         (long long)(want_n * batch));
            for (int b = 0; b < batch; b++) {
                double e = rel_error(got + b * want_n, b == 0 ? want : want2, want_n);
                cr_assert(e <= TOLERANCE, "%s (threads %d, batch %d, sample %d): relative error %g", what,
                          threads, batch, b, e);
            }
            free(got);
        }
    free(want2);
    free(in2);
}

#endif
