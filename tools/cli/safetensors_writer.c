/* safetensors_writer.c: F32 safetensors, written to a temporary file and
   renamed into place (out_file.c). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "safetensors_writer.h"

/* Floats converted per fwrite. */
#define CHUNK_FLOATS 16384

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
    if (text == NULL)
        return cli_error("out of memory");
    int status = out_file_open(&writer->out, path);
    if (status != 0) {
        cJSON_free(text);
        return status;
    }
    int64_t header_bytes;
    int failed = write_header(writer->out.stream, text, &header_bytes) != 0;
    cJSON_free(text);
    if (failed) {
        status = cli_error("cannot write %s: %s", path, strerror(errno));
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
        if (fwrite(bytes, 4, chunk, writer->out.stream) != chunk)
            return cli_error("cannot write %s: %s", writer->out.path, strerror(errno));
        writer->bytes_written += 4 * (int64_t)chunk;
        values += chunk;
        count -= chunk;
    }
    return 0;
}

int safetensors_finish(safetensors_writer *writer)
{
    if (writer->bytes_written != writer->data_bytes) {
        int status = cli_error("internal error: %lld bytes of tensor data written, %lld expected",
                               (long long)writer->bytes_written, (long long)writer->data_bytes);
        safetensors_abort(writer);
        return status;
    }
    return out_file_commit(&writer->out); /* fsync, close, rename; removes it on failure */
}

void safetensors_abort(safetensors_writer *writer)
{
    if (writer->out.path != NULL)
        out_file_abort(&writer->out);
}
