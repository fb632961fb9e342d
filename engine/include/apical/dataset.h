/* apical/dataset.h — datasets (inputs X, targets Y, optional integer labels), their splits, and
 * minibatch iteration with reproducible per-epoch shuffling. See docs/file-formats.md. */
#ifndef APICAL_DATASET_H
#define APICAL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* n samples; inputs X are n x d, targets Y are n x k (row-major doubles); a classification
 * dataset also keeps the n integer labels (0..k-1) of which Y is the one-hot encoding.
 * Subsets and splits are views that share the parent's storage (reference-counted), so they
 * are cheap and each must be freed with ap_dataset_free; freeing in any order is fine.
 * A dataset is immutable: any number of threads may read it; freeing views of one storage
 * from different threads at once is safe too (atomic reference count). */
typedef struct ap_dataset ap_dataset;

/* Loads a classification dataset from two IDX files (raw or gzip, see ap_idx_read):
 * images (n x dims...) become X with d = the product of the trailing dimensions (u8 images
 * are divided by 255, so [0, 1]; other types are taken as they are); labels (a 1-d integer
 * IDX file) become Y = one-hot with k = n_classes, and are kept as labels.
 * Errors: those of ap_idx_read; AP_EINVAL for n_classes < 1; AP_EFORMAT when the labels file
 * is not 1-d or not of an integer type, a label lies outside 0..n_classes-1 (message gives
 * the file, index and value) or an image value is not finite; AP_ESIZE when the counts
 * differ (message names both files and both counts); AP_ENOMEM. *out is NULL on error. */
AP_API int ap_dataset_from_idx(const char *images_path, const char *labels_path, int n_classes,
                               ap_dataset **out);

/* ap_dataset_from_idx with every input then standardised, x' = (x - mean) / std, in the
 * loaded array itself: the same values, bit for bit, as ap_dataset_standardize of the loaded
 * dataset, without its second copy of the inputs (MNIST's training images: 376 MB). Errors:
 * those of ap_dataset_from_idx, and AP_EINVAL for mean or std as ap_dataset_standardize. */
AP_API int ap_dataset_from_idx_standardized(const char *images_path, const char *labels_path,
                                            int n_classes, double mean, double std,
                                            ap_dataset **out);

/* Makes a dataset from copies of caller arrays: X (n x d, required when n > 0), and either
 * Y (n x k), labels (n ints in 0..k-1), or both. With labels and Y == NULL, Y is the one-hot
 * encoding of the labels. Errors: AP_EINVAL (d or k = 0, missing X, neither Y nor labels, a
 * label outside 0..k-1 naming its index and value), AP_ENONFINITE (a NaN or infinity in X or Y,
 * naming the row and column), AP_ENOMEM. *out is NULL on error. */
AP_API int ap_dataset_from_arrays(size_t n, size_t d, const double *X, size_t k, const double *Y,
                                  const int *labels, ap_dataset **out);

/* Views of samples [0, n_first) and [n_first, n) — e.g. 55000 training and 5000 validation
 * samples of the 60000 of MNIST. No shuffling happens; shuffle through a batcher.
 * AP_EINVAL if n_first > n (both outputs NULL then). Either part may be empty. */
AP_API int ap_dataset_split(const ap_dataset *ds, size_t n_first, ap_dataset **first,
                            ap_dataset **rest);

/* A view of samples [start, start + count). AP_EINVAL if that range exceeds the dataset. */
AP_API int ap_dataset_subset(const ap_dataset *ds, size_t start, size_t count, ap_dataset **out);

/* A new dataset (its own storage) holding this view's samples with every input standardised,
 * x' = (x - mean) / std (e.g. MNIST's pixel statistics 0.1307 and 0.3081, as the reference
 * trainer feeds its networks); targets and labels are copied unchanged. The source is not
 * modified. AP_EINVAL when mean is not finite or std is not a finite positive number (the
 * message gives the value); AP_ENOMEM. *out is NULL on error. */
AP_API int ap_dataset_standardize(const ap_dataset *ds, double mean, double std, ap_dataset **out);

/* Releases the view (and the storage with its last view) and sets *ds = NULL. NULL-safe. */
AP_API void ap_dataset_free(ap_dataset **ds);

AP_API size_t ap_dataset_size(const ap_dataset *ds);       /* n */
AP_API size_t ap_dataset_input_dim(const ap_dataset *ds);  /* d */
AP_API size_t ap_dataset_target_dim(const ap_dataset *ds); /* k (n_classes with labels) */
/* Row-major n x d inputs and n x k targets of this view; valid while the view lives. */
AP_API const double *ap_dataset_inputs(const ap_dataset *ds);
AP_API const double *ap_dataset_targets(const ap_dataset *ds);
/* The n labels, or NULL for a dataset without labels. */
AP_API const int *ap_dataset_labels(const ap_dataset *ds);

/* ---- minibatches ------------------------------------------------------------------------ */

/* Walks a dataset in minibatches of `batch` samples, one epoch at a time. With shuffle, the
 * order of epoch e is a permutation determined by (seed, e) alone — GSL's mt19937 seeded with
 * a hash of both, then gsl_ran_shuffle — so a run restarted at epoch e sees the same order.
 * Without shuffle the order is 0..n-1. Every sample appears exactly once per epoch; with
 * drop_last the final short batch is skipped (those samples are not seen that epoch). */
typedef struct ap_batcher ap_batcher;

/* Creates a batcher positioned at the start of epoch 0. It keeps its own reference to the
 * dataset's storage, so the caller may free ds afterwards. AP_EINVAL for batch < 1 or a dataset
 * too large to shuffle (more than 2^32 - 1 samples); AP_ENOMEM. *out is NULL on error. */
AP_API int ap_batcher_new(const ap_dataset *ds, int batch, uint64_t seed, int shuffle,
                          int drop_last, ap_batcher **out);

/* Copies the next minibatch: count rows into X (count x d) and Y (count x k) and, if labels is
 * non-NULL, count labels. Any of X, Y, labels may be NULL to skip it. Buffers must hold `batch`
 * rows. Returns 1 with *count = rows copied (1..batch; only the last batch of an epoch can be
 * short), 0 with *count = 0 when the epoch is over (until ap_batcher_reset), or AP_EINVAL (NULL
 * bt or count, labels requested from a dataset without labels). Never allocates. */
AP_API int ap_batcher_next(ap_batcher *bt, double *X, double *Y, int *labels, int *count);

/* Starts epoch `epoch` (any number, in any order): recomputes its order and rewinds. */
AP_API int ap_batcher_reset(ap_batcher *bt, uint64_t epoch);

/* The current epoch's order: sample indices (into the dataset given to ap_batcher_new) in the
 * order they are served; ap_dataset_size() entries, valid until the next reset or free. */
AP_API const size_t *ap_batcher_order(const ap_batcher *bt);

/* Number of batches one epoch yields: ceil(n / batch), or floor with drop_last. */
AP_API size_t ap_batcher_num_batches(const ap_batcher *bt);

/* Frees the batcher (releasing its dataset reference) and sets *bt = NULL. NULL-safe. */
AP_API void ap_batcher_free(ap_batcher **bt);

#ifdef __cplusplus
}
#endif
#endif
