/*
 * main.c: the `rectify` command-line tool: finds the command, parses its
 * arguments, handles the options every command shares, and runs it.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rectify.h"

/* More threads than this is a typing error, not a machine. */
#define MAX_THREADS 4096

static const cli_command *const commands[] = {&cmd_run, &cmd_sparsity, &cmd_summary, &cmd_init,
                                              &cmd_activations, &cmd_bench, &cmd_pack};
#define COMMAND_COUNT ((int)(sizeof commands / sizeof commands[0]))

static const cli_command *find_command(const char *name)
{
    for (int i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static void print_main_help(FILE *stream)
{
    fprintf(stream,
            "rectify %s: run small convolutional networks and see how sparse\n"
            "every layer's output is.\n"
            "\n"
            "Usage: rectify COMMAND [options] [arguments]\n"
            "\n"
            "Commands:\n",
            rectify_version());
    for (int i = 0; i < COMMAND_COUNT; i++)
        fprintf(stream, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(stream, "  %-9s %s\n", "help", "Show the help of a command.");
    fputs("\n"
          "Options:\n"
          "  -h, --help  show this help and exit\n"
          "  --version   show the version and exit\n"
          "\n"
          "Every command takes --json, --threads N and --help. MODEL is a model\n"
          "folder or the path of its model.json. Run 'rectify help COMMAND' for the\n"
          "options of a command.\n"
          "\n"
          "Exit status: 0 success, 1 a model, image or file failed, 2 a usage error.\n",
          stream);
}

static void print_version(void)
{
    const char *version = rectify_version();
    if (strcmp(version, RECTIFY_VERSION_STRING) == 0)
        printf("rectify %s\n", version);
    else
        printf("rectify %s (built with the header of %s)\n", version, RECTIFY_VERSION_STRING);
}

/* `rectify help [COMMAND]` */
static int help_command(int argc, char **argv)
{
    if (argc < 3) {
        print_main_help(stdout);
        return 0;
    }
    if (argc > 3)
        return cli_usage_error(NULL, "help takes one command name, got %d", argc - 2);
    const cli_command *command = find_command(argv[2]);
    if (command == NULL)
        return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
    cli_print_help(command, stdout);
    return 0;
}

int cli_allow_nonfinite;

/* --json, --threads, --allow-nonfinite and the number of positional arguments. */
static int check_common(const cli_command *command, cli_args *args)
{
    args->json = cli_flag(args, "json");
    cli_allow_nonfinite = cli_flag(args, "allow-nonfinite");
    long threads;
    int status = cli_long_option(args, "threads", 0, 1, MAX_THREADS, &threads);
    if (status != 0)
        return status;
    args->threads = (int)threads;

    if (args->positional_count < command->min_positional)
        return cli_usage_error(command, "missing arguments: rectify %s %s", command->name,
                               command->synopsis);
    if (command->max_positional >= 0 && args->positional_count > command->max_positional)
        return cli_usage_error(command, "unexpected argument '%s'",
                               args->positional[command->max_positional]);
    return 0;
}

static int run_command(const cli_command *command, int argc, char **argv)
{
    cli_args args;
    switch (cli_parse(command, argc, argv, &args)) {
    case CLI_USAGE_ERROR:
        return EXIT_USAGE;
    case CLI_NO_MEMORY:
        return cli_error("out of memory");
    case CLI_HELP:
        cli_print_help(command, stdout);
        cli_args_free(&args);
        return 0;
    case CLI_PARSED:
        break;
    }
    int status = check_common(command, &args);
    if (status == 0)
        status = command->handler(&args);
    cli_args_free(&args);
    return status;
}

/* Output goes through stdio buffers; a full disk or a closed pipe shows up
   only when they are flushed, and must not pass for success. */
static int finish_output(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return status != 0 ? status : EXIT_RUNTIME;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_main_help(stdout);
        return finish_output(0);
    }
    if (strcmp(name, "--version") == 0) {
        print_version();
        return finish_output(0);
    }
    if (strcmp(name, "help") == 0)
        return finish_output(help_command(argc, argv));

    const cli_command *command = find_command(name);
    if (command == NULL) {
        if (name[0] == '-')
            return cli_usage_error(NULL, "unknown option '%s'; options follow the command", name);
        return cli_usage_error(NULL, "unknown command '%s'", name);
    }
    return finish_output(run_command(command, argc - 1, argv + 1));
}
