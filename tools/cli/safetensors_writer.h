/*
 * safetensors_writer.h: writes an F32 safetensors file, streaming the data
 * (VGG-16's weights are half a gigabyte) into a temporary file beside the
 * target that is renamed into place only once complete (out_file.h), so that
 * a failure or an interruption never leaves a partial file under the
 * target's name.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
 * padded with spaces to a multiple of 8, then the tensors' data in order.
 */
#ifndef RECTIFY_CLI_SAFETENSORS_WRITER_H
#define RECTIFY_CLI_SAFETENSORS_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "out_file.h"

typedef struct safetensors_entry {
    const char *name;
    int rank;
    const int64_t *shape;
    int64_t elements;
} safetensors_entry;

typedef struct safetensors_metadata {
    const char *key;
    const char *value;
} safetensors_metadata;

typedef struct safetensors_writer {
    out_file out;           /* the temporary file (out_file.h) */
    int64_t data_bytes;     /* what the header promises */
    int64_t bytes_written;  /* data written so far */
    int64_t file_bytes;     /* 8 + header + data */
} safetensors_writer;

/* Opens the temporary file and writes the header for these tensors, in this
   order, and the optional metadata ("__metadata__", string values). Returns
   0, or prints the reason and returns EXIT_RUNTIME with nothing left on disk. */
int safetensors_begin(safetensors_writer *writer, const char *path,
                      const safetensors_entry *entries, int count,
                      const safetensors_metadata *metadata, int metadata_count);

/* Appends floats to the data, little-endian whatever the machine. After a
   failure, call safetensors_abort. */
int safetensors_write(safetensors_writer *writer, const float *values, size_t count);

/* Checks that all promised data was written, flushes it to disk and renames
   the file into place. Returns 0, or prints the reason, removes the
   temporary file and returns EXIT_RUNTIME. Either way the writer is done. */
int safetensors_finish(safetensors_writer *writer);

/* Closes and removes the temporary file (after a failure); safe to call on
   a writer that is already done. */
void safetensors_abort(safetensors_writer *writer);

#endif /* RECTIFY_CLI_SAFETENSORS_WRITER_H */
