/*
 * table.h: aligned text tables. Cells are added row by row with printf-style
 * formats; widths are measured when the table is printed.
 *
 * Allocation failures are sticky, like a stream's error flag: the add calls
 * return nothing, and table_print reports the failure once, so that building
 * a table is not a wall of checks.
 */
#ifndef RECTIFY_CLI_TABLE_H
#define RECTIFY_CLI_TABLE_H

#include <stdio.h>

#include "cli.h"

typedef enum table_align { ALIGN_LEFT, ALIGN_RIGHT } table_align;

typedef struct table_column {
    const char *title;
    table_align align;
} table_column;

typedef struct table table;

/* A table with these columns (copied). NULL when out of memory. */
table *table_create(const table_column *columns, int count);
void table_destroy(table *table);

/* Starts a row; the following cells fill it from the left. */
void table_row(table *table);
void table_cell(table *table, const char *format, ...) CLI_PRINTF(2, 3);
/* A horizontal rule across the table. */
void table_rule(table *table);

/* Prints the title line, a rule and the rows, each line indented by
   `indent` spaces. Returns 0, or -1 when building the table ran out of
   memory (nothing is printed then). */
int table_print(const table *table, FILE *stream, int indent);

#endif /* RECTIFY_CLI_TABLE_H */
