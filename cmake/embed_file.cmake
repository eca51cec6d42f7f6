# cmake -DIN=file -DOUT=file.c -DSYM=name -P embed_file.cmake: file's bytes as a C array
# `const unsigned char SYM[]` and `const size_t SYM_size` (no tool beyond CMake).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" len)
math(EXPR bytes "${len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN} by cmake/embed_file.cmake: do not edit. */\n"
     "#include <stddef.h>\n"
     "const unsigned char ${SYM}[] = {\n${body}};\n"
     "const size_t ${SYM}_size = ${bytes};\n")
