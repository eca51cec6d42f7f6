/* What LLVM this build links (the JIT backend lands on top of it). */
#ifndef ED_LLVM_INFO_H
#define ED_LLVM_INFO_H

#include <stddef.h>

/* "19.1.7 (host x86_64-pc-linux-gnu, cpu znver3)" */
void ed_llvm_describe(char *buf, size_t size);

#endif
