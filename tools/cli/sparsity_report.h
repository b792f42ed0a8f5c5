/*
 * sparsity_report.h: per-layer sparsity gathered from a session, as a table
 * or as JSON. `run --sparsity` reports the last run (one image); `sparsity`
 * reports everything accumulated over the images run so far.
 */
#ifndef RECTIFY_CLI_SPARSITY_REPORT_H
#define RECTIFY_CLI_SPARSITY_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "json_out.h"
#include "rectify.h"

typedef enum sparsity_scope {
    SPARSITY_LAST_RUN,     /* the stats' elements and zeros */
    SPARSITY_ACCUMULATED,  /* total_elements, total_zeros and per-sample spread */
} sparsity_scope;

typedef struct layer_sparsity {
    rectify_layer_info info;
    int64_t elements;       /* summed over the images in scope */
    int64_t zeros;
    double sparsity;        /* zeros / elements */
    /* Per-image sparsity across the images (accumulated scope); for one
       image all three equal `sparsity`. */
    double mean, min, max;
} layer_sparsity;

typedef struct sparsity_report {
    sparsity_scope scope;
    int64_t samples;        /* images the statistics cover */
    layer_sparsity *layers;
    int layer_count;
    int relu_layers;        /* layers whose op is "relu" */
    int64_t relu_elements, relu_zeros;
    int64_t all_elements, all_zeros;
} sparsity_report;

/* Reads every layer's statistics. Returns 0, or prints the reason and returns
   EXIT_RUNTIME (and the report needs no freeing). */
int sparsity_report_collect(sparsity_report *report, const rectify_model *model,
                            const rectify_session *session, sparsity_scope scope);
void sparsity_report_free(sparsity_report *report);

/* The per-layer table and the whole-network lines, indented by `indent`.
   With `spread`, mean/min/max columns replace the single sparsity column.
   Returns 0, or prints the reason and returns EXIT_RUNTIME. */
int sparsity_report_print(const sparsity_report *report, FILE *stream, int indent, int spread);

/* The layers as a JSON array under `key`; with `spread`, "mean", "min" and
   "max" too. Fractions are 0..1. */
void sparsity_report_layers_json(const sparsity_report *report, json_doc *doc,
                                 cJSON *parent, const char *key, int spread);

/* zeros / elements over all ReLU outputs (0 without ReLU layers) and over all
   layers. */
double sparsity_report_relu(const sparsity_report *report);
double sparsity_report_total(const sparsity_report *report);

#endif /* RECTIFY_CLI_SPARSITY_REPORT_H */
