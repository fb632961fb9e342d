/* pathway.c — dfc.pathway_product: the dense products behind the effective feedback of a
 * feedback pathway and its weight-product weights (plugins/dfc/lua/dfc/pathways.lua, docs/dfc.md
 * "Feedback pathways"): out = op(a) b, or out = op(a) without b, optionally added to out. */
#include <cblas.h>
#include <string.h>

#include "apical/error.h"
#include "dfc_internal.h"

static int k_pathway_product(const ap_kernel_args *args) {
    static const char *const K = "dfc.pathway_product";
    static const char *const known[] = {"a", "b", "out", "trans_a", "accumulate"};
    int rc = ap_args_check(args, K, known, 5);
    if (rc) return rc;
    const size_t any[2] = {0, 0};
    size_t sa[4] = {0}, sb[4] = {0}, so[4] = {0};
    double *a = NULL, *b = NULL, *out = NULL, trans = 0, acc = 0;
    if ((rc = ap_arg_array(args, K, "a", 1, 2, any, &a, sa))) return rc;
    if ((rc = ap_arg_array(args, K, "b", 0, 2, any, &b, sb))) return rc;
    if ((rc = ap_arg_array(args, K, "out", 1, 2, any, &out, so))) return rc;
    if ((rc = ap_arg_number(args, K, "trans_a", 0, &trans))) return rc;
    if ((rc = ap_arg_number(args, K, "accumulate", 0, &acc))) return rc;
    if ((trans != 0 && trans != 1) || (acc != 0 && acc != 1))
        return ap_error(AP_EINVAL, "kernel %s: trans_a = %g and accumulate = %g must be 0 or 1", K,
                        trans, acc);
    /* op(a) is rows x inner */
    const size_t rows = trans ? sa[1] : sa[0], inner = trans ? sa[0] : sa[1];
    const size_t cols = b ? sb[1] : inner;
    if (b && sb[0] != inner)
        return ap_error(AP_ESIZE, "kernel %s: b has shape [%zu, %zu], op(a) is [%zu, %zu]", K,
                        sb[0], sb[1], rows, inner);
    if (so[0] != rows || so[1] != cols)
        return ap_error(AP_ESIZE, "kernel %s: out has shape [%zu, %zu], expected [%zu, %zu]", K,
                        so[0], so[1], rows, cols);
    if (rows == 0 || cols == 0) return AP_OK;
    if (rows > (size_t)1 << 30 || cols > (size_t)1 << 30 || inner > (size_t)1 << 30)
        return ap_error(AP_ESIZE, "kernel %s: arrays too large", K);
    if (!b) {
        /* out (+)= op(a) */
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) {
                const double v = trans ? a[j * sa[1] + i] : a[i * sa[1] + j];
                out[i * cols + j] = acc ? out[i * cols + j] + v : v;
            }
        return AP_OK;
    }
    if (inner == 0) {
        if (!acc) memset(out, 0, rows * cols * sizeof *out);
        return AP_OK;
    }
    cblas_dgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)rows,
                (int)cols, (int)inner, 1.0, a, (int)sa[1], b, (int)cols, acc ? 1.0 : 0.0, out,
                (int)cols);
    return AP_OK;
}

static const ap_kernel pathway_kernel = {
    AP_ABI_VERSION,
    sizeof(ap_kernel),
    "dfc.pathway_product",
    "out = op(a) b (+ out with accumulate = 1), op(a) = a or a^T (trans_a = 1); without b, out = "
    "op(a): the products of a feedback pathway's effective feedback and weight-product weights",
    "a[r,k] (or [k,r] with trans_a), b[k,c] (optional), out[r,c] (written), trans_a (0), "
    "accumulate (0)",
    k_pathway_product,
};

int dfc_register_kernel_pathway(ap_registry *r) {
    return ap_registry_add_kernel(r, &pathway_kernel, "dfc");
}
