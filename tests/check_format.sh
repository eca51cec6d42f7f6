#!/bin/sh
# Fails, naming the files, when a tracked C file differs from what clang-format makes of it.
# Usage: check_format.sh CLANG_FORMAT SOURCE_DIR
set -eu
cd "$2"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
bad=""
for f in $files; do
    "$1" --style=file "$f" | cmp -s - "$f" || bad="$bad $f"
done
if [ -n "$bad" ]; then
    echo "not formatted (run: $1 -i$bad)" >&2
    exit 1
fi
echo "format: $(echo "$files" | wc -w) files as .clang-format says"
