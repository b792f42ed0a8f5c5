/*
 * sparsity_plots.h: pictures of a `rectify sparsity` report: a bar chart of
 * sparsity per layer (SVG, written by hand) and per-channel APoZ heatmaps
 * (PNG). Both are written under a temporary name and renamed into place.
 */
#ifndef RECTIFY_CLI_SPARSITY_PLOTS_H
#define RECTIFY_CLI_SPARSITY_PLOTS_H

#include "sparsity_data.h"

/* Bars: mean sparsity per layer; whiskers: min and max over the images.
   Returns 0 or EXIT_RUNTIME (reported). */
int sparsity_svg(const sparsity_data *data, const char *path);

/* One PNG per layer with channel counts, DIR/NN-LAYER.png: a grid of
   channels coloured by APoZ, dead channels marked; DIR is created if
   missing. Returns 0 or EXIT_RUNTIME (reported). */
int sparsity_png(const sparsity_data *data, const char *dir);

#endif /* RECTIFY_CLI_SPARSITY_PLOTS_H */
