/* json_out.c: cJSON document building with a sticky failure flag. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json_out.h"

void json_doc_init(json_doc *doc)
{
    doc->root = cJSON_CreateObject();
    doc->failed = doc->root == NULL;
}

/* Attaches `item` to `parent`, or frees it; returns it when attached. */
static cJSON *attach(json_doc *doc, cJSON *parent, const char *key, cJSON *item)
{
    if (doc->failed || parent == NULL || item == NULL) {
        doc->failed = 1;
        cJSON_Delete(item);
        return NULL;
    }
    cJSON_bool attached = cJSON_IsArray(parent) ? cJSON_AddItemToArray(parent, item)
                                                : cJSON_AddItemToObject(parent, key, item);
    if (!attached) {
        doc->failed = 1;
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

cJSON *json_add_object(json_doc *doc, cJSON *parent, const char *key)
{
    return doc->failed ? NULL : attach(doc, parent, key, cJSON_CreateObject());
}

cJSON *json_add_array(json_doc *doc, cJSON *parent, const char *key)
{
    return doc->failed ? NULL : attach(doc, parent, key, cJSON_CreateArray());
}

/* cJSON prints 15 significant digits whenever they read back within a
   relative DBL_EPSILON, which loses the last bit (4238/11760 came out as
   0.360374149659864) and digits of integers above 10^15. This prints the
   shortest of 15, 16 or 17 digits that reads back exactly. */
static cJSON *create_number(double value)
{
    if (!isfinite(value))
        return cJSON_CreateNull(); /* what cJSON prints for them */
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, value);
        if (strtod(text, NULL) == value)
            break;
    }
    return cJSON_CreateRaw(text);
}

void json_add_number(json_doc *doc, cJSON *parent, const char *key, double value)
{
    if (!doc->failed)
        attach(doc, parent, key, create_number(value));
}

void json_add_int(json_doc *doc, cJSON *parent, const char *key, int64_t value)
{
    json_add_number(doc, parent, key, (double)value);
}

void json_add_string(json_doc *doc, cJSON *parent, const char *key, const char *value)
{
    if (doc->failed)
        return;
    attach(doc, parent, key, value != NULL ? cJSON_CreateString(value) : cJSON_CreateNull());
}

void json_add_bool(json_doc *doc, cJSON *parent, const char *key, int value)
{
    if (!doc->failed)
        attach(doc, parent, key, cJSON_CreateBool(value != 0));
}

void json_add_null(json_doc *doc, cJSON *parent, const char *key)
{
    if (!doc->failed)
        attach(doc, parent, key, cJSON_CreateNull());
}

void json_add_shape(json_doc *doc, cJSON *parent, const char *key, int rank,
                    const int64_t *shape)
{
    cJSON *array = json_add_array(doc, parent, key);
    for (int i = 0; i < rank; i++)
        json_add_int(doc, array, NULL, shape[i]);
}

int json_doc_print(json_doc *doc)
{
    if (doc->failed) {
        json_doc_free(doc);
        return cli_error("out of memory building the JSON output");
    }
    char *text = cJSON_Print(doc->root);
    json_doc_free(doc);
    if (text == NULL)
        return cli_error("out of memory printing the JSON output");
    int status = 0;
    if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF)
        status = cli_error("cannot write to standard output");
    cJSON_free(text);
    return status;
}

void json_doc_free(json_doc *doc)
{
    cJSON_Delete(doc->root);
    doc->root = NULL;
}
