/* test_plugin_elf.c — damaged copies of a real plugin (tests/plugins' example, found through
 * APICAL_PLUGIN_PATH) are refused before dlopen with a message naming the file and the fault:
 * truncated files (dlopen faulted with SIGBUS on them), bad magic, class, byte order, machine,
 * type, header tables and segments outside the file. ap_plugin_scan reports them and goes on. */
#define _GNU_SOURCE
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apical/error.h"
#include "apical/plugin.h"
#include "apical/registry.h"
#include "check.h"

static unsigned char *image;
static size_t image_size;
static char dir[] = "/tmp/apical_elf_XXXXXX";

static void read_example(void) {
    const char *pd = getenv("APICAL_PLUGIN_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s/apical_example.so", pd ? pd : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    image_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    image = malloc(image_size);
    if (!image || fread(image, 1, image_size, f) != image_size) exit(1);
    fclose(f);
}

/* Writes the first `size` bytes of buf as dir/apical_<name>.so into path. */
static void write_copy(const char *name, const unsigned char *buf, size_t size, char *path,
                       size_t n) {
    snprintf(path, n, "%s/apical_%s.so", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(buf, 1, size, f) == size);
    fclose(f);
}

/* A copy of the example plugin, changed by `edit` and cut to `size` bytes, must be refused by
 * ap_plugin_load with a message holding its path and `needle`. */
static void expect_refused(const char *name, size_t size, void (*edit)(Elf64_Ehdr *),
                           const char *needle) {
    unsigned char *copy = malloc(image_size);
    memcpy(copy, image, image_size);
    if (edit) edit((Elf64_Ehdr *)copy);
    char path[4096];
    write_copy(name, copy, size, path, sizeof path);
    free(copy);
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    CHECK_FAILS(ap_plugin_load(r, path, NULL), AP_EPLUGIN, needle);
    CHECK(strstr(ap_last_error(), path) != NULL);
    ap_registry_free(&r);
}

static void bad_magic(Elf64_Ehdr *e) {
    e->e_ident[EI_MAG1] = 'X';
}
static void bad_class(Elf64_Ehdr *e) {
    e->e_ident[EI_CLASS] = ELFCLASS32;
}
static void bad_data(Elf64_Ehdr *e) {
    e->e_ident[EI_DATA] = ELFDATA2MSB;
}
static void bad_machine(Elf64_Ehdr *e) {
    e->e_machine = EM_SPARCV9;
}
static void bad_type(Elf64_Ehdr *e) {
    e->e_type = ET_REL;
}
static void bad_phoff(Elf64_Ehdr *e) {
    e->e_phoff = UINT64_MAX - 8;
}
static void bad_phnum(Elf64_Ehdr *e) {
    e->e_phnum = 0xfff0;
}
static void bad_shoff(Elf64_Ehdr *e) {
    e->e_shoff = (Elf64_Off)image_size - 16;
}
static void bad_shstrndx(Elf64_Ehdr *e) {
    e->e_shstrndx = (Elf64_Half)(e->e_shnum + 3);
}
/* the first loadable segment reaches a byte past the file's end */
static void bad_segment(Elf64_Ehdr *e) {
    Elf64_Phdr *p = (Elf64_Phdr *)((unsigned char *)e + e->e_phoff);
    for (int i = 0; i < e->e_phnum; i++)
        if (p[i].p_type == PT_LOAD) {
            p[i].p_filesz = p[i].p_memsz = (Elf64_Xword)image_size - p[i].p_offset + 1;
            return;
        }
}

static void test_refused(void) {
    CHECK(image_size > 8192);
    expect_refused("trunc4096", 4096, NULL, "truncated");
    expect_refused("trunc_half", image_size / 2, NULL, "truncated");
    expect_refused("trunc_last", image_size - 1, NULL, "truncated");
    expect_refused("trunc10", 10, NULL, "shorter than an ELF header");
    expect_refused("empty", 0, NULL, "shorter than an ELF header");
    expect_refused("magic", image_size, bad_magic, "not an ELF file");
    expect_refused("class", image_size, bad_class, "ELF class 1");
    expect_refused("data", image_size, bad_data, "byte order");
    expect_refused("machine", image_size, bad_machine, "machine 43");
    expect_refused("type", image_size, bad_type, "not a shared object");
    expect_refused("phoff", image_size, bad_phoff, "program header table");
    expect_refused("phnum", image_size, bad_phnum, "program header table");
    expect_refused("shoff", image_size, bad_shoff, "section header table");
    expect_refused("shstrndx", image_size, bad_shstrndx, "section name table index");
    expect_refused("segment", image_size, bad_segment, "segment");
    /* the intact copy loads */
    char path[4096];
    write_copy("example", image, image_size, path, sizeof path);
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    CHECK_OK(ap_plugin_load(r, path, NULL));
    ap_registry_free(&r);
}

/* ---- scanning a directory with a truncated plugin ---------------------------------------- */

typedef struct seen {
    int ok, bad;
} seen;

static void on_plugin(void *ud, const char *path, const ap_plugin_info *info, const char *err) {
    seen *s = ud;
    if (strstr(path, dir) != path) return;
    if (info) {
        s->ok++;
    } else {
        s->bad++;
        CHECK(err && strstr(err, path) != NULL);
    }
}

static void test_scan(void) {
    const char *old = getenv("APICAL_PLUGIN_PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("APICAL_PLUGIN_PATH", dir, 1);
    seen s = {0};
    ap_plugin_scan(on_plugin, &s);
    CHECK(s.ok == 1);   /* apical_example.so */
    CHECK(s.bad == 15); /* every damaged copy above, each reported */
    if (saved) setenv("APICAL_PLUGIN_PATH", saved, 1);
    free(saved);
}

static void remove_dir(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    read_example();
    if (!mkdtemp(dir)) return 1;
    RUN(test_refused);
    RUN(test_scan);
    remove_dir();
    free(image);
    return CHECK_DONE();
}
