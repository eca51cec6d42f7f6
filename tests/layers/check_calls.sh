#!/bin/sh
# Fails when a layer calls a function defined in a layer it may not use.
# Usage: check_calls.sh BUILD_DIR "layer:use,use,..." ...   (one argument per layer)
# Each layer's objects are BUILD_DIR/CMakeFiles/ed_LAYER.dir/**/*.o (CMake's layout).
set -eu
build=$1; shift
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for spec in "$@"; do
    layer=${spec%%:*}
    find "$build/CMakeFiles/ed_$layer.dir" -name '*.o' -exec nm --defined-only {} + |
        awk 'NF == 3 && $2 ~ /[TDBR]/ { print $3 }' | sort -u >"$tmp/$layer.defs"
    find "$build/CMakeFiles/ed_$layer.dir" -name '*.o' -exec nm --undefined-only {} + |
        awk 'NF >= 2 { print $NF }' | sort -u >"$tmp/$layer.undefs"
done
bad=0
for spec in "$@"; do
    layer=${spec%%:*}
    uses=$(echo "${spec#*:}" | tr ',' ' ')
    for other in "$tmp"/*.defs; do
        name=$(basename "$other" .defs)
        case " $uses " in *" $name "*) continue ;; esac
        for sym in $(comm -12 "$tmp/$layer.undefs" "$other"); do
            echo "layer $layer calls $sym, defined in $name, which it may not use" >&2
            bad=1
        done
    done
done
[ "$bad" -eq 0 ] && echo "layers: no upward calls ($# layers)"
exit "$bad"
