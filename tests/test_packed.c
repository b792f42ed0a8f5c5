/* test_packed.c: packed weights files (rectify_model_save_packed). A model
   loaded from its packed file computes what the original computes, bit for
   bit, for every kernel choice (direct, grouped, Winograd F(4x4) and
   F(2x2), dense blocks), from a folder (mapped: the model then holds no
   packed copy) and from memory. And a corpus of damaged or mismatched
   files, each refused with a message saying what is wrong. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rectify.h"
#include "support.h"

/* Every packed kind: conv 3->16 (direct: too few channels for Winograd),
   16->24 3x3 (Winograd), 24->24 in 3 groups (direct, grouped), 1x1,
   dense 720->1100 (two blocks of outputs) and 1100->10 without bias. */
static const char json[] =
    "{\"format\": \"rectify\", \"version\": 1, \"name\": \"packed\","
    " \"input\": {\"name\": \"x\", \"shape\": [3, 12, 12]},"
    " \"layers\": ["
    "  {\"name\": \"c1\", \"op\": \"conv\", \"out_channels\": 16, \"kernel\": 3, \"padding\": 1},"
    "  {\"name\": \"r1\", \"op\": \"relu\"},"
    "  {\"name\": \"c2\", \"op\": \"conv\", \"out_channels\": 24, \"kernel\": 3, \"padding\": 1},"
    "  {\"name\": \"r2\", \"op\": \"relu\"},"
    "  {\"name\": \"c3\", \"op\": \"conv\", \"out_channels\": 24, \"kernel\": 3, \"padding\": 1, \"groups\": 3},"
    "  {\"name\": \"p\", \"op\": \"maxpool\", \"kernel\": 2},"
    "  {\"name\": \"c4\", \"op\": \"conv\", \"out_channels\": 20, \"kernel\": 1},"
    "  {\"name\": \"r4\", \"op\": \"relu\"},"
    "  {\"name\": \"f\", \"op\": \"flatten\"},"
    "  {\"name\": \"d1\", \"op\": \"dense\", \"units\": 1100},"
    "  {\"name\": \"r5\", \"op\": \"relu\"},"
    "  {\"name\": \"d2\", \"op\": \"dense\", \"units\": 10, \"bias\": false}]}";

enum { TENSORS = 11 };

typedef struct fixture {
    ttensor t[TENSORS];
    float *data[TENSORS];
    float *input;
    char dir[64];
    char path[128];  /* the packed file */
} fixture;

static void make_weights(fixture *f, uint64_t seed, float poison)
{
    static const ttensor shapes[TENSORS] = {
        {"c1.weight", 4, {16, 3, 3, 3}, NULL},  {"c1.bias", 1, {16}, NULL},
        {"c2.weight", 4, {24, 16, 3, 3}, NULL}, {"c2.bias", 1, {24}, NULL},
        {"c3.weight", 4, {24, 8, 3, 3}, NULL},  {"c3.bias", 1, {24}, NULL},
        {"c4.weight", 4, {20, 24, 1, 1}, NULL}, {"c4.bias", 1, {20}, NULL},
        {"d1.weight", 2, {1100, 720}, NULL},    {"d1.bias", 1, {1100}, NULL},
        {"d2.weight", 2, {10, 1100}, NULL},
    };
    rng r = {seed};
    for (int i = 0; i < TENSORS; i++) {
        f->t[i] = shapes[i];
        int64_t n = 1;
        for (int k = 0; k < shapes[i].rank; k++) n *= shapes[i].shape[k];
        f->data[i] = random_floats(&r, n, -0.3f, 0.3f);
        f->t[i].data = f->data[i];
    }
    f->data[2][5] = poison ? poison : f->data[2][5];
    f->input = random_floats(&r, 3 * 12 * 12, -1.0f, 1.0f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rectify-packed-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/w.rxpack", f->dir);
    char json_path[160];
    snprintf(json_path, sizeof json_path, "%s/model.json", f->dir);
    FILE *out = fopen(json_path, "w");
    cr_assert_not_null(out);
    fputs(json, out);
    fclose(out);
}

static void free_fixture(fixture *f)
{
    for (int i = 0; i < TENSORS; i++) free(f->data[i]);
    free(f->input);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    cr_assert_eq(system(cmd), 0);
}

static rectify_model *load_original(fixture *f, int allow_nonfinite)
{
    size_t size;
    unsigned char *st = st_build(f->t, TENSORS, &size);
    rectify_load_options o = {.allow_nonfinite = allow_nonfinite};
    rectify_model *m = NULL;
    rectify_error err;
    cr_assert_eq(rectify_model_load_memory(json, strlen(json), st, size, NULL, &o, &m, &err), RECTIFY_OK, "%s",
                 err.message);
    free(st);
    return m;
}

/* Weights from `seed` (see make_weights), the model loaded from them with
   RECTIFY_WINOGRAD set to `winograd` (NULL: unset), packed into f->path. */
static rectify_model *packed_original(fixture *f, uint64_t seed, const char *winograd, float poison)
{
    if (winograd) setenv("RECTIFY_WINOGRAD", winograd, 1);
    else unsetenv("RECTIFY_WINOGRAD");
    make_weights(f, seed, poison);
    rectify_model *m = load_original(f, poison != 0);
    rectify_error err;
    cr_assert_eq(rectify_model_save_packed(m, f->path, &err), RECTIFY_OK, "%s", err.message);
    return m;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *in = fopen(path, "rb");
    cr_assert_not_null(in, "%s", path);
    fseek(in, 0, SEEK_END);
    *size = (size_t)ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *data = malloc(*size + 1);
    cr_assert_eq(fread(data, 1, *size, in), *size);
    fclose(in);
    return data;
}

static void write_all(const char *path, const unsigned char *data, size_t size)
{
    FILE *out = fopen(path, "wb");
    cr_assert_not_null(out);
    cr_assert_eq(fwrite(data, 1, size, out), size);
    fclose(out);
}

/* Loads the packed bytes from memory: status, and the model when OK. */
static rectify_status load_packed_memory(const char *model_json, const unsigned char *data, size_t size,
                                         int allow_nonfinite, rectify_model **m, rectify_error *err)
{
    rectify_load_options o = {.allow_nonfinite = allow_nonfinite};
    return rectify_model_load_memory(model_json, strlen(model_json), data, size, NULL, &o, m, err);
}

static void expect_same_outputs(const rectify_model *a, const rectify_model *b, const float *input, int threads)
{
    int64_t na = 0, nb = 0;
    float *ya = run_model(a, input, 1, threads, &na), *yb = run_model(b, input, 1, threads, &nb);
    cr_assert(ya && yb);
    cr_assert_eq(na, 10);
    cr_assert_eq(nb, na);
    for (int64_t i = 0; i < na; i++)
        cr_assert(memcmp(&ya[i], &yb[i], sizeof *ya) == 0, "output %lld: %.9g packed, %.9g original", (long long)i,
                  yb[i], ya[i]);
    free(ya);
    free(yb);
}

/* Save, load back from the folder (mapped) and from memory, compare. */
static void round_trip(const char *winograd, int threads)
{
    fixture f;
    rectify_model *original = packed_original(&f, 7, winograd, 0);
    rectify_error err;

    rectify_load_options o = {.weights_path = f.path};
    rectify_model *mapped;
    cr_assert_eq(rectify_model_load(f.dir, &o, &mapped, &err), RECTIFY_OK, "%s", err.message);
    expect_same_outputs(original, mapped, f.input, threads);
    /* Mapped: the packed weights are the file's pages, not the model's. */
    rectify_memory_info mi_original, mi_mapped;
    rectify_model_memory(original, &mi_original);
    rectify_model_memory(mapped, &mi_mapped);
    cr_assert_gt(mi_original.model_bytes, 3 * 1024 * 1024, "%lld", (long long)mi_original.model_bytes);
    cr_assert_lt(mi_mapped.model_bytes, 256 * 1024, "%lld", (long long)mi_mapped.model_bytes);
    cr_assert_eq(mi_mapped.weight_bytes, mi_original.weight_bytes); /* the tensors, however held */

    size_t size;
    unsigned char *data = read_all(f.path, &size);
    rectify_model *copied;
    cr_assert_eq(load_packed_memory(json, data, size, 0, &copied, &err), RECTIFY_OK, "%s", err.message);
    expect_same_outputs(original, copied, f.input, threads);

    /* A packed model packs again into the same bytes. */
    char again[160];
    snprintf(again, sizeof again, "%s/again.rxpack", f.dir);
    cr_assert_eq(rectify_model_save_packed(mapped, again, &err), RECTIFY_OK, "%s", err.message);
    size_t size2;
    unsigned char *data2 = read_all(again, &size2);
    cr_assert_eq(size2, size);
    cr_assert(memcmp(data, data2, size) == 0);

    free(data);
    free(data2);
    rectify_model_destroy(copied);
    rectify_model_destroy(mapped);
    rectify_model_destroy(original);
    free_fixture(&f);
}

Test(packed, round_trip_default_choices) { round_trip(NULL, 1); }
Test(packed, round_trip_two_threads) { round_trip(NULL, 2); }
Test(packed, round_trip_winograd_2x2) { round_trip("2", 1); }
Test(packed, round_trip_direct_only) { round_trip("0", 2); }

/* The file keeps the kernel choices it was packed with: a process that
   would choose differently (RECTIFY_WINOGRAD) runs them as packed. */
Test(packed, choices_come_from_the_file)
{
    fixture f;
    rectify_model *original = packed_original(&f, 11, "2", 0);
    rectify_error err;
    setenv("RECTIFY_WINOGRAD", "0", 1);
    size_t size;
    unsigned char *data = read_all(f.path, &size);
    rectify_model *packed;
    cr_assert_eq(load_packed_memory(json, data, size, 0, &packed, &err), RECTIFY_OK, "%s", err.message);
    expect_same_outputs(original, packed, f.input, 1);
    rectify_model *direct = load_original(&f, 0);
    int64_t n1, n2;
    float *y1 = run_model(direct, f.input, 1, 1, &n1), *y2 = run_model(packed, f.input, 1, 1, &n2);
    cr_assert(memcmp(y1, y2, (size_t)n1 * sizeof *y1) != 0, "Winograd and direct agree to the bit: the check is blind");
    free(y1);
    free(y2);
    free(data);
    rectify_model_destroy(direct);
    rectify_model_destroy(packed);
    rectify_model_destroy(original);
    free_fixture(&f);
}

/* ---- The corpus: one valid file, damaged one way at a time. ---- */

/* Where things are in the file (packed.c's layout, little-endian). */
#define HEADER 48
#define ENTRY 200
#define AT_VERSION 8
#define AT_NR 12
#define AT_FILE_BYTES 40
#define ENTRY_AT(i) (HEADER + ENTRY * (i))
#define AT_WINOGRAD 180
#define AT_OFFSET 184
#define AT_BYTES 192

static bool starts_packed(const unsigned char *p) { return memcmp(p, "RXPACK\r\n", 8) == 0; }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

typedef struct corpus {
    fixture f;
    unsigned char *data;
    size_t size;
} corpus;

static void corpus_make(corpus *c, float poison)
{
    rectify_model_destroy(packed_original(&c->f, 3, NULL, poison));
    c->data = read_all(c->f.path, &c->size);
}

static void corpus_free(corpus *c)
{
    free(c->data);
    free_fixture(&c->f);
}

static void expect_refused(const char *model_json, const unsigned char *data, size_t size, rectify_status want,
                           const char *needle)
{
    rectify_model *m = (rectify_model *)1;
    rectify_error err;
    rectify_status st = load_packed_memory(model_json, data, size, 0, &m, &err);
    cr_assert_eq(st, want, "status %s, wanted %s: %s", rectify_status_name(st), rectify_status_name(want),
                 err.message);
    cr_assert_null(m);
    cr_assert(strstr(err.message, needle), "\"%s\" does not say \"%s\"", err.message, needle);
}

Test(packed_bad, too_short)
{
    corpus c;
    corpus_make(&c, 0);
    expect_refused(json, c.data, 20, RECTIFY_ERR_PARSE, "too short for a packed weights file");
    corpus_free(&c);
}

Test(packed_bad, other_version)
{
    corpus c;
    corpus_make(&c, 0);
    put32(c.data + AT_VERSION, 99);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "format version 99");
    corpus_free(&c);
}

Test(packed_bad, cut_short)
{
    corpus c;
    corpus_make(&c, 0);
    expect_refused(json, c.data, c.size - 4096, RECTIFY_ERR_PARSE, "the file is cut or grown");
    corpus_free(&c);
}

Test(packed_bad, table_does_not_fit)
{
    corpus c;
    corpus_make(&c, 0);
    put64(c.data + AT_FILE_BYTES, 300);
    expect_refused(json, c.data, 300, RECTIFY_ERR_PARSE, "table of tensors does not fit");
    corpus_free(&c);
}

/* json with `from` replaced by `to` (malloc'd). */
static char *replaced(const char *from, const char *to)
{
    const char *at = strstr(json, from);
    cr_assert_not_null(at, "%s", from);
    char *out = malloc(strlen(json) + strlen(to) + 1);
    snprintf(out, strlen(json) + strlen(to) + 1, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    return out;
}

Test(packed_bad, another_model)
{
    corpus c;
    corpus_make(&c, 0);
    char *fewer = replaced("\"kernel\": 1}", "\"kernel\": 1, \"bias\": false}"); /* c4 without bias */
    expect_refused(fewer, c.data, c.size, RECTIFY_ERR_INVALID, "weight tensors, this one has 10");
    char *other = replaced("\"out_channels\": 24, \"kernel\": 3, \"padding\": 1}", /* c2 5x5 */
                           "\"out_channels\": 24, \"kernel\": 5, \"padding\": 2}");
    expect_refused(other, c.data, c.size, RECTIFY_ERR_INVALID, "packed for another model");
    free(fewer);
    free(other);
    corpus_free(&c);
}

Test(packed_bad, winograd_tile_the_layer_cannot_run)
{
    corpus c;
    corpus_make(&c, 0);
    unsigned char copy[ENTRY];
    memcpy(copy, c.data + ENTRY_AT(0), ENTRY);
    put32(c.data + ENTRY_AT(0) + AT_WINOGRAD, 4); /* c1: 3 input channels */
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "Winograd tile 4, which layer \"c1\" cannot run");
    memcpy(c.data + ENTRY_AT(0), copy, ENTRY);
    put32(c.data + ENTRY_AT(2) + AT_WINOGRAD, 3); /* c2: no F(3x3) */
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "Winograd tile 3");
    put32(c.data + ENTRY_AT(2) + AT_WINOGRAD, 0xffffffffu); /* packed, but marked as bound */
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "\"c2.weight\" is stored as it is, but layer \"c2\" reads it packed");
    put32(c.data + ENTRY_AT(2) + AT_WINOGRAD, 4);
    put32(c.data + ENTRY_AT(8) + AT_WINOGRAD, 4); /* d1: dense has no Winograd */
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "Winograd tile 4, which layer \"d1\" cannot run");
    corpus_free(&c);
}

Test(packed_bad, bias_stored_packed)
{
    corpus c;
    corpus_make(&c, 0);
    put32(c.data + ENTRY_AT(1) + AT_WINOGRAD, 0);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "\"c1.bias\" is stored packed");
    corpus_free(&c);
}

Test(packed_bad, other_cpu_blocking)
{
    corpus c;
    corpus_make(&c, 0);
    uint32_t nr;
    memcpy(&nr, c.data + AT_NR, 4);
    put32(c.data + AT_NR, nr + 1);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "pack the weights again on this machine");
    /* Without Winograd layers the blocking does not matter: it loads. */
    corpus_free(&c);
    fixture f;
    rectify_model *m = packed_original(&f, 5, "0", 0);
    rectify_error err;
    size_t size;
    unsigned char *data = read_all(f.path, &size);
    memcpy(&nr, data + AT_NR, 4);
    put32(data + AT_NR, nr + 1);
    rectify_model *loaded;
    cr_assert_eq(load_packed_memory(json, data, size, 0, &loaded, &err), RECTIFY_OK, "%s", err.message);
    expect_same_outputs(m, loaded, f.input, 1);
    rectify_model_destroy(loaded);
    rectify_model_destroy(m);
    free(data);
    free_fixture(&f);
}

Test(packed_bad, offsets_and_sizes)
{
    corpus c;
    corpus_make(&c, 0);
    const int i = 8; /* d1.weight */
    uint64_t offset = get64(c.data + ENTRY_AT(i) + AT_OFFSET), bytes = get64(c.data + ENTRY_AT(i) + AT_BYTES);
    put64(c.data + ENTRY_AT(i) + AT_OFFSET, offset + 4);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "\"d1.weight\"");
    put64(c.data + ENTRY_AT(i) + AT_OFFSET, c.size);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "at a page boundary inside the file");
    put64(c.data + ENTRY_AT(i) + AT_OFFSET, 0); /* over the table */
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "at a page boundary");
    put64(c.data + ENTRY_AT(i) + AT_OFFSET, offset);
    put64(c.data + ENTRY_AT(i) + AT_BYTES, bytes - 4);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "were expected");
    put64(c.data + ENTRY_AT(i) + AT_BYTES, bytes);
    put64(c.data + ENTRY_AT(10) + AT_OFFSET, UINT64_MAX - 4095); /* d2.weight: wraps */
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "\"d2.weight\"");
    corpus_free(&c);
}

Test(packed_bad, nonfinite_needs_the_option)
{
    corpus c;
    corpus_make(&c, NAN);
    expect_refused(json, c.data, c.size, RECTIFY_ERR_INVALID, "allow_nonfinite");
    rectify_model *m;
    rectify_error err;
    cr_assert_eq(load_packed_memory(json, c.data, c.size, 1, &m, &err), RECTIFY_OK, "%s", err.message);
    rectify_model_destroy(m);
    corpus_free(&c);
}

Test(packed_bad, saving)
{
    fixture f;
    make_weights(&f, 9, 0);
    rectify_model *m = load_original(&f, 0);
    rectify_error err;
    cr_assert_eq(rectify_model_save_packed(NULL, f.path, &err), RECTIFY_ERR_ARGUMENT);
    cr_assert_eq(rectify_model_save_packed(m, NULL, &err), RECTIFY_ERR_ARGUMENT);
    cr_assert_eq(rectify_model_save_packed(m, "/nonexistent-dir/w.rxpack", &err), RECTIFY_ERR_IO);
    cr_assert(strstr(err.message, "/nonexistent-dir/w.rxpack"), "%s", err.message);
    /* Over an existing file: replaced whole, nothing left beside it. */
    write_all(f.path, (const unsigned char *)"old", 3);
    cr_assert_eq(rectify_model_save_packed(m, f.path, &err), RECTIFY_OK, "%s", err.message);
    struct stat sb;
    cr_assert_eq(stat(f.path, &sb), 0);
    cr_assert_gt(sb.st_size, 3 * 1024 * 1024);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 2", f.dir); /* model.json, w.rxpack */
    cr_assert_eq(system(cmd), 0);
    rectify_model_destroy(m);

    /* Never over the file the model maps: the weights it came from. */
    char st_path[160];
    snprintf(st_path, sizeof st_path, "%s/weights.safetensors", f.dir);
    size_t st_size;
    unsigned char *st = st_build(f.t, TENSORS, &st_size);
    write_all(st_path, st, st_size);
    free(st);
    rectify_model *mapped;
    cr_assert_eq(rectify_model_load(f.dir, NULL, &mapped, &err), RECTIFY_OK, "%s", err.message);
    cr_assert_eq(rectify_model_save_packed(mapped, st_path, &err), RECTIFY_ERR_INVALID);
    cr_assert(strstr(err.message, "the weights file this model was loaded from"), "%s", err.message);
    size_t kept_size;
    unsigned char *kept = read_all(st_path, &kept_size);
    cr_assert_eq(kept_size, st_size);
    cr_assert(!starts_packed(kept));
    free(kept);
    rectify_model_destroy(mapped);

    rectify_load_options o = {.graph_only = 1};
    cr_assert_eq(rectify_model_load_memory(json, strlen(json), NULL, 0, NULL, &o, &m, &err), RECTIFY_OK, "%s",
                 err.message);
    cr_assert_eq(rectify_model_save_packed(m, f.path, &err), RECTIFY_ERR_INVALID);
    cr_assert(strstr(err.message, "without weights"), "%s", err.message);
    rectify_model_destroy(m);
    free_fixture(&f);
}
