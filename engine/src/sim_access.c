/* sim_access.c — the public accessors of a compiled simulation (apical/sim.h): its model and
 * state, the right-hand side outside a run, inputs, reading signals, writing state, and the
 * names of state variables in messages. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "sim_impl.h"

ap_model *ap_sim_model(const ap_sim *s) {
    return s->plan.m;
}

size_t ap_sim_state_size(const ap_sim *s) {
    return s->plan.n_state;
}

int ap_sim_get_state(const ap_sim *s, double *y) {
    memcpy(y, s->run.x, s->plan.n_state * sizeof *y);
    return AP_OK;
}

int ap_sim_rhs(ap_sim *s, double t, const double *y, double *ydot) {
    /* outside a run the weights may have changed: products of inputs are recomputed */
    s->run.input_cache_valid = 0;
    int rc = apx_sim_eval(s, t, y, ydot);
    if (rc > 0 && s->diag.bad_index == APX_BAD_COMPONENT)
        return ap_error_prefix(AP_ENONFINITE, "at t = %g: ", t);
    if (rc > 0) {
        char nm[256];
        apx_sim_describe(s, (size_t)s->diag.bad_index, nm, sizeof nm);
        return ap_error(AP_ENONFINITE, "non-finite derivative: %s = %g at t = %g", nm,
                        s->diag.bad_value, t);
    }
    return rc;
}

int ap_sim_set_input(ap_sim *s, const char *name, const double *data, size_t count) {
    apx_sigref r;
    int rc = apx_model_resolve(s->plan.m, name, &r);
    if (rc) return rc;
    if (r.kind != APX_SIG_INPUT) return ap_error(AP_EINVAL, "\"%s\" is not an input", name);
    size_t need = (size_t)s->plan.B * (size_t)r.size;
    if (count != need)
        return ap_error(AP_ESIZE, "input %s: got %zu values, expected batch %d x %d = %zu", name,
                        count, s->plan.B, r.size, need);
    for (size_t k = 0; k < count; k++)
        if (!isfinite(data[k]))
            return ap_error(AP_ENONFINITE, "input %s: value [sample %zu, unit %zu] = %g", name,
                            k / (size_t)r.size + 1, k % (size_t)r.size + 1, data[k]);
    memcpy(s->run.input[r.obj], data, count * sizeof *data);
    s->run.input_cache_valid = 0;
    return AP_OK;
}

int ap_sim_read(ap_sim *s, const char *signal, double *dst, size_t count) {
    apx_sigref r;
    int rc = apx_model_resolve(s->plan.m, signal, &r);
    if (rc) return rc;
    size_t need = (size_t)s->plan.B * (size_t)r.size;
    if (count != need)
        return ap_error(AP_ESIZE, "read %s: room for %zu values, it has batch %d x %d = %zu",
                        signal, count, s->plan.B, r.size, need);
    memcpy(dst, apx_sim_signal_ptr(s, &r), need * sizeof *dst);
    return AP_OK;
}

int ap_sim_write_state(ap_sim *s, const char *signal, const double *src, size_t count) {
    apx_sigref r;
    int rc = apx_model_resolve(s->plan.m, signal, &r);
    if (rc) return rc;
    int dyn = r.kind == APX_SIG_BLOCK_STATE ||
              (r.kind == APX_SIG_COMPARTMENT && s->plan.pops[r.obj].comp[r.port].dynamic);
    if (!dyn) return ap_error(AP_EINVAL, "\"%s\" is not a dynamic variable", signal);
    size_t need = (size_t)s->plan.B * (size_t)r.size;
    if (count != need)
        return ap_error(AP_ESIZE, "write %s: got %zu values, expected batch %d x %d = %zu", signal,
                        count, s->plan.B, r.size, need);
    memcpy((double *)apx_sim_signal_ptr(s, &r), src, need * sizeof *src);
    s->run.eval_valid = 0;
    return AP_OK;
}

void apx_sim_describe(const ap_sim *s, size_t i, char *buf, size_t n) {
    for (int p = 0; p < s->plan.n_pops; p++)
        for (int c = 0; c < s->plan.pops[p].n_comp; c++) {
            const sim_comp *sc = &s->plan.pops[p].comp[c];
            size_t len = (size_t)s->plan.B * (size_t)s->plan.pops[p].n;
            if (sc->dynamic && i >= sc->off && i < sc->off + len) {
                snprintf(buf, n, "%s.%s[sample %zu, unit %zu]", s->plan.pops[p].obj->name,
                         s->plan.pops[p].obj->type->compartments[c].name,
                         (i - sc->off) / (size_t)s->plan.pops[p].n + 1,
                         (i - sc->off) % (size_t)s->plan.pops[p].n + 1);
                return;
            }
        }
    for (int b = 0; b < s->plan.n_blocks; b++)
        for (int k = 0; k < s->plan.blocks[b].n_state; k++) {
            const sim_block *sb = &s->plan.blocks[b];
            size_t w = (size_t)sb->state_size[k];
            size_t len = (size_t)s->plan.B * w;
            if (i >= sb->state_off[k] && i < sb->state_off[k] + len) {
                snprintf(buf, n, "%s.%s[sample %zu, unit %zu]", sb->obj->name,
                         sb->obj->type->states[k], (i - sb->state_off[k]) / w + 1,
                         (i - sb->state_off[k]) % w + 1);
                return;
            }
        }
    snprintf(buf, n, "state[%zu]", i + 1);
}
