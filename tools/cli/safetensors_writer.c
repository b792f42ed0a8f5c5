/* safetensors_writer.c: F32 safetensors, written to a temporary file and
   renamed into place. */
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, getpid */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "safetensors_writer.h"

/* Floats converted per fwrite. */
#define CHUNK_FLOATS 16384

static char *copy_string(const char *text)
{
    size_t size = strlen(text) + 1;
    char *copy = malloc(size);
    if (copy != NULL)
        memcpy(copy, text, size);
    return copy;
}

/* "<path>.tmp-<pid>": beside the target, so that rename() stays within one
   file system and is atomic; the pid keeps two runs apart. */
static char *temp_path_for(const char *path)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".tmp-%ld", (long)getpid());
    size_t size = strlen(path) + strlen(suffix) + 1;
    char *temp = malloc(size);
    if (temp != NULL)
        snprintf(temp, size, "%s%s", path, suffix);
    return temp;
}

static cJSON *tensor_header(const safetensors_entry *entry, int64_t begin)
{
    cJSON *tensor = cJSON_CreateObject();
    int ok = cJSON_AddStringToObject(tensor, "dtype", "F32") != NULL;
    cJSON *shape = ok ? cJSON_AddArrayToObject(tensor, "shape") : NULL;
    cJSON *offsets = shape != NULL ? cJSON_AddArrayToObject(tensor, "data_offsets") : NULL;
    ok = offsets != NULL;
    for (int i = 0; ok && i < entry->rank; i++)
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)entry->shape[i]));
    if (ok)
        ok = cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)begin)) &&
             cJSON_AddItemToArray(offsets,
                                  cJSON_CreateNumber((double)(begin + 4 * entry->elements)));
    if (!ok) {
        cJSON_Delete(tensor);
        return NULL;
    }
    return tensor;
}

static cJSON *metadata_header(const safetensors_metadata *metadata, int count)
{
    cJSON *object = cJSON_CreateObject();
    for (int i = 0; object != NULL && i < count; i++) {
        if (cJSON_AddStringToObject(object, metadata[i].key, metadata[i].value) == NULL) {
            cJSON_Delete(object);
            object = NULL;
        }
    }
    return object;
}

/* The header's JSON text, unpadded; NULL when out of memory. */
static char *header_text(const safetensors_entry *entries, int count,
                         const safetensors_metadata *metadata, int metadata_count,
                         int64_t *data_bytes)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && metadata_count > 0) {
        cJSON *meta = metadata_header(metadata, metadata_count);
        ok = meta != NULL && cJSON_AddItemToObject(root, "__metadata__", meta);
        if (!ok)
            cJSON_Delete(meta);
    }
    int64_t offset = 0;
    for (int i = 0; ok && i < count; i++) {
        cJSON *tensor = tensor_header(&entries[i], offset);
        ok = tensor != NULL && cJSON_AddItemToObject(root, entries[i].name, tensor);
        if (!ok)
            cJSON_Delete(tensor);
        offset += 4 * entries[i].elements;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    *data_bytes = offset;
    return text;
}

static void store_le64(unsigned char *bytes, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(value >> (8 * i));
}

/* Writes the length prefix and the header padded with spaces to a multiple
   of 8, so that the data that follows is aligned for the reader's mmap. */
static int write_header(FILE *file, const char *text, int64_t *written)
{
    size_t length = strlen(text);
    size_t padded = (length + 7) / 8 * 8;
    unsigned char prefix[8];
    store_le64(prefix, (uint64_t)padded);
    if (fwrite(prefix, 1, 8, file) != 8 || fwrite(text, 1, length, file) != length)
        return -1;
    for (size_t i = length; i < padded; i++)
        if (fputc(' ', file) == EOF)
            return -1;
    *written = 8 + (int64_t)padded;
    return 0;
}

int safetensors_begin(safetensors_writer *writer, const char *path,
                      const safetensors_entry *entries, int count,
                      const safetensors_metadata *metadata, int metadata_count)
{
    memset(writer, 0, sizeof *writer);
    char *text = header_text(entries, count, metadata, metadata_count, &writer->data_bytes);
    writer->final_path = copy_string(path);
    writer->temp_path = temp_path_for(path);
    if (text == NULL || writer->final_path == NULL || writer->temp_path == NULL) {
        cJSON_free(text);
        safetensors_abort(writer);
        return cli_error("out of memory");
    }

    /* "x": fail rather than clobber a file someone else is writing. */
    writer->file = fopen(writer->temp_path, "wbx");
    if (writer->file == NULL) {
        int status = cli_error("cannot create %s: %s", writer->final_path, strerror(errno));
        cJSON_free(text);
        free(writer->temp_path); /* not ours to remove */
        writer->temp_path = NULL;
        safetensors_abort(writer);
        return status;
    }
    int64_t header_bytes;
    int failed = write_header(writer->file, text, &header_bytes) != 0;
    cJSON_free(text);
    if (failed) {
        int status = cli_error("cannot write %s: %s", writer->final_path, strerror(errno));
        safetensors_abort(writer);
        return status;
    }
    writer->file_bytes = header_bytes + writer->data_bytes;
    return 0;
}

static void store_le32_float(unsigned char *bytes, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 4; i++)
        bytes[i] = (unsigned char)(bits >> (8 * i));
}

int safetensors_write(safetensors_writer *writer, const float *values, size_t count)
{
    unsigned char bytes[4 * CHUNK_FLOATS];
    while (count > 0) {
        size_t chunk = count < CHUNK_FLOATS ? count : CHUNK_FLOATS;
        for (size_t i = 0; i < chunk; i++)
            store_le32_float(bytes + 4 * i, values[i]);
        if (fwrite(bytes, 4, chunk, writer->file) != chunk)
            return cli_error("cannot write %s: %s", writer->final_path, strerror(errno));
        writer->bytes_written += 4 * (int64_t)chunk;
        values += chunk;
        count -= chunk;
    }
    return 0;
}

int safetensors_finish(safetensors_writer *writer)
{
    int status = 0;
    if (writer->bytes_written != writer->data_bytes) {
        status = cli_error("internal error: %lld bytes of tensor data written, %lld expected",
                           (long long)writer->bytes_written, (long long)writer->data_bytes);
    } else if (fflush(writer->file) != 0 || fsync(fileno(writer->file)) != 0) {
        /* Flushed to the disk before the rename, or a crash could leave the
           new name pointing at a file whose data never arrived. */
        status = cli_error("cannot write %s: %s", writer->final_path, strerror(errno));
    }
    if (status != 0) {
        safetensors_abort(writer);
        return status;
    }

    FILE *file = writer->file;
    writer->file = NULL;
    if (fclose(file) != 0) {
        status = cli_error("cannot write %s: %s", writer->final_path, strerror(errno));
    } else if (rename(writer->temp_path, writer->final_path) != 0) {
        status = cli_error("cannot rename %s to %s: %s", writer->temp_path,
                           writer->final_path, strerror(errno));
    } else {
        free(writer->temp_path);  /* renamed: nothing left to remove */
        writer->temp_path = NULL;
    }
    safetensors_abort(writer);    /* frees the rest, removes the file on failure */
    return status;
}

void safetensors_abort(safetensors_writer *writer)
{
    if (writer->file != NULL)
        fclose(writer->file);
    if (writer->temp_path != NULL)
        remove(writer->temp_path);
    free(writer->temp_path);
    free(writer->final_path);
    writer->file = NULL;
    writer->temp_path = NULL;
    writer->final_path = NULL;
}
