/* cmd_pack.c: `rectify pack MODEL -o FILE`: the model's weights packed for
   this CPU's kernels (rectify_model_save_packed), a weights file that loads
   without repacking. The file is loaded back and one run compared with the
   original model's before the command says it is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "format.h"
#include "json_out.h"
#include "prng.h"
#include "progress.h"
#include "runner.h"

static const cli_option pack_options[] = {
    {"output", 'o', "FILE", "write the packed weights to FILE (required)"},
    {"weights", 0, "FILE", "pack the weights in FILE instead of model.json's"},
    {"allow-nonfinite", 0, NULL, "pack weights even if they hold NaN or infinity"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

/* One run of `model` on `input`; its outputs copied into *out (malloc'd,
   all outputs one after the other). Returns 0 or EXIT_RUNTIME. */
static int run_once(const rectify_model *model, int threads, const float *input, size_t count,
                    float **out, size_t *out_count)
{
    rectify_session_options options = {.threads = threads, .batch = 1};
    rectify_session *session;
    rectify_error err = {0};
    if (rectify_session_create(model, &options, &session, &err) != RECTIFY_OK)
        return cli_error("%s", err.message);
    int status = 0;
    *out = NULL;
    *out_count = 0;
    if (rectify_session_run(session, input, count, &err) != RECTIFY_OK) {
        status = cli_error("%s", err.message);
    } else {
        for (int i = 0; i < rectify_model_output_count(model) && status == 0; i++) {
            rectify_tensor t;
            float *grown = NULL;
            if (rectify_session_output(session, i, &t) != RECTIFY_OK ||
                (grown = realloc(*out, (*out_count + (size_t)t.elements) * sizeof **out)) == NULL) {
                status = cli_error("cannot read output %d", i);
                break;
            }
            *out = grown;
            memcpy(*out + *out_count, t.data, (size_t)t.elements * sizeof **out);
            *out_count += (size_t)t.elements;
        }
    }
    rectify_session_destroy(session);
    return status;
}

/* The packed file, loaded back, must compute what the model computes:
   bit for bit (the same kernels read the same packed weights). */
static int check_packed(const char *model_path, const char *packed, const rectify_model *model,
                        int threads, double *load_ms)
{
    size_t count = rectify_model_input_size(model);
    float *input = malloc(count * sizeof *input);
    if (input == NULL)
        return cli_error("out of memory");
    prng rng;
    prng_seed(&rng, 0);
    for (size_t i = 0; i < count; i++)
        input[i] = (float)((double)(prng_next(&rng) >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    double t0 = 1e3 * cli_now();
    rectify_model *loaded;
    int status = load_model(model_path, packed, 0, &loaded);
    *load_ms = 1e3 * cli_now() - t0;
    float *want = NULL, *got = NULL;
    size_t want_count = 0, got_count = 0;
    if (status == 0)
        status = run_once(model, threads, input, count, &want, &want_count);
    if (status == 0)
        status = run_once(loaded, threads, input, count, &got, &got_count);
    if (status == 0 && (want_count != got_count || memcmp(want, got, want_count * sizeof *want) != 0))
        status = cli_error("%s: loaded back, it computes other outputs than the model: not kept", packed);
    rectify_model_destroy(loaded);
    free(input);
    free(want);
    free(got);
    return status;
}

static int pack_command(const cli_args *args)
{
    const char *output = cli_value(args, "output");
    if (output == NULL || output[0] == '\0')
        return cli_usage_error(args->command, "missing the output file: -o FILE");
    const char *model_path = args->positional[0];
    double t0 = 1e3 * cli_now();
    rectify_model *model;
    int status = load_model(model_path, cli_value(args, "weights"), 0, &model);
    if (status != 0)
        return status;
    double load_ms = 1e3 * cli_now() - t0;
    rectify_error err = {0};
    t0 = 1e3 * cli_now();
    if (rectify_model_save_packed(model, output, &err) != RECTIFY_OK) {
        rectify_model_destroy(model);
        return cli_error("%s", err.message);
    }
    double save_ms = 1e3 * cli_now() - t0, packed_load_ms = 0;
    status = check_packed(model_path, output, model, args->threads, &packed_load_ms);
    rectify_model_destroy(model);
    if (status != 0) {
        remove(output);
        return status;
    }
    struct stat sb;
    int64_t bytes = stat(output, &sb) == 0 ? (int64_t)sb.st_size : -1;
    if (args->json) {
        json_doc doc;
        json_doc_init(&doc);
        json_add_string(&doc, doc.root, "model", model_path);
        json_add_string(&doc, doc.root, "output", output);
        json_add_int(&doc, doc.root, "bytes", bytes);
        json_add_number(&doc, doc.root, "load_ms", load_ms);
        json_add_number(&doc, doc.root, "save_ms", save_ms);
        json_add_number(&doc, doc.root, "packed_load_ms", packed_load_ms);
        json_add_bool(&doc, doc.root, "verified", 1);
        return json_doc_print(&doc);
    }
    char size[FORMAT_BUFFER];
    printf("Packed %s into %s (%s)\n", model_path, output, format_bytes(size, sizeof size, bytes));
    printf("Load:          %.1f ms from the weights file (packing included)\n", load_ms);
    printf("Load, packed:  %.1f ms (checked: one run gives the same outputs, bit for bit)\n", packed_load_ms);
    printf("Write:         %.1f ms\n", save_ms);
    printf("Use it:        rectify run %s --weights %s IMAGE\n", model_path, output);
    return 0;
}

const cli_command cmd_pack = {
    .name = "pack",
    .synopsis = "MODEL -o FILE [options]",
    .summary = "Save the weights packed for this CPU: a weights file that loads at once.",
    .details =
        "Loading a model packs its convolution and dense weights into the layouts\n"
        "the kernels read (Winograd-transformed for 3x3 convolutions): VGG-16\n"
        "takes 0.4 to 2.6 s on this machine, several times one inference. This\n"
        "writes the packed weights to FILE; given to any command as --weights\n"
        "FILE (or as the weights of model.json), it is mapped instead, with\n"
        "nothing repacked or checked: the first run reads its pages. The file\n"
        "fits this model.json and, when it has Winograd layers, CPUs whose\n"
        "kernels block filters as this one's do; other cases are refused with\n"
        "a message. Before it reports success, FILE is loaded back and one run\n"
        "on a random input is compared with the original's, bit for bit (a file\n"
        "that fails is removed). FILE may not be the weights file being packed.\n"
        "\n"
        "JSON: {\"model\", \"output\", \"bytes\", \"load_ms\", \"save_ms\",\n"
        "\"packed_load_ms\", \"verified\"}.",
    .options = pack_options,
    .min_positional = 1,
    .max_positional = 1,
    .handler = pack_command,
};
