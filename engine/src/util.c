/* util.c: errors, checked arithmetic, files, shapes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

const char *rectify_version(void) { return RECTIFY_VERSION_STRING; }

const char *rectify_status_name(rectify_status status)
{
    switch (status) {
    case RECTIFY_OK: return "ok";
    case RECTIFY_ERR_IO: return "io";
    case RECTIFY_ERR_PARSE: return "parse";
    case RECTIFY_ERR_INVALID: return "invalid";
    case RECTIFY_ERR_LIMIT: return "limit";
    case RECTIFY_ERR_NOMEM: return "nomem";
    case RECTIFY_ERR_ARGUMENT: return "argument";
    }
    return "unknown";
}

void rx_ok(rectify_error *err)
{
    if (err) { err->status = RECTIFY_OK; err->message[0] = '\0'; }
}

static rectify_status vfail(rectify_error *err, rectify_status status, const char *prefix,
                            const char *fmt, va_list ap)
{
    if (!err) return status;
    err->status = status;
    int n = snprintf(err->message, sizeof err->message, "%s", prefix);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof err->message)
        vsnprintf(err->message + n, sizeof err->message - (size_t)n, fmt, ap);
    return status;
}

rectify_status rx_fail(rectify_error *err, rectify_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, status, "", fmt, ap);
    va_end(ap);
    return status;
}

rectify_status rx_cfail(rx_ctx *c, rectify_status status, const char *fmt, ...)
{
    char prefix[RECTIFY_MAX_NAME + 4096 + 64];
    if (c->section && !c->layer)
        snprintf(prefix, sizeof prefix, "%s: %s: ", c->file, c->section);
    else if (c->layer && !c->layer[0])
        snprintf(prefix, sizeof prefix, "%s: layer #%d: ", c->file, c->layer_index);
    else if (c->layer)
        snprintf(prefix, sizeof prefix, "%s: layer \"%s\" (#%d): ", c->file, c->layer, c->layer_index);
    else
        snprintf(prefix, sizeof prefix, "%s: ", c->file);
    va_list ap;
    va_start(ap, fmt);
    vfail(c->err, status, prefix, fmt, ap);
    va_end(ap);
    return status;
}

bool rx_mul_overflow(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out) || *out < 0;
}

rectify_status rx_read_file(const char *path, size_t limit, char **data, size_t *size,
                            rectify_error *err)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rx_fail(err, RECTIFY_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return rx_fail(err, RECTIFY_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > limit) {
        fclose(f);
        return rx_fail(err, RECTIFY_ERR_LIMIT, "%s: %lld bytes, more than the limit of %zu", path,
                       (long long)st.st_size, limit);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return rx_fail(err, RECTIFY_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int failed = ferror(f);
    fclose(f);
    if (got != n || failed) {
        free(buf);
        return rx_fail(err, RECTIFY_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return RECTIFY_OK;
}

rectify_status rx_map_file(const char *path, rx_blob *blob, rectify_error *err)
{
    memset(blob, 0, sizeof *blob);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rx_fail(err, RECTIFY_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rx_fail(err, RECTIFY_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return RECTIFY_OK; /* empty: data stays NULL, size 0 */
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return rx_fail(err, RECTIFY_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    blob->data = p;
    blob->size = (size_t)st.st_size;
    blob->mapped = true;
    blob->dev = (uint64_t)st.st_dev;
    blob->ino = (uint64_t)st.st_ino;
    return RECTIFY_OK;
}

void rx_release_mapped(const rx_blob *blob, const void *p, size_t bytes)
{
    const unsigned char *c = p;
    if (!blob->mapped || !c || c < blob->data || c + bytes > blob->data + blob->size) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)c + page - 1) & ~(page - 1), hi = ((uintptr_t)c + bytes) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void rx_unmap(const rectify_allocator *a, rx_blob *blob)
{
    if (blob->mapped) munmap((void *)blob->data, blob->size);
    else rx_free_aligned(a, blob->block); /* rectify_model_load_memory's copy */
    memset(blob, 0, sizeof *blob);
}

int64_t rx_shape_elements(const rx_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

int64_t rx_shape_channels(const rx_shape *s) { return s->d[0]; }

int64_t rx_shape_plane(const rx_shape *s)
{
    int64_t n = 1;
    for (int i = 1; i < s->rank; i++) n *= s->d[i];
    return n;
}

void rx_shape_format(const rx_shape *s, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->rank && used < size; i++) {
        int n = snprintf(buf + used, size - used, i ? "x%lld" : "%lld", (long long)s->d[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
}
