/*
 * rectify.h: the whole public API of rectify, a small convolutional-network
 * inference engine that reports how sparse every layer's output is.
 *
 * A worked example (error handling shortened; every call below that returns
 * a rectify_status can fail and then fills `err`):
 *
 *     rectify_error err;
 *     rectify_model *model;
 *     if (rectify_model_load("models/lenet5-mnist", NULL, &model, &err))
 *         { fprintf(stderr, "%s\n", err.message); return 1; }
 *     rectify_session *session;
 *     rectify_session_create(model, NULL, &session, &err);
 *     size_t n = rectify_model_input_size(model);      // floats per image
 *     float *input = malloc(n * sizeof *input);
 *     rectify_image_load(model, "seven.png", input, n, &err);
 *     rectify_session_run(session, input, n, &err);
 *     rectify_tensor out;
 *     rectify_session_output(session, 0, &out);         // out.data: 10 probs
 *     rectify_layer_stats st;
 *     rectify_session_layer_stats(session, 1, &st);     // zeros after relu1
 *     free(input);
 *     rectify_session_destroy(session);
 *     rectify_model_destroy(model);
 *
 * Principles.
 * - A model is immutable once loaded; many threads may share it. A session
 *   owns the activation memory of one run at a time: use one per thread.
 * - Every fallible call returns a rectify_status and, when `err` is not NULL,
 *   writes a message into it naming the file, layer and field at fault.
 *   The library never prints, never exits, never aborts on bad input.
 * - Whoever creates a handle destroys it; the destroy calls accept NULL.
 *   Pointers returned by getters belong to the handle and live as long as it.
 * - Tensors are NCHW float32. Shapes reported by the model leave out the
 *   batch dimension; a session runs `batch` samples at once.
 * - Threads: every call that takes a `const rectify_model *` (and the image
 *   calls) may run on any number of threads at once. A session is used by
 *   one thread at a time; different sessions run in parallel freely, even on
 *   one model. rectify keeps no global mutable state.
 * - Getters (calls that return a fact rather than a status) take a valid
 *   handle, never fail and never allocate. The destroy, set and reset calls
 *   ignore a NULL handle. Calls returning a rectify_status without an `err`
 *   parameter report only the status (ARGUMENT for a NULL pointer, a bad
 *   index or name).
 *
 * Building against it: `pkg-config --cflags --libs rectify` once installed,
 * or `dependency('rectify')` in meson (as a subproject too; see README.md).
 */
#ifndef RECTIFY_H
#define RECTIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(RECTIFY_BUILD_SHARED)
#  define RECTIFY_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define RECTIFY_API __attribute__((visibility("default")))
#else
#  define RECTIFY_API
#endif

#define RECTIFY_VERSION_MAJOR 0
#define RECTIFY_VERSION_MINOR 1
#define RECTIFY_VERSION_PATCH 0
#define RECTIFY_VERSION_STRING "0.1.0"

/* The run-time version, "MAJOR.MINOR.PATCH": the library's, which may differ
   from the header's macros above if the program was built against another.
   A static string; never NULL. */
RECTIFY_API const char *rectify_version(void);

/* ---- Limits. Checked before any allocation; exceeding one is an error. ---- */

#define RECTIFY_MAX_JSON_BYTES    (16u << 20) /* model.json size */
#define RECTIFY_MAX_JSON_DEPTH    32          /* nesting of model.json */
#define RECTIFY_MAX_LAYERS        4096
#define RECTIFY_MAX_INPUTS        8           /* inputs of one layer */
#define RECTIFY_MAX_NAME          128         /* bytes in a layer name */
#define RECTIFY_MAX_DIM           (1 << 20)   /* any one dimension */
#define RECTIFY_MAX_ELEMENTS      (1ull << 31)/* elements in one tensor */
#define RECTIFY_MAX_HEADER_BYTES  (100u << 20)/* safetensors JSON header */
#define RECTIFY_MAX_IMAGE_SIDE    16384       /* image width or height */
#define RECTIFY_MAX_IMAGE_PIXELS  (64u << 20) /* image width x height */
#define RECTIFY_MAX_BATCH         4096
/* Activation memory of one session: every activation buffer for its batch
   plus per-thread scratch. Checked at load for one sample on one thread (a
   model that loads can run) and at session creation for its batch and
   threads. */
#define RECTIFY_MAX_ACTIVATION_BYTES (1ull << 34) /* 16 GiB */

/* ---- Errors. ---- */

typedef enum rectify_status {
    RECTIFY_OK = 0,
    RECTIFY_ERR_IO,        /* a file is missing or cannot be read/written */
    RECTIFY_ERR_PARSE,     /* not valid JSON, safetensors, or image data */
    RECTIFY_ERR_INVALID,   /* well-formed but wrong: field, op, shape, tensor */
    RECTIFY_ERR_LIMIT,     /* larger than one of the limits above */
    RECTIFY_ERR_NOMEM,     /* an allocation failed */
    RECTIFY_ERR_ARGUMENT,  /* the caller passed a bad argument (API misuse) */
} rectify_status;

typedef struct rectify_error {
    rectify_status status;
    char message[512];     /* NUL-terminated; "" when status is RECTIFY_OK */
} rectify_error;

/* A short constant name for a status, e.g. "invalid"; "unknown" for a value
   outside the enum. A static string; never NULL. */
RECTIFY_API const char *rectify_status_name(rectify_status status);

/* ---- Memory. ---- */

/* An allocator for everything a model and its sessions keep: the model,
   its widened weights, activation buffers, statistics. alloc returns memory
   aligned for any type (as malloc does) or NULL; free accepts NULL. Memory
   used only during a call (JSON parsing, image decoding) comes from malloc.
   The hook must be thread-safe when sessions are made on several threads. */
typedef struct rectify_allocator {
    void *(*alloc)(void *user, size_t size);
    void (*free)(void *user, void *ptr);
    void *user;
} rectify_allocator;

/* ---- Models. ---- */

typedef struct rectify_model rectify_model;

typedef struct rectify_load_options {
    /* The allocator for the model and its sessions; NULL: malloc and free. */
    const rectify_allocator *allocator;
    /* Load the graph only, without weights: enough for summaries and for
       writing initial weights. Such a model cannot create sessions. */
    int graph_only;
    /* Path of the weights file, overriding model.json's "weights". */
    const char *weights_path;
    /* Accept weight tensors holding NaN or infinity. By default such a
       tensor fails the load (INVALID), the message naming the first such
       tensor and how many of its values are not finite. A packed weights
       file is not scanned: it says whether the weights it was written from
       held any (rectify_model_save_packed). */
    int allow_nonfinite;
} rectify_load_options;

/* Loads a model from a folder holding model.json, or from the path of a
   .json file; weights and labels are found beside it. `options` may be NULL.
   The model.json is validated completely and every weight tensor checked
   against the shape its layer needs. The weights file is mapped, not read;
   convolution and dense weights are then packed once into the layouts their
   kernels read (Winograd-transformed for 3x3 convolutions) and their pages
   of the file given back, so that a model holds about its weights' size
   (VGG-16: 586 MiB packed for a 528 MiB file). Loading takes longer than a
   plain map: VGG-16 0.4 to 2.6 s here, most of it page faults. A packed
   weights file (rectify_model_save_packed) loads without that work: the
   weights file may be either; a packed one is recognised by its first
   bytes, mapped, and its pages read by the first run.
   On success *model is the caller's, to be freed with rectify_model_destroy.
   On failure *model is NULL and nothing is left allocated. Errors: IO (a
   file is missing or unreadable), PARSE (bad JSON or safetensors), INVALID,
   LIMIT, NOMEM, ARGUMENT (NULL path or model, an allocator without both
   functions). */
RECTIFY_API rectify_status rectify_model_load(const char *path,
                                              const rectify_load_options *options,
                                              rectify_model **model,
                                              rectify_error *err);

/* The same from memory: the JSON text (`json_size` bytes, not counting any
   terminating NUL, which is not needed) and the bytes of a safetensors file
   (or of a packed one: rectify_model_save_packed). Both may be freed once this
   returns: the weights are copied (through the allocator). Labels come from
   `labels_text` (NUL-terminated, one per line, may be NULL). `weights` may be
   NULL with options->graph_only set. A "weights" or "labels" field in the
   JSON is ignored: there is no folder to find them in. Errors as above,
   without IO. */
RECTIFY_API rectify_status rectify_model_load_memory(const char *json, size_t json_size,
                                                     const void *weights, size_t weights_size,
                                                     const char *labels_text,
                                                     const rectify_load_options *options,
                                                     rectify_model **model,
                                                     rectify_error *err);

/* Writes the model's weights as its kernels read them, packed for this
   CPU, to `path` (written beside it, then renamed over it). Given as the
   weights file of the same model.json (options->weights_path, or the
   model's "weights"), such a file loads in about the time of a map: nothing
   is repacked, transformed or checked, and the first run reads the pages.
   Its size is the model's packed weights (VGG-16: 586 MiB). It holds the
   tensors' names and shapes (a file packed for another model is refused);
   a file packed on another CPU whose Winograd layers' filters are blocked
   differently is refused, saying so (pack again there); a file packed from
   weights holding NaN or infinity needs allow_nonfinite to load. It has no
   checksum: a damaged file loads as long as its table is consistent.
   Errors: ARGUMENT (NULL), INVALID (a graph-only model, or `path` is the
   weights file the model was loaded from), IO, NOMEM. */
RECTIFY_API rectify_status rectify_model_save_packed(const rectify_model *model, const char *path,
                                                     rectify_error *err);

/* Frees the model and all it holds; NULL is a no-op. Destroy its sessions
   first, and only once no other thread uses it. */
RECTIFY_API void rectify_model_destroy(rectify_model *model);

/* The "name" field; never NULL; owned by the model. */
RECTIFY_API const char *rectify_model_name(const rectify_model *model);

/* Number of floats in one input sample (C x H x W of "input"). */
RECTIFY_API size_t rectify_model_input_size(const rectify_model *model);

/* Number of class labels (0 without labels.txt) and label i (NULL if out of
   range); the label is owned by the model. Label i names output value i. */
RECTIFY_API int rectify_model_label_count(const rectify_model *model);
RECTIFY_API const char *rectify_model_label(const rectify_model *model, int i);

/* ---- Layers: the graph as it will run, in execution order. ---- */

#define RECTIFY_MAX_RANK 4

typedef struct rectify_layer_info {
    const char *name;       /* as in model.json */
    const char *op;         /* "conv", "relu", ... */
    int rank;               /* rank of the output, without the batch: 1 or 3 */
    int64_t shape[RECTIFY_MAX_RANK]; /* output shape, without the batch */
    int64_t elements;       /* product of shape */
    int64_t params;         /* weights and biases */
    int64_t macs;           /* multiply-accumulates per sample */
    int in_place;           /* writes into its input's buffer */
    int buffer;             /* index of the activation buffer it writes */
    int input_count;
    int inputs[RECTIFY_MAX_INPUTS]; /* layer indices; -1 is the model input */
    int fused_into;         /* -1, or the layer whose kernel runs this one too,
                               its zeros counted there:
                               - a ReLU, in place, right after a stride-1
                                 convolution with little work per output row
                                 (small images, few filters, such as LeNet-5's;
                                 not Winograd layers), run on its outputs
                                 while they are in cache (with the vector
                                 kernels only: none with RECTIFY_ISA=generic
                                 or on a CPU without AVX2);
                               - else a ReLU, in place, whose output only the
                                 next layer reads, a max pool with 2x2 windows
                                 of stride 2 that tile its input (even sides,
                                 no padding), such as the VGGs': the pool
                                 reads max(x, 0) as it reads x, and the ReLU's
                                 output is never written
                                 (rectify_session_layer_output refuses it).
                               The ReLU then reports 0 seconds: its time is
                               that layer's. Fixed when the model loads; never
                               with RECTIFY_FUSE=0, -1 in a graph-only model.
                               A session with an observer runs and times the
                               ReLU on its own all the same (the observer sees
                               every layer's output). */
} rectify_layer_info;

/* Number of layers; layer i's facts (status ARGUMENT when i is out of range).
   The strings in *info are owned by the model. */
RECTIFY_API int rectify_model_layer_count(const rectify_model *model);
RECTIFY_API rectify_status rectify_model_layer(const rectify_model *model, int i,
                                               rectify_layer_info *info);
/* Index of the layer with that name, or -1. */
RECTIFY_API int rectify_model_find_layer(const rectify_model *model, const char *name);

/* The sliding window of a conv, maxpool or avgpool layer, as model.json gave
   it with defaults filled in: enough to tell which inputs feed which outputs
   (e.g. to count the multiplications that meet a zero input). Padding is
   top, left, bottom, right; groups is 1 for pools. ARGUMENT for other ops. */
typedef struct rectify_window {
    int64_t kernel[2], stride[2], padding[4], dilation[2], groups;
} rectify_window;
RECTIFY_API rectify_status rectify_model_layer_window(const rectify_model *model, int layer,
                                                      rectify_window *window);

/* The input shape (without batch), rank 3. */
RECTIFY_API void rectify_model_input_shape(const rectify_model *model, int64_t shape[3]);

/* Number of outputs (the "outputs" list) and the layer index of output i
   (-1 when i is out of range). */
RECTIFY_API int rectify_model_output_count(const rectify_model *model);
RECTIFY_API int rectify_model_output_layer(const rectify_model *model, int i);

typedef struct rectify_memory_info {
    int64_t planned_bytes;   /* activation memory with buffers reused, per sample */
    int64_t unplanned_bytes; /* the sum of every layer's output, per sample */
    int buffers;             /* activation buffers after planning */
    int64_t weight_bytes;    /* the weight tensors as float32 (packed, Winograd
                                layers' take more: in model_bytes, or in the
                                mapped file) */
    int64_t model_bytes;     /* all the model holds through its allocator: the
                                graph, copied, widened and packed weights,
                                labels (a mapped weights file is not counted) */
} rectify_memory_info;

/* The model's memory needs, for planning: a session of batch B needs about
   B x planned_bytes for activations (rectify_session_bytes tells exactly). */
RECTIFY_API void rectify_model_memory(const rectify_model *model, rectify_memory_info *info);

/* The weight tensors the graph needs, in layer order: names like
   "conv1.weight", their shapes, and fan_in (inputs feeding one output,
   e.g. in/groups*kh*kw) for initialisation. Works on graph-only models. */
typedef struct rectify_tensor_info {
    const char *name;
    int rank;
    int64_t shape[RECTIFY_MAX_RANK];
    int64_t elements;
    int64_t fan_in;
    int64_t fan_out;
    int is_bias;
} rectify_tensor_info;

/* Number of such tensors; tensor i's facts (ARGUMENT when i is out of range;
   the name is owned by the model). */
RECTIFY_API int rectify_model_tensor_count(const rectify_model *model);
RECTIFY_API rectify_status rectify_model_tensor(const rectify_model *model, int i,
                                                rectify_tensor_info *info);

/* ---- Images: decode (PNG, JPEG) and preprocess as model.json says. ---- */

/* Decodes the image at `path`, applies the model's "preprocess" (color,
   resize, center crop, scale, mean, std) and writes one NCHW sample of
   rectify_model_input_size() floats into `out` (capacity `count` floats;
   for a batch, call once per sample at out + i * input_size). The caller
   owns `out`; temporary memory comes from malloc. Errors: IO, PARSE (not a
   PNG or JPEG, or damaged), LIMIT (image too large), INVALID (the model's
   input is not 1 or 3 channels, or the image is smaller than the crop),
   ARGUMENT (NULL pointers, `count` too small), NOMEM. */
RECTIFY_API rectify_status rectify_image_load(const rectify_model *model, const char *path,
                                              float *out, size_t count, rectify_error *err);

/* The same from the encoded bytes of a PNG or JPEG file in memory (only
   read, and not kept). Errors as above, without IO. */
RECTIFY_API rectify_status rectify_image_load_memory(const rectify_model *model,
                                                     const void *bytes, size_t size,
                                                     float *out, size_t count,
                                                     rectify_error *err);

/* The same from decoded 8-bit pixels, row-major from the top: `channels` is
   1 (gray), 3 (RGB) or 4 (RGBA, alpha ignored); `stride` is bytes per row
   (0: width*channels). Only read, and not kept. Errors: ARGUMENT (channels,
   stride, NULL pointers), LIMIT, INVALID, NOMEM. */
RECTIFY_API rectify_status rectify_image_from_pixels(const rectify_model *model,
                                                     const unsigned char *pixels,
                                                     int width, int height, int channels,
                                                     size_t stride, float *out, size_t count,
                                                     rectify_error *err);

/* ---- Sessions: running the model. ---- */

typedef struct rectify_session rectify_session;

typedef struct rectify_session_options {
    int threads;   /* OpenMP threads for this session's runs; 0: all cores */
    int batch;     /* samples per run; 0 means 1 */
} rectify_session_options;

/* Creates a session with activation memory for `batch` samples, allocated
   here through the model's allocator, so runs allocate only when they use
   more threads than before (per-thread scratch). `options` may be NULL.
   The model must outlive the session. On success *session is the caller's,
   to be freed with rectify_session_destroy; on failure it is NULL. Errors:
   INVALID (a graph-only model), ARGUMENT (NULL pointers, threads < 0, batch
   outside 0..RECTIFY_MAX_BATCH), LIMIT (the activations of `batch` samples
   and scratch for `threads` threads exceed RECTIFY_MAX_ACTIVATION_BYTES),
   NOMEM. */
RECTIFY_API rectify_status rectify_session_create(const rectify_model *model,
                                                  const rectify_session_options *options,
                                                  rectify_session **session,
                                                  rectify_error *err);
/* Frees the session and all it holds; NULL is a no-op. */
RECTIFY_API void rectify_session_destroy(rectify_session *session);

/* OpenMP threads for the next runs; 0 or less: all cores. Sessions may be
   run from inside the caller's own OpenMP parallel region (a session per
   OpenMP thread): their regions then nest, and OpenMP gives each a team of
   one unless nested parallelism is on (OMP_MAX_ACTIVE_LEVELS); the outputs
   are the same whatever team a run gets. */
RECTIFY_API void rectify_session_set_threads(rectify_session *session, int threads);

/* The bytes the session holds through the allocator now: activations,
   per-thread scratch, statistics and the session itself. It grows only when
   a run uses more threads than any before. 0 for NULL. */
RECTIFY_API size_t rectify_session_bytes(const rectify_session *session);

/* Runs the model on `count` floats: batch x input_size, NCHW (sample i at
   input + i * input_size). The input is copied, not kept. Counts the zeros
   of every layer's output into the session's statistics. Views from the
   previous run become invalid. Errors: ARGUMENT (NULL pointers, `count` is
   not batch x input_size, the observer stopped the run), NOMEM (scratch for
   more threads). A run the observer stopped leaves no outputs until the
   next successful run; its statistics count the layers up to the one the
   observer stopped it after. */
RECTIFY_API rectify_status rectify_session_run(rectify_session *session,
                                               const float *input, size_t count,
                                               rectify_error *err);

/* A read-only view of a tensor inside the session: valid until the next run
   or until the session is destroyed. The shape includes the batch first. */
typedef struct rectify_tensor {
    const float *data;
    int rank;
    int64_t shape[RECTIFY_MAX_RANK + 1];
    int64_t elements;
} rectify_tensor;

/* Output i of the last successful run (see rectify_model_output_count).
   ARGUMENT when i is out of range or nothing ran yet. */
RECTIFY_API rectify_status rectify_session_output(const rectify_session *session, int i,
                                                  rectify_tensor *out);

/* The output of any layer after the last run, when it is still in memory:
   model outputs always are; other layers only while their buffer was not
   reused, and not a ReLU that the max pool after it runs
   (rectify_layer_info.fused_into: its output is never written; refused even
   after a run with an observer, where it did run on its own). Use the
   observer below to see every layer. ARGUMENT when the index is out of
   range, the output was overwritten or is not kept, or nothing ran yet. */
RECTIFY_API rectify_status rectify_session_layer_output(const rectify_session *session,
                                                        int layer, rectify_tensor *out);

/* The same by layer name (as in model.json), e.g. "prob" or "fc1": ARGUMENT
   also for an unknown name. */
RECTIFY_API rectify_status rectify_session_output_by_name(const rectify_session *session,
                                                          const char *name, rectify_tensor *out);

/* Called after each layer has run with its output, before the buffer can be
   reused; on the thread that called rectify_session_run. The view is valid
   only during the call. Return non-zero to stop the run (it then fails with
   ARGUMENT). NULL removes the observer. */
typedef int (*rectify_observer)(void *user, int layer, const rectify_tensor *output);
RECTIFY_API void rectify_session_set_observer(rectify_session *session,
                                              rectify_observer observer, void *user);

/* ---- Statistics: exact zeros in every layer's output. ---- */

typedef struct rectify_layer_stats {
    /* the last run (all samples of its batch) */
    int64_t elements;
    int64_t zeros;
    double seconds;          /* the layer's run and the counting of its zeros
                                in the last run with layer times on
                                (rectify_session_set_layer_times; 0 before
                                any), 0 for a layer run inside another:
                                see rectify_layer_info.fused_into */
    /* accumulated over runs since the last reset */
    int64_t total_elements;
    int64_t total_zeros;
    double total_seconds;
    int64_t runs;
    int64_t samples;
    /* per sample sparsity (zeros / elements) across the samples seen */
    double min_sparsity, max_sparsity, sum_sparsity, sum_sparsity_sq;
} rectify_layer_stats;

/* Statistics on (the default: every run counts every layer's zeros) or off
   (runs count nothing; what earlier runs recorded stays). A change made
   during a run (from an observer) takes effect at the next run. Off is for
   measuring what they cost: bench_rectify --stats-cost alternates runs
   with and without them. */
RECTIFY_API void rectify_session_set_statistics(rectify_session *session, int enabled);

/* Layer times on (each run times every layer: rectify_layer_stats.seconds
   and total_seconds) or off (the default: runs time nothing; what earlier
   runs recorded stays). Apart from the statistics: a time-stamp read per
   layer and their sums cost LeNet-5 0.7-1.2% of a run, as much as
   counting its zeros in its pools. Takes effect at the next run. */
RECTIFY_API void rectify_session_set_layer_times(rectify_session *session, int enabled);

/* Layer `layer`'s statistics, copied into *stats (all zeros before any run).
   ARGUMENT when the index is out of range. */
RECTIFY_API rectify_status rectify_session_layer_stats(const rectify_session *session, int layer,
                                                       rectify_layer_stats *stats);

/* Channels of a layer's output (C for rank 3, features for rank 1) and the
   zeros counted per channel since the last reset, written to zeros[0..n).
   The count is 0 and the copy fails (ARGUMENT) for a bad index; the copy
   also fails when n is less than the channels. */
RECTIFY_API int64_t rectify_session_channel_count(const rectify_session *session, int layer);
RECTIFY_API rectify_status rectify_session_channel_zeros(const rectify_session *session, int layer,
                                                         int64_t *zeros, int64_t n);

/* Clears the accumulated statistics (totals, runs, samples, per-sample
   sparsity range, per-channel zeros) and the last run's. */
RECTIFY_API void rectify_session_reset_stats(rectify_session *session);

#ifdef __cplusplus
}
#endif
#endif /* RECTIFY_H */
