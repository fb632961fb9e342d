/* test_idx.c — IDX reading: every element type, raw and gzip files written here, chunked
 * reads, and every validation error with its code and message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "apical/error.h"
#include "apical/idx.h"
#include "check.h"
#include "scratch.h"

/* Writes bytes a then b, raw or through zlib's gzip writer. */
static void put(const char *path, int gz, const void *a, size_t na, const void *b, size_t nb) {
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (na) gzwrite(g, a, (unsigned)na);
        if (nb) gzwrite(g, b, (unsigned)nb);
        gzclose(g);
    } else {
        FILE *fp = fopen(path, "wb");
        if (na) fwrite(a, 1, na, fp);
        if (nb) fwrite(b, 1, nb, fp);
        fclose(fp);
    }
}

/* An IDX header for type/ndim/dims into h; returns its length. */
static size_t header(unsigned char *h, int type, int ndim, const uint32_t *dims) {
    h[0] = h[1] = 0;
    h[2] = (unsigned char)type;
    h[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int b = 0; b < 4; b++)
            h[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    return 4 + 4 * (size_t)ndim;
}

static void be(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

/* Writes an IDX file whose data is `nbytes` of `data`. */
static void put_idx(const char *path, int gz, int type, int ndim, const uint32_t *dims,
                    const void *data, size_t nbytes) {
    unsigned char h[64];
    size_t nh = header(h, type, ndim, dims);
    put(path, gz, h, nh, data, nbytes);
}

/* ---- every element type, raw and gzip --------------------------------------------------- */

static void test_types(void) {
    unsigned char d[64];
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = tpath(gz ? "t.idx.gz" : "t.idx");
        ap_idx x;

        /* u8, 3-d like MNIST images */
        const uint32_t d3[] = {2, 2, 3};
        for (int i = 0; i < 12; i++)
            d[i] = (unsigned char)(i * 20 + 15);
        put_idx(p, gz, AP_IDX_U8, 3, d3, d, 12);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.type == AP_IDX_U8 && x.ndim == 3 && x.count == 12);
        CHECK(x.dims[0] == 2 && x.dims[1] == 2 && x.dims[2] == 3);
        for (int i = 0; i < 12 && x.data; i++)
            CHECK(x.data[i] == i * 20 + 15);
        ap_idx_free(&x);
        CHECK(x.data == NULL && x.count == 0);
        ap_idx_free(&x);

        const uint32_t d1[] = {3};
        /* i8 */
        d[0] = 0x80;
        d[1] = 0xff;
        d[2] = 0x7f;
        put_idx(p, gz, AP_IDX_I8, 1, d1, d, 3);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.count == 3 && x.data && x.data[0] == -128 && x.data[1] == -1 && x.data[2] == 127);
        ap_idx_free(&x);
        /* i16, big-endian */
        be(d, 0x8000, 2);
        be(d + 2, 0x0102, 2);
        be(d + 4, 0xffff, 2);
        put_idx(p, gz, AP_IDX_I16, 1, d1, d, 6);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.data && x.data[0] == -32768 && x.data[1] == 258 && x.data[2] == -1);
        ap_idx_free(&x);
        /* i32 */
        be(d, 0x80000000u, 4);
        be(d + 4, 0x01020304u, 4);
        be(d + 8, 0xfffffffeu, 4);
        put_idx(p, gz, AP_IDX_I32, 1, d1, d, 12);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.data && x.data[0] == -2147483648.0 && x.data[1] == 16909060 && x.data[2] == -2);
        ap_idx_free(&x);
        /* f32 */
        const float f[] = {1.5f, -0.1f, 3e38f};
        for (int i = 0; i < 3; i++) {
            uint32_t u;
            memcpy(&u, &f[i], 4);
            be(d + 4 * i, u, 4);
        }
        put_idx(p, gz, AP_IDX_F32, 1, d1, d, 12);
        CHECK_OK(ap_idx_read(p, &x));
        for (int i = 0; i < 3 && x.data; i++)
            CHECK(x.data[i] == (double)f[i]);
        ap_idx_free(&x);
        /* f64 */
        const double g[] = {0.1, -1e-300, 12345.678};
        for (int i = 0; i < 3; i++) {
            uint64_t u;
            memcpy(&u, &g[i], 8);
            be(d + 8 * i, u, 8);
        }
        put_idx(p, gz, AP_IDX_F64, 1, d1, d, 24);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.type == AP_IDX_F64);
        for (int i = 0; i < 3 && x.data; i++)
            CHECK(x.data[i] == g[i]);
        ap_idx_free(&x);
        unlink(p);
    }
    CHECK(strcmp(ap_idx_type_name(AP_IDX_I16), "i16") == 0);
    CHECK(strcmp(ap_idx_type_name(0x42), "unknown") == 0);
}

/* More data than one read chunk and than the first allocation. */
static void test_large(void) {
    const uint32_t dims[] = {1000, 28, 28};
    size_t n = 1000 * 28 * 28;
    unsigned char *d = malloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)(i * 7 % 251);
    const uint32_t d1[] = {40000};
    unsigned char *g = malloc(8 * 40000);
    for (size_t i = 0; i < 40000; i++) {
        double v = (double)i / 3.0;
        uint64_t u;
        memcpy(&u, &v, 8);
        be(g + 8 * i, u, 8);
    }
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = tpath("large.idx");
        ap_idx x;
        put_idx(p, gz, AP_IDX_U8, 3, dims, d, n);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.count == n);
        int bad = 0;
        for (size_t i = 0; i < n && x.data; i++)
            bad += x.data[i] != (double)(i * 7 % 251);
        CHECK(bad == 0);
        ap_idx_free(&x);

        put_idx(p, gz, AP_IDX_F64, 1, d1, g, 8 * 40000);
        CHECK_OK(ap_idx_read(p, &x));
        CHECK(x.count == 40000);
        bad = 0;
        for (size_t i = 0; i < 40000 && x.data; i++)
            bad += x.data[i] != (double)i / 3.0;
        CHECK(bad == 0);
        ap_idx_free(&x);
        unlink(p);
    }
    free(d);
    free(g);
}

/* ---- validation --------------------------------------------------------------------------- */

static void test_header_errors(void) {
    unsigned char h[64], z[64] = {0};
    const uint32_t dims[] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
    ap_idx x;
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = tpath("h.idx");
        size_t nh = header(h, AP_IDX_U8, 1, dims);
        h[1] = 0x01;
        put(p, gz, h, nh, z, 2);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "bytes 0-1 are 0x00 0x01, expected 0x00 0x00");
        CHECK(strstr(ap_last_error(), "h.idx") != NULL);
        CHECK(x.data == NULL && x.count == 0);

        nh = header(h, 0x0A, 1, dims);
        put(p, gz, h, nh, z, 2);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "byte 2: unknown type code 0x0a");

        nh = header(h, AP_IDX_U8, 0, dims);
        put(p, gz, h, nh, z, 2);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "byte 3: 0 dimensions, expected 1..8");

        nh = header(h, AP_IDX_U8, 9, dims);
        put(p, gz, h, nh, z, 2);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "byte 3: 9 dimensions");

        const uint32_t zero[] = {2, 0, 3};
        nh = header(h, AP_IDX_U8, 3, zero);
        put(p, gz, h, nh, z, 0);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "byte 8: dimension 1 is 0");

        nh = header(h, AP_IDX_U8, 3, dims);
        put(p, gz, h, 10, NULL, 0); /* cut inside the third dimension */
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "header truncated: expected 16 bytes, got 10");

        put(p, gz, h, 3, NULL, 0);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "only 3 bytes");
        put(p, gz, NULL, 0, NULL, 0);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "only 0 bytes");

        const uint32_t huge[] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
        nh = header(h, AP_IDX_F64, 3, huge);
        put(p, gz, h, nh, z, 8);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "overflows");
        unlink(p);
    }
}

static void test_data_errors(void) {
    const uint32_t dims[] = {2, 3};
    unsigned char d[64] = {0};
    ap_idx x;
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = tpath("d.idx");
        put_idx(p, gz, AP_IDX_I32, 2, dims, d, 20);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT,
                    "d.idx: expected 24 bytes of data after the header, got 20");
        CHECK(x.data == NULL);
        put_idx(p, gz, AP_IDX_I32, 2, dims, d, 23); /* a partial item counts */
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "got 23");
        put_idx(p, gz, AP_IDX_I32, 2, dims, d, 28);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "d.idx: 4 trailing bytes");
        put_idx(p, gz, AP_IDX_U8, 2, dims, d, 0);
        CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT,
                    "expected 6 bytes of data after the header, got 0");
        unlink(p);
    }
    /* a header claiming ~4 GB of data over a small file fails cleanly, without a huge malloc */
    const uint32_t big[] = {0xffffffffu};
    put_idx(tpath("big.idx"), 0, AP_IDX_U8, 1, big, d, 64);
    CHECK_FAILS(ap_idx_read(tpath("big.idx"), &x), AP_EFORMAT, "got 64");
    unlink(tpath("big.idx"));
}

/* Corrupt compressed streams: a wrong CRC, a stream cut before its trailer, bytes after the
 * stream; several members in a row are fine. */
static void test_gzip_errors(void) {
    const uint32_t dims[] = {100};
    unsigned char d[100];
    for (int i = 0; i < 100; i++)
        d[i] = (unsigned char)i;
    const char *p = tpath("c.idx.gz");
    put_idx(p, 1, AP_IDX_U8, 1, dims, d, 100);
    FILE *fp = fopen(p, "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    ap_idx x;

    buf[n - 8] ^= 0xff; /* CRC32 in the trailer */
    put(p, 0, buf, n, NULL, 0);
    CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "corrupt gzip data");
    buf[n - 8] ^= 0xff;

    put(p, 0, buf, n - 8, NULL, 0); /* all data present, trailer missing */
    CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "corrupt gzip data");

    put(p, 0, buf, n / 2, NULL, 0); /* cut in the middle of the data */
    CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "expected 100 bytes of data after the header");

    /* bytes after the gzip stream that are not another gzip member (gzread ignored them) */
    put(p, 0, buf, n, "garbage", 7);
    CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "trailing bytes after the end of the gzip stream");
    const unsigned char zeros[600] = {0};
    put(p, 0, buf, n, zeros, sizeof zeros);
    CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "trailing bytes after the end of the gzip stream");
    put(p, 0, buf, n, "\x1f", 1); /* half a gzip magic number */
    CHECK_FAILS(ap_idx_read(p, &x), AP_EFORMAT, "corrupt gzip data");

    put(p, 0, buf, n, NULL, 0); /* intact again */
    CHECK_OK(ap_idx_read(p, &x));
    CHECK(x.count == 100 && x.data && x.data[99] == 99);
    ap_idx_free(&x);

    /* two gzip members one after the other (as `cat a.gz b.gz` makes) are one valid stream */
    unsigned char h[8];
    size_t nh = header(h, AP_IDX_U8, 1, dims);
    const char *p1 = tpath("m1.gz"), *p2 = tpath("m2.gz");
    put(p1, 1, h, nh, d, 40);
    put(p2, 1, d + 40, 60, NULL, 0);
    unsigned char both[1024];
    size_t nb = 0;
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(k ? p2 : p1, "rb");
        nb += fread(both + nb, 1, sizeof both - nb, f);
        fclose(f);
    }
    put(p, 0, both, nb, NULL, 0);
    CHECK_OK(ap_idx_read(p, &x));
    CHECK(x.count == 100 && x.data && x.data[39] == 39 && x.data[40] == 40 && x.data[99] == 99);
    ap_idx_free(&x);
    unlink(p1);
    unlink(p2);
    unlink(p);
}

static void test_io_errors(void) {
    ap_idx x;
    CHECK_FAILS(ap_idx_read(tpath("absent.idx"), &x), AP_EIO, "No such file or directory");
    CHECK(strstr(ap_last_error(), "absent.idx") != NULL);
    CHECK_FAILS(ap_idx_read(scratch, &x), AP_EIO, "Is a directory");
    CHECK_FAILS(ap_idx_read(NULL, &x), AP_EINVAL, "NULL");
    CHECK_FAILS(ap_idx_read("x", NULL), AP_EINVAL, "NULL");
}

int main(void) {
    if (scratch_open("idx")) return 1;
    RUN(test_types);
    RUN(test_large);
    RUN(test_header_errors);
    RUN(test_data_errors);
    RUN(test_gzip_errors);
    RUN(test_io_errors);
    if (scratch_close()) return 1;
    return CHECK_DONE();
}
