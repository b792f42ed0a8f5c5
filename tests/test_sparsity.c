/* test_sparsity.c: the operators beyond ReLU (sigmoid, tanh, leaky_relu)
   against plain references; dense layers skipping zero inputs against the
   same reading every input (RECTIFY_SPARSE=off); exact zero counts (per
   layer and per channel) against a reference computation on fixed nets;
   rectify_model_layer_window. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support.h"

/* One activation layer on a random input of rank 1 or 3; every output within
   a relative 1e-6 (plus 1e-7 absolute) of the double reference. */
static void activation_case(const char *op, const char *extra, double (*ref)(double, double), double slope)
{
    rng r = {11};
    for (int trial = 0; trial < 40; trial++) {
        int c = rng_int(&r, 1, 8), h = rng_int(&r, 1, 12), w = rng_int(&r, 1, 12);
        int flat = trial % 2;
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[%s{\"name\":\"a\",\"op\":\"%s\"%s}]}",
                 c, h, w, flat ? "{\"name\":\"f\",\"op\":\"flatten\"}," : "", op, extra);
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        cr_assert_not_null(m, "%s: %s", op, err.message);
        int64_t n = (int64_t)c * h * w;
        float *in = random_floats(&r, n, -8, 8);
        in[0] = 0.0f; /* an exact zero stays one under all three */
        for (int threads = 1; threads <= 2; threads++) {
            int64_t count;
            float *got = run_model(m, in, 1, threads, &count);
            cr_assert_not_null(got);
            cr_assert_eq(count, n);
            for (int64_t i = 0; i < n; i++) {
                double want = ref(in[i], slope);
                cr_assert(fabs(got[i] - want) <= 1e-6 * fabs(want) + 1e-7, "%s(%g) = %g, want %g", op, in[i],
                          got[i], want);
            }
            cr_assert(strcmp(op, "sigmoid") == 0 || got[0] == 0.0f, "%s(0) = %g", op, got[0]);
            free(got);
        }
        free(in);
        rectify_model_destroy(m);
    }
}

static double ref_sigmoid(double x, double slope) { (void)slope; return 1.0 / (1.0 + exp(-x)); }
static double ref_tanh(double x, double slope) { (void)slope; return tanh(x); }
static double ref_leaky(double x, double slope) { return x > 0 ? x : (double)(float)slope * x; }

Test(activations, sigmoid_matches_reference) { activation_case("sigmoid", "", ref_sigmoid, 0); }
Test(activations, tanh_matches_reference) { activation_case("tanh", "", ref_tanh, 0); }
Test(activations, leaky_relu_default_slope) { activation_case("leaky_relu", "", ref_leaky, 0.01); }
Test(activations, leaky_relu_given_slope) { activation_case("leaky_relu", ",\"slope\":0.2", ref_leaky, 0.2); }
Test(activations, leaky_relu_negative_slope) { activation_case("leaky_relu", ",\"slope\":-0.5", ref_leaky, -0.5); }

Test(activations, leaky_relu_bad_slope_is_an_error_naming_the_field)
{
    const char *bad[] = {"\"slope\":\"x\"", "\"slope\":1e9", "\"units\":3"};
    for (int i = 0; i < 3; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[1,2,2]},"
                 "\"layers\":[{\"name\":\"a\",\"op\":\"leaky_relu\",%s}]}", bad[i]);
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        cr_assert_null(m, "%s accepted", bad[i]);
        cr_assert_eq(err.status, RECTIFY_ERR_INVALID, "%s: %s", bad[i], err.message);
        cr_assert(strstr(err.message, "\"a\"") && (strstr(err.message, "slope") || strstr(err.message, "units")),
                  "%s: %s", bad[i], err.message);
    }
}

/* ---- the zero-skipping dense kernel -------------------------------------- */

/* input [n,1,1] -> relu -> flatten -> dense(units), loaded with
   RECTIFY_SPARSE set to `mode` (read at load): "off" reads every row of the
   packed weights, zeros included; "on" and unset skip the zero inputs. */
static rectify_model *relu_dense(const char *mode, int n, int units, const float *weight, const float *bias)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,1,1]},"
             "\"layers\":[{\"name\":\"r\",\"op\":\"relu\"},{\"name\":\"f\",\"op\":\"flatten\"},"
             "{\"name\":\"d\",\"op\":\"dense\",\"units\":%d}]}", n, units);
    ttensor t[2] = {{"d.weight", 2, {units, n}, weight}, {"d.bias", 1, {units}, bias}};
    if (mode) setenv("RECTIFY_SPARSE", mode, 1); else unsetenv("RECTIFY_SPARSE");
    rectify_error err;
    rectify_model *m = load_json(json, t, 2, &err);
    unsetenv("RECTIFY_SPARSE");
    cr_assert_not_null(m, "%s", err.message);
    return m;
}

Test(sparse_dense, equals_dense_kernel_and_reference_at_every_sparsity)
{
    rng r = {21};
    const double sparsities[] = {0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.99, 1.0};
    for (int trial = 0; trial < 24; trial++) {
        int n = trial % 6 == 0 ? rng_int(&r, 1000, 3000) : rng_int(&r, 1, 300);
        int units = trial % 5 == 0 ? rng_int(&r, 1030, 2100) : rng_int(&r, 1, 90);
        float *weight = random_floats(&r, (int64_t)units * n, -1, 1), *bias = random_floats(&r, units, -1, 1);
        rectify_model *sparse = relu_dense("on", n, units, weight, bias);
        rectify_model *dense = relu_dense("off", n, units, weight, bias);
        rectify_model *automatic = relu_dense(NULL, n, units, weight, bias);
        float *in = malloc((size_t)n * 2 * sizeof *in), *relu = malloc((size_t)n * sizeof *relu);
        double *want = malloc((size_t)units * sizeof *want);
        for (size_t k = 0; k < sizeof sparsities / sizeof sparsities[0]; k++) {
            /* Negative inputs become the ReLU's zeros. */
            for (int i = 0; i < n; i++) {
                in[i] = rng_float(&r, 0, 1) < sparsities[k] ? -rng_float(&r, 0.1f, 1) : rng_float(&r, 0, 2);
                relu[i] = in[i] > 0 ? in[i] : 0;
                in[n + i] = -in[i]; /* a second sample, the other way round */
            }
            ref_dense(relu, n, weight, bias, units, want);
            for (int threads = 1; threads <= 2; threads++) {
                int64_t count;
                float *a = run_model(sparse, in, 1, threads, &count);
                float *b = run_model(dense, in, 1, threads, &count);
                float *c = run_model(automatic, in, 2, threads, &count);
                cr_assert(a && b && c);
                double scale = 0;
                for (int u = 0; u < units; u++) scale = fmax(scale, fabs(want[u]));
                for (int u = 0; u < units; u++) {
                    /* float rounding: n terms, each off by a few ulps */
                    double tol = 1e-6 * (scale + 1) * sqrt((double)n + 1);
                    cr_assert(fabs(a[u] - b[u]) <= tol, "n %d units %d sparsity %g: sparse %g dense %g", n, units,
                              sparsities[k], a[u], b[u]);
                    cr_assert(fabs(a[u] - want[u]) <= tol && fabs(c[u] - want[u]) <= tol,
                              "n %d units %d sparsity %g: sparse %g auto %g reference %g", n, units, sparsities[k],
                              a[u], c[u], want[u]);
                }
                free(a), free(b), free(c);
            }
        }
        free(in), free(relu), free(want), free(weight), free(bias);
        rectify_model_destroy(sparse), rectify_model_destroy(dense), rectify_model_destroy(automatic);
    }
}

/* ---- exact zero counts on fixed nets -------------------------------------- */

/* Small integers make every sum exact in float: the zeros are then known
   exactly, including those a conv produces before any ReLU. */
static float *small_ints(rng *r, int64_t n, int lo, int hi)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = (float)rng_int(r, lo, hi);
    return p;
}

/* Loads json, whose layer "c" is a conv of cout filters of cin x k x k,
   with small integer weights (*cw) and biases (*cb): its sums are exact in
   float. With wino, F(2x2) is forced and every tap but the centre is zero,
   which keeps Winograd's transforms exact too. */
static rectify_model *load_int_conv(rng *r, const char *json, int cout, int cin, int k, bool wino, float **cw,
                                    float **cb)
{
    const int64_t wn = (int64_t)cout * cin * k * k;
    *cw = small_ints(r, wn, -1, 1), *cb = small_ints(r, cout, -1, 0);
    if (wino)
        for (int64_t i = 0; i < wn; i++) (*cw)[i] = i % 9 == 4 ? (*cw)[i] : 0.0f;
    ttensor t[2] = {{"c.weight", 4, {cout, cin, k, k}, *cw}, {"c.bias", 1, {cout}, *cb}};
    rectify_error err;
    if (wino) setenv("RECTIFY_WINOGRAD", "2", 1);
    rectify_model *m = load_json(json, t, 2, &err);
    unsetenv("RECTIFY_WINOGRAD");
    cr_assert_not_null(m, "%s", err.message);
    return m;
}

static int observe_nothing(void *user, int layer, const rectify_tensor *out)
{
    (void)layer, (void)out;
    ++*(int *)user;
    return 0;
}

/* A ReLU counts its input's zeros for the layer before it (the session's
   own count pass is skipped), except with an observer, or after the dense
   layer (one float per channel: the session counts both): both ways, both
   thread counts, exactly the reference's counts. With `off`, each image
   also runs with the statistics off: the same outputs, nothing counted. */
static void zeros_case(int threads, bool observe, bool off)
{
    rng r = {31};
    const int c = 3, h = 11, w = 9, cout = 5, units = 7;
    ref_window win = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    const int oh = h, ow = w, ph = oh / 2, pw = ow / 2;
    char json[1024];
    snprintf(json, sizeof json,
             "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
             "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":%d,\"kernel\":3,\"padding\":1},"
             "{\"name\":\"r\",\"op\":\"relu\"},{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":2},"
             "{\"name\":\"f\",\"op\":\"flatten\"},{\"name\":\"d\",\"op\":\"dense\",\"units\":%d},"
             "{\"name\":\"r2\",\"op\":\"relu\"}]}", c, h, w, cout, units);
    float *cw = small_ints(&r, (int64_t)cout * c * 9, -1, 1), *cb = small_ints(&r, cout, -1, 0);
    /* Channel 4 dead: its weights zero, bias -1. */
    for (int i = 0; i < c * 9; i++) cw[4 * c * 9 + i] = 0;
    cb[4] = -1;
    int64_t flat = (int64_t)cout * ph * pw;
    float *dw = small_ints(&r, units * flat, -1, 1), *db = small_ints(&r, units, -2, 2);
    ttensor t[4] = {{"c.weight", 4, {cout, c, 3, 3}, cw}, {"c.bias", 1, {cout}, cb},
                    {"d.weight", 2, {units, flat}, dw}, {"d.bias", 1, {units}, db}};
    rectify_error err;
    rectify_model *m = load_json(json, t, 4, &err);
    cr_assert_not_null(m, "%s", err.message);
    rectify_session *s;
    rectify_session_options options = {.threads = threads};
    cr_assert_eq(rectify_session_create(m, &options, &s, &err), RECTIFY_OK, "%s", err.message);
    int observed = 0;
    if (observe) rectify_session_set_observer(s, observe_nothing, &observed);

    int64_t want_channel[5][8] = {{0}}; /* layer 0..4 (c, r, p, f, d) x channel */
    int64_t want[6] = {0};
    const int images = 3;
    for (int image = 0; image < images; image++) {
        float *in = small_ints(&r, (int64_t)c * h * w, -2, 2);
        double *conv = malloc((size_t)cout * oh * ow * sizeof *conv);
        ref_conv(in, c, h, w, cw, cb, cout, 1, win, conv, oh, ow);
        float *relu = malloc((size_t)cout * oh * ow * sizeof *relu);
        for (int i = 0; i < cout * oh * ow; i++) {
            int ch = i / (oh * ow);
            want[0] += conv[i] == 0, want_channel[0][ch] += conv[i] == 0;
            relu[i] = conv[i] > 0 ? (float)conv[i] : 0.0f;
            want[1] += relu[i] == 0, want_channel[1][ch] += relu[i] == 0;
        }
        ref_window pw2 = {2, 2, 2, 2, 0, 0, 0, 0, 1, 1};
        double *pool = malloc((size_t)flat * sizeof *pool);
        ref_maxpool(relu, cout, oh, ow, pw2, pool, ph, pw);
        float *poolf = malloc((size_t)flat * sizeof *poolf);
        for (int i = 0; i < flat; i++) {
            poolf[i] = (float)pool[i];
            want[2] += pool[i] == 0, want_channel[2][i / (ph * pw)] += pool[i] == 0;
            want[3] += pool[i] == 0; /* flatten: the same values */
        }
        double dense[7];
        ref_dense(poolf, (int)flat, dw, db, units, dense);
        for (int u = 0; u < units; u++) want[4] += dense[u] == 0, want[5] += !(dense[u] > 0);
        cr_assert_eq(rectify_session_run(s, in, (size_t)c * h * w, &err), RECTIFY_OK, "%s", err.message);
        if (off) {
            rectify_tensor on_out, off_out;
            float counted[7];
            cr_assert_eq(rectify_session_output(s, 0, &on_out), RECTIFY_OK);
            memcpy(counted, on_out.data, sizeof counted);
            rectify_session_set_statistics(s, 0);
            cr_assert_eq(rectify_session_run(s, in, (size_t)c * h * w, &err), RECTIFY_OK, "%s", err.message);
            rectify_session_set_statistics(s, 1);
            cr_assert_eq(rectify_session_output(s, 0, &off_out), RECTIFY_OK);
            cr_assert(memcmp(counted, off_out.data, sizeof counted) == 0, "statistics off changed the outputs");
        }
        free(in), free(conv), free(relu), free(pool), free(poolf);
    }
    const char *names[] = {"c", "r", "p", "f", "d", "r2"};
    for (int l = 0; l < 6; l++) {
        rectify_layer_stats st;
        cr_assert_eq(rectify_session_layer_stats(s, l, &st), RECTIFY_OK);
        cr_assert_eq(st.total_zeros, want[l], "%s: %lld zeros, reference %lld", names[l], (long long)st.total_zeros,
                     (long long)want[l]);
        cr_assert_eq(st.samples, images);
    }
    for (int l = 0; l < 3; l++) {
        int64_t zeros[8];
        cr_assert_eq(rectify_session_channel_zeros(s, l, zeros, 8), RECTIFY_OK);
        for (int ch = 0; ch < cout; ch++)
            cr_assert_eq(zeros[ch], want_channel[l][ch], "%s channel %d: %lld, reference %lld", names[l], ch,
                         (long long)zeros[ch], (long long)want_channel[l][ch]);
    }
    /* The dead channel: zero everywhere after the ReLU, for every image. */
    int64_t zeros[8];
    rectify_session_channel_zeros(s, 1, zeros, 8);
    cr_assert_eq(zeros[4], (int64_t)images * oh * ow);
    cr_assert_eq(observed, observe ? images * 6 * (off ? 2 : 1) : 0);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
    free(cw), free(cb), free(dw), free(db);
}

Test(zeros, conv_relu_pool_dense_counts_match_reference_per_layer_and_channel) { zeros_case(1, false, false); }
Test(zeros, counts_match_on_two_threads) { zeros_case(2, false, false); }
Test(zeros, counts_match_with_an_observer) { zeros_case(1, true, false); }
Test(zeros, statistics_off_counts_nothing_and_computes_the_same) { zeros_case(1, false, true); }
Test(zeros, statistics_off_with_an_observer_on_two_threads) { zeros_case(2, true, true); }

/* An observer that switches the statistics after the first layer. */
static rectify_session *switched_session;
static int switch_to;

static int switch_after_first(void *user, int layer, const rectify_tensor *out)
{
    (void)user, (void)out;
    if (layer == 0) rectify_session_set_statistics(switched_session, switch_to);
    return 0;
}

/* A switch made during a run (by an observer) takes effect at the next run:
   the run it is made in records every layer, zeros and times, or none. */
Test(zeros, statistics_switched_by_an_observer_apply_from_the_next_run)
{
    const char *json = "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[2,4,4]},"
                       "\"layers\":[{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":1},{\"name\":\"r\",\"op\":\"relu\"},"
                       "{\"name\":\"q\",\"op\":\"maxpool\",\"kernel\":2}]}";
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_not_null(m, "%s", err.message);
    cr_assert_eq(rectify_session_create(m, NULL, &switched_session, &err), RECTIFY_OK, "%s", err.message);
    rectify_session_set_observer(switched_session, switch_after_first, NULL);
    float in[32];
    int64_t zeros[3] = {0}; /* per run: p (the input), r, q */
    for (int i = 0; i < 32; i++) {
        in[i] = (float)(i % 5) - 2.0f;
        zeros[0] += in[i] == 0.0f, zeros[1] += !(in[i] > 0.0f);
    }
    for (int ch = 0; ch < 2; ch++) /* q: 2x2 windows of r, zero when all four are */
        for (int y = 0; y < 4; y += 2)
            for (int x = 0; x < 4; x += 2) {
                bool all = true;
                for (int k = 0; k < 4; k++) all &= !(in[ch * 16 + (y + k / 2) * 4 + x + k % 2] > 0.0f);
                zeros[2] += all;
            }
    const int64_t samples[4] = {1, 1, 1, 2}; /* after each run */
    const int to[4] = {0, 0, 1, 1};          /* what the observer switches to during it */
    for (int run = 0; run < 4; run++) {
        switch_to = to[run];
        cr_assert_eq(rectify_session_run(switched_session, in, 32, &err), RECTIFY_OK, "%s", err.message);
        for (int l = 0; l < 3; l++) {
            rectify_layer_stats st;
            cr_assert_eq(rectify_session_layer_stats(switched_session, l, &st), RECTIFY_OK);
            cr_assert_eq(st.samples, samples[run], "run %d layer %d: %lld samples, want %lld", run, l,
                         (long long)st.samples, (long long)samples[run]);
            cr_assert(st.total_seconds >= 0.0 && st.total_seconds < 10.0, "run %d layer %d: %g s", run, l,
                      st.total_seconds);
            cr_assert_eq(st.total_zeros, samples[run] * zeros[l], "run %d layer %d: %lld zeros, want %lld", run, l,
                         (long long)st.total_zeros, (long long)(samples[run] * zeros[l]));
        }
    }
    rectify_session_destroy(switched_session);
    rectify_model_destroy(m);
}

static double wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Layer times are off until asked for (rectify_session_set_layer_times):
   a run then records none. On, the layers' times add up to about the runs'
   time measured around them: a run reads no clock, but ticks whose length
   the session measures from its first timed run on (and again every 8 ms:
   60 runs of a convolution, with pauses, pass that). Summed over the runs,
   so that one run descheduled while its input is copied cannot fail it; a
   wrong length of a tick (seconds over another span of ticks than theirs)
   did. They do not depend on the statistics: with those off, runs are
   still timed and count nothing. */
Test(zeros, layer_times_add_up_to_the_runs)
{
    rng r = {41};
    float *weight, *b;
    char json[1024];
    rectify_error err;
    rectify_model *m = conv_model(&r, 32, 32, 48, 48, 1, (ref_window){3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 1, 0.1f,
                                  &weight, &b, json, sizeof json, &err);
    cr_assert_not_null(m, "%s", err.message);
    rectify_session *s;
    rectify_session_options o = {.threads = 1};
    cr_assert_eq(rectify_session_create(m, &o, &s, &err), RECTIFY_OK, "%s", err.message);
    const size_t n = 32 * 48 * 48;
    float *in = random_floats(&r, (int64_t)n, -1, 1);
    rectify_layer_stats st;
    cr_assert_eq(rectify_session_run(s, in, n, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_layer_stats(s, 0, &st), RECTIFY_OK);
    cr_assert(st.seconds == 0.0 && st.total_seconds == 0.0 && st.runs == 1, "untimed: %g s, %g s in all, %lld runs",
              st.seconds, st.total_seconds, (long long)st.runs);
    rectify_session_set_layer_times(s, 1);
    double walls = 0.0, layers = 0.0;
    for (int run = 0; run < 60; run++) {
        if (run % 20 == 19) nanosleep(&(struct timespec){0, 3000000}, NULL);
        const double t0 = wall_seconds();
        cr_assert_eq(rectify_session_run(s, in, n, &err), RECTIFY_OK, "%s", err.message);
        walls += wall_seconds() - t0;
        cr_assert_eq(rectify_session_layer_stats(s, 0, &st), RECTIFY_OK);
        layers += st.seconds;
    }
    cr_assert(layers > 0.25 * walls && layers < 1.02 * walls + 1e-5, "the layer took %g s of runs of %g s", layers,
              walls);
    rectify_session_set_statistics(s, 0);
    cr_assert_eq(rectify_session_run(s, in, n, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_layer_stats(s, 0, &st), RECTIFY_OK);
    cr_assert(st.seconds > 0.0 && st.total_seconds > layers && st.runs == 61, "statistics off: %g s, %lld runs",
              st.seconds, (long long)st.runs);
    free(in), free(weight), free(b);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
}

/* The counting kernels (AVX-512, and the generic loops: this suite also
   runs with RECTIFY_ISA=avx2 and generic, though there the generic loops
   run this CPU's clone of them) on random shapes: planes of 4 to 4096
   floats, whole vectors and tails, batches of 1 to 3, one and two threads
   (the passes split between threads above 32768 or 65536 floats), inputs of
   +0, -0, NaN, negatives and positives in random shares. The net input ->
   p1 (maxpool 1x1: the input itself, NaN included) -> r1 (relu, counting
   p1's zeros too) -> p2 (maxpool 2x2, counted by a pass) -> f (flatten:
   one float per channel, counted into its totals by the session) -> r2
   (relu, counted the same way) -> f2 (flatten again): every layer's zeros
   per sample and channel, and the per-sample sparsities, against plain
   counts. */
Test(zeros, counts_match_plain_counts_on_random_shapes)
{
    rng r = {41};
    const float values[] = {-2.0f, -0.0f, 0.0f, 0.5f, 1.0f, NAN};
    for (int trial = 0; trial < 30; trial++) {
        const int c = rng_int(&r, 1, 40), h = rng_int(&r, 2, 64), w = rng_int(&r, 2, 64);
        const int batch = rng_int(&r, 1, 3), threads = 1 + trial % 2, zero_share = rng_int(&r, 0, 100);
        const int ph = h / 2, pw = w / 2;
        const int64_t plane = (int64_t)h * w, pplane = (int64_t)ph * pw, n = (int64_t)c * plane;
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[{\"name\":\"p1\",\"op\":\"maxpool\",\"kernel\":1},{\"name\":\"r1\",\"op\":\"relu\"},"
                 "{\"name\":\"p2\",\"op\":\"maxpool\",\"kernel\":2},{\"name\":\"f\",\"op\":\"flatten\"},"
                 "{\"name\":\"r2\",\"op\":\"relu\"},{\"name\":\"f2\",\"op\":\"flatten\"}]}", c, h, w);
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        cr_assert_not_null(m, "%s", err.message);
        float *in = malloc((size_t)(n * batch) * sizeof *in);
        for (int64_t i = 0; i < n * batch; i++)
            in[i] = rng_int(&r, 0, 99) < zero_share ? (rng_int(&r, 0, 1) ? 0.0f : -0.0f) : values[rng_int(&r, 0, 5)];
        /* want[layer][sample][channel]; channels: c for p1, r1, p2; c*ph*pw for f, r2, f2 */
        enum { LAYERS = 6 };
        const int64_t units = (int64_t)c * pplane, channels[LAYERS] = {c, c, c, units, units, units};
        int64_t *want[LAYERS];
        for (int l = 0; l < LAYERS; l++) want[l] = calloc((size_t)(batch * channels[l]), sizeof *want[l]);
        for (int b = 0; b < batch; b++) {
            const float *x = in + b * n;
            for (int ch = 0; ch < c; ch++) {
                for (int64_t i = 0; i < plane; i++) {
                    const float v = x[ch * plane + i];
                    want[0][b * c + ch] += v == 0.0f;
                    want[1][b * c + ch] += !(v > 0.0f);
                }
                for (int oy = 0; oy < ph; oy++)
                    for (int ox = 0; ox < pw; ox++) {
                        bool zero = true; /* the max of four ReLU outputs is zero when all four are */
                        for (int k = 0; k < 4; k++) zero &= !(x[ch * plane + (2 * oy + k / 2) * w + 2 * ox + k % 2] > 0.0f);
                        const int64_t u = ch * pplane + oy * pw + ox;
                        want[2][b * c + ch] += zero;
                        want[3][b * units + u] += zero;
                        want[4][b * units + u] += zero;
                        want[5][b * units + u] += zero;
                    }
            }
        }
        rectify_session *s;
        rectify_session_options options = {.threads = threads, .batch = batch};
        cr_assert_eq(rectify_session_create(m, &options, &s, &err), RECTIFY_OK, "%s", err.message);
        cr_assert_eq(rectify_session_run(s, in, (size_t)(n * batch), &err), RECTIFY_OK, "%s", err.message);
        const int64_t per_sample[LAYERS] = {n, n, (int64_t)c * pplane, units, units, units};
        for (int l = 0; l < LAYERS; l++) {
            int64_t *got = malloc((size_t)channels[l] * sizeof *got), total = 0, lo = INT64_MAX, hi = 0;
            double sq = 0.0;
            cr_assert_eq(rectify_session_channel_zeros(s, l, got, channels[l]), RECTIFY_OK);
            for (int64_t ch = 0; ch < channels[l]; ch++) {
                int64_t sum = 0;
                for (int b = 0; b < batch; b++) sum += want[l][b * channels[l] + ch];
                cr_assert_eq(got[ch], sum, "trial %d (%dx%dx%d, batch %d, %d threads) layer %d channel %lld: %lld zeros, "
                             "plain count %lld", trial, c, h, w, batch, threads, l, (long long)ch, (long long)got[ch],
                             (long long)sum);
                total += sum;
            }
            for (int b = 0; b < batch; b++) {
                int64_t z = 0;
                for (int64_t ch = 0; ch < channels[l]; ch++) z += want[l][b * channels[l] + ch];
                lo = z < lo ? z : lo, hi = z > hi ? z : hi;
                sq += ((double)z / (double)per_sample[l]) * ((double)z / (double)per_sample[l]);
            }
            rectify_layer_stats st;
            cr_assert_eq(rectify_session_layer_stats(s, l, &st), RECTIFY_OK);
            cr_assert_eq(st.zeros, total, "trial %d layer %d: %lld zeros, plain count %lld", trial, l, (long long)st.zeros,
                         (long long)total);
            cr_assert_eq(st.elements, per_sample[l] * batch);
            cr_assert_eq(st.samples, batch);
            cr_assert_eq(st.min_sparsity, (double)lo / (double)per_sample[l]);
            cr_assert_eq(st.max_sparsity, (double)hi / (double)per_sample[l]);
            cr_assert(fabs(st.sum_sparsity - (double)total / (double)per_sample[l]) <= 1e-12 * batch);
            cr_assert(fabs(st.sum_sparsity_sq - sq) <= 1e-12 * batch, "layer %d: sum of squares %.17g, want %.17g", l,
                      st.sum_sparsity_sq, sq);
            free(got);
        }
        rectify_session_destroy(s);
        rectify_model_destroy(m);
        for (int l = 0; l < LAYERS; l++) free(want[l]);
        free(in);
    }
}

/* Layers of one float per channel are counted straight into their totals
   (session.c: counts_units, kernels: rx_count_add), and a ReLU on them runs
   without counting. Their inputs here carry what ReLU outputs never do:
   +0 and -0 are zeros, NaN is not (but a ReLU makes it 0). The net input
   [n,1,1] -> p (maxpool 1x1: the input itself) -> r (relu); every other
   trial, then s (add p and r: zero where p is, NaN stays) -> r2 (relu of
   p again): a ReLU not in place, and one that reads a layer before the
   last. n from 1 to 90 (whole vectors and tails), batches of 1 to 3, one
   and two threads, with and without an observer, two runs each. */
Test(zeros, per_unit_layers_count_signed_zeros_and_not_nan)
{
    rng r = {67};
    const float values[] = {-2.0f, -0.0f, 0.0f, 0.5f, NAN};
    for (int trial = 0; trial < 32; trial++) {
        const int n = trial < 4 ? 1 + 15 * trial : rng_int(&r, 1, 90), batch = rng_int(&r, 1, 3);
        const int threads = 1 + trial % 2, observe = trial / 2 % 2, branch = trial / 4 % 2, layers = branch ? 4 : 2;
        char json[768];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,1,1]},"
                 "\"layers\":[{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":1},{\"name\":\"r\",\"op\":\"relu\"}%s]}",
                 n, branch ? ",{\"name\":\"s\",\"op\":\"add\",\"inputs\":[\"p\",\"r\"]},"
                             "{\"name\":\"r2\",\"op\":\"relu\",\"inputs\":[\"p\"]}" : "");
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        cr_assert_not_null(m, "%s", err.message);
        rectify_session *ses;
        rectify_session_options options = {.threads = threads, .batch = batch};
        cr_assert_eq(rectify_session_create(m, &options, &ses, &err), RECTIFY_OK, "%s", err.message);
        int seen = 0;
        if (observe) rectify_session_set_observer(ses, observe_nothing, &seen);
        /* p, s: v == 0; r, r2: !(v > 0) */
        int64_t want[4][90] = {{0}}, lo[4], hi[4] = {0}, total[4] = {0};
        for (int l = 0; l < 4; l++) lo[l] = INT64_MAX;
        float *in = malloc((size_t)(n * batch) * sizeof *in);
        for (int run = 0; run < 2; run++) {
            for (int i = 0; i < n * batch; i++) in[i] = values[rng_int(&r, 0, 4)];
            for (int b = 0; b < batch; b++) {
                int64_t z[4] = {0};
                for (int u = 0; u < n; u++) {
                    const float v = in[b * n + u];
                    for (int l = 0; l < 4; l++) {
                        const bool zero = l % 2 ? !(v > 0.0f) : v == 0.0f;
                        want[l][u] += zero, z[l] += zero;
                    }
                }
                for (int l = 0; l < 4; l++) {
                    lo[l] = z[l] < lo[l] ? z[l] : lo[l], hi[l] = z[l] > hi[l] ? z[l] : hi[l];
                    total[l] += z[l];
                }
            }
            cr_assert_eq(rectify_session_run(ses, in, (size_t)(n * batch), &err), RECTIFY_OK, "%s", err.message);
        }
        for (int l = 0; l < layers; l++) {
            int64_t got[90];
            cr_assert_eq(rectify_session_channel_zeros(ses, l, got, 90), RECTIFY_OK);
            for (int u = 0; u < n; u++)
                cr_assert_eq(got[u], want[l][u], "trial %d (%d units, batch %d, %d threads%s%s) layer %d unit %d: %lld "
                             "zeros, plain count %lld", trial, n, batch, threads, observe ? ", observed" : "",
                             branch ? ", branched" : "", l, u, (long long)got[u], (long long)want[l][u]);
            rectify_layer_stats st;
            cr_assert_eq(rectify_session_layer_stats(ses, l, &st), RECTIFY_OK);
            cr_assert_eq(st.runs, 2);
            cr_assert_eq(st.samples, 2 * batch);
            cr_assert_eq(st.total_zeros, total[l], "trial %d layer %d: %lld zeros, plain count %lld", trial, l,
                         (long long)st.total_zeros, (long long)total[l]);
            cr_assert_eq(st.min_sparsity, (double)lo[l] / n);
            cr_assert_eq(st.max_sparsity, (double)hi[l] / n);
        }
        cr_assert_eq(seen, observe ? 2 * layers : 0);
        rectify_session_destroy(ses);
        rectify_model_destroy(m);
        free(in);
    }
}

/* A ReLU right after a convolution runs in the convolution's kernel
   (rx_layer.relu_fused), counting the zeros of both layers there; with an
   observer, which sees the convolution's output before the ReLU, it runs
   as a layer of its own. Fused only after wide layers (conv.c: fuses_relu);
   random shapes, direct, wide and Winograd ones (RECTIFY_ISA runs this
   suite on each kernel, the portable ones without the wide path), batches of 1-3 on 1-2 threads, small integers throughout so
   that every sum is exact and zeros are common: both ways, and with the
   statistics off, the outputs are max(reference, 0) exactly; the counts
   per layer and per channel are the reference's; the fused ReLU's time is
   its convolution's. */
static int observe_count(void *user, int layer, const rectify_tensor *out)
{
    (void)layer, (void)out;
    ++*(int *)user;
    return 0;
}

/* A session of m run once on in (n floats) with its layer times on, in one
   of three modes: 0 as loaded, 1 observed (counting the layers seen into
   *observed), 2 statistics off. */
static rectify_session *run_in_mode(const rectify_model *m, int threads, int batch, int mode, int *observed,
                                    const float *in, int64_t n)
{
    rectify_session *ses;
    rectify_error err;
    rectify_session_options options = {.threads = threads, .batch = batch};
    cr_assert_eq(rectify_session_create(m, &options, &ses, &err), RECTIFY_OK, "%s", err.message);
    rectify_session_set_layer_times(ses, 1);
    if (mode == 1) rectify_session_set_observer(ses, observe_count, observed);
    if (mode == 2) rectify_session_set_statistics(ses, 0);
    cr_assert_eq(rectify_session_run(ses, in, (size_t)n, &err), RECTIFY_OK, "%s", err.message);
    return ses;
}

Test(zeros, fused_relu_counts_match_reference_on_random_convolutions)
{
    rng r = {53};
    int fused_count = 0;
    /* After the random ones, wide layers of over 2^20 multiply-adds a run
       (conv.c: RX_PARALLEL_MACS), so that two threads share them: each with
       counters of its own, added in as it moves between samples (batch 2),
       the filters split (batch 3, two tiles), groups of 8 channels. Last, a
       layer of 1x1 outputs: one float per channel, which the session
       counts itself (counts_units) unless a ReLU is fused (pad -1: none). */
    static const struct { int groups, cin, cout, k, side, batch, pad; } shared[] = {
        {1, 16, 16, 5, 30, 2, -1}, {1, 8, 24, 3, 20, 3, -1}, {2, 16, 16, 5, 24, 1, -1}, {1, 16, 24, 5, 5, 3, 0},
    };
    const int trials = 40 + (int)(sizeof shared / sizeof shared[0]);
    for (int trial = 0; trial < trials; trial++) {
        const int fixed = trial - 40, wino = fixed < 0 && trial % 8 == 7; /* 3x3 stride 1, 16+ channels */
        int groups = wino ? 1 : rng_int(&r, 1, 3);
        int cin = wino ? rng_int(&r, 16, 24) : groups * rng_int(&r, 1, 8);
        int cout = wino ? rng_int(&r, 16, 40) : groups * rng_int(&r, 1, 14);
        int k = wino ? 3 : rng_int(&r, 1, 5), s = wino ? 1 : rng_int(&r, 1, 2), pad = wino ? 1 : rng_int(&r, 0, 2);
        int h = rng_int(&r, k, 36), w = rng_int(&r, k, 36);
        int batch = rng_int(&r, 1, 3), threads = 1 + trial % 2;
        if (fixed >= 0) {
            groups = shared[fixed].groups, cin = shared[fixed].cin, cout = shared[fixed].cout, k = shared[fixed].k;
            s = 1, pad = shared[fixed].pad < 0 ? k / 2 : shared[fixed].pad, h = w = shared[fixed].side;
            batch = shared[fixed].batch, threads = 2;
        }
        const ref_window win = {k, k, s, s, pad, pad, pad, pad, 1, 1};
        const int oh = ref_out_size(h, k, s, pad, pad, 1, 0), ow = ref_out_size(w, k, s, pad, pad, 1, 0);
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":%d,\"kernel\":%d,\"stride\":%d,"
                 "\"padding\":%d,\"groups\":%d},{\"name\":\"r\",\"op\":\"relu\"}]}",
                 cin, h, w, cout, k, s, pad, groups);
        const int64_t in_n = (int64_t)cin * h * w, plane = (int64_t)oh * ow, out_n = cout * plane;
        float *cw, *cb;
        rectify_model *m = load_int_conv(&r, json, cout, cin / groups, k, wino, &cw, &cb);
        float *in = small_ints(&r, in_n * batch, -2, 2);
        int64_t *want[2] = {calloc((size_t)cout, sizeof(int64_t)), calloc((size_t)cout, sizeof(int64_t))};
        float *want_out = malloc((size_t)(out_n * batch) * sizeof *want_out);
        double *y = malloc((size_t)out_n * sizeof *y);
        for (int b = 0; b < batch; b++) {
            ref_conv(in + b * in_n, cin, h, w, cw, cb, cout, groups, win, y, oh, ow);
            for (int64_t i = 0; i < out_n; i++) {
                want[0][i / plane] += y[i] == 0, want[1][i / plane] += !(y[i] > 0);
                want_out[b * out_n + i] = y[i] > 0 ? (float)y[i] : 0.0f;
            }
        }
        rectify_layer_info info;
        cr_assert_eq(rectify_model_layer(m, 1, &info), RECTIFY_OK);
        const bool fused = info.fused_into == 0;
        cr_assert(fused || info.fused_into == -1, "trial %d: fused into %d", trial, info.fused_into);
        cr_assert(!(wino && fused), "trial %d: a ReLU fused into a Winograd layer", trial);
        if (oh * ow == 1) cr_assert(fused == vector_kernels(), "trial %d: 1x1 outputs, fused %d", trial, fused);
        fused_count += fused;
        for (int mode = 0; mode < 3; mode++) { /* fused, observed, statistics off */
            const int observe = mode == 1;
            int observed = 0;
            rectify_session *ses = run_in_mode(m, threads, batch, mode, &observed, in, in_n * batch);
            rectify_tensor out;
            cr_assert_eq(rectify_session_output(ses, 0, &out), RECTIFY_OK);
            cr_assert_eq(out.elements, out_n * batch);
            for (int64_t i = 0; i < out_n * batch; i++)
                cr_assert(memcmp(&out.data[i], &want_out[i], sizeof(float)) == 0,
                          "trial %d (%dx%dx%d -> %d, kernel %d stride %d pad %d groups %d, batch %d, %d threads%s): "
                          "output %lld is %g, reference %g", trial, cin, h, w, cout, k, s, pad, groups, batch, threads,
                          (const char *[]){"", ", observed", ", statistics off"}[mode], (long long)i, out.data[i],
                          want_out[i]);
            for (int l = 0; l < 2 && mode < 2; l++) {
                int64_t got[64], total = 0;
                cr_assert_eq(rectify_session_channel_zeros(ses, l, got, 64), RECTIFY_OK);
                for (int c = 0; c < cout; c++) {
                    cr_assert_eq(got[c], want[l][c], "trial %d (%dx%dx%d -> %d, kernel %d stride %d pad %d groups %d, "
                                 "batch %d, %d threads%s) layer %d channel %d: %lld zeros, reference %lld", trial, cin, h,
                                 w, cout, k, s, pad, groups, batch, threads, observe ? ", observed" : "", l, c,
                                 (long long)got[c], (long long)want[l][c]);
                    total += want[l][c];
                }
                rectify_layer_stats st;
                cr_assert_eq(rectify_session_layer_stats(ses, l, &st), RECTIFY_OK);
                cr_assert_eq(st.zeros, total);
                cr_assert_eq(st.elements, out_n * batch);
                cr_assert_eq(st.samples, batch);
                cr_assert_eq(st.runs, 1, "trial %d layer %d: %lld runs", trial, l, (long long)st.runs);
                if (l == 1)
                    cr_assert(observe || !fused ? st.seconds > 0.0 : st.seconds == 0.0,
                              "trial %d: the ReLU took %g s%s", trial, st.seconds, observe ? ", observed" : "");
            }
            cr_assert_eq(observed, observe ? 2 : 0);
            rectify_session_destroy(ses);
        }
        rectify_model_destroy(m);
        free(cw), free(cb), free(in), free(want[0]), free(want[1]), free(want_out), free(y);
    }
    /* 17 of the 40 random layers and the 4 fixed ones run wide, unless the
       portable kernels run (no wide path) */
    cr_assert_eq(fused_count, vector_kernels() ? 21 : 0, "%d ReLUs fused", fused_count);
}

/* A ReLU in place whose output only a max pool after it reads runs in the
   pool (rx_layer.relu_in) when the pool's 2x2 windows of stride 2 tile its
   input: the pool reads max(x, 0), counting the zeros of the ReLU's output
   and of the convolution's before it; the ReLU's output is never written,
   so it cannot be read after the run. Random convolutions (direct, wide
   when it takes the ReLU itself, Winograd F(2x2) with exact weights), odd
   and even sides (pool rows of 1 to 36 outputs: whole vectors and a masked
   tail), other windows that do not tile (never taken), batches of 1-3 on
   1-2 threads; last, a Winograd layer at batch 1400 (16 channels
   each layer), past the session's one-pass counts (RX_RUN_COUNTS), where
   it records two layers at a time.
   Fused, observed (the ReLU on its own) and with the statistics off: the
   pool's outputs are the reference's exactly, and the counts of all three
   layers per channel. */
Test(zeros, relu_taken_by_max_pool_counts_match_reference)
{
    rng r = {71};
    int taken = 0, trials = 41;
    for (int trial = 0; trial < trials; trial++) {
        const bool big = trial == trials - 1, wino = big || trial % 3 == 2, even = big || trial % 4 != 3;
        int cin = wino ? rng_int(&r, 16, 20) : rng_int(&r, 1, 6), cout = wino ? 16 : rng_int(&r, 1, 12);
        int k = wino ? 3 : 2 * rng_int(&r, 0, 1) + 1, pad = k / 2, h = rng_int(&r, 3, 21), w = rng_int(&r, 3, 72);
        if (even) h += h % 2, w += w % 2;
        int batch = rng_int(&r, 1, 3), threads = 1 + trial % 2;
        int pk = trial % 5 == 4 ? 3 : 2, ps = 2, ppad = trial % 7 == 6 ? 1 : 0;
        if (big) cin = 16, cout = 16, h = w = 8, batch = 1400, threads = 2, pk = 2, ppad = 0;
        const ref_window cwin = {k, k, 1, 1, pad, pad, pad, pad, 1, 1}, pwin = {pk, pk, ps, ps, ppad, ppad, ppad, ppad, 1, 1};
        const int oh = h, ow = w; /* stride 1, padding k / 2 (k odd) */
        const int ph = ref_out_size(oh, pk, ps, ppad, ppad, 1, 0), pw = ref_out_size(ow, pk, ps, ppad, ppad, 1, 0);
        const bool tiles = pk == 2 && ppad == 0 && oh % 2 == 0 && ow % 2 == 0;
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":%d,\"kernel\":%d,\"padding\":%d},"
                 "{\"name\":\"r\",\"op\":\"relu\"},{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":%d,\"stride\":%d,"
                 "\"padding\":%d}]}",
                 cin, h, w, cout, k, pad, pk, ps, ppad);
        const int64_t in_n = (int64_t)cin * h * w, plane = (int64_t)oh * ow;
        const int64_t out_n = cout * plane, pool_n = (int64_t)cout * ph * pw;
        float *cw, *cb;
        rectify_model *m = load_int_conv(&r, json, cout, cin, k, wino, &cw, &cb);
        float *in = small_ints(&r, in_n * batch, -2, 2);
        int64_t *want[3];
        for (int l = 0; l < 3; l++) want[l] = calloc((size_t)cout, sizeof(int64_t));
        float *relu = malloc((size_t)out_n * sizeof *relu), *want_out = malloc((size_t)(pool_n * batch) * sizeof *want_out);
        double *y = malloc((size_t)out_n * sizeof *y), *py = malloc((size_t)pool_n * sizeof *py);
        for (int b = 0; b < batch; b++) {
            ref_conv(in + b * in_n, cin, h, w, cw, cb, cout, 1, cwin, y, oh, ow);
            for (int64_t i = 0; i < out_n; i++) {
                want[0][i / plane] += y[i] == 0, want[1][i / plane] += !(y[i] > 0);
                relu[i] = y[i] > 0 ? (float)y[i] : 0.0f;
            }
            ref_maxpool(relu, cout, oh, ow, pwin, py, ph, pw);
            for (int64_t i = 0; i < pool_n; i++) {
                want[2][i / (ph * pw)] += py[i] == 0;
                want_out[b * pool_n + i] = (float)py[i];
            }
        }
        rectify_layer_info info;
        cr_assert_eq(rectify_model_layer(m, 1, &info), RECTIFY_OK);
        /* a wide convolution takes the ReLU first (fused_into 0) */
        cr_assert(info.fused_into == 0 || info.fused_into == (tiles ? 2 : -1),
                  "trial %d (%dx%d, pool %d pad %d): the ReLU fused into %d", trial, oh, ow, pk, ppad, info.fused_into);
        const bool in_pool = info.fused_into == 2;
        taken += in_pool;
        for (int mode = 0; mode < 3; mode++) { /* as loaded, observed, statistics off */
            const int observe = mode == 1;
            int observed = 0;
            rectify_session *ses = run_in_mode(m, threads, batch, mode, &observed, in, in_n * batch);
            rectify_tensor out;
            cr_assert_eq(rectify_session_output(ses, 0, &out), RECTIFY_OK);
            cr_assert_eq(out.elements, pool_n * batch, "trial %d: %lld outputs (%dx%d pooled %d pad %d: %dx%d)", trial,
                         (long long)out.elements, oh, ow, pk, ppad, ph, pw);
            for (int64_t i = 0; i < pool_n * batch; i++)
                cr_assert(memcmp(&out.data[i], &want_out[i], sizeof(float)) == 0,
                          "trial %d (%dx%dx%d -> %d, kernel %d%s, pool %d pad %d, batch %d, %d threads, mode %d): "
                          "output %lld is %g, reference %g", trial, cin, h, w, cout, k, wino ? " Winograd" : "", pk,
                          ppad, batch, threads, mode, (long long)i, out.data[i], want_out[i]);
            if (mode == 0 && in_pool)
                cr_assert_eq(rectify_session_layer_output(ses, 1, &out), RECTIFY_ERR_ARGUMENT,
                             "trial %d: the ReLU's output was never written", trial);
            for (int l = 0; l < 3 && mode < 2; l++) {
                int64_t got[64], total = 0;
                cr_assert_eq(rectify_session_channel_zeros(ses, l, got, 64), RECTIFY_OK);
                for (int c = 0; c < cout; c++) {
                    cr_assert_eq(got[c], want[l][c], "trial %d (%dx%dx%d -> %d, pool %d pad %d, batch %d, %d threads, "
                                 "mode %d) layer %d channel %d: %lld zeros, reference %lld", trial, cin, h, w, cout, pk,
                                 ppad, batch, threads, mode, l, c, (long long)got[c], (long long)want[l][c]);
                    total += want[l][c];
                }
                rectify_layer_stats st;
                cr_assert_eq(rectify_session_layer_stats(ses, l, &st), RECTIFY_OK);
                cr_assert_eq(st.zeros, total);
                cr_assert_eq(st.samples, batch);
                cr_assert_eq(st.runs, 1, "trial %d layer %d: %lld runs", trial, l, (long long)st.runs);
                if (l == 1)
                    cr_assert(in_pool && !observe ? st.seconds == 0.0 : st.seconds >= 0.0,
                              "trial %d: the ReLU took %g s", trial, st.seconds);
            }
            cr_assert_eq(observed, observe ? 3 : 0);
            rectify_session_destroy(ses);
        }
        rectify_model_destroy(m);
        for (int l = 0; l < 3; l++) free(want[l]);
        free(cw), free(cb), free(in), free(relu), free(want_out), free(y), free(py);
    }
    /* 24 trials tile their pool (the big one among them); the vector
       kernels' wide convolutions take 15 of their ReLUs first */
    cr_assert_eq(taken, vector_kernels() ? 9 : 24, "%d of %d ReLUs taken by their pool", taken, trials);
}

/* The ReLU before a max pool that takes it makes NaN 0 and -0 +0 before
   the maxima, as the two layers on their own do: a NaN beside positives
   gives the largest positive, not 0 (ReLU of the NaN maximum). In place on
   the model input; every ISA's kernel (RECTIFY_ISA runs this suite on
   each), rows of 1 to 19 outputs (the vector kernel's masked tail), and a
   pool of one output per channel (counted by the session per unit): the
   outputs bit for bit, and the ReLU's and the pool's zeros per channel.
   The graph rules: not taken when the ReLU's output is a model output or
   another layer reads it, nor with RECTIFY_FUSE=0. */
static const char *const relu_pool_json =
    "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[3,%d,%d]},"
    "\"layers\":[{\"name\":\"r\",\"op\":\"relu\"},{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":2,\"stride\":2}%s]%s}";

Test(zeros, relu_taken_by_max_pool_makes_nan_zero_first)
{
    rng r = {5};
    for (int trial = 0; trial < 8; trial++) {
        const int h = trial == 7 ? 2 : 4, ow = trial == 7 ? 1 : 1 + 3 * trial, w = 2 * ow, oh = h / 2;
        char json[512];
        snprintf(json, sizeof json, relu_pool_json, h, w, "", "");
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        cr_assert_not_null(m, "%s", err.message);
        rectify_layer_info info;
        cr_assert_eq(rectify_model_layer(m, 0, &info), RECTIFY_OK);
        cr_assert_eq(info.fused_into, 1, "the ReLU on the input runs in the pool");
        const int64_t n = 3 * h * w, plane = h * w, out_n = 3 * oh * ow;
        float *in = malloc((size_t)n * sizeof *in), *relu = malloc((size_t)n * sizeof *relu);
        int64_t want_relu[3] = {0}, want_pool[3] = {0};
        for (int64_t i = 0; i < n; i++) {
            const int pick = rng_int(&r, 0, 6);
            in[i] = pick == 0 ? NAN : pick == 1 ? -0.0f : pick == 2 ? -INFINITY : pick == 3 ? INFINITY
                                                                                 : (float)rng_int(&r, -3, 3);
            relu[i] = in[i] > 0.0f ? in[i] : 0.0f;
            want_relu[i / plane] += relu[i] == 0.0f;
        }
        double *want = malloc((size_t)out_n * sizeof *want);
        ref_maxpool(relu, 3, h, w, (ref_window){2, 2, 2, 2, 0, 0, 0, 0, 1, 1}, want, oh, ow);
        for (int64_t i = 0; i < out_n; i++) want_pool[i / (oh * ow)] += want[i] == 0.0;
        rectify_session_options options = {.threads = 1, .batch = 1};
        rectify_session *ses;
        cr_assert_eq(rectify_session_create(m, &options, &ses, &err), RECTIFY_OK, "%s", err.message);
        cr_assert_eq(rectify_session_run(ses, in, (size_t)n, &err), RECTIFY_OK, "%s", err.message);
        rectify_tensor out;
        cr_assert_eq(rectify_session_output(ses, 0, &out), RECTIFY_OK);
        cr_assert_eq(out.elements, out_n);
        for (int64_t i = 0; i < out_n; i++)
            cr_assert(memcmp(&out.data[i], &(float){(float)want[i]}, sizeof(float)) == 0,
                      "%dx%d input, output %lld: %g, want %g", h, w, (long long)i, out.data[i], want[i]);
        int64_t got[2][3];
        cr_assert_eq(rectify_session_channel_zeros(ses, 0, got[0], 3), RECTIFY_OK);
        cr_assert_eq(rectify_session_channel_zeros(ses, 1, got[1], 3), RECTIFY_OK);
        for (int c = 0; c < 3; c++) {
            cr_assert_eq(got[0][c], want_relu[c], "%dx%d, channel %d: the ReLU's zeros %lld, want %lld", h, w, c,
                         (long long)got[0][c], (long long)want_relu[c]);
            cr_assert_eq(got[1][c], want_pool[c], "%dx%d, channel %d: the pool's zeros %lld, want %lld", h, w, c,
                         (long long)got[1][c], (long long)want_pool[c]);
        }
        rectify_session_destroy(ses);
        free(in), free(relu), free(want);
        rectify_model_destroy(m);
    }
    /* not taken: the ReLU's output a model output, read by another layer,
       or RECTIFY_FUSE=0 */
    const char *const cases[][2] = {
        {"", ",\"outputs\":[\"p\",\"r\"]"},
        {",{\"name\":\"s\",\"op\":\"add\",\"inputs\":[\"r\",\"r\"]}", ",\"outputs\":[\"p\",\"s\"]"},
        {"", ""},
    };
    for (int k = 0; k < 3; k++) {
        char json[512];
        snprintf(json, sizeof json, relu_pool_json, 4, 4, cases[k][0], cases[k][1]);
        if (k == 2) setenv("RECTIFY_FUSE", "0", 1);
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        unsetenv("RECTIFY_FUSE");
        cr_assert_not_null(m, "case %d: %s", k, err.message);
        rectify_layer_info info;
        cr_assert_eq(rectify_model_layer(m, 0, &info), RECTIFY_OK);
        cr_assert_eq(info.fused_into, -1, "case %d: the ReLU runs in layer %d", k, info.fused_into);
        rectify_model_destroy(m);
    }
}

/* The session records a run's counts in three ways (session.c): all
   layers after the run; each layer once counted, two layers' counts at a
   time, when all of them would pass RX_RUN_COUNTS (here batch 600 of 112
   channels a sample: 67,200); and after every layer, nothing deferred to
   the next, when an observer is set as the run begins. All must record the
   same: a ReLU right after a ReLU, a ReLU counting the convolution before it,
   an observer that removes itself during the run (recorded once, not
   twice), one that stops it (the layers up to the one it saw recorded). */
static const char record_net[] =
    "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[3,8,8]},"
    "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":4,\"kernel\":3,\"padding\":1},"
    "{\"name\":\"r\",\"op\":\"relu\"},{\"name\":\"r2\",\"op\":\"relu\"},{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":2},"
    "{\"name\":\"f\",\"op\":\"flatten\"},{\"name\":\"d\",\"op\":\"dense\",\"units\":16},"
    "{\"name\":\"r3\",\"op\":\"relu\"}]}";
enum { RECORD_LAYERS = 7, RECORD_IN = 3 * 8 * 8, RECORD_BIG_BATCH = 600 };

static int detach_after_first(void *user, int layer, const rectify_tensor *out)
{
    (void)out;
    if (layer == 0) rectify_session_set_observer((rectify_session *)user, NULL, NULL);
    return 0;
}

static int stop_after_third(void *user, int layer, const rectify_tensor *out)
{
    (void)user, (void)out;
    return layer == 2;
}

/* Every layer's statistics of b are `times` those of a (per channel too). */
static void assert_stats_scale(const rectify_session *a, const rectify_session *b, int64_t times, const char *what)
{
    for (int l = 0; l < RECORD_LAYERS; l++) {
        rectify_layer_stats x, y;
        cr_assert_eq(rectify_session_layer_stats(a, l, &x), RECTIFY_OK);
        cr_assert_eq(rectify_session_layer_stats(b, l, &y), RECTIFY_OK);
        cr_assert_eq(y.total_zeros, times * x.total_zeros, "%s, layer %d: %lld zeros, want %lld x %lld", what, l,
                     (long long)y.total_zeros, (long long)times, (long long)x.total_zeros);
        cr_assert_eq(y.samples, times * x.samples, "%s, layer %d: %lld samples", what, l, (long long)y.samples);
        cr_assert_eq(y.runs, x.runs, "%s, layer %d: %lld runs, want %lld", what, l, (long long)y.runs,
                     (long long)x.runs);
        cr_assert(y.min_sparsity == x.min_sparsity && y.max_sparsity == x.max_sparsity, "%s, layer %d", what, l);
        int64_t cx[64] = {0}, cy[64] = {0};
        cr_assert_eq(rectify_session_channel_zeros(a, l, cx, 64), RECTIFY_OK);
        cr_assert_eq(rectify_session_channel_zeros(b, l, cy, 64), RECTIFY_OK);
        for (int c = 0; c < 64; c++)
            cr_assert_eq(cy[c], times * cx[c], "%s, layer %d, channel %d", what, l, c);
    }
}

Test(zeros, every_way_of_recording_a_run_records_the_same)
{
    rng r = {41};
    float *cw = small_ints(&r, 4 * 3 * 9, -1, 1), *cb = small_ints(&r, 4, -1, 1);
    float *dw = small_ints(&r, 16 * 64, -1, 1), *db = small_ints(&r, 16, -2, 2);
    ttensor t[4] = {{"c.weight", 4, {4, 3, 3, 3}, cw}, {"c.bias", 1, {4}, cb},
                    {"d.weight", 2, {16, 64}, dw}, {"d.bias", 1, {16}, db}};
    rectify_error err;
    rectify_model *m = load_json(record_net, t, 4, &err);
    cr_assert_not_null(m, "%s", err.message);
    float *in = small_ints(&r, RECORD_IN, -2, 2);
    float *many = malloc((size_t)RECORD_IN * RECORD_BIG_BATCH * sizeof *many);
    for (int b = 0; b < RECORD_BIG_BATCH; b++) memcpy(many + b * RECORD_IN, in, RECORD_IN * sizeof *in);
    rectify_session *plain, *observed, *detached, *big, *stopped;
    rectify_session_options one = {.threads = 1}, wide = {.threads = 2, .batch = RECORD_BIG_BATCH};
    cr_assert_eq(rectify_session_create(m, &one, &plain, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_create(m, &one, &observed, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_create(m, &one, &detached, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_create(m, &one, &stopped, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_session_create(m, &wide, &big, &err), RECTIFY_OK, "%s", err.message);
    int seen = 0;
    rectify_session_set_observer(observed, observe_nothing, &seen);
    for (int run = 0; run < 2; run++) {
        rectify_session_set_observer(detached, detach_after_first, detached);
        cr_assert_eq(rectify_session_run(plain, in, RECORD_IN, &err), RECTIFY_OK, "%s", err.message);
        cr_assert_eq(rectify_session_run(observed, in, RECORD_IN, &err), RECTIFY_OK, "%s", err.message);
        cr_assert_eq(rectify_session_run(detached, in, RECORD_IN, &err), RECTIFY_OK, "%s", err.message);
        cr_assert_eq(rectify_session_run(big, many, (size_t)RECORD_IN * RECORD_BIG_BATCH, &err), RECTIFY_OK, "%s",
                     err.message);
    }
    cr_assert_eq(seen, 2 * RECORD_LAYERS);
    /* a ReLU after a ReLU: the same zeros, per channel too */
    rectify_layer_stats r1, r2;
    rectify_session_layer_stats(plain, 1, &r1), rectify_session_layer_stats(plain, 2, &r2);
    cr_assert(r1.total_zeros > 0 && r1.total_zeros == r2.total_zeros, "relu %lld, relu after it %lld",
              (long long)r1.total_zeros, (long long)r2.total_zeros);
    assert_stats_scale(plain, observed, 1, "an observer");
    assert_stats_scale(plain, detached, 1, "an observer removing itself");
    assert_stats_scale(plain, big, RECORD_BIG_BATCH, "a batch past RX_RUN_COUNTS");
    /* stopped after layer 2: layers 0-2 recorded, the rest not */
    rectify_session_set_observer(stopped, stop_after_third, NULL);
    cr_assert_eq(rectify_session_run(stopped, in, RECORD_IN, &err), RECTIFY_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "stopped the run after layer \"r2\"") != NULL, "%s", err.message);
    for (int l = 0; l < RECORD_LAYERS; l++) {
        rectify_layer_stats st, want;
        rectify_session_layer_stats(stopped, l, &st), rectify_session_layer_stats(plain, l, &want);
        cr_assert_eq(st.runs, l <= 2 ? 1 : 0, "layer %d: %lld runs", l, (long long)st.runs);
        if (l <= 2) cr_assert_eq(2 * st.total_zeros, want.total_zeros, "layer %d", l);
    }
    rectify_session_destroy(plain), rectify_session_destroy(observed), rectify_session_destroy(detached);
    rectify_session_destroy(big), rectify_session_destroy(stopped);
    rectify_model_destroy(m);
    free(cw), free(cb), free(dw), free(db), free(in), free(many);
}

Test(zeros, layer_window_reports_conv_and_pool_geometry)
{
    const char *json =
        "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[4,20,20]},"
        "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":4,\"kernel\":[3,5],\"stride\":2,"
        "\"padding\":[1,2],\"dilation\":[1,2],\"groups\":2},{\"name\":\"r\",\"op\":\"relu\"},"
        "{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":2}]}";
    rectify_error err;
    rectify_load_options o = {.graph_only = 1};
    rectify_model *m;
    cr_assert_eq(rectify_model_load_memory(json, strlen(json), NULL, 0, NULL, &o, &m, &err), RECTIFY_OK, "%s",
                 err.message);
    rectify_window w;
    cr_assert_eq(rectify_model_layer_window(m, 0, &w), RECTIFY_OK);
    cr_assert(w.kernel[0] == 3 && w.kernel[1] == 5 && w.stride[0] == 2 && w.stride[1] == 2);
    cr_assert(w.padding[0] == 1 && w.padding[1] == 2 && w.padding[2] == 1 && w.padding[3] == 2);
    cr_assert(w.dilation[0] == 1 && w.dilation[1] == 2 && w.groups == 2);
    cr_assert_eq(rectify_model_layer_window(m, 1, &w), RECTIFY_ERR_ARGUMENT);
    cr_assert_eq(rectify_model_layer_window(m, 2, &w), RECTIFY_OK);
    cr_assert(w.kernel[0] == 2 && w.stride[1] == 2 && w.groups == 1);
    cr_assert_eq(rectify_model_layer_window(m, 3, &w), RECTIFY_ERR_ARGUMENT);
    rectify_model_destroy(m);
}
