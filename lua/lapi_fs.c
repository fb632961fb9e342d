/* lapi_fs.c — core.fs: what the run directories of the trainers need of the file system
 * (apical/dirutil.h, apical/fileio.h): CRC-32 of a file, durable atomic writes, directory
 * fsync, mkdir, rm -r, the run directory's lock, and the kill hook of the crash tests. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "apical/dirutil.h"
#include "apical/error.h"
#include "apical/fileio.h"
#include "lapi.h"

#define LAPI_DIRLOCK "apical.DirLock"

/* fs.crc32(path) -> crc, size | nil, message */
static int l_crc32(lua_State *L) {
    uint32_t crc;
    uint64_t size;
    int rc = ap_file_crc32(luaL_checkstring(L, 1), &crc, &size);
    if (rc != AP_OK) return lapi_fail(L, rc);
    lua_pushinteger(L, (lua_Integer)crc);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

/* fs.write(path, text) -> true | nil, message: atomically and durably (fsync of the file and
 * its directory). */
static int l_write(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    ap_atomic_file f;
    int rc = ap_atomic_open(&f, path);
    if (rc != AP_OK) return lapi_fail(L, rc);
    /* a short write sets the stream's error, which commit reports (removing the temporary) */
    if (n) (void)fwrite(text, 1, n, f.fp);
    rc = ap_atomic_commit(&f);
    if (rc != AP_OK) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_sync_dir(lua_State *L) {
    int rc = ap_sync_dir(luaL_checkstring(L, 1));
    if (rc != AP_OK) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* fs.mkdir(path, parents) -> true | false, "exists" (parents false, the name is taken) |
 * nil, message */
static int l_mkdir(lua_State *L) {
    int rc = ap_make_dir(luaL_checkstring(L, 1), lua_toboolean(L, 2));
    if (rc == AP_EDUP) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "exists");
        return 2;
    }
    if (rc != AP_OK) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.mkdir(path): the directory and its missing parents (as `mkdir -p`, without a shell);
 * an existing directory is fine; raises on failure (apical.mkdir). */
int lapi_mkdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    if (*path == '\0') return luaL_error(L, "mkdir: empty path");
    int rc = ap_make_dir(path, 1);
    if (rc != AP_OK) return luaL_error(L, "mkdir %s: %s", path, ap_last_error());
    return 0;
}

static int l_remove_tree(lua_State *L) {
    int rc = ap_remove_tree(luaL_checkstring(L, 1));
    if (rc != AP_OK) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* fs.lock(dir) -> a lock (held until lock:release() or its collection) | nil, message, pid */
static int l_lock(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    ap_dir_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
    lk->fd = -1;
    lk->held = 0;
    long holder = 0;
    int rc = ap_dir_lock_acquire(lk, dir, &holder);
    if (rc != AP_OK) {
        lapi_fail(L, rc);
        lua_pushinteger(L, holder);
        return 3;
    }
    luaL_setmetatable(L, LAPI_DIRLOCK);
    return 1;
}

static int l_lock_release(lua_State *L) {
    ap_dir_lock_release(luaL_checkudata(L, 1, LAPI_DIRLOCK));
    return 0;
}

/* The open directory of fs.list, owned by a userdata so that a raise (out of memory) while
 * names are pushed cannot leak it. */
typedef struct dir_guard {
    DIR *d;
} dir_guard;

static int dir_guard_gc(lua_State *L) {
    dir_guard *g = lua_touserdata(L, 1);
    if (g && g->d) closedir(g->d);
    if (g) g->d = NULL;
    return 0;
}

/* fs.list(dir) -> the names in directory dir (no "." and ".."), sorted | nil, message */
static int l_list(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    dir_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->d = NULL;
    lua_newtable(L); /* the guard's metatable */
    lua_pushcfunction(L, dir_guard_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    g->d = opendir(dir);
    if (!g->d) return lapi_failf(L, "directory %s: cannot open: %s", dir, strerror(errno));
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(g->d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(g->d);
    g->d = NULL;
    lua_pushvalue(L, -1);
    lua_insert(L, -3); /* names, sort, names */
    lua_call(L, 1, 0);
    return 1;
}

static int l_getpid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* fs.kill_self(): SIGKILL to this process, for the crash tests' kill points (no cleanup runs,
 * as when the machine or the operator kills a run). */
static int l_kill_self(lua_State *L) {
    (void)L;
    fflush(NULL);
    raise(SIGKILL);
    return 0;
}

int lapi_open_fs(lua_State *L) {
    static const luaL_Reg lock_methods[] = {{"release", l_lock_release}, {NULL, NULL}};
    static const luaL_Reg lock_meta[] = {
        {"__gc", l_lock_release}, {"__close", l_lock_release}, {NULL, NULL}};
    lapi_newclass(L, LAPI_DIRLOCK, lock_methods, lock_meta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"crc32", l_crc32},
                                   {"write", l_write},
                                   {"sync_dir", l_sync_dir},
                                   {"mkdir", l_mkdir},
                                   {"remove_tree", l_remove_tree},
                                   {"lock", l_lock},
                                   {"list", l_list},
                                   {"getpid", l_getpid},
                                   {"kill_self", l_kill_self},
                                   {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    lua_setfield(L, -2, "fs");
    return 0;
}
