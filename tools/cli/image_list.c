/* image_list.c: walking folders for images, sorting, sharding. */
#define _POSIX_C_SOURCE 200809L /* lstat, strdup */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "image_list.h"

/* Deeper than this is a loop or a mistake. */
#define MAX_DEPTH 64

int image_magic(const unsigned char *b, size_t size)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(b, png, 8) == 0)
        return 1;
    return size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff;
}

static int sniff(const char *path)
{
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return image_magic(head, got);
}

/* The last folder name of `path` ("" for a file in the current folder). */
static char *parent_name(const char *path)
{
    const char *end = strrchr(path, '/');
    while (end != NULL && end > path && end[-1] == '/')
        end--;
    if (end == NULL || end == path)
        return strdup("");
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    size_t length = (size_t)(end - start);
    char *name = malloc(length + 1);
    if (name != NULL) {
        memcpy(name, start, length);
        name[length] = '\0';
    }
    return name;
}

static int add_image(image_list *list, const char *path)
{
    if (list->count == list->capacity) {
        int64_t capacity = list->capacity ? 2 * list->capacity : 256;
        image_entry *grown = realloc(list->images, (size_t)capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        list->images = grown;
        list->capacity = capacity;
    }
    image_entry *e = &list->images[list->count];
    e->path = strdup(path);
    e->class_name = parent_name(path);
    if (e->path == NULL || e->class_name == NULL) {
        free(e->path), free(e->class_name);
        return -1;
    }
    list->count++;
    return 0;
}

static int add_problem(image_list *list, const char *path, const char *message)
{
    if (list->problem_count == list->problem_capacity) {
        int64_t capacity = list->problem_capacity ? 2 * list->problem_capacity : 8;
        list_problem *grown = realloc(list->problems, (size_t)capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        list->problems = grown;
        list->problem_capacity = capacity;
    }
    list_problem *p = &list->problems[list->problem_count];
    p->path = strdup(path);
    p->message = strdup(message);
    if (p->path == NULL || p->message == NULL) {
        free(p->path), free(p->message);
        return -1;
    }
    list->problem_count++;
    return 0;
}

static char *join(const char *folder, const char *name)
{
    size_t a = strlen(folder), b = strlen(name);
    int slash = a > 0 && folder[a - 1] != '/';
    char *path = malloc(a + (size_t)slash + b + 1);
    if (path != NULL) {
        memcpy(path, folder, a);
        if (slash)
            path[a] = '/';
        memcpy(path + a + (size_t)slash, name, b + 1);
    }
    return path;
}

/* Symbolic links to folders are not followed (no loops); links to files are. */
static int walk(image_list *list, const char *folder, int depth)
{
    if (depth > MAX_DEPTH)
        return add_problem(list, folder, "folders nested too deep");
    DIR *dir = opendir(folder);
    if (dir == NULL)
        return add_problem(list, folder, strerror(errno));
    int status = 0;
    struct dirent *entry;
    while (status == 0 && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char *path = join(folder, entry->d_name);
        if (path == NULL) {
            status = -1;
            break;
        }
        struct stat link, target;
        if (lstat(path, &link) != 0)
            status = add_problem(list, path, strerror(errno));
        else if (S_ISDIR(link.st_mode))
            status = walk(list, path, depth + 1);
        else if (stat(path, &target) != 0)
            status = add_problem(list, path, strerror(errno));
        else if (S_ISREG(target.st_mode)) {
            if (sniff(path))
                status = add_image(list, path);
            else
                list->not_images++;
        }
        free(path);
    }
    closedir(dir);
    return status;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const image_entry *)a)->path, ((const image_entry *)b)->path);
}

int image_list_collect(image_list *list, char *const *paths, int count)
{
    memset(list, 0, sizeof *list);
    for (int i = 0; i < count; i++) {
        struct stat st;
        int status = stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode) ? walk(list, paths[i], 0)
                                                                      : add_image(list, paths[i]);
        if (status != 0) {
            image_list_free(list);
            return cli_error("out of memory listing the images");
        }
    }
    if (list->count > 1)
        qsort(list->images, (size_t)list->count, sizeof *list->images, by_path);
    int64_t kept = 0;
    for (int64_t i = 0; i < list->count; i++) {
        if (kept > 0 && strcmp(list->images[kept - 1].path, list->images[i].path) == 0) {
            free(list->images[i].path), free(list->images[i].class_name);
            continue;
        }
        list->images[kept++] = list->images[i];
    }
    list->count = kept;
    return 0;
}

void image_list_shard(image_list *list, int64_t index, int64_t shards)
{
    int64_t n = list->count, begin = (index - 1) * n / shards, end = index * n / shards;
    for (int64_t i = 0; i < n; i++)
        if (i < begin || i >= end)
            free(list->images[i].path), free(list->images[i].class_name);
    if (end > begin)
        memmove(list->images, list->images + begin, (size_t)(end - begin) * sizeof *list->images);
    list->count = end - begin;
}

void image_list_free(image_list *list)
{
    for (int64_t i = 0; i < list->count; i++)
        free(list->images[i].path), free(list->images[i].class_name);
    for (int64_t i = 0; i < list->problem_count; i++)
        free(list->problems[i].path), free(list->problems[i].message);
    free(list->images);
    free(list->problems);
    memset(list, 0, sizeof *list);
}
