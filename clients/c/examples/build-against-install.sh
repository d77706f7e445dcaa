#!/usr/bin/env bash
# build-against-install.sh PREFIX [WORKDIR]
#
# Builds the libhopper examples against the library installed under PREFIX
# (cmake --install BUILD --prefix PREFIX), twice: with CMake through
# find_package(hopper) and with make through pkg-config. Nothing from the
# source or build tree is used but these example sources. The binaries go
# to WORKDIR (default: a fresh temporary directory, printed at the end):
#   WORKDIR/cmake/{producer,worker,runtime_worker} and the same in
#   WORKDIR/make.
# Exits non-zero if either build fails or a binary cannot load libhopper.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 PREFIX [WORKDIR]" >&2
    exit 2
fi
prefix=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/hopper-examples.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)

# The library directory depends on GNUInstallDirs (lib, lib64 or
# lib/<multiarch>): find the installed hopper.pc rather than guess.
pc=$(find "$prefix" -path '*/pkgconfig/hopper.pc' -print -quit)
if [[ -z "$pc" ]]; then
    echo "$0: no hopper.pc under $prefix; is libhopper installed there?" >&2
    exit 1
fi
pcdir=$(dirname "$pc")

echo "== CMake: find_package(hopper) with CMAKE_PREFIX_PATH=$prefix"
cmake -S "$here" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >/dev/null
cmake --build "$work/cmake-build"
mkdir -p "$work/cmake"
cp "$work/cmake-build/producer" "$work/cmake-build/worker" \
    "$work/cmake-build/runtime_worker" "$work/cmake/"

echo "== make: pkg-config with PKG_CONFIG_PATH=$pcdir"
mkdir -p "$work/make"
PKG_CONFIG_PATH="$pcdir" make -s -C "$work/make" -f "$here/Makefile" \
    OUT="$work/make"

# Each binary must resolve libhopper from PREFIX without help.
for bin in "$work"/{cmake,make}/{producer,worker,runtime_worker}; do
    lib=$(ldd "$bin" | awk '/libhopper/ { print $3 }')
    case "$lib" in
    "$prefix"/*) echo "ok  $bin -> $lib" ;;
    *)
        echo "$0: $bin loads libhopper from '${lib:-nowhere}'" >&2
        exit 1
        ;;
    esac
done
echo "built in $work"
