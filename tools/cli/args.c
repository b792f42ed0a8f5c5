/*
 * args.c: option parsing against a command's table, strict number parsing,
 * error messages and --help text.
 *
 * Not getopt: it is not in C11, and GNU getopt's argument permutation (which
 * lets options follow positional arguments) is not portable either.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int option_count(const cli_command *command)
{
    int count = 0;
    while (command->options[count].long_name != NULL)
        count++;
    return count;
}

static int find_long(const cli_command *command, const char *name, size_t length)
{
    for (int i = 0; command->options[i].long_name != NULL; i++) {
        const char *candidate = command->options[i].long_name;
        if (strlen(candidate) == length && strncmp(candidate, name, length) == 0)
            return i;
    }
    return -1;
}

static int find_short(const cli_command *command, char name)
{
    for (int i = 0; command->options[i].long_name != NULL; i++)
        if (name != 0 && command->options[i].short_name == name)
            return i;
    return -1;
}

/* Reads one option at argv[*next] ("--name", "--name=value", "-x"), taking
   its value from the following argument when it needs one. Returns 0 or
   prints a usage error and returns -1. */
static int take_option(const cli_command *command, int argc, char **argv, int *next,
                       cli_args *args)
{
    const char *arg = argv[*next];
    const char *inline_value = NULL;
    int index;

    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        index = find_long(command, name, length);
        if (index < 0) {
            cli_usage_error(command, "unknown option '--%.*s'", (int)length, name);
            return -1;
        }
        if (equals != NULL)
            inline_value = equals + 1;
    } else {
        index = arg[2] == '\0' ? find_short(command, arg[1]) : -1;
        if (index < 0) {
            cli_usage_error(command, "unknown option '%s'", arg);
            return -1;
        }
    }

    const cli_option *option = &command->options[index];
    if (option->arg_name == NULL) {
        if (inline_value != NULL) {
            cli_usage_error(command, "option '--%s' takes no value", option->long_name);
            return -1;
        }
        args->values[index] = "";
    } else if (inline_value != NULL) {
        args->values[index] = inline_value;
    } else if (*next + 1 < argc) {
        /* The next argument is the value even when it starts with '-', so
           that "--bias -0.5" works. */
        *next += 1;
        args->values[index] = argv[*next];
    } else {
        cli_usage_error(command, "option '%s' needs a value (%s)", arg, option->arg_name);
        return -1;
    }
    *next += 1;
    return 0;
}

static int is_option(const char *arg)
{
    /* "-" alone is a positional argument by convention (standard input). */
    return arg[0] == '-' && arg[1] != '\0';
}

cli_parse_result cli_parse(const cli_command *command, int argc, char **argv,
                           cli_args *args)
{
    memset(args, 0, sizeof *args);
    args->command = command;
    if (option_count(command) > CLI_MAX_OPTIONS) {
        cli_error("internal error: command '%s' has too many options", command->name);
        return CLI_USAGE_ERROR;
    }

    args->positional = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *args->positional);
    if (args->positional == NULL)
        return CLI_NO_MEMORY;

    int options_ended = 0;
    int next = 1;
    while (next < argc) {
        char *arg = argv[next];
        if (!options_ended && strcmp(arg, "--") == 0) {
            options_ended = 1;
            next++;
        } else if (!options_ended && is_option(arg)) {
            if (take_option(command, argc, argv, &next, args) != 0) {
                cli_args_free(args);
                return CLI_USAGE_ERROR;
            }
        } else {
            args->positional[args->positional_count++] = arg;
            next++;
        }
    }
    /* --help wins over everything else on the line, as in most tools. */
    if (cli_flag(args, "help"))
        return CLI_HELP;
    return CLI_PARSED;
}

void cli_args_free(cli_args *args)
{
    free(args->positional);
    args->positional = NULL;
    args->positional_count = 0;
}

const char *cli_value(const cli_args *args, const char *long_name)
{
    int index = find_long(args->command, long_name, strlen(long_name));
    return index < 0 ? NULL : args->values[index];
}

int cli_flag(const cli_args *args, const char *long_name)
{
    return cli_value(args, long_name) != NULL;
}

int parse_long(const char *text, long min, long max, long *value)
{
    /* strtol skips leading blanks; a number given as " 5" is still refused. */
    if (text[0] == '\0' || text[0] == ' ' || (text[0] >= '\t' && text[0] <= '\r'))
        return -1;
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || parsed < min || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

int parse_u64(const char *text, uint64_t *value)
{
    /* strtoull accepts "-1" and wraps it around; only digits are a seed. */
    if (text[0] < '0' || text[0] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
#if ULLONG_MAX > UINT64_MAX
    if (parsed > UINT64_MAX)
        return -1;
#endif
    *value = (uint64_t)parsed;
    return 0;
}

int parse_double(const char *text, double *value)
{
    if (text[0] == '\0' || text[0] == ' ' || (text[0] >= '\t' && text[0] <= '\r'))
        return -1;
    char *end;
    errno = 0;
    double parsed = strtod(text, &end);
    /* ERANGE also flags harmless underflow to a tiny number; accept that but
       not overflow to infinity, which isfinite catches. */
    if (*end != '\0' || !isfinite(parsed))
        return -1;
    *value = parsed;
    return 0;
}

int cli_long_option(const cli_args *args, const char *long_name, long fallback,
                    long min, long max, long *value)
{
    const char *text = cli_value(args, long_name);
    if (text == NULL) {
        *value = fallback;
        return 0;
    }
    if (parse_long(text, min, max, value) != 0)
        return cli_usage_error(args->command,
                               "invalid value '%s' for --%s: expected an integer from %ld to %ld",
                               text, long_name, min, max);
    return 0;
}

int cli_usage_error(const cli_command *command, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fputs("rectify: ", stderr);
    vfprintf(stderr, format, ap);
    va_end(ap);
    if (command != NULL)
        fprintf(stderr, "\nTry 'rectify %s --help'.\n", command->name);
    else
        fputs("\nTry 'rectify --help'.\n", stderr);
    return EXIT_USAGE;
}

int cli_error(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fputs("rectify: ", stderr);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_RUNTIME;
}

/* "-h, --help", "    --top K": the left column of the option list. */
static void format_option(const cli_option *option, char *buffer, size_t size)
{
    char short_part[8] = "    ";
    if (option->short_name != 0)
        snprintf(short_part, sizeof short_part, "-%c, ", option->short_name);
    snprintf(buffer, size, "%s--%s%s%s", short_part, option->long_name,
             option->arg_name != NULL ? " " : "",
             option->arg_name != NULL ? option->arg_name : "");
}

void cli_print_help(const cli_command *command, FILE *stream)
{
    fprintf(stream, "Usage: rectify %s %s\n\n%s\n", command->name, command->synopsis,
            command->summary);
    if (command->details != NULL)
        fprintf(stream, "\n%s\n", command->details);

    char left[64];
    size_t width = 0;
    for (int i = 0; command->options[i].long_name != NULL; i++) {
        format_option(&command->options[i], left, sizeof left);
        if (strlen(left) > width)
            width = strlen(left);
    }
    fputs("\nOptions:\n", stream);
    for (int i = 0; command->options[i].long_name != NULL; i++) {
        format_option(&command->options[i], left, sizeof left);
        fprintf(stream, "  %-*s  %s\n", (int)width, left, command->options[i].help);
    }
}
