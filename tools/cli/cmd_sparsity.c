/* cmd_sparsity.c: `rectify sparsity MODEL IMAGE...`: per-layer sparsity over
   all the images. */
#include <stdio.h>

#include "cli.h"
#include "runner.h"
#include "sparsity_report.h"

static const cli_option sparsity_options[] = {
    {"weights", 0, "FILE", "use the weights in FILE instead of model.json's"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

/* Runs every image; the session accumulates the statistics. */
static int run_all(image_runner *runner, const cli_args *args)
{
    for (int i = 1; i < args->positional_count; i++)
        if (runner_run_image(runner, i - 1, args->positional[i]) == RUNNER_FATAL)
            return EXIT_RUNTIME;
    runner_clear_progress(runner);
    return 0;
}

static int print_json(const image_runner *runner, const sparsity_report *report)
{
    json_doc doc;
    json_doc_init(&doc);
    json_add_string(&doc, doc.root, "model", rectify_model_name(runner->model));
    json_add_int(&doc, doc.root, "images", report->samples);
    runner_failures_json(runner, &doc, doc.root);
    sparsity_report_layers_json(report, &doc, doc.root, "layers", 1);
    /* Unknown rather than 0 when nothing was counted. */
    if (report->relu_layers > 0 && report->samples > 0)
        json_add_number(&doc, doc.root, "relu_sparsity", sparsity_report_relu(report));
    else
        json_add_null(&doc, doc.root, "relu_sparsity");
    if (report->samples > 0)
        json_add_number(&doc, doc.root, "total_sparsity", sparsity_report_total(report));
    else
        json_add_null(&doc, doc.root, "total_sparsity");
    return json_doc_print(&doc);
}

static int print_human(const image_runner *runner, const sparsity_report *report)
{
    if (report->samples == 0)
        return 0; /* every image failed: the errors said so already */
    printf("Model: %s, %lld image%s", rectify_model_name(runner->model),
           (long long)report->samples, report->samples == 1 ? "" : "s");
    if (runner->failure_count > 0)
        printf(" (%d failed)", runner->failure_count);
    if (report->samples > 1)
        fputs("; elements and zeros summed over the images", stdout);
    fputs("\n\n", stdout);
    return sparsity_report_print(report, stdout, 0, report->samples > 1);
}

static int sparsity_command(const cli_args *args)
{
    image_runner runner;
    int status = runner_open(&runner, args->positional[0], cli_value(args, "weights"),
                             args->threads, args->positional_count - 1);
    if (status != 0)
        return status;

    status = run_all(&runner, args);
    sparsity_report report;
    if (status == 0)
        status = sparsity_report_collect(&report, runner.model, runner.session,
                                         SPARSITY_ACCUMULATED);
    if (status == 0) {
        status = args->json ? print_json(&runner, &report) : print_human(&runner, &report);
        sparsity_report_free(&report);
    }
    if (status == 0)
        status = runner_exit_status(&runner);
    runner_close(&runner);
    return status;
}

const cli_command cmd_sparsity = {
    .name = "sparsity",
    .synopsis = "MODEL IMAGE... [options]",
    .summary = "Show how many zeros every layer's output holds over the images.",
    .details =
        "For each layer: its output shape, the elements and zeros counted over all\n"
        "images, and the sparsity (zeros / elements) in percent; with several images,\n"
        "the mean, min and max of the per-image sparsity. Then the sparsity over all\n"
        "ReLU outputs together, and over all layers. An image that cannot be loaded\n"
        "is reported and skipped; the exit status is then 1.\n"
        "\n"
        "JSON: {\"model\", \"images\", \"failed\": [{\"path\", \"error\"}], \"layers\": [{\"name\",\n"
        "\"op\", \"shape\", \"elements\", \"zeros\", \"sparsity\", \"mean\", \"min\", \"max\"}],\n"
        "\"relu_sparsity\", \"total_sparsity\"}; fractions are 0..1.",
    .options = sparsity_options,
    .min_positional = 2,
    .max_positional = -1,
    .handler = sparsity_command,
};
