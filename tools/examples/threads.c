/* threads.c: one model shared by several threads, each with its own session.
     threads MODEL IMAGE... [-t THREADS] [-r ROUNDS]
   Decodes the images once, runs them serially for reference, then starts
   THREADS threads (default 4) that each run every image ROUNDS times
   (default 3) in their own session, and checks that every output equals the
   serial one bit for bit. Prints the serial results, then one line per
   thread, then "OK" or the first difference; exits 0 only when all agree.

   What it shows: a model is immutable and may be shared without locks; a
   session is per thread; images are decoded by any thread. Each session
   runs with one OpenMP thread, so that THREADS threads use THREADS cores. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rectify.h>

typedef struct job {
    const rectify_model *model;
    const float *inputs;   /* images x input_size */
    const float *expected; /* images x outputs, the serial run */
    int images, rounds, id;
    size_t input_size, output_size;
    int mismatches, failed;
    char message[600];
} job;

/* Runs every image through `session`; copies output 0 into out (or compares
   it with expected when out is NULL). */
static int run_all(rectify_session *session, job *j, float *out, rectify_error *err)
{
    for (int i = 0; i < j->images; i++) {
        rectify_tensor t;
        if (rectify_session_run(session, j->inputs + (size_t)i * j->input_size, j->input_size, err)) return 1;
        if (rectify_session_output(session, 0, &t)) return 1;
        if (out) memcpy(out + (size_t)i * j->output_size, t.data, j->output_size * sizeof(float));
        else if (memcmp(t.data, j->expected + (size_t)i * j->output_size, j->output_size * sizeof(float)))
            j->mismatches++;
    }
    return 0;
}

static void *worker(void *arg)
{
    job *j = arg;
    rectify_error err = {0};
    rectify_session *session;
    rectify_session_options options = {.threads = 1};
    if (rectify_session_create(j->model, &options, &session, &err)) {
        j->failed = 1;
        snprintf(j->message, sizeof j->message, "%s", err.message);
        return NULL;
    }
    for (int r = 0; r < j->rounds && !j->failed; r++)
        if (run_all(session, j, NULL, &err)) {
            j->failed = 1;
            snprintf(j->message, sizeof j->message, "%s", err.message);
        }
    rectify_session_destroy(session);
    return NULL;
}

static int top1(const float *p, size_t n)
{
    size_t best = 0;
    for (size_t c = 1; c < n; c++)
        if (p[c] > p[best]) best = c;
    return (int)best;
}

int main(int argc, char **argv)
{
    int threads = 4, rounds = 3, images = 0;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) return 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else paths[images++] = argv[i];
    }
    if (argc < 3 || images == 0 || threads < 1 || threads > 256 || rounds < 1) {
        fprintf(stderr, "usage: %s MODEL IMAGE... [-t THREADS] [-r ROUNDS]\n", argv[0]);
        free(paths);
        return 2;
    }
    rectify_error err;
    rectify_model *model;
    if (rectify_model_load(argv[1], NULL, &model, &err)) {
        fprintf(stderr, "threads: %s\n", err.message);
        free(paths);
        return 1;
    }
    const size_t input_size = rectify_model_input_size(model);
    rectify_layer_info out_info;
    rectify_model_layer(model, rectify_model_output_layer(model, 0), &out_info);
    const size_t output_size = (size_t)out_info.elements;
    float *inputs = malloc((size_t)images * input_size * sizeof *inputs);
    float *expected = malloc((size_t)images * output_size * sizeof *expected);
    job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    rectify_session *serial = NULL;
    int status = 1;
    if (!inputs || !expected || !jobs || !ids) { fprintf(stderr, "threads: out of memory\n"); goto done; }
    for (int i = 0; i < images; i++)
        if (rectify_image_load(model, paths[i], inputs + (size_t)i * input_size, input_size, &err)) {
            fprintf(stderr, "threads: %s\n", err.message);
            goto done;
        }

    /* The reference: one session, one thread, one image after another. */
    rectify_session_options one = {.threads = 1};
    job reference = {.model = model, .inputs = inputs, .images = images, .input_size = input_size,
                     .output_size = output_size};
    if (rectify_session_create(model, &one, &serial, &err) || run_all(serial, &reference, expected, &err)) {
        fprintf(stderr, "threads: %s\n", err.message);
        goto done;
    }
    for (int i = 0; i < images; i++) {
        int best = top1(expected + (size_t)i * output_size, output_size);
        const char *label = rectify_model_label(model, best);
        printf("%s %s %.4f\n", paths[i], label ? label : "?", expected[(size_t)i * output_size + (size_t)best]);
    }

    /* The same images on `threads` threads at once, sharing the model. */
    int started = 0;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){.model = model, .inputs = inputs, .expected = expected, .images = images, .rounds = rounds,
                        .id = t, .input_size = input_size, .output_size = output_size};
        if (pthread_create(&ids[t], NULL, worker, &jobs[t]) != 0) {
            fprintf(stderr, "threads: cannot start thread %d\n", t);
            break;
        }
        started++;
    }
    int bad = started < threads;
    for (int t = 0; t < started; t++) {
        pthread_join(ids[t], NULL);
        if (jobs[t].failed) printf("thread %d: failed: %s\n", t, jobs[t].message);
        else printf("thread %d: %d runs, %d differ from the serial run\n", t, images * rounds, jobs[t].mismatches);
        bad |= jobs[t].failed || jobs[t].mismatches;
    }
    if (bad) {
        printf("FAILED\n");
        goto done;
    }
    printf("OK: %d threads x %d runs equal the serial run\n", threads, images * rounds);
    status = 0;
done:
    rectify_session_destroy(serial);
    rectify_model_destroy(model);
    free(inputs);
    free(expected);
    free(jobs);
    free(ids);
    free(paths);
    return status;
}
