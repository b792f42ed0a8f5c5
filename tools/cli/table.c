/* table.c: aligned text tables with a sticky out-of-memory flag. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

typedef struct table_row_data {
    int is_rule;
    char **cells;   /* column_count entries; NULL prints as empty */
} table_row_data;

struct table {
    table_column *columns;
    int column_count;
    table_row_data *rows;
    int row_count;
    int row_capacity;
    int next_cell;  /* column the next table_cell fills */
    int failed;     /* an allocation failed */
};

table *table_create(const table_column *columns, int count)
{
    table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->columns = malloc((size_t)count * sizeof *t->columns);
    if (t->columns == NULL) {
        free(t);
        return NULL;
    }
    memcpy(t->columns, columns, (size_t)count * sizeof *columns);
    t->column_count = count;
    return t;
}

void table_destroy(table *t)
{
    if (t == NULL)
        return;
    for (int r = 0; r < t->row_count; r++) {
        if (t->rows[r].cells != NULL)
            for (int c = 0; c < t->column_count; c++)
                free(t->rows[r].cells[c]);
        free(t->rows[r].cells);
    }
    free(t->rows);
    free(t->columns);
    free(t);
}

static table_row_data *append_row(table *t)
{
    if (t->failed)
        return NULL;
    if (t->row_count == t->row_capacity) {
        int capacity = t->row_capacity > 0 ? 2 * t->row_capacity : 16;
        table_row_data *rows = realloc(t->rows, (size_t)capacity * sizeof *rows);
        if (rows == NULL) {
            t->failed = 1;
            return NULL;
        }
        t->rows = rows;
        t->row_capacity = capacity;
    }
    table_row_data *row = &t->rows[t->row_count++];
    row->is_rule = 0;
    row->cells = NULL;
    t->next_cell = 0;
    return row;
}

void table_row(table *t)
{
    table_row_data *row = append_row(t);
    if (row == NULL)
        return;
    row->cells = calloc((size_t)t->column_count, sizeof *row->cells);
    if (row->cells == NULL)
        t->failed = 1;
}

void table_rule(table *t)
{
    table_row_data *row = append_row(t);
    if (row != NULL)
        row->is_rule = 1;
    /* No cells belong to a rule; a table_cell after it is a caller bug and
       is ignored by table_cell's checks. */
    t->next_cell = t->column_count;
}

void table_cell(table *t, const char *format, ...)
{
    if (t->failed || t->row_count == 0 || t->next_cell >= t->column_count)
        return;
    table_row_data *row = &t->rows[t->row_count - 1];
    if (row->is_rule || row->cells == NULL)
        return;

    va_list ap;
    va_start(ap, format);
    int length = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    if (length < 0) {
        t->failed = 1;
        return;
    }
    char *text = malloc((size_t)length + 1);
    if (text == NULL) {
        t->failed = 1;
        return;
    }
    va_start(ap, format);
    vsnprintf(text, (size_t)length + 1, format, ap);
    va_end(ap);
    row->cells[t->next_cell++] = text;
}

/* Width in terminal columns: UTF-8 continuation bytes take none, so labels
   such as "café" still line up. */
static size_t display_width(const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if ((*p & 0xC0) != 0x80)
            width++;
    return width;
}

static void print_padded(FILE *stream, const char *text, size_t width, table_align align,
                         int last_column)
{
    size_t padding = width - display_width(text);
    if (align == ALIGN_RIGHT)
        fprintf(stream, "%*s%s", (int)padding, "", text);
    else if (last_column)
        fputs(text, stream);   /* no trailing blanks */
    else
        fprintf(stream, "%s%*s", text, (int)padding, "");
}

/* Index of the last column with text, so that lines end without blanks. */
static int last_filled(const table *t, char *const *cells, int is_title)
{
    int last = t->column_count - 1;
    while (last > 0) {
        const char *text = is_title ? t->columns[last].title : cells[last];
        if (text != NULL && text[0] != '\0')
            break;
        last--;
    }
    return last;
}

static void print_line(const table *t, FILE *stream, int indent, const size_t *widths,
                       char *const *cells, int is_title)
{
    int last = last_filled(t, cells, is_title);
    fprintf(stream, "%*s", indent, "");
    for (int c = 0; c <= last; c++) {
        const char *text = is_title ? t->columns[c].title : cells[c];
        if (c > 0)
            fputs("  ", stream);
        print_padded(stream, text != NULL ? text : "", widths[c], t->columns[c].align,
                     c == last);
    }
    fputc('\n', stream);
}

static void print_rule(FILE *stream, int indent, size_t total_width)
{
    fprintf(stream, "%*s", indent, "");
    for (size_t i = 0; i < total_width; i++)
        fputc('-', stream);
    fputc('\n', stream);
}

int table_print(const table *t, FILE *stream, int indent)
{
    if (t->failed)
        return -1;
    size_t *widths = calloc((size_t)t->column_count, sizeof *widths);
    if (widths == NULL)
        return -1;

    for (int c = 0; c < t->column_count; c++)
        widths[c] = display_width(t->columns[c].title);
    for (int r = 0; r < t->row_count; r++) {
        if (t->rows[r].is_rule)
            continue;
        for (int c = 0; c < t->column_count; c++) {
            const char *text = t->rows[r].cells[c];
            if (text != NULL && display_width(text) > widths[c])
                widths[c] = display_width(text);
        }
    }
    size_t total_width = 0;
    for (int c = 0; c < t->column_count; c++)
        total_width += widths[c] + (c > 0 ? 2 : 0);

    print_line(t, stream, indent, widths, NULL, 1);
    print_rule(stream, indent, total_width);
    for (int r = 0; r < t->row_count; r++) {
        if (t->rows[r].is_rule)
            print_rule(stream, indent, total_width);
        else
            print_line(t, stream, indent, widths, t->rows[r].cells, 0);
    }
    free(widths);
    return 0;
}
