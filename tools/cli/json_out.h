/*
 * json_out.h: building the --json document with cJSON.
 *
 * Every cJSON constructor can fail on allocation; rather than check each of
 * the dozens of calls, the document keeps a sticky `failed` flag, the helpers
 * do nothing once it is set (or when given a NULL parent), and json_doc_print
 * reports the failure once.
 *
 * Each helper adds to `parent`: appended when it is an array, under `key`
 * when it is an object.
 */
#ifndef RECTIFY_CLI_JSON_OUT_H
#define RECTIFY_CLI_JSON_OUT_H

#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct json_doc {
    cJSON *root;   /* an object */
    int failed;
} json_doc;

/* Starts a document with an empty object as its root. */
void json_doc_init(json_doc *doc);

cJSON *json_add_object(json_doc *doc, cJSON *parent, const char *key);
cJSON *json_add_array(json_doc *doc, cJSON *parent, const char *key);
void json_add_number(json_doc *doc, cJSON *parent, const char *key, double value);
/* int64 counts; exact up to 2^53, far beyond any count here. */
void json_add_int(json_doc *doc, cJSON *parent, const char *key, int64_t value);
/* A NULL string is written as null. */
void json_add_string(json_doc *doc, cJSON *parent, const char *key, const char *value);
void json_add_bool(json_doc *doc, cJSON *parent, const char *key, int value);
void json_add_null(json_doc *doc, cJSON *parent, const char *key);
/* [6, 28, 28] */
void json_add_shape(json_doc *doc, cJSON *parent, const char *key, int rank,
                    const int64_t *shape);

/* Prints the document on stdout with cJSON_Print and frees it. Returns 0, or
   reports the failure on stderr and returns EXIT_RUNTIME. */
int json_doc_print(json_doc *doc);

/* Frees the document without printing (on an error path). */
void json_doc_free(json_doc *doc);

#endif /* RECTIFY_CLI_JSON_OUT_H */
