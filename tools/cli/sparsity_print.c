/* sparsity_print.c: the `rectify sparsity` report as tables and CSV files. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "format.h"
#include "out_file.h"
#include "sparsity_data.h"
#include "table.h"

static int print_layers(const sparsity_data *data, FILE *stream)
{
    table_column columns[10] = {
        {"layer", ALIGN_LEFT}, {"op", ALIGN_LEFT}, {"output shape", ALIGN_LEFT}, {"mean %", ALIGN_RIGHT},
        {"min %", ALIGN_RIGHT}, {"max %", ALIGN_RIGHT}, {"std %", ALIGN_RIGHT}, {"zero-input MACs", ALIGN_RIGHT},
        {"near-zero %", ALIGN_RIGHT},
    };
    table *t = table_create(columns, data->has_eps ? 9 : 8);
    if (t == NULL)
        return cli_error("out of memory");
    for (int i = 0; i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        char shape[FORMAT_BUFFER];
        table_row(t);
        table_cell(t, "%s", l->name);
        table_cell(t, "%s", l->op);
        table_cell(t, "%s", format_shape(shape, sizeof shape, l->rank, l->shape));
        table_cell(t, "%.1f", 100.0 * layer_mean(data, l));
        table_cell(t, "%.1f", 100.0 * layer_min(data, l));
        table_cell(t, "%.1f", 100.0 * layer_max(data, l));
        table_cell(t, "%.1f", 100.0 * layer_std(data, l));
        if (l->macs_per_image > 0)
            table_cell(t, "%.1f%%", 100.0 * ratio(l->zero_macs, l->macs_per_image * data->images));
        else
            table_cell(t, "-");
        if (data->has_eps)
            table_cell(t, "%.1f", 100.0 * ratio(l->near_zeros, l->per_image * data->images));
    }
    int failed = table_print(t, stream, 0);
    table_destroy(t);
    return failed ? cli_error("out of memory") : 0;
}

static void print_totals(const sparsity_data *data, FILE *stream)
{
    int64_t relu_zeros = 0, relu_elements = 0, all_zeros = 0, all_elements = 0, macs = 0, zero_macs = 0;
    int relu_layers = 0;
    for (int i = 0; i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        all_zeros += l->zeros;
        all_elements += l->per_image * data->images;
        macs += l->macs_per_image * data->images;
        zero_macs += l->zero_macs;
        if (layer_is_relu(l)) {
            relu_layers++;
            relu_zeros += l->zeros;
            relu_elements += l->per_image * data->images;
        }
    }
    char a[FORMAT_BUFFER], b[FORMAT_BUFFER];
    fputc('\n', stream);
    if (relu_layers > 0)
        fprintf(stream, "%-16s %s zeros in %s elements (%.1f%%)\n", "ReLU outputs:",
                format_count(a, sizeof a, relu_zeros), format_count(b, sizeof b, relu_elements),
                100.0 * ratio(relu_zeros, relu_elements));
    else
        fprintf(stream, "%-16s none in this model\n", "ReLU outputs:");
    fprintf(stream, "%-16s %s zeros in %s elements (%.1f%%)\n", "All layers:", format_count(a, sizeof a, all_zeros),
            format_count(b, sizeof b, all_elements), 100.0 * ratio(all_zeros, all_elements));
    fprintf(stream, "%-16s %s of %s multiply-accumulates meet a zero input (%.1f%%)\n", "Zero-input MACs:",
            format_scaled(a, sizeof a, zero_macs), format_scaled(b, sizeof b, macs), 100.0 * ratio(zero_macs, macs));
    if (data->has_eps)
        fprintf(stream, "%-16s fraction of outputs with |x| <= %g; mean/min/max/std: exact zeros\n",
                "Near-zero:", data->eps);
}

static int print_channels(const sparsity_data *data, FILE *stream)
{
    static const table_column columns[] = {
        {"layer", ALIGN_LEFT}, {"channels", ALIGN_RIGHT}, {"dead", ALIGN_RIGHT}, {"APoZ min %", ALIGN_RIGHT},
        {"p25 %", ALIGN_RIGHT}, {"median %", ALIGN_RIGHT}, {"p75 %", ALIGN_RIGHT}, {"max %", ALIGN_RIGHT},
    };
    table *t = table_create(columns, 8);
    if (t == NULL)
        return cli_error("out of memory");
    for (int i = 0; i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        table_row(t);
        table_cell(t, "%s", l->name);
        table_cell(t, "%lld", (long long)l->channels);
        table_cell(t, "%lld", (long long)layer_dead_channels(data, l));
        static const double q[] = {0.0, 0.25, 0.5, 0.75, 1.0};
        for (int k = 0; k < 5; k++)
            table_cell(t, "%.1f", 100.0 * layer_apoz_quantile(data, l, q[k]));
    }
    fputs("\nPer channel: APoZ (average percentage of zeros) quantiles over the channels; dead = zero\n"
          "in every position of every image. The full table: --json or --csv.\n\n", stream);
    int failed = table_print(t, stream, 0);
    table_destroy(t);
    return failed ? cli_error("out of memory") : 0;
}

static int print_classes(const sparsity_data *data, FILE *stream)
{
    static const table_column columns[] = {
        {"class", ALIGN_LEFT}, {"images", ALIGN_RIGHT}, {"correct", ALIGN_RIGHT}, {"accuracy %", ALIGN_RIGHT},
        {"ReLU sparsity %", ALIGN_RIGHT},
    };
    table *t = table_create(columns, 5);
    if (t == NULL)
        return cli_error("out of memory");
    int64_t images = 0, correct = 0;
    for (int64_t i = 0; i < data->class_count; i++) {
        const class_data *c = &data->classes[i];
        int64_t zeros = 0, elements = 0;
        for (int l = 0; l < data->layer_count; l++)
            if (layer_is_relu(&data->layers[l])) {
                zeros += c->zeros[l];
                elements += data->layers[l].per_image * c->images;
            }
        table_row(t);
        table_cell(t, "%s", c->name);
        table_cell(t, "%lld", (long long)c->images);
        table_cell(t, "%lld", (long long)c->correct);
        table_cell(t, "%.1f", 100.0 * ratio(c->correct, c->images));
        table_cell(t, "%.1f", 100.0 * ratio(zeros, elements));
        images += c->images;
        correct += c->correct;
    }
    fputc('\n', stream);
    int failed = table_print(t, stream, 0);
    table_destroy(t);
    if (failed)
        return cli_error("out of memory");
    fprintf(stream, "\nAccuracy: %lld of %lld (%.2f%%); a class is the name of the folder holding the image,\n"
                    "matched against the model's labels (or the class index when it has none).\n",
            (long long)correct, (long long)images, 100.0 * ratio(correct, images));
    return 0;
}

int sparsity_data_print(const sparsity_data *data, FILE *stream)
{
    if (data->images == 0)
        return 0; /* every image failed: the errors said so already */
    fprintf(stream, "Model: %s, %lld image%s", data->model, (long long)data->images, data->images == 1 ? "" : "s");
    if (data->failure_count > 0)
        fprintf(stream, " (%lld failed)", (long long)data->failure_count);
    if (data->not_images > 0)
        fprintf(stream, "; %lld file%s in the folders not PNG or JPEG", (long long)data->not_images,
                data->not_images == 1 ? "" : "s");
    fputs("\nSparsity (zeros / elements) of each layer's output per image: mean, min, max, standard\n"
          "deviation across the images; zero-input MACs: the multiplications that meet a zero.\n\n", stream);
    int status = print_layers(data, stream);
    if (status == 0)
        print_totals(data, stream);
    if (status == 0 && data->per_channel)
        status = print_channels(data, stream);
    if (status == 0 && data->labelled)
        status = print_classes(data, stream);
    return status;
}

/* ---- CSV -------------------------------------------------------------------- */

/* RFC 4180: quoted, quotes doubled. */
static void csv_text(FILE *f, const char *text)
{
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_layers(const sparsity_data *data, FILE *f)
{
    fputs("layer,op,shape,elements_per_image,images,elements,zeros,sparsity,mean,min,max,std,"
          "macs,zero_macs,zero_mac_fraction", f);
    fputs(data->has_eps ? ",near_zeros,near_zero_fraction\n" : "\n", f);
    for (int i = 0; i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        char shape[FORMAT_BUFFER];
        csv_text(f, l->name);
        fputc(',', f);
        csv_text(f, l->op);
        fprintf(f, ",%s,%lld,%lld,%lld,%lld,%.17g,%.17g,%.17g,%.17g,%.17g,%lld,%lld,%.17g",
                format_shape(shape, sizeof shape, l->rank, l->shape), (long long)l->per_image,
                (long long)data->images, (long long)(l->per_image * data->images), (long long)l->zeros,
                layer_mean(data, l), layer_mean(data, l), layer_min(data, l), layer_max(data, l),
                layer_std(data, l), (long long)(l->macs_per_image * data->images), (long long)l->zero_macs,
                ratio(l->zero_macs, l->macs_per_image * data->images));
        if (data->has_eps)
            fprintf(f, ",%lld,%.17g", (long long)l->near_zeros, ratio(l->near_zeros, l->per_image * data->images));
        fputc('\n', f);
    }
}

static void csv_channels(const sparsity_data *data, FILE *f)
{
    fputs("layer,op,channel,elements,zeros,apoz,dead\n", f);
    for (int i = 0; i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        for (int64_t c = 0; l->channel_zeros != NULL && c < l->channels; c++) {
            csv_text(f, l->name);
            fputc(',', f);
            csv_text(f, l->op);
            int64_t elements = l->plane * data->images;
            fprintf(f, ",%lld,%lld,%lld,%.17g,%d\n", (long long)c, (long long)elements, (long long)l->channel_zeros[c],
                    layer_apoz(data, l, c), data->images > 0 && l->channel_zeros[c] == elements);
        }
    }
}

static void csv_classes(const sparsity_data *data, FILE *f)
{
    fputs("class,images,correct,accuracy,layer,op,elements,zeros,sparsity\n", f);
    for (int64_t k = 0; k < data->class_count; k++) {
        const class_data *c = &data->classes[k];
        for (int i = 0; i < data->layer_count; i++) {
            const layer_data *l = &data->layers[i];
            csv_text(f, c->name);
            fprintf(f, ",%lld,%lld,%.17g,", (long long)c->images, (long long)c->correct, ratio(c->correct, c->images));
            csv_text(f, l->name);
            fputc(',', f);
            csv_text(f, l->op);
            fprintf(f, ",%lld,%lld,%.17g\n", (long long)(l->per_image * c->images), (long long)c->zeros[i],
                    ratio(c->zeros[i], l->per_image * c->images));
        }
    }
}

/* "out.csv" -> "out-channels.csv"; a name without ".csv" gets the suffix. */
static char *sibling(const char *path, const char *suffix)
{
    size_t length = strlen(path), extra = strlen(suffix);
    char *name = malloc(length + extra + 6);
    if (name == NULL)
        return NULL;
    size_t stem = length >= 4 && strcmp(path + length - 4, ".csv") == 0 ? length - 4 : length;
    memcpy(name, path, stem);
    strcpy(name + stem, suffix);
    strcat(name, ".csv");
    return name;
}

static int write_csv(const char *path, const sparsity_data *data, void (*writer)(const sparsity_data *, FILE *))
{
    out_file file;
    int status = out_file_open(&file, path);
    if (status != 0)
        return status;
    writer(data, file.stream);
    return out_file_commit(&file);
}

int sparsity_data_csv(const sparsity_data *data, const char *path)
{
    int status = write_csv(path, data, csv_layers);
    const struct { int wanted; const char *suffix; void (*writer)(const sparsity_data *, FILE *); } extra[] = {
        {data->per_channel, "-channels", csv_channels}, {data->labelled, "-classes", csv_classes}};
    for (int i = 0; status == 0 && i < 2; i++) {
        if (!extra[i].wanted)
            continue;
        char *name = sibling(path, extra[i].suffix);
        status = name != NULL ? write_csv(name, data, extra[i].writer) : cli_error("out of memory");
        free(name);
    }
    return status;
}
