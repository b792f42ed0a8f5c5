/* cmd_init.c: `rectify init MODEL -o FILE`: He- or Xavier-initialised
   weights for a model's graph, the same file for the same seed on every
   machine. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "format.h"
#include "json_out.h"
#include "prng.h"
#include "runner.h"
#include "safetensors_writer.h"

/* Floats generated per write. */
#define INIT_CHUNK 65536

static const cli_option init_options[] = {
    {"output", 'o', "FILE", "write the weights to FILE (required)"},
    {"seed", 0, "N", "seed of the random numbers, 0 to 2^64-1 (default 0)"},
    {"bias", 0, "B", "value of every bias (default 0)"},
    {"init", 0, "KIND", "he (default): std sqrt(2/fan_in); xavier: std sqrt(2/(fan_in+fan_out))"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

typedef struct init_settings {
    const char *output;
    uint64_t seed;
    double bias;
    int xavier;    /* Glorot: std = sqrt(2 / (fan_in + fan_out)) */
} init_settings;

typedef struct model_tensors {
    rectify_tensor_info *info;
    safetensors_entry *entries;
    int count;
    int64_t params;
} model_tensors;

static int read_settings(const cli_args *args, init_settings *settings)
{
    settings->output = cli_value(args, "output");
    if (settings->output == NULL || settings->output[0] == '\0')
        return cli_usage_error(args->command, "missing the output file: -o FILE");

    const char *seed = cli_value(args, "seed");
    settings->seed = 0;
    if (seed != NULL && parse_u64(seed, &settings->seed) != 0)
        return cli_usage_error(args->command,
                               "invalid value '%s' for --seed: expected an integer from 0 "
                               "to 18446744073709551615", seed);

    const char *bias = cli_value(args, "bias");
    settings->bias = 0.0;
    if (bias != NULL && parse_double(bias, &settings->bias) != 0)
        return cli_usage_error(args->command,
                               "invalid value '%s' for --bias: expected a finite number", bias);

    const char *kind = cli_value(args, "init");
    settings->xavier = kind != NULL && strcmp(kind, "xavier") == 0;
    if (kind != NULL && !settings->xavier && strcmp(kind, "he") != 0)
        return cli_usage_error(args->command, "invalid value '%s' for --init: expected he or xavier", kind);
    return 0;
}

static void free_tensors(model_tensors *tensors)
{
    free(tensors->info);
    free(tensors->entries);
    tensors->info = NULL;
    tensors->entries = NULL;
}

/* Reads the tensors the graph needs. Returns 0 or EXIT_RUNTIME. */
static int read_tensors(const rectify_model *model, model_tensors *tensors)
{
    tensors->count = rectify_model_tensor_count(model);
    tensors->params = 0;
    size_t slots = (size_t)(tensors->count > 0 ? tensors->count : 1);
    tensors->info = calloc(slots, sizeof *tensors->info);
    tensors->entries = calloc(slots, sizeof *tensors->entries);
    if (tensors->info == NULL || tensors->entries == NULL) {
        free_tensors(tensors);
        return cli_error("out of memory");
    }
    for (int i = 0; i < tensors->count; i++) {
        rectify_tensor_info *info = &tensors->info[i];
        if (rectify_model_tensor(model, i, info) != RECTIFY_OK) {
            free_tensors(tensors);
            return cli_error("cannot read weight tensor %d of the model", i);
        }
        if (!info->is_bias && info->fan_in <= 0) {
            free_tensors(tensors);
            return cli_error("%s: fan-in %" PRId64 " gives no He standard deviation",
                             info->name, info->fan_in);
        }
        tensors->entries[i] = (safetensors_entry){info->name, info->rank, info->shape,
                                                  info->elements};
        tensors->params += info->elements;
    }
    return 0;
}

/* He (Kaiming) normal initialisation keeps the variance of activations
   steady through ReLU layers: std = sqrt(2 / fan_in). Xavier (Glorot)
   normal keeps it steady through tanh-like layers, forward and backward:
   std = sqrt(2 / (fan_in + fan_out)). With zero biases and weights
   symmetric about 0, either way about half of a ReLU's inputs are negative
   at initialisation: half its outputs are zeros. */
static double init_std(const rectify_tensor_info *info, int xavier)
{
    return xavier ? sqrt(2.0 / (double)(info->fan_in + info->fan_out)) : sqrt(2.0 / (double)info->fan_in);
}

/* Generates and writes one tensor's values in chunks. */
static int write_tensor(safetensors_writer *writer, const rectify_tensor_info *info,
                        prng *rng, double bias, int xavier, float *chunk)
{
    double std = info->is_bias ? 0.0 : init_std(info, xavier);
    for (int64_t done = 0; done < info->elements;) {
        int64_t left = info->elements - done;
        size_t count = (size_t)(left < INIT_CHUNK ? left : INIT_CHUNK);
        for (size_t i = 0; i < count; i++)
            chunk[i] = info->is_bias ? (float)bias : (float)(std * prng_normal(rng));
        int status = safetensors_write(writer, chunk, count);
        if (status != 0)
            return status;
        done += (int64_t)count;
    }
    return 0;
}

static int write_weights(const model_tensors *tensors, const init_settings *settings,
                         int64_t *file_bytes)
{
    char seed_text[32], bias_text[40];
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, settings->seed);
    snprintf(bias_text, sizeof bias_text, "%.17g", settings->bias);
    const safetensors_metadata metadata[] = {
        {"generator", "rectify init"},
        {"init", settings->xavier ? "xavier_normal" : "he_normal"},
        {"seed", seed_text},
        {"bias", bias_text},
    };

    float *chunk = malloc(INIT_CHUNK * sizeof *chunk);
    if (chunk == NULL)
        return cli_error("out of memory");
    safetensors_writer writer;
    int status = safetensors_begin(&writer, settings->output, tensors->entries,
                                   tensors->count, metadata, 4);
    if (status != 0) {
        free(chunk);
        return status;
    }

    /* One generator through all tensors in order: the file depends on the
       seed and the graph only. */
    prng rng;
    prng_seed(&rng, settings->seed);
    for (int i = 0; status == 0 && i < tensors->count; i++)
        status = write_tensor(&writer, &tensors->info[i], &rng, settings->bias, settings->xavier, chunk);
    free(chunk);

    *file_bytes = writer.file_bytes;
    if (status != 0) {
        safetensors_abort(&writer);
        return status;
    }
    return safetensors_finish(&writer);
}

static void print_human(const model_tensors *tensors, const init_settings *settings,
                        int64_t file_bytes)
{
    char params[FORMAT_BUFFER], bytes[FORMAT_BUFFER], exact[FORMAT_BUFFER];
    printf("Wrote %s: %d tensors, %s parameters, %s (%s bytes); seed %" PRIu64
           ", bias %g\n",
           settings->output, tensors->count,
           format_count(params, sizeof params, tensors->params),
           format_bytes(bytes, sizeof bytes, file_bytes),
           format_count(exact, sizeof exact, file_bytes), settings->seed, settings->bias);
}

static int print_json(const rectify_model *model, const model_tensors *tensors,
                      const init_settings *settings, int64_t file_bytes)
{
    json_doc doc;
    json_doc_init(&doc);
    json_add_string(&doc, doc.root, "model", rectify_model_name(model));
    json_add_string(&doc, doc.root, "path", settings->output);
    /* As a string: a 64-bit seed does not fit a JSON number exactly. */
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, settings->seed);
    json_add_string(&doc, doc.root, "seed", seed_text);
    json_add_number(&doc, doc.root, "bias", settings->bias);
    json_add_string(&doc, doc.root, "init", settings->xavier ? "xavier" : "he");
    cJSON *list = json_add_array(&doc, doc.root, "tensors");
    for (int i = 0; i < tensors->count; i++) {
        const rectify_tensor_info *info = &tensors->info[i];
        cJSON *entry = json_add_object(&doc, list, NULL);
        json_add_string(&doc, entry, "name", info->name);
        json_add_shape(&doc, entry, "shape", info->rank, info->shape);
        json_add_int(&doc, entry, "elements", info->elements);
        if (info->is_bias)
            json_add_number(&doc, entry, "value", settings->bias);
        else
            json_add_number(&doc, entry, "std", init_std(info, settings->xavier));
    }
    json_add_int(&doc, doc.root, "tensor_count", tensors->count);
    json_add_int(&doc, doc.root, "params", tensors->params);
    json_add_int(&doc, doc.root, "bytes", file_bytes);
    return json_doc_print(&doc);
}

static int init_command(const cli_args *args)
{
    init_settings settings;
    int status = read_settings(args, &settings);
    if (status != 0)
        return status;

    rectify_model *model;
    status = load_model(args->positional[0], NULL, 1, &model);
    if (status != 0)
        return status;

    model_tensors tensors;
    status = read_tensors(model, &tensors);
    if (status == 0) {
        int64_t file_bytes = 0;
        status = write_weights(&tensors, &settings, &file_bytes);
        if (status == 0 && args->json)
            status = print_json(model, &tensors, &settings, file_bytes);
        else if (status == 0)
            print_human(&tensors, &settings, file_bytes);
        free_tensors(&tensors);
    }
    rectify_model_destroy(model);
    return status;
}

const cli_command cmd_init = {
    .name = "init",
    .synopsis = "MODEL -o FILE [options]",
    .summary = "Write He- or Xavier-initialised weights for the model's graph.",
    .details =
        "Every weight tensor the graph needs is drawn from a normal distribution\n"
        "with mean 0 and standard deviation sqrt(2 / fan_in) (He/Kaiming; --init\n"
        "xavier: sqrt(2 / (fan_in + fan_out)), Glorot); every bias is set to B. With\n"
        "B = 0 about half of every ReLU's outputs are zero at initialisation; a\n"
        "positive B makes fewer zeros, a negative one more (see rectify sparsity).\n"
        "The random numbers depend on the seed only, so the same seed gives the same\n"
        "file on every machine. FILE (a safetensors file) is replaced only once it\n"
        "is completely written. The model needs no weights.\n"
        "\n"
        "JSON: {\"model\", \"path\", \"seed\", \"bias\", \"init\", \"tensors\": [{\"name\", \"shape\",\n"
        "\"elements\", \"std\" or \"value\"}], \"tensor_count\", \"params\", \"bytes\"}.",
    .options = init_options,
    .min_positional = 1,
    .max_positional = 1,
    .handler = init_command,
};
