/* session.c: activation memory for one run at a time, the run loop, and the
   statistics: exact zeros per layer, per channel and per sample, counted
   right after each layer's kernel while its output is still in cache, or by
   the kernel itself: a ReLU counts its output and its input (the layer
   before it) as it goes, unless they hold one float per channel. The
   counts are added into the totals once the run is over, every layer in
   one pass (or, past RX_RUN_COUNTS, as soon as each layer is counted);
   layers of one float per channel (dense units) are counted straight into
   their totals (counts_units). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#  include <x86intrin.h>
#else
#  include <time.h>
#endif

#include "internal.h"
#include "kernels/kernels.h"
#include "ops/op.h"

/* A cheap, steady count for the layers' times: the time-stamp counter on
   x86 (constant rate on every CPU since 2008's), the monotonic clock's
   nanoseconds elsewhere. */
static inline uint64_t rx_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
#endif
}

/* The ticks from t0 to t1; 0 if they go backwards (time-stamp counters of
   two CPUs out of step, and the thread moved between them). */
static inline uint64_t rx_ticks_since(uint64_t t0, uint64_t t1)
{
    return t1 > t0 ? t1 - t0 : 0;
}

/* A run's zero counts for every layer at once while they take at most
   this many (512 KiB): their totals are then updated after the run, all
   layers in one pass, not between the kernels, where they are cold (the
   CIFAR VGG's statistics cost 1.3-1.7% of a run instead of 2.1-3.0%,
   LeNet-5's 5.0-5.2% instead of 5.7-6.4%). Beyond, two layers' at a time,
   each recorded once counted: a deep dense net at batch 4096 would
   otherwise hold a gigabyte of counts. */
#define RX_RUN_COUNTS (1 << 16)
/* Each layer's totals and counts start on a cache line (8 counts; so do
   the second layer's counts when two are kept at a time), and a layer's
   sizes are kept with its totals: recording LeNet-5's 13 layers (894
   counts, most of them its dense layers' units) took 0.32 us, a thousand
   times in a run 0.16-0.23 us each (the units are now counted into their
   totals directly: counts_units, though their space in run_counts is still
   kept and counted towards RX_RUN_COUNTS, as is the padding). */
#define RX_PAD8(c) (((c) + 7) & ~(int64_t)7)

/* A layer's statistics as a run records them: integers, turned into the
   per-sample sparsities of rectify_layer_stats when they are read. */
typedef struct layer_totals {
    int64_t channels, elements; /* of the layer's output, per sample */
    rectify_layer_stats s;  /* all but the per-sample sparsities */
    int64_t min_zeros, max_zeros; /* of one sample */
    double sum_zeros_sq;    /* over samples */
    int64_t *channel_zeros; /* per channel, accumulated */
} layer_totals;

struct rectify_session {
    const rectify_model *model;
    int threads, batch, scratch_threads;
    float *arena;              /* every activation buffer */
    float **buffers;
    float *scratch;
    int64_t *run_counts;       /* this run's zeros per layer, sample and channel */
    int64_t *counts_at;        /* layer i's in run_counts */
    bool counts_all;           /* every layer's at once (else two layers' at a time) */
    uint64_t *ticks;           /* this run's per layer, rx_ticks */
    double clock_at;           /* omp_get_wtime() at clock_ticks, the first run's start */
    uint64_t clock_ticks, read_ticks; /* ticks then (0: not yet) and at the last clock read */
    double per_tick;           /* seconds per tick (0: not known yet) */
    int64_t *channel_arena;    /* the totals per layer and channel, in the same order */
    layer_totals *stats;
    rectify_observer observer;
    void *observer_user;
    bool no_stats;             /* rectify_session_set_statistics(s, 0) */
    bool layer_times;          /* rectify_session_set_layer_times(s, 1) */
    bool ran;
    size_t bytes;              /* held through the allocator */
};

void rectify_session_destroy(rectify_session *s)
{
    if (!s) return;
    const rectify_allocator *a = &s->model->allocator;
    rx_free_aligned(a, s->arena);
    rx_free(a, s->buffers);
    rx_free_aligned(a, s->scratch);
    rx_free_aligned(a, s->run_counts);
    rx_free(a, s->ticks);
    rx_free(a, s->counts_at);
    rx_free_aligned(a, s->channel_arena);
    rx_free(a, s->stats);
    rx_free(a, s);
}

static int default_threads(void)
{
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

/* Scratch for `threads` threads; grown when a run asks for more threads. */
static rectify_status ensure_scratch(rectify_session *s, int threads, rectify_error *err)
{
    if (threads <= s->scratch_threads || s->model->max_scratch == 0) return RECTIFY_OK;
    size_t bytes;
    if (__builtin_mul_overflow((size_t)s->model->max_scratch, (size_t)threads * sizeof(float), &bytes))
        return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory for %d threads' scratch", threads);
    float *p = rx_malloc_aligned(&s->model->allocator, (size_t)s->model->max_scratch * (size_t)threads * sizeof(float));
    if (!p) return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory for %d threads' scratch", threads);
    memset(p, 0, bytes); /* touched now, not in the first run (page faults) */
    rx_free_aligned(&s->model->allocator, s->scratch);
    s->bytes += rx_request_bytes((size_t)s->model->max_scratch * (size_t)threads * sizeof(float), true);
    if (s->scratch) s->bytes -= rx_request_bytes((size_t)s->model->max_scratch * (size_t)s->scratch_threads * sizeof(float), true);
    s->scratch = p;
    s->scratch_threads = threads;
    return RECTIFY_OK;
}

void rectify_session_reset_stats(rectify_session *s)
{
    if (!s) return;
    const rectify_model *m = s->model;
    int64_t channels = 0;
    for (int i = 0; i < m->layer_count; i++) channels += RX_PAD8(rx_shape_channels(&m->layers[i].out));
    memset(s->channel_arena, 0, (size_t)channels * sizeof *s->channel_arena);
    for (int i = 0; i < m->layer_count; i++) {
        memset(&s->stats[i].s, 0, sizeof s->stats[i].s);
        s->stats[i].min_zeros = INT64_MAX;
        s->stats[i].max_zeros = 0;
        s->stats[i].sum_zeros_sq = 0.0;
    }
}

rectify_status rectify_session_create(const rectify_model *m, const rectify_session_options *options,
                                      rectify_session **out, rectify_error *err)
{
    rx_ok(err);
    if (!out) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "session is NULL");
    *out = NULL;
    if (!m) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "model is NULL");
    if (m->graph_only)
        return rx_fail(err, RECTIFY_ERR_INVALID, "model \"%s\" was loaded without weights: it cannot run", m->name);
    rectify_session_options none = {0};
    if (!options) options = &none;
    if (options->threads < 0 || options->batch < 0 || options->batch > RECTIFY_MAX_BATCH)
        return rx_fail(err, RECTIFY_ERR_ARGUMENT, "threads must be >= 0 and batch in 0..%d", RECTIFY_MAX_BATCH);
    const rectify_allocator *a = &m->allocator;
    rectify_session *s = rx_calloc(a, 1, sizeof *s);
    if (!s) return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory");
    s->model = m;
    s->threads = options->threads ? options->threads : default_threads();
    s->batch = options->batch ? options->batch : 1;
    int64_t total = 0, channels = 0, max_channels = 0;
    for (int b = 0; b < m->buffer_count; b++) {
        int64_t e;
        if (rx_mul_overflow(m->buffer_elements[b], s->batch, &e) || __builtin_add_overflow(total, (e + 15) & ~(int64_t)15, &total))
            goto nomem;
    }
    for (int i = 0; i < m->layer_count; i++) {
        int64_t c = rx_shape_channels(&m->layers[i].out);
        channels += RX_PAD8(c);
        if (c > max_channels) max_channels = c;
    }
    int64_t scratch, all;
    if (rx_mul_overflow(m->max_scratch, s->threads, &scratch) || __builtin_add_overflow(total, scratch, &all) ||
        all > (int64_t)(RECTIFY_MAX_ACTIVATION_BYTES / sizeof(float))) {
        int batch = s->batch, threads = s->threads;
        rectify_session_destroy(s);
        return rx_fail(err, RECTIFY_ERR_LIMIT,
                       "batch %d on %d threads needs more than the limit of %llu bytes of activations", batch,
                       threads, (unsigned long long)RECTIFY_MAX_ACTIVATION_BYTES);
    }
    s->arena = rx_malloc_aligned(a, (size_t)total * sizeof(float));
    s->buffers = rx_calloc(a, (size_t)m->buffer_count, sizeof *s->buffers);
    s->counts_all = channels * s->batch <= RX_RUN_COUNTS;
    const int64_t counts = s->counts_all ? channels * s->batch : 2 * RX_PAD8(max_channels * s->batch);
    s->run_counts = rx_malloc_aligned(a, ((size_t)counts + 1) * sizeof *s->run_counts);
    if (s->run_counts) memset(s->run_counts, 0, ((size_t)counts + 1) * sizeof *s->run_counts);
    s->ticks = rx_calloc(a, (size_t)m->layer_count, sizeof *s->ticks);
    s->counts_at = rx_calloc(a, (size_t)m->layer_count, sizeof *s->counts_at);
    s->channel_arena = rx_malloc_aligned(a, ((size_t)channels + 1) * sizeof *s->channel_arena);
    if (s->channel_arena) memset(s->channel_arena, 0, ((size_t)channels + 1) * sizeof *s->channel_arena);
    s->stats = rx_calloc(a, (size_t)m->layer_count, sizeof *s->stats);
    if (!s->arena || !s->buffers || !s->run_counts || !s->ticks || !s->counts_at || !s->channel_arena || !s->stats)
        goto nomem;
    /* Touched now, by the session's threads: the page faults of the
       activations (tens of MiB for a VGG) and the start of the OpenMP
       threads (20 ms for the CIFAR VGG's first two-thread run from a packed
       file, where nothing else had started them) belong to setting up, not
       to the first run. */
    RX_PARALLEL(s->threads, t, nt, {
        memset(s->arena + total * t / nt, 0, (size_t)(total * (t + 1) / nt - total * t / nt) * sizeof(float));
    });
    int64_t offset = 0;
    for (int b = 0; b < m->buffer_count; b++) {
        s->buffers[b] = s->arena + offset;
        offset += (m->buffer_elements[b] * s->batch + 15) & ~(int64_t)15;
    }
    s->bytes = rx_request_bytes(sizeof *s, false) + rx_request_bytes((size_t)total * sizeof(float), true) +
               rx_request_bytes((size_t)m->buffer_count * sizeof *s->buffers, false) +
               rx_request_bytes(((size_t)counts + 1) * sizeof *s->run_counts, true) +
               rx_request_bytes((size_t)m->layer_count * sizeof *s->ticks, false) +
               rx_request_bytes((size_t)m->layer_count * sizeof *s->counts_at, false) +
               rx_request_bytes(((size_t)channels + 1) * sizeof *s->channel_arena, true) +
               rx_request_bytes((size_t)m->layer_count * sizeof *s->stats, false);
    channels = 0;
    for (int i = 0; i < m->layer_count; i++) {
        s->stats[i].channel_zeros = s->channel_arena + channels;
        s->stats[i].channels = rx_shape_channels(&m->layers[i].out);
        s->stats[i].elements = rx_shape_elements(&m->layers[i].out);
        s->counts_at[i] = s->counts_all ? channels * s->batch : (i & 1) * RX_PAD8(max_channels * s->batch);
        channels += RX_PAD8(rx_shape_channels(&m->layers[i].out));
    }
    if (ensure_scratch(s, s->threads, err)) { rectify_session_destroy(s); return RECTIFY_ERR_NOMEM; }
    rectify_session_reset_stats(s);
    *out = s;
    return RECTIFY_OK;
nomem:
    rectify_session_destroy(s);
    return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory for the activations of batch %d", options->batch);
}

void rectify_session_set_threads(rectify_session *s, int threads)
{
    if (s) s->threads = threads > 0 ? threads : default_threads();
}

void rectify_session_set_statistics(rectify_session *s, int enabled)
{
    if (s) s->no_stats = !enabled;
}

void rectify_session_set_layer_times(rectify_session *s, int enabled)
{
    if (s) s->layer_times = enabled != 0;
}

void rectify_session_set_observer(rectify_session *s, rectify_observer observer, void *user)
{
    if (!s) return;
    s->observer = observer;
    s->observer_user = user;
}

/* Zeros of one layer's output, per sample and channel, into counts. */
static void count_zeros(const rectify_session *s, int index, const float *out, int64_t *counts)
{
    const rx_layer *l = &s->model->layers[index];
    const int64_t channels = rx_shape_channels(&l->out), plane = rx_shape_plane(&l->out);
    const int64_t items = s->batch * channels;
    RX_PARALLEL(items * plane > 65536 ? s->threads : 1, t, threads, {
        const int64_t i0 = items * t / threads, i1 = items * (t + 1) / threads;
        rx_count_zeros(out + i0 * plane, i1 - i0, plane, counts + i0);
    });
}

/* Layer i's counts in this run: batch x its channels. */
static inline int64_t *run_counts(const rectify_session *s, int i)
{
    return s->run_counts + s->counts_at[i];
}

/* One run of layer `index` into its totals, from counts (batch x channels
   zeros of this run) or, when out is not NULL (a layer of one float per
   channel: counts_units), by counting the zeros of out straight into them. */
static void record(rectify_session *s, int index, const int64_t *counts, const float *out)
{
    layer_totals *t = &s->stats[index];
    const int64_t c = t->channels;
    int64_t zeros = 0;
    for (int64_t b = 0; b < s->batch; b++) {
        const int64_t z = out ? rx_count_add(out + b * c, c, t->channel_zeros)
                              : rx_add_counts(counts + b * c, c, t->channel_zeros);
        if (z < t->min_zeros) t->min_zeros = z;
        if (z > t->max_zeros) t->max_zeros = z;
        t->sum_zeros_sq += (double)z * (double)z;
        zeros += z;
    }
    t->s.elements = t->elements * s->batch;
    t->s.zeros = zeros;
    t->s.total_elements += t->s.elements;
    t->s.total_zeros += zeros;
    t->s.runs++;
    t->s.samples += s->batch;
}

/* Whether layer i's output has one float per channel (a dense layer's
   units, a flatten, a softmax): counted and added to its totals in one
   pass as soon as it is written (record with out), where a per-run count
   per unit, added in later, was most of LeNet-5's statistics (828 of its
   894 counts). A ReLU there runs without counting: its input was counted. */
static inline bool per_unit(const rectify_session *s, int i)
{
    return s->stats[i].channels == s->stats[i].elements;
}

/* Whether layer i is counted that way in this run: not a ReLU fused into
   layer i - 1 (that layer counts it) or a layer with one fused. */
static bool counts_units(const rectify_session *s, int i, bool each)
{
    const rx_layer *l = s->model->layers;
    return per_unit(s, i) && (each || (!l[i].relu_fused && (i == 0 || !l[i - 1].relu_fused)));
}

/* Ticks between two reads of the clock (8 ms at 2 GHz). */
#define RX_CLOCK_TICKS (1u << 24)

/* The layers' times of a run, from their ticks. Seconds per tick are
   measured from the first run's start to its end, and then to the end of
   a later run whenever RX_CLOCK_TICKS have passed since the last reading:
   ticks need no known rate, and most runs read no clock (two reads a run,
   31 ns each, were 0.3-0.6% of LeNet-5's). */
static void record_times(rectify_session *s, int layers)
{
    const uint64_t now = rx_ticks();
    if (s->per_tick == 0.0 || now - s->read_ticks >= RX_CLOCK_TICKS) {
        const double seconds = omp_get_wtime() - s->clock_at;
        const uint64_t span = rx_ticks_since(s->clock_ticks, now);
        if (span > 0) s->per_tick = seconds / (double)span;
        s->read_ticks = now;
    }
    for (int i = 0; i < layers; i++) {
        layer_totals *t = &s->stats[i];
        t->s.seconds = (double)s->ticks[i] * s->per_tick;
        t->s.total_seconds += t->s.seconds;
    }
}

/* Whether layer i's zeros can wait for the next layer to count them as it
   reads them: an op that counts (ReLU) right after it, reading it. Not with
   an observer, which may look at the statistics after every layer. (A
   layer of one float per channel never gets here: counts_units takes it
   at once.) */
static bool counted_by_next(const rectify_session *s, int i, bool each)
{
    const rectify_model *m = s->model;
    if (each || i + 1 >= m->layer_count) return false;
    const rx_layer *next = &m->layers[i + 1];
    return next->op->counts_zeros && next->input_count == 1 && next->inputs[0] == i;
}

static void make_view(const rectify_session *s, const rx_shape *shape, const float *data, rectify_tensor *v)
{
    memset(v, 0, sizeof *v);
    v->data = data;
    v->rank = shape->rank + 1;
    v->shape[0] = s->batch;
    for (int d = 0; d < shape->rank; d++) v->shape[d + 1] = shape->d[d];
    v->elements = rx_shape_elements(shape) * s->batch;
}

rectify_status rectify_session_run(rectify_session *s, const float *input, size_t count, rectify_error *err)
{
    rx_ok(err);
    if (!s || !input) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "session or input is NULL");
    const rectify_model *m = s->model;
    size_t want = (size_t)rx_shape_elements(&m->input) * (size_t)s->batch;
    if (count != want)
        return rx_fail(err, RECTIFY_ERR_ARGUMENT, "input has %zu floats; batch %d of %lldx%lldx%lld needs %zu", count,
                       s->batch, (long long)m->input.d[0], (long long)m->input.d[1], (long long)m->input.d[2], want);
    rectify_status st = ensure_scratch(s, s->threads, err);
    if (st) return st;
    s->ran = false;
    memcpy(s->buffers[m->input_buffer], input, want * sizeof *input);
    int held = -1; /* a layer whose zeros the next one counts */
    /* A layer's time runs from the end of the previous one's to the end of
       its own counting, read as ticks (rx_ticks: 11 ns here, where a clock
       read takes 31 ns and 13 of them were 1% of LeNet-5); record_times
       gives them their length. The counts go into the totals after
       the run (RX_RUN_COUNTS), or else as soon as a layer is counted; after
       each layer when an observer was set as the run began, since it may
       look at them (and a run it stops has recorded the layers before).
       Layers of one float per channel go into their totals at once
       (counts_units). */
    /* both for the whole run, whatever the observer switches */
    const bool stats = !s->no_stats, times = s->layer_times;
    const bool each = s->observer != NULL, at_end = s->counts_all && !each;
    if (times && s->clock_ticks == 0) { /* the clock's first reading (record_times) */
        s->clock_at = omp_get_wtime();
        s->clock_ticks = rx_ticks();
    }
    uint64_t t0 = times ? rx_ticks() : 0;
    for (int i = 0; i < m->layer_count; i++) {
        const rx_layer *l = &m->layers[i];
        int64_t *counts = run_counts(s, i);
        /* A ReLU fused into this layer runs in its kernel, and one that the
           next layer takes in that layer's (on its input, counting both
           sides: held stays for it); not with an observer, which must see
           every layer's output. */
        const bool fused = l->relu_fused && !each, relu_in = l->relu_in && !each;
        if (!each && i + 1 < m->layer_count && m->layers[i + 1].relu_in) {
            if (times) s->ticks[i] = 0; /* its time is the next layer's */
            continue;
        }
        const bool units = stats && counts_units(s, i, each);
        rx_exec e = {.model = m, .layer = l, .out = s->buffers[l->buffer], .batch = s->batch,
                     .threads = s->threads, .scratch = s->scratch,
                     .zeros = (l->op->counts_zeros || fused) && stats && !units ? counts : NULL,
                     .in_zeros = held >= 0 ? run_counts(s, held) : NULL,
                     .relu = fused, .relu_in = relu_in,
                     .relu_zeros = !stats ? NULL : fused ? run_counts(s, i + 1) : relu_in ? run_counts(s, i - 1) : NULL};
        if (fused && e.relu_zeros) { /* the kernel adds into them */
            const size_t bytes = (size_t)(s->batch * s->stats[i].channels) * sizeof *counts;
            memset(e.zeros, 0, bytes);
            memset(e.relu_zeros, 0, bytes);
        }
        for (int k = 0; k < l->input_count; k++) {
            int in = l->inputs[k];
            e.in[k] = s->buffers[in < 0 ? m->input_buffer : m->layers[in].buffer];
            e.in_shape[k] = in < 0 ? &m->input : &m->layers[in].out;
        }
        l->op->run(&e);
        if (stats) {
            const int counted = held; /* the layer this one counted as it read it */
            held = -1;
            if (!at_end) { /* those this one counted first: two layers' counts at a time, and
                              with a ReLU taken (relu_in) the layer before it has this one's */
                if (counted >= 0) record(s, counted, run_counts(s, counted), NULL);
                if (relu_in) record(s, i - 1, e.relu_zeros, NULL);
            }
            if (units) record(s, i, NULL, e.out);
            else if (!l->op->counts_zeros && !fused) {
                if (counted_by_next(s, i, each)) held = i;
                else count_zeros(s, i, e.out, counts);
            }
            if (!at_end) {
                if (held != i && !units) record(s, i, counts, NULL);
                if (fused) record(s, i + 1, e.relu_zeros, NULL);
            }
        }
        if (times) {
            const uint64_t t1 = rx_ticks();
            s->ticks[i] = rx_ticks_since(t0, t1);
            t0 = t1;
            if (fused) s->ticks[i + 1] = 0; /* the ReLU's time is the layer's */
        }
        i += fused; /* the ReLU ran in this layer */
        if (s->observer) {
            rectify_tensor v;
            make_view(s, &l->out, e.out, &v);
            if (s->observer(s->observer_user, i, &v)) {
                if (times) record_times(s, i + 1);
                return rx_fail(err, RECTIFY_ERR_ARGUMENT, "the observer stopped the run after layer \"%s\"", l->name);
            }
            if (times) t0 = rx_ticks(); /* the observer's time is nobody's */
        }
    }
    if (stats && at_end)
        for (int i = 0; i < m->layer_count; i++)
            if (!counts_units(s, i, false)) record(s, i, run_counts(s, i), NULL);
    if (times) record_times(s, m->layer_count);
    s->ran = true;
    return RECTIFY_OK;
}

/* A layer's output is still intact when it was written (not a ReLU that
   the next layer ran on its input) and no later layer writes its buffer. */
static bool intact(const rectify_model *m, int layer)
{
    if (layer + 1 < m->layer_count && m->layers[layer + 1].relu_in) return false;
    for (int i = layer + 1; i < m->layer_count; i++)
        if (m->layers[i].buffer == m->layers[layer].buffer) return false;
    return true;
}

rectify_status rectify_session_layer_output(const rectify_session *s, int layer, rectify_tensor *out)
{
    if (!s || !out || layer < 0 || layer >= s->model->layer_count || !s->ran || !intact(s->model, layer))
        return RECTIFY_ERR_ARGUMENT;
    const rx_layer *l = &s->model->layers[layer];
    make_view(s, &l->out, s->buffers[l->buffer], out);
    return RECTIFY_OK;
}

rectify_status rectify_session_output_by_name(const rectify_session *s, const char *name, rectify_tensor *out)
{
    if (!s || !name) return RECTIFY_ERR_ARGUMENT;
    return rectify_session_layer_output(s, rectify_model_find_layer(s->model, name), out);
}

size_t rectify_session_bytes(const rectify_session *s) { return s ? s->bytes : 0; }

rectify_status rectify_session_output(const rectify_session *s, int i, rectify_tensor *out)
{
    if (!s || i < 0 || i >= s->model->output_count) return RECTIFY_ERR_ARGUMENT;
    return rectify_session_layer_output(s, s->model->outputs[i], out);
}

rectify_status rectify_session_layer_stats(const rectify_session *s, int layer, rectify_layer_stats *stats)
{
    if (!s || !stats || layer < 0 || layer >= s->model->layer_count) return RECTIFY_ERR_ARGUMENT;
    const layer_totals *t = &s->stats[layer];
    const double n = (double)rx_shape_elements(&s->model->layers[layer].out);
    *stats = t->s;
    if (t->s.samples > 0) {
        stats->min_sparsity = (double)t->min_zeros / n;
        stats->max_sparsity = (double)t->max_zeros / n;
        stats->sum_sparsity = (double)t->s.total_zeros / n;
        stats->sum_sparsity_sq = t->sum_zeros_sq / (n * n);
    }
    return RECTIFY_OK;
}

int64_t rectify_session_channel_count(const rectify_session *s, int layer)
{
    if (!s || layer < 0 || layer >= s->model->layer_count) return 0;
    return rx_shape_channels(&s->model->layers[layer].out);
}

rectify_status rectify_session_channel_zeros(const rectify_session *s, int layer, int64_t *zeros, int64_t n)
{
    int64_t channels = rectify_session_channel_count(s, layer);
    if (!zeros || channels == 0 || n < channels) return RECTIFY_ERR_ARGUMENT;
    memcpy(zeros, s->stats[layer].channel_zeros, (size_t)channels * sizeof *zeros);
    return RECTIFY_OK;
}
