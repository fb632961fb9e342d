/* help.c — `apical COMMAND --help` (or -h): each subcommand's own help on stdout. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name, *text;
} helps[] = {
    {"run", "usage: apical run SCRIPT.lua [--set key=value ...] [--traceback] [--] [args ...]\n"
            "\n"
            "Runs a Lua script (models, simulations, training).\n"
            "  --set key=value  overrides a parameter the script declares with\n"
            "                   apical.params { ... } (converted to the default's type; a key no\n"
            "                   parameter declares is a usage error when the script ends)\n"
            "  --traceback      adds the Lua stack to error messages\n"
            "  --               ends apical's options; the script sees the remaining arguments\n"
            "                   in `arg` and `...`\n"
            "exit status: 0 success, 1 error, 2 usage error\n"},
    {"plugins", "usage: apical plugins\n"
                "\n"
                "Lists the plugins in the search path (APICAL_PLUGIN_PATH, the build tree, the\n"
                "install prefix) and the types each registers.\n"},
    {"plot", "usage: apical plot RUN_DIR [RUN_DIR ...] [--out DIR]\n"
             "\n"
             "Draws the standard pictures of finished training runs (PNG, with gnuplot): loss\n"
             "and error curves, several runs on one plot.\n"
             "A run's pictures go into its run directory.\n"
             "  --out DIR  where the comparison pictures of several runs go (default: the\n"
             "             current directory)\n"},
    {"version", "usage: apical version\n"
                "\n"
                "Prints the versions of apical, its plugin ABI and Lua.\n"},
    {"help", "usage: apical help\n"
             "\n"
             "Prints the list of commands; `apical COMMAND --help` prints one command's help.\n"},
};

int cli_help(const char *cmd, const char *arg) {
    if (!arg || (strcmp(arg, "--help") != 0 && strcmp(arg, "-h") != 0)) return -1;
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (strcmp(cmd, helps[i].name) == 0) {
            fputs(helps[i].text, stdout);
            return CLI_OK;
        }
    return -1;
}
