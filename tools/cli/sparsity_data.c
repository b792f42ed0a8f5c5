/* sparsity_data.c: exact counts over a set of images; JSON out and back in,
   merging, and the derived figures. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparsity_data.h"

/* Integers above this do not survive a JSON number (a double) exactly. */
#define EXACT_LIMIT 9007199254740992.0

static int is_conv_or_dense(const char *op)
{
    return strcmp(op, "conv") == 0 || strcmp(op, "dense") == 0;
}

int layer_is_relu(const layer_data *layer)
{
    return strcmp(layer->op, "relu") == 0;
}

static int init_layer(layer_data *l, const rectify_layer_info *info, int per_channel)
{
    l->name = strdup(info->name);
    l->op = strdup(info->op);
    if (l->name == NULL || l->op == NULL)
        return -1;
    l->rank = info->rank;
    memcpy(l->shape, info->shape, sizeof l->shape);
    l->per_image = info->elements;
    l->min_zeros = INT64_MAX;
    l->macs_per_image = is_conv_or_dense(info->op) ? info->macs : 0;
    l->channels = info->shape[0];
    l->plane = info->rank == 3 ? info->shape[1] * info->shape[2] : 1;
    if (per_channel) {
        l->channel_zeros = calloc((size_t)l->channels, sizeof *l->channel_zeros);
        if (l->channel_zeros == NULL)
            return -1;
    }
    return 0;
}

int sparsity_data_init(sparsity_data *data, const rectify_model *model, int per_channel, int has_eps,
                       double eps, int labelled)
{
    memset(data, 0, sizeof *data);
    data->has_eps = has_eps;
    data->eps = eps;
    data->per_channel = per_channel;
    data->labelled = labelled;
    data->model = strdup(rectify_model_name(model));
    int count = rectify_model_layer_count(model);
    data->layers = calloc((size_t)(count > 0 ? count : 1), sizeof *data->layers);
    if (data->model == NULL || data->layers == NULL) {
        sparsity_data_free(data);
        return cli_error("out of memory");
    }
    data->layer_count = count;
    for (int i = 0; i < count; i++) {
        rectify_layer_info info;
        if (rectify_model_layer(model, i, &info) != RECTIFY_OK || init_layer(&data->layers[i], &info, per_channel)) {
            sparsity_data_free(data);
            return cli_error("out of memory");
        }
    }
    return 0;
}

void sparsity_data_free(sparsity_data *data)
{
    for (int i = 0; data->layers != NULL && i < data->layer_count; i++) {
        free(data->layers[i].name), free(data->layers[i].op);
        free(data->layers[i].channel_zeros);
    }
    for (int64_t i = 0; i < data->failure_count; i++)
        free(data->failures[i].path), free(data->failures[i].error);
    for (int64_t i = 0; i < data->class_count; i++)
        free(data->classes[i].name), free(data->classes[i].zeros);
    free(data->layers), free(data->failures), free(data->classes), free(data->model);
    memset(data, 0, sizeof *data);
}

int sparsity_data_fail(sparsity_data *data, const char *path, const char *error)
{
    if (data->failure_count == data->failure_capacity) {
        int64_t capacity = data->failure_capacity ? 2 * data->failure_capacity : 8;
        failure_data *grown = realloc(data->failures, (size_t)capacity * sizeof *grown);
        if (grown == NULL)
            return cli_error("out of memory");
        data->failures = grown;
        data->failure_capacity = capacity;
    }
    failure_data *f = &data->failures[data->failure_count];
    f->path = strdup(path);
    f->error = strdup(error);
    if (f->path == NULL || f->error == NULL) {
        free(f->path), free(f->error);
        return cli_error("out of memory");
    }
    data->failure_count++;
    return 0;
}

class_data *sparsity_data_class(sparsity_data *data, const char *name)
{
    for (int64_t i = 0; i < data->class_count; i++)
        if (strcmp(data->classes[i].name, name) == 0)
            return &data->classes[i];
    if (data->class_count == data->class_capacity) {
        int64_t capacity = data->class_capacity ? 2 * data->class_capacity : 16;
        class_data *grown = realloc(data->classes, (size_t)capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        data->classes = grown;
        data->class_capacity = capacity;
    }
    class_data *c = &data->classes[data->class_count];
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    c->zeros = calloc((size_t)(data->layer_count > 0 ? data->layer_count : 1), sizeof *c->zeros);
    if (c->name == NULL || c->zeros == NULL) {
        free(c->name), free(c->zeros);
        return NULL;
    }
    data->class_count++;
    return c;
}

void sparsity_data_add_image(sparsity_data *data, const int64_t *zeros, const int64_t *near,
                             const int64_t *zero_macs, class_data *cls, int correct)
{
    data->images++;
    for (int i = 0; i < data->layer_count; i++) {
        layer_data *l = &data->layers[i];
        int64_t z = zeros[i];
        l->zeros += z;
        l->zeros_sq += (u128)z * (u128)z;
        if (z < l->min_zeros) l->min_zeros = z;
        if (z > l->max_zeros) l->max_zeros = z;
        if (near != NULL) l->near_zeros += near[i];
        if (zero_macs != NULL) l->zero_macs += zero_macs[i];
        if (cls != NULL) cls->zeros[i] += z;
    }
    if (cls != NULL) {
        cls->images++;
        cls->correct += correct != 0;
    }
}

/* ---- derived figures ------------------------------------------------------ */

static double fraction(int64_t part, int64_t whole)
{
    return whole > 0 ? (double)part / (double)whole : 0.0;
}

double layer_mean(const sparsity_data *data, const layer_data *l)
{
    return fraction(l->zeros, l->per_image * data->images);
}

double layer_min(const sparsity_data *data, const layer_data *l)
{
    return data->images > 0 ? fraction(l->min_zeros, l->per_image) : 0.0;
}

double layer_max(const sparsity_data *data, const layer_data *l)
{
    return data->images > 0 ? fraction(l->max_zeros, l->per_image) : 0.0;
}

/* Population standard deviation of per-image sparsity z_i / E over N images:
   sqrt(N sum z_i^2 - (sum z_i)^2) / (N E), the numerator exact in 128 bits. */
double layer_std(const sparsity_data *data, const layer_data *l)
{
    if (data->images == 0 || l->per_image == 0)
        return 0.0;
    u128 n = (u128)data->images, s = (u128)l->zeros;
    u128 a = n * l->zeros_sq, b = s * s;
    double numerator = a > b ? (double)(a - b) : 0.0;
    return sqrt(numerator) / ((double)data->images * (double)l->per_image);
}

int64_t layer_dead_channels(const sparsity_data *data, const layer_data *l)
{
    int64_t dead = 0;
    for (int64_t c = 0; l->channel_zeros != NULL && data->images > 0 && c < l->channels; c++)
        dead += l->channel_zeros[c] == data->images * l->plane;
    return dead;
}

double layer_apoz(const sparsity_data *data, const layer_data *l, int64_t c)
{
    return fraction(l->channel_zeros[c], data->images * l->plane);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double layer_apoz_quantile(const sparsity_data *data, const layer_data *l, double q)
{
    if (l->channel_zeros == NULL || l->channels == 0)
        return 0.0;
    double *v = malloc((size_t)l->channels * sizeof *v);
    if (v == NULL)
        return NAN;
    for (int64_t c = 0; c < l->channels; c++)
        v[c] = layer_apoz(data, l, c);
    qsort(v, (size_t)l->channels, sizeof *v, compare_double);
    double position = q * (double)(l->channels - 1);
    int64_t below = (int64_t)floor(position);
    double above_weight = position - (double)below;
    double result = below + 1 < l->channels ? v[below] + above_weight * (v[below + 1] - v[below]) : v[below];
    free(v);
    return result;
}

/* ---- JSON out --------------------------------------------------------------- */

static void u128_text(u128 value, char *text)
{
    char digits[48];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(value % 10));
        value /= 10;
    } while (value > 0);
    for (int i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    text[n] = '\0';
}

static void add_fraction(json_doc *doc, cJSON *parent, const char *key, double value, int known)
{
    if (known)
        json_add_number(doc, parent, key, value);
    else
        json_add_null(doc, parent, key);
}

static void channels_json(const sparsity_data *data, const layer_data *l, json_doc *doc, cJSON *entry)
{
    int known = data->images > 0;
    cJSON *channels = json_add_object(doc, entry, "channels");
    json_add_int(doc, channels, "count", l->channels);
    json_add_int(doc, channels, "elements_per_channel", l->plane * data->images);
    json_add_int(doc, channels, "dead", layer_dead_channels(data, l));
    static const struct { const char *key; double q; } quantiles[] = {
        {"apoz_min", 0.0}, {"apoz_p25", 0.25}, {"apoz_median", 0.5}, {"apoz_p75", 0.75}, {"apoz_max", 1.0}};
    for (int i = 0; i < 5; i++)
        add_fraction(doc, channels, quantiles[i].key, layer_apoz_quantile(data, l, quantiles[i].q), known);
    cJSON *zeros = json_add_array(doc, channels, "zeros");
    for (int64_t c = 0; c < l->channels; c++)
        json_add_int(doc, zeros, NULL, l->channel_zeros[c]);
    cJSON *apoz = json_add_array(doc, channels, "apoz");
    for (int64_t c = 0; c < l->channels; c++)
        add_fraction(doc, apoz, NULL, layer_apoz(data, l, c), known);
}

static void layer_json(const sparsity_data *data, const layer_data *l, json_doc *doc, cJSON *layers)
{
    int known = data->images > 0;
    cJSON *entry = json_add_object(doc, layers, NULL);
    json_add_string(doc, entry, "name", l->name);
    json_add_string(doc, entry, "op", l->op);
    json_add_shape(doc, entry, "shape", l->rank, l->shape);
    json_add_int(doc, entry, "elements", l->per_image * data->images);
    json_add_int(doc, entry, "zeros", l->zeros);
    add_fraction(doc, entry, "sparsity", layer_mean(data, l), known);
    add_fraction(doc, entry, "mean", layer_mean(data, l), known);
    add_fraction(doc, entry, "min", layer_min(data, l), known);
    add_fraction(doc, entry, "max", layer_max(data, l), known);
    add_fraction(doc, entry, "std", layer_std(data, l), known);
    if (known) {
        json_add_int(doc, entry, "min_zeros", l->min_zeros);
        json_add_int(doc, entry, "max_zeros", l->max_zeros);
    } else {
        json_add_null(doc, entry, "min_zeros");
        json_add_null(doc, entry, "max_zeros");
    }
    char text[48];
    u128_text(l->zeros_sq, text);
    json_add_string(doc, entry, "zeros_sq", text); /* a string: beyond 2^53 */
    json_add_int(doc, entry, "macs_per_image", l->macs_per_image);
    json_add_int(doc, entry, "macs", l->macs_per_image * data->images);
    json_add_int(doc, entry, "zero_macs", l->zero_macs);
    add_fraction(doc, entry, "zero_mac_fraction", fraction(l->zero_macs, l->macs_per_image * data->images),
                 known && l->macs_per_image > 0);
    if (data->has_eps) {
        json_add_int(doc, entry, "near_zeros", l->near_zeros);
        add_fraction(doc, entry, "near_zero_fraction", fraction(l->near_zeros, l->per_image * data->images),
                     known);
    }
    if (data->per_channel && l->channel_zeros != NULL)
        channels_json(data, l, doc, entry);
}

static int by_failure_path(const void *a, const void *b)
{
    return strcmp(((const failure_data *)a)->path, ((const failure_data *)b)->path);
}

static int by_class_name(const void *a, const void *b)
{
    return strcmp(((const class_data *)a)->name, ((const class_data *)b)->name);
}

static void classes_json(const sparsity_data *data, json_doc *doc)
{
    int64_t correct = 0, images = 0;
    cJSON *classes = json_add_array(doc, doc->root, "classes");
    for (int64_t i = 0; i < data->class_count; i++) {
        const class_data *c = &data->classes[i];
        cJSON *entry = json_add_object(doc, classes, NULL);
        json_add_string(doc, entry, "name", c->name);
        json_add_int(doc, entry, "images", c->images);
        json_add_int(doc, entry, "correct", c->correct);
        add_fraction(doc, entry, "accuracy", fraction(c->correct, c->images), c->images > 0);
        int64_t relu_zeros = 0, relu_elements = 0;
        cJSON *zeros = json_add_array(doc, entry, "zeros");
        cJSON *sparsity = json_add_array(doc, entry, "sparsity");
        for (int l = 0; l < data->layer_count; l++) {
            json_add_int(doc, zeros, NULL, c->zeros[l]);
            add_fraction(doc, sparsity, NULL, fraction(c->zeros[l], data->layers[l].per_image * c->images),
                         c->images > 0);
            if (layer_is_relu(&data->layers[l])) {
                relu_zeros += c->zeros[l];
                relu_elements += data->layers[l].per_image * c->images;
            }
        }
        add_fraction(doc, entry, "relu_sparsity", fraction(relu_zeros, relu_elements), relu_elements > 0);
        correct += c->correct;
        images += c->images;
    }
    add_fraction(doc, doc->root, "accuracy", fraction(correct, images), images > 0);
}

void sparsity_data_json(const sparsity_data *data, json_doc *doc)
{
    /* Sorted so that shards merged in any order print the same. */
    if (data->failure_count > 1)
        qsort(data->failures, (size_t)data->failure_count, sizeof *data->failures, by_failure_path);
    if (data->class_count > 1)
        qsort(data->classes, (size_t)data->class_count, sizeof *data->classes, by_class_name);
    int known = data->images > 0;
    json_add_string(doc, doc->root, "model", data->model);
    json_add_int(doc, doc->root, "images", data->images);
    if (data->shard_count > 0) {
        cJSON *shard = json_add_object(doc, doc->root, "shard");
        json_add_int(doc, shard, "index", data->shard_index);
        json_add_int(doc, shard, "count", data->shard_count);
    }
    json_add_int(doc, doc->root, "failed_count", data->failure_count);
    cJSON *failed = json_add_array(doc, doc->root, "failed");
    for (int64_t i = 0; i < data->failure_count; i++) {
        cJSON *entry = json_add_object(doc, failed, NULL);
        json_add_string(doc, entry, "path", data->failures[i].path);
        json_add_string(doc, entry, "error", data->failures[i].error);
    }
    json_add_int(doc, doc->root, "not_images", data->not_images);
    if (data->has_eps)
        json_add_number(doc, doc->root, "eps", data->eps);
    else
        json_add_null(doc, doc->root, "eps");
    json_add_bool(doc, doc->root, "per_channel", data->per_channel);
    json_add_bool(doc, doc->root, "labels_from_dirs", data->labelled);
    cJSON *layers = json_add_array(doc, doc->root, "layers");
    int64_t relu_zeros = 0, relu_elements = 0, all_zeros = 0, all_elements = 0, macs = 0, zero_macs = 0;
    int relu_layers = 0;
    for (int i = 0; i < data->layer_count; i++) {
        const layer_data *l = &data->layers[i];
        layer_json(data, l, doc, layers);
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
    add_fraction(doc, doc->root, "relu_sparsity", fraction(relu_zeros, relu_elements), known && relu_layers > 0);
    add_fraction(doc, doc->root, "total_sparsity", fraction(all_zeros, all_elements), known);
    json_add_int(doc, doc->root, "relu_zeros", relu_zeros);
    json_add_int(doc, doc->root, "relu_elements", relu_elements);
    json_add_int(doc, doc->root, "macs", macs);
    json_add_int(doc, doc->root, "zero_macs", zero_macs);
    add_fraction(doc, doc->root, "zero_mac_fraction", fraction(zero_macs, macs), known && macs > 0);
    if (data->labelled)
        classes_json(data, doc);
}

/* ---- JSON in ---------------------------------------------------------------- */

static int bad(const char *label, const char *what)
{
    return cli_error("%s: not a `rectify sparsity --json` report: %s", label, what);
}

static int get_count(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > EXACT_LIMIT ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int get_u128(const cJSON *obj, const char *key, u128 *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return -1;
    u128 value = 0;
    for (const char *p = v->valuestring; *p; p++) {
        if (*p < '0' || *p > '9' || value > ((u128)-1) / 10 - 1)
            return -1;
        value = value * 10 + (u128)(*p - '0');
    }
    *out = value;
    return 0;
}

static char *get_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static int read_layer(sparsity_data *data, layer_data *l, const cJSON *j, const char *label)
{
    l->name = get_string(j, "name");
    l->op = get_string(j, "op");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (l->name == NULL || l->op == NULL || !cJSON_IsArray(shape))
        return bad(label, "a layer without name, op or shape");
    l->rank = cJSON_GetArraySize(shape);
    if (l->rank < 1 || l->rank > RECTIFY_MAX_RANK)
        return bad(label, "a shape of a bad rank");
    l->per_image = 1;
    for (int d = 0; d < l->rank; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > RECTIFY_MAX_DIM)
            return bad(label, "a bad shape");
        l->shape[d] = (int64_t)v->valuedouble;
        l->per_image *= l->shape[d];
    }
    l->channels = l->shape[0];
    l->plane = l->rank == 3 ? l->shape[1] * l->shape[2] : 1;
    int64_t min_zeros = INT64_MAX, max_zeros = 0;
    if (data->images > 0 && (get_count(j, "min_zeros", &min_zeros) || get_count(j, "max_zeros", &max_zeros)))
        return bad(label, "a layer without min_zeros or max_zeros");
    l->min_zeros = min_zeros;
    l->max_zeros = max_zeros;
    if (get_count(j, "zeros", &l->zeros) || get_u128(j, "zeros_sq", &l->zeros_sq) ||
        get_count(j, "macs_per_image", &l->macs_per_image) || get_count(j, "zero_macs", &l->zero_macs))
        return bad(label, "a layer without exact counts (zeros, zeros_sq, macs_per_image, zero_macs)");
    if (data->has_eps && get_count(j, "near_zeros", &l->near_zeros))
        return bad(label, "a layer without near_zeros");
    if (data->per_channel) {
        const cJSON *channels = cJSON_GetObjectItemCaseSensitive(j, "channels");
        const cJSON *zeros = cJSON_GetObjectItemCaseSensitive(channels, "zeros");
        if (!cJSON_IsArray(zeros) || cJSON_GetArraySize(zeros) != l->channels)
            return bad(label, "a layer without its per-channel zeros");
        l->channel_zeros = calloc((size_t)l->channels, sizeof *l->channel_zeros);
        if (l->channel_zeros == NULL)
            return cli_error("out of memory");
        int64_t c = 0;
        for (const cJSON *v = zeros->child; v != NULL; v = v->next, c++)
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > EXACT_LIMIT)
                return bad(label, "a bad per-channel count");
            else
                l->channel_zeros[c] = (int64_t)v->valuedouble;
    }
    return 0;
}

static int read_classes(sparsity_data *data, const cJSON *root, const char *label)
{
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "classes");
    if (!cJSON_IsArray(classes))
        return bad(label, "no \"classes\" although labels_from_dirs is true");
    for (const cJSON *j = classes->child; j != NULL; j = j->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
        const cJSON *zeros = cJSON_GetObjectItemCaseSensitive(j, "zeros");
        if (!cJSON_IsString(name) || !cJSON_IsArray(zeros) || cJSON_GetArraySize(zeros) != data->layer_count)
            return bad(label, "a class without name or zeros per layer");
        class_data *c = sparsity_data_class(data, name->valuestring);
        if (c == NULL)
            return cli_error("out of memory");
        if (get_count(j, "images", &c->images) || get_count(j, "correct", &c->correct))
            return bad(label, "a class without images or correct");
        int l = 0;
        for (const cJSON *v = zeros->child; v != NULL; v = v->next, l++)
            c->zeros[l] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    }
    return 0;
}

int sparsity_data_from_json(sparsity_data *data, const cJSON *root, const char *label)
{
    memset(data, 0, sizeof *data);
    int status = 0;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(root, "failed");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "eps");
    data->model = get_string(root, "model");
    if (data->model == NULL || get_count(root, "images", &data->images) || !cJSON_IsArray(layers) ||
        !cJSON_IsArray(failed) || get_count(root, "not_images", &data->not_images) ||
        !(cJSON_IsNull(eps) || cJSON_IsNumber(eps)))
        return bad(label, "model, images, failed, not_images, eps or layers missing");
    data->has_eps = cJSON_IsNumber(eps);
    data->eps = data->has_eps ? eps->valuedouble : 0.0;
    data->per_channel = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "per_channel"));
    data->labelled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "labels_from_dirs"));
    const cJSON *shard = cJSON_GetObjectItemCaseSensitive(root, "shard");
    if (shard != NULL && (get_count(shard, "index", &data->shard_index) ||
                          get_count(shard, "count", &data->shard_count)))
        return bad(label, "a bad \"shard\"");
    for (const cJSON *f = failed->child; status == 0 && f != NULL; f = f->next) {
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(f, "path");
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(f, "error");
        if (!cJSON_IsString(path) || !cJSON_IsString(error))
            return bad(label, "a failure without path or error");
        status = sparsity_data_fail(data, path->valuestring, error->valuestring);
    }
    int count = cJSON_GetArraySize(layers);
    data->layers = calloc((size_t)(count > 0 ? count : 1), sizeof *data->layers);
    if (data->layers == NULL)
        return cli_error("out of memory");
    data->layer_count = count;
    int i = 0;
    for (const cJSON *j = layers->child; status == 0 && j != NULL; j = j->next, i++)
        status = read_layer(data, &data->layers[i], j, label);
    if (status == 0 && data->labelled)
        status = read_classes(data, root, label);
    return status;
}

/* ---- merging ---------------------------------------------------------------- */

int sparsity_data_merge(sparsity_data *data, const sparsity_data *other, const char *label)
{
    if (strcmp(data->model, other->model) != 0)
        return cli_error("%s: model \"%s\", the others \"%s\"", label, other->model, data->model);
    if (data->layer_count != other->layer_count)
        return cli_error("%s: %d layers, the others %d", label, other->layer_count, data->layer_count);
    if (data->has_eps != other->has_eps || (data->has_eps && data->eps != other->eps))
        return cli_error("%s: run with another --eps than the others", label);
    if (data->per_channel != other->per_channel)
        return cli_error("%s: %s --per-channel, the others %s", label, other->per_channel ? "with" : "without",
                         data->per_channel ? "with" : "without");
    if (data->labelled != other->labelled)
        return cli_error("%s: %s --labels-from-dirs, the others %s", label, other->labelled ? "with" : "without",
                         data->labelled ? "with" : "without");
    for (int i = 0; i < data->layer_count; i++) {
        layer_data *a = &data->layers[i];
        const layer_data *b = &other->layers[i];
        if (strcmp(a->name, b->name) != 0 || strcmp(a->op, b->op) != 0 || a->per_image != b->per_image)
            return cli_error("%s: layer %d is %s (%s), the others' %s (%s)", label, i, b->name, b->op, a->name,
                             a->op);
    }
    for (int i = 0; i < data->layer_count; i++) {
        layer_data *a = &data->layers[i];
        const layer_data *b = &other->layers[i];
        a->zeros += b->zeros;
        a->zeros_sq += b->zeros_sq;
        if (other->images > 0) {
            if (b->min_zeros < a->min_zeros) a->min_zeros = b->min_zeros;
            if (b->max_zeros > a->max_zeros) a->max_zeros = b->max_zeros;
        }
        a->near_zeros += b->near_zeros;
        a->zero_macs += b->zero_macs;
        for (int64_t c = 0; a->channel_zeros != NULL && c < a->channels; c++)
            a->channel_zeros[c] += b->channel_zeros[c];
    }
    for (int64_t i = 0; i < other->class_count; i++) {
        class_data *c = sparsity_data_class(data, other->classes[i].name);
        if (c == NULL)
            return cli_error("out of memory");
        c->images += other->classes[i].images;
        c->correct += other->classes[i].correct;
        for (int l = 0; l < data->layer_count; l++)
            c->zeros[l] += other->classes[i].zeros[l];
    }
    for (int64_t i = 0; i < other->failure_count; i++)
        if (sparsity_data_fail(data, other->failures[i].path, other->failures[i].error) != 0)
            return EXIT_RUNTIME;
    data->images += other->images;
    data->not_images += other->not_images;
    return 0;
}
