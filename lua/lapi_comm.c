/* lapi_comm.c — the processes of a data-parallel run (apical/comm.h) for the Lua half:
 * core.comm_rank(), core.comm_size(), core.comm_has_mpi(), core.comm_sum(array) (in place, the
 * sum over ranks in rank order), core.comm_sum_grad(optim) (every gradient buffer likewise). */
#include "apical/comm.h"
#include "lapi.h"

static int l_comm_rank(lua_State *L) {
    lua_pushinteger(L, ap_comm_rank());
    return 1;
}

static int l_comm_size(lua_State *L) {
    lua_pushinteger(L, ap_comm_size());
    return 1;
}

static int l_comm_has_mpi(lua_State *L) {
    lua_pushboolean(L, ap_comm_has_mpi());
    return 1;
}

/* core.comm_sum(a) -> a, its values replaced by their sum over the ranks */
static int l_comm_sum(lua_State *L) {
    lapi_array *a = lapi_array_check(L, 1);
    int rc = ap_comm_sum(a->data, a->size);
    if (rc) return lapi_fail(L, rc);
    lua_settop(L, 1);
    return 1;
}

/* core.comm_sum_grad(o) -> true, the optimiser's gradients summed over the ranks */
static int l_comm_sum_grad(lua_State *L) {
    int rc = ap_comm_sum_grad(lapi_optim_check(L, 1));
    if (rc) return lapi_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

int lapi_open_comm(lua_State *L) {
    static const luaL_Reg fns[] = {{"comm_rank", l_comm_rank},         {"comm_size", l_comm_size},
                                   {"comm_has_mpi", l_comm_has_mpi},   {"comm_sum", l_comm_sum},
                                   {"comm_sum_grad", l_comm_sum_grad}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    return 0;
}
