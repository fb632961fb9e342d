/* test_npy.c — .npy round trips, hand-written headers of every accepted dtype and version,
 * every header/data error, a numpy-written file, and writes that must leave no file. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apical/error.h"
#include "apical/npy.h"
#include "check.h"
#include "scratch.h"

/* ---- file helpers (the scratch directory: scratch.h) ---------------------------------- */

/* Whole file into a malloc'd buffer; *n = its size. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    *n = 0;
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, fp);
    fclose(fp);
    return b;
}

static void put_bytes(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *fp = fopen(path, "wb");
    if (na) fwrite(a, 1, na, fp);
    if (nb) fwrite(b, 1, nb, fp);
    fclose(fp);
}

/* A .npy file with the given version and dict text, padded as numpy pads (to 64 bytes, '\n'
 * last), followed by nbytes of data. */
static void put_npy(const char *path, int major, const char *dict, const void *data,
                    size_t nbytes) {
    unsigned char hdr[1024];
    size_t pre = major == 1 ? 10 : 12;
    size_t len = strlen(dict);
    size_t total = pre + len + 1;
    size_t pad = (64 - total % 64) % 64;
    memcpy(hdr, "\x93NUMPY", 6);
    hdr[6] = (unsigned char)major;
    hdr[7] = 0;
    size_t hlen = len + pad + 1;
    for (size_t i = 0; i < pre - 8; i++)
        hdr[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(hdr + pre, dict, len);
    memset(hdr + pre + len, ' ', pad);
    hdr[pre + len + pad] = '\n';
    put_bytes(path, hdr, pre + hlen, data, nbytes);
}

/* Little-endian item encoders for hand-written data. */
static void le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- round trips ---------------------------------------------------------------------- */

static void roundtrip(int ndim, const size_t *shape) {
    size_t size = 1;
    for (int i = 0; i < ndim; i++)
        size *= shape[i];
    double *v = malloc((size ? size : 1) * sizeof(double));
    const double special[] = {0.0, -0.0, 1.0 / 3.0, -1e308, 4.9e-324, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < size; i++)
        v[i] = i < 8 ? special[i] : (double)i * 0.5 - 7.25;
    const char *p = tpath("rt.npy");
    CHECK_OK(ap_npy_write(p, v, ndim, shape));

    /* the header: v1.0, data 64-byte aligned, header ends with '\n' */
    size_t n;
    unsigned char *b = slurp(p, &n);
    CHECK(b && n >= 10);
    size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
    CHECK(b[6] == 1 && b[7] == 0);
    CHECK((10 + hlen) % 64 == 0);
    CHECK(b[10 + hlen - 1] == '\n');
    CHECK(n == 10 + hlen + 8 * size);
    free(b);

    ap_array a;
    CHECK_OK(ap_npy_read(p, &a));
    CHECK(a.ndim == ndim);
    CHECK(a.size == size);
    CHECK(a.data != NULL);
    for (int i = 0; i < ndim; i++)
        CHECK(a.shape[i] == shape[i]);
    for (size_t i = 0; i < size && i < a.size; i++)
        CHECK(same_bits(a.data[i], v[i]));
    ap_array_free(&a);
    CHECK(a.data == NULL && a.size == 0);
    ap_array_free(&a);
    free(v);
    unlink(p);
}

static void test_roundtrip_shapes(void) {
    const size_t s1[] = {5}, s2[] = {3, 4}, s3[] = {2, 3, 4}, s0[] = {0, 3},
                 s8[] = {1, 2, 1, 2, 1, 2, 1, 3}, big[] = {5000, 3};
    roundtrip(0, NULL);
    roundtrip(1, s1);
    roundtrip(2, s2);
    roundtrip(3, s3);
    roundtrip(2, s0);
    roundtrip(8, s8);
    roundtrip(2, big); /* more than one write/read chunk */
    CHECK(scratch_count(NULL) == 0);
}

/* Our writer produces numpy's bytes exactly (the checked-in file below was made that way). */
static void test_python_file(void) {
    const char *dir = getenv("APICAL_TEST_DATA");
    CHECK(dir != NULL);
    if (!dir) return;
    char py[1024];
    snprintf(py, sizeof py, "%s/py_f8_2x3.npy", dir);
    ap_array a;
    CHECK_OK(ap_npy_read(py, &a));
    const double want[] = {0.5, -1.25, 3.0, 1e-300, 2.5e10, -0.0};
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.size == 6);
    for (size_t i = 0; i < 6 && i < a.size; i++)
        CHECK(same_bits(a.data[i], want[i]));

    const size_t shape[] = {2, 3};
    const char *p = tpath("ours.npy");
    CHECK_OK(ap_npy_write(p, want, 2, shape));
    size_t n1, n2;
    unsigned char *b1 = slurp(py, &n1), *b2 = slurp(p, &n2);
    CHECK(b1 && b2 && n1 == 176 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    ap_array_free(&a);
    unlink(p);
}

static void test_overwrite(void) {
    const char *p = tpath("ow.npy");
    const double a[] = {1, 2, 3}, b[] = {9};
    const size_t s3[] = {3}, s1[] = {1};
    CHECK_OK(ap_npy_write(p, a, 1, s3));
    CHECK_OK(ap_npy_write(p, b, 1, s1));
    ap_array r;
    CHECK_OK(ap_npy_read(p, &r));
    CHECK(r.size == 1 && r.data[0] == 9);
    ap_array_free(&r);
    /* a failed write keeps the old file */
    CHECK_FAILS(ap_npy_write(p, NULL, 1, s3), AP_EINVAL, "data is NULL");
    CHECK_OK(ap_npy_read(p, &r));
    CHECK(r.size == 1 && r.data[0] == 9);
    ap_array_free(&r);
    unlink(p);
    CHECK(scratch_count(NULL) == 0);
}

/* ---- hand-written headers: dtypes, versions, spellings ------------------------------- */

static void test_dtypes(void) {
    const char *p = tpath("dt.npy");
    unsigned char d[64];
    ap_array a;

    /* <f4, 2x2 */
    const float f[] = {1.5f, -2.0f, 3.25f, 1e-3f};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        le(d + 4 * i, u, 4);
    }
    put_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", d, 16);
    CHECK_OK(ap_npy_read(p, &a));
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 2);
    for (int i = 0; i < 4 && a.data; i++)
        CHECK(a.data[i] == (double)f[i]);
    ap_array_free(&a);

    /* <i8 with negatives and 2^53 */
    const int64_t i8[] = {-1, 7, INT64_C(9007199254740992), INT64_MIN};
    for (int i = 0; i < 4; i++)
        le(d + 8 * i, (uint64_t)i8[i], 8);
    put_npy(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", d, 32);
    CHECK_OK(ap_npy_read(p, &a));
    CHECK(a.ndim == 1 && a.size == 4);
    for (int i = 0; i < 4 && a.data; i++)
        CHECK(a.data[i] == (double)i8[i]);
    ap_array_free(&a);

    /* the small integer types and bool, each with a negative / maximal value */
    struct {
        const char *descr;
        int size;
        uint64_t raw;
        double want;
    } cases[] = {
        {"<i4", 4, 0xfffffffeu, -2}, {"<u4", 4, 0xfffffffeu, 4294967294.0},
        {"<i2", 2, 0x8000u, -32768}, {"<u2", 2, 0xffffu, 65535},
        {"|i1", 1, 0x80u, -128},     {"|u1", 1, 0xffu, 255},
        {"|b1", 1, 0x01u, 1},        {"<u8", 8, UINT64_MAX, 18446744073709551615.0},
        {">u1", 1, 0x07u, 7}, /* byte order is irrelevant for one-byte types */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }",
                 cases[c].descr);
        le(d, 1, cases[c].size);
        le(d + cases[c].size, cases[c].raw, cases[c].size);
        put_npy(p, 1, dict, d, 2 * (size_t)cases[c].size);
        CHECK_OK(ap_npy_read(p, &a));
        CHECK(a.size == 2);
        if (a.size == 2) {
            CHECK(a.data[0] == 1);
            CHECK(a.data[1] == cases[c].want);
        }
        if (a.size != 2 || a.data[1] != cases[c].want)
            fprintf(stderr, "  dtype %s\n", cases[c].descr);
        ap_array_free(&a);
    }
    unlink(p);
}

static void test_versions_and_spellings(void) {
    const char *p = tpath("sp.npy");
    unsigned char d[24];
    for (int i = 0; i < 3; i++) {
        double v = i + 0.5;
        uint64_t u;
        memcpy(&u, &v, 8);
        le(d + 8 * i, u, 8);
    }
    const char *dicts[] = {
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        "{\"shape\": (3,), \"descr\": \"<f8\", \"fortran_order\": False}", /* order, quotes */
        "{ 'descr' : '<f8' , 'fortran_order' : False , 'shape' : ( 3 , ) }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3L,), }", /* Python 2 */
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3), }",
    };
    for (int major = 1; major <= 3; major++) {
        for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
            put_npy(p, major, dicts[k], d, sizeof d);
            ap_array a;
            int rc = ap_npy_read(p, &a);
            CHECK_OK(rc);
            if (rc) fprintf(stderr, "  version %d, header %s\n", major, dicts[k]);
            CHECK(a.size == 3 && a.data && a.data[2] == 2.5);
            ap_array_free(&a);
        }
    }
    /* a scalar */
    put_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", d, 8);
    ap_array a;
    CHECK_OK(ap_npy_read(p, &a));
    CHECK(a.ndim == 0 && a.size == 1 && a.data && a.data[0] == 0.5);
    ap_array_free(&a);
    unlink(p);
}

/* ---- errors --------------------------------------------------------------------------- */

/* Writes `dict` (+ nbytes of zero data) and expects the read to fail with code and needle. */
#define CHECK_HEADER_FAILS(dict, nbytes, code, needle)                                             \
    do {                                                                                           \
        static const unsigned char zeros_[256];                                                    \
        put_npy(tpath("bad.npy"), 1, (dict), zeros_, (nbytes));                                    \
        ap_array a_;                                                                               \
        CHECK_FAILS(ap_npy_read(tpath("bad.npy"), &a_), (code), (needle));                         \
        CHECK(a_.data == NULL && a_.size == 0);                                                    \
        CHECK(strstr(ap_last_error(), "bad.npy") != NULL);                                         \
    } while (0)

static void test_header_errors(void) {
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", 48, AP_EFORMAT,
                       "byte 44: fortran_order is True");
    CHECK_HEADER_FAILS("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }", 48,
                       AP_EFORMAT, "byte 20: big-endian dtype '>f8'");
    CHECK_HEADER_FAILS("{'descr': '|f8', 'fortran_order': False, 'shape': (2,), }", 16, AP_EFORMAT,
                       "does not state its byte order");
    CHECK_HEADER_FAILS("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", 32, AP_EFORMAT,
                       "unsupported dtype '<c16'");
    CHECK_HEADER_FAILS("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 24, AP_EFORMAT,
                       "unsupported dtype '<U3'");
    CHECK_HEADER_FAILS("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", 16,
                       AP_EFORMAT, "structured");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, }", 8, AP_EFORMAT,
                       "lacks the key 'shape'");
    CHECK_HEADER_FAILS("{'fortran_order': False, 'shape': (2,), }", 16, AP_EFORMAT,
                       "lacks the key 'descr'");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}",
                       16, AP_EFORMAT, "duplicate key");
    /* the unknown key sits at file byte 10 + 41 */
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shap': (2,), }", 16, AP_EFORMAT,
                       "byte 51: header: unknown key");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (2), }", 16, AP_EFORMAT,
                       "1-tuple");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': [2], }", 16, AP_EFORMAT,
                       "shape must be a tuple");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", 16, AP_EFORMAT,
                       "expected a dimension");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,), }", 16, AP_EFORMAT,
                       "True or False");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
                       8, AP_EFORMAT, "more than 8 dimensions");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), } x", 16,
                       AP_EFORMAT, "unexpected text after the dictionary");
    CHECK_HEADER_FAILS("{'descr': '<f8' 'fortran_order': False, 'shape': (2,), }", 16, AP_EFORMAT,
                       "expected ',' or '}'");
    CHECK_HEADER_FAILS("{'descr: '<f8', 'fortran_order': False, 'shape': (2,), }", 16, AP_EFORMAT,
                       "header");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, "
                       "4294967296, 4294967296), }",
                       0, AP_EFORMAT, "is too large");
    /* no element, but a dimension that is no size: refused (it loaded, and Lua showed -1) */
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, "
                       "0), }",
                       0, AP_EFORMAT, "shape (18446744073709551615, 0) is too large");
    CHECK_HEADER_FAILS("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4294967296, "
                       "4294967296), }",
                       0, AP_EFORMAT, "is too large");
    CHECK(scratch_count(NULL) == 1);
    unlink(tpath("bad.npy"));
}

static void test_file_errors(void) {
    const char *p = tpath("f.npy");
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
    unsigned char d[64] = {0};
    ap_array a;

    put_npy(p, 1, dict, d, 40); /* 5 of 6 doubles */
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "expected 48 bytes of data after the header");
    CHECK(strstr(ap_last_error(), "got 40") != NULL);
    CHECK(strstr(ap_last_error(), "f.npy") != NULL);

    put_npy(p, 1, dict, d, 52);
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "4 trailing bytes");

    put_bytes(p, "\x93NUMPZ\x01\x00\x10\x00", 10, d, 16);
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "bad magic");
    put_bytes(p, "PK\x03\x04", 4, NULL, 0); /* an .npz is a zip file */
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "too short");
    put_bytes(p, "\x93NUMPY\x04\x00\x10\x00", 10, d, 16);
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "version 4.0");
    put_bytes(p, "\x93NUMPY\x01\x00\x40\x00{'descr'", 17, NULL, 0);
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "header truncated: expected 64 bytes, got 7");
    put_bytes(p, "\x93NUMPY\x02\x00\x00\x00\x00\x40", 12, NULL, 0);
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "exceeds the limit");
    put_bytes(p, "\x93NUMPY\x01\x00\x10", 9, NULL, 0);
    CHECK_FAILS(ap_npy_read(p, &a), AP_EFORMAT, "header length truncated");
    unlink(p);

    CHECK_FAILS(ap_npy_read(tpath("absent.npy"), &a), AP_EIO, "No such file or directory");
    CHECK(strstr(ap_last_error(), "absent.npy") != NULL);
    CHECK_FAILS(ap_npy_read(scratch, &a), AP_EIO, "Is a directory");
    CHECK_FAILS(ap_npy_read(NULL, &a), AP_EINVAL, "NULL");
    CHECK(scratch_count(NULL) == 0);
}

/* A pipe has no size to check up front: truncation and trailing bytes are found while reading. */
static void test_stream_errors(void) {
    const char *p = tpath("fifo.npy");
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
    const char *staged = tpath("staged.npy");
    unsigned char d[64] = {0};
    struct {
        size_t nbytes;
        int code;
        const char *needle;
    } cases[] = {{48, AP_OK, ""},
                 {44, AP_EFORMAT, "expected 48 bytes of data after the header"},
                 {56, AP_EFORMAT, "8 trailing bytes"}};
    CHECK(mkfifo(p, 0600) == 0);
    for (int c = 0; c < 3; c++) {
        put_npy(staged, 1, dict, d, cases[c].nbytes);
        size_t n;
        unsigned char *b = slurp(staged, &n);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            FILE *fp = fopen(p, "wb");
            if (fp) {
                fwrite(b, 1, n, fp);
                fclose(fp);
            }
            _exit(0);
        }
        ap_array a;
        int rc = ap_npy_read(p, &a);
        CHECK(rc == cases[c].code);
        CHECK(strstr(ap_last_error(), cases[c].needle) != NULL);
        if (rc == AP_OK) CHECK(a.size == 6);
        ap_array_free(&a);
        waitpid(pid, NULL, 0);
        free(b);
    }
    unlink(staged);
    unlink(p);
}

static void test_write_errors_leave_no_file(void) {
    const double v[] = {1, 2, 3};
    const size_t s[] = {3, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_FAILS(ap_npy_write(tpath("no/dir/x.npy"), v, 1, s), AP_EIO, "No such file or directory");
    CHECK_FAILS(ap_npy_write(tpath("x.npy"), v, 9, s), AP_EINVAL, "ndim = 9");
    CHECK_FAILS(ap_npy_write(tpath("x.npy"), v, -1, s), AP_EINVAL, "ndim = -1");
    CHECK_FAILS(ap_npy_write(tpath("x.npy"), v, 1, NULL), AP_EINVAL, "shape is NULL");
    const size_t huge[] = {SIZE_MAX / 4, 4};
    CHECK_FAILS(ap_npy_write(tpath("x.npy"), v, 2, huge), AP_EINVAL, "overflows");
    CHECK(scratch_count(NULL) == 0);
    /* zero-size arrays need no data */
    const size_t empty[] = {0};
    CHECK_OK(ap_npy_write(tpath("x.npy"), NULL, 1, empty));
    CHECK(path_exists(tpath("x.npy")));
    unlink(tpath("x.npy"));
}

int main(void) {
    if (scratch_open("npy")) return 1;
    RUN(test_roundtrip_shapes);
    RUN(test_python_file);
    RUN(test_overwrite);
    RUN(test_dtypes);
    RUN(test_versions_and_spellings);
    RUN(test_header_errors);
    RUN(test_file_errors);
    RUN(test_stream_errors);
    RUN(test_write_errors_leave_no_file);
    if (scratch_close()) return 1;
    return CHECK_DONE();
}
