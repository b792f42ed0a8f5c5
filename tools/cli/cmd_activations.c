/* cmd_activations.c: `rectify activations MODEL IMAGE --layer NAME -o
   grid.png`: one layer's feature maps as a grid of grey pictures, taken
   through the session's observer (so any layer works, even one whose buffer
   a later layer reuses). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json_out.h"
#include "png_out.h"
#include "runner.h"

static const cli_option activations_options[] = {
    {"layer", 'l', "NAME", "the layer to draw (required)"},
    {"output", 'o', "FILE", "write the PNG to FILE (required)"},
    {"weights", 0, "FILE", "use the weights in FILE instead of model.json's"},
    {"allow-nonfinite", 0, NULL, "load weights even if they hold NaN or infinity"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

typedef struct capture {
    int layer;
    float *copy;
    int64_t elements;
} capture;

static int grab(void *user, int layer, const rectify_tensor *output)
{
    capture *c = user;
    if (layer != c->layer)
        return 0;
    c->copy = malloc((size_t)output->elements * sizeof *c->copy);
    if (c->copy == NULL)
        return 1; /* stops the run: reported as out of memory below */
    memcpy(c->copy, output->data, (size_t)output->elements * sizeof *c->copy);
    c->elements = output->elements;
    return 0;
}

#define GRID_COLOR 0xc06000u /* between the maps: orange, never a value */

/* Maps of height x width, `maps` of them, in a square-ish grid, each
   magnified `zoom` times. Grey = x / max for x > 0 (zeros black); negative
   values (before a ReLU) in blue, -x / max. */
static int draw(const float *x, int64_t maps, int64_t height, int64_t width, const char *path, double *top)
{
    double max = 0;
    for (int64_t i = 0; i < maps * height * width; i++)
        if (fabs(x[i]) > max) max = fabs(x[i]);
    *top = max;
    int cols = (int)ceil(sqrt((double)maps));
    int rows = (int)((maps + cols - 1) / cols);
    int zoom = (int)(768 / (cols * width));
    if (zoom > 16) zoom = 16;
    if (zoom < 1) zoom = 1;
    const int gap = 2;
    int64_t cell_w = width * zoom, cell_h = height * zoom;
    int64_t total_w = cols * (cell_w + gap) + gap, total_h = rows * (cell_h + gap) + gap;
    if (total_w > 32768 || total_h > 32768)
        return cli_error("%lld maps of %lldx%lld make too large a picture", (long long)maps, (long long)height,
                         (long long)width);
    canvas c;
    int status = canvas_create(&c, (int)total_w, (int)total_h, GRID_COLOR);
    if (status != 0) return status;
    for (int64_t m = 0; m < maps; m++) {
        int64_t ox = gap + (m % cols) * (cell_w + gap), oy = gap + (m / cols) * (cell_h + gap);
        for (int64_t y = 0; y < cell_h; y++)
            for (int64_t xx = 0; xx < cell_w; xx++) {
                float v = x[(m * height + y / zoom) * width + xx / zoom];
                unsigned char *p = c.rgb + ((oy + y) * total_w + ox + xx) * 3;
                double level = max > 0 ? 255.0 * fabs(v) / max : 0.0;
                /* Only a true zero is black: the least non-zero is 1. */
                unsigned char g = (unsigned char)(v != 0.0f && level < 1.0 ? 1 : lround(level));
                if (v >= 0) p[0] = p[1] = p[2] = g;
                else p[0] = 0, p[1] = 0, p[2] = g;
            }
    }
    status = png_write(path, c.width, c.height, 3, c.rgb);
    canvas_free(&c);
    return status;
}

static int activations_command(const cli_args *args)
{
    const char *name = cli_value(args, "layer"), *output = cli_value(args, "output");
    if (name == NULL || name[0] == '\0')
        return cli_usage_error(args->command, "missing the layer: --layer NAME");
    if (output == NULL || output[0] == '\0')
        return cli_usage_error(args->command, "missing the output file: -o FILE");
    image_runner runner;
    int status = runner_open(&runner, args->positional[0], cli_value(args, "weights"), args->threads, 1);
    if (status != 0)
        return status;
    capture cap = {.layer = rectify_model_find_layer(runner.model, name)};
    rectify_layer_info info;
    if (cap.layer < 0) {
        runner_close(&runner);
        return cli_error("the model has no layer \"%s\" (see rectify summary)", name);
    }
    rectify_model_layer(runner.model, cap.layer, &info);
    rectify_session_set_observer(runner.session, grab, &cap);
    runner_result result = runner_run_image(&runner, 0, args->positional[1]);
    if (result == RUNNER_RAN && cap.copy == NULL)
        status = cli_error("out of memory");
    else if (result != RUNNER_RAN)
        status = EXIT_RUNTIME;
    int64_t maps = info.shape[0], height = info.rank == 3 ? info.shape[1] : 1,
            width = info.rank == 3 ? info.shape[2] : 1;
    double top = 0;
    if (status == 0)
        status = draw(cap.copy, maps, height, width, output, &top);
    if (status == 0) {
        int64_t zeros = 0, dead = 0;
        for (int64_t i = 0; i < cap.elements; i++) zeros += cap.copy[i] == 0.0f;
        for (int64_t m = 0; m < maps; m++) {
            int64_t z = 0;
            for (int64_t i = 0; i < height * width; i++) z += cap.copy[m * height * width + i] == 0.0f;
            dead += z == height * width;
        }
        if (args->json) {
            json_doc doc;
            json_doc_init(&doc);
            json_add_string(&doc, doc.root, "model", rectify_model_name(runner.model));
            json_add_string(&doc, doc.root, "image", args->positional[1]);
            json_add_string(&doc, doc.root, "layer", info.name);
            json_add_string(&doc, doc.root, "op", info.op);
            json_add_shape(&doc, doc.root, "shape", info.rank, info.shape);
            json_add_int(&doc, doc.root, "maps", maps);
            json_add_int(&doc, doc.root, "elements", cap.elements);
            json_add_int(&doc, doc.root, "zeros", zeros);
            json_add_int(&doc, doc.root, "all_zero_maps", dead);
            json_add_number(&doc, doc.root, "max_abs", top);
            json_add_string(&doc, doc.root, "path", output);
            status = json_doc_print(&doc);
        } else {
            printf("Wrote %s: %lld maps of %s (%s), %lldx%lld each; %lld of %lld values zero (%.1f%%), "
                   "%lld maps all zero; white = %g\n",
                   output, (long long)maps, info.name, info.op, (long long)height, (long long)width,
                   (long long)zeros, (long long)cap.elements, 100.0 * (double)zeros / (double)cap.elements,
                   (long long)dead, top);
        }
    }
    free(cap.copy);
    runner_close(&runner);
    return status;
}

const cli_command cmd_activations = {
    .name = "activations",
    .synopsis = "MODEL IMAGE --layer NAME -o FILE [options]",
    .summary = "Draw one layer's feature maps for an image as a grid of grey pictures.",
    .details =
        "Runs the image and writes the layer's output as a PNG: one grey picture per\n"
        "channel (a dense layer's features as 1x1 pictures), in a square grid with\n"
        "orange lines between them, magnified to about 768 pixels across. Grey is x / m\n"
        "where m is the largest |x| in the layer: only zeros are black, m is white;\n"
        "negative values (a layer before its ReLU) are blue. FILE is replaced only\n"
        "once completely written.\n"
        "\n"
        "JSON: {\"model\", \"image\", \"layer\", \"op\", \"shape\", \"maps\", \"elements\",\n"
        "\"zeros\", \"all_zero_maps\", \"max_abs\", \"path\"}.",
    .options = activations_options,
    .min_positional = 2,
    .max_positional = 2,
    .handler = activations_command,
};
