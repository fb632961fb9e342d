# Included by the top CMakeLists.txt when APICAL_FUZZ is on: the whole tree is instrumented
# for libFuzzer's coverage and built with ASan + UBSan; the harnesses link libFuzzer itself.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "APICAL_FUZZ needs clang (libFuzzer): configure a separate tree with "
                      "CC=clang-14 cmake -S . -B build-fuzz -DAPICAL_FUZZ=ON")
endif()
include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
check_c_source_compiles("
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
  APICAL_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT APICAL_HAVE_LIBFUZZER)
  message(FATAL_ERROR "APICAL_FUZZ: ${CMAKE_C_COMPILER} cannot link -fsanitize=fuzzer "
                      "(Debian: apt-get install clang-14)")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined -g)
add_link_options(-fsanitize=address,undefined)
