/* npy.c — NumPy .npy reading (v1.0/2.0/3.0, numeric dtypes -> double) and float64 writing. */
#include "apical/npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apical/error.h"
#include "apical/fileio.h"

_Static_assert(sizeof(double) == 8, "apical assumes IEEE-754 binary64 doubles");

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* numpy refuses headers above 10000 bytes by default; we allow more but still bound the
 * allocation a corrupt length field can cause. */
#define NPY_MAX_HEADER (1u << 20)
/* numpy's GROWTH_AXIS_MAX_DIGITS: spare spaces after the dict so the first axis can grow. */
#define NPY_GROWTH_DIGITS 21
#define NPY_ALIGN 64
/* Elements converted per chunk when streaming data in or out. */
#define NPY_CHUNK 4096

void ap_array_free(ap_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- little-endian decoding ------------------------------------------------------------ */

static uint64_t le_u64(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A dtype we can read: kind 'f', 'i', 'u' or 'b' and its item size in bytes. */
typedef struct {
    char kind;
    int size;
} npy_dtype;

/* Converts count little-endian items at src to doubles. */
static void decode_items(const unsigned char *src, double *dst, size_t count, npy_dtype t) {
    const int sz = t.size;
    for (size_t i = 0; i < count; i++, src += sz) {
        uint64_t u = le_u64(src, sz);
        double v;
        switch (t.kind) {
        case 'f':
            if (sz == 8) {
                memcpy(&v, &u, 8);
            } else {
                uint32_t u32 = (uint32_t)u;
                float fl;
                memcpy(&fl, &u32, 4);
                v = fl;
            }
            break;
        case 'i': {
            /* sign-extend from sz bytes */
            int shift = 64 - 8 * sz;
            int64_t s = (int64_t)(u << shift) >> shift;
            v = (double)s;
            break;
        }
        case 'b':
            v = u != 0;
            break;
        default: /* 'u' */
            v = (double)u;
            break;
        }
        dst[i] = v;
    }
}

/* ---- header dictionary parser -------------------------------------------------------------
 * The header is a Python dict literal such as
 *   {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
 * We accept exactly the three keys, each once, in any order, single- or double-quoted,
 * a trailing comma, and trailing whitespace (numpy pads with spaces and a '\n'). */

typedef struct {
    const char *path;
    const char *s;
    size_t n, pos;
    size_t base; /* file offset of s[0], for messages */
} hdr_parser;

static int hdr_fail(const hdr_parser *p, const char *what) {
    char found[24];
    if (p->pos >= p->n) {
        snprintf(found, sizeof found, "end of header");
    } else {
        size_t k = 0;
        found[k++] = '"';
        for (size_t i = p->pos; i < p->n && k < 16; i++) {
            unsigned char c = (unsigned char)p->s[i];
            found[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        found[k++] = '"';
        found[k] = '\0';
    }
    return ap_error(AP_EFORMAT, "file %s: byte %zu: header: %s, found %s", p->path,
                    p->base + p->pos, what, found);
}

static void hdr_ws(hdr_parser *p) {
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                             p->s[p->pos] == '\r'))
        p->pos++;
}

static int hdr_peek(const hdr_parser *p) {
    return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1;
}

static int hdr_expect(hdr_parser *p, char c, const char *what) {
    hdr_ws(p);
    if (hdr_peek(p) != (unsigned char)c) return hdr_fail(p, what);
    p->pos++;
    return AP_OK;
}

/* A quoted string without escapes, copied into buf (size bufsz). */
static int hdr_string(hdr_parser *p, char *buf, size_t bufsz, const char *what) {
    hdr_ws(p);
    int q = hdr_peek(p);
    if (q != '\'' && q != '"') return hdr_fail(p, what);
    size_t start = ++p->pos, k = 0;
    while (p->pos < p->n && p->s[p->pos] != (char)q) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '\\' || c < 0x20 || c >= 0x7f)
            return hdr_fail(p, "unsupported character in string");
        if (k + 1 >= bufsz) {
            p->pos = start;
            return hdr_fail(p, "string too long");
        }
        buf[k++] = (char)c;
        p->pos++;
    }
    if (p->pos >= p->n) {
        p->pos = start - 1;
        return hdr_fail(p, "unterminated string");
    }
    p->pos++;
    buf[k] = '\0';
    return AP_OK;
}

static int hdr_word(hdr_parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->n - p->pos >= n && memcmp(p->s + p->pos, w, n) == 0) {
        p->pos += n;
        return 1;
    }
    return 0;
}

static int hdr_bool(hdr_parser *p, int *out) {
    hdr_ws(p);
    if (hdr_word(p, "True"))
        *out = 1;
    else if (hdr_word(p, "False"))
        *out = 0;
    else
        return hdr_fail(p, "fortran_order must be True or False");
    return AP_OK;
}

/* A non-negative decimal integer (Python 2 files may carry an 'L' suffix). */
static int hdr_uint(hdr_parser *p, size_t *out) {
    hdr_ws(p);
    size_t start = p->pos;
    size_t v = 0;
    if (hdr_peek(p) < '0' || hdr_peek(p) > '9') return hdr_fail(p, "expected a dimension");
    while (hdr_peek(p) >= '0' && hdr_peek(p) <= '9') {
        size_t d = (size_t)(p->s[p->pos] - '0');
        if (v > (SIZE_MAX - d) / 10) {
            p->pos = start;
            return hdr_fail(p, "dimension too large");
        }
        v = v * 10 + d;
        p->pos++;
    }
    if (hdr_peek(p) == 'L') p->pos++;
    *out = v;
    return AP_OK;
}

/* A tuple: (), (n,), (n, m), (n, m,) ... A single element without comma is not a tuple. */
static int hdr_shape(hdr_parser *p, int *ndim, size_t *shape) {
    int rc;
    if ((rc = hdr_expect(p, '(', "shape must be a tuple")) != AP_OK) return rc;
    int nd = 0, comma = 0;
    for (;;) {
        hdr_ws(p);
        if (hdr_peek(p) == ')') break;
        if (nd == AP_ARRAY_MAX_DIMS) {
            return ap_error(AP_EFORMAT,
                            "file %s: byte %zu: header: shape has more than %d dimensions", p->path,
                            p->base + p->pos, AP_ARRAY_MAX_DIMS);
        }
        if ((rc = hdr_uint(p, &shape[nd])) != AP_OK) return rc;
        nd++;
        hdr_ws(p);
        comma = 0;
        if (hdr_peek(p) == ',') {
            p->pos++;
            comma = 1;
        } else if (hdr_peek(p) != ')') {
            return hdr_fail(p, "expected ',' or ')' in shape");
        }
    }
    if (nd == 1 && !comma) return hdr_fail(p, "shape (n) lacks the comma of a 1-tuple (n,)");
    p->pos++;
    *ndim = nd;
    return AP_OK;
}

typedef struct {
    char descr[32];
    int fortran;
    int ndim;
    size_t descr_at, fortran_at; /* file offsets of the values, for messages */
    size_t shape[AP_ARRAY_MAX_DIMS];
} npy_header;

static int hdr_parse(hdr_parser *p, npy_header *h) {
    int rc, seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    if ((rc = hdr_expect(p, '{', "expected '{'")) != AP_OK) return rc;
    for (;;) {
        hdr_ws(p);
        if (hdr_peek(p) == '}') break;
        size_t key_pos = p->pos;
        char key[32];
        if ((rc = hdr_string(p, key, sizeof key, "expected a quoted key or '}'")) != AP_OK)
            return rc;
        int *seen;
        if (strcmp(key, "descr") == 0)
            seen = &seen_descr;
        else if (strcmp(key, "fortran_order") == 0)
            seen = &seen_fortran;
        else if (strcmp(key, "shape") == 0)
            seen = &seen_shape;
        else {
            p->pos = key_pos;
            return hdr_fail(p, "unknown key (expected 'descr', 'fortran_order' or 'shape')");
        }
        if (*seen) {
            p->pos = key_pos;
            return hdr_fail(p, "duplicate key");
        }
        *seen = 1;
        if ((rc = hdr_expect(p, ':', "expected ':' after key")) != AP_OK) return rc;
        hdr_ws(p);
        if (seen == &seen_descr) {
            h->descr_at = p->base + p->pos;
            if (hdr_peek(p) == '[')
                return hdr_fail(p, "structured dtypes (a list descr) are not supported");
            rc = hdr_string(p, h->descr, sizeof h->descr, "descr must be a quoted dtype string");
        } else if (seen == &seen_fortran) {
            h->fortran_at = p->base + p->pos;
            rc = hdr_bool(p, &h->fortran);
        } else {
            rc = hdr_shape(p, &h->ndim, h->shape);
        }
        if (rc != AP_OK) return rc;
        hdr_ws(p);
        if (hdr_peek(p) == ',')
            p->pos++;
        else if (hdr_peek(p) != '}')
            return hdr_fail(p, "expected ',' or '}'");
    }
    p->pos++; /* '}' */
    hdr_ws(p);
    if (p->pos != p->n) return hdr_fail(p, "unexpected text after the dictionary");
    const char *missing = !seen_descr     ? "descr"
                          : !seen_fortran ? "fortran_order"
                          : !seen_shape   ? "shape"
                                          : NULL;
    if (missing)
        return ap_error(AP_EFORMAT, "file %s: byte %zu: header lacks the key '%s'", p->path,
                        p->base, missing);
    return AP_OK;
}

/* Maps a descr to a supported dtype; `at` is the descr's file offset for messages. */
static int parse_descr(const char *path, size_t at, const char *descr, npy_dtype *t) {
    char order = descr[0];
    char kind = order ? descr[1] : '\0';
    const char *digits = order && kind ? descr + 2 : "";
    char *end;
    long size = strtol(digits, &end, 10);
    int known =
        *digits >= '0' && *digits <= '9' && *end == '\0' &&
        ((kind == 'f' && (size == 4 || size == 8)) ||
         ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
         (kind == 'b' && size == 1));
    if (!known || !strchr("<>|=", order) || order == '\0')
        return ap_error(AP_EFORMAT,
                        "file %s: byte %zu: unsupported dtype '%s' (supported: f8 f4 i8 i4 i2 "
                        "i1 u8 u4 u2 u1 b1)",
                        path, at, descr);
    if (size > 1 && order == '>')
        return ap_error(AP_EFORMAT,
                        "file %s: byte %zu: big-endian dtype '%s' is not supported (convert "
                        "with arr.astype('<%c%ld'))",
                        path, at, descr, kind, size);
    if (size > 1 && order != '<')
        return ap_error(AP_EFORMAT,
                        "file %s: byte %zu: dtype '%s' does not state its byte order (expected "
                        "'<%c%ld')",
                        path, at, descr, kind, size);
    t->kind = kind;
    t->size = (int)size;
    return AP_OK;
}

static void shape_string(char *buf, size_t n, int ndim, const size_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%zu", i ? ", " : "", shape[i]);
    if (k < n) snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
}

/* ---- reading ------------------------------------------------------------------------------ */

/* A .npy file being read: where it is, what its header said, what its data will be. */
typedef struct npy_reader {
    const char *path;
    FILE *fp;
    size_t hlen, hstart, dstart; /* header length, file offsets of header and data */
    char *hdr;                   /* the header's text (hlen bytes and a NUL) */
    npy_header h;
    npy_dtype t;
    size_t size, nbytes; /* elements, bytes of data */
    char shp[256];       /* the shape, for messages */
} npy_reader;

/* The magic string, the version and the header's length (8 + 2 or 4 bytes). */
static int read_preamble(npy_reader *r) {
    unsigned char pre[12];
    const char *path = r->path;
    size_t got = fread(pre, 1, 8, r->fp);
    if (got < 8) {
        if (ferror(r->fp))
            return ap_error(AP_EIO, "file %s: read error: %s", path, strerror(errno));
        return ap_error(AP_EFORMAT, "file %s: only %zu bytes, too short for a .npy file", path,
                        got);
    }
    if (memcmp(pre, npy_magic, 6) != 0)
        return ap_error(AP_EFORMAT,
                        "file %s: byte 0: bad magic (expected \\x93NUMPY), not a .npy "
                        "file",
                        path);
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return ap_error(AP_EFORMAT,
                        "file %s: byte 6: unsupported .npy version %d.%d (expected "
                        "1.0, 2.0 or 3.0)",
                        path, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    got = fread(pre + 8, 1, lenbytes, r->fp);
    if (got < lenbytes)
        return ferror(r->fp)
                   ? ap_error(AP_EIO, "file %s: read error: %s", path, strerror(errno))
                   : ap_error(AP_EFORMAT, "file %s: byte 8: header length truncated", path);
    r->hlen = (size_t)le_u64(pre + 8, (int)lenbytes);
    r->hstart = 8 + lenbytes;
    if (r->hlen > NPY_MAX_HEADER)
        return ap_error(AP_EFORMAT, "file %s: byte 8: header length %zu exceeds the limit of %u",
                        path, r->hlen, NPY_MAX_HEADER);
    return AP_OK;
}

/* The header's dictionary, parsed: shape, dtype (supported ones only), C order. */
static int read_header(npy_reader *r) {
    const char *path = r->path;
    const size_t hlen = r->hlen;
    int rc;
    if (!(r->hdr = malloc(hlen + 1)))
        return ap_error(AP_ENOMEM, "file %s: out of memory for a %zu-byte header", path, hlen);
    size_t got = fread(r->hdr, 1, hlen, r->fp);
    if (got < hlen)
        return ferror(r->fp) ? ap_error(AP_EIO, "file %s: read error: %s", path, strerror(errno))
                             : ap_error(AP_EFORMAT,
                                        "file %s: byte %zu: header truncated: expected %zu "
                                        "bytes, got %zu",
                                        path, r->hstart, hlen, got);
    r->hdr[hlen] = '\0';
    hdr_parser p = {path, r->hdr, hlen, 0, r->hstart};
    if ((rc = hdr_parse(&p, &r->h)) != AP_OK) return rc;
    if ((rc = parse_descr(path, r->h.descr_at, r->h.descr, &r->t)) != AP_OK) return rc;
    if (r->h.fortran)
        return ap_error(AP_EFORMAT,
                        "file %s: byte %zu: fortran_order is True; only C-order arrays are "
                        "supported (save np.ascontiguousarray(a))",
                        path, r->h.fortran_at);
    return AP_OK;
}

/* The element count and the bytes of data the shape implies. The product of the non-zero
 * dimensions must fit too: a shape (2^64-1, 0) holds no element, but its first dimension is no
 * size (and no Lua integer) either. */
static int data_size(npy_reader *r) {
    const npy_header *h = &r->h;
    shape_string(r->shp, sizeof r->shp, h->ndim, h->shape);
    size_t size = 1, nonzero = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] == 0) {
            size = 0;
            continue;
        }
        if (nonzero > SIZE_MAX / sizeof(double) / h->shape[i])
            return ap_error(AP_EFORMAT, "file %s: byte %zu: shape %s is too large", r->path,
                            r->hstart, r->shp);
        nonzero *= h->shape[i];
    }
    r->size = size ? nonzero : 0;
    r->nbytes = r->size * (size_t)r->t.size;
    r->dstart = r->hstart + r->hlen;
    return AP_OK;
}

static int short_data(const npy_reader *r, size_t have) {
    return ap_error(AP_EFORMAT,
                    "file %s: expected %zu bytes of data after the header (shape %s, dtype "
                    "'%s'), got %zu",
                    r->path, r->nbytes, r->shp, r->h.descr, have);
}

static int trailing_data(const npy_reader *r, size_t extra) {
    return ap_error(AP_EFORMAT,
                    "file %s: %zu trailing bytes after the %zu bytes of data (shape %s, dtype "
                    "'%s')",
                    r->path, extra, r->nbytes, r->shp, r->h.descr);
}

/* For a regular file, compares the sizes before allocating, so a corrupt shape gives a format
 * error rather than an attempt to allocate terabytes. */
static int check_file_size(const npy_reader *r) {
    struct stat st;
    if (fstat(fileno(r->fp), &st) != 0 || !S_ISREG(st.st_mode)) return AP_OK;
    size_t have = (size_t)st.st_size >= r->dstart ? (size_t)st.st_size - r->dstart : 0;
    if (have < r->nbytes) return short_data(r, have);
    if (have > r->nbytes) return trailing_data(r, have - r->nbytes);
    return AP_OK;
}

/* The data, decoded into data (r->size doubles) in chunks through buf; nothing may follow. */
static int read_data(const npy_reader *r, double *data, unsigned char *buf) {
    const size_t isz = (size_t)r->t.size;
    size_t done_items = 0, n;
    while (done_items < r->size) {
        size_t want = r->size - done_items < NPY_CHUNK ? r->size - done_items : NPY_CHUNK;
        n = fread(buf, isz, want, r->fp);
        decode_items(buf, data + done_items, n, r->t);
        done_items += n;
        if (n < want) {
            if (ferror(r->fp))
                return ap_error(AP_EIO, "file %s: read error at byte %zu: %s", r->path,
                                r->dstart + done_items * isz, strerror(errno));
            return short_data(r, done_items * isz);
        }
    }
    size_t extra = 0;
    while ((n = fread(buf, 1, (size_t)NPY_CHUNK * isz, r->fp)) > 0)
        extra += n;
    if (ferror(r->fp)) return ap_error(AP_EIO, "file %s: read error: %s", r->path, strerror(errno));
    if (extra) return trailing_data(r, extra);
    return AP_OK;
}

/* Reads an opened file into out: preamble, header, sizes, data. */
static int npy_read_file(npy_reader *r, ap_array *out) {
    int rc;
    if ((rc = read_preamble(r)) || (rc = read_header(r)) || (rc = data_size(r)) ||
        (rc = check_file_size(r)))
        return rc;
    double *data = malloc((r->size ? r->size : 1) * sizeof(double));
    unsigned char *buf = malloc((size_t)NPY_CHUNK * (size_t)r->t.size);
    if (!data || !buf)
        rc = ap_error(AP_ENOMEM, "file %s: out of memory for %zu elements", r->path, r->size);
    else
        rc = read_data(r, data, buf);
    free(buf);
    if (rc) {
        free(data);
        return rc;
    }
    out->data = data;
    out->ndim = r->h.ndim;
    for (int i = 0; i < r->h.ndim; i++)
        out->shape[i] = r->h.shape[i];
    out->size = r->size;
    return AP_OK;
}

int ap_npy_read(const char *path, ap_array *out) {
    if (!out) return ap_error(AP_EINVAL, "ap_npy_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return ap_error(AP_EINVAL, "ap_npy_read: path is NULL");
    npy_reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    if (!(r.fp = fopen(path, "rb")))
        return ap_error(AP_EIO, "file %s: cannot open: %s", path, strerror(errno));
    int rc = npy_read_file(&r, out);
    free(r.hdr);
    fclose(r.fp);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Checks ap_npy_write's arguments; *size gets the number of elements. */
static int check_write(const char *path, const double *data, int ndim, const size_t *shape,
                       size_t *size) {
    if (!path) return ap_error(AP_EINVAL, "ap_npy_write: path is NULL");
    if (ndim < 0 || ndim > AP_ARRAY_MAX_DIMS)
        return ap_error(AP_EINVAL, "file %s: ndim = %d, expected 0..%d", path, ndim,
                        AP_ARRAY_MAX_DIMS);
    if (ndim > 0 && !shape) return ap_error(AP_EINVAL, "file %s: shape is NULL", path);
    *size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] != 0 && *size > SIZE_MAX / sizeof(double) / shape[i])
            return ap_error(AP_EINVAL, "file %s: shape overflows at dimension %d (%zu)", path, i,
                            shape[i]);
        *size *= shape[i];
    }
    if (*size > 0 && !data) return ap_error(AP_EINVAL, "file %s: data is NULL", path);
    return AP_OK;
}

/* The header's dict into hdr (cap bytes, room for the padding), padded, and the 10 bytes before
 * it into pre. Returns the dict's length. */
static int write_header(char *hdr, size_t cap, unsigned char *pre, int ndim, const size_t *shape) {
    /* The dict exactly as numpy.lib.format writes it: keys sorted, repr() values. */
    char shp[256];
    shape_string(shp, sizeof shp, ndim, shape);
    int len = snprintf(hdr, cap, "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }", shp);
    if (ndim > 0) {
        char first[32];
        int digits = snprintf(first, sizeof first, "%zu", shape[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++)
            hdr[len++] = ' ';
    }
    /* 10 bytes of magic, version and length; pad so the data starts on a 64-byte boundary
     * (numpy pads with 1..64 spaces, then '\n'). */
    int pad = NPY_ALIGN - (10 + len + 1) % NPY_ALIGN;
    for (int i = 0; i < pad; i++)
        hdr[len++] = ' ';
    hdr[len++] = '\n';
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(len & 0xff);
    pre[9] = (unsigned char)((len >> 8) & 0xff);
    return len;
}

/* Writes the size doubles of data little-endian to fp. Returns 1, or 0 when a write failed. */
static int write_le_doubles(FILE *fp, const double *data, size_t size) {
    unsigned char buf[NPY_CHUNK * 8];
    int ok = 1;
    for (size_t i = 0; ok && i < size; i += NPY_CHUNK) {
        size_t n = size - i < NPY_CHUNK ? size - i : NPY_CHUNK;
        for (size_t j = 0; j < n; j++) {
            uint64_t u;
            memcpy(&u, &data[i + j], 8);
            for (int b = 0; b < 8; b++)
                buf[8 * j + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        ok = fwrite(buf, 8, n, fp) == n;
    }
    return ok;
}

int ap_npy_write(const char *path, const double *data, int ndim, const size_t *shape) {
    size_t size = 0;
    int rc = check_write(path, data, ndim, shape, &size);
    if (rc) return rc;
    char hdr[512];
    unsigned char pre[10];
    int len = write_header(hdr, sizeof hdr, pre, ndim, shape);
    ap_atomic_file f;
    if ((rc = ap_atomic_open(&f, path)) != AP_OK) return rc;
    int ok = fwrite(pre, 1, sizeof pre, f.fp) == sizeof pre &&
             fwrite(hdr, 1, (size_t)len, f.fp) == (size_t)len && write_le_doubles(f.fp, data, size);
    if (!ok) {
        int e = errno;
        ap_atomic_abort(&f);
        return ap_error(AP_EIO, "file %s: write failed: %s", path, strerror(e));
    }
    return ap_atomic_commit(&f);
}
