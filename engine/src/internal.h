/* internal.h: the structures shared inside the library; nothing here is API. */
#ifndef RX_INTERNAL_H
#define RX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rectify.h"

#define RX_HIDDEN __attribute__((visibility("hidden")))

/* A per-sample shape: rank 1 (features) or 3 (C, H, W). */
typedef struct rx_shape {
    int rank;
    int64_t d[RECTIFY_MAX_RANK];
} rx_shape;

int64_t rx_shape_elements(const rx_shape *s);
/* Channels (C, or features for rank 1) and elements per channel. */
int64_t rx_shape_channels(const rx_shape *s);
int64_t rx_shape_plane(const rx_shape *s);
/* "6x28x28" into buf. */
void rx_shape_format(const rx_shape *s, char *buf, size_t size);

/* A sliding window: kernel, stride, padding (top, left, bottom, right),
   dilation. Shared by conv and the pools. */
typedef struct rx_window {
    int64_t kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
} rx_window;

/* Every op's parameters in one plain struct; each op reads its own fields. */
typedef struct rx_params {
    rx_window win;
    int64_t out_channels;  /* conv */
    int64_t groups;        /* conv */
    int64_t units;         /* dense */
    bool bias;             /* conv, dense */
    bool ceil_mode;        /* pools */
    bool count_include_pad;/* avgpool */
    float slope;           /* leaky_relu */
} rx_params;

struct rx_op;

typedef struct rx_layer {
    char name[RECTIFY_MAX_NAME + 1];
    const struct rx_op *op;
    int input_count;
    int inputs[RECTIFY_MAX_INPUTS]; /* layer indices; -1 is the model input */
    rx_shape out;
    rx_params p;
    int64_t macs, params;
    int tensor_first, tensor_count; /* its weight tensors in model->tensors */
    int buffer;                     /* activation buffer it writes */
    bool in_place;                  /* that buffer is its first input's */
    bool relu_fused;                /* the next layer is a ReLU, in place on this one's output, that this
                                       one's kernel applies (plan.c) */
    bool relu_in;                   /* the layer before is a ReLU that this one's kernel runs on its input,
                                       the ReLU's output never written (plan.c) */
    float *packed;                  /* weights repacked by op->prepare, or in a packed file */
    void *packed_block;             /* the allocation holding them (NULL: in the packed file) */
    float sparse_from;              /* dense: input sparsity from which zeros are skipped (> 1: never) */
    int winograd;                   /* conv: Winograd F(t x t, 3x3) with tile t (2 or 4); 0: direct */
    int json_index;                 /* position in model.json's "layers" */
} rx_layer;

/* A weight tensor the graph needs, and once bound, its data. */
typedef struct rx_tensor {
    char name[RECTIFY_MAX_NAME + 16];
    int layer;
    rx_shape shape;   /* rank up to 4; rank 4 uses d[0..3] */
    int64_t elements, fan_in, fan_out;
    bool is_bias;
    const float *data;
} rx_tensor;

/* Error context while loading: where we are, for messages. */
typedef struct rx_ctx {
    rectify_error *err;
    const char *file;    /* "model.json", "weights.safetensors", ... */
    const char *layer;   /* current layer name or NULL ("" before it has a name) */
    int layer_index;
    const char *section; /* "input", "input.preprocess", ... outside layers, or NULL */
} rx_ctx;

/* Fills err (if not NULL) and returns status. printf-style. */
rectify_status rx_fail(rectify_error *err, rectify_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, prefixed with the context's file and layer. */
rectify_status rx_cfail(rx_ctx *c, rectify_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rx_ok(rectify_error *err);

/* Checked size arithmetic: false on overflow. */
bool rx_mul_overflow(int64_t a, int64_t b, int64_t *out);

/* Reads a whole file (at most `limit` bytes) into a NUL-terminated buffer. */
rectify_status rx_read_file(const char *path, size_t limit, char **data, size_t *size,
                            rectify_error *err);

#define RX_PAGE_BYTES 4096

/* A file mapped (or read) into memory. */
typedef struct rx_blob {
    const unsigned char *data;
    size_t size;
    bool mapped;
    void *block;        /* not mapped: the allocation holding data (rx_malloc_aligned) */
    uint64_t dev, ino;  /* mapped: the file, so that nothing overwrites it from under us */
} rx_blob;
rectify_status rx_map_file(const char *path, rx_blob *blob, rectify_error *err);
void rx_unmap(const rectify_allocator *a, rx_blob *blob);
/* Gives back the memory of the whole pages of a mapped file inside
   [p, p + bytes): weights an operator repacked at load and does not read
   again. They leave the resident set; read again, they would fault back in
   from the file. Nothing when p is not in the mapping (weights copied or
   widened into memory). */
void rx_release_mapped(const rx_blob *blob, const void *p, size_t bytes);

typedef struct preprocess {
    int color;          /* 0 gray, 1 rgb, 2 bgr */
    int64_t resize_h, resize_w; /* 0: no resize */
    int64_t crop_h, crop_w;     /* 0: no crop */
    double scale;
    float mean[4], std[4];
} rx_preprocess;

/* alloc.c: every allocation the model and its sessions keep goes through
   the caller's allocator (rectify_load_options.allocator). */
void *rx_malloc(const rectify_allocator *a, size_t size);
void *rx_calloc(const rectify_allocator *a, size_t count, size_t size); /* zeroed, overflow-checked */
void *rx_grow(const rectify_allocator *a, void *p, size_t old_size, size_t new_size);
void rx_free(const rectify_allocator *a, void *p);
void *rx_malloc_aligned(const rectify_allocator *a, size_t size); /* 64-byte aligned */
void rx_free_aligned(const rectify_allocator *a, void *p);
/* The bytes rx_malloc (aligned: rx_malloc_aligned) asks the allocator for
   `size` bytes: what rectify_session_bytes reports. */
size_t rx_request_bytes(size_t size, bool aligned);

struct rectify_model {
    rectify_allocator allocator;
    char name[RECTIFY_MAX_NAME + 1];
    char input_name[RECTIFY_MAX_NAME + 1];
    rx_shape input;
    rx_preprocess pre;
    int layer_count;
    rx_layer *layers;      /* execution order */
    int output_count;
    int *outputs;          /* layer indices */
    int tensor_count, tensor_capacity;
    rx_tensor *tensors;
    /* plan */
    int buffer_count;
    int64_t *buffer_elements; /* per sample */
    int input_buffer;
    int64_t unplanned_elements;
    int64_t max_scratch;      /* floats per thread */
    /* weights */
    bool graph_only;
    bool allow_nonfinite;      /* loaded with rectify_load_options.allow_nonfinite */
    rx_blob weights;           /* the safetensors or packed file */
    float *owned;              /* widened or realigned tensors */
    int64_t weight_bytes;
    int64_t held_bytes;        /* all it holds through its allocator */
    /* labels */
    int label_count;
    char **labels;
    char *label_text;
};

/* json.c: strict, typed access to cJSON values. */
rectify_status rx_json_parse(rx_ctx *c, const char *text, size_t size, cJSON **out);
rectify_status rx_json_check_keys(rx_ctx *c, const cJSON *obj, const char *what,
                                  const char *const *allowed);
const cJSON *rx_json_get(const cJSON *obj, const char *key);
rectify_status rx_json_int(rx_ctx *c, const cJSON *obj, const char *key, bool required,
                           int64_t def, int64_t min, int64_t max, int64_t *out);
rectify_status rx_json_bool(rx_ctx *c, const cJSON *obj, const char *key, bool def, bool *out);
rectify_status rx_json_number(rx_ctx *c, const cJSON *obj, const char *key, double def,
                              double *out);
rectify_status rx_json_string(rx_ctx *c, const cJSON *obj, const char *key, bool required,
                              const char *def, size_t max_len, const char **out);
/* An int or an array of n ints in [min, max]: an int fills all n. */
rectify_status rx_json_ints(rx_ctx *c, const cJSON *obj, const char *key, bool required,
                            int64_t def, int64_t min, int64_t max, const int *accepted_lengths,
                            int64_t *out, int *length);

/* ops/window.c: the window fields shared by conv and pools. */
rectify_status rx_parse_window(rx_ctx *c, const cJSON *j, rx_window *w, bool stride_defaults_to_kernel);
/* Output size of a window along one axis, PyTorch's rule; <1 means invalid. */
int64_t rx_window_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d, bool ceil_mode);

/* Weight tensors: declared by an op's infer. */
rectify_status rx_declare_tensor(rx_ctx *c, rectify_model *m, rx_layer *l, const char *suffix,
                                 const rx_shape *shape, int64_t fan_in, int64_t fan_out,
                                 bool is_bias);
static inline const float *rx_weight(const rectify_model *m, const rx_layer *l, int i)
{
    return i < l->tensor_count ? m->tensors[l->tensor_first + i].data : NULL;
}

/* weights.c */
rectify_status rx_bind_weights(rectify_model *m, const char *file_label, rectify_error *err);
/* INVALID when a bound tensor holds NaN or infinity (rectify_load_options.allow_nonfinite). */
rectify_status rx_check_finite(const rectify_model *m, const char *file_label, rectify_error *err);

/* packed.c: weights packed once, saved, and mapped at the next load. */
bool rx_is_packed(const void *data, size_t size);
/* Binds m->weights, a packed file: every layer's packed weights and the
   tensors read as bound point into it (non-finite ones only with
   m->allow_nonfinite). */
rectify_status rx_bind_packed(rectify_model *m, const char *file, rectify_error *err);

/* plan.c */
rectify_status rx_plan(rectify_model *m, rectify_error *err);
/* Marks the layers that run the ReLU after them (rx_layer.relu_fused)
   or before them (rx_layer.relu_in), once their kernels are chosen (after prepare or a packed file). */
void rx_plan_fusion(rectify_model *m);

/* image.c needs nothing shared. */

/* Parallel loops that enter no OpenMP parallel region when they run on one
   thread: libgomp makes a futex system call for every region it starts,
   even of one thread (an `if` clause that is false included), about 1 us
   here, where a LeNet-5 layer takes 2 to 20 us. The body is plain code (no
   #pragma inside: a macro argument cannot hold one).
   RX_PARALLEL_FOR: for (int64_t i = 0; i < count; i++) body, static schedule.
   RX_PARALLEL_FOR_SIMD: the same, vectorised (omp simd) in each thread.
   RX_PARALLEL: the body once per thread of the team, tid its place and nt
   the team's size (which OpenMP may make smaller than asked for: a thread
   limit, dynamic teams, a region nested in the caller's). Not
   omp_get_thread_num(): on one thread, with no region of its own, that is
   the caller's place in a region of the caller's (a session run inside
   the user's `omp parallel` then did only part of its ReLUs). */
#define RX_PARALLEL_FOR(threads, i, count, ...)                                     \
    do {                                                                            \
        const int rx_threads_ = (threads);                                          \
        const int64_t rx_count_ = (count);                                          \
        if (rx_threads_ > 1) {                                                      \
            _Pragma("omp parallel for num_threads(rx_threads_) schedule(static)")  \
            for (int64_t i = 0; i < rx_count_; i++) { __VA_ARGS__ }                \
        } else {                                                                    \
            for (int64_t i = 0; i < rx_count_; i++) { __VA_ARGS__ }                \
        }                                                                           \
    } while (0)

#define RX_PARALLEL_FOR_SIMD(threads, i, count, ...)                                     \
    do {                                                                                 \
        const int rx_threads_ = (threads);                                               \
        const int64_t rx_count_ = (count);                                               \
        if (rx_threads_ > 1) {                                                           \
            _Pragma("omp parallel for simd num_threads(rx_threads_) schedule(static)")  \
            for (int64_t i = 0; i < rx_count_; i++) { __VA_ARGS__ }                     \
        } else {                                                                         \
            _Pragma("omp simd")                                                          \
            for (int64_t i = 0; i < rx_count_; i++) { __VA_ARGS__ }                     \
        }                                                                                \
    } while (0)

#define RX_PARALLEL(threads, tid, nt, ...)                                  \
    do {                                                                    \
        const int rx_threads_ = (threads);                                  \
        if (rx_threads_ > 1) {                                              \
            _Pragma("omp parallel num_threads(rx_threads_)")               \
            {                                                               \
                const int tid = omp_get_thread_num(), nt = omp_get_num_threads(); \
                (void)tid, (void)nt;                                        \
                __VA_ARGS__                                                 \
            }                                                               \
        } else {                                                            \
            const int tid = 0, nt = 1;                                      \
            (void)tid, (void)nt;                                            \
            __VA_ARGS__                                                     \
        }                                                                   \
    } while (0)

#endif
