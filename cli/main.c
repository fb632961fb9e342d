/* main.c — the apical program: dispatches `apical run | plugins | version | help`. */
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "apical/comm.h"
#include "apical/error.h"
#include "apical/registry.h"
#include "apical/sim.h"
#include "cli.h"

#ifndef APICAL_VERSION
#define APICAL_VERSION "unknown"
#endif

void cli_usage(int to_stderr) {
    FILE *out = to_stderr ? stderr : stdout;
    fputs("usage: apical <command> [arguments]\n"
          "\n"
          "commands:\n"
          "  run SCRIPT.lua [--set key=value ...] [--traceback] [--sandbox] [--] [args ...]\n"
          "                 run a Lua script (models, simulations, training); --set overrides\n"
          "                 a parameter the script declares with apical.params { ... };\n"
          "                 --traceback adds the Lua stack to error messages; the script sees\n"
          "                 the remaining arguments in `arg` and `...`; --sandbox runs a model\n"
          "                 one did not write: no processes, no libraries, files only in its\n"
          "                 directory, ./runs and the data directory (docs/model-files.md)\n"
          "  plugins        list the plugins in the search path (APICAL_PLUGIN_PATH, the build\n"
          "                 tree, the install prefix) and the types each registers\n"
          "  plot RUN_DIR [RUN_DIR ...] [--out DIR]\n"
          "                 draw the standard pictures of finished training runs (PNG, with\n"
          "                 gnuplot): loss and error curves; several runs on one plot\n"
          "  version        print the versions of apical, its plugin ABI and Lua\n"
          "  help           print this text; `apical COMMAND --help` prints a command's own\n"
          "                 help\n"
          "\n"
          "exit status: 0 success, 1 error, 2 usage error\n",
          out);
}

static int cli_version(void) {
    printf("apical %s (plugin ABI %u.%u, %s, OpenBLAS kernels %s)\n", APICAL_VERSION,
           (unsigned)AP_ABI_MAJOR, (unsigned)AP_ABI_MINOR, LUA_RELEASE, ap_blas_core());
    return CLI_OK;
}

static int dispatch(int argc, char **argv);

/* Under an MPI launcher every rank runs the same command; ranks other than 0 keep their
 * standard error but not their standard output (docs/scaling.md). A failing rank aborts the
 * others (ap_comm_finish). */
int main(int argc, char **argv) {
    if (ap_comm_init() != 0) {
        fprintf(stderr, "apical: %s\n", ap_last_error());
        return CLI_FAIL;
    }
    if (ap_comm_rank() > 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "apical: rank %d: cannot discard standard output\n", ap_comm_rank() + 1);
        return ap_comm_finish(CLI_FAIL);
    }
    return ap_comm_finish(dispatch(argc, argv));
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) {
        cli_usage(1);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (cli_help(cmd, argc > 2 ? argv[2] : NULL) == CLI_OK) return CLI_OK;
    if (strcmp(cmd, "run") == 0) return cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "plugins") == 0) return cli_plugins(argc - 1, argv + 1);
    if (strcmp(cmd, "plot") == 0)
        return cli_module("apical plot", "apical.plot", argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2) {
            fprintf(stderr, "apical: version takes no arguments\n");
            return CLI_USAGE;
        }
        return cli_version();
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        cli_usage(0);
        return CLI_OK;
    }
    fprintf(stderr, "apical: unknown command \"%s\"\n\n", cmd);
    cli_usage(1);
    return CLI_USAGE;
}
