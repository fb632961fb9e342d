/* apical/error.h — error codes shared by every public function, and the last-error message. */
#ifndef APICAL_ERROR_H
#define APICAL_ERROR_H

#include <stdarg.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One list generates the enum and ap_strerror(). Codes are 0 (success) or negative. */
#define AP_ERROR_LIST(X)                                                                           \
    X(AP_OK, 0, "success")                                                                         \
    X(AP_ENOMEM, -1, "out of memory")                                                              \
    X(AP_EINVAL, -2, "invalid argument")                                                           \
    X(AP_ENOTFOUND, -3, "not found")                                                               \
    X(AP_ESIZE, -4, "size mismatch")                                                               \
    X(AP_ELOOP, -5, "algebraic loop")                                                              \
    X(AP_EIO, -6, "input/output error")                                                            \
    X(AP_EFORMAT, -7, "malformed file")                                                            \
    X(AP_EABI, -8, "ABI version mismatch")                                                         \
    X(AP_ESOLVER, -9, "solver failure")                                                            \
    X(AP_ENONFINITE, -10, "non-finite value")                                                      \
    X(AP_ESTATE, -11, "operation not allowed in this state")                                       \
    X(AP_EPLUGIN, -12, "plugin error")                                                             \
    X(AP_EDUP, -13, "duplicate name")

typedef enum {
#define AP_ERROR_ENUM_(name, value, text) name = value,
    AP_ERROR_LIST(AP_ERROR_ENUM_)
#undef AP_ERROR_ENUM_
} ap_status;

/* Short fixed text for a code ("size mismatch"); never NULL. */
AP_API const char *ap_strerror(int code);

/* The message of the last failure in this thread: what failed, where, with which value.
 * Valid until the next failing call in the same thread. Empty string if none. */
AP_API const char *ap_last_error(void);

/* Records a formatted message for the current thread and returns `code`.
 * Used by the engine and by plugins: `return ap_error(AP_EINVAL, "tau_v = %g < 0", tau);` */
AP_API int ap_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
AP_API int ap_verror(int code, const char *fmt, va_list ap);

/* Prepends context to the current message ("h1: " + old message) and returns `code`. */
AP_API int ap_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears the current thread's message. */
AP_API void ap_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
