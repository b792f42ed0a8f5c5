/* packed.c: a model's weights as its kernels read them, saved once and
   mapped at the next load, so that loading does no packing and reads
   nothing: the pages fault in when the first run reads them.

   The file (little-endian):
     header    magic "RXPACK\r\n", version, the ISA the model was packed
               for (name, nr), flags, the number of tensors, the file's size;
     entries   one per weight tensor of the graph, in the model's order:
               its name and shape (checked against the graph), how it is
               stored (as bound, or as its layer's packed weights with the
               layer's Winograd tile), and where (offset, bytes);
     data      each tensor's bytes at a page-aligned offset.
   The layouts are the ops' (packed_floats says how many floats each layer
   needs and refuses choices invalid for it). Only Winograd's depend on the
   CPU (filters in blocks of the micro-kernel's nr): a file packed on
   another CPU loads when no such layer disagrees. RX_PACK_VERSION changes
   whenever a layout does (RX_MR, dense's blocks, Winograd's order). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "ops/op.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"

#define RX_PACK_VERSION 1
#define RX_PACK_ALIGN RX_PAGE_BYTES /* regions start on a page: mapped, they are page-aligned */
#define RX_PACK_NONFINITE 1u /* flags: some weights are NaN or infinite */

static const char magic[8] = {'R', 'X', 'P', 'A', 'C', 'K', '\r', '\n'};

typedef struct pack_header {
    char magic[8];
    uint32_t version;
    uint32_t nr;        /* the micro-kernel's pixels per tile when packed */
    char isa[16];       /* its name, for messages */
    uint32_t flags;
    uint32_t tensors;
    uint64_t file_bytes;
} pack_header;

typedef struct pack_entry {
    char name[RECTIFY_MAX_NAME + 16];
    int64_t shape[4];
    int32_t rank;
    int32_t winograd;   /* packed: its layer's tile (0 direct); -1 stored as bound */
    uint64_t offset, bytes;
} pack_entry;

_Static_assert(sizeof(pack_header) == 48 && sizeof(pack_entry) == 144 + 32 + 8 + 16,
               "the file's structures have no padding");

bool rx_is_packed(const void *data, size_t size)
{
    return data && size >= sizeof magic && memcmp(data, magic, sizeof magic) == 0;
}

/* A tensor an op's prepare packed (its layer's first), rather than one read as bound. */
static bool is_packed_tensor(const rectify_model *m, int i)
{
    const rx_tensor *t = &m->tensors[i];
    const rx_layer *l = &m->layers[t->layer];
    return l->op->prepare && l->tensor_first == i;
}

static uint64_t align_up(uint64_t x) { return (x + RX_PACK_ALIGN - 1) & ~(uint64_t)(RX_PACK_ALIGN - 1); }

static void shape_text(char *buf, size_t size, const int64_t *d, int rank)
{
    rx_shape s = {rank, {0}};
    for (int k = 0; k < rank && k < RECTIFY_MAX_RANK; k++) s.d[k] = d[k];
    rx_shape_format(&s, buf, size);
}

rectify_status rx_bind_packed(rectify_model *m, const char *file, rectify_error *err)
{
    rx_ctx c = {.err = err, .file = file};
    const unsigned char *data = m->weights.data;
    const size_t size = m->weights.size;
    pack_header h;
    if (size < sizeof h) return rx_cfail(&c, RECTIFY_ERR_PARSE, "%zu bytes: too short for a packed weights file", size);
    memcpy(&h, data, sizeof h);
    if (h.version != RX_PACK_VERSION)
        return rx_cfail(&c, RECTIFY_ERR_INVALID,
                        "packed weights of format version %u, this rectify reads version %d: pack them again "
                        "(rectify pack)", h.version, RX_PACK_VERSION);
    if (h.file_bytes != size)
        return rx_cfail(&c, RECTIFY_ERR_PARSE, "%zu bytes, but the header says %llu: the file is cut or grown", size,
                        (unsigned long long)h.file_bytes);
    if (h.tensors != (uint32_t)m->tensor_count)
        return rx_cfail(&c, RECTIFY_ERR_INVALID, "packed for a model of %u weight tensors, this one has %d",
                        h.tensors, m->tensor_count);
    if ((h.flags & RX_PACK_NONFINITE) && !m->allow_nonfinite)
        return rx_cfail(&c, RECTIFY_ERR_INVALID,
                        "packed from weights holding NaN or infinite values; set allow_nonfinite to load them");
    const uint64_t table = sizeof h + (uint64_t)h.tensors * sizeof(pack_entry);
    if (table > size) return rx_cfail(&c, RECTIFY_ERR_PARSE, "its table of tensors does not fit in its %zu bytes", size);
    const rx_gemm_isa *isa = rx_gemm_select();
    const uint32_t nr = h.nr;
    h.isa[sizeof h.isa - 1] = '\0';
    int64_t weight_bytes = 0;
    rectify_status st = RECTIFY_OK;
    for (int i = 0; i < m->tensor_count && !st; i++) {
        pack_entry e;
        memcpy(&e, data + sizeof h + (size_t)i * sizeof e, sizeof e);
        e.name[sizeof e.name - 1] = '\0';
        rx_tensor *t = &m->tensors[i];
        rx_layer *l = &m->layers[t->layer];
        bool same = strcmp(e.name, t->name) == 0 && e.rank == t->shape.rank;
        for (int k = 0; same && k < t->shape.rank; k++) same = e.shape[k] == t->shape.d[k];
        if (!same) {
            char want[96], have[96];
            shape_text(want, sizeof want, t->shape.d, t->shape.rank);
            shape_text(have, sizeof have, e.shape, e.rank >= 0 && e.rank <= 4 ? e.rank : 0);
            st = rx_cfail(&c, RECTIFY_ERR_INVALID,
                          "tensor %d is \"%s\" (%s), the model needs \"%s\" (%s): packed for another model", i,
                          e.name, have, t->name, want);
            break;
        }
        int64_t floats = t->elements;
        if (is_packed_tensor(m, i)) {
            if (e.winograd < 0) {
                st = rx_cfail(&c, RECTIFY_ERR_INVALID, "tensor \"%s\" is stored as it is, but layer \"%s\" reads it packed",
                              t->name, l->name);
                break;
            }
            l->winograd = e.winograd;
            floats = l->op->packed_floats(m, l);
            if (floats < 0) {
                st = rx_cfail(&c, RECTIFY_ERR_INVALID, "tensor \"%s\": packed with Winograd tile %d, which layer \"%s\" cannot run",
                              t->name, (int)e.winograd, l->name);
                break;
            }
            if (e.winograd && nr != (uint32_t)isa->nr) {
                st = rx_cfail(&c, RECTIFY_ERR_INVALID,
                              "tensor \"%s\": packed for the %s kernels (Winograd filters in blocks of %u), this "
                              "CPU runs the %s kernels (blocks of %d): pack the weights again on this machine",
                              t->name, h.isa, nr, isa->name, isa->nr);
                break;
            }
        } else if (e.winograd != -1) {
            st = rx_cfail(&c, RECTIFY_ERR_INVALID, "tensor \"%s\" is stored packed, but its layer reads it as it is", t->name);
            break;
        }
        if (e.bytes != (uint64_t)floats * sizeof(float) || e.offset % RX_PACK_ALIGN || e.offset < table ||
            e.offset > size || e.bytes > size - e.offset) {
            st = rx_cfail(&c, RECTIFY_ERR_INVALID,
                          "tensor \"%s\": %llu bytes at offset %llu, where %lld bytes at a page boundary inside the "
                          "file's %zu were expected", t->name, (unsigned long long)e.bytes,
                          (unsigned long long)e.offset, (long long)floats * 4, size);
            break;
        }
        const float *p = (const float *)(data + e.offset);
        if (is_packed_tensor(m, i)) l->packed = (float *)p; /* never written: the mapping is read-only */
        else t->data = p;
        weight_bytes += t->elements * 4; /* as from safetensors: the tensors' float32 bytes */
    }
    if (st) {
        for (int i = 0; i < m->layer_count; i++) m->layers[i].packed = NULL, m->layers[i].winograd = 0;
        for (int i = 0; i < m->tensor_count; i++) m->tensors[i].data = NULL;
        return st;
    }
    m->weight_bytes = weight_bytes;
    return RECTIFY_OK;
}

/* The bytes tensor i takes in the file: its layer's packed weights, or itself. */
static const void *tensor_bytes(const rectify_model *m, int i, uint64_t *bytes)
{
    const rx_tensor *t = &m->tensors[i];
    const rx_layer *l = &m->layers[t->layer];
    if (is_packed_tensor(m, i)) {
        *bytes = (uint64_t)l->op->packed_floats(m, l) * sizeof(float);
        return l->packed;
    }
    *bytes = (uint64_t)t->elements * sizeof(float);
    return t->data;
}

static bool write_all(FILE *f, const void *p, uint64_t bytes)
{
    return bytes == 0 || fwrite(p, 1, bytes, f) == bytes;
}

static bool pad_to(FILE *f, uint64_t *at, uint64_t target)
{
    static const char zeros[RX_PACK_ALIGN];
    while (*at < target) {
        uint64_t n = target - *at < sizeof zeros ? target - *at : sizeof zeros;
        if (fwrite(zeros, 1, n, f) != n) return false;
        *at += n;
    }
    return true;
}

rectify_status rectify_model_save_packed(const rectify_model *m, const char *path, rectify_error *err)
{
    rx_ok(err);
    if (!m || !path) return rx_fail(err, RECTIFY_ERR_ARGUMENT, "%s is NULL", m ? "path" : "model");
    if (m->graph_only) return rx_fail(err, RECTIFY_ERR_INVALID, "the model was loaded without weights: nothing to pack");
    struct stat sb;
    if (m->weights.mapped && stat(path, &sb) == 0 && (uint64_t)sb.st_dev == m->weights.dev &&
        (uint64_t)sb.st_ino == m->weights.ino)
        return rx_fail(err, RECTIFY_ERR_INVALID, "%s: the weights file this model was loaded from: write the packed "
                       "weights elsewhere", path);
    const rx_gemm_isa *isa = rx_gemm_select();
    pack_header h = {.version = RX_PACK_VERSION, .nr = (uint32_t)isa->nr, .tensors = (uint32_t)m->tensor_count};
    memcpy(h.magic, magic, sizeof magic);
    snprintf(h.isa, sizeof h.isa, "%s", isa->name);
    pack_entry *entries = calloc((size_t)m->tensor_count + 1, sizeof *entries);
    if (!entries) return rx_fail(err, RECTIFY_ERR_NOMEM, "out of memory");
    uint64_t offset = align_up(sizeof h + (uint64_t)m->tensor_count * sizeof *entries);
    int64_t nonfinite = 0;
    for (int i = 0; i < m->tensor_count; i++) {
        const rx_tensor *t = &m->tensors[i];
        pack_entry *e = &entries[i];
        snprintf(e->name, sizeof e->name, "%s", t->name);
        e->rank = t->shape.rank;
        for (int k = 0; k < t->shape.rank; k++) e->shape[k] = t->shape.d[k];
        e->winograd = is_packed_tensor(m, i) ? m->layers[t->layer].winograd : -1;
        const void *p = tensor_bytes(m, i, &e->bytes);
        e->offset = offset;
        offset = align_up(offset + e->bytes);
        /* Not checked at the next load: recorded now. */
        if (m->allow_nonfinite) nonfinite += rx_count_nonfinite(p, (int64_t)(e->bytes / sizeof(float)));
    }
    h.flags = nonfinite ? RX_PACK_NONFINITE : 0;
    h.file_bytes = offset;
    /* Written beside the target (a new file: O_EXCL follows no link and
       meets no other writer) and renamed over it: a reader never sees half
       a file, and a failure leaves what was there. */
    static _Atomic unsigned serial;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld-%u.partial", path, (long)getpid(), serial++);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        if (fd >= 0) close(fd), unlink(tmp);
        rectify_status st = rx_fail(err, RECTIFY_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(entries);
        return st;
    }
    uint64_t at = 0;
    bool ok = write_all(f, &h, sizeof h) && write_all(f, entries, (uint64_t)m->tensor_count * sizeof *entries);
    at = sizeof h + (uint64_t)m->tensor_count * sizeof *entries;
    for (int i = 0; ok && i < m->tensor_count; i++) {
        uint64_t bytes;
        const void *p = tensor_bytes(m, i, &bytes);
        ok = pad_to(f, &at, entries[i].offset) && write_all(f, p, bytes);
        at += bytes;
    }
    ok = ok && pad_to(f, &at, h.file_bytes) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) ok = false, saved = errno;
    free(entries);
    if (ok && rename(tmp, path) == 0) return RECTIFY_OK;
    if (ok) saved = errno;
    unlink(tmp);
    return rx_fail(err, RECTIFY_ERR_IO, "%s: cannot write: %s", path, strerror(saved));
}
