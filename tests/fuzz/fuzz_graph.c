/* fuzz_graph.c: whole-model load and run on tiny random graphs. The input
   is decoded into a model.json (up to 8 layers of every operator, inputs
   that branch and join, shapes mostly made to fit) and a safetensors file
   for the tensors that graph needs (F32, F16 or BF16, values from a PRNG the
   input seeds), then loaded, run twice on one input (both runs must agree
   bit for bit) and walked. Nothing may crash, leak or read out of bounds.

   Input layout, a byte at a time (missing bytes read as 0): flags (batch,
   dtype, RECTIFY_SPARSE, metadata, alignment), PRNG seed (and
   RECTIFY_WINOGRAD), input pattern, C, H, W, layer count, then per layer:
   op, input choice, and the op's own bytes; last, the outputs.
   FUZZ_VERBOSE=1 prints each graph and what loading it said. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>

#include "fuzz.h"

typedef struct reader {
    const uint8_t *p;
    size_t n, at;
} reader;

static unsigned next(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }

typedef struct shape { int rank; int64_t c, h, w; } shape;

typedef struct text {
    char *buf;
    size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    if (!t->buf) {
        t->cap = 1024;
        t->buf = malloc(t->cap);
        FUZZ_CHECK(t->buf != NULL);
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        FUZZ_CHECK(n >= 0);
        if (t->len + (size_t)n < t->cap) { t->len += (size_t)n; return; }
        t->cap = 2 * t->cap + (size_t)n + 64;
        t->buf = realloc(t->buf, t->cap);
        FUZZ_CHECK(t->buf != NULL);
    }
}

static uint64_t rng_state;
static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float rng_float(void) { return (float)rng() / 2147483648.0f - 1.0f; } /* [-1, 1) */

enum { CONV, MAXPOOL, AVGPOOL, GAP, DENSE, RELU, LEAKY, SIGMOID, TANH, FLATTEN, SOFTMAX, CONCAT, ADD, OPS };
static const char *const op_names[OPS] = {"conv", "maxpool", "avgpool", "global_avgpool", "dense", "relu",
                                          "leaky_relu", "sigmoid", "tanh", "flatten", "softmax", "concat", "add"};

static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d, int ceil_mode)
{
    int64_t num = in + p0 + p1 - (d * (k - 1) + 1) + (ceil_mode ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && out > 0 && (out - 1) * s >= in + p0) out--;
    return out;
}

/* The window fields of conv and the pools; *out gets the output shape
   (rank 0 when this guess says the layer is invalid: it still goes in). */
static void window(reader *r, text *t, const shape *in, int op, shape *out)
{
    unsigned a = next(r), b = next(r), c = next(r);
    int64_t kh = 1 + a % 4, kw = 1 + (a / 4) % 4, sh = 1 + b % 3, sw = 1 + (b / 4) % 3;
    int64_t dh = op == AVGPOOL ? 1 : 1 + (c / 64) % 2, dw = dh;
    int64_t pad[4], limit_h = op == CONV ? 2 : kh / 2, limit_w = op == CONV ? 2 : kw / 2;
    int four = (a & 0x80) != 0;
    pad[0] = limit_h ? c % (limit_h + 1) : 0;
    pad[1] = limit_w ? (c / 4) % (limit_w + 1) : 0;
    pad[2] = four && limit_h ? (c / 16) % (limit_h + 1) : pad[0];
    pad[3] = four && limit_w ? (b / 16) % (limit_w + 1) : pad[1];
    int ceil_mode = op != CONV && (b & 0x80);
    if (a & 0x40) { /* wild: no attempt to fit */
        kh = 1 + a % 9, sh = b % 5, pad[0] = c % 7;
    }
    put(t, ", \"kernel\": [%lld, %lld]", (long long)kh, (long long)kw);
    if ((b & 0x40) == 0 || op == CONV) put(t, ", \"stride\": [%lld, %lld]", (long long)sh, (long long)sw);
    else sh = kh, sw = kw; /* pools: stride defaults to the kernel */
    if (four) put(t, ", \"padding\": [%lld, %lld, %lld, %lld]", (long long)pad[0], (long long)pad[1],
                  (long long)pad[2], (long long)pad[3]);
    else put(t, ", \"padding\": [%lld, %lld]", (long long)pad[0], (long long)pad[1]);
    if (op != AVGPOOL && dh != 1) put(t, ", \"dilation\": %lld", (long long)dh);
    if (op != CONV && ceil_mode) put(t, ", \"ceil_mode\": true");
    if (op == AVGPOOL && (c & 0x80)) put(t, ", \"count_include_pad\": false");
    out->rank = 0;
    if (in->rank != 3 || sh < 1) return;
    int64_t oh = window_out(in->h, kh, sh, pad[0], pad[2], dh, ceil_mode);
    int64_t ow = window_out(in->w, kw, sw, pad[1], pad[3], dw, ceil_mode);
    if (oh < 1 || ow < 1) return;
    *out = (shape){3, in->c, oh, ow};
}

/* Builds the model.json text; returns the number of layers. */
static int build_json(reader *r, text *t, shape *input)
{
    shape shapes[1 + 8]; /* [0] the input, [i + 1] layer i */
    input->rank = 3;
    input->c = 1 + next(r) % 4;
    input->h = 1 + next(r) % 12;
    input->w = 1 + next(r) % 12;
    if (input->c == 4) input->c = 16 + next(r) % 4; /* enough channels for Winograd */
    int layers = 1 + next(r) % 8;
    shapes[0] = *input;
    put(t, "{\"format\": \"rectify\", \"version\": 1, \"name\": \"fuzz\", \"input\": {\"name\": \"in\", "
           "\"shape\": [%lld, %lld, %lld]}, \"layers\": [",
        (long long)input->c, (long long)input->h, (long long)input->w);
    for (int i = 0; i < layers; i++) {
        unsigned opb = next(r), inb = next(r);
        int op = opb % OPS;
        /* Inputs: the previous layer, or any earlier one (or the input). */
        int first = (inb & 0x80) ? (int)(inb % (unsigned)(i + 1)) : i; /* index into shapes */
        shape in = shapes[first];
        /* Make the op fit the input's rank, unless the wild bit says not to. */
        if (!(opb & 0x80)) {
            if (in.rank == 1 && (op == CONV || op == MAXPOOL || op == AVGPOOL || op == GAP)) op = DENSE;
            if (in.rank == 3 && op == DENSE) op = FLATTEN;
        }
        put(t, "%s{\"name\": \"l%d\", \"op\": \"%s\"", i ? ", " : "", i, op_names[op]);
        int inputs[3] = {first, first, first}, count = 1;
        if (op == CONCAT || op == ADD) {
            count = 2 + (inb & 0x40 ? 1 : 0);
            for (int k = 1; k < count; k++) {
                unsigned x = next(r);
                inputs[k] = (int)(x % (unsigned)(i + 1));
                /* Prefer an input of a shape that fits. */
                for (int tries = 0; tries <= i && !(x & 0x80); tries++) {
                    const shape *s = &shapes[inputs[k]];
                    bool fits = op == ADD ? s->rank == in.rank && s->c == in.c && s->h == in.h && s->w == in.w
                                          : s->rank == in.rank && (in.rank == 1 || (s->h == in.h && s->w == in.w));
                    if (fits && s->rank) break;
                    inputs[k] = (inputs[k] + 1) % (i + 1);
                }
            }
        }
        if (count > 1 || first != i) {
            put(t, ", \"inputs\": [");
            for (int k = 0; k < count; k++) {
                if (inputs[k]) put(t, "%s\"l%d\"", k ? ", " : "", inputs[k] - 1);
                else put(t, "%s\"in\"", k ? ", " : "");
            }
            put(t, "]");
        }
        shape out = in;
        switch (op) {
        case CONV: {
            unsigned a = next(r);
            int64_t oc = 1 + a % 8, groups = 1;
            if (a & 0x80) oc = 16 + a % 8;
            if ((a & 0x40) && in.rank == 3) { /* grouped, depthwise */
                groups = in.c;
                oc = in.c * (1 + (a / 8) % 2);
            } else if ((a & 0x20) && in.rank == 3 && in.c % 2 == 0) {
                groups = 2;
                oc = 2 * (1 + a % 4);
            }
            put(t, ", \"out_channels\": %lld", (long long)oc);
            if (groups != 1) put(t, ", \"groups\": %lld", (long long)groups);
            if (a & 0x10) put(t, ", \"bias\": false");
            window(r, t, &in, op, &out);
            if (out.rank) out.c = oc;
            break;
        }
        case MAXPOOL:
        case AVGPOOL:
            window(r, t, &in, op, &out);
            break;
        case GAP:
            out = (shape){in.rank == 3 ? 3 : 0, in.c, 1, 1};
            break;
        case DENSE: {
            unsigned a = next(r);
            int64_t units = 1 + a % 16;
            if (a & 0x80) units = 1 + a % 100;
            put(t, ", \"units\": %lld", (long long)units);
            if (a & 0x10) put(t, ", \"bias\": false");
            out = (shape){in.rank == 1 ? 1 : 0, units, 1, 1};
            break;
        }
        case LEAKY: {
            int s = (int)next(r) - 128;
            put(t, ", \"slope\": %g", s / 16.0);
            break;
        }
        case FLATTEN:
            out = (shape){1, in.rank == 3 ? in.c * in.h * in.w : in.c, 1, 1};
            break;
        case CONCAT:
            for (int k = 1; k < count; k++) out.c += shapes[inputs[k]].c;
            break;
        default:
            break;
        }
        put(t, "}");
        shapes[i + 1] = out;
    }
    put(t, "]");
    unsigned o = next(r);
    if (o & 1) { /* several outputs, or one in the middle */
        int a = (int)(o / 2) % layers, b = (int)(o / 32) % layers;
        if (a == b) put(t, ", \"outputs\": [\"l%d\"]", a);
        else put(t, ", \"outputs\": [\"l%d\", \"l%d\"]", a, b);
    }
    put(t, "}");
    return layers;
}

static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int exp = (int)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (exp <= 0) return (uint16_t)sign; /* small: zero */
    if (exp >= 31) return (uint16_t)(sign | 0x7bff);
    return (uint16_t)(sign | (uint32_t)exp << 10 | mant >> 13);
}

/* A safetensors file for the tensors the graph-only model declares. */
static unsigned char *build_weights(const rectify_model *g, unsigned flags, size_t *size)
{
    int n = rectify_model_tensor_count(g);
    int dtype = (flags >> 1) % 3; /* F32, F16, BF16 */
    size_t width = dtype ? 2 : 4;
    text h = {0};
    put(&h, "{");
    if (flags & 0x20) put(&h, "\"__metadata__\": {\"format\": \"pt\"}%s", n ? ", " : "");
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        rectify_tensor_info info;
        FUZZ_CHECK(rectify_model_tensor(g, i, &info) == RECTIFY_OK);
        if (info.elements > (1 << 20)) { free(h.buf); return NULL; }
        put(&h, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": [", i ? ", " : "", info.name,
            dtype == 0 ? "F32" : dtype == 1 ? "F16" : "BF16");
        for (int d = 0; d < info.rank; d++) put(&h, "%s%lld", d ? ", " : "", (long long)info.shape[d]);
        put(&h, "], \"data_offsets\": [%llu, %llu]}", (unsigned long long)offset,
            (unsigned long long)(offset + (uint64_t)info.elements * width));
        offset += (uint64_t)info.elements * width;
    }
    put(&h, "}");
    size_t pad = (flags & 0x40) ? 0 : (8 - h.len % 8) % 8; /* aligned data, or not */
    size_t header = h.len + pad;
    *size = 8 + header + offset;
    unsigned char *file = malloc(*size);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)header >> (8 * i));
    memcpy(file + 8, h.buf, h.len);
    memset(file + 8 + h.len, ' ', pad);
    unsigned char *data = file + 8 + header;
    for (int i = 0; i < n; i++) {
        rectify_tensor_info info;
        rectify_model_tensor(g, i, &info);
        float scale = 1.0f / sqrtf((float)(info.fan_in > 0 ? info.fan_in : 1));
        for (int64_t k = 0; k < info.elements; k++) {
            float v = rng_float() * scale;
            if ((flags & 0x80) && rng() % 4 == 0) v = 0.0f; /* pruned */
            if (dtype == 0) memcpy(data, &v, 4);
            else {
                uint32_t bits;
                memcpy(&bits, &v, 4);
                uint16_t half = dtype == 1 ? to_half(v) : (uint16_t)(bits >> 16);
                data[0] = (unsigned char)half, data[1] = (unsigned char)(half >> 8);
            }
            data += width;
        }
    }
    free(h.buf);
    return file;
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    reader r = {bytes, size, 0};
    text json = {0};
    shape input;
    /* Flags first, so that the graph's bytes can grow at the end. */
    unsigned flags = next(&r), seed = next(&r), pattern = next(&r);
    build_json(&r, &json, &input);
    /* The kernels' choices that environment variables steer, per input. */
    if (flags & 0x08) setenv("RECTIFY_SPARSE", (flags & 0x10) ? "on" : "off", 1);
    else unsetenv("RECTIFY_SPARSE");
    static const char *const winograd[] = {NULL, "0", "2", "4"}; /* the rule, direct, F(2x2), F(4x4) */
    if (winograd[seed >> 6]) setenv("RECTIFY_WINOGRAD", winograd[seed >> 6], 1);
    else unsetenv("RECTIFY_WINOGRAD");

    rectify_load_options graph_only = {.graph_only = 1};
    rectify_model *g = NULL;
    rectify_error err;
    rectify_status st = rectify_model_load_memory(json.buf, json.len, NULL, 0, NULL, &graph_only, &g, &err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%.*s\n-> %s\n", (int)json.len, json.buf, st ? err.message : "runs");
    if (st) {
        fuzz_check_failure(st, &err);
        FUZZ_CHECK(g == NULL);
        free(json.buf);
        return 0;
    }
    fuzz_walk_model(g);
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t wsize = 0;
    unsigned char *weights = build_weights(g, flags, &wsize);
    rectify_model_destroy(g);
    if (!weights) { free(json.buf); return 0; }

    rectify_model *m = NULL;
    rectify_load_options options = {0};
    st = rectify_model_load_memory(json.buf, json.len, weights, wsize, NULL, &options, &m, &err);
    free(weights);
    if (st) {
        /* The graph loaded; its own weights must bind. */
        fprintf(stderr, "fuzz_graph: %s\n%.*s\n", err.message, (int)json.len, json.buf);
        FUZZ_CHECK(st == RECTIFY_OK);
    }
    fuzz_walk_model(m);
    rectify_session_options so = {.threads = 1, .batch = 1 + (flags & 1)};
    rectify_session *s = NULL;
    st = rectify_session_create(m, &so, &s, &err);
    FUZZ_CHECK(st == RECTIFY_OK);
    size_t n = rectify_model_input_size(m) * (size_t)so.batch;
    float *in = malloc(n * sizeof *in);
    for (size_t i = 0; i < n; i++) {
        float v = rng_float() * 4.0f;
        switch (pattern % 5) {
        case 0: break;
        case 1: v = 0.0f; break;                              /* all zero */
        case 2: if (rng() % 8) v = 0.0f; break;               /* sparse */
        case 3: v = fabsf(v) * 1e30f; break;                  /* huge */
        case 4: v = (pattern & 0x80) ? NAN : -INFINITY; break;/* not finite */
        }
        in[i] = v;
    }
    FUZZ_CHECK(fuzz_run(s, m, in, n) == RECTIFY_OK);
    /* A second run on the same input gives the same outputs, bit for bit. */
    int outputs = rectify_model_output_count(m);
    float *first[8] = {0};
    size_t sizes[8] = {0};
    for (int i = 0; i < outputs && i < 8; i++) {
        rectify_tensor t;
        FUZZ_CHECK(rectify_session_output(s, i, &t) == RECTIFY_OK);
        sizes[i] = (size_t)t.elements * sizeof(float);
        first[i] = malloc(sizes[i] ? sizes[i] : 1);
        memcpy(first[i], t.data, sizes[i]);
    }
    FUZZ_CHECK(fuzz_run(s, m, in, n) == RECTIFY_OK);
    for (int i = 0; i < outputs && i < 8; i++) {
        rectify_tensor t;
        FUZZ_CHECK(rectify_session_output(s, i, &t) == RECTIFY_OK);
        if (memcmp(first[i], t.data, sizes[i]) != 0) {
            fprintf(stderr, "fuzz_graph: output %d differs between two runs\n%.*s\n", i, (int)json.len, json.buf);
            abort();
        }
        free(first[i]);
    }
    free(in);
    rectify_session_destroy(s);
    rectify_model_destroy(m);
    free(json.buf);
    return 0;
}
