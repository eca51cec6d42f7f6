#!/bin/sh
# Install the Debian 12 packages edifice needs, and only those that are missing.
# dataset-fashion-mnist is the `--data fashion_mnist` set (data/README.md); clang-19 is a
# build dependency (it compiles the runtime helpers to the bitcode `edifice export` links
# into its objects) and, with libclang-rt-19-dev, builds the fuzz targets (libFuzzer,
# tests/fuzz/README.md); Open MPI only when asked (EDIFICE_MPI=1).
# Idempotent: prints nothing and touches nothing when everything is present.
set -eu

PACKAGES="cmake make gcc pkg-config clang-format-19 clang-19 libclang-rt-19-dev llvm-19-dev libopenblas-dev libcmocka-dev libpng-dev zlib1g-dev dataset-fashion-mnist"
# EDIFICE_MPI=1: Open MPI too, for the data-parallel build (cmake -DEDIFICE_MPI=ON).
if [ "${EDIFICE_MPI:-0}" = 1 ]; then
    PACKAGES="$PACKAGES libopenmpi-dev openmpi-bin"
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: missing packages:$missing; run this script as root or install sudo" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing >/dev/null
