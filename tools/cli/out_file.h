/*
 * out_file.h: an output file written under a temporary name beside its
 * target and renamed into place once complete, so that a reader never sees
 * half a file and a failed run leaves nothing behind. Every file the CLI
 * writes goes through it: CSV, SVG and PNG here, safetensors through
 * safetensors_writer; JSON goes to standard output.
 */
#ifndef RECTIFY_CLI_OUT_FILE_H
#define RECTIFY_CLI_OUT_FILE_H

#include <stdio.h>

typedef struct out_file {
    FILE *stream;     /* write here */
    char *path, *temp_path;
} out_file;

/* Returns 0, or reports the reason and returns EXIT_RUNTIME. */
int out_file_open(out_file *file, const char *path);
/* Flushes (to the disk: fsync), closes and renames; on any failure removes
   the temporary file.
   Returns 0 or EXIT_RUNTIME (reported). */
int out_file_commit(out_file *file);
/* Closes and removes the temporary file. */
void out_file_abort(out_file *file);

/* The whole of `bytes` written to `path` the same way. */
int out_file_write(const char *path, const void *bytes, size_t size);

#endif /* RECTIFY_CLI_OUT_FILE_H */
