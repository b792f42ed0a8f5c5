/* alloc.c: the allocator hook. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *rx_malloc(const rectify_allocator *a, size_t size)
{
    return a->alloc(a->user, size ? size : 1);
}

void *rx_calloc(const rectify_allocator *a, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return NULL;
    void *p = rx_malloc(a, total);
    if (p) memset(p, 0, total ? total : 1);
    return p;
}

void *rx_grow(const rectify_allocator *a, void *p, size_t old_size, size_t new_size)
{
    void *q = rx_malloc(a, new_size);
    if (!q) return NULL;
    if (p) memcpy(q, p, old_size < new_size ? old_size : new_size);
    rx_free(a, p);
    return q;
}

void rx_free(const rectify_allocator *a, void *p)
{
    if (p) a->free(a->user, p);
}

/* Over-allocates by 64 bytes and keeps the original pointer just below the
   aligned address. */
void *rx_malloc_aligned(const rectify_allocator *a, size_t size)
{
    if (size > SIZE_MAX - 64 - sizeof(void *)) return NULL;
    unsigned char *raw = rx_malloc(a, size + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t at = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    memcpy((void *)(at - sizeof(void *)), &raw, sizeof raw);
    return (void *)at;
}

size_t rx_request_bytes(size_t size, bool aligned)
{
    if (aligned) return size + 64 + sizeof(void *);
    return size ? size : 1;
}

void rx_free_aligned(const rectify_allocator *a, void *p)
{
    if (!p) return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    rx_free(a, raw);
}
