/* idx.c — IDX (MNIST format) reading, of raw files and of gzip files inflated with zlib. */
#include "apical/idx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "apical/error.h"

/* Bytes read or inflated at once, a multiple of every item size. */
#define IDX_CHUNK (1u << 16)

const char *ap_idx_type_name(int type) {
    switch (type) {
    case AP_IDX_U8:
        return "u8";
    case AP_IDX_I8:
        return "i8";
    case AP_IDX_I16:
        return "i16";
    case AP_IDX_I32:
        return "i32";
    case AP_IDX_F32:
        return "f32";
    case AP_IDX_F64:
        return "f64";
    default:
        return "unknown";
    }
}

static int item_size(int type) {
    switch (type) {
    case AP_IDX_U8:
    case AP_IDX_I8:
        return 1;
    case AP_IDX_I16:
        return 2;
    case AP_IDX_I32:
    case AP_IDX_F32:
        return 4;
    case AP_IDX_F64:
        return 8;
    default:
        return 0;
    }
}

void ap_idx_free(ap_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

static uint64_t be_u64(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Converts count big-endian items of `type` at src to doubles. */
static void decode_items(const unsigned char *src, double *dst, size_t count, int type) {
    switch (type) {
    case AP_IDX_U8:
        for (size_t i = 0; i < count; i++)
            dst[i] = src[i];
        break;
    case AP_IDX_I8:
        for (size_t i = 0; i < count; i++)
            dst[i] = (int8_t)src[i];
        break;
    case AP_IDX_I16:
        for (size_t i = 0; i < count; i++)
            dst[i] = (int16_t)(uint16_t)be_u64(src + 2 * i, 2);
        break;
    case AP_IDX_I32:
        for (size_t i = 0; i < count; i++)
            dst[i] = (int32_t)(uint32_t)be_u64(src + 4 * i, 4);
        break;
    case AP_IDX_F32:
        for (size_t i = 0; i < count; i++) {
            uint32_t u = (uint32_t)be_u64(src + 4 * i, 4);
            float f;
            memcpy(&f, &u, 4);
            dst[i] = f;
        }
        break;
    default: /* AP_IDX_F64 */
        for (size_t i = 0; i < count; i++) {
            uint64_t u = be_u64(src + 8 * i, 8);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = d;
        }
        break;
    }
}

/* ---- the byte source: a raw file, or gzip members inflated here ----------------------------
 * zlib's gzread ignores whatever follows a gzip stream if it is not another gzip member; this
 * reader refuses it. */
typedef struct src {
    FILE *f;
    const char *path;
    int gz;      /* the file begins with the gzip magic number */
    int ended;   /* the last member's end was reached (and no byte after it yet) */
    int started; /* inflate was initialised */
    int cut;     /* the file ended inside a member */
    size_t tail; /* bytes read after the end of a member */
    z_stream z;
    unsigned char in[IDX_CHUNK];
} src;

static int src_open(src *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->path = path;
    errno = 0;
    s->f = fopen(path, "rb");
    if (!s->f) return ap_error(AP_EIO, "file %s: cannot open: %s", path, strerror(errno));
    int c0 = getc(s->f), c1 = getc(s->f);
    s->gz = c0 == 0x1f && c1 == 0x8b;
    rewind(s->f);
    if (!s->gz) return AP_OK;
    if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
        fclose(s->f);
        s->f = NULL;
        return ap_error(AP_ENOMEM, "file %s: out of memory in zlib", path);
    }
    s->started = 1;
    return AP_OK;
}

static void src_close(src *s) {
    if (s->started) inflateEnd(&s->z);
    if (s->f) fclose(s->f);
    s->f = NULL;
    s->started = 0;
}

static int src_read_error(src *s) {
    return ap_error(AP_EIO, "file %s: read error: %s", s->path, strerror(errno));
}

/* Refills the input buffer if it is empty; 0 at the end of the file. */
static int src_refill(src *s, size_t *avail) {
    if (s->z.avail_in == 0) {
        size_t n = fread(s->in, 1, sizeof s->in, s->f);
        if (n == 0 && ferror(s->f)) return src_read_error(s);
        s->z.next_in = s->in;
        s->z.avail_in = (uInt)n;
    }
    *avail = s->z.avail_in;
    return AP_OK;
}

/* Inflates into buf[0..n); *got is what was produced (less than n only at the end). */
static int src_inflate(src *s, unsigned char *buf, size_t n, size_t *got) {
    s->z.next_out = buf;
    s->z.avail_out = (uInt)n;
    while (s->z.avail_out > 0) {
        size_t avail = 0;
        int rc = src_refill(s, &avail);
        if (rc != AP_OK) return rc;
        if (avail == 0) {
            s->cut = !s->ended; /* reported once the data read so far are counted */
            break;
        }
        if (s->ended) { /* bytes after a member: another member, or garbage */
            inflateReset(&s->z);
            s->ended = 0;
            s->tail = avail;
        }
        int r = inflate(&s->z, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            s->ended = 1;
            s->tail = 0;
        } else if (r == Z_MEM_ERROR) {
            return ap_error(AP_ENOMEM, "file %s: out of memory in zlib", s->path);
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            if (s->tail)
                return ap_error(AP_EFORMAT,
                                "file %s: trailing bytes after the end of the gzip stream are not "
                                "a gzip member (%s)",
                                s->path, s->z.msg ? s->z.msg : "?");
            return ap_error(AP_EFORMAT, "file %s: corrupt gzip data: %s", s->path,
                            s->z.msg ? s->z.msg : "?");
        }
        s->tail = 0;
    }
    *got = n - s->z.avail_out;
    return AP_OK;
}

/* Reads up to n bytes (less only at the end of the file); *got is what was read. */
static int src_fill(src *s, unsigned char *buf, size_t n, size_t *got) {
    *got = 0;
    if (s->gz) return src_inflate(s, buf, n, got);
    *got = fread(buf, 1, n, s->f);
    if (*got < n && ferror(s->f)) return src_read_error(s);
    return AP_OK;
}

/* Reads and checks the header; fills out->type, ndim, dims and count. */
static int read_header(src *gz, const char *path, ap_idx *out) {
    unsigned char h[4 + 4 * AP_IDX_MAX_DIMS];
    size_t got;
    int rc = src_fill(gz, h, 4, &got);
    if (rc != AP_OK) return rc;
    if (got < 4)
        return ap_error(AP_EFORMAT, "file %s: only %zu bytes, too short for an IDX header", path,
                        got);
    if (h[0] != 0 || h[1] != 0)
        return ap_error(AP_EFORMAT,
                        "file %s: bytes 0-1 are 0x%02x 0x%02x, expected 0x00 0x00 (not an IDX "
                        "file)",
                        path, h[0], h[1]);
    if (item_size(h[2]) == 0)
        return ap_error(AP_EFORMAT,
                        "file %s: byte 2: unknown type code 0x%02x (expected 0x08, 0x09, 0x0B, "
                        "0x0C, 0x0D or 0x0E)",
                        path, h[2]);
    if (h[3] < 1 || h[3] > AP_IDX_MAX_DIMS)
        return ap_error(AP_EFORMAT, "file %s: byte 3: %d dimensions, expected 1..%d", path, h[3],
                        AP_IDX_MAX_DIMS);
    out->type = h[2];
    out->ndim = h[3];
    size_t need = 4 * (size_t)out->ndim;
    if ((rc = src_fill(gz, h + 4, need, &got)) != AP_OK) return rc;
    if (got < need)
        return ap_error(AP_EFORMAT, "file %s: header truncated: expected %zu bytes, got %zu", path,
                        4 + need, 4 + got);
    size_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        size_t d = (size_t)be_u64(h + 4 + 4 * i, 4);
        if (d == 0)
            return ap_error(AP_EFORMAT, "file %s: byte %d: dimension %d is 0", path, 4 + 4 * i, i);
        if (count > SIZE_MAX / sizeof(double) / d)
            return ap_error(AP_EFORMAT, "file %s: byte %d: dimension %d (%zu) overflows the size",
                            path, 4 + 4 * i, i, d);
        count *= d;
        out->dims[i] = d;
    }
    out->count = count;
    return AP_OK;
}

/* The first allocation for x's data. Grown as data arrive, so a header claiming far more data
 * than the file holds gives a format error instead of a huge allocation; an uncompressed
 * regular file of the right size gets its exact allocation at once (MNIST's images are 376 MB
 * as doubles). */
static size_t first_capacity(const src *gz, const char *path, const ap_idx *x) {
    const size_t nbytes = x->count * (size_t)item_size(x->type);
    size_t hbytes = 4 + 4 * (size_t)x->ndim;
    struct stat st;
    if (!gz->gz && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        (size_t)st.st_size == hbytes + nbytes)
        return x->count;
    return x->count < IDX_CHUNK ? x->count : IDX_CHUNK;
}

/* Reads x->count items into x->data (capacity *cap, grown as needed) in chunks through buf. */
static int read_items(src *gz, const char *path, ap_idx *x, size_t *cap, unsigned char *buf) {
    const int isz = item_size(x->type);
    const size_t nbytes = x->count * (size_t)isz;
    size_t have = 0; /* items decoded */
    int rc;
    while (have < x->count) {
        size_t want = (x->count - have) * (size_t)isz;
        if (want > IDX_CHUNK) want = IDX_CHUNK;
        size_t got;
        if ((rc = src_fill(gz, buf, want, &got)) != AP_OK) return rc;
        size_t items = got / (size_t)isz;
        if (have + items > *cap) {
            size_t ncap = *cap * 2 < x->count ? *cap * 2 : x->count;
            double *p = realloc(x->data, ncap * sizeof(double));
            if (!p)
                return ap_error(AP_ENOMEM, "file %s: out of memory for %zu items", path, x->count);
            x->data = p;
            *cap = ncap;
        }
        decode_items(buf, x->data + have, items, x->type);
        have += items;
        if (got < want)
            return ap_error(AP_EFORMAT,
                            "file %s: expected %zu bytes of data after the header, got %zu (%s, "
                            "%zu items)",
                            path, nbytes, have * (size_t)isz + got % (size_t)isz,
                            ap_idx_type_name(x->type), x->count);
    }
    return AP_OK;
}

/* Nothing may follow the data, and a gzip stream must be complete. */
static int check_end(src *gz, const char *path, const ap_idx *x, unsigned char *buf) {
    size_t extra = 0, got;
    int rc;
    do {
        if ((rc = src_fill(gz, buf, IDX_CHUNK, &got)) != AP_OK) return rc;
        extra += got;
    } while (got == IDX_CHUNK);
    if (extra)
        return ap_error(AP_EFORMAT, "file %s: %zu trailing bytes after the %zu bytes of data", path,
                        extra, x->count * (size_t)item_size(x->type));
    if (gz->cut)
        return ap_error(AP_EFORMAT, "file %s: corrupt gzip data: the stream is cut short", path);
    return AP_OK;
}

/* Reads an opened file into x: header, data, end. */
static int idx_read_file(src *gz, const char *path, ap_idx *x) {
    int rc = read_header(gz, path, x);
    if (rc != AP_OK) return rc;
    size_t cap = first_capacity(gz, path, x);
    unsigned char *buf = malloc(IDX_CHUNK);
    x->data = malloc(cap * sizeof(double));
    if (!buf || !x->data)
        rc = ap_error(AP_ENOMEM, "file %s: out of memory", path);
    else if ((rc = read_items(gz, path, x, &cap, buf)) == AP_OK)
        rc = check_end(gz, path, x, buf);
    free(buf);
    return rc;
}

int ap_idx_read(const char *path, ap_idx *out) {
    if (!out) return ap_error(AP_EINVAL, "ap_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return ap_error(AP_EINVAL, "ap_idx_read: path is NULL");

    src *gz = malloc(sizeof *gz);
    if (!gz) return ap_error(AP_ENOMEM, "file %s: out of memory", path);
    int rc = src_open(gz, path);
    if (rc != AP_OK) {
        free(gz);
        return rc;
    }
    ap_idx x;
    memset(&x, 0, sizeof x);
    if ((rc = idx_read_file(gz, path, &x)) == AP_OK)
        *out = x;
    else
        ap_idx_free(&x);
    src_close(gz);
    free(gz);
    return rc;
}
