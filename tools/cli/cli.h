/*
 * cli.h: what the commands of the `rectify` tool share: the description of a
 * command and its options, the parsed arguments, exit codes, and the strict
 * number parsing every option value goes through.
 *
 * A command is a constant table entry (cli_command) with its options and a
 * handler; main.c parses the arguments against that table, handles --help,
 * --json and --threads, and calls the handler with the result. The handler
 * returns the process exit status.
 */
#ifndef RECTIFY_CLI_H
#define RECTIFY_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Exit statuses: 0 success, 1 a runtime failure (a model or an image that
   cannot be loaded, a file that cannot be written), 2 a usage error. */
enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Lets the compiler check printf-style arguments where it can. */
#if defined(__GNUC__)
#  define CLI_PRINTF(format_index, first_arg) \
       __attribute__((format(printf, format_index, first_arg)))
#else
#  define CLI_PRINTF(format_index, first_arg)
#endif

/* The most options one command has, common ones included. */
#define CLI_MAX_OPTIONS 16

typedef struct cli_option {
    const char *long_name; /* without the leading "--"; NULL ends a table */
    char short_name;       /* 'h' for -h; 0 when there is none */
    const char *arg_name;  /* "N", "FILE"...; NULL for a flag */
    const char *help;      /* one line for --help */
} cli_option;

/* The options every command accepts; main.c interprets them. */
#define CLI_COMMON_OPTIONS                                                    \
    {"json", 0, NULL, "print one JSON document on stdout instead of tables"}, \
    {"threads", 0, "N", "use N threads (N >= 1; default: all cores)"},        \
    {"help", 'h', NULL, "show this help and exit"}

struct cli_command;

typedef struct cli_args {
    const struct cli_command *command;
    /* Per entry of command->options: the value given, "" for a flag that was
       given, NULL for an option that was not. The last occurrence wins. */
    const char *values[CLI_MAX_OPTIONS];
    char **positional;     /* arguments that are not options, in order */
    int positional_count;
    int json;              /* --json */
    int threads;           /* --threads; 0 when not given */
} cli_args;

typedef int (*cli_handler)(const cli_args *args);

typedef struct cli_command {
    const char *name;
    const char *synopsis;       /* what follows "rectify NAME" in usage */
    const char *summary;        /* one line for `rectify --help` */
    const char *details;        /* paragraph(s) for `rectify NAME --help` */
    const cli_option *options;  /* ends with an entry whose long_name is NULL */
    int min_positional;
    int max_positional;         /* -1: no limit */
    cli_handler handler;
} cli_command;

extern const cli_command cmd_run;
extern const cli_command cmd_sparsity;
extern const cli_command cmd_summary;
extern const cli_command cmd_init;
extern const cli_command cmd_activations;
extern const cli_command cmd_bench;
extern const cli_command cmd_pack;

/* --allow-nonfinite, on the commands that load weights: load_model (runner.c)
   then accepts weight tensors holding NaN or infinity. Set by main.c. */
extern int cli_allow_nonfinite;

/* ---- args.c ---- */

typedef enum cli_parse_result {
    CLI_PARSED,      /* run the command */
    CLI_HELP,        /* --help was given: print the command's help */
    CLI_USAGE_ERROR, /* a message is already on stderr */
    CLI_NO_MEMORY,
} cli_parse_result;

/* Parses argv[1..argc) (argv[0] is the command name) against the command's
   options. Options and positional arguments may come in any order; "--" ends
   the options. On CLI_PARSED and CLI_HELP, free args with cli_args_free. */
cli_parse_result cli_parse(const cli_command *command, int argc, char **argv,
                           cli_args *args);
void cli_args_free(cli_args *args);

/* The value of option `long_name` (NULL when not given); whether a flag was
   given. `long_name` must be one of the command's options. */
const char *cli_value(const cli_args *args, const char *long_name);
int cli_flag(const cli_args *args, const char *long_name);

/* Strict conversions: the whole text must be the number, with no blanks,
   within [min, max] (finite for doubles). Return 0 on success. */
int parse_long(const char *text, long min, long max, long *value);
int parse_u64(const char *text, uint64_t *value);
int parse_double(const char *text, double *value);

/* An integer option in [min, max], `fallback` when absent. Returns 0, or
   prints a usage error and returns EXIT_USAGE. */
int cli_long_option(const cli_args *args, const char *long_name, long fallback,
                    long min, long max, long *value);

/* Prints "rectify: <message>" and a hint to --help on stderr; returns
   EXIT_USAGE. */
int cli_usage_error(const cli_command *command, const char *format, ...)
    CLI_PRINTF(2, 3);

/* Prints "rectify: <message>" on stderr; returns EXIT_RUNTIME. */
int cli_error(const char *format, ...) CLI_PRINTF(1, 2);

/* Prints the command's usage, description and options. */
void cli_print_help(const cli_command *command, FILE *stream);

#endif /* RECTIFY_CLI_H */
