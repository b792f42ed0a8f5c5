/* sparsity_report.c: per-layer sparsity from a session's statistics. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "format.h"
#include "sparsity_report.h"
#include "table.h"

static void fill_layer(layer_sparsity *layer, const rectify_layer_stats *stats,
                       sparsity_scope scope)
{
    if (scope == SPARSITY_LAST_RUN) {
        layer->elements = stats->elements;
        layer->zeros = stats->zeros;
        layer->sparsity = ratio(layer->zeros, layer->elements);
        layer->mean = layer->min = layer->max = layer->sparsity;
        return;
    }
    layer->elements = stats->total_elements;
    layer->zeros = stats->total_zeros;
    layer->sparsity = ratio(layer->zeros, layer->elements);
    if (stats->samples > 0) {
        layer->mean = stats->sum_sparsity / (double)stats->samples;
        layer->min = stats->min_sparsity;
        layer->max = stats->max_sparsity;
    } else {
        layer->mean = layer->min = layer->max = 0.0;
    }
}

static void add_to_totals(sparsity_report *report, const layer_sparsity *layer)
{
    report->all_elements += layer->elements;
    report->all_zeros += layer->zeros;
    if (strcmp(layer->info.op, "relu") == 0) {
        report->relu_layers++;
        report->relu_elements += layer->elements;
        report->relu_zeros += layer->zeros;
    }
}

int sparsity_report_collect(sparsity_report *report, const rectify_model *model,
                            const rectify_session *session, sparsity_scope scope)
{
    memset(report, 0, sizeof *report);
    report->scope = scope;
    int count = rectify_model_layer_count(model);
    if (count <= 0)
        return 0;
    report->layers = calloc((size_t)count, sizeof *report->layers);
    if (report->layers == NULL)
        return cli_error("out of memory");
    report->layer_count = count;

    for (int i = 0; i < count; i++) {
        layer_sparsity *layer = &report->layers[i];
        rectify_layer_stats stats;
        if (rectify_model_layer(model, i, &layer->info) != RECTIFY_OK ||
            rectify_session_layer_stats(session, i, &stats) != RECTIFY_OK) {
            sparsity_report_free(report);
            return cli_error("cannot read the statistics of layer %d", i);
        }
        fill_layer(layer, &stats, scope);
        add_to_totals(report, layer);
        /* Every layer sees every sample; any one of them tells how many. */
        if (i == 0)
            report->samples = scope == SPARSITY_LAST_RUN ? 1 : stats.samples;
    }
    return 0;
}

void sparsity_report_free(sparsity_report *report)
{
    free(report->layers);
    memset(report, 0, sizeof *report);
}

double sparsity_report_relu(const sparsity_report *report)
{
    return ratio(report->relu_zeros, report->relu_elements);
}

double sparsity_report_total(const sparsity_report *report)
{
    return ratio(report->all_zeros, report->all_elements);
}

static table *build_table(const sparsity_report *report, int spread)
{
    static const table_column single_columns[] = {
        {"layer", ALIGN_LEFT},     {"op", ALIGN_LEFT},    {"output shape", ALIGN_LEFT},
        {"elements", ALIGN_RIGHT}, {"zeros", ALIGN_RIGHT}, {"sparsity %", ALIGN_RIGHT},
    };
    static const table_column spread_columns[] = {
        {"layer", ALIGN_LEFT},     {"op", ALIGN_LEFT},     {"output shape", ALIGN_LEFT},
        {"elements", ALIGN_RIGHT}, {"zeros", ALIGN_RIGHT}, {"mean %", ALIGN_RIGHT},
        {"min %", ALIGN_RIGHT},    {"max %", ALIGN_RIGHT},
    };
    table *t = spread ? table_create(spread_columns, 8) : table_create(single_columns, 6);
    if (t == NULL)
        return NULL;

    for (int i = 0; i < report->layer_count; i++) {
        const layer_sparsity *layer = &report->layers[i];
        char shape[FORMAT_BUFFER], elements[FORMAT_BUFFER], zeros[FORMAT_BUFFER];
        table_row(t);
        table_cell(t, "%s", layer->info.name);
        table_cell(t, "%s", layer->info.op);
        table_cell(t, "%s", format_shape(shape, sizeof shape, layer->info.rank,
                                         layer->info.shape));
        table_cell(t, "%s", format_count(elements, sizeof elements, layer->elements));
        table_cell(t, "%s", format_count(zeros, sizeof zeros, layer->zeros));
        if (spread) {
            table_cell(t, "%.1f", 100.0 * layer->mean);
            table_cell(t, "%.1f", 100.0 * layer->min);
            table_cell(t, "%.1f", 100.0 * layer->max);
        } else {
            table_cell(t, "%.1f", 100.0 * layer->sparsity);
        }
    }
    return t;
}

static void print_network_line(FILE *stream, int indent, const char *title, int64_t zeros,
                               int64_t elements)
{
    char zeros_text[FORMAT_BUFFER], elements_text[FORMAT_BUFFER];
    fprintf(stream, "%*s%-14s %s zeros in %s elements (%.1f%%)\n", indent, "", title,
            format_count(zeros_text, sizeof zeros_text, zeros),
            format_count(elements_text, sizeof elements_text, elements),
            100.0 * ratio(zeros, elements));
}

int sparsity_report_print(const sparsity_report *report, FILE *stream, int indent, int spread)
{
    table *t = build_table(report, spread);
    if (t == NULL || table_print(t, stream, indent) != 0) {
        table_destroy(t);
        return cli_error("out of memory");
    }
    table_destroy(t);

    fputc('\n', stream);
    if (report->relu_layers > 0)
        print_network_line(stream, indent, "ReLU outputs:", report->relu_zeros,
                           report->relu_elements);
    else
        fprintf(stream, "%*s%-14s none in this model\n", indent, "", "ReLU outputs:");
    print_network_line(stream, indent, "All layers:", report->all_zeros, report->all_elements);
    return 0;
}

/* A fraction over no samples at all is unknown, not 0: null. */
static void add_fraction(json_doc *doc, cJSON *parent, const char *key, double value,
                         int64_t samples)
{
    if (samples > 0)
        json_add_number(doc, parent, key, value);
    else
        json_add_null(doc, parent, key);
}

void sparsity_report_layers_json(const sparsity_report *report, json_doc *doc,
                                 cJSON *parent, const char *key, int spread)
{
    cJSON *layers = json_add_array(doc, parent, key);
    for (int i = 0; i < report->layer_count; i++) {
        const layer_sparsity *layer = &report->layers[i];
        cJSON *entry = json_add_object(doc, layers, NULL);
        json_add_string(doc, entry, "name", layer->info.name);
        json_add_string(doc, entry, "op", layer->info.op);
        json_add_shape(doc, entry, "shape", layer->info.rank, layer->info.shape);
        json_add_int(doc, entry, "elements", layer->elements);
        json_add_int(doc, entry, "zeros", layer->zeros);
        add_fraction(doc, entry, "sparsity", layer->sparsity, report->samples);
        if (spread) {
            add_fraction(doc, entry, "mean", layer->mean, report->samples);
            add_fraction(doc, entry, "min", layer->min, report->samples);
            add_fraction(doc, entry, "max", layer->max, report->samples);
        }
    }
}
