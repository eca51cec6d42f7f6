#include "backend/llvm/llvm_info.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>

void ed_llvm_describe(char *buf, size_t size)
{
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    snprintf(buf, size, "%u.%u.%u (host %s, cpu %s)", major, minor, patch, triple, cpu);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
}
