/*
 * sparsity_data.h: what `rectify sparsity` measures over a set of images, as
 * exact counts: per layer the zeros, the sum of squared per-image zero
 * counts, the fewest and most zeros in one image, the multiplications that
 * meet a zero input, the near-zeros (|x| <= eps), per channel the zeros, and
 * per class (--labels-from-dirs) the images, correct answers and zeros.
 *
 * Counts add up, so runs over parts of a data set merge into exactly the
 * report of the whole run: the JSON written by sparsity_data_json holds them
 * all, and sparsity_data_from_json reads them back to merge.
 */
#ifndef RECTIFY_CLI_SPARSITY_DATA_H
#define RECTIFY_CLI_SPARSITY_DATA_H

#include <stdint.h>
#include <stdio.h>

#include "json_out.h"
#include "rectify.h"

__extension__ typedef unsigned __int128 u128;

typedef struct layer_data {
    char *name, *op;
    int rank;
    int64_t shape[RECTIFY_MAX_RANK];
    int64_t per_image;       /* elements of one image's output */
    int64_t zeros;           /* over all images */
    u128 zeros_sq;           /* sum over images of (zeros in that image)^2 */
    int64_t min_zeros, max_zeros;
    int64_t near_zeros;      /* |x| <= eps, with eps */
    int64_t macs_per_image;  /* conv and dense */
    int64_t zero_macs;       /* multiplications whose input is 0, over all images */
    int64_t channels, plane; /* channels of the output and elements per channel */
    int64_t *channel_zeros;  /* with per_channel: over all images */
} layer_data;

typedef struct class_data {
    char *name;
    int64_t images, correct;
    int64_t *zeros;          /* per layer */
} class_data;

typedef struct failure_data {
    char *path, *error;
} failure_data;

typedef struct sparsity_data {
    char *model;
    int64_t images;          /* images run */
    int64_t not_images;      /* files in folders skipped as not PNG or JPEG */
    failure_data *failures;
    int64_t failure_count, failure_capacity;
    int has_eps;
    double eps;
    int per_channel;
    int labelled;            /* --labels-from-dirs */
    class_data *classes;
    int64_t class_count, class_capacity;
    int64_t shard_index, shard_count; /* 0 when not a shard */
    layer_data *layers;
    int layer_count;
} sparsity_data;

/* The layers of `model`, all counts zero. Returns 0 or EXIT_RUNTIME. */
int sparsity_data_init(sparsity_data *data, const rectify_model *model, int per_channel, int has_eps,
                       double eps, int labelled);
void sparsity_data_free(sparsity_data *data);

/* Records a failed image (or unreadable folder). Returns 0 or EXIT_RUNTIME. */
int sparsity_data_fail(sparsity_data *data, const char *path, const char *error);

/* The class named `name`, added if new; NULL when out of memory. */
class_data *sparsity_data_class(sparsity_data *data, const char *name);

/* Adds one image: zeros[l] zeros in layer l's output, near[l] near-zeros,
   zero_macs[l] multiplications with a zero input; `cls` may be NULL. */
void sparsity_data_add_image(sparsity_data *data, const int64_t *zeros, const int64_t *near,
                             const int64_t *zero_macs, class_data *cls, int correct);

/* Adds `other` into `data` (same model and layers, checked). Returns 0 or
   EXIT_RUNTIME with the reason printed, naming `label`. */
int sparsity_data_merge(sparsity_data *data, const sparsity_data *other, const char *label);

/* The report as JSON (counts exact, fractions 0..1) under doc.root. */
void sparsity_data_json(const sparsity_data *data, json_doc *doc);
/* Reads a document written by sparsity_data_json. Returns 0, or prints the
   reason (naming `label`) and returns EXIT_RUNTIME. */
int sparsity_data_from_json(sparsity_data *data, const cJSON *root, const char *label);

/* Derived figures. */
double layer_mean(const sparsity_data *data, const layer_data *layer);
double layer_min(const sparsity_data *data, const layer_data *layer);
double layer_max(const sparsity_data *data, const layer_data *layer);
double layer_std(const sparsity_data *data, const layer_data *layer);
/* Channels with a zero in every position of every image. */
int64_t layer_dead_channels(const sparsity_data *data, const layer_data *layer);
/* APoZ of channel c: zeros / (images x plane). */
double layer_apoz(const sparsity_data *data, const layer_data *layer, int64_t c);
/* q-th quantile (0..1) of the layer's APoZ values, linear between ranks
   (numpy's default). */
double layer_apoz_quantile(const sparsity_data *data, const layer_data *layer, double q);
int layer_is_relu(const layer_data *layer);

/* The tables for people (stdout) and the CSV files. */
int sparsity_data_print(const sparsity_data *data, FILE *stream);
int sparsity_data_csv(const sparsity_data *data, const char *path);

#endif /* RECTIFY_CLI_SPARSITY_DATA_H */
