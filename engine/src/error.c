/* error.c — ap_strerror and the thread-local last-error message. */
#include "apical/error.h"

#include <stdio.h>
#include <string.h>

#define APX_ERRMSG_MAX 1024

static _Thread_local char errmsg[APX_ERRMSG_MAX];

const char *ap_strerror(int code) {
    switch (code) {
#define APX_ERROR_CASE_(name, value, text)                                                         \
    case value:                                                                                    \
        return text;
        AP_ERROR_LIST(APX_ERROR_CASE_)
#undef APX_ERROR_CASE_
    default:
        return "unknown error";
    }
}

const char *ap_last_error(void) {
    return errmsg;
}

int ap_verror(int code, const char *fmt, va_list ap) {
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    return code;
}

int ap_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ap_verror(code, fmt, ap);
    va_end(ap);
    return code;
}

int ap_error_prefix(int code, const char *fmt, ...) {
    char old[APX_ERRMSG_MAX];
    memcpy(old, errmsg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof errmsg)
        snprintf(errmsg + n, sizeof errmsg - (size_t)n, "%s", old);
    return code;
}

void ap_error_clear(void) {
    errmsg[0] = '\0';
}
