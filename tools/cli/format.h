/*
 * format.h: numbers and shapes as the human tables show them. Each function
 * writes a NUL-terminated string into `buffer` (truncated to `size`) and
 * returns it, so calls can be used as printf arguments.
 */
#ifndef RECTIFY_CLI_FORMAT_H
#define RECTIFY_CLI_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any of the strings below. */
#define FORMAT_BUFFER 64

/* 6x28x28 */
const char *format_shape(char *buffer, size_t size, int rank, const int64_t *shape);

/* 138,357,544 */
const char *format_count(char *buffer, size_t size, int64_t value);

/* 138.36M, 15.47G, 61.71K, 512: decimal suffixes, as for params and MACs. */
const char *format_scaled(char *buffer, size_t size, int64_t value);

/* 527.79 MiB, 1.50 KiB, 512 B: binary units, as for memory. */
const char *format_bytes(char *buffer, size_t size, int64_t bytes);

/* zeros / elements as a fraction; 0 when there are no elements. */
double ratio(int64_t zeros, int64_t elements);

#endif /* RECTIFY_CLI_FORMAT_H */
