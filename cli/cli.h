/* cli.h — the subcommands of the apical program (cli/main.c dispatches to them). Each returns
 * the process's exit status: 0 success, 1 failure, 2 usage error. */
#ifndef APICAL_CLI_H
#define APICAL_CLI_H

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* Prints the usage text to stdout (to_stderr == 0) or stderr. */
void cli_usage(int to_stderr);

/* apical run SCRIPT.lua [--set key=value ...] [--traceback] [--] [script arguments] */
int cli_run(int argc, char **argv);

/* A command written in Lua: runs require(module).main(argv[1..argc-1]) in a Lua state set up
 * as for `run` (name is arg[0] and the name in messages). */
int cli_module(const char *name, const char *module, int argc, char **argv);

/* `apical CMD --help` (arg is argv[2], or NULL): prints CMD's help and returns 0; -1 when arg
 * is not --help or -h, or CMD has no help. */
int cli_help(const char *cmd, const char *arg);

/* apical plugins */
int cli_plugins(int argc, char **argv);

#endif
