/* test_dirutil.c — apical/dirutil.h: CRC-32 of files (the standard check value, and one flipped
 * byte), mkdir with and without parents, rm -r, directory fsync, and the directory lock (a
 * second lock refused naming the holder's pid, in this process and in a child). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apical/dirutil.h"
#include "apical/error.h"
#include "check.h"
#include "scratch.h"

static void write_file(const char *path, const char *text, size_t n) {
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    CHECK(fwrite(text, 1, n, fp) == n);
    fclose(fp);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_crc32(void) {
    uint32_t crc = 0;
    uint64_t size = 0;
    write_file(tpath("c.txt"), "123456789", 9);
    CHECK_OK(ap_file_crc32(tpath("c.txt"), &crc, &size));
    CHECK(crc == 0xCBF43926u); /* CRC-32's check value */
    CHECK(size == 9);
    write_file(tpath("c.txt"), "123456788", 9);
    CHECK_OK(ap_file_crc32(tpath("c.txt"), &crc, NULL));
    CHECK(crc != 0xCBF43926u);
    write_file(tpath("c.txt"), "", 0);
    CHECK_OK(ap_file_crc32(tpath("c.txt"), &crc, &size));
    CHECK(crc == 0 && size == 0);
    CHECK_FAILS(ap_file_crc32(tpath("none"), &crc, &size), AP_EIO, "none: cannot open");
    CHECK(remove(tpath("c.txt")) == 0);
}

static void test_dirs(void) {
    CHECK_OK(ap_make_dir(tpath("a"), 0));
    CHECK_FAILS(ap_make_dir(tpath("a"), 0), AP_EDUP, "/a: exists already");
    CHECK_OK(ap_make_dir(tpath("a"), 1));
    CHECK_OK(ap_make_dir(tpath("a/b/c/d"), 1));
    CHECK(is_dir(tpath("a/b/c/d")));
    CHECK_FAILS(ap_make_dir(tpath("x/y"), 0), AP_EIO, "x/y: cannot create");
    write_file(tpath("a/b/f"), "x", 1);
    write_file(tpath("a/b/c/g"), "y", 1);
    CHECK(symlink("..", tpath("a/b/c/up")) == 0); /* removed, not followed */
    CHECK_FAILS(ap_make_dir(tpath("a/b/f/z"), 1), AP_EIO, "a/b/f");
    CHECK_OK(ap_sync_dir(tpath("a/b")));
    CHECK_FAILS(ap_sync_dir(tpath("a/b/f")), AP_EIO, "a/b/f: cannot open");
    CHECK_OK(ap_remove_tree(tpath("a")));
    CHECK(!is_dir(tpath("a")));
    CHECK(is_dir(scratch));
    CHECK_OK(ap_remove_tree(tpath("a"))); /* missing: success */
}

static void test_lock(void) {
    ap_dir_lock a = {0}, b = {0};
    long holder = -1;
    char want[128];
    CHECK_OK(ap_dir_lock_acquire(&a, scratch, &holder));
    CHECK(holder == 0);
    snprintf(want, sizeof want, "is in use by this process (pid %ld", (long)getpid());
    CHECK_FAILS(ap_dir_lock_acquire(&b, scratch, &holder), AP_ESTATE, want);
    CHECK(holder == (long)getpid());
    /* another process is refused, naming this one */
    pid_t child = fork();
    if (child == 0) {
        ap_dir_lock c = {0};
        long h = 0;
        int rc = ap_dir_lock_acquire(&c, scratch, &h);
        char need[128];
        snprintf(need, sizeof need, "is in use by process %ld (it holds %s/lock)", (long)getppid(),
                 scratch);
        _exit(rc == AP_ESTATE && h == (long)getppid() && strstr(ap_last_error(), need) ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ap_dir_lock_release(&a);
    ap_dir_lock_release(&a); /* twice: no-op */
    CHECK_OK(ap_dir_lock_acquire(&b, scratch, NULL));
    ap_dir_lock_release(&b);
    CHECK_FAILS(ap_dir_lock_acquire(&b, tpath("none"), NULL), AP_EIO, "cannot open lock file");
    CHECK(remove(tpath("lock")) == 0);
}

int main(void) {
    if (scratch_open("dirutil")) return 1;
    RUN(test_crc32);
    RUN(test_dirs);
    RUN(test_lock);
    if (scratch_close()) return 1;
    return CHECK_DONE();
}
