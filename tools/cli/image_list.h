/*
 * image_list.h: the images a `sparsity` run covers. Folders are walked
 * recursively and their files kept when their first bytes are those of a
 * PNG or a JPEG (the extension is not looked at); files named on the command
 * line are kept whatever they hold, so that a bad one is reported. The list
 * is sorted by path (byte order), so that it and its shards are the same on
 * every machine.
 */
#ifndef RECTIFY_CLI_IMAGE_LIST_H
#define RECTIFY_CLI_IMAGE_LIST_H

#include <stdint.h>

typedef struct image_entry {
    char *path;     /* owned */
    char *class_name; /* the name of the folder holding it (owned) */
} image_entry;

typedef struct list_problem {
    char *path, *message; /* owned */
} list_problem;

typedef struct image_list {
    image_entry *images;
    int64_t count, capacity;
    int64_t not_images;    /* files in walked folders that are not PNG or JPEG */
    list_problem *problems; /* folders or files that could not be read */
    int64_t problem_count, problem_capacity;
} image_list;

/* Collects the images of `paths` (files or folders) into `list`, sorted
   and without duplicates. Returns 0, or -1 when out of memory (reported). */
int image_list_collect(image_list *list, char *const *paths, int count);

/* Keeps only shard `index` (1-based) of `shards`: the slice
   [(index-1)*n/shards, index*n/shards) of the sorted list. */
void image_list_shard(image_list *list, int64_t index, int64_t shards);

void image_list_free(image_list *list);

/* Whether these first bytes of a file are a PNG or a JPEG signature. */
int image_magic(const unsigned char *bytes, size_t size);

#endif /* RECTIFY_CLI_IMAGE_LIST_H */
