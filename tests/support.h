/* support.h: what the test suites share: a seeded RNG, an in-memory
   safetensors writer, loading a model from JSON text, and the plain
   reference operators (reference.c) the engine is checked against. */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rectify.h"

typedef struct rng { uint64_t s; } rng;
uint64_t rng_next(rng *r);
int rng_int(rng *r, int lo, int hi);            /* inclusive */
float rng_float(rng *r, float lo, float hi);
/* n uniform floats in [lo, hi), malloc'd (at least one). */
float *random_floats(rng *r, int64_t n, float lo, float hi);

typedef struct ttensor {
    const char *name;
    int rank;
    int64_t shape[4];
    const float *data;
} ttensor;

/* A safetensors file in memory (malloc'd). */
unsigned char *st_build(const ttensor *t, int n, size_t *size);
/* Loads json + tensors; returns NULL and fills err on failure. */
rectify_model *load_json(const char *json, const ttensor *t, int n, rectify_error *err);
/* Runs one sample (or a batch) and copies output 0 into out (malloc'd). */
float *run_model(const rectify_model *m, const float *in, int batch, int threads, int64_t *count);

/* Winograd layers of one block of 4 tiles, each over 16M multiply-adds, the
   size from which threads share a block's work (conv.c, RX_WINO_SHARE), by
   5-48%: in a batch of 3, one thread runs two samples while the other
   helps it; in a batch of 1 the filters are split between the threads. */
typedef struct shared_winograd_case { const char *variant; int cin, cout, side, batch; } shared_winograd_case;
#define SHARED_WINOGRAD_CASES 4
extern const shared_winograd_case shared_winograd_cases[SHARED_WINOGRAD_CASES];

/* Whether the engine runs vector kernels here (AVX-512, or AVX2 with FMA,
   as kernels/select.c chooses, and RECTIFY_ISA is not "generic"): the
   portable ones have no wide convolution path, so no fused ReLU. */
bool vector_kernels(void);

/* max |a - b| / max |b| */
double rel_error(const float *a, const double *b, int64_t n);

/* Plain references, double accumulation, NCHW, one sample. */
typedef struct ref_window { int kh, kw, sh, sw, pt, pl, pb, pr, dh, dw; } ref_window;
int ref_out_size(int in, int k, int s, int p0, int p1, int d, int ceil_mode);
void ref_conv(const float *x, int c, int h, int w, const float *weight, const float *bias, int cout,
              int groups, ref_window win, double *y, int oh, int ow);
void ref_maxpool(const float *x, int c, int h, int w, ref_window win, double *y, int oh, int ow);
void ref_avgpool(const float *x, int c, int h, int w, ref_window win, int include_pad, double *y, int oh,
                 int ow);
void ref_dense(const float *x, int n, const float *weight, const float *bias, int units, double *y);
void ref_softmax(const float *x, int c, int plane, double *y);

/* A model of one convolution on a cin x h x w input, written as a user
   would (its JSON into json), weights uniform in +-scale and bias in +-1
   from r, malloc'd into *weight and *b (the caller frees them; the bias is
   drawn always, and in the file when `bias`). NULL and err on failure. */
rectify_model *conv_model(rng *r, int cin, int cout, int h, int w, int groups, ref_window win, int bias, float scale,
                          float **weight, float **b, char *json, size_t json_size, rectify_error *err);

/* A model of one 3x3 convolution, padding 1, with bias, on a cin x side x
   side input, loaded as Winograd F(variant x variant) (RECTIFY_WINOGRAD
   "2" or "4" around the load), its weights uniform in +-0.1 and its bias in
   +-1 from r. Returns NULL and fills err on failure. The weights are
   malloc'd into *weight and *bias (the caller frees them), or freed here
   when those are NULL. */
rectify_model *winograd_conv(rng *r, const char *variant, int cin, int cout, int side, float **weight,
                             float **bias, rectify_error *err);

#endif
