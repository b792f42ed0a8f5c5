/* test_bad.c: the bad-input corpus under tests/data/bad/ (written by its
   make_corpus.py). Every model folder under models/ and every image under
   images/ must be rejected with the status its `expect` file names and a
   message containing the expected substring; a failed load leaves *model
   NULL, and loading a case twice gives the same message. The base/ model and
   a shipped digit are the controls: they must load. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rectify.h"

#define BAD_ROOT TEST_SOURCE_ROOT "/tests/data/bad"
#define IMAGE_MODEL TEST_SOURCE_ROOT "/models/lenet5-mnist"
#define MIN_MODEL_CASES 35
#define MIN_IMAGE_CASES 12
#define MAX_CASES 1024

typedef struct bad_case {
    char name[256];       /* folder or image file name */
    char path[1024];      /* what is loaded */
    char dir[1040];       /* the case's folder: messages start with it */
    char status[32];      /* line 1 of the expect file */
    char substring[400];  /* line 2 */
    char problem[160];    /* non-empty when the expect file is unusable */
} bad_case;

static void read_line(FILE *f, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!fgets(buf, (int)size, f)) return;
    buf[strcspn(buf, "\r\n")] = '\0';
}

static void read_expect(bad_case *c, const char *expect_path)
{
    FILE *f = fopen(expect_path, "r");
    if (!f) {
        snprintf(c->problem, sizeof c->problem, "cannot open its expect file");
        return;
    }
    read_line(f, c->status, sizeof c->status);
    read_line(f, c->substring, sizeof c->substring);
    fclose(f);
    if (!c->status[0] || !c->substring[0])
        snprintf(c->problem, sizeof c->problem, "its expect file needs two lines: a status name and a substring");
}

static int compare_cases(const void *a, const void *b)
{
    return strcmp(((const bad_case *)a)->name, ((const bad_case *)b)->name);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Fills out[0..max) with the cases of models/ (images = false) or images/,
   sorted by name; returns how many were found (-1: no such folder). */
static int collect(bool images, bad_case *out, int max)
{
    const char *dir_path = images ? BAD_ROOT "/images" : BAD_ROOT "/models";
    DIR *dir = opendir(dir_path);
    if (!dir) return -1;
    int n = 0;
    struct dirent *d;
    while ((d = readdir(dir)) && n < max) {
        if (d->d_name[0] == '.') continue;
        bad_case *c = &out[n];
        memset(c, 0, sizeof *c);
        char expect[1200];
        if (images) {
            if (!ends_with(d->d_name, ".expect")) continue;
            snprintf(c->name, sizeof c->name, "%.*s", (int)(strlen(d->d_name) - strlen(".expect")), d->d_name);
            snprintf(c->path, sizeof c->path, "%s/%s", dir_path, c->name);
            snprintf(c->dir, sizeof c->dir, "%s/", dir_path);
            snprintf(expect, sizeof expect, "%s/%s", dir_path, d->d_name);
        } else {
            snprintf(c->name, sizeof c->name, "%s", d->d_name);
            snprintf(c->path, sizeof c->path, "%s/%s", dir_path, d->d_name);
            snprintf(c->dir, sizeof c->dir, "%s/", c->path);
            struct stat st;
            if (stat(c->path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
            snprintf(expect, sizeof expect, "%s/expect", c->path);
        }
        read_expect(c, expect);
        n++;
    }
    closedir(dir);
    qsort(out, (size_t)(n > 0 ? n : 0), sizeof *out, compare_cases);
    return n;
}

static bad_case *collect_all(bool images, int *count)
{
    bad_case *cases = calloc(MAX_CASES, sizeof *cases);
    cr_assert_not_null(cases);
    *count = collect(images, cases, MAX_CASES);
    return cases;
}

static void free_params(struct criterion_test_params *params)
{
    cr_free(params->params);
}

/* The cases of one folder as Criterion parameters (in Criterion's arena, so
   the test processes see them). */
static struct criterion_test_params make_params(bool images)
{
    int n;
    bad_case *found = collect_all(images, &n);
    if (n < 0) n = 0;
    bad_case *params = cr_calloc((size_t)(n ? n : 1), sizeof *params);
    memcpy(params, found, (size_t)n * sizeof *params);
    free(found);
    return cr_make_param_array(bad_case, params, (size_t)n, free_params);
}

/* Checks one failed call against the case's expectation. The substring is
   looked for after the case's folder, so that a case name in the path
   cannot match it. */
static void check_failure(const bad_case *c, const char *what, rectify_status st, const rectify_error *err)
{
    cr_assert(memchr(err->message, '\0', sizeof err->message) != NULL, "%s (%s): the message is not NUL-terminated",
              c->name, what);
    const char *rest = err->message;
    if (strncmp(rest, c->dir, strlen(c->dir)) == 0) rest += strlen(c->dir);
    size_t len = strlen(err->message);
    cr_expect_eq(err->status, st, "%s (%s): the returned status %s differs from err.status %s", c->name, what,
                 rectify_status_name(st), rectify_status_name(err->status));
    cr_expect_str_eq(rectify_status_name(st), c->status, "%s (%s): status \"%s\", expected \"%s\"; message: %s",
                     c->name, what, rectify_status_name(st), c->status, err->message);
    cr_expect(strstr(rest, c->substring) != NULL, "%s (%s): message lacks \"%s\"; message: %s", c->name, what,
              c->substring, err->message);
    cr_expect(len > 0 && err->message[len - 1] != ' ' && err->message[len - 1] != ':',
              "%s (%s): the message ends without saying what is wrong: \"%s\"", c->name, what, err->message);
}

/* Loads one model case; a model that loads (a bug) is destroyed at once.
   *model_left tells whether *model was left non-NULL after a failure. */
static rectify_status try_model_case(const bad_case *c, rectify_error *err, bool *model_left)
{
    static int sentinel;
    rectify_model *m = (rectify_model *)(void *)&sentinel;
    memset(err, 0x55, sizeof *err);
    rectify_status st = rectify_model_load(c->path, NULL, &m, err);
    if (st == RECTIFY_OK) rectify_model_destroy(m);
    *model_left = st != RECTIFY_OK && m != NULL;
    return st;
}

static rectify_model *load_image_model(void)
{
    rectify_error err;
    rectify_model *m = NULL;
    cr_assert_eq(rectify_model_load(IMAGE_MODEL, NULL, &m, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_model_input_size(m), 28 * 28);
    return m;
}

static rectify_status try_image_case(const rectify_model *m, const bad_case *c, rectify_error *err)
{
    float out[28 * 28];
    memset(err, 0x55, sizeof *err);
    return rectify_image_load(m, c->path, out, 28 * 28, err);
}

/* ---- the corpus ---- */

ParameterizedTestParameters(bad, models) { return make_params(false); }

ParameterizedTest(bad_case *c, bad, models)
{
    cr_assert(!c->problem[0], "%s: %s", c->name, c->problem);
    rectify_error err;
    bool model_left;
    rectify_status st = try_model_case(c, &err, &model_left);
    cr_assert_neq(st, RECTIFY_OK, "%s: the model loaded, but it should fail with %s containing \"%s\"", c->name,
                  c->status, c->substring);
    cr_expect(!model_left, "%s: *model is not NULL after a failed load", c->name);
    check_failure(c, "rectify_model_load", st, &err);
}

ParameterizedTestParameters(bad, images) { return make_params(true); }

ParameterizedTest(bad_case *c, bad, images)
{
    cr_assert(!c->problem[0], "%s: %s", c->name, c->problem);
    rectify_model *m = load_image_model();
    rectify_error err;
    rectify_status st = try_image_case(m, c, &err);
    if (st == RECTIFY_OK)
        cr_expect_fail("%s: the image loaded, but it should fail with %s containing \"%s\"", c->name, c->status,
                       c->substring);
    else
        check_failure(c, "rectify_image_load", st, &err);

    /* The same bytes from memory fail the same way (the file errors aside). */
    struct stat sb;
    if (strcmp(c->status, "io") != 0 && stat(c->path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        FILE *f = fopen(c->path, "rb");
        cr_assert_not_null(f);
        unsigned char *bytes = malloc((size_t)sb.st_size + 1);
        size_t got = fread(bytes, 1, (size_t)sb.st_size, f);
        fclose(f);
        cr_assert_eq(got, (size_t)sb.st_size);
        float out[28 * 28];
        st = rectify_image_load_memory(m, bytes, got, out, 28 * 28, &err);
        free(bytes);
        if (st == RECTIFY_OK)
            cr_expect_fail("%s: the image loaded from memory, but it should fail with %s", c->name, c->status);
        else
            check_failure(c, "rectify_image_load_memory", st, &err);
    }
    rectify_model_destroy(m);
}

/* ---- the corpus itself, and the controls ---- */

Test(bad, corpus_is_complete)
{
    int n;
    bad_case *cases = collect_all(false, &n);
    cr_expect_geq(n, MIN_MODEL_CASES, "%d model cases under %s/models (need %d): run make_corpus.py", n, BAD_ROOT,
                  MIN_MODEL_CASES);
    for (int i = 0; i < n; i++) cr_expect(!cases[i].problem[0], "%s: %s", cases[i].name, cases[i].problem);
    free(cases);
    cases = collect_all(true, &n);
    cr_expect_geq(n, MIN_IMAGE_CASES, "%d image cases under %s/images (need %d)", n, BAD_ROOT, MIN_IMAGE_CASES);
    for (int i = 0; i < n; i++) cr_expect(!cases[i].problem[0], "%s: %s", cases[i].name, cases[i].problem);
    free(cases);
}

Test(bad, base_model_loads)
{
    /* The model every case was derived from is valid: each case fails for
       its own change only. */
    rectify_error err;
    rectify_model *m = NULL;
    cr_assert_eq(rectify_model_load(BAD_ROOT "/base", NULL, &m, &err), RECTIFY_OK, "%s", err.message);
    cr_expect_eq(rectify_model_layer_count(m), 5);
    cr_expect_eq(rectify_model_tensor_count(m), 4);
    cr_expect_eq(rectify_model_label_count(m), 3);
    rectify_model_destroy(m);
}

Test(bad, valid_image_loads)
{
    rectify_model *m = load_image_model();
    rectify_error err;
    float out[28 * 28];
    cr_expect_eq(rectify_image_load(m, IMAGE_MODEL "/samples/digit-7.png", out, 28 * 28, &err), RECTIFY_OK, "%s",
                 err.message);
    rectify_model_destroy(m);
}

/* No hidden state: every case, loaded twice in a row in one process, gives
   the same status and the same message. */
Test(bad, same_message_twice)
{
    int n;
    bad_case *cases = collect_all(false, &n);
    for (int i = 0; i < n; i++) {
        rectify_error first, second;
        bool left;
        rectify_status a = try_model_case(&cases[i], &first, &left);
        rectify_status b = try_model_case(&cases[i], &second, &left);
        cr_expect_eq(a, b, "%s: status %s, then %s", cases[i].name, rectify_status_name(a), rectify_status_name(b));
        cr_expect(strncmp(first.message, second.message, sizeof first.message) == 0,
                  "%s: the message changed:\n  %.512s\n  %.512s", cases[i].name, first.message, second.message);
    }
    free(cases);
    cases = collect_all(true, &n);
    rectify_model *m = load_image_model();
    for (int i = 0; i < n; i++) {
        rectify_error first, second;
        rectify_status a = try_image_case(m, &cases[i], &first);
        rectify_status b = try_image_case(m, &cases[i], &second);
        cr_expect_eq(a, b, "%s: status %s, then %s", cases[i].name, rectify_status_name(a), rectify_status_name(b));
        cr_expect(strncmp(first.message, second.message, sizeof first.message) == 0,
                  "%s: the message changed:\n  %.512s\n  %.512s", cases[i].name, first.message, second.message);
    }
    rectify_model_destroy(m);
    free(cases);
}
