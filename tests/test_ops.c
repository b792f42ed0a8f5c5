/* test_ops.c: every operator against the plain reference (reference.c) on
   many random shapes, strides, paddings, dilations and groups, with 1 and 2
   threads and a batch of 2. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_runs.h"
#include "support.h"

static void random_window(rng *r, ref_window *w, int max_k, int allow_dilation)
{
    w->kh = rng_int(r, 1, max_k), w->kw = rng_int(r, 1, max_k);
    w->sh = rng_int(r, 1, 3), w->sw = rng_int(r, 1, 3);
    w->dh = allow_dilation ? rng_int(r, 1, 3) : 1, w->dw = allow_dilation ? rng_int(r, 1, 3) : 1;
    w->pt = rng_int(r, 0, 3), w->pl = rng_int(r, 0, 3);
    bool symmetric = rng_int(r, 0, 1);
    w->pb = symmetric ? w->pt : rng_int(r, 0, 3);
    w->pr = symmetric ? w->pl : rng_int(r, 0, 3);
}

Test(ops, conv_matches_reference_on_random_shapes)
{
    rng r = {1};
    int tested = 0, rejected = 0;
    for (int trial = 0; trial < 300; trial++) {
        int groups = 1;
        switch (rng_int(&r, 0, 3)) {
        case 1: groups = 2; break;
        case 2: groups = rng_int(&r, 3, 6); break; /* depthwise below */
        default: break;
        }
        int cin = groups * rng_int(&r, 1, 4);
        int cout = groups * rng_int(&r, 1, 5);
        if (groups > 2) cin = cout = groups; /* depthwise */
        int h = rng_int(&r, 1, 24), w = rng_int(&r, 1, 24);
        if (trial % 50 == 0) cout = groups * 70; /* more filters than one task's rows */
        if (trial % 37 == 0) h = 40, w = 37;      /* more pixels than one panel */
        ref_window win;
        random_window(&r, &win, 5, 1);
        int bias = rng_int(&r, 0, 3) != 0;
        int oh = ref_out_size(h, win.kh, win.sh, win.pt, win.pb, win.dh, 0);
        int ow = ref_out_size(w, win.kw, win.sw, win.pl, win.pr, win.dw, 0);
        char json[1024];
        float *weight, *b;
        rectify_error err;
        rectify_model *m = conv_model(&r, cin, cout, h, w, groups, win, bias, 1.0f, &weight, &b, json, sizeof json, &err);
        if (oh < 1 || ow < 1) {
            cr_assert_null(m, "conv with no output pixels must be rejected: %s", json);
            cr_assert_eq(err.status, RECTIFY_ERR_INVALID);
            cr_assert(strstr(err.message, "larger than the padded input"), "message: %s", err.message);
            rejected++;
        } else {
            cr_assert_not_null(m, "%s\n%s", err.message, json);
            int64_t in_n = (int64_t)cin * h * w;
            float *in = random_floats(&r, in_n, -2, 2);
            double *want = malloc((size_t)cout * oh * ow * sizeof *want);
            ref_conv(in, cin, h, w, weight, bias ? b : NULL, cout, groups, win, want, oh, ow);
            check_runs(m, in, in_n, want, (int64_t)cout * oh * ow, json);
            free(in), free(want);
            rectify_model_destroy(m);
            tested++;
        }
        free(weight), free(b);
    }
    cr_assert(tested > 150 && rejected > 0, "tested %d, rejected %d", tested, rejected);
}

/* A conv layer as a test case: RECTIFY_WINOGRAD set while it loads, when
   `winograd` is not NULL. */
typedef struct conv_case {
    int cin, cout, h, w, groups;
    ref_window win;
    const char *winograd;
} conv_case;

/* Runs a case through check_runs against ref_conv; `large` also asserts it
   has enough multiply-adds to run on two threads. */
static void check_conv_case(rng *r, const conv_case *c, bool large)
{
    const ref_window win = c->win;
    const int oh = ref_out_size(c->h, win.kh, win.sh, win.pt, win.pb, win.dh, 0);
    const int ow = ref_out_size(c->w, win.kw, win.sw, win.pl, win.pr, win.dw, 0);
    const int64_t macs = (int64_t)c->cout * oh * ow * (c->cin / c->groups) * win.kh * win.kw;
    if (large) cr_assert(macs >= (1 << 20), "a case of %lld multiply-adds is small", (long long)macs);
    char json[1024];
    float *weight, *b;
    rectify_error err;
    if (c->winograd) setenv("RECTIFY_WINOGRAD", c->winograd, 1);
    rectify_model *m =
        conv_model(r, c->cin, c->cout, c->h, c->w, c->groups, win, 1, 1.0f, &weight, &b, json, sizeof json, &err);
    unsetenv("RECTIFY_WINOGRAD");
    cr_assert_not_null(m, "%s\n%s", err.message, json);
    int64_t in_n = (int64_t)c->cin * c->h * c->w;
    float *in = random_floats(r, in_n, -2, 2);
    double *want = malloc((size_t)c->cout * oh * ow * sizeof *want);
    ref_conv(in, c->cin, c->h, c->w, weight, b, c->cout, c->groups, win, want, oh, ow);
    check_runs(m, in, in_n, want, (int64_t)c->cout * oh * ow, json);
    free(in), free(want), free(weight), free(b);
    rectify_model_destroy(m);
}

/* Layers large enough to run on two threads (small ones run on one: see
   RX_PARALLEL_MACS in conv.c), through the direct kernel: strides, 5x5 and
   11x11 kernels, 1x1, groups, dilation; the last three on wide pixels
   (little work per output row, conv.c): groups, dilation, and k (48 x 5 x
   5) past one cache block. */
Test(ops, conv_large_layers_match_reference_on_two_threads)
{
    static const conv_case cases[] = {
        {24, 40, 36, 36, 1, {5, 5, 1, 1, 2, 2, 2, 2, 1, 1}, NULL},
        {32, 48, 40, 40, 1, {3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, NULL},
        {3, 32, 99, 99, 1, {11, 11, 4, 4, 2, 2, 2, 2, 1, 1}, NULL},
        {64, 64, 30, 30, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, NULL},
        {20, 24, 30, 30, 1, {3, 3, 1, 1, 1, 1, 1, 1, 2, 2}, NULL},
        {32, 32, 32, 32, 2, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, NULL},
        {20, 12, 30, 30, 1, {3, 3, 1, 1, 1, 1, 1, 1, 2, 2}, NULL},
        {48, 24, 20, 19, 1, {5, 5, 1, 1, 2, 1, 2, 3, 1, 1}, NULL},
    };
    rng r = {11};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv_case(&r, &cases[i], true);
}

/* Layers on wide pixels (conv.c) at their edges: a one-pixel-wide output;
   padding past the kernel, with dilation; depthwise on two threads; three
   filter blocks split between two threads, k (2304) past a cache block; a
   layer of Winograd's shape run direct (RECTIFY_WINOGRAD=0), whose per-thread
   scratch is sized for both paths. */
Test(ops, conv_wide_edge_cases)
{
    static const conv_case cases[] = {
        {2, 7, 9, 1, 1, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, NULL},
        {3, 4, 7, 5, 1, {2, 2, 1, 1, 5, 4, 3, 6, 3, 2}, NULL},
        {64, 64, 48, 48, 64, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, NULL},
        {256, 13, 8, 8, 1, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, NULL},
        {64, 16, 16, 16, 1, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, "0"},
    };
    rng r = {13};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv_case(&r, &cases[i], false);
}

/* NaN and infinities in the input of a wide layer (LeNet-5's second
   convolution) reach exactly the outputs whose windows hold them: the
   pixels computed and dropped, which read across rows, leak into none. */
Test(ops, conv_wide_nonfinite_inputs_stay_in_their_windows)
{
    const int cin = 6, cout = 16, h = 14, w = 14, oh = 10, ow = 10;
    const ref_window win = {5, 5, 1, 1, 0, 0, 0, 0, 1, 1};
    rng r = {17};
    char json[1024];
    float *weight, *b;
    rectify_error err;
    rectify_model *m = conv_model(&r, cin, cout, h, w, 1, win, 1, 1.0f, &weight, &b, json, sizeof json, &err);
    cr_assert_not_null(m, "%s", err.message);
    const int64_t in_n = (int64_t)cin * h * w, out_n = (int64_t)cout * oh * ow;
    float *in = random_floats(&r, in_n, -2, 2);
    in[(2 * h + 5) * w + 5] = NAN;          /* inside */
    in[(4 * h + 0) * w + 13] = INFINITY;    /* the last column: the next row's dropped pixels read it */
    in[(5 * h + 13) * w + 0] = -INFINITY;   /* the first column of the last row */
    double *want = malloc((size_t)out_n * sizeof *want);
    ref_conv(in, cin, h, w, weight, b, cout, 1, win, want, oh, ow);
    double top = 0;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < out_n; i++) {
        if (isfinite(want[i])) top = fmax(top, fabs(want[i]));
        else nonfinite++;
    }
    cr_assert(nonfinite > 0 && nonfinite < out_n, "%lld of %lld outputs non-finite", (long long)nonfinite,
              (long long)out_n);
    for (int threads = 1; threads <= 2; threads++) {
        int64_t count = 0;
        float *got = run_model(m, in, 1, threads, &count);
        cr_assert_not_null(got);
        cr_assert_eq(count, out_n);
        for (int64_t i = 0; i < out_n; i++) {
            const bool ok = isnan(want[i])   ? isnan(got[i])
                            : isinf(want[i]) ? got[i] == want[i]
                                             : fabs(got[i] - want[i]) <= TOLERANCE * top;
            cr_assert(ok, "threads %d, output %lld: %g, want %g", threads, (long long)i, got[i], want[i]);
        }
        free(got);
    }
    free(in), free(want), free(weight), free(b);
    rectify_model_destroy(m);
}

static void pool_case(rng *r, bool max)
{
    int tested = 0;
    for (int trial = 0; trial < 300; trial++) {
        ref_window win;
        random_window(r, &win, 4, max);
        /* PyTorch: padding at most half the kernel */
        if (2 * win.pt > win.kh) win.pt = win.kh / 2;
        if (2 * win.pb > win.kh) win.pb = win.kh / 2;
        if (2 * win.pl > win.kw) win.pl = win.kw / 2;
        if (2 * win.pr > win.kw) win.pr = win.kw / 2;
        int ceil_mode = rng_int(r, 0, 1), include_pad = rng_int(r, 0, 1);
        int c = rng_int(r, 1, 5), h = rng_int(r, 1, 20), w = rng_int(r, 1, 20);
        int oh = ref_out_size(h, win.kh, win.sh, win.pt, win.pb, win.dh, ceil_mode);
        int ow = ref_out_size(w, win.kw, win.sw, win.pl, win.pr, win.dw, ceil_mode);
        char json[1024], extra[128] = "";
        if (max) snprintf(extra, sizeof extra, ",\"dilation\":[%d,%d]", win.dh, win.dw);
        else snprintf(extra, sizeof extra, ",\"count_include_pad\":%s", include_pad ? "true" : "false");
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[{\"name\":\"p\",\"op\":\"%s\",\"kernel\":[%d,%d],\"stride\":[%d,%d],"
                 "\"padding\":[%d,%d,%d,%d],\"ceil_mode\":%s%s}]}",
                 c, h, w, max ? "maxpool" : "avgpool", win.kh, win.kw, win.sh, win.sw, win.pt, win.pl, win.pb,
                 win.pr, ceil_mode ? "true" : "false", extra);
        rectify_error err;
        rectify_model *m = load_json(json, NULL, 0, &err);
        if (oh < 1 || ow < 1) {
            cr_assert_null(m, "pool with no output must be rejected: %s", json);
            continue;
        }
        cr_assert_not_null(m, "%s\n%s", err.message, json);
        int64_t in_n = (int64_t)c * h * w;
        float *in = random_floats(r, in_n, -2, 2);
        double *want = malloc((size_t)c * oh * ow * sizeof *want);
        if (max) ref_maxpool(in, c, h, w, win, want, oh, ow);
        else ref_avgpool(in, c, h, w, win, include_pad, want, oh, ow);
        check_runs(m, in, in_n, want, (int64_t)c * oh * ow, json);
        free(in), free(want);
        rectify_model_destroy(m);
        tested++;
    }
    cr_assert(tested > 150, "only %d pools tested", tested);
}

Test(ops, maxpool_matches_reference_on_random_shapes) { rng r = {2}; pool_case(&r, true); }
Test(ops, avgpool_matches_reference_on_random_shapes) { rng r = {3}; pool_case(&r, false); }

/* Runs a maxpool model (square windows of k, stride, padding pad) on 1 and 2
   threads and holds every output to PyTorch's scan of its window in order,
   which takes a value only when it is greater or NaN: NaN wins, and of +0
   and -0 the first stays. Outputs compared bit for bit. */
static void check_max_windows(const rectify_model *m, const float *in, int planes, int h, int w, int k, int stride,
                              int pad, int oh, int ow)
{
    for (int threads = 1; threads <= 2; threads++) {
        int64_t count = 0;
        float *got = run_model(m, in, 1, threads, &count);
        cr_assert_not_null(got);
        cr_assert_eq(count, (int64_t)planes * oh * ow);
        for (int c = 0; c < planes; c++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float want = -INFINITY;
                    for (int y = oy * stride - pad; y < oy * stride - pad + k; y++)
                        for (int x = ox * stride - pad; x < ox * stride - pad + k; x++)
                            if (y >= 0 && y < h && x >= 0 && x < w) {
                                float v = in[(c * h + y) * w + x];
                                if (v > want || isnan(v)) want = v;
                            }
                    float g = got[(c * oh + oy) * ow + ox];
                    if (isnan(want))
                        cr_assert(isnan(g), "%d threads, plane %d output (%d, %d) is %g, want NaN", threads, c, oy,
                                  ox, g);
                    else
                        cr_assert(memcmp(&g, &want, sizeof g) == 0, "%d threads, plane %d output (%d, %d) is %g, "
                                  "want %g", threads, c, oy, ox, g, want);
                }
        free(got);
    }
}

/* The 2x2 windows of stride 2 (VGG's, LeNet-5's), which have a path of
   their own: a NaN at each of a window's four places, in windows across a
   row wider than a vector (or narrower: rows of 4 and 7 outputs, as VGG's
   last pools have), NaN in the odd row and column left out (which no
   output may show), and +0 and -0 in windows together. */
static void max_2x2_case(int c, int h, int w, uint64_t seed)
{
    char json[256];
    snprintf(json, sizeof json, "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
             "\"layers\":[{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":2}]}", c, h, w);
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_not_null(m, "%s", err.message);
    rng r = {seed};
    const int n = c * h * w, oh = h / 2, ow = w / 2;
    float *in = random_floats(&r, n, -2, 2);
    for (int i = 0; i < n; i++) /* zeros of both signs beside negatives */
        if (rng_int(&r, 0, 3) == 0) in[i] = rng_int(&r, 0, 1) ? 0.0f : -0.0f;
        else if (rng_int(&r, 0, 2) == 0) in[i] = -fabsf(in[i]);
    for (int i = 0; i < 40; i++) { /* a NaN at place `place` of window (oy, ox) of plane i % c */
        int oy = i / 2 % oh, ox = i * 7 % ow, place = i / 8 % 4;
        in[(i % c) * h * w + (2 * oy + place / 2) * w + 2 * ox + place % 2] = NAN;
    }
    for (int p = 0; p < c; p++) { /* the row and the column no window reads */
        if (h % 2) in[p * h * w + (h - 1) * w + w / 3] = NAN;
        if (w % 2) in[p * h * w + (h / 2) * w + w - 1] = NAN;
    }
    check_max_windows(m, in, c, h, w, 2, 2, 0, oh, ow);
    free(in);
    rectify_model_destroy(m);
}

Test(ops, maxpool_2x2_propagates_nan)
{
    max_2x2_case(2, 9, 75, 9);
    max_2x2_case(5, 14, 15, 10); /* 7 outputs a row */
    max_2x2_case(8, 9, 8, 11);   /* 4 */
}

/* NaN wins a max window, and of +0 and -0 the first stays, in windows of
   3x3 at strides 2 and 1: padded (9x40, NaN in the interior and both
   corners), AlexNet's unpadded 55 -> 27 and 13 -> 6, and rows of 40 outputs
   at stride 1: whole vectors of outputs, a masked last one, and the
   padded edges. */
static void max_window_case(int c, int h, int w, int k, int stride, int pad, uint64_t seed, int nans)
{
    char json[320];
    snprintf(json, sizeof json, "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
             "\"layers\":[{\"name\":\"p\",\"op\":\"maxpool\",\"kernel\":%d,\"stride\":%d,\"padding\":%d}]}",
             c, h, w, k, stride, pad);
    rectify_error err;
    rectify_model *m = load_json(json, NULL, 0, &err);
    cr_assert_not_null(m, "%s", err.message);
    rng r = {seed};
    const int n = c * h * w;
    float *in = random_floats(&r, n, -2, 2);
    for (int i = 0; i < n; i++) /* zeros of both signs beside negatives */
        if (rng_int(&r, 0, 3) == 0) in[i] = rng_int(&r, 0, 1) ? 0.0f : -0.0f;
        else if (rng_int(&r, 0, 2) == 0) in[i] = -fabsf(in[i]);
    for (int i = 0; i < nans; i++) in[rng_int(&r, 0, n - 1)] = NAN;
    for (int p = 0; p < c; p++) in[p * h * w] = NAN, in[p * h * w + h * w - 1] = NAN; /* the corners */
    const int oh = ref_out_size(h, k, stride, pad, pad, 1, 0), ow = ref_out_size(w, k, stride, pad, pad, 1, 0);
    check_max_windows(m, in, c, h, w, k, stride, pad, oh, ow);
    free(in);
    rectify_model_destroy(m);
}

Test(ops, maxpool_propagates_nan)
{
    max_window_case(1, 9, 40, 3, 2, 1, 5, 3);
    max_window_case(3, 55, 55, 3, 2, 0, 6, 20);
    max_window_case(4, 13, 13, 3, 2, 0, 7, 6);
    max_window_case(2, 7, 42, 3, 1, 1, 8, 8);
}

Test(ops, dense_relu_softmax_global_avgpool_flatten_match_reference)
{
    rng r = {4};
    for (int trial = 0; trial < 60; trial++) {
        int c = rng_int(&r, 1, 6), h = rng_int(&r, 1, 9), w = rng_int(&r, 1, 9), units = rng_int(&r, 1, 70);
        int bias = rng_int(&r, 0, 1);
        char json[1024];
        /* gap -> flatten -> dense -> relu, and a softmax over the image's
           channels as a second output */
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[{\"name\":\"g\",\"op\":\"global_avgpool\"},{\"name\":\"f\",\"op\":\"flatten\"},"
                 "{\"name\":\"d\",\"op\":\"dense\",\"units\":%d,\"bias\":%s},{\"name\":\"r\",\"op\":\"relu\"},"
                 "{\"name\":\"s\",\"op\":\"softmax\",\"inputs\":[\"input\"]},"
                 "{\"name\":\"s2\",\"op\":\"softmax\",\"inputs\":[\"d\"]}],\"outputs\":[\"r\",\"s\",\"s2\"]}",
                 c, h, w, units, bias ? "true" : "false");
        float *weight = random_floats(&r, (int64_t)units * c, -1, 1), *b = random_floats(&r, units, -1, 1);
        ttensor t[2] = {{"d.weight", 2, {units, c}, weight}, {"d.bias", 1, {units}, b}};
        rectify_error err;
        rectify_model *m = load_json(json, t, bias ? 2 : 1, &err);
        cr_assert_not_null(m, "%s", err.message);
        int64_t in_n = (int64_t)c * h * w;
        float *in = random_floats(&r, in_n, -3, 3);
        float *pooled = malloc((size_t)c * sizeof *pooled);
        for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (int i = 0; i < h * w; i++) s += in[ch * h * w + i];
            pooled[ch] = (float)(s / (h * w));
        }
        double *dense = malloc((size_t)units * sizeof *dense), *relu = malloc((size_t)units * sizeof *relu);
        ref_dense(pooled, c, weight, bias ? b : NULL, units, dense);
        for (int u = 0; u < units; u++) relu[u] = dense[u] > 0 ? dense[u] : 0;
        double *soft = malloc((size_t)in_n * sizeof *soft), *soft2 = malloc((size_t)units * sizeof *soft2);
        ref_softmax(in, c, h * w, soft);
        float *dense_f = malloc((size_t)units * sizeof *dense_f);
        for (int u = 0; u < units; u++) dense_f[u] = (float)dense[u];
        ref_softmax(dense_f, units, 1, soft2);
        for (int threads = 1; threads <= 2; threads++) {
            rectify_session_options o = {.threads = threads};
            rectify_session *s;
            cr_assert_eq(rectify_session_create(m, &o, &s, &err), RECTIFY_OK, "%s", err.message);
            cr_assert_eq(rectify_session_run(s, in, (size_t)in_n, &err), RECTIFY_OK, "%s", err.message);
            rectify_tensor o0, o1, o2;
            cr_assert_eq(rectify_session_output(s, 0, &o0), RECTIFY_OK);
            cr_assert_eq(rectify_session_output(s, 1, &o1), RECTIFY_OK);
            cr_assert_eq(rectify_session_output(s, 2, &o2), RECTIFY_OK);
            cr_assert_eq(o0.elements, units);
            cr_assert_eq(o1.elements, in_n);
            cr_assert(rel_error(o0.data, relu, units) < TOLERANCE, "dense+relu");
            cr_assert(rel_error(o1.data, soft, in_n) < TOLERANCE, "softmax over channels");
            cr_assert(rel_error(o2.data, soft2, units) < 1e-4, "softmax over features");
            /* relu's zeros are exact: count them against the reference */
            int64_t zeros = 0;
            for (int u = 0; u < units; u++) zeros += !(dense[u] > 0);
            rectify_layer_stats st;
            cr_assert_eq(rectify_session_layer_stats(s, rectify_model_find_layer(m, "r"), &st), RECTIFY_OK);
            cr_assert_eq(st.elements, units);
            cr_assert_eq(st.zeros, zeros, "relu zeros %lld, want %lld", (long long)st.zeros, (long long)zeros);
            rectify_session_destroy(s);
        }
        free(weight), free(b), free(in), free(pooled), free(dense), free(relu), free(soft), free(soft2), free(dense_f);
        rectify_model_destroy(m);
    }
}

/* Dense layers gather their input's non-zeros and read only the packed
   weights those meet (RECTIFY_SPARSE=off: all of them). A flat input straight
   into dense, with shares of exact zeros (+0.0 and -0.0) from none to all;
   odd sizes: n = 1, units under and over a packed block of 1024 and not a
   multiple of 16, enough weights for two threads to split the outputs
   inside a block. Batch 2 holds two different samples. */
static void dense_case(rng *r, int n, int units, int bias, const char *mode)
{
    static const double sparsities[] = {0.0, 0.5, 0.9, 1.0};
    const int count = (int)(sizeof sparsities / sizeof sparsities[0]);
    char json[512];
    snprintf(json, sizeof json,
             "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,1,1]},"
             "\"layers\":[{\"name\":\"f\",\"op\":\"flatten\"},{\"name\":\"d\",\"op\":\"dense\",\"units\":%d,"
             "\"bias\":%s}]}", n, units, bias ? "true" : "false");
    float *weight = random_floats(r, (int64_t)units * n, -1, 1), *b = random_floats(r, units, -1, 1);
    ttensor t[2] = {{"d.weight", 2, {units, n}, weight}, {"d.bias", 1, {units}, b}};
    if (mode) setenv("RECTIFY_SPARSE", mode, 1);
    rectify_error err;
    rectify_model *m = load_json(json, t, bias ? 2 : 1, &err);
    unsetenv("RECTIFY_SPARSE");
    cr_assert_not_null(m, "%s\n%s", err.message, json);
    float *in = malloc((size_t)n * count * sizeof *in);
    double *want = malloc((size_t)units * count * sizeof *want);
    for (int k = 0; k < count; k++) {
        float *x = in + (size_t)k * n;
        for (int i = 0; i < n; i++)
            x[i] = rng_float(r, 0, 1) < sparsities[k] ? (rng_int(r, 0, 1) ? 0.0f : -0.0f) : rng_float(r, -2, 2);
        ref_dense(x, n, weight, bias ? b : NULL, units, want + (size_t)k * units);
    }
    char what[640];
    for (int k = 0; k < count; k++) {
        snprintf(what, sizeof what, "%s, RECTIFY_SPARSE=%s, sparsity %g", json, mode ? mode : "(unset)",
                 sparsities[k]);
        check_runs(m, in + (size_t)k * n, n, want + (size_t)k * units, units, what);
    }
    /* Every output the same, bit for bit, on 1 to 4 threads: the layers big
       enough to share sum their non-zeros in two parts whatever the thread
       count. */
    for (int k = 0; k < count; k++) {
        int64_t one_n, got_n;
        float *one = run_model(m, in + (size_t)k * n, 1, 1, &one_n);
        cr_assert_not_null(one);
        for (int threads = 2; threads <= 4; threads++) {
            float *got = run_model(m, in + (size_t)k * n, 1, threads, &got_n);
            cr_assert(got && got_n == one_n);
            cr_assert(memcmp(got, one, (size_t)one_n * sizeof *one) == 0,
                      "%s, sparsity %g: %d threads differ from one", json, sparsities[k], threads);
            free(got);
        }
        free(one);
    }
    for (int threads = 1; threads <= 2; threads++)
        for (int k = 0; k + 1 < count; k++) { /* two samples of different sparsities */
            int64_t got_n;
            float *got = run_model(m, in + (size_t)k * n, 2, threads, &got_n);
            cr_assert_not_null(got);
            cr_assert_eq(got_n, 2 * units);
            for (int s = 0; s < 2; s++) {
                double e = rel_error(got + s * units, want + (size_t)(k + s) * units, units);
                cr_assert(e <= TOLERANCE, "%s, RECTIFY_SPARSE=%s, batch of sparsities %g and %g, threads %d, "
                          "sample %d: relative error %g", json, mode ? mode : "(unset)", sparsities[k],
                          sparsities[k + 1], threads, s, e);
            }
            free(got);
        }
    free(weight), free(b), free(in), free(want);
    rectify_model_destroy(m);
}

Test(ops, dense_matches_reference_at_every_sparsity)
{
    rng r = {6};
    /* n, units: n = 1; a block and a bit; outputs split inside one block;
       three blocks, the last 52 wide, split across blocks; many inputs */
    static const int fixed[][2] = {{1, 1}, {1, 37}, {300, 1}, {7, 1040}, {2048, 1000}, {100, 2100}, {4096, 17},
                                   {8200, 600}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        dense_case(&r, fixed[i][0], fixed[i][1], (int)i % 2, NULL);
        dense_case(&r, fixed[i][0], fixed[i][1], 1, "off");
    }
    for (int trial = 0; trial < 24; trial++) {
        int n = trial % 4 == 0 ? rng_int(&r, 500, 3000) : rng_int(&r, 1, 300);
        int units = trial % 3 == 0 ? rng_int(&r, 100, 1500) : rng_int(&r, 1, 90);
        dense_case(&r, n, units, rng_int(&r, 0, 1), trial % 5 == 0 ? "off" : NULL);
    }
}

/* The gather of a dense layer's non-zeros (sixteen inputs a vector with
   AVX-512, one at a time elsewhere) on inputs that hold one non-zero, at
   every place of a vector and of a partial last one: the output is the
   bias plus that one column times the value, so a wrong index or a value
   taken from the wrong lane shows. Every other input is +0.0 or -0.0 (a
   zero either way); a NaN is a non-zero and makes every output NaN. */
Test(ops, dense_gathers_each_nonzero_at_its_place)
{
    rng r = {11};
    static const int sizes[] = {1, 15, 16, 17, 40, 1000};
    const int units = 20;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int n = sizes[i];
        char json[512];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,1,1]},"
                 "\"layers\":[{\"name\":\"f\",\"op\":\"flatten\"},{\"name\":\"d\",\"op\":\"dense\","
                 "\"units\":%d,\"bias\":true}]}", n, units);
        float *weight = random_floats(&r, (int64_t)units * n, -1, 1), *b = random_floats(&r, units, -1, 1);
        ttensor t[2] = {{"d.weight", 2, {units, n}, weight}, {"d.bias", 1, {units}, b}};
        rectify_error err;
        rectify_model *m = load_json(json, t, 2, &err);
        cr_assert_not_null(m, "%s", err.message);
        float *x = malloc((size_t)n * sizeof *x);
        for (int at = 0; at < n; at += n > 40 ? 37 : 1)
            for (int nan = 0; nan <= 1; nan++) {
                for (int k = 0; k < n; k++) x[k] = k % 3 ? -0.0f : 0.0f;
                const float v = nan ? NAN : rng_float(&r, 0.5f, 2);
                x[at] = v;
                for (int threads = 1; threads <= 2; threads++) {
                    int64_t count;
                    float *y = run_model(m, x, 1, threads, &count);
                    cr_assert(y && count == units);
                    for (int u = 0; u < units; u++) {
                        const double want = (double)b[u] + (double)weight[(size_t)u * n + at] * v;
                        if (nan)
                            cr_assert(isnan(y[u]), "n %d, NaN at %d: output %d is %g", n, at, u, y[u]);
                        else
                            cr_assert(fabs(y[u] - want) <= 1e-6 * (1 + fabs(want)),
                                      "n %d, %g at %d, %d threads: output %d is %.9g, want %.9g", n, v, at,
                                      threads, u, y[u], want);
                    }
                    free(y);
                }
            }
        free(x), free(weight), free(b);
        rectify_model_destroy(m);
    }
}

/* 3x3 stride-1 layers with 16 channels or more run as Winograd F(4x4, 3x3)
   or F(2x2, 3x3) (RECTIFY_WINOGRAD forces one): the error of each against
   the exact reference is bounded here. */
static void winograd_case(const char *variant)
{
    setenv("RECTIFY_WINOGRAD", variant, 1);
    rng r = {5};
    double worst = 0;
    int tested = 0, differ = 0;
    for (int trial = 0; trial < 40; trial++) {
        int cin = rng_int(&r, 16, 80), cout = rng_int(&r, 16, 70);
        /* wide images too: rows of 16 tiles take the vector gather */
        int h = rng_int(&r, 1, 30), w = trial % 4 == 0 ? rng_int(&r, 64, 100) : rng_int(&r, 1, 30);
        ref_window win = {3, 3, 1, 1, rng_int(&r, 0, 2), rng_int(&r, 0, 2), 0, 0, 1, 1};
        win.pb = rng_int(&r, 0, 2), win.pr = rng_int(&r, 0, 2);
        int oh = ref_out_size(h, 3, 1, win.pt, win.pb, 1, 0), ow = ref_out_size(w, 3, 1, win.pl, win.pr, 1, 0);
        if (oh < 1 || ow < 1) continue;
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"format\":\"rectify\",\"version\":1,\"name\":\"t\",\"input\":{\"shape\":[%d,%d,%d]},"
                 "\"layers\":[{\"name\":\"c\",\"op\":\"conv\",\"out_channels\":%d,\"kernel\":3,"
                 "\"padding\":[%d,%d,%d,%d]}]}",
                 cin, h, w, cout, win.pt, win.pl, win.pb, win.pr);
        float *weight = random_floats(&r, (int64_t)cout * cin * 9, -0.1f, 0.1f), *b = random_floats(&r, cout, -1, 1);
        ttensor t[2] = {{"c.weight", 4, {cout, cin, 3, 3}, weight}, {"c.bias", 1, {cout}, b}};
        rectify_error err;
        rectify_model *m = load_json(json, t, 2, &err);
        cr_assert_not_null(m, "%s", err.message);
        int64_t in_n = (int64_t)cin * h * w, out_n = (int64_t)cout * oh * ow;
        float *in = random_floats(&r, in_n, -1, 1);
        double *want = malloc((size_t)out_n * sizeof *want);
        ref_conv(in, cin, h, w, weight, b, cout, 1, win, want, oh, ow);
        /* The same layer run directly: Winograd rounds differently, so a
           run that matched it bit for bit would not have been Winograd. */
        setenv("RECTIFY_WINOGRAD", "0", 1);
        rectify_model *direct_model = load_json(json, t, 2, &err);
        setenv("RECTIFY_WINOGRAD", variant, 1);
        cr_assert_not_null(direct_model, "%s", err.message);
        int64_t n;
        float *direct = run_model(direct_model, in, 1, 1, &n);
        cr_assert_not_null(direct);
        for (int threads = 1; threads <= 2; threads++) {
            float *got = run_model(m, in, 1, threads, &n);
            cr_assert_not_null(got);
            double e = rel_error(got, want, out_n);
            if (e > worst) worst = e;
            cr_assert(e < 2e-5, "%s: relative error %g", json, e);
            if (threads == 1 && memcmp(got, direct, (size_t)out_n * sizeof *got) != 0) differ++;
            free(got);
        }
        free(direct);
        rectify_model_destroy(direct_model);
        free(weight), free(b), free(in), free(want);
        rectify_model_destroy(m);
        tested++;
    }
    cr_log_info("winograd F(%sx%s, 3x3): worst relative error %g", variant, variant, worst);
    cr_assert(tested >= 30 && differ >= tested * 9 / 10, "%d of %d layers differ from the direct kernel", differ,
              tested);
    unsetenv("RECTIFY_WINOGRAD");
}

Test(ops, winograd_4x4_conv_error_is_bounded) { winograd_case("4"); }
Test(ops, winograd_2x2_conv_error_is_bounded) { winograd_case("2"); }

/* Two or three threads share a Winograd layer's blocks of tiles, and one
   that has none left takes products of another's block (conv.c,
   wino_help, for blocks of 16M multiply-adds or more, RX_WINO_SHARE):
   which thread computes what varies from run to run, the output must not.
   Random layers (a few of them large enough to be shared) and the four of
   shared_winograd_cases (support.h), which are, each run 6 times in one session, each time on other inputs
   (the same ones would let a run reuse the scratch the last one left):
   every output bit for bit what one thread gives, and near the exact
   reference. */
Test(ops, winograd_blocks_shared_by_threads_match_one_thread)
{
    enum { RUNS = 6, FIXED = SHARED_WINOGRAD_CASES };
    rng r = {23};
    for (int trial = 0; trial < 12 + FIXED; trial++) {
        const shared_winograd_case *f = trial < FIXED ? &shared_winograd_cases[trial] : NULL;
        const char *variant = f ? f->variant : trial % 2 ? "2" : "4";
        int cin = f ? f->cin : rng_int(&r, 160, 256), cout = f ? f->cout : rng_int(&r, 100, 200);
        int side = f ? f->side : rng_int(&r, 6, 24), batch = f ? f->batch : trial % 3 ? 1 : 3;
        float *weight, *b;
        rectify_error err;
        rectify_model *m = winograd_conv(&r, variant, cin, cout, side, &weight, &b, &err);
        cr_assert_not_null(m, "%s", err.message);
        char layer[128];
        snprintf(layer, sizeof layer, "F(%sx%s) %dx%dx%d -> %d", variant, variant, cin, side, side, cout);
        const int64_t in_n = (int64_t)cin * side * side * batch, out_n = (int64_t)cout * side * side;
        float *in = random_floats(&r, in_n * RUNS, -1, 1);
        float *one[RUNS];
        int64_t n;
        for (int run = 0; run < RUNS; run++) {
            one[run] = run_model(m, in + run * in_n, batch, 1, &n);
            cr_assert(one[run] && n == out_n * batch);
        }
        double *want = malloc((size_t)out_n * sizeof *want);
        ref_conv(in, cin, side, side, weight, b, cout, 1, (ref_window){3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, want, side,
                 side);
        double e = rel_error(one[0], want, out_n);
        cr_assert(e < 2e-5, "%s: relative error %g", layer, e);
        for (int threads = 2; threads <= 3; threads++) {
            rectify_session_options o = {.threads = threads, .batch = batch};
            rectify_session *s;
            cr_assert_eq(rectify_session_create(m, &o, &s, &err), RECTIFY_OK, "%s", err.message);
            for (int run = 0; run < RUNS; run++) {
                rectify_tensor out;
                cr_assert_eq(rectify_session_run(s, in + run * in_n, (size_t)in_n, &err), RECTIFY_OK, "%s",
                             err.message);
                cr_assert_eq(rectify_session_output(s, 0, &out), RECTIFY_OK);
                cr_assert(memcmp(out.data, one[run], (size_t)n * sizeof *out.data) == 0,
                          "%s, batch %d, %d threads, run %d: differs from one thread", layer, batch, threads, run);
            }
            rectify_session_destroy(s);
        }
        for (int run = 0; run < RUNS; run++) free(one[run]);
        free(want), free(in), free(weight), free(b);
        rectify_model_destroy(m);
    }
}

/* Layers whose transformed filters take 8 MiB or more run blocks of 96
   tiles, not 48 (conv.c, winograd_block): with more tiles than one such
   block holds, on one and two threads, against the exact reference. */
Test(ops, winograd_blocks_of_96_tiles_match_reference)
{
    static const struct { const char *variant; int cin, cout, side; } cases[] = {
        {"2", 384, 384, 28}, /* U 9 MiB, 196 tiles: 3 blocks of 65-66 (4 of 49 on two threads) */
        {"4", 256, 256, 40}, /* U 9 MiB, 100 tiles: 2 blocks of 50 */
    };
    rng r = {31};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int cin = cases[i].cin, cout = cases[i].cout, side = cases[i].side;
        float *weight, *b;
        rectify_error err;
        rectify_model *m = winograd_conv(&r, cases[i].variant, cin, cout, side, &weight, &b, &err);
        cr_assert_not_null(m, "%s", err.message);
        const int64_t in_n = (int64_t)cin * side * side, out_n = (int64_t)cout * side * side;
        float *in = random_floats(&r, in_n, -1, 1);
        double *want = malloc((size_t)out_n * sizeof *want);
        ref_conv(in, cin, side, side, weight, b, cout, 1, (ref_window){3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, want, side,
                 side);
        for (int threads = 1; threads <= 2; threads++) {
            int64_t n;
            float *got = run_model(m, in, 1, threads, &n);
            cr_assert(got && n == out_n);
            const double e = rel_error(got, want, out_n);
            cr_assert(e < 2e-5, "F(%sx%s) %dx%dx%d -> %d, %d threads: relative error %g", cases[i].variant,
                      cases[i].variant, cin, side, side, cout, threads, e);
            free(got);
        }
        free(want), free(in), free(weight), free(b);
        rectify_model_destroy(m);
    }
}
