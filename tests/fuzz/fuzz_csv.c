/* fuzz_csv.c — ap_csv_write round trip: column names (any bytes but NUL, quoted by RFC 4180
 * when they hold ',', '"', CR or LF) and doubles (any bit pattern) are written, then read back
 * by an independent RFC 4180 reader here: the names must come back byte for byte, every
 * finite value bit for bit, infinities with their sign and NaN as NaN.
 * Input: byte 0 = columns (1..8), then the names, each ended by a NUL, then the values as
 * 8-byte doubles (the last partial row is dropped). */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/csv.h"
#include "apical/error.h"

static char dir[] = "/dev/shm/apical_fuzz_csv_XXXXXX";
static char path[64];

static void setup(void) {
    if (path[0]) return;
    if (!mkdtemp(dir)) {
        strcpy(dir, "/tmp/apical_fuzz_csv_XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    snprintf(path, sizeof path, "%s/t.csv", dir);
}

static char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    if (!f) abort();
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[len] = '\0';
    *n = len;
    return buf;
}

/* One field at *pos of s (RFC 4180) into out (unquoted); returns the character after it. */
static char field(const char *s, size_t len, size_t *pos, char *out, size_t *olen) {
    size_t i = *pos, o = 0;
    if (i < len && s[i] == '"') {
        i++;
        for (;;) {
            if (i >= len) abort(); /* unterminated quote */
            if (s[i] == '"') {
                if (i + 1 < len && s[i + 1] == '"') {
                    out[o++] = '"';
                    i += 2;
                    continue;
                }
                i++;
                break;
            }
            out[o++] = s[i++];
        }
    } else {
        while (i < len && s[i] != ',' && s[i] != '\n') {
            if (s[i] == '"' || s[i] == '\r') abort(); /* must have been quoted */
            out[o++] = s[i++];
        }
    }
    out[o] = '\0';
    *olen = o;
    char end = i < len ? s[i] : '\0';
    *pos = i < len ? i + 1 : i;
    return end;
}

static int same(double want, const char *text) {
    char *e;
    double got = strtod(text, &e);
    if (*e) return 0;
    if (isnan(want)) return isnan(got);
    return memcmp(&want, &got, sizeof want) == 0 ||
           (want == 0 && got == 0 && signbit(want) == signbit(got));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 1) return 0;
    int ncols = data[0] % 8 + 1;
    const char *names[8];
    size_t at = 1;
    for (int c = 0; c < ncols; c++) {
        const void *nul = at < size ? memchr(data + at, 0, size - at) : NULL;
        if (!nul) return 0;
        names[c] = (const char *)data + at;
        at = (size_t)((const uint8_t *)nul - data) + 1;
    }
    size_t nvals = (size - at) / 8, nrows = nvals / (size_t)ncols;
    double *vals = malloc((nrows * (size_t)ncols + 1) * sizeof *vals);
    memcpy(vals, data + at, nrows * (size_t)ncols * sizeof *vals);
    if (ap_csv_write(path, names, ncols, vals, nrows) != AP_OK) abort();
    size_t len, pos = 0, flen;
    char *s = slurp(path, &len);
    char *buf = malloc(len + 1);
    for (int c = 0; c < ncols; c++) {
        char end = field(s, len, &pos, buf, &flen);
        if (flen != strlen(names[c]) || memcmp(buf, names[c], flen) != 0) abort();
        if (end != (c + 1 < ncols ? ',' : '\n')) abort();
    }
    for (size_t r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            char end = field(s, len, &pos, buf, &flen);
            if (!same(vals[r * (size_t)ncols + (size_t)c], buf)) abort();
            if (end != (c + 1 < ncols ? ',' : '\n')) abort();
        }
    if (pos != len) abort(); /* nothing after the last row */
    free(buf);
    free(s);
    free(vals);
    return 0;
}
