/* elf_check.h — whether a file is a complete ELF shared object for this host, checked by reading
 * (never mapping) it before dlopen maps it: a truncated or foreign file is refused with a reason
 * instead of faulting (SIGBUS) inside the dynamic loader. */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_ELF_CHECK_H
#define APICAL_ELF_CHECK_H

#include <stddef.h>

/* 0 if `path` is an ELF shared object of this host's class, byte order and machine whose
 * program header table, section header table, segments' file extents and sections lie inside
 * the file; otherwise -1 with the reason (without the file name) in why[0..n). */
int apx_elf_check(const char *path, char *why, size_t n);

#endif
