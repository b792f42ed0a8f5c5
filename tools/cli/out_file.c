/* out_file.c: write to a temporary name, then rename. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "out_file.h"

int out_file_open(out_file *file, const char *path)
{
    memset(file, 0, sizeof *file);
    size_t length = strlen(path);
    file->path = malloc(length + 1);
    file->temp_path = malloc(length + 16);
    if (file->path == NULL || file->temp_path == NULL) {
        free(file->path), free(file->temp_path);
        return cli_error("out of memory");
    }
    memcpy(file->path, path, length + 1);
    snprintf(file->temp_path, length + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(file->temp_path);
    if (fd < 0) {
        int saved = errno;
        free(file->path), free(file->temp_path);
        return cli_error("cannot write %s: %s", path, strerror(saved));
    }
    fchmod(fd, 0644); /* mkstemp makes it 0600; an output file is ordinary */
    file->stream = fdopen(fd, "wb");
    if (file->stream == NULL) {
        close(fd);
        unlink(file->temp_path);
        free(file->path), free(file->temp_path);
        return cli_error("cannot write %s: out of memory", path);
    }
    return 0;
}

void out_file_abort(out_file *file)
{
    if (file->stream != NULL)
        fclose(file->stream);
    if (file->temp_path != NULL)
        unlink(file->temp_path);
    free(file->path), free(file->temp_path);
    memset(file, 0, sizeof *file);
}

int out_file_commit(out_file *file)
{
    /* On the disk before the rename, or a crash could leave the new name on
       a file whose data never arrived. */
    int failed = fflush(file->stream) != 0 || ferror(file->stream) || fsync(fileno(file->stream)) != 0;
    int saved = errno;
    failed |= fclose(file->stream) != 0;
    file->stream = NULL;
    if (!failed && rename(file->temp_path, file->path) != 0) {
        failed = 1;
        saved = errno;
    }
    int status = 0;
    if (failed) {
        status = cli_error("cannot write %s: %s", file->path, strerror(saved ? saved : EIO));
        unlink(file->temp_path);
    }
    free(file->path), free(file->temp_path);
    memset(file, 0, sizeof *file);
    return status;
}

int out_file_write(const char *path, const void *bytes, size_t size)
{
    out_file file;
    int status = out_file_open(&file, path);
    if (status != 0)
        return status;
    if (fwrite(bytes, 1, size, file.stream) != size) {
        out_file_abort(&file);
        return cli_error("cannot write %s", path);
    }
    return out_file_commit(&file);
}
