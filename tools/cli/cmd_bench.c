/* cmd_bench.c: `rectify bench MODEL`: how fast the model runs here: load
   time, the first (cold) run on its own, steady-state latency over timed
   runs, throughput, GFLOP/s, memory, and per layer its time, share of the
   run, GFLOP/s and the zeros of its output. */
#define _GNU_SOURCE /* sched_getaffinity and CPU_COUNT on Linux; POSIX otherwise */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#  include <sched.h>
#endif

#include "cli.h"
#include "format.h"
#include "json_out.h"
#include "prng.h"
#include "progress.h"
#include "runner.h"
#include "table.h"

#define DEFAULT_RUNS 10
#define DEFAULT_SECONDS 1.0
#define DEFAULT_WARMUP 1
/* Every timed run's per-layer times are kept for the medians: timing stops
   here even before --seconds are spent (LeNet does this many in ~7 s). */
#define MAX_RUNS 100000
#define MAX_WARMUP 100000
#define MAX_SECONDS 86400.0
/* The random input: uniform in [-1, 1) from this seed, the same every time. */
#define INPUT_SEED 0

static const cli_option bench_options[] = {
    {"weights", 0, "FILE", "use the weights in FILE instead of model.json's"},
    {"batch", 0, "N", "samples per run (1 to 4096; default 1)"},
    {"runs", 0, "N", "at least N timed runs (default 10; at most 100000)"},
    {"seconds", 0, "S", "and for at least S seconds (default 1)"},
    {"warmup", 0, "N", "untimed runs after the first one (default 1)"},
    {"image", 0, "FILE", "run on this image, preprocessed, instead of random input"},
    {"per-layer", 0, NULL, "also show the per-layer table (always in --json)"},
    {"allow-nonfinite", 0, NULL, "load weights even if they hold NaN or infinity"},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, NULL},
};

typedef struct bench_settings {
    const char *model_path;
    const char *weights;   /* --weights, or NULL */
    const char *image;     /* --image, or NULL: random input */
    int threads;           /* what the session is given: never 0 */
    int batch, runs, warmup, per_layer;
    double seconds;
} bench_settings;

/* The timed runs: one entry per run, per layer [run * layer_count + layer]. */
typedef struct run_times {
    double *wall, *cpu, *layers;
    int count, capacity, layer_count;
} run_times;

typedef struct layer_result {
    rectify_layer_info info;
    double median, min;        /* seconds over the timed runs */
    int64_t zeros, elements;   /* of the last run: the input never changes */
} layer_result;

typedef struct bench_result {
    char *weights_path;        /* the file loaded; NULL when it cannot be told */
    int64_t weights_file_bytes;/* -1: unknown */
    int weights_missing;       /* weights_path does not exist */
    double load, session, first, timed;         /* seconds */
    double median, min, max, mean, median_cpu;  /* seconds per timed run */
    int runs;
    int64_t macs;              /* per sample */
    rectify_memory_info memory;
    int64_t session_bytes;
    int64_t peak_rss, rss;     /* before the timed runs; -1: unknown */
    int64_t peak_rss_end;      /* after them, their records included */
    layer_result *layers;
    int layer_count;
    double layer_sum;          /* the layers' medians added up */
} bench_result;

/* CPU time of the whole process: all threads of a run. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* What the session does with 0 threads ("all cores": the CPUs this process
   may run on), counted here so that the report can say how many. */
static int available_cores(void)
{
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

static int read_settings(const cli_args *args, bench_settings *s)
{
    long value;
    int status;
    s->model_path = args->positional[0];
    s->weights = cli_value(args, "weights");
    s->image = cli_value(args, "image");
    s->per_layer = cli_flag(args, "per-layer");
    s->threads = args->threads > 0 ? args->threads : available_cores();
    if ((status = cli_long_option(args, "batch", 1, 1, RECTIFY_MAX_BATCH, &value)) != 0)
        return status;
    s->batch = (int)value;
    if ((status = cli_long_option(args, "runs", DEFAULT_RUNS, 1, MAX_RUNS, &value)) != 0)
        return status;
    s->runs = (int)value;
    if ((status = cli_long_option(args, "warmup", DEFAULT_WARMUP, 0, MAX_WARMUP, &value)) != 0)
        return status;
    s->warmup = (int)value;

    const char *seconds = cli_value(args, "seconds");
    s->seconds = DEFAULT_SECONDS;
    if (seconds != NULL &&
        (parse_double(seconds, &s->seconds) != 0 || s->seconds < 0 || s->seconds > MAX_SECONDS))
        return cli_usage_error(args->command,
                               "invalid value '%s' for --seconds: expected a number from 0 to %g",
                               seconds, MAX_SECONDS);
    if (s->weights != NULL && s->weights[0] == '\0')
        return cli_usage_error(args->command, "--weights needs a file name");
    if (s->image != NULL && s->image[0] == '\0')
        return cli_usage_error(args->command, "--image needs a file name");
    return 0;
}

/* ---- the weights file ---- */

static char *join_path(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%s/%s", dir, name);
    return path;
}

static char *copy_text(const char *text)
{
    char *copy = malloc(strlen(text) + 1);
    if (copy != NULL)
        strcpy(copy, text);
    return copy;
}

/* model.json as text, or NULL (the load that follows says what is wrong). */
static char *read_text(const char *path)
{
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISREG(info.st_mode) || info.st_size > RECTIFY_MAX_JSON_BYTES)
        return NULL;
    FILE *file = fopen(path, "rb");
    char *text = file != NULL ? malloc((size_t)info.st_size + 1) : NULL;
    size_t size = text != NULL ? fread(text, 1, (size_t)info.st_size, file) : 0;
    if (file != NULL)
        fclose(file);
    if (text != NULL)
        text[size] = '\0';
    return text;
}

/* The weights file the model loads, found as rectify_model_load finds it:
   --weights, else model.json's "weights" (default weights.safetensors),
   relative to the folder of model.json. Only to report its size and to
   recognise a graph-only model; NULL when it cannot be told. */
static char *weights_file_path(const char *model_path, const char *weights_option)
{
    if (weights_option != NULL)
        return copy_text(weights_option);
    struct stat info;
    if (stat(model_path, &info) != 0)
        return NULL;
    char *dir, *json_path;
    if (S_ISDIR(info.st_mode)) {
        dir = copy_text(model_path);
        json_path = join_path(model_path, "model.json");
    } else {
        json_path = copy_text(model_path);
        dir = copy_text(model_path);
        char *slash = dir != NULL ? strrchr(dir, '/') : NULL;
        if (slash != NULL)
            *slash = '\0';
        else if (dir != NULL)
            strcpy(dir, ".");
    }
    char *text = dir != NULL && json_path != NULL ? read_text(json_path) : NULL;
    cJSON *root = text != NULL ? cJSON_Parse(text) : NULL;
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(root, "weights");
    const char *name = cJSON_IsString(field) ? field->valuestring : "weights.safetensors";
    char *path = NULL;
    if (root != NULL)
        path = name[0] == '/' ? copy_text(name) : join_path(dir, name);
    cJSON_Delete(root);
    free(text);
    free(json_path);
    free(dir);
    return path;
}

/* The file's size, or -1; *missing tells whether it does not exist. */
static int64_t file_bytes(const char *path, int *missing)
{
    struct stat info;
    *missing = 0;
    if (path == NULL)
        return -1;
    if (stat(path, &info) != 0) {
        *missing = errno == ENOENT;
        return -1;
    }
    return (int64_t)info.st_size;
}

/* ---- loading ---- */

/* A model.json without weights beside it is a graph to be given weights;
   say how rather than only that a file is missing. */
static int refuse_graph_only(const bench_settings *s, const char *weights_path)
{
    rectify_model *graph;
    int status = load_model(s->model_path, NULL, 1, &graph);
    if (status != 0)
        return status; /* model.json itself is at fault: that error is printed */
    rectify_model_destroy(graph);
    return cli_error("%s is a graph without weights (%s does not exist); write random ones "
                     "with 'rectify init %s -o FILE' and give --weights FILE",
                     s->model_path, weights_path, s->model_path);
}

static int load_timed(const bench_settings *s, bench_result *r, rectify_model **model,
                      rectify_session **session)
{
    *session = NULL;
    if (s->weights == NULL && r->weights_missing)
        return refuse_graph_only(s, r->weights_path);

    double start = cli_now();
    int status = load_model(s->model_path, s->weights, 0, model);
    r->load = cli_now() - start;
    if (status != 0)
        return status;

    rectify_session_options options = {.threads = s->threads, .batch = s->batch};
    rectify_error err = {0};
    start = cli_now();
    if (rectify_session_create(*model, &options, session, &err) != RECTIFY_OK) {
        rectify_model_destroy(*model);
        *model = NULL;
        *session = NULL;
        return cli_error("%s", err.message[0] != '\0' ? err.message : rectify_status_name(err.status));
    }
    r->session = cli_now() - start;
    rectify_session_set_layer_times(*session, 1); /* the per-layer table */
    return 0;
}

/* batch x input_size floats: the image in every sample, or random values. */
static int make_input(const rectify_model *model, const bench_settings *s, float **input,
                      size_t *count)
{
    size_t sample = rectify_model_input_size(model);
    *count = sample * (size_t)s->batch;
    *input = malloc((*count > 0 ? *count : 1) * sizeof **input);
    if (*input == NULL)
        return cli_error("out of memory for the input of %zu floats", *count);
    if (s->image == NULL) {
        prng rng;
        prng_seed(&rng, INPUT_SEED);
        for (size_t i = 0; i < *count; i++) /* the top 24 bits: exact in a float */
            (*input)[i] = (float)((double)(prng_next(&rng) >> 40) * 0x1p-23 - 1.0);
        return 0;
    }
    rectify_error err = {0};
    if (rectify_image_load(model, s->image, *input, sample, &err) != RECTIFY_OK) {
        const char *reason = err.message[0] != '\0' ? err.message : rectify_status_name(err.status);
        free(*input);
        *input = NULL;
        if (strstr(reason, s->image) != NULL) /* the library named it already */
            return cli_error("%s", reason);
        return cli_error("%s: %s", s->image, reason);
    }
    for (int b = 1; b < s->batch; b++)
        memcpy(*input + (size_t)b * sample, *input, sample * sizeof **input);
    return 0;
}

/* ---- running ---- */

static int run_once(rectify_session *session, const float *input, size_t count)
{
    rectify_error err = {0};
    if (rectify_session_run(session, input, count, &err) != RECTIFY_OK)
        return cli_error("run failed: %s",
                         err.message[0] != '\0' ? err.message : rectify_status_name(err.status));
    return 0;
}

static void free_times(run_times *t)
{
    free(t->wall);
    free(t->cpu);
    free(t->layers);
}

/* Room for one more run. Returns 0 or -1 when out of memory. */
static int grow_times(run_times *t)
{
    if (t->count < t->capacity)
        return 0;
    int capacity = t->capacity > 0 ? 2 * t->capacity : 64;
    double *wall = realloc(t->wall, (size_t)capacity * sizeof *wall);
    if (wall == NULL)
        return -1;
    t->wall = wall;
    double *cpu = realloc(t->cpu, (size_t)capacity * sizeof *cpu);
    if (cpu == NULL)
        return -1;
    t->cpu = cpu;
    size_t cells = (size_t)capacity * (size_t)(t->layer_count > 0 ? t->layer_count : 1);
    double *layers = realloc(t->layers, cells * sizeof *layers);
    if (layers == NULL)
        return -1;
    t->layers = layers;
    t->capacity = capacity;
    return 0;
}

/* Runs until at least s->runs runs and s->seconds seconds, each timed on
   its own; the layers' times are read after the clock has stopped. */
static int timed_runs(rectify_session *session, const float *input, size_t count,
                      const bench_settings *s, run_times *t, double *elapsed, progress *bar)
{
    double start = cli_now();
    *elapsed = 0;
    while (t->count < MAX_RUNS && (t->count < s->runs || *elapsed < s->seconds)) {
        if (grow_times(t) != 0)
            return cli_error("out of memory for the times of %d runs", t->count + 1);
        double wall = cli_now(), cpu = cpu_now();
        int status = run_once(session, input, count);
        t->cpu[t->count] = cpu_now() - cpu;
        t->wall[t->count] = cli_now() - wall;
        if (status != 0)
            return status;
        for (int l = 0; l < t->layer_count; l++) {
            rectify_layer_stats stats;
            rectify_session_layer_stats(session, l, &stats);
            t->layers[(size_t)t->count * (size_t)t->layer_count + (size_t)l] = stats.seconds;
        }
        t->count++;
        *elapsed = cli_now() - start;
        progress_note(bar, 0, "timed runs: %d, %.1f s (at least %d and %g s)", t->count,
                      *elapsed, s->runs, s->seconds);
    }
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of values[0..n), sorting them in place. */
static double median_of(double *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* VmHWM (the peak) and VmRSS (now) of this process, in bytes; -1 where the
   system does not say (anything but Linux). */
static void read_rss(int64_t *peak, int64_t *current)
{
    *peak = *current = -1;
    FILE *status = fopen("/proc/self/status", "r");
    if (status == NULL)
        return;
    char line[256];
    long long kib;
    while (fgets(line, sizeof line, status) != NULL) {
        if (sscanf(line, "VmHWM: %lld kB", &kib) == 1)
            *peak = (int64_t)kib * 1024;
        else if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
            *current = (int64_t)kib * 1024;
    }
    fclose(status);
}

/* Whole-run and per-layer figures from the timed runs (t is reordered). */
static int summarize(const rectify_model *model, const rectify_session *session, run_times *t,
                     bench_result *r)
{
    r->runs = t->count;
    r->min = r->max = t->wall[0];
    double sum = 0;
    for (int i = 0; i < t->count; i++) {
        r->min = t->wall[i] < r->min ? t->wall[i] : r->min;
        r->max = t->wall[i] > r->max ? t->wall[i] : r->max;
        sum += t->wall[i];
    }
    r->mean = sum / t->count;
    r->median = median_of(t->wall, t->count);
    r->median_cpu = median_of(t->cpu, t->count);

    /* t->wall is sorted now and needed no more: the column of one layer. */
    double *column = t->wall;
    r->macs = 0;
    r->layer_sum = 0;
    for (int l = 0; l < r->layer_count; l++) {
        layer_result *layer = &r->layers[l];
        rectify_layer_stats stats;
        if (rectify_model_layer(model, l, &layer->info) != RECTIFY_OK ||
            rectify_session_layer_stats(session, l, &stats) != RECTIFY_OK)
            return cli_error("cannot read layer %d of the model", l);
        layer->zeros = stats.zeros;
        layer->elements = stats.elements;
        for (int i = 0; i < t->count; i++)
            column[i] = t->layers[(size_t)i * (size_t)r->layer_count + (size_t)l];
        layer->median = median_of(column, t->count);
        layer->min = column[0];
        r->layer_sum += layer->median;
        r->macs += layer->info.macs;
    }
    rectify_model_memory(model, &r->memory);
    r->session_bytes = (int64_t)rectify_session_bytes(session);
    return 0;
}

/* First run, warm-up, timed runs, then the figures into *r. */
static int measure(rectify_model *model, rectify_session *session, const bench_settings *s,
                   bench_result *r, progress *bar)
{
    float *input;
    size_t count;
    int status = make_input(model, s, &input, &count);
    if (status != 0)
        return status;

    run_times t = {.layer_count = r->layer_count};
    progress_note(bar, 1, "first run");
    double start = cli_now();
    status = run_once(session, input, count);
    r->first = cli_now() - start;
    for (int i = 0; status == 0 && i < s->warmup; i++) {
        progress_note(bar, i == 0, "warm-up run %d of %d", i + 1, s->warmup);
        status = run_once(session, input, count);
    }
    /* The engine has touched all the memory it will by now (runs allocate
       only for more threads); the timed runs add only their own records
       (8 bytes per layer and run, 16 per run), which would inflate a small
       model's peak. */
    read_rss(&r->peak_rss, &r->rss);
    if (status == 0)
        status = timed_runs(session, input, count, s, &t, &r->timed, bar);
    int64_t rss_end;
    read_rss(&r->peak_rss_end, &rss_end);
    if (status == 0)
        status = summarize(model, session, &t, r);
    free_times(&t);
    free(input);
    return status;
}

/* ---- reporting ---- */

/* Milliseconds with three or four significant digits: 1714, 164, 26.7,
   0.752, 0.071. */
static const char *format_ms(char *buffer, size_t size, double seconds)
{
    double ms = seconds * 1e3;
    int decimals = ms >= 100 ? 0 : ms >= 10 ? 1 : ms >= 1 ? 2 : 3;
    snprintf(buffer, size, "%.*f", decimals, ms);
    return buffer;
}

/* 2 x MACs multiply-adds over `seconds`, in GFLOP/s; 0 when not timed. */
static double gflops(int64_t macs, int batch, double seconds)
{
    return seconds > 0 ? 2.0 * (double)macs * batch / seconds / 1e9 : 0.0;
}

static const char *format_memory(char *buffer, size_t size, int64_t bytes)
{
    if (bytes < 0)
        snprintf(buffer, size, "unknown");
    else
        format_bytes(buffer, size, bytes);
    return buffer;
}

static void print_input_line(const bench_settings *s)
{
    printf("Batch %d, %d thread%s, ", s->batch, s->threads, s->threads == 1 ? "" : "s");
    if (s->image != NULL)
        printf("input %s\n", s->image);
    else
        printf("random input (uniform in [-1, 1), seed %d)\n", INPUT_SEED);
}

static void print_times(const bench_settings *s, const bench_result *r)
{
    char a[FORMAT_BUFFER], b[FORMAT_BUFFER], c[FORMAT_BUFFER], d[FORMAT_BUFFER];
    printf("Load:            %s ms\n", format_ms(a, sizeof a, r->load));
    printf("Session:         %s ms\n", format_ms(a, sizeof a, r->session));
    printf("First run:       %s ms (cold)\n", format_ms(a, sizeof a, r->first));
    printf("Steady state:    %s ms median, %s min, %s max, %s mean\n",
           format_ms(a, sizeof a, r->median), format_ms(b, sizeof b, r->min),
           format_ms(c, sizeof c, r->max), format_ms(d, sizeof d, r->mean));
    printf("                 over %s runs in %.2f s, after %d warm-up run%s%s\n",
           format_count(a, sizeof a, r->runs), r->timed, s->warmup, s->warmup == 1 ? "" : "s",
           r->runs == MAX_RUNS && r->timed < s->seconds ? " (stopped at the limit)" : "");
    printf("CPU per run:     %s ms median (process CPU time, all threads)\n",
           format_ms(a, sizeof a, r->median_cpu));
    double rate = r->median > 0 ? s->batch / r->median : 0.0;
    if (rate >= 100)
        printf("Throughput:      %s samples/s\n", format_count(a, sizeof a, (int64_t)(rate + 0.5)));
    else
        printf("Throughput:      %.2f samples/s\n", rate);
    printf("Compute:         %.2f GFLOP/s (%s MACs per sample)\n",
           gflops(r->macs, s->batch, r->median), format_scaled(a, sizeof a, r->macs));
}

static void print_memory(const bench_settings *s, const bench_result *r)
{
    char a[FORMAT_BUFFER], b[FORMAT_BUFFER], c[FORMAT_BUFFER];
    printf("Peak RSS:        %s (now %s)\n", format_memory(a, sizeof a, r->peak_rss),
           format_memory(b, sizeof b, r->rss));
    printf("                 %s after the timed runs, their records included\n",
           format_memory(a, sizeof a, r->peak_rss_end));
    printf("Weights file:    %s", format_memory(a, sizeof a, r->weights_file_bytes));
    if (r->weights_path != NULL)
        printf(" (%s)", r->weights_path);
    printf("\nEngine memory:   model %s, session %s (activations %s x batch %d)\n",
           format_bytes(a, sizeof a, r->memory.model_bytes),
           format_bytes(b, sizeof b, r->session_bytes),
           format_bytes(c, sizeof c, r->memory.planned_bytes), s->batch);
}

static void add_layer_row(table *t, const layer_result *layer, const bench_result *r, int batch)
{
    char buffer[FORMAT_BUFFER];
    table_row(t);
    table_cell(t, "%s", layer->info.name);
    table_cell(t, "%s", layer->info.op);
    table_cell(t, "%s", layer->info.macs > 0 ? format_scaled(buffer, sizeof buffer, layer->info.macs) : "");
    if (layer->info.fused_into >= 0) { /* its time is in that layer's */
        table_cell(t, "in %s", r->layers[layer->info.fused_into].info.name);
        table_cell(t, "%s", "");
    } else {
        table_cell(t, "%s", format_ms(buffer, sizeof buffer, layer->median));
        table_cell(t, "%.1f%%", r->median > 0 ? 100.0 * layer->median / r->median : 0.0);
    }
    if (layer->info.macs > 0 && layer->median > 0) {
        double rate = gflops(layer->info.macs, batch, layer->median);
        table_cell(t, "%.*f", rate >= 10 ? 1 : rate >= 1 ? 2 : 3, rate);
    } else
        table_cell(t, "%s", "");
    table_cell(t, "%.1f%%", 100.0 * ratio(layer->zeros, layer->elements));
}

static int print_layers(const bench_result *r, int batch)
{
    static const table_column columns[] = {
        {"layer", ALIGN_LEFT},    {"op", ALIGN_LEFT},      {"MACs", ALIGN_RIGHT},
        {"median ms", ALIGN_RIGHT}, {"% of run", ALIGN_RIGHT}, {"GFLOP/s", ALIGN_RIGHT},
        {"zeros", ALIGN_RIGHT},
    };
    table *t = table_create(columns, 7);
    if (t == NULL)
        return cli_error("out of memory");
    for (int l = 0; l < r->layer_count; l++)
        add_layer_row(t, &r->layers[l], r, batch);
    char macs[FORMAT_BUFFER], ms[FORMAT_BUFFER];
    table_rule(t);
    table_row(t);
    table_cell(t, "sum of layers");
    table_cell(t, "%s", "");
    table_cell(t, "%s", format_scaled(macs, sizeof macs, r->macs));
    table_cell(t, "%s", format_ms(ms, sizeof ms, r->layer_sum));
    table_cell(t, "%.1f%%", r->median > 0 ? 100.0 * r->layer_sum / r->median : 0.0);
    fputc('\n', stdout);
    int status = table_print(t, stdout, 0) != 0 ? cli_error("out of memory") : 0;
    table_destroy(t);
    return status;
}

static int print_human(const rectify_model *model, const bench_settings *s, const bench_result *r)
{
    printf("Model: %s\n", rectify_model_name(model));
    print_input_line(s);
    fputc('\n', stdout);
    print_times(s, r);
    print_memory(s, r);
    return s->per_layer ? print_layers(r, s->batch) : 0;
}

/* A byte count, or null when unknown. */
static void add_bytes(json_doc *doc, cJSON *parent, const char *key, int64_t bytes)
{
    if (bytes >= 0)
        json_add_int(doc, parent, key, bytes);
    else
        json_add_null(doc, parent, key);
}

static void add_layers_json(json_doc *doc, const bench_result *r, int batch)
{
    cJSON *layers = json_add_array(doc, doc->root, "layers");
    for (int l = 0; l < r->layer_count; l++) {
        const layer_result *layer = &r->layers[l];
        cJSON *entry = json_add_object(doc, layers, NULL);
        json_add_int(doc, entry, "index", l);
        json_add_string(doc, entry, "name", layer->info.name);
        json_add_string(doc, entry, "op", layer->info.op);
        if (layer->info.fused_into >= 0) json_add_string(doc, entry, "fused_into", r->layers[layer->info.fused_into].info.name);
        else json_add_null(doc, entry, "fused_into");
        json_add_int(doc, entry, "macs", layer->info.macs);
        json_add_number(doc, entry, "median_ms", layer->median * 1e3);
        json_add_number(doc, entry, "min_ms", layer->min * 1e3);
        json_add_number(doc, entry, "share", r->median > 0 ? layer->median / r->median : 0.0);
        if (layer->info.macs > 0 && layer->median > 0)
            json_add_number(doc, entry, "gflops", gflops(layer->info.macs, batch, layer->median));
        else
            json_add_null(doc, entry, "gflops");
        json_add_int(doc, entry, "zeros", layer->zeros);
        json_add_int(doc, entry, "elements", layer->elements);
        json_add_number(doc, entry, "sparsity", ratio(layer->zeros, layer->elements));
    }
}

static int print_json(const rectify_model *model, const bench_settings *s, const bench_result *r)
{
    json_doc doc;
    json_doc_init(&doc);
    cJSON *root = doc.root;
    json_add_string(&doc, root, "model", rectify_model_name(model));
    json_add_string(&doc, root, "version", rectify_version());
    json_add_string(&doc, root, "weights", r->weights_path);
    json_add_int(&doc, root, "batch", s->batch);
    json_add_int(&doc, root, "threads", s->threads);
    json_add_string(&doc, root, "input", s->image != NULL ? "image" : "random");
    json_add_string(&doc, root, "image", s->image);
    json_add_number(&doc, root, "load_ms", r->load * 1e3);
    json_add_number(&doc, root, "session_ms", r->session * 1e3);
    json_add_number(&doc, root, "first_run_ms", r->first * 1e3);
    json_add_int(&doc, root, "warmup", s->warmup);
    json_add_int(&doc, root, "runs", r->runs);
    json_add_int(&doc, root, "min_runs", s->runs);
    json_add_number(&doc, root, "min_seconds", s->seconds);
    json_add_number(&doc, root, "timed_ms", r->timed * 1e3);
    json_add_number(&doc, root, "median_ms", r->median * 1e3);
    json_add_number(&doc, root, "min_ms", r->min * 1e3);
    json_add_number(&doc, root, "max_ms", r->max * 1e3);
    json_add_number(&doc, root, "mean_ms", r->mean * 1e3);
    json_add_number(&doc, root, "median_cpu_ms", r->median_cpu * 1e3);
    json_add_number(&doc, root, "samples_per_s", r->median > 0 ? s->batch / r->median : 0.0);
    json_add_int(&doc, root, "macs", r->macs);
    json_add_number(&doc, root, "gflops", gflops(r->macs, s->batch, r->median));
    add_bytes(&doc, root, "peak_rss_bytes", r->peak_rss);
    add_bytes(&doc, root, "rss_bytes", r->rss);
    add_bytes(&doc, root, "peak_rss_end_bytes", r->peak_rss_end);
    add_bytes(&doc, root, "weights_file_bytes", r->weights_file_bytes);
    json_add_int(&doc, root, "weight_bytes", r->memory.weight_bytes);
    json_add_int(&doc, root, "model_bytes", r->memory.model_bytes);
    json_add_int(&doc, root, "session_bytes", r->session_bytes);
    json_add_int(&doc, root, "activation_bytes_planned", r->memory.planned_bytes);
    add_layers_json(&doc, r, s->batch);
    json_add_number(&doc, root, "layer_sum_ms", r->layer_sum * 1e3);
    return json_doc_print(&doc);
}

static int bench_command(const cli_args *args)
{
    bench_settings s;
    int status = read_settings(args, &s);
    if (status != 0)
        return status;

    bench_result r = {0};
    r.weights_path = weights_file_path(s.model_path, s.weights);
    r.weights_file_bytes = file_bytes(r.weights_path, &r.weights_missing);

    progress bar;
    progress_start(&bar, PROGRESS_UNKNOWN);
    progress_note(&bar, 1, "loading %s", s.model_path);
    rectify_model *model = NULL;
    rectify_session *session = NULL;
    status = load_timed(&s, &r, &model, &session);
    if (status == 0) {
        r.layer_count = rectify_model_layer_count(model);
        r.layers = calloc((size_t)(r.layer_count > 0 ? r.layer_count : 1), sizeof *r.layers);
        status = r.layers != NULL ? measure(model, session, &s, &r, &bar) : cli_error("out of memory");
    }
    progress_clear(&bar);
    if (status == 0)
        status = args->json ? print_json(model, &s, &r) : print_human(model, &s, &r);
    free(r.layers);
    free(r.weights_path);
    rectify_session_destroy(session);
    rectify_model_destroy(model);
    return status;
}

const cli_command cmd_bench = {
    .name = "bench",
    .synopsis = "MODEL [options]",
    .summary = "Time the model: first and steady-state runs, per layer, memory.",
    .details =
        "Loads the model and creates a session (both timed), times the first run on\n"
        "its own (cold: thread start-up and caches; the session has touched its\n"
        "memory), does the warm-up runs, then times runs until at least --runs runs\n"
        "and --seconds seconds are done (at most 100000 runs). Reports the median,\n"
        "min, max and mean of the timed runs, the process CPU time of a run,\n"
        "samples per second, GFLOP/s (2 x MACs x batch / median), and memory: the\n"
        "process's peak and current resident set before the timed runs (VmHWM and\n"
        "VmRSS on Linux, unknown elsewhere) and its peak after them (their records\n"
        "included), beside the weights file's size and the engine's own figures. With\n"
        "--per-layer, each layer's median time, share of the median run, GFLOP/s\n"
        "and the fraction of zeros in its output (a ReLU run inside the convolution\n"
        "before it or the max pool after it shows \"in\" that layer: its time is\n"
        "there). GFLOP/s count a direct convolution's multiply-adds: Winograd layers\n"
        "do fewer, so theirs may pass the machine's peak.\n"
        "\n"
        "The input is fixed pseudo-random values, uniform in [-1, 1) (seed 0), or\n"
        "the --image, preprocessed as model.json says, in every sample of the batch.\n"
        "A graph-only model (no weights file) is refused: write random weights with\n"
        "'rectify init MODEL -o FILE' and give --weights FILE. Progress goes to\n"
        "stderr when it is a terminal. Times on a busy machine are noisy.\n"
        "\n"
        "JSON: {\"model\", \"version\", \"weights\", \"batch\", \"threads\", \"input\"\n"
        "(\"random\" or \"image\"), \"image\", \"load_ms\", \"session_ms\", \"first_run_ms\",\n"
        "\"warmup\", \"runs\", \"min_runs\", \"min_seconds\", \"timed_ms\", \"median_ms\",\n"
        "\"min_ms\", \"max_ms\", \"mean_ms\", \"median_cpu_ms\", \"samples_per_s\", \"macs\"\n"
        "(per sample), \"gflops\", \"peak_rss_bytes\", \"rss_bytes\", \"peak_rss_end_bytes\",\n"
        "\"weights_file_bytes\" (these four null when unknown), \"weight_bytes\",\n"
        "\"model_bytes\", \"session_bytes\", \"activation_bytes_planned\" (per sample),\n"
        "\"layers\": [{\"index\", \"name\", \"op\", \"fused_into\" (the layer it runs in,\n"
        "or null), \"macs\", \"median_ms\", \"min_ms\",\n"
        "\"share\", \"gflops\" (null without MACs), \"zeros\", \"elements\", \"sparsity\"\n"
        "(0..1, of the last run)}], \"layer_sum_ms\"}.",
    .options = bench_options,
    .min_positional = 1,
    .max_positional = 1,
    .handler = bench_command,
};
