/* cmd_run.c: `rectify run MODEL IMAGE...`: the top classes of each image. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runner.h"
#include "sparsity_report.h"
#include "table.h"

#define DEFAULT_TOP 5

static const cli_option run_options[] = {
    {"top", 0, "K", "show the K best classes (default 5; at most the output size)"},
    {"sparsity", 0, NULL, "also show each image's per-layer sparsity"},
    {"weights", 0, "FILE", "use the weights in FILE instead of model.json's"},
    {"allow-nonfinite", 0, NULL, "load weights even if they hold NaN or infinity"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

typedef struct ranked_class {
    int index;
    float value;
} ranked_class;

/* Everything reporting an image needs, set up once per command. */
typedef struct run_context {
    image_runner runner;
    int top;             /* classes to show, before capping to the output size */
    int with_sparsity;
    int is_softmax;      /* output values are probabilities */
    int has_labels;
    int reported;        /* images reported so far */
    json_doc doc;        /* with --json */
    cJSON *images;       /* the "images" array of doc */
    int json;
} run_context;

/* Whether a ranks above b: larger first, NaN last, ties by lower index
   (the caller visits indices in increasing order, so strict > keeps that). */
static int ranks_above(float a, float b)
{
    if (isnan(a))
        return 0;
    return isnan(b) || a > b;
}

/* The k best of `values` into best[0..k), by insertion: k is small. */
static void select_top(const float *values, int64_t count, int k, ranked_class *best)
{
    int filled = 0;
    if (k <= 0)
        return;
    for (int64_t i = 0; i < count; i++) {
        if (filled == k && !ranks_above(values[i], best[k - 1].value))
            continue;
        int slot = filled < k ? filled++ : k - 1;
        while (slot > 0 && ranks_above(values[i], best[slot - 1].value)) {
            best[slot] = best[slot - 1];
            slot--;
        }
        best[slot].index = (int)i;
        best[slot].value = values[i];
    }
}

/* The model's first output decides what the values are; a model with
   several outputs is ranked on its first. */
static int read_output_facts(run_context *run)
{
    const rectify_model *model = run->runner.model;
    rectify_layer_info info;
    int layer = rectify_model_output_layer(model, 0);
    if (rectify_model_layer(model, layer, &info) != RECTIFY_OK)
        return cli_error("cannot read the output layer of the model");
    run->is_softmax = strcmp(info.op, "softmax") == 0;
    run->has_labels = rectify_model_label_count(model) > 0;
    return 0;
}

static const char *label_of(const rectify_model *model, int index)
{
    const char *label = rectify_model_label(model, index);
    return label != NULL ? label : "";
}

static void add_value_cell(table *t, int is_softmax, float value)
{
    if (!is_softmax)
        table_cell(t, "%.6g", (double)value);
    else if (value >= 0.0001f || value == 0.0f)
        table_cell(t, "%.4f", (double)value);
    else    /* would print as 0.0000, which reads as impossible */
        table_cell(t, "%.1e", (double)value);
}

static int print_top(const run_context *run, const ranked_class *best, int k)
{
    table_column columns[4] = {{"rank", ALIGN_RIGHT}, {"class", ALIGN_RIGHT}};
    int count = 2;
    if (run->has_labels)
        columns[count++] = (table_column){"label", ALIGN_LEFT};
    columns[count++] = (table_column){run->is_softmax ? "probability" : "value", ALIGN_RIGHT};

    table *t = table_create(columns, count);
    if (t == NULL)
        return cli_error("out of memory");
    for (int i = 0; i < k; i++) {
        table_row(t);
        table_cell(t, "%d", i + 1);
        table_cell(t, "%d", best[i].index);
        if (run->has_labels)
            table_cell(t, "%s", label_of(run->runner.model, best[i].index));
        add_value_cell(t, run->is_softmax, best[i].value);
    }
    int status = table_print(t, stdout, 2) != 0 ? cli_error("out of memory") : 0;
    table_destroy(t);
    return status;
}

static void add_top_json(run_context *run, const ranked_class *best, int k, cJSON *image)
{
    cJSON *top = json_add_array(&run->doc, image, "top");
    for (int i = 0; i < k; i++) {
        cJSON *entry = json_add_object(&run->doc, top, NULL);
        json_add_int(&run->doc, entry, "index", best[i].index);
        json_add_string(&run->doc, entry, "label",
                        rectify_model_label(run->runner.model, best[i].index));
        json_add_number(&run->doc, entry, run->is_softmax ? "probability" : "value",
                        (double)best[i].value);
    }
}

/* The last run's per-layer sparsity: under "sparsity" in `image` with
   --json, else as a table. */
static int report_sparsity(run_context *run, cJSON *image)
{
    sparsity_report report;
    int status = sparsity_report_collect(&report, run->runner.model, run->runner.session,
                                         SPARSITY_LAST_RUN);
    if (status != 0)
        return status;
    if (run->json) {
        sparsity_report_layers_json(&report, &run->doc, image, "sparsity", 0);
    } else {
        fputc('\n', stdout);
        status = sparsity_report_print(&report, stdout, 2, 0);
    }
    sparsity_report_free(&report);
    return status;
}

static int report_json(run_context *run, const char *path, const ranked_class *best, int k)
{
    cJSON *image = json_add_object(&run->doc, run->images, NULL);
    json_add_string(&run->doc, image, "path", path);
    add_top_json(run, best, k, image);
    return run->with_sparsity ? report_sparsity(run, image) : 0;
}

static int report_human(run_context *run, const char *path, const ranked_class *best, int k)
{
    runner_clear_progress(&run->runner);
    printf("%s%s\n", run->reported > 0 ? "\n" : "", path);
    int status = print_top(run, best, k);
    if (status == 0 && run->with_sparsity)
        status = report_sparsity(run, NULL);
    return status;
}

/* Reports the image just run: its top classes, and its sparsity if asked. */
static int report_image(run_context *run, const char *path)
{
    rectify_tensor output;
    if (rectify_session_output(run->runner.session, 0, &output) != RECTIFY_OK)
        return cli_error("%s: cannot read the model's output", path);

    int64_t classes = output.elements; /* batch 1: one sample's outputs */
    int k = (int)(run->top < classes ? run->top : classes);
    ranked_class *best = malloc((size_t)(k > 0 ? k : 1) * sizeof *best);
    if (best == NULL)
        return cli_error("out of memory");
    select_top(output.data, classes, k, best);

    int status = run->json ? report_json(run, path, best, k) : report_human(run, path, best, k);
    run->reported++;
    free(best);
    return status;
}

static int run_images(run_context *run, const cli_args *args)
{
    int status = read_output_facts(run);
    for (int i = 1; status == 0 && i < args->positional_count; i++) {
        const char *path = args->positional[i];
        runner_result result = runner_run_image(&run->runner, i - 1, path);
        if (result == RUNNER_FATAL)
            status = EXIT_RUNTIME;
        else if (result == RUNNER_RAN)
            status = report_image(run, path);
    }
    runner_clear_progress(&run->runner);
    return status;
}

static int run_command(const cli_args *args)
{
    run_context run = {0};
    long top;
    int status = cli_long_option(args, "top", DEFAULT_TOP, 1, INT_MAX, &top);
    if (status != 0)
        return status;
    run.top = (int)top;
    run.with_sparsity = cli_flag(args, "sparsity");
    run.json = args->json;

    status = runner_open(&run.runner, args->positional[0], cli_value(args, "weights"),
                         args->threads, args->positional_count - 1);
    if (status != 0)
        return status;

    if (run.json) {
        json_doc_init(&run.doc);
        json_add_string(&run.doc, run.doc.root, "model", rectify_model_name(run.runner.model));
        run.images = json_add_array(&run.doc, run.doc.root, "images");
    }
    status = run_images(&run, args);
    if (run.json) {
        runner_failures_json(&run.runner, &run.doc, run.doc.root);
        if (status == 0)
            status = json_doc_print(&run.doc);
        else
            json_doc_free(&run.doc);
    }
    if (status == 0)
        status = runner_exit_status(&run.runner);
    runner_close(&run.runner);
    return status;
}

const cli_command cmd_run = {
    .name = "run",
    .synopsis = "MODEL IMAGE... [options]",
    .summary = "Run the model on each image and show the top classes.",
    .details =
        "MODEL is a model folder or its model.json; each IMAGE is a PNG or JPEG file,\n"
        "preprocessed as model.json says. Probabilities are shown when the output\n"
        "layer is a softmax, raw output values otherwise. An image that cannot be\n"
        "loaded is reported and skipped; the exit status is then 1.\n"
        "\n"
        "JSON: {\"model\", \"images\": [{\"path\", \"top\": [{\"index\", \"label\",\n"
        "\"probability\" or \"value\"}], \"sparsity\": [...] with --sparsity}],\n"
        "\"failed\": [{\"path\", \"error\"}]}; sparsity fractions are 0..1.",
    .options = run_options,
    .min_positional = 2,
    .max_positional = -1,
    .handler = run_command,
};
