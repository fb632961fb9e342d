/* test_atomic.c — ap_atomic_open/commit/abort, and ap_csv_write which is built on them. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apical/csv.h"
#include "apical/error.h"
#include "apical/fileio.h"
#include "check.h"
#include "scratch.h"

/* The file's contents as a NUL-terminated string (static buffer), or NULL. */
static const char *slurp(const char *path) {
    static char buf[8192];
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void put(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    fputs(text, fp);
    fclose(fp);
}

/* ---- atomic files ---------------------------------------------------------------------- */

static void test_commit_creates_file(void) {
    const char *p = tpath("new.txt");
    ap_atomic_file f;
    CHECK_OK(ap_atomic_open(&f, p));
    CHECK(f.fp != NULL);
    CHECK(strncmp(f.tmp_path, p, strlen(p)) == 0);
    CHECK(strncmp(f.tmp_path + strlen(p), ".tmp.", 5) == 0);
    CHECK(path_exists(f.tmp_path));
    fprintf(f.fp, "hello %d\n", 42);
    CHECK(!path_exists(p)); /* nothing visible before the commit */
    CHECK_OK(ap_atomic_commit(&f));
    CHECK(f.fp == NULL && f.path == NULL && f.tmp_path == NULL);
    CHECK(path_exists(p));
    const char *s = slurp(p);
    CHECK(s && strcmp(s, "hello 42\n") == 0);
    CHECK(scratch_count(".tmp.") == 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644); /* umask 022 set in main */
    ap_atomic_abort(&f);                                     /* after commit: no-op */
    CHECK(path_exists(p));
    unlink(p);
}

static void test_overwrite_keeps_old_until_commit(void) {
    const char *p = tpath("old.txt");
    put(p, "old\n");
    chmod(p, 0600);
    ap_atomic_file f;
    CHECK_OK(ap_atomic_open(&f, p));
    fputs("new contents\n", f.fp);
    fflush(f.fp);
    const char *s = slurp(p);
    CHECK(s && strcmp(s, "old\n") == 0);
    CHECK_OK(ap_atomic_commit(&f));
    s = slurp(p);
    CHECK(s && strcmp(s, "new contents\n") == 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600); /* existing mode kept */
    CHECK(scratch_count(NULL) == 1);
    unlink(p);
}

static void test_abort_leaves_nothing(void) {
    const char *p = tpath("aborted.txt");
    ap_atomic_file f;
    CHECK_OK(ap_atomic_open(&f, p));
    fputs("partial", f.fp);
    CHECK(scratch_count(".tmp.") == 1);
    ap_atomic_abort(&f);
    CHECK(f.fp == NULL && f.tmp_path == NULL);
    CHECK(!path_exists(p));
    CHECK(scratch_count(NULL) == 0);
    ap_atomic_abort(&f); /* twice: no-op */
    ap_atomic_file z = {0};
    ap_atomic_abort(&z); /* zeroed: no-op */
    ap_atomic_abort(NULL);

    /* abort over an existing file keeps it */
    put(p, "keep\n");
    CHECK_OK(ap_atomic_open(&f, p));
    fputs("replacement", f.fp);
    ap_atomic_abort(&f);
    const char *s = slurp(p);
    CHECK(s && strcmp(s, "keep\n") == 0);
    CHECK(scratch_count(NULL) == 1);
    unlink(p);
}

static void test_open_errors(void) {
    ap_atomic_file f;
    CHECK_FAILS(ap_atomic_open(&f, tpath("no/such/dir/x.npy")), AP_EIO,
                "No such file or directory");
    CHECK(strstr(ap_last_error(), "no/such/dir/x.npy") != NULL);
    CHECK(f.fp == NULL && f.path == NULL);
    ap_atomic_abort(&f);
    CHECK_FAILS(ap_atomic_open(&f, NULL), AP_EINVAL, "empty file name");
    CHECK_FAILS(ap_atomic_open(&f, ""), AP_EINVAL, "empty file name");
    CHECK_FAILS(ap_atomic_open(NULL, "x"), AP_EINVAL, "NULL");
    CHECK_FAILS(ap_atomic_commit(&f), AP_EINVAL, "not open");
    CHECK(scratch_count(NULL) == 0);
}

/* rename() over a directory fails: the commit reports it and removes the temporary file. */
static void test_commit_failure_cleans_up(void) {
    const char *p = tpath("adir");
    CHECK(mkdir(p, 0755) == 0);
    ap_atomic_file f;
    CHECK_OK(ap_atomic_open(&f, p));
    fputs("data", f.fp);
    CHECK_FAILS(ap_atomic_commit(&f), AP_EIO, "rename");
    CHECK(strstr(ap_last_error(), "adir") != NULL);
    CHECK(f.fp == NULL && f.tmp_path == NULL);
    CHECK(scratch_count(".tmp.") == 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    rmdir(p);
}

/* ---- CSV ------------------------------------------------------------------------------- */

static void test_csv_write(void) {
    const char *p = tpath("t.csv");
    const char *names[] = {"t", "h1.rate[0]", "y"};
    const double data[] = {0.0, 0.1, -2.5, 1.0, 1.0 / 3.0, 1e-300};
    CHECK_OK(ap_csv_write(p, names, 3, data, 2));
    const char *s = slurp(p);
    CHECK(s && strcmp(s, "t,h1.rate[0],y\n"
                         "0,0.10000000000000001,-2.5\n"
                         "1,0.33333333333333331,1e-300\n") == 0);
    /* every value reads back exactly */
    FILE *fp = fopen(p, "r");
    char line[256];
    CHECK(fgets(line, sizeof line, fp) != NULL);
    for (int r = 0; r < 2; r++) {
        CHECK(fgets(line, sizeof line, fp) != NULL);
        char *q = line;
        for (int c = 0; c < 3; c++) {
            char *end;
            double v = strtod(q, &end);
            CHECK(v == data[r * 3 + c]);
            q = end + 1;
        }
    }
    fclose(fp);
    CHECK(scratch_count(NULL) == 1);
    unlink(p);
}

static void test_csv_quoting_and_empty(void) {
    const char *p = tpath("q.csv");
    const char *names[] = {"a,b", "say \"hi\"", "plain"};
    CHECK_OK(ap_csv_write(p, names, 3, NULL, 0));
    const char *s = slurp(p);
    CHECK(s && strcmp(s, "\"a,b\",\"say \"\"hi\"\"\",plain\n") == 0);
    const double nf[] = {NAN, INFINITY, -INFINITY};
    CHECK_OK(ap_csv_write(p, names, 3, nf, 1));
    s = slurp(p);
    CHECK(s && strstr(s, "\nnan,inf,-inf\n") != NULL);
    unlink(p);
}

static void test_csv_errors_leave_no_file(void) {
    const char *names[] = {"a", NULL};
    const double v[] = {1, 2};
    CHECK_FAILS(ap_csv_write(tpath("e.csv"), names, 2, v, 1), AP_EINVAL, "column name 1 is NULL");
    CHECK_FAILS(ap_csv_write(tpath("e.csv"), names, 0, v, 1), AP_EINVAL, "ncols = 0");
    CHECK_FAILS(ap_csv_write(tpath("e.csv"), NULL, 1, v, 1), AP_EINVAL, "colnames is NULL");
    CHECK_FAILS(ap_csv_write(tpath("e.csv"), names, 1, NULL, 1), AP_EINVAL, "data is NULL");
    CHECK_FAILS(ap_csv_write(tpath("missing/e.csv"), names, 1, v, 2), AP_EIO, "missing/e.csv");
    CHECK(scratch_count(NULL) == 0);
}

int main(void) {
    umask(022);
    if (scratch_open("atomic")) return 1;
    RUN(test_commit_creates_file);
    RUN(test_overwrite_keeps_old_until_commit);
    RUN(test_abort_leaves_nothing);
    RUN(test_open_errors);
    RUN(test_commit_failure_cleans_up);
    RUN(test_csv_write);
    RUN(test_csv_quoting_and_empty);
    RUN(test_csv_errors_leave_no_file);
    if (scratch_close()) return 1;
    return CHECK_DONE();
}
