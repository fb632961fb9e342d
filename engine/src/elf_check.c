/* elf_check.c — a plugin file's ELF header, program headers and section headers, checked
 * against the file's size and the host before dlopen. Everything is read with pread: mapping a
 * truncated file is what makes dlopen fault. */
#include "elf_check.h"

#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if UINTPTR_MAX > 0xffffffffu
#define HOST_CLASS ELFCLASS64
typedef Elf64_Ehdr ehdr_t;
typedef Elf64_Phdr phdr_t;
typedef Elf64_Shdr shdr_t;
#else
#define HOST_CLASS ELFCLASS32
typedef Elf32_Ehdr ehdr_t;
typedef Elf32_Phdr phdr_t;
typedef Elf32_Shdr shdr_t;
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__powerpc64__)
#define HOST_MACHINE EM_PPC64
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#elif defined(__s390x__)
#define HOST_MACHINE EM_S390
#else
#define HOST_MACHINE EM_NONE /* unknown host: the machine is not checked */
#endif

typedef struct elf_file {
    int fd;
    uint64_t size;
    char *why;
    size_t n;
} elf_file;

static int refuse(elf_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(elf_file *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, f->n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whether [off, off + len) lies inside the file, without overflow. */
static int inside(const elf_file *f, uint64_t off, uint64_t len) {
    return off <= f->size && len <= f->size - off;
}

static int read_at(elf_file *f, void *buf, size_t len, uint64_t off) {
    if (!inside(f, off, len)) return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(f->fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* A table of count entries of entsize bytes at off: inside the file? */
static int table_inside(elf_file *f, const char *what, uint64_t off, uint64_t count,
                        uint64_t entsize) {
    if (count > UINT64_MAX / entsize || !inside(f, off, count * entsize))
        return refuse(f,
                      "truncated or corrupt: the %s table (%" PRIu64 " entries of %" PRIu64
                      " bytes at offset %" PRIu64 ") does not lie inside the file's %" PRIu64
                      " bytes",
                      what, count, entsize, off, f->size);
    return 0;
}

static int check_ident(elf_file *f, const ehdr_t *e) {
    if (memcmp(e->e_ident, ELFMAG, SELFMAG) != 0)
        return refuse(f, "not an ELF file (bad magic number)");
    if (e->e_ident[EI_CLASS] != HOST_CLASS)
        return refuse(f, "ELF class %d, this host needs %d-bit objects (class %d)",
                      e->e_ident[EI_CLASS], HOST_CLASS == ELFCLASS64 ? 64 : 32, HOST_CLASS);
    if (e->e_ident[EI_DATA] != HOST_DATA)
        return refuse(f, "ELF byte order %d, this host's is %d", e->e_ident[EI_DATA], HOST_DATA);
    if (e->e_ident[EI_VERSION] != EV_CURRENT || e->e_version != EV_CURRENT)
        return refuse(f, "unknown ELF version %d", e->e_ident[EI_VERSION]);
    if (e->e_type != ET_DYN)
        return refuse(f, "ELF type %d is not a shared object (%d)", e->e_type, ET_DYN);
    if (HOST_MACHINE != EM_NONE && e->e_machine != HOST_MACHINE)
        return refuse(f, "built for ELF machine %d, this host is machine %d", e->e_machine,
                      HOST_MACHINE);
    if (e->e_ehsize != sizeof(ehdr_t))
        return refuse(f, "ELF header size %d, expected %zu", e->e_ehsize, sizeof(ehdr_t));
    return 0;
}

/* The program headers: the table inside the file, and every segment's file extent too. */
static int check_segments(elf_file *f, const ehdr_t *e) {
    if (e->e_phnum == 0) return refuse(f, "no program headers (nothing to load)");
    if (e->e_phentsize != sizeof(phdr_t))
        return refuse(f, "program header size %d, expected %zu", e->e_phentsize, sizeof(phdr_t));
    if (table_inside(f, "program header", e->e_phoff, e->e_phnum, e->e_phentsize)) return -1;
    int loads = 0;
    for (unsigned i = 0; i < e->e_phnum; i++) {
        phdr_t p;
        if (read_at(f, &p, sizeof p, e->e_phoff + (uint64_t)i * sizeof p))
            return refuse(f, "cannot read program header %u", i + 1);
        if (p.p_type == PT_LOAD) {
            loads++;
            if (p.p_filesz > p.p_memsz)
                return refuse(f,
                              "corrupt: segment %u has %" PRIu64 " bytes in the file but %" PRIu64
                              " in memory",
                              i + 1, (uint64_t)p.p_filesz, (uint64_t)p.p_memsz);
        }
        if (p.p_type != PT_NULL && !inside(f, p.p_offset, p.p_filesz))
            return refuse(f,
                          "truncated: segment %u (type %" PRIu32 ", bytes %" PRIu64 "..%" PRIu64
                          ") ends beyond the file's %" PRIu64 " bytes",
                          i + 1, (uint32_t)p.p_type, (uint64_t)p.p_offset,
                          (uint64_t)p.p_offset + (uint64_t)p.p_filesz, f->size);
    }
    if (loads == 0) return refuse(f, "no loadable segment");
    return 0;
}

/* The section headers (if any): the table and every section with file contents inside it. */
static int check_sections(elf_file *f, const ehdr_t *e) {
    if (e->e_shoff == 0 && e->e_shnum == 0) return 0;
    if (e->e_shentsize != sizeof(shdr_t))
        return refuse(f, "section header size %d, expected %zu", e->e_shentsize, sizeof(shdr_t));
    uint64_t count = e->e_shnum;
    if (count == 0) { /* more than SHN_LORESERVE sections: the count is in section 0 */
        shdr_t s0;
        if (read_at(f, &s0, sizeof s0, e->e_shoff))
            return refuse(f, "truncated: section header 1 lies beyond the file's %" PRIu64 " bytes",
                          f->size);
        count = s0.sh_size;
    }
    if (table_inside(f, "section header", e->e_shoff, count, e->e_shentsize)) return -1;
    if (e->e_shstrndx != SHN_UNDEF && e->e_shstrndx != SHN_XINDEX && e->e_shstrndx >= count)
        return refuse(f, "corrupt: section name table index %d beyond the %" PRIu64 " sections",
                      e->e_shstrndx, count);
    for (uint64_t i = 0; i < count; i++) {
        shdr_t s;
        if (read_at(f, &s, sizeof s, e->e_shoff + i * sizeof s))
            return refuse(f, "cannot read section header %" PRIu64, i + 1);
        if (s.sh_type != SHT_NOBITS && s.sh_type != SHT_NULL && !inside(f, s.sh_offset, s.sh_size))
            return refuse(f,
                          "truncated: section %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64
                          ") ends beyond the file's %" PRIu64 " bytes",
                          i + 1, (uint64_t)s.sh_offset, (uint64_t)s.sh_offset + (uint64_t)s.sh_size,
                          f->size);
    }
    return 0;
}

int apx_elf_check(const char *path, char *why, size_t n) {
    elf_file f = {.fd = -1, .why = why, .n = n};
    if (n) why[0] = '\0';
    f.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return refuse(&f, "cannot be opened");
    struct stat st;
    int rc = -1;
    ehdr_t e;
    if (fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        refuse(&f, "not a regular file");
    } else if ((f.size = (uint64_t)st.st_size), read_at(&f, &e, sizeof e, 0)) {
        refuse(&f, "truncated: %" PRIu64 " bytes, shorter than an ELF header (%zu)", f.size,
               sizeof e);
    } else {
        rc = check_ident(&f, &e);
        if (!rc) rc = check_segments(&f, &e);
        if (!rc) rc = check_sections(&f, &e);
    }
    close(f.fd);
    return rc;
}
