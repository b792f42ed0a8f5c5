/* conv.c: 2-D convolution with stride, asymmetric padding, dilation and
   groups (depthwise included). y = bias + sum over (c, ki, kj) of w * x.
   The kernel is an implicit GEMM: weights are packed once at load; each task
   packs the im2col panel of a few output pixels, a cache block of k at a
   time (kernels/im2col.c), and runs the micro-kernels over it (gemm.h);
   layers with little work per output row pack from a padded copy ("wide"
   pixels, below); 3x3 stride-1 layers of 16 channels or more run
   Winograd's algorithm. */
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "../kernels/kernels.h"
#include "../kernels/winograd.h"

static const char *const fields[] = {"out_channels", "kernel", "stride", "padding", "dilation",
                                     "groups", "bias", NULL};

static rectify_status parse(rx_ctx *c, const cJSON *j, rx_params *p)
{
    rectify_status st;
    if ((st = rx_json_int(c, j, "out_channels", true, 0, 1, RECTIFY_MAX_DIM, &p->out_channels))) return st;
    if ((st = rx_parse_window(c, j, &p->win, false))) return st;
    if ((st = rx_json_int(c, j, "groups", false, 1, 1, RECTIFY_MAX_DIM, &p->groups))) return st;
    return rx_json_bool(c, j, "bias", true, &p->bias);
}

static rectify_status infer(rx_ctx *c, rectify_model *m, rx_layer *l, const rx_shape *const *in)
{
    const rx_params *p = &l->p;
    const rx_window *w = &p->win;
    if (in[0]->rank != 3)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "conv needs a CxHxW input, got rank %d", in[0]->rank);
    int64_t cin = in[0]->d[0];
    if (cin % p->groups || p->out_channels % p->groups)
        return rx_cfail(c, RECTIFY_ERR_INVALID,
                        "groups %lld must divide the input channels (%lld) and out_channels (%lld)",
                        (long long)p->groups, (long long)cin, (long long)p->out_channels);
    int64_t oh = rx_window_out(in[0]->d[1], w->kh, w->sh, w->pt, w->pb, w->dh, false);
    int64_t ow = rx_window_out(in[0]->d[2], w->kw, w->sw, w->pl, w->pr, w->dw, false);
    if (oh < 1 || ow < 1)
        return rx_cfail(c, RECTIFY_ERR_INVALID, "kernel %lldx%lld (dilation %lldx%lld) is larger than the padded input %lldx%lld",
                        (long long)w->kh, (long long)w->kw, (long long)w->dh, (long long)w->dw,
                        (long long)(in[0]->d[1] + w->pt + w->pb), (long long)(in[0]->d[2] + w->pl + w->pr));
    l->out = (rx_shape){3, {p->out_channels, oh, ow}};
    int64_t k = cin / p->groups * w->kh * w->kw, weights;
    if (rx_mul_overflow(k, p->out_channels, &weights) || rx_mul_overflow(rx_shape_elements(&l->out), k, &l->macs))
        return rx_cfail(c, RECTIFY_ERR_LIMIT, "the layer's size overflows");
    l->params = weights + (p->bias ? p->out_channels : 0);
    rx_shape ws = {4, {p->out_channels, cin / p->groups, w->kh, w->kw}};
    int64_t fan_out = p->out_channels / p->groups * w->kh * w->kw;
    rectify_status st = rx_declare_tensor(c, m, l, "weight", &ws, k, fan_out, false);
    if (st || !p->bias) return st;
    rx_shape bs = {1, {p->out_channels}};
    return rx_declare_tensor(c, m, l, "bias", &bs, k, fan_out, true);
}

/* Winograd pays for 3x3 stride-1 layers once there are channels enough to
   amortise its transforms (measured: see bench/README.md). F(4x4, 3x3)
   needs the fewest multiplications but keeps 4x the layer's weights as
   transformed filters, F(2x2, 3x3) 16/9x: F(4x4) while those take at most
   RX_WINO4_MAX bytes, F(2x2) beyond (VGG-16's 512-channel layers: 36 MiB
   each in F(4x4), 16 MiB in F(2x2)). That is for memory, not speed: both
   stream from memory on every run, and on 28x28 (512 channels) F(4x4) ran
   8.7 ms against F(2x2)'s 12.6 on one thread. VGG-16 with F(4x4) on its
   28x28 layers ran 84-87 ms instead of 96-112 on one thread, 54-56 instead
   of 59-61 on two, but peaked at 681 MiB resident: 1.29x its weight file,
   past the 1.25x the engine keeps to (issue 4). On 14x14, F(2x2) is also
   the faster on two threads (2.0 against 2.2 ms: F(4x4) has 16 tiles
   there, too few to split). Returns the tile, or 0 for direct convolution.
   RECTIFY_WINOGRAD (read at load) overrides: "0" direct, "2" or "4". */
#define RX_WINO4_MAX (16 << 20)

static bool winograd_fits(const rx_layer *l, const rx_shape *in)
{
    const rx_window *w = &l->p.win;
    return w->kh == 3 && w->kw == 3 && w->sh == 1 && w->sw == 1 && w->dh == 1 && w->dw == 1 && l->p.groups == 1 &&
           in->d[0] >= 16 && l->p.out_channels >= 16;
}

static int winograd_tile(const rx_layer *l, const rx_shape *in)
{
    if (!winograd_fits(l, in)) return 0;
    const char *env = getenv("RECTIFY_WINOGRAD");
    if (env && (strcmp(env, "0") == 0 || strcmp(env, "2") == 0 || strcmp(env, "4") == 0)) return env[0] - '0';
    return 36 * in->d[0] * l->p.out_channels * (int64_t)sizeof(float) <= RX_WINO4_MAX ? 4 : 2;
}

/* Layers of fewer multiply-adds run on one thread: waking the second one
   and sharing the output between two caches costs more than it saves
   (LeNet-5's layers ran slower on two threads). */
#define RX_PARALLEL_MACS (1 << 20)

/* Filters a task keeps at least when a layer's filters are split among
   tasks: each part packs the same pixels, and with fewer filters to
   multiply them by the packing was the task's time. */
#define RX_SPLIT_FILTERS 32

static int threads_for(const rx_exec *e)
{
    return e->layer->macs * e->batch < RX_PARALLEL_MACS ? 1 : e->threads;
}

/* Tasks are claimed one at a time, not split evenly up front: when one core
   is slowed (another process, or the host's other guests on a VM), the
   other takes over its share instead of waiting for it. */
static inline int64_t rx_next_task(int64_t *next)
{
    return __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
}

/* Transformed filters of this many bytes or more are read in twice as
   many tiles at a time (winograd_block). */
#define RX_WINO_BIG_U (8 << 20)

/* Tiles per block of a Winograd layer: every block's products read the
   layer's transformed filters (U) whole, so that where those are far
   larger than the caches, blocks of twice RX_WINO_BLOCK tiles read them
   half as often. Blocks of 96 against 48, builds alternated (medians of 4-5
   processes a layer): VGG-16 on one thread, its F(2x2) layers of 28x28 and
   14x14 (U 16 MiB) 0.89-0.92x the time, on two 0.96x and 0.99-1.01x;
   VGG-11's 0.87-0.96x on one thread. Its F(4x4) layers of 256 channels
   (U 9 MiB) 0.96-1.01x on one thread, 0.97-0.98x on two; the layers whose
   U takes less than 8 MiB no faster (128 to 256 channels, U 4.5 MiB:
   0.98-1.04x) and those of 112x112 and 224x224 1.01-1.02x (U at most 2.3
   MiB). The 8 MiB line between them rests on a handful of runs. F(4x4)
   keeps blocks of RX_WINO_BLOCK beyond RX_WINO4_MAX (only a packed file or
   RECTIFY_WINOGRAD puts it there), where a block's scratch would outgrow
   F(2x2)'s: F(2x2)'s 16 points in a block of 96 tiles take less than
   F(4x4)'s 36 in one of 48. VGG-16's peak resident memory is unchanged
   (655 / 663 MB on one / two threads). */
static int64_t winograd_block(int tile, int64_t channels, int64_t filters)
{
    const int64_t u = rx_winograd_points(tile) * channels * filters * (int64_t)sizeof(float);
    return u >= RX_WINO_BIG_U && (tile == 2 || u <= RX_WINO4_MAX) ? RX_WINO_BLOCK_MAX : RX_WINO_BLOCK;
}

/* Floats per thread: a block's V (points x tiles x channels) and M (points
   x tiles x filters, rounded up to whole vectors). */
static int64_t winograd_scratch(int tile, int64_t channels, int64_t filters)
{
    return rx_winograd_points(tile) * winograd_block(tile, channels, filters) * (channels + filters + RX_NR_MAX);
}

/* Stride-1 layers with little work per output row run on "wide" pixels:
   output rows as wide as the padded input rows, the extra pixels computed
   and dropped. Each task copies the input rows it reads, padded, into a
   slab; every row of its im2col matrix is then one contiguous run of the
   slab (rx_pack_wide). Packed row by row (rx_im2col), each output row costs
   a few dozen cycles per tap whatever its length: LeNet-5's convolutions
   (rows of 28 and 10 pixels, 6 and 16 filters) spent 50-65% of the net's
   time packing, and the net ran in 15 us instead of 25 wide. Wide only
   while packing outweighs the multiply-adds per tap and output row (at
   most RX_WIDE_WORK): the wide output is copied out once more, and every
   row grows by (kw - 1) * dw pixels. Wide ran slower on VGG-16's first
   layer (224 pixels x 64 filters: 1.83 ms against 1.45), AlexNet's second
   (27 x 192: 5% on one thread) and the CIFAR VGG's first (32 x 32: 0.030 ms
   against 0.026 on two threads). The dropped pixels' multiply-adds are held
   to RX_WIDE_WASTE on top: a wide kernel on a narrow image (9 taps wide, 4
   outputs) would otherwise compute three times the layer. The plan is
   sized for the widest micro-tile (RX_NR_MAX): with AVX2's 16, tasks use a
   quarter of it. Not with the portable kernels, whose multiply-adds cost
   more than the packing saved (LeNet-5: 0.263 ms wide, 0.232 row by row;
   with AVX2 0.029 and 0.035). Per thread: the slab, and the task's output
   on wide pixels, which the micro-kernels write whole. */
typedef struct wide_plan {
    int64_t row;   /* floats per padded row: output pixels per wide row */
    int64_t rows;  /* slab rows per channel at most */
    int64_t slab;  /* floats */
    int64_t out;   /* floats of the task's output */
} wide_plan;

#define RX_WIDE_MAX (1 << 18) /* floats of slab and output per thread */
#define RX_WIDE_WORK 512      /* multiply-adds per tap and output row at most */
#define RX_WIDE_WASTE 256     /* and at most this many more, computed and dropped */

static bool wide_fits(const rx_layer *l, const rx_shape *in, wide_plan *wp)
{
    const rx_window *w = &l->p.win;
    if (w->sh != 1 || w->sw != 1) return false;
    const int64_t channels = in->d[0] / l->p.groups, filters = l->p.out_channels / l->p.groups;
    const int64_t ow = l->out.d[2], oh = l->out.d[1], tile = RX_NR_MAX * RX_TILES;
    wp->row = in->d[2] + w->pl + w->pr;
    if (ow * filters > RX_WIDE_WORK || (wp->row - ow) * filters > RX_WIDE_WASTE) return false;
    int64_t spanned = (tile - 1) / wp->row + 2; /* output rows a task's pixels touch */
    if (spanned > oh) spanned = oh;
    wp->rows = spanned + (w->kh - 1) * w->dh;
    /* the last slice's pixels and a row's extra ones read past the slab */
    wp->slab = (channels * wp->rows * wp->row + RX_NR_MAX + (w->kw - 1) * w->dw + 15) / 16 * 16;
    wp->out = filters * tile; /* whole vectors: each thread's panel stays aligned */
    return wp->slab + wp->out <= RX_WIDE_MAX;
}

/* Whether a direct layer runs wide: not with the portable kernels. */
static bool runs_wide(const rx_layer *l, const rx_shape *in, wide_plan *wp)
{
    return rx_gemm_select() != &rx_gemm_generic && wide_fits(l, in, wp);
}

/* Zero counts of a layer with a ReLU fused (rx_exec.relu, statistics on):
   per filter, of its outputs before and after the ReLU, one sample at a
   time. A thread alone adds straight into the session's counts; several
   keep counters of their own (at the end of their scratch, RX_TALLY floats)
   and add them in when they move on to another sample and at the end of
   the layer: tasks adding into counters shared by the cores would pass
   their cache lines to and fro. */
typedef struct tally {
    bool relu, counted;          /* a ReLU fused; with counts */
    int64_t *zeros, *relu_zeros; /* the current sample's, by filter (all groups) */
    int64_t sample;              /* -1: none yet */
    bool own;                    /* the thread's own counters */
} tally;

#define RX_TALLY(cout) ((4 * (cout) + 15) / 16 * 16)

static tally tally_start(const rx_exec *e, float *end, int team)
{
    const int64_t cout = e->layer->p.out_channels;
    tally t = {e->relu, e->relu && e->zeros, NULL, NULL, -1, team > 1};
    if (t.counted && t.own) {
        t.zeros = (int64_t *)(end - RX_TALLY(cout));
        t.relu_zeros = t.zeros + cout;
        memset(t.zeros, 0, 2 * (size_t)cout * sizeof *t.zeros);
    }
    return t;
}

static void tally_flush(const rx_exec *e, tally *t)
{
    if (!t->counted || !t->own || t->sample < 0) return;
    const int64_t cout = e->layer->p.out_channels;
    int64_t *z = e->zeros + t->sample * cout, *rz = e->relu_zeros + t->sample * cout;
    for (int64_t c = 0; c < cout; c++) {
        if (t->zeros[c]) __atomic_fetch_add(&z[c], t->zeros[c], __ATOMIC_RELAXED);
        if (t->relu_zeros[c]) __atomic_fetch_add(&rz[c], t->relu_zeros[c], __ATOMIC_RELAXED);
        t->zeros[c] = t->relu_zeros[c] = 0;
    }
}

/* The counters of sample b from here on. */
static void tally_sample(const rx_exec *e, tally *t, int64_t b)
{
    if (!t->counted || t->sample == b) return;
    if (t->own) {
        tally_flush(e, t);
    } else {
        const int64_t cout = e->layer->p.out_channels;
        t->zeros = e->zeros + b * cout;
        t->relu_zeros = e->relu_zeros + b * cout;
    }
    t->sample = b;
}

/* Outputs of filters f.. from src into dst (k: their shape and strides),
   through the fused ReLU if any. */
static void put_block(const tally *t, int64_t f, const float *src, float *dst, const rx_block *k)
{
    if (t->relu) {
        rx_relu_block(src, dst, k, t->counted ? t->zeros + f : NULL, t->counted ? t->relu_zeros + f : NULL);
        return;
    }
    for (int64_t p = 0; p < k->planes; p++)
        for (int64_t r = 0; r < k->rows; r++)
            memcpy(dst + p * k->yp + r * k->yr, src + p * k->xp + r * k->xr, (size_t)k->n * sizeof *dst);
}

static int64_t scratch(const rx_layer *l, const rx_shape *const *in)
{
    int64_t direct = RX_KC * RX_NR_MAX * RX_TILES;
    wide_plan wp;
    const bool wide = wide_fits(l, in[0], &wp);
    if (wide) direct += wp.slab + wp.out;
    /* Whichever path prepare (or a packed file) chooses; a wide one may run
       a fused ReLU, whose counters follow (tally). */
    int64_t wino = 0;
    if (winograd_fits(l, in[0])) { /* either tile: a packed file may hold either */
        const int64_t w2 = winograd_scratch(2, in[0]->d[0], l->p.out_channels);
        const int64_t w4 = winograd_scratch(4, in[0]->d[0], l->p.out_channels);
        wino = w2 > w4 ? w2 : w4;
    }
    return (wino > direct ? wino : direct) + (wide ? RX_TALLY(l->p.out_channels) : 0);
}

static const rx_shape *input_shape(const rectify_model *m, const rx_layer *l)
{
    return l->inputs[0] < 0 ? &m->input : &m->layers[l->inputs[0]].out;
}

/* Weights into blocks of RX_MR filters, k-major ([k][RX_MR], zero-padded),
   per group: what the micro-kernel reads, in the order it reads it; or
   Winograd's transformed filters, in blocks of the micro-kernel's nr. */
static int64_t packed_floats(const rectify_model *m, const rx_layer *l)
{
    const int64_t groups = l->p.groups, filters = l->p.out_channels / groups;
    const int64_t k = m->tensors[l->tensor_first].elements / l->p.out_channels;
    if (l->winograd) {
        if ((l->winograd != 2 && l->winograd != 4) || !winograd_fits(l, input_shape(m, l))) return -1;
        const int nr = rx_gemm_select()->nr;
        return rx_winograd_points(l->winograd) * ((l->p.out_channels + nr - 1) / nr) * (k / 9) * nr;
    }
    return groups * ((filters + RX_MR - 1) / RX_MR) * k * RX_MR;
}

/* Either way the file's copy is not read again: its pages are given back. */
static rectify_status prepare(rectify_model *m, rx_layer *l, rectify_error *err)
{
    if (l->packed) return RECTIFY_OK; /* a packed file's, l->winograd with them */
    const rx_tensor *t = &m->tensors[l->tensor_first];
    const int64_t groups = l->p.groups, filters = l->p.out_channels / groups, k = t->elements / l->p.out_channels;
    const int64_t blocks = (filters + RX_MR - 1) / RX_MR;
    l->winograd = winograd_tile(l, input_shape(m, l));
    float *packed = rx_malloc_aligned(&m->allocator, (size_t)packed_floats(m, l) * sizeof *packed);
    if (!packed) return rx_fail(err, RECTIFY_ERR_NOMEM, "layer \"%s\": out of memory packing weights", l->name);
    l->packed = l->packed_block = packed;
    if (l->winograd) {
        rx_winograd_filters(l->winograd, t->data, l->p.out_channels, k / 9, rx_gemm_select()->nr, packed);
    } else {
        for (int64_t g = 0; g < groups; g++)
            for (int64_t b = 0; b < blocks; b++) {
                float *dst = packed + (g * blocks + b) * k * RX_MR;
                for (int64_t kk = 0; kk < k; kk++)
                    for (int i = 0; i < RX_MR; i++) {
                        int64_t f = b * RX_MR + i;
                        dst[kk * RX_MR + i] = f < filters ? t->data[(g * filters + f) * k + kk] : 0.0f;
                    }
            }
    }
    rx_release_mapped(&m->weights, t->data, (size_t)t->elements * sizeof(float));
    return RECTIFY_OK;
}

/* One Winograd layer's constants. */
typedef struct wino {
    const rx_gemm_isa *isa;
    const float *u;
    int64_t channels, filters, fblocks, ldm;
    int nr, points;
} wino;

/* A task: a block of count tiles (v: their V, mm: their M) for filter
   blocks [fb0, fb0 + nfb). Its products (point, filter block), point-major,
   are claimed `per` at a time: whichever thread runs them, the output is
   the same. */
typedef struct wino_task {
    const float *v;
    float *mm;
    int64_t count, fb0, nfb, per;
} wino_task;

/* The task's products [claim * per, + per). */
static void wino_products(const wino *w, const wino_task *k, int64_t claim)
{
    const int nr = w->nr, points = w->points;
    const int64_t groups = (k->count + RX_MR - 1) / RX_MR, all = points * k->nfb;
    for (int64_t pr = claim * k->per; pr < all && pr < (claim + 1) * k->per; pr++) {
        const int p = (int)(pr / k->nfb);
        const int64_t fb = k->fb0 + pr % k->nfb;
        const int cols = (int)(w->filters - fb * nr < nr ? w->filters - fb * nr : nr);
        for (int64_t c0 = 0; c0 < w->channels; c0 += RX_KC) {
            const int64_t kc = w->channels - c0 < RX_KC ? w->channels - c0 : RX_KC;
            const float *u = w->u + (((int64_t)p * w->fblocks + fb) * w->channels + c0) * nr;
            for (int64_t g = 0; g < groups; g++) {
                const int n = (int)(k->count - g * RX_MR < RX_MR ? k->count - g * RX_MR : RX_MR);
                w->isa->kernel(kc, k->v + ((g * w->channels + c0) * points + p) * RX_MR, points * RX_MR, u,
                               k->mm + (g * RX_MR * points + p) * w->ldm + fb * nr, points * w->ldm, n, cols, NULL,
                               c0 == 0);
            }
        }
    }
}

/* Multiply-adds a claim of products holds at least (when a task has as
   many), about 2 us: claims pass a cache line between the cores, which
   costs more than products of a few tiles (the CIFAR VGG's 8x8 layers). */
#define RX_WINO_GRAIN (1 << 18)
#define RX_WINO_CLAIMS 32767 /* per task at most: the next claim, up to claims + 1, fits 16 bits */
/* Multiply-adds from which tasks are shared, about 150 us: the CIFAR VGG's
   (1.2M) ran slower shared, 0.089 and 0.078 ms instead of 0.078 and 0.061
   for its 32x32 and 8x8 layers on two threads (the owner then waits for a
   helper's claim, run from the other core's cache). */
#define RX_WINO_SHARE (16 << 20)

/* A thread's task in flight, whose products other threads may claim: a
   thread with no task left helps the others finish theirs rather than
   wait at the end of the layer. Tasks split evenly between two threads
   did not finish together: one core of this VM ran the same work 10-20%
   slower than the other (VGG-16's 14x14 to 56x56 layers, rdtsc per
   thread), and with 1-3 tasks each the faster one then waited 8-24% of
   the layer. A helper reads the owner's V and writes its M from the other
   core, which is why it is only the tail: each thread first works on tasks
   of its own.
   state: the task's generation << 32 | its claims << 16 | the next claim.
   A claim is taken by raising the next one; the owner publishes a task
   (with the next generation) only when every claim of the last one is
   finished, so a claim taken below the claims is the published task's,
   and the task is read only after it is taken. */
typedef struct wino_slot {
    _Alignas(64) uint64_t state;
    uint64_t done; /* claims finished by helpers */
    int busy;      /* the owner may still offer a task */
    wino_task task;
} wino_slot;
#define RX_WINO_SLOTS 64 /* threads past these do not offer their tasks (but help) */
#define RX_NEXT(state) ((int64_t)((state) & 0xffff))
#define RX_CLAIMS(state) ((int64_t)(((state) >> 16) & 0xffff))

/* A wait's n-th turn: a pause, and every 1024th turn the core is offered
   to other threads (more threads than cores: the one waited for may not be
   running). */
static inline void rx_relax(unsigned n)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (n % 1024 == 1023) sched_yield();
}

/* Takes claims of the other threads' tasks until none has a task left.
   team: the threads OpenMP started, which may be fewer than asked for (a
   thread limit, a region nested in the caller's): the slots of threads
   never started stay busy and must not be waited for. */
static void wino_help(const wino *w, wino_slot *slots, int team, int self)
{
    for (unsigned turn = 0, any = 1; any; turn++) {
        any = 0;
        for (int j = 0; j < team && j < RX_WINO_SLOTS; j++) {
            if (j == self || !__atomic_load_n(&slots[j].busy, __ATOMIC_ACQUIRE)) continue;
            any = 1;
            uint64_t st = __atomic_load_n(&slots[j].state, __ATOMIC_ACQUIRE);
            while (RX_NEXT(st) < RX_CLAIMS(st)) {
                if (!__atomic_compare_exchange_n(&slots[j].state, &st, st + 1, false, __ATOMIC_ACQ_REL,
                                                 __ATOMIC_ACQUIRE))
                    continue; /* st now holds the current state */
                const wino_task k = slots[j].task; /* the claim's: stays until it is done */
                wino_products(w, &k, RX_NEXT(st));
                __atomic_fetch_add(&slots[j].done, 1, __ATOMIC_RELEASE);
                st = __atomic_load_n(&slots[j].state, __ATOMIC_ACQUIRE);
            }
        }
        rx_relax(turn);
    }
}

static void run_winograd(const rx_exec *e)
{
    const rx_layer *l = e->layer;
    const rx_gemm_isa *isa = rx_gemm_select();
    const int nr = isa->nr;
    const int64_t channels = e->in_shape[0]->d[0], height = e->in_shape[0]->d[1], width = e->in_shape[0]->d[2];
    const int64_t filters = l->p.out_channels, oh = l->out.d[1], ow = l->out.d[2];
    const int tile = l->winograd, points = rx_winograd_points(tile);
    const int64_t tiles_w = (ow + tile - 1) / tile;
    const int64_t tiles = tiles_w * ((oh + tile - 1) / tile);
    const int64_t fblocks = (filters + nr - 1) / nr;
    const wino w = {isa, l->packed, channels, filters, fblocks, fblocks * nr, nr, points};
    const float *bias = l->p.bias ? rx_weight(e->model, l, 1) : NULL;
    /* Tiles go into blocks of at most winograd_block, as evenly as tiles
       divide (not whole groups of RX_MR: a micro-kernel call costs the rows
       it computes), and into a multiple of the threads when there are tiles
       enough: blocks of whole groups (5 and 6 groups of VGG-16's 33 on
       28x28 and 56x56) gave one thread 8% more work than the other. */
    const int64_t tile_groups = (tiles + RX_MR - 1) / RX_MR;
    const int threads = threads_for(e);
    const int64_t block = winograd_block(tile, channels, filters);
    int64_t tile_blocks = (tiles + block - 1) / block;
    if (threads > 1 && tile_blocks % threads) {
        int64_t up = (tile_blocks + threads - 1) / threads * threads;
        if (up <= tile_groups) tile_blocks = up;
    }
    /* A block's filters are split among the threads (each part transforms
       the block's input again) when there are fewer blocks than threads;
       and, for blocks too small to be shared (RX_WINO_SHARE: shared ones
       even out by helping), whenever the blocks do not divide among them. */
    const int64_t units = e->batch * tile_blocks;
    const bool shared = threads > 1 && tiles / tile_blocks * channels * filters * points >= RX_WINO_SHARE;
    int64_t split = (shared ? units < threads : units % threads != 0) ? threads : 1;
    if (split > fblocks) split = fblocks;
    const int64_t tasks = units * split, per_thread = scratch(l, e->in_shape);
    int64_t next = 0;
    wino_slot slots[RX_WINO_SLOTS];
    for (int j = 0; shared && j < threads && j < RX_WINO_SLOTS; j++) slots[j] = (wino_slot){.busy = 1};
    RX_PARALLEL(threads, tid, team, {
        wino_slot *own = shared && tid < RX_WINO_SLOTS ? &slots[tid] : NULL;
        float *v = e->scratch + tid * per_thread;
        float *mm = v + points * block * channels;
        uint64_t generation = 0;
        for (int64_t t; (t = rx_next_task(&next)) < tasks;) {
            const int64_t part = t % split, unit = t / split, b = unit / tile_blocks, blk = unit % tile_blocks;
            const int64_t t0 = blk * tiles / tile_blocks, count = (blk + 1) * tiles / tile_blocks - t0;
            const int64_t fb0 = part * fblocks / split, fb1 = (part + 1) * fblocks / split;
            wino_task k = {v, mm, count, fb0, fb1 - fb0, 1};
            const int64_t work = count * channels * nr, all = points * k.nfb;
            if (work < RX_WINO_GRAIN) k.per = (RX_WINO_GRAIN + work - 1) / work;
            if (all > RX_WINO_CLAIMS * k.per) k.per = (all + RX_WINO_CLAIMS - 1) / RX_WINO_CLAIMS;
            const int64_t claims = (all + k.per - 1) / k.per;
            rx_winograd_input(tile, e->in[0] + b * channels * height * width, channels, height, width, l->p.win.pt,
                              l->p.win.pl, tiles_w, t0, count, v);
            if (!own) {
                for (int64_t c = 0; c < claims; c++) wino_products(&w, &k, c);
            } else {
                own->task = k;
                __atomic_store_n(&own->done, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&own->state, ++generation << 32 | (uint64_t)claims << 16, __ATOMIC_RELEASE);
                int64_t mine = 0;
                for (uint64_t st; RX_NEXT(st = __atomic_fetch_add(&own->state, 1, __ATOMIC_ACQ_REL)) < claims; mine++)
                    wino_products(&w, &k, RX_NEXT(st));
                for (unsigned n = 0; (int64_t)__atomic_load_n(&own->done, __ATOMIC_ACQUIRE) < claims - mine; n++)
                    rx_relax(n);
            }
            const int64_t f0 = fb0 * nr, f1 = fb1 * nr < filters ? fb1 * nr : filters;
            rx_winograd_output(tile, mm, w.ldm, f0, f1, bias, tiles_w, t0, count, e->out + b * filters * oh * ow, oh,
                               ow);
        }
        if (own) __atomic_store_n(&own->busy, 0, __ATOMIC_RELEASE);
        if (shared) wino_help(&w, slots, team, tid);
    });
}

/* The micro-kernels over a panel of np pixels (rows [k0, k0 + kc) of k)
   for filter blocks [block0, block1) of one group's packed weights and
   bias: filter block0 * RX_MR + f into c + f * ldc. */
static void gemm_panel(const rx_gemm_isa *isa, const float *packed, const float *bias, int64_t filters, int64_t k,
                       int64_t k0, int64_t kc, int64_t block0, int64_t block1, const float *panel, int64_t np, float *c,
                       int64_t ldc)
{
    const int nr = isa->nr;
    for (int64_t blk = block0; blk < block1; blk++) {
        const int rows = (int)(filters - blk * RX_MR < RX_MR ? filters - blk * RX_MR : RX_MR);
        const float *a = packed + (blk * k + k0) * RX_MR, *bb = bias ? bias + blk * RX_MR : NULL;
        for (int64_t s = 0; s * nr < np; s++)
            isa->kernel(kc, a, RX_MR, panel + s * kc * nr, c + (blk - block0) * RX_MR * ldc + s * nr, ldc, rows,
                        (int)(np - s * nr < nr ? np - s * nr : nr), bb, k0 == 0);
    }
}

/* One task of a wide layer: pixels [p0, p0 + np) of the wide grid of
   sample `in` (one group's channels), filter blocks [block0, block1). */
static void wide_task(const rx_gemm_isa *isa, const rx_conv_geometry *g, const wide_plan *wp, const float *in,
                      float *out, const float *bias, const float *packed, int64_t filters, int64_t k, int64_t p0,
                      int64_t np, int64_t block0, int64_t block1, float *panel, const tally *tl, int64_t f_first)
{
    const rx_window *w = &g->win;
    const int nr = isa->nr;
    const int64_t row = wp->row, oh = g->out_height, ow = g->out_width, tile = (int64_t)nr * RX_TILES;
    const int64_t oy0 = p0 / row, oy1 = (p0 + np - 1) / row;
    const int64_t rows = oy1 - oy0 + 1 + (w->kh - 1) * w->dh, plane = rows * row;
    float *slab = panel + RX_KC * RX_NR_MAX * RX_TILES, *wout = slab + wp->slab;
    /* the slab: input rows oy0 - pt .., padded */
    for (int64_t c = 0; c < g->channels; c++)
        for (int64_t r = 0; r < rows; r++) {
            float *dst = slab + c * plane + r * row;
            const int64_t iy = oy0 - w->pt + r;
            if (iy < 0 || iy >= g->height) {
                memset(dst, 0, (size_t)row * sizeof *dst);
                continue;
            }
            memset(dst, 0, (size_t)w->pl * sizeof *dst);
            memcpy(dst + w->pl, in + (c * g->height + iy) * g->width, (size_t)g->width * sizeof *dst);
            memset(dst + w->pl + g->width, 0, (size_t)w->pr * sizeof *dst);
        }
    /* read past the end: the last slice's pixels and the last row's extra ones */
    memset(slab + g->channels * plane, 0, (size_t)(nr + (w->kw - 1) * w->dw) * sizeof *slab);
    const int64_t slices = (np + nr - 1) / nr;
    const float *first = slab + (p0 - oy0 * row); /* wide pixel p0, tap (0, 0, 0) */
    for (int64_t k0 = 0; k0 < k; k0 += RX_KC) {
        int64_t kc = k - k0 < RX_KC ? k - k0 : RX_KC;
        rx_pack_wide(first, plane, row, w, k0, kc, slices, nr, panel);
        gemm_panel(isa, packed, bias, filters, k, k0, kc, block0, block1, panel, np, wout, tile);
    }
    /* the output pixels among the wide ones: whole rows together, the
       filters' at once */
    const int64_t fb = block0 * RX_MR, f1 = block1 * RX_MR < filters ? block1 * RX_MR : filters;
    const float *src = wout - p0; /* filter fb's wide pixel j at src[j] */
    for (int64_t oy = oy0, rows; oy <= oy1 && oy < oh; oy += rows) {
        int64_t j0 = oy * row > p0 ? oy * row : p0, j1 = oy * row + ow < p0 + np ? oy * row + ow : p0 + np;
        rows = 1;
        if (j0 == oy * row && j1 == oy * row + ow)
            while (oy + rows <= oy1 && oy + rows < oh && (oy + rows) * row + ow <= p0 + np) rows++;
        const rx_block blk = {f1 - fb, rows, j1 - j0, tile, row, oh * ow, ow};
        if (j1 > j0) put_block(tl, f_first + fb, src + j0, out + fb * oh * ow + oy * ow + (j0 - oy * row), &blk);
    }
}

static void run(const rx_exec *e)
{
    const rx_layer *l = e->layer;
    if (l->winograd) {
        run_winograd(e);
        return;
    }
    const rx_gemm_isa *isa = rx_gemm_select();
    const int nr = isa->nr;
    rx_conv_geometry g = {
        .channels = e->in_shape[0]->d[0] / l->p.groups,
        .height = e->in_shape[0]->d[1], .width = e->in_shape[0]->d[2],
        .out_height = l->out.d[1], .out_width = l->out.d[2], .win = l->p.win,
    };
    const int64_t groups = l->p.groups, cout = l->p.out_channels, filters = cout / groups;
    const int64_t k = g.channels * g.win.kh * g.win.kw, pixels = g.out_height * g.out_width;
    wide_plan wp;
    const bool wide = runs_wide(l, e->in_shape[0], &wp);
    const int64_t grid = wide ? (g.out_height - 1) * wp.row + g.out_width : pixels; /* pixels computed */
    const int64_t tile = (int64_t)nr * RX_TILES, tiles = (grid + tile - 1) / tile;
    const int64_t per_thread = scratch(l, e->in_shape);
    const int64_t blocks = (filters + RX_MR - 1) / RX_MR;
    const int64_t in_plane = g.height * g.width, in_size = e->in_shape[0]->d[0] * in_plane;
    const float *bias = l->p.bias ? rx_weight(e->model, l, 1) : NULL;
    /* Enough tasks for every thread: split the filters when pixels are few,
       but each part packs the task's pixels again (RX_SPLIT_FILTERS). */
    const int threads = threads_for(e);
    int64_t units = e->batch * groups * tiles, split = 1;
    if (threads > 1 && units < 4 * threads) split = (4 * threads + units - 1) / units;
    if (split > filters / RX_SPLIT_FILTERS) split = filters / RX_SPLIT_FILTERS;
    if (split > blocks) split = blocks;
    if (split < 1) split = 1;
    const int64_t tasks = units * split;

    int64_t next = 0;
    RX_PARALLEL(threads, tid, team, {
        float *panel = e->scratch + tid * per_thread;
        tally tl = tally_start(e, panel + per_thread, team);
        for (int64_t t; (t = rx_next_task(&next)) < tasks;) {
            int64_t part = t % split, unit = t / split;
            int64_t tn = unit % tiles, bg = unit / tiles, b = bg / groups, grp = bg % groups;
            int64_t block0 = part * blocks / split, block1 = (part + 1) * blocks / split;
            int64_t p0 = tn * tile, np = grid - p0 < tile ? grid - p0 : tile;
            const float *in = e->in[0] + b * in_size + grp * g.channels * in_plane;
            tally_sample(e, &tl, b);
            if (wide) {
                wide_task(isa, &g, &wp, in, e->out + (b * cout + grp * filters) * pixels,
                          bias ? bias + grp * filters : NULL, l->packed + grp * blocks * k * RX_MR, filters, k, p0, np,
                          block0, block1, panel, &tl, grp * filters);
                continue;
            }
            float *out = e->out + (b * cout + grp * filters + block0 * RX_MR) * pixels + p0;
            for (int64_t k0 = 0; k0 < k; k0 += RX_KC) {
                int64_t kc = k - k0 < RX_KC ? k - k0 : RX_KC;
                rx_im2col(&g, in, p0, np, k0, kc, nr, panel);
                gemm_panel(isa, l->packed + grp * blocks * k * RX_MR, bias ? bias + grp * filters : NULL, filters, k,
                           k0, kc, block0, block1, panel, np, out, pixels);
            }
        }
        tally_flush(e, &tl);
    });
}

/* The ReLU after a wide convolution runs as each task's outputs are copied
   out of its wide rows, in cache (LeNet-5, one thread: statistics 1.038-
   1.044x the run -> 1.014-1.018x, the run itself no slower). Not after a
   direct one: a ReLU over a task's outputs as the micro-kernels leave them,
   in place, loads each plane's row at the same offset modulo 4 KiB as the
   stores just made to the plane before it (planes of 224x224 or 32x32
   floats), and waits on them: VGG-16's first layer ran 1.75-2.0 ms instead
   of 1.5-1.56 on one thread, 1.45-1.6 instead of 1.16 on two. Nor after
   Winograd: its output transform scatters one float at a time, and a
   vector ReLU reading those floats right after waits for the stores to land
   (a 128-filter 8x8 layer with its ReLU: statistics 1.07x the run instead
   of 1.005x); in the transform itself (on the 16 filters it holds in
   registers, counting per lane) it cost the CIFAR VGG's 3x3 layers 1-2%
   against 0.5-0.7% for the ReLU's own pass. */
static bool fuses_relu(const rectify_model *m, const rx_layer *l)
{
    wide_plan wp;
    return !l->winograd && runs_wide(l, input_shape(m, l), &wp);
}

const rx_op rx_op_conv = {
    .name = "conv", .fields = fields, .min_inputs = 1, .max_inputs = 1, .fuses_relu = fuses_relu,
    .parse = parse, .infer = infer, .scratch = scratch, .run = run, .prepare = prepare,
    .packed_floats = packed_floats,
};
