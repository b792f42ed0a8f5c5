/* runner.c: model, session and the image loop shared by `run` and `sparsity`. */
#define _POSIX_C_SOURCE 200809L /* isatty, fileno */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "runner.h"

/* Fewer images than this finish before a progress line would be useful. */
#define PROGRESS_MIN_IMAGES 8

/* The library's message, or the status name if it left none. */
static const char *error_text(const rectify_error *err)
{
    return err->message[0] != '\0' ? err->message : rectify_status_name(err->status);
}

int load_model(const char *path, const char *weights_path, int graph_only,
               rectify_model **model)
{
    rectify_load_options options = {.graph_only = graph_only, .weights_path = weights_path,
                                    .allow_nonfinite = cli_allow_nonfinite};
    rectify_error err = {0};
    if (rectify_model_load(path, &options, model, &err) != RECTIFY_OK) {
        *model = NULL;
        if (strstr(err.message, "allow_nonfinite") != NULL)
            return cli_error("%s (the option --allow-nonfinite)", error_text(&err));
        return cli_error("%s", error_text(&err));
    }
    return 0;
}

/* A progress line redraws itself with a carriage return and an erase-line
   escape: only a terminal that understands them should get one. */
static int progress_wanted(void)
{
    const char *term = getenv("TERM");
    return isatty(fileno(stderr)) && !(term != NULL && strcmp(term, "dumb") == 0);
}

int runner_open(image_runner *runner, const char *model_path, const char *weights_path,
                int threads, int image_count)
{
    memset(runner, 0, sizeof *runner);
    runner->image_count = image_count;
    runner->progress_enabled = image_count > PROGRESS_MIN_IMAGES && progress_wanted();

    int status = load_model(model_path, weights_path, 0, &runner->model);
    if (status != 0)
        return status;

    rectify_session_options options = {.threads = threads, .batch = 1};
    rectify_error err = {0};
    if (rectify_session_create(runner->model, &options, &runner->session, &err) != RECTIFY_OK) {
        runner->session = NULL;
        runner_close(runner);
        return cli_error("%s", error_text(&err));
    }

    runner->input_size = rectify_model_input_size(runner->model);
    runner->input = malloc((runner->input_size > 0 ? runner->input_size : 1) *
                           sizeof *runner->input);
    if (runner->input == NULL) {
        runner_close(runner);
        return cli_error("out of memory for the input of %zu floats", runner->input_size);
    }
    return 0;
}

void runner_close(image_runner *runner)
{
    runner_clear_progress(runner);
    for (int i = 0; i < runner->failure_count; i++)
        free(runner->failures[i].message);
    free(runner->failures);
    free(runner->input);
    rectify_session_destroy(runner->session);
    rectify_model_destroy(runner->model);
    memset(runner, 0, sizeof *runner);
}

void runner_clear_progress(image_runner *runner)
{
    if (!runner->progress_shown)
        return;
    /* Carriage return, then erase to the end of the line. */
    fputs("\r\033[K", stderr);
    fflush(stderr);
    runner->progress_shown = 0;
}

static void show_progress(image_runner *runner, int index, const char *path)
{
    if (!runner->progress_enabled)
        return;
    fprintf(stderr, "\r\033[K[%d/%d] %s", index + 1, runner->image_count, path);
    fflush(stderr);
    runner->progress_shown = 1;
}

static char *copy_string(const char *text)
{
    size_t size = strlen(text) + 1;
    char *copy = malloc(size);
    if (copy != NULL)
        memcpy(copy, text, size);
    return copy;
}

/* Remembers a failed image. Returns 0, or -1 when out of memory. */
static int record_failure(image_runner *runner, const char *path, const char *message)
{
    if (runner->failure_count == runner->failure_capacity) {
        int capacity = runner->failure_capacity > 0 ? 2 * runner->failure_capacity : 8;
        image_failure *failures = realloc(runner->failures,
                                          (size_t)capacity * sizeof *failures);
        if (failures == NULL)
            return -1;
        runner->failures = failures;
        runner->failure_capacity = capacity;
    }
    char *copy = copy_string(message);
    if (copy == NULL)
        return -1;
    runner->failures[runner->failure_count].path = path;
    runner->failures[runner->failure_count].message = copy;
    runner->failure_count++;
    return 0;
}

static void report_image_failure(image_runner *runner, const char *path, const char *message)
{
    runner_clear_progress(runner);
    /* The library's messages usually name the file already; say it once. */
    if (strstr(message, path) != NULL)
        cli_error("%s", message);
    else
        cli_error("%s: %s", path, message);
}

runner_result runner_run_image(image_runner *runner, int index, const char *path)
{
    show_progress(runner, index, path);

    rectify_error err = {0};
    if (rectify_image_load(runner->model, path, runner->input, runner->input_size, &err)
        != RECTIFY_OK) {
        report_image_failure(runner, path, error_text(&err));
        if (record_failure(runner, path, error_text(&err)) != 0) {
            cli_error("out of memory");
            return RUNNER_FATAL;
        }
        return RUNNER_SKIPPED;
    }
    /* A failing run is not a property of the image: the engine or the memory
       is at fault, and the statistics may be half-counted, so stop. */
    if (rectify_session_run(runner->session, runner->input, runner->input_size, &err)
        != RECTIFY_OK) {
        runner_clear_progress(runner);
        cli_error("%s: %s", path, error_text(&err));
        return RUNNER_FATAL;
    }
    return RUNNER_RAN;
}

void runner_failures_json(const image_runner *runner, json_doc *doc, cJSON *parent)
{
    cJSON *failed = json_add_array(doc, parent, "failed");
    for (int i = 0; i < runner->failure_count; i++) {
        cJSON *entry = json_add_object(doc, failed, NULL);
        json_add_string(doc, entry, "path", runner->failures[i].path);
        json_add_string(doc, entry, "error", runner->failures[i].message);
    }
}

int runner_exit_status(const image_runner *runner)
{
    if (runner->failure_count > 0) {
        cli_error("%d of %d images failed", runner->failure_count, runner->image_count);
        return EXIT_RUNTIME;
    }
    return 0;
}
