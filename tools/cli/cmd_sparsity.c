/* cmd_sparsity.c: `rectify sparsity MODEL DIR|IMAGE...`: per-layer sparsity
   over a set of images, as exact counts that merge across shards
   (`--shard I/N`, `--merge`), with per-channel APoZ, per-class figures,
   near-zeros, zero-input MACs, a chart and heatmaps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image_list.h"
#include "progress.h"
#include "runner.h"
#include "sparsity_data.h"
#include "sparsity_plots.h"

static const cli_option sparsity_options[] = {
    {"weights", 0, "FILE", "use the weights in FILE instead of model.json's"},
    {"allow-nonfinite", 0, NULL, "load weights even if they hold NaN or infinity"},
    {"per-channel", 0, NULL, "also APoZ per channel and dead channels"},
    {"labels-from-dirs", 0, NULL, "the folder holding an image is its class: accuracy, per-class sparsity"},
    {"eps", 0, "E", "also count near-zeros, |x| <= E (E >= 0)"},
    {"shard", 0, "I/N", "run only the I-th (1..N) of N slices of the sorted image list"},
    {"merge", 0, NULL, "the arguments are --json reports of shards: merge them"},
    {"csv", 0, "FILE", "also write the per-layer table to FILE (and FILE-channels.csv, FILE-classes.csv)"},
    {"svg", 0, "FILE", "also write a bar chart of sparsity per layer to FILE"},
    {"png", 0, "DIR", "also write per-channel APoZ heatmaps into DIR (with --per-channel)"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

typedef struct settings {
    int per_channel, labelled, merge, has_eps;
    double eps;
    int64_t shard_index, shard_count;
    const char *csv, *svg, *png;
} settings;

static int read_settings(const cli_args *args, settings *s)
{
    memset(s, 0, sizeof *s);
    s->per_channel = cli_flag(args, "per-channel");
    s->labelled = cli_flag(args, "labels-from-dirs");
    s->merge = cli_flag(args, "merge");
    s->csv = cli_value(args, "csv");
    s->svg = cli_value(args, "svg");
    s->png = cli_value(args, "png");
    const char *eps = cli_value(args, "eps");
    if (eps != NULL) {
        if (parse_double(eps, &s->eps) != 0 || s->eps < 0)
            return cli_usage_error(args->command, "invalid value '%s' for --eps: expected a number >= 0", eps);
        s->has_eps = 1;
    }
    const char *shard = cli_value(args, "shard");
    if (shard != NULL) {
        char index[32];
        const char *slash = strchr(shard, '/');
        long i, n;
        if (slash == NULL || (size_t)(slash - shard) >= sizeof index ||
            (memcpy(index, shard, (size_t)(slash - shard)), index[slash - shard] = '\0',
             parse_long(index, 1, 1000000, &i) != 0) ||
            parse_long(slash + 1, 1, 1000000, &n) != 0 || i > n)
            return cli_usage_error(args->command,
                                   "invalid value '%s' for --shard: expected I/N with 1 <= I <= N <= 1000000", shard);
        s->shard_index = i;
        s->shard_count = n;
    }
    if (s->merge && (shard != NULL || cli_value(args, "weights") != NULL || eps != NULL ||
                     s->per_channel || s->labelled))
        return cli_usage_error(args->command,
                               "--merge takes reports as they are: --shard, --weights, --eps, --per-channel and "
                               "--labels-from-dirs belong to the runs that wrote them");
    if (!s->merge && args->positional_count < 2)
        return cli_usage_error(args->command, "missing arguments: rectify sparsity MODEL DIR|IMAGE...");
    if (s->png != NULL && !s->per_channel && !s->merge)
        return cli_usage_error(args->command, "--png draws per-channel APoZ: add --per-channel");
    return 0;
}

/* ---- measuring --------------------------------------------------------------- */

/* A conv layer reading some layer's output: how many of its windows cover
   each input row and column, so that zeros times coverage counts the
   multiplications that meet a zero (padding's zeros are not counted). */
typedef struct conv_reader {
    int layer;            /* the conv */
    int64_t channels, height, width, per_group; /* its input; outputs per group */
    int64_t *cover_h, *cover_w;
    int dense;            /* a dense layer: zeros x units */
    int64_t units;
} conv_reader;

typedef struct measure {
    const rectify_model *model;
    const rectify_session *session;
    int layer_count;
    int has_eps;
    float eps;
    int64_t *zeros, *near, *zero_macs; /* per layer, this image */
    conv_reader *readers;
    int reader_count;
} measure;

static void cover(int64_t *count, int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                  int64_t dilation)
{
    for (int64_t i = 0; i < in; i++) count[i] = 0;
    for (int64_t o = 0; o < out; o++)
        for (int64_t k = 0; k < kernel; k++) {
            int64_t i = o * stride - pad + k * dilation;
            if (i >= 0 && i < in) count[i]++;
        }
}

static int setup_readers(measure *m)
{
    const rectify_model *model = m->model;
    m->readers = calloc((size_t)(m->layer_count > 0 ? m->layer_count : 1), sizeof *m->readers);
    if (m->readers == NULL)
        return cli_error("out of memory");
    int64_t input_shape[3];
    rectify_model_input_shape(model, input_shape);
    for (int i = 0; i < m->layer_count; i++) {
        rectify_layer_info info, source;
        rectify_model_layer(model, i, &info);
        int conv = strcmp(info.op, "conv") == 0, dense = strcmp(info.op, "dense") == 0;
        if (!conv && !dense)
            continue;
        conv_reader *r = &m->readers[m->reader_count++];
        r->layer = i;
        r->dense = dense;
        r->units = info.shape[0];
        if (dense)
            continue;
        const int64_t *shape = input_shape;
        if (info.inputs[0] >= 0) {
            rectify_model_layer(model, info.inputs[0], &source);
            shape = source.shape;
        }
        rectify_window w;
        rectify_model_layer_window(model, i, &w);
        r->channels = shape[0], r->height = shape[1], r->width = shape[2];
        r->per_group = info.shape[0] / w.groups;
        r->cover_h = malloc((size_t)r->height * sizeof *r->cover_h);
        r->cover_w = malloc((size_t)r->width * sizeof *r->cover_w);
        if (r->cover_h == NULL || r->cover_w == NULL)
            return cli_error("out of memory");
        cover(r->cover_h, r->height, info.shape[1], w.kernel[0], w.stride[0], w.padding[0], w.dilation[0]);
        cover(r->cover_w, r->width, info.shape[2], w.kernel[1], w.stride[1], w.padding[1], w.dilation[1]);
    }
    return 0;
}

/* Zero-input MACs of the readers of `source` (-1: the model input). */
static void count_zero_macs(measure *m, int source, const float *x)
{
    for (int k = 0; k < m->reader_count; k++) {
        conv_reader *r = &m->readers[k];
        rectify_layer_info info;
        rectify_model_layer(m->model, r->layer, &info);
        if (info.inputs[0] != source)
            continue;
        if (r->dense) {
            rectify_layer_info in;
            int64_t n = source < 0 ? (int64_t)rectify_model_input_size(m->model)
                                   : (rectify_model_layer(m->model, source, &in), in.elements);
            int64_t zeros = 0;
            for (int64_t i = 0; i < n; i++) zeros += x[i] == 0.0f;
            m->zero_macs[r->layer] = zeros * r->units;
            continue;
        }
        int64_t sum = 0;
        for (int64_t c = 0; c < r->channels; c++)
            for (int64_t y = 0; y < r->height; y++) {
                const float *row = x + (c * r->height + y) * r->width;
                int64_t line = 0;
                for (int64_t i = 0; i < r->width; i++) line += row[i] == 0.0f ? r->cover_w[i] : 0;
                sum += line * r->cover_h[y];
            }
        m->zero_macs[r->layer] = sum * r->per_group;
    }
}

static int observe(void *user, int layer, const rectify_tensor *output)
{
    measure *m = user;
    if (m->has_eps) {
        int64_t near = 0;
        const float eps = m->eps;
        for (int64_t i = 0; i < output->elements; i++) near += fabsf(output->data[i]) <= eps;
        m->near[layer] = near;
    }
    count_zero_macs(m, layer, output->data);
    return 0;
}

static void free_measure(measure *m)
{
    for (int k = 0; m->readers != NULL && k < m->reader_count; k++)
        free(m->readers[k].cover_h), free(m->readers[k].cover_w);
    free(m->readers), free(m->zeros), free(m->near), free(m->zero_macs);
}

/* The top class of output 0 as a label (or its index without labels). */
static int is_correct(const rectify_model *model, const rectify_session *session, const char *class_name)
{
    rectify_tensor out;
    if (rectify_session_output(session, 0, &out) != RECTIFY_OK || out.elements == 0)
        return 0;
    int64_t best = 0;
    for (int64_t i = 1; i < out.elements; i++)
        if (out.data[i] > out.data[best]) best = i;
    const char *label = rectify_model_label(model, (int)best);
    char index[32];
    snprintf(index, sizeof index, "%lld", (long long)best);
    return (label != NULL && strcmp(label, class_name) == 0) || strcmp(index, class_name) == 0;
}

static int run_images(image_runner *runner, const image_list *list, const settings *s, sparsity_data *data)
{
    measure m = {.model = runner->model, .session = runner->session,
                 .layer_count = rectify_model_layer_count(runner->model), .has_eps = s->has_eps,
                 .eps = (float)s->eps};
    size_t n = (size_t)(m.layer_count > 0 ? m.layer_count : 1);
    m.zeros = calloc(n, sizeof *m.zeros);
    m.near = calloc(n, sizeof *m.near);
    m.zero_macs = calloc(n, sizeof *m.zero_macs);
    int status = m.zeros && m.near && m.zero_macs ? setup_readers(&m) : cli_error("out of memory");
    rectify_session_set_observer(runner->session, observe, &m);
    progress bar;
    progress_start(&bar, list->count);
    for (int64_t i = 0; status == 0 && i < list->count; i++) {
        const image_entry *image = &list->images[i];
        rectify_error err = {0};
        if (rectify_image_load(runner->model, image->path, runner->input, runner->input_size, &err) != RECTIFY_OK) {
            progress_clear(&bar);
            const char *reason = err.message[0] ? err.message : rectify_status_name(err.status);
            if (strstr(reason, image->path) != NULL) /* the library named it already */
                cli_error("%s", reason);
            else
                cli_error("%s: %s", image->path, reason);
            status = sparsity_data_fail(data, image->path, reason);
            progress_update(&bar, i + 1);
            continue;
        }
        memset(m.zero_macs, 0, n * sizeof *m.zero_macs);
        count_zero_macs(&m, -1, runner->input);
        if (rectify_session_run(runner->session, runner->input, runner->input_size, &err) != RECTIFY_OK) {
            progress_clear(&bar);
            status = cli_error("%s: %s", image->path, err.message);
            break;
        }
        for (int l = 0; l < m.layer_count; l++) {
            rectify_layer_stats st;
            rectify_session_layer_stats(runner->session, l, &st);
            m.zeros[l] = st.zeros;
        }
        class_data *cls = NULL;
        if (s->labelled && (cls = sparsity_data_class(data, image->class_name)) == NULL)
            status = cli_error("out of memory");
        int correct = cls != NULL && is_correct(runner->model, runner->session, image->class_name);
        sparsity_data_add_image(data, m.zeros, s->has_eps ? m.near : NULL, m.zero_macs, cls, correct);
        progress_update(&bar, i + 1);
    }
    progress_clear(&bar);
    rectify_session_set_observer(runner->session, NULL, NULL);
    for (int l = 0; status == 0 && s->per_channel && l < m.layer_count; l++)
        if (rectify_session_channel_zeros(runner->session, l, data->layers[l].channel_zeros,
                                          data->layers[l].channels) != RECTIFY_OK)
            status = cli_error("cannot read the channel counts of layer %d", l);
    free_measure(&m);
    return status;
}

static int measure_images(const cli_args *args, const settings *s, sparsity_data *data)
{
    image_list list;
    int status = image_list_collect(&list, args->positional + 1, args->positional_count - 1);
    if (status != 0)
        return status;
    if (list.count == 0 && list.problem_count == 0) {
        /* Nothing to run is a mistake in the arguments, not an empty report. */
        for (int i = 1; i < args->positional_count; i++)
            cli_error("%s: no PNG or JPEG image here (%lld other file%s)", args->positional[i],
                      (long long)list.not_images, list.not_images == 1 ? "" : "s");
        image_list_free(&list);
        return EXIT_RUNTIME;
    }
    if (s->shard_count > 0)
        image_list_shard(&list, s->shard_index, s->shard_count);
    image_runner runner;
    status = runner_open(&runner, args->positional[0], cli_value(args, "weights"), args->threads, 0);
    if (status == 0)
        status = sparsity_data_init(data, runner.model, s->per_channel, s->has_eps, s->eps, s->labelled);
    if (status == 0) {
        data->shard_index = s->shard_index;
        data->shard_count = s->shard_count;
        /* What the walk met belongs to the whole run: shard 1 reports it. */
        if (s->shard_index <= 1) {
            data->not_images = list.not_images;
            for (int64_t i = 0; status == 0 && i < list.problem_count; i++) {
                cli_error("%s: %s", list.problems[i].path, list.problems[i].message);
                status = sparsity_data_fail(data, list.problems[i].path, list.problems[i].message);
            }
        }
        if (status == 0)
            status = run_images(&runner, &list, s, data);
        if (status != 0)
            sparsity_data_free(data);
    }
    runner_close(&runner);
    image_list_free(&list);
    return status;
}

/* ---- merging ----------------------------------------------------------------- */

static int read_report(const char *path, sparsity_data *data)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return cli_error("cannot read %s", path);
    size_t size = 0, capacity = 1 << 16;
    char *text = malloc(capacity);
    for (size_t got; text != NULL && (got = fread(text + size, 1, capacity - size - 1, f)) > 0;) {
        size += got;
        if (size + 1 == capacity) {
            char *grown = realloc(text, capacity *= 2);
            if (grown == NULL) free(text);
            text = grown;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (text == NULL)
        return cli_error("out of memory reading %s", path);
    if (failed) {
        free(text);
        return cli_error("cannot read %s", path);
    }
    text[size] = '\0';
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (root == NULL)
        return cli_error("%s: not valid JSON", path);
    int status = sparsity_data_from_json(data, root, path);
    cJSON_Delete(root);
    if (status != 0)
        sparsity_data_free(data);
    return status;
}

static int merge_reports(const cli_args *args, sparsity_data *data)
{
    int count = args->positional_count, status = 0;
    char *seen = NULL;
    int64_t shards = 0, shard_runs = 0;
    for (int i = 0; status == 0 && i < count; i++) {
        sparsity_data part;
        status = read_report(args->positional[i], i == 0 ? data : &part);
        if (status != 0)
            break;
        sparsity_data *p = i == 0 ? data : &part;
        if (p->shard_count > 0) {
            if (shards == 0) {
                shards = p->shard_count;
                seen = calloc((size_t)shards + 1, 1);
                if (seen == NULL) status = cli_error("out of memory");
            }
            if (status == 0 && p->shard_count != shards)
                status = cli_error("%s: shard %lld of %lld, the others are of %lld", args->positional[i],
                                   (long long)p->shard_index, (long long)p->shard_count, (long long)shards);
            else if (status == 0 && seen[p->shard_index])
                status = cli_error("%s: shard %lld/%lld is given twice", args->positional[i],
                                   (long long)p->shard_index, (long long)shards);
            else if (status == 0) {
                seen[p->shard_index] = 1;
                shard_runs++;
            }
        }
        if (i > 0) {
            if (status == 0) status = sparsity_data_merge(data, &part, args->positional[i]);
            sparsity_data_free(&part);
        }
    }
    if (status == 0 && shards > 0 && shard_runs < shards)
        cli_error("warning: %lld of %lld shards merged: the report covers part of the images",
                  (long long)shard_runs, (long long)shards);
    free(seen);
    if (status == 0) {
        data->shard_index = data->shard_count = 0;
    } else if (data->model != NULL) {
        sparsity_data_free(data);
    }
    return status;
}

/* ---- the command ------------------------------------------------------------- */

static int report(const cli_args *args, const settings *s, const sparsity_data *data)
{
    int status = 0;
    if (args->json) {
        json_doc doc;
        json_doc_init(&doc);
        sparsity_data_json(data, &doc);
        status = json_doc_print(&doc);
    } else {
        status = sparsity_data_print(data, stdout);
    }
    if (status == 0 && s->csv != NULL) status = sparsity_data_csv(data, s->csv);
    if (status == 0 && s->svg != NULL) status = sparsity_svg(data, s->svg);
    if (status == 0 && s->png != NULL) {
        if (!data->per_channel)
            status = cli_error("--png: the reports hold no per-channel counts (run them with --per-channel)");
        else
            status = sparsity_png(data, s->png);
    }
    return status;
}

static int sparsity_command(const cli_args *args)
{
    settings s;
    int status = read_settings(args, &s);
    if (status != 0)
        return status;
    sparsity_data data;
    status = s.merge ? merge_reports(args, &data) : measure_images(args, &s, &data);
    if (status != 0)
        return status;
    status = report(args, &s, &data);
    if (status == 0 && data.failure_count > 0) {
        cli_error("%lld of %lld images failed", (long long)data.failure_count,
                  (long long)(data.failure_count + data.images));
        status = EXIT_RUNTIME;
    }
    sparsity_data_free(&data);
    return status;
}

const cli_command cmd_sparsity = {
    .name = "sparsity",
    .synopsis = "MODEL DIR|IMAGE... [options]  |  --merge REPORT.json...",
    .summary = "Show how many zeros every layer's output holds over a set of images.",
    .details =
        "Folders are walked recursively; their files are taken as images when they\n"
        "start as a PNG or a JPEG does, whatever their name. The images run in the\n"
        "order of their paths (byte order). For each layer: the mean, min, max and\n"
        "standard deviation across the images of the per-image sparsity (zeros /\n"
        "elements), and the multiply-accumulates that meet a zero input (conv: the\n"
        "input's zeros weighted by how many windows cover them; dense: zeros x units).\n"
        "Then the sparsity over all ReLU outputs together and over all layers.\n"
        "An image that cannot be loaded is reported (path and reason) and counted,\n"
        "and the run goes on; the exit status is then 1. A progress bar shows on\n"
        "stderr when it is a terminal.\n"
        "\n"
        "Large data sets: run `--shard I/N --json > part-I.json` for I = 1..N on any\n"
        "machines, then `rectify sparsity --merge part-*.json`: the counts are exact,\n"
        "so the merged report is the one a single run would print (see README.md).\n"
        "\n"
        "JSON: {\"model\", \"images\", \"failed_count\", \"failed\": [{\"path\", \"error\"}],\n"
        "\"not_images\", \"eps\", \"per_channel\", \"labels_from_dirs\", \"layers\": [{\"name\",\n"
        "\"op\", \"shape\", \"elements\", \"zeros\", \"sparsity\", \"mean\", \"min\", \"max\", \"std\",\n"
        "\"min_zeros\", \"max_zeros\", \"zeros_sq\" (a decimal string), \"macs_per_image\",\n"
        "\"macs\", \"zero_macs\", \"zero_mac_fraction\", [\"near_zeros\", \"near_zero_fraction\"],\n"
        "[\"channels\": {\"count\", \"elements_per_channel\", \"dead\", \"apoz_min\", \"apoz_p25\",\n"
        "\"apoz_median\", \"apoz_p75\", \"apoz_max\", \"zeros\": [...], \"apoz\": [...]}]}],\n"
        "\"relu_sparsity\", \"total_sparsity\", \"relu_zeros\", \"relu_elements\", \"macs\",\n"
        "\"zero_macs\", \"zero_mac_fraction\", [\"accuracy\", \"classes\": [{\"name\", \"images\",\n"
        "\"correct\", \"accuracy\", \"zeros\": [per layer], \"sparsity\": [per layer],\n"
        "\"relu_sparsity\"}]], [\"shard\": {\"index\", \"count\"}]}; fractions are 0..1.",
    .options = sparsity_options,
    .min_positional = 1,
    .max_positional = -1,
    .handler = sparsity_command,
};
