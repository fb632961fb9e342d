/* dataset.c — datasets (shared, reference-counted storage and cheap views), IDX loading,
 * splits, and the minibatch iterator with reproducible per-epoch shuffling. */
#include "apical/dataset.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/idx.h"

/* The arrays of a dataset, shared by all views of it. */
typedef struct ds_store {
    atomic_int refs;
    size_t n, d, k;
    double *X;   /* n x d */
    double *Y;   /* n x k */
    int *labels; /* n, or NULL */
} ds_store;

struct ap_dataset {
    ds_store *st;
    size_t start, n; /* the view: samples [start, start + n) of the store */
};

struct ap_batcher {
    ap_dataset *ds; /* own view, keeps the storage alive */
    int batch, shuffle, drop_last;
    uint64_t seed;
    size_t *order; /* n indices into ds */
    size_t pos;    /* next position in order */
    /* Built by hand from the public struct rather than with gsl_rng_alloc, whose allocation
     * failure goes through gsl_error and, with GSL's default handler, abort(). */
    gsl_rng rng;
};

/* ---- storage -------------------------------------------------------------------------- */

static void store_release(ds_store *st) {
    if (!st) return;
    if (atomic_fetch_sub(&st->refs, 1) != 1) return;
    free(st->X);
    free(st->Y);
    free(st->labels);
    free(st);
}

static ap_dataset *view_new(ds_store *st, size_t start, size_t n) {
    ap_dataset *v = malloc(sizeof *v);
    if (!v) return NULL;
    atomic_fetch_add(&st->refs, 1);
    v->st = st;
    v->start = start;
    v->n = n;
    return v;
}

/* A store with room for n samples (labels only if with_labels); arrays are never NULL. */
static int store_alloc(size_t n, size_t d, size_t k, int with_labels, ds_store **out) {
    *out = NULL;
    if (n > 0 && (d > SIZE_MAX / sizeof(double) / n || k > SIZE_MAX / sizeof(double) / n))
        return ap_error(AP_EINVAL, "dataset of %zu samples x (%zu + %zu) values is too large", n, d,
                        k);
    size_t m = n ? n : 1;
    ds_store *st = calloc(1, sizeof *st);
    if (!st) return ap_error(AP_ENOMEM, "out of memory for a dataset");
    atomic_init(&st->refs, 0);
    st->n = n;
    st->d = d;
    st->k = k;
    st->X = malloc(m * d * sizeof(double));
    st->Y = malloc(m * k * sizeof(double));
    st->labels = with_labels ? malloc(m * sizeof(int)) : NULL;
    if (!st->X || !st->Y || (with_labels && !st->labels)) {
        free(st->X);
        free(st->Y);
        free(st->labels);
        free(st);
        return ap_error(AP_ENOMEM, "out of memory for a dataset of %zu x %zu inputs", n, d);
    }
    *out = st;
    return AP_OK;
}

/* Wraps a fresh store (refs 0) in its first view; frees the store on failure. */
static int store_publish(ds_store *st, ap_dataset **out) {
    *out = view_new(st, 0, st->n);
    if (!*out) {
        atomic_fetch_add(&st->refs, 1);
        store_release(st);
        return ap_error(AP_ENOMEM, "out of memory for a dataset");
    }
    return AP_OK;
}

static void one_hot(const int *labels, size_t n, size_t k, double *Y) {
    memset(Y, 0, n * k * sizeof(double));
    for (size_t i = 0; i < n; i++)
        Y[i * k + (size_t)labels[i]] = 1.0;
}

/* ---- construction ------------------------------------------------------------------------- */

int ap_dataset_from_arrays(size_t n, size_t d, const double *X, size_t k, const double *Y,
                           const int *labels, ap_dataset **out) {
    if (!out) return ap_error(AP_EINVAL, "ap_dataset_from_arrays: out is NULL");
    *out = NULL;
    if (d == 0 || k == 0)
        return ap_error(AP_EINVAL, "dataset: input dim d = %zu and target dim k = %zu must be >= 1",
                        d, k);
    if (n > 0 && !X) return ap_error(AP_EINVAL, "dataset: X is NULL for %zu samples", n);
    if (n > 0 && !Y && !labels)
        return ap_error(AP_EINVAL, "dataset: neither targets Y nor labels given");
    for (size_t i = 0; labels && i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= k)
            return ap_error(AP_EINVAL, "dataset: label %d of sample %zu is outside 0..%zu",
                            labels[i], i + 1, k - 1);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            if (!isfinite(X[i * d + j]))
                return ap_error(AP_ENONFINITE, "dataset: X[%zu][%zu] = %g is not finite", i + 1,
                                j + 1, X[i * d + j]);
        for (size_t j = 0; Y && j < k; j++)
            if (!isfinite(Y[i * k + j]))
                return ap_error(AP_ENONFINITE, "dataset: Y[%zu][%zu] = %g is not finite", i + 1,
                                j + 1, Y[i * k + j]);
    }

    ds_store *st;
    int rc = store_alloc(n, d, k, labels != NULL, &st);
    if (rc != AP_OK) return rc;
    if (n > 0) {
        memcpy(st->X, X, n * d * sizeof(double));
        if (labels) memcpy(st->labels, labels, n * sizeof(int));
        if (Y)
            memcpy(st->Y, Y, n * k * sizeof(double));
        else
            one_hot(labels, n, k, st->Y);
    }
    return store_publish(st, out);
}

/* The labels file: one dimension, integer type, one label per image in 0..n_classes-1. */
static int check_idx_labels(const ap_idx *lab, const char *labels_path, size_t n,
                            const char *images_path, int n_classes) {
    if (lab->ndim != 1)
        return ap_error(AP_EFORMAT, "labels file %s: %d dimensions, expected 1", labels_path,
                        lab->ndim);
    if (lab->type == AP_IDX_F32 || lab->type == AP_IDX_F64)
        return ap_error(AP_EFORMAT, "labels file %s: element type %s, expected an integer type",
                        labels_path, ap_idx_type_name(lab->type));
    if (lab->count != n)
        return ap_error(AP_ESIZE,
                        "images file %s has %zu samples but labels file %s has %zu labels",
                        images_path, n, labels_path, lab->count);
    for (size_t i = 0; i < n; i++)
        if (lab->data[i] < 0 || lab->data[i] >= n_classes)
            return ap_error(AP_EFORMAT, "labels file %s: label %.0f of sample %zu is outside 0..%d",
                            labels_path, lab->data[i], i + 1, n_classes - 1);
    return AP_OK;
}

/* The images file: floating-point values must be finite (d values per sample). */
static int check_idx_images(const ap_idx *img, const char *images_path, size_t d) {
    if (img->type != AP_IDX_F32 && img->type != AP_IDX_F64) return AP_OK;
    for (size_t i = 0; i < img->count; i++)
        if (!isfinite(img->data[i]))
            return ap_error(AP_EFORMAT,
                            "images file %s: value %g of sample %zu, element %zu is "
                            "not finite",
                            images_path, img->data[i], i / d + 1, i % d + 1);
    return AP_OK;
}

/* The image array as the dataset's inputs, in place: u8 bytes scaled to [0, 1], then, with
 * z = { mean, std }, standardised as ap_dataset_standardize does (the same operations, so the
 * same bits, without a second array). */
static void scale_images(ap_idx *img, const double *z) {
    const int u8 = img->type == AP_IDX_U8;
    if (!u8 && !z) return;
    for (size_t i = 0; i < img->count; i++) {
        double x = u8 ? img->data[i] / 255.0 : img->data[i];
        img->data[i] = z ? (x - z[0]) / z[1] : x;
    }
}

/* The store built around the image array itself (MNIST's X is 376 MB as doubles), which it
 * takes from img (scaled by scale_images); labels and one-hot targets from lab. */
static int store_from_idx(ap_idx *img, const ap_idx *lab, size_t n, size_t d, int n_classes,
                          const char *labels_path, const double *z, ds_store **out) {
    if ((size_t)n_classes > SIZE_MAX / sizeof(double) / n)
        return ap_error(AP_EINVAL, "labels file %s: %zu labels x %d classes is too large",
                        labels_path, n, n_classes);
    ds_store *st = calloc(1, sizeof *st);
    if (st) {
        st->Y = malloc(n * (size_t)n_classes * sizeof(double));
        st->labels = malloc(n * sizeof(int));
    }
    if (!st || !st->Y || !st->labels) {
        if (st) {
            free(st->Y);
            free(st->labels);
            free(st);
        }
        return ap_error(AP_ENOMEM, "out of memory for the labels of %s", labels_path);
    }
    atomic_init(&st->refs, 0);
    st->n = n;
    st->d = d;
    st->k = (size_t)n_classes;
    scale_images(img, z);
    st->X = img->data;
    img->data = NULL;
    for (size_t i = 0; i < n; i++)
        st->labels[i] = (int)lab->data[i];
    one_hot(st->labels, n, st->k, st->Y);
    *out = st;
    return AP_OK;
}

/* ap_dataset_from_idx, its inputs standardised with z = { mean, std } unless z is NULL. */
static int from_idx(const char *images_path, const char *labels_path, int n_classes,
                    const double *z, ap_dataset **out) {
    if (!out) return ap_error(AP_EINVAL, "ap_dataset_from_idx: out is NULL");
    *out = NULL;
    if (!images_path || !labels_path)
        return ap_error(AP_EINVAL, "ap_dataset_from_idx: a file name is NULL");
    if (n_classes < 1)
        return ap_error(AP_EINVAL, "ap_dataset_from_idx: n_classes = %d, expected >= 1", n_classes);

    ap_idx img = {0}, lab = {0};
    ds_store *st = NULL;
    int rc = ap_idx_read(images_path, &img);
    if (rc != AP_OK) return rc;
    const size_t n = img.dims[0], d = img.count / n;
    if ((rc = ap_idx_read(labels_path, &lab)) == AP_OK &&
        (rc = check_idx_labels(&lab, labels_path, n, images_path, n_classes)) == AP_OK &&
        (rc = check_idx_images(&img, images_path, d)) == AP_OK)
        rc = store_from_idx(&img, &lab, n, d, n_classes, labels_path, z, &st);
    ap_idx_free(&img);
    ap_idx_free(&lab);
    return rc == AP_OK ? store_publish(st, out) : rc;
}

int ap_dataset_from_idx(const char *images_path, const char *labels_path, int n_classes,
                        ap_dataset **out) {
    return from_idx(images_path, labels_path, n_classes, NULL, out);
}

/* The standardisation's mean and std, as ap_dataset_standardize takes them. */
static int check_standardize(double mean, double std) {
    if (!isfinite(mean))
        return ap_error(AP_EINVAL, "dataset standardize: mean = %g is not finite", mean);
    if (!(std > 0) || !isfinite(std))
        return ap_error(AP_EINVAL, "dataset standardize: std = %g must be finite and > 0", std);
    return AP_OK;
}

int ap_dataset_from_idx_standardized(const char *images_path, const char *labels_path,
                                     int n_classes, double mean, double std, ap_dataset **out) {
    if (out) *out = NULL;
    int rc = check_standardize(mean, std);
    if (rc) return rc;
    const double z[2] = {mean, std};
    return from_idx(images_path, labels_path, n_classes, z, out);
}

/* ---- views -------------------------------------------------------------------------------- */

int ap_dataset_subset(const ap_dataset *ds, size_t start, size_t count, ap_dataset **out) {
    if (!out) return ap_error(AP_EINVAL, "ap_dataset_subset: out is NULL");
    *out = NULL;
    if (!ds) return ap_error(AP_EINVAL, "ap_dataset_subset: dataset is NULL");
    if (start > ds->n || count > ds->n - start)
        return ap_error(AP_EINVAL,
                        "dataset subset [%zu, %zu + %zu) exceeds the dataset's %zu samples", start,
                        start, count, ds->n);
    *out = view_new(ds->st, ds->start + start, count);
    if (!*out) return ap_error(AP_ENOMEM, "out of memory for a dataset view");
    return AP_OK;
}

int ap_dataset_split(const ap_dataset *ds, size_t n_first, ap_dataset **first, ap_dataset **rest) {
    if (!first || !rest) return ap_error(AP_EINVAL, "ap_dataset_split: output is NULL");
    *first = *rest = NULL;
    if (!ds) return ap_error(AP_EINVAL, "ap_dataset_split: dataset is NULL");
    if (n_first > ds->n)
        return ap_error(AP_EINVAL, "dataset split at %zu exceeds the dataset's %zu samples",
                        n_first, ds->n);
    int rc = ap_dataset_subset(ds, 0, n_first, first);
    if (rc == AP_OK) rc = ap_dataset_subset(ds, n_first, ds->n - n_first, rest);
    if (rc != AP_OK) ap_dataset_free(first);
    return rc;
}

int ap_dataset_standardize(const ap_dataset *ds, double mean, double std, ap_dataset **out) {
    if (!out) return ap_error(AP_EINVAL, "ap_dataset_standardize: out is NULL");
    *out = NULL;
    if (!ds) return ap_error(AP_EINVAL, "ap_dataset_standardize: dataset is NULL");
    int rc = check_standardize(mean, std);
    if (rc) return rc;
    const ds_store *src = ds->st;
    ds_store *st;
    rc = store_alloc(ds->n, src->d, src->k, src->labels != NULL, &st);
    if (rc != AP_OK) return rc;
    const double *X = ap_dataset_inputs(ds);
    for (size_t i = 0; i < ds->n * src->d; i++)
        st->X[i] = (X[i] - mean) / std;
    if (ds->n) {
        memcpy(st->Y, ap_dataset_targets(ds), ds->n * src->k * sizeof(double));
        if (src->labels) memcpy(st->labels, ap_dataset_labels(ds), ds->n * sizeof(int));
    }
    return store_publish(st, out);
}

void ap_dataset_free(ap_dataset **ds) {
    if (!ds || !*ds) return;
    store_release((*ds)->st);
    free(*ds);
    *ds = NULL;
}

size_t ap_dataset_size(const ap_dataset *ds) {
    return ds ? ds->n : 0;
}

size_t ap_dataset_input_dim(const ap_dataset *ds) {
    return ds ? ds->st->d : 0;
}

size_t ap_dataset_target_dim(const ap_dataset *ds) {
    return ds ? ds->st->k : 0;
}

const double *ap_dataset_inputs(const ap_dataset *ds) {
    return ds ? ds->st->X + ds->start * ds->st->d : NULL;
}

const double *ap_dataset_targets(const ap_dataset *ds) {
    return ds ? ds->st->Y + ds->start * ds->st->k : NULL;
}

const int *ap_dataset_labels(const ap_dataset *ds) {
    return ds && ds->st->labels ? ds->st->labels + ds->start : NULL;
}

/* ---- batcher ------------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* The mt19937 seed of an epoch: mt19937 takes 32 bits of seed, so hash (seed, epoch) down to
 * them; nearby seeds and epochs give unrelated streams. Documented in docs/file-formats.md. */
static unsigned long epoch_seed(uint64_t seed, uint64_t epoch) {
    return (unsigned long)(splitmix64(splitmix64(seed) ^ epoch) >> 32);
}

int ap_batcher_new(const ap_dataset *ds, int batch, uint64_t seed, int shuffle, int drop_last,
                   ap_batcher **out) {
    if (!out) return ap_error(AP_EINVAL, "ap_batcher_new: out is NULL");
    *out = NULL;
    if (!ds) return ap_error(AP_EINVAL, "ap_batcher_new: dataset is NULL");
    if (batch < 1) return ap_error(AP_EINVAL, "batcher: batch = %d, expected >= 1", batch);
    /* gsl_ran_shuffle draws indices with gsl_rng_uniform_int, limited to mt19937's range. */
    if (shuffle && ds->n > 0xffffffffu)
        return ap_error(AP_EINVAL, "batcher: %zu samples are too many to shuffle", ds->n);
    ap_batcher *bt = calloc(1, sizeof *bt);
    if (!bt) return ap_error(AP_ENOMEM, "out of memory for a batcher");
    bt->batch = batch;
    bt->seed = seed;
    bt->shuffle = shuffle != 0;
    bt->drop_last = drop_last != 0;
    bt->ds = view_new(ds->st, ds->start, ds->n);
    bt->order = malloc((ds->n ? ds->n : 1) * sizeof(size_t));
    bt->rng.type = gsl_rng_mt19937;
    bt->rng.state = calloc(1, gsl_rng_mt19937->size);
    if (!bt->ds || !bt->order || !bt->rng.state) {
        ap_batcher_free(&bt);
        return ap_error(AP_ENOMEM, "out of memory for a batcher over %zu samples", ds->n);
    }
    ap_batcher_reset(bt, 0);
    *out = bt;
    return AP_OK;
}

int ap_batcher_reset(ap_batcher *bt, uint64_t epoch) {
    if (!bt) return ap_error(AP_EINVAL, "ap_batcher_reset: batcher is NULL");
    size_t n = bt->ds->n;
    for (size_t i = 0; i < n; i++)
        bt->order[i] = i;
    if (bt->shuffle && n > 1) {
        gsl_rng_set(&bt->rng, epoch_seed(bt->seed, epoch));
        gsl_ran_shuffle(&bt->rng, bt->order, n, sizeof(size_t));
    }
    bt->pos = 0;
    return AP_OK;
}

int ap_batcher_next(ap_batcher *bt, double *X, double *Y, int *labels, int *count) {
    if (!bt || !count) return ap_error(AP_EINVAL, "ap_batcher_next: batcher or count is NULL");
    *count = 0;
    const ap_dataset *ds = bt->ds;
    const int *lab = ap_dataset_labels(ds);
    if (labels && !lab)
        return ap_error(AP_EINVAL, "ap_batcher_next: labels requested but the dataset has none");
    size_t left = ds->n - bt->pos;
    size_t m = left < (size_t)bt->batch ? left : (size_t)bt->batch;
    if (m == 0 || (bt->drop_last && m < (size_t)bt->batch)) {
        bt->pos = ds->n;
        return 0;
    }
    const size_t d = ds->st->d, k = ds->st->k;
    const double *Xs = ap_dataset_inputs(ds), *Ys = ap_dataset_targets(ds);
    for (size_t b = 0; b < m; b++) {
        size_t i = bt->order[bt->pos + b];
        if (X) memcpy(X + b * d, Xs + i * d, d * sizeof(double));
        if (Y) memcpy(Y + b * k, Ys + i * k, k * sizeof(double));
        if (labels) labels[b] = lab[i];
    }
    bt->pos += m;
    *count = (int)m;
    return 1;
}

const size_t *ap_batcher_order(const ap_batcher *bt) {
    return bt ? bt->order : NULL;
}

size_t ap_batcher_num_batches(const ap_batcher *bt) {
    if (!bt) return 0;
    size_t n = bt->ds->n, b = (size_t)bt->batch;
    return bt->drop_last ? n / b : (n + b - 1) / b;
}

void ap_batcher_free(ap_batcher **bt) {
    if (!bt || !*bt) return;
    ap_dataset_free(&(*bt)->ds);
    free((*bt)->order);
    free((*bt)->rng.state);
    free(*bt);
    *bt = NULL;
}
