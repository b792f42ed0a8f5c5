/* cmd_summary.c: `rectify summary MODEL`: layers, parameters, cost and memory,
   in the manner of torchinfo or Keras' model.summary(). */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "format.h"
#include "json_out.h"
#include "runner.h"
#include "table.h"

static const cli_option summary_options[] = {
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

typedef struct model_totals {
    int64_t params;
    int64_t macs;
    rectify_memory_info memory;
    int64_t input_shape[3];
} model_totals;

/* Fills info[0..count) and the totals. Returns 0 or EXIT_RUNTIME. */
static int read_layers(const rectify_model *model, rectify_layer_info *info, int count,
                       model_totals *totals)
{
    totals->params = 0;
    totals->macs = 0;
    for (int i = 0; i < count; i++) {
        if (rectify_model_layer(model, i, &info[i]) != RECTIFY_OK)
            return cli_error("cannot read layer %d of the model", i);
        totals->params += info[i].params;
        totals->macs += info[i].macs;
    }
    rectify_model_memory(model, &totals->memory);
    /* A graph-only model holds no weights, so the library reports 0 bytes;
       what a summary wants is what they will take: F32, as loaded. */
    if (totals->memory.weight_bytes == 0)
        totals->memory.weight_bytes = totals->params * (int64_t)sizeof(float);
    rectify_model_input_shape(model, totals->input_shape);
    return 0;
}

static void add_layer_row(table *t, const rectify_layer_info *layer)
{
    char shape[FORMAT_BUFFER], params[FORMAT_BUFFER], macs[FORMAT_BUFFER];
    table_row(t);
    table_cell(t, "%s", layer->name);
    table_cell(t, "%s", layer->op);
    table_cell(t, "%s", format_shape(shape, sizeof shape, layer->rank, layer->shape));
    table_cell(t, "%s", format_count(params, sizeof params, layer->params));
    table_cell(t, "%s", format_count(macs, sizeof macs, layer->macs));
    table_cell(t, "%d%s", layer->buffer, layer->in_place ? " (in place)" : "");
}

static int print_table(const rectify_layer_info *info, int count, const model_totals *totals)
{
    static const table_column columns[] = {
        {"layer", ALIGN_LEFT},   {"op", ALIGN_LEFT},  {"output shape", ALIGN_LEFT},
        {"params", ALIGN_RIGHT}, {"MACs", ALIGN_RIGHT}, {"buffer", ALIGN_LEFT},
    };
    table *t = table_create(columns, 6);
    if (t == NULL)
        return cli_error("out of memory");

    char shape[FORMAT_BUFFER];
    table_row(t);
    table_cell(t, "input");
    table_cell(t, "input");
    table_cell(t, "%s", format_shape(shape, sizeof shape, 3, totals->input_shape));
    for (int i = 0; i < count; i++)
        add_layer_row(t, &info[i]);

    int status = table_print(t, stdout, 0) != 0 ? cli_error("out of memory") : 0;
    table_destroy(t);
    return status;
}

static void print_totals(const model_totals *totals)
{
    char exact[FORMAT_BUFFER], scaled[FORMAT_BUFFER];
    char planned[FORMAT_BUFFER], unplanned[FORMAT_BUFFER];
    const rectify_memory_info *memory = &totals->memory;

    printf("\nParams:                  %s (%s)\n",
           format_count(exact, sizeof exact, totals->params),
           format_scaled(scaled, sizeof scaled, totals->params));
    printf("MACs per sample:         %s (%s)\n",
           format_count(exact, sizeof exact, totals->macs),
           format_scaled(scaled, sizeof scaled, totals->macs));
    printf("Weight memory:           %s (F32)\n",
           format_bytes(exact, sizeof exact, memory->weight_bytes));
    printf("Activations per sample:  %s planned in %d buffer%s (%s unplanned)\n",
           format_bytes(planned, sizeof planned, memory->planned_bytes), memory->buffers,
           memory->buffers == 1 ? "" : "s",
           format_bytes(unplanned, sizeof unplanned, memory->unplanned_bytes));
}

static int print_json(const rectify_model *model, const rectify_layer_info *info, int count,
                      const model_totals *totals)
{
    json_doc doc;
    json_doc_init(&doc);
    json_add_string(&doc, doc.root, "model", rectify_model_name(model));
    json_add_shape(&doc, doc.root, "input_shape", 3, totals->input_shape);
    cJSON *layers = json_add_array(&doc, doc.root, "layers");
    for (int i = 0; i < count; i++) {
        cJSON *layer = json_add_object(&doc, layers, NULL);
        json_add_string(&doc, layer, "name", info[i].name);
        json_add_string(&doc, layer, "op", info[i].op);
        json_add_shape(&doc, layer, "shape", info[i].rank, info[i].shape);
        json_add_int(&doc, layer, "params", info[i].params);
        json_add_int(&doc, layer, "macs", info[i].macs);
        json_add_bool(&doc, layer, "in_place", info[i].in_place);
        json_add_int(&doc, layer, "buffer", info[i].buffer);
    }
    json_add_int(&doc, doc.root, "params", totals->params);
    json_add_int(&doc, doc.root, "macs", totals->macs);
    json_add_int(&doc, doc.root, "weight_bytes", totals->memory.weight_bytes);
    json_add_int(&doc, doc.root, "activation_bytes_planned", totals->memory.planned_bytes);
    json_add_int(&doc, doc.root, "activation_bytes_unplanned", totals->memory.unplanned_bytes);
    json_add_int(&doc, doc.root, "buffers", totals->memory.buffers);
    return json_doc_print(&doc);
}

static int summarize(const rectify_model *model, int json)
{
    int count = rectify_model_layer_count(model);
    rectify_layer_info *info = calloc((size_t)(count > 0 ? count : 1), sizeof *info);
    if (info == NULL)
        return cli_error("out of memory");

    model_totals totals;
    int status = read_layers(model, info, count, &totals);
    if (status == 0 && json) {
        status = print_json(model, info, count, &totals);
    } else if (status == 0) {
        printf("Model: %s\n\n", rectify_model_name(model));
        status = print_table(info, count, &totals);
        if (status == 0)
            print_totals(&totals);
    }
    free(info);
    return status;
}

static int summary_command(const cli_args *args)
{
    rectify_model *model;
    /* Graph only: a summary needs no weights, so folders without any work. */
    int status = load_model(args->positional[0], NULL, 1, &model);
    if (status != 0)
        return status;
    status = summarize(model, args->json);
    rectify_model_destroy(model);
    return status;
}

const cli_command cmd_summary = {
    .name = "summary",
    .synopsis = "MODEL [options]",
    .summary = "Show the model's layers, parameters, cost and memory.",
    .details =
        "For each layer: its output shape, parameters, multiply-accumulates per\n"
        "sample, and the activation buffer it writes. Then the totals, the weight\n"
        "memory, and the activation memory per sample with buffers reused (planned)\n"
        "and without (unplanned). Weights are not needed.\n"
        "\n"
        "JSON: {\"model\", \"input_shape\", \"layers\": [{\"name\", \"op\", \"shape\", \"params\",\n"
        "\"macs\", \"in_place\", \"buffer\"}], \"params\", \"macs\", \"weight_bytes\",\n"
        "\"activation_bytes_planned\", \"activation_bytes_unplanned\", \"buffers\"}.",
    .options = summary_options,
    .min_positional = 1,
    .max_positional = 1,
    .handler = summary_command,
};
