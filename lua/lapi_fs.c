/* lapi_fs.c — apical.mkdir(path): a directory and its missing parents (as `mkdir -p`), made
 * with mkdir(2) so that a model needs no shell (os.execute) for its output directory. */
#include <errno.h>
#include <lauxlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lapi.h"

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Makes buf (a writable copy of the path) and its parents; 0, or errno. */
static int make_dirs(char *buf) {
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return errno;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0) {
        if (errno == EEXIST && is_dir(buf)) return 0;
        return errno == EEXIST ? ENOTDIR : errno;
    }
    return 0;
}

int lapi_mkdir(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (len == 0) return luaL_error(L, "mkdir: empty path");
    if (strlen(path) != len) return luaL_error(L, "mkdir: the path holds a zero byte");
    char *buf = lua_newuserdatauv(L, len + 1, 0);
    memcpy(buf, path, len + 1);
    int err = make_dirs(buf);
    if (err) return luaL_error(L, "mkdir %s: %s", path, strerror(err));
    lua_pop(L, 1);
    return 0;
}
