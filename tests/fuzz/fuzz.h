/* What every fuzz target shares (tests/fuzz/README.md). A target defines
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (the EDIFICE_FUZZ build) or
 * with replay.c, which runs it over the seed corpus as a ctest in every build. */
#ifndef ED_FUZZ_H
#define ED_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes as a file the path-based readers can open: an in-memory file (memfd)
 * rewritten for each input, named "/proc/self/fd/N". Aborts if that fails (a harness
 * fault, not a finding). */
const char *fuzz_file(const uint8_t *data, size_t size);

/* A path in a directory of this process's own (under $TMPDIR or /tmp, removed at exit)
 * for a reader's output: the writers replace files atomically, which a memfd is not. */
const char *fuzz_scratch(const char *name);

/* The bytes as a NUL-terminated string (a buffer reused across inputs). */
char *fuzz_text(const uint8_t *data, size_t size);

/* A failed property of an input that the reader accepted: print and abort, so libFuzzer
 * records the input as a crash. */
void fuzz_fail(const char *what, const char *detail);

#endif
