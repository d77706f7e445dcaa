#!/usr/bin/env bash
# What can be checked of docker/ without building the image (container_test
# runs docker/smoke.sh, which builds and runs it): the example config
# parses; the build stage installs the build package list only and the
# runtime stage its own; and every shared library hopperd, the CLI and
# libhopper link comes from a package the runtime stage installs.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
hopperd=$1
shift
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }

env -u HOPPER_CONFIG "$hopperd" --config "$top/docker/hopper.ini" --print-config \
    > /dev/null || fail "docker/hopper.ini does not parse"
ok

# The build stage gets scripts/build-packages.txt, not the developer's list
# (clang, prometheus, ...): the real build in container_test shows it is enough.
grep -q '^RUN \./scripts/setup\.sh build &&' "$top/docker/Dockerfile" ||
    fail "the build stage does not install through 'scripts/setup.sh build'"
grep -q '^COPY scripts/setup\.sh scripts/build-packages\.txt scripts/$' \
    "$top/docker/Dockerfile" ||
    fail "the build stage does not copy only setup.sh and build-packages.txt"
grep -q 'runtime-packages\.txt' "$top/docker/Dockerfile" ||
    fail "the runtime stage does not install docker/runtime-packages.txt"
ok

# Packages allowed at run time: the list, everything apt installs with it
# (what they depend on, and what that depends on: libcurl4 brings
# libidn2-0, which brings libunistring2), and libc.
mapfile -t want < <(grep -vE '^\s*(#|$)' "$top/docker/runtime-packages.txt")
allowed=" libc6 libgcc-s1 "
for p in "${want[@]}"; do
    apt-cache show "$p" > /dev/null 2>&1 || fail "no Debian package '$p'"
done
queue=("${want[@]}")
while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    [[ "$allowed" == *" $p "* ]] && continue
    allowed+="$p "
    deps=$(dpkg-query -W -f='${Depends} ${Pre-Depends}' "$p" 2>/dev/null || true)
    for d in $(tr ',|' '\n' <<< "$deps" | sed 's/(.*)//; s/:any//' | xargs -n1); do
        [[ "$allowed" == *" $d "* ]] || queue+=("$d")
    done
done
for bin in "$hopperd" "$@"; do
    extra=""
    # A sanitizer build also links what libasan needs; the image has none.
    # (ldd's output is kept first: grep -q quitting early would SIGPIPE
    # ldd, and pipefail would then read that as "no match".)
    libs=$(ldd "$bin")
    if grep -q libasan <<< "$libs"; then extra=" libstdc++6 "; fi
    while read -r lib; do
        case "$lib" in
        */libasan.so* | */libubsan.so* | */libhopper.so*) continue ;; # ASan build; ours
        esac
        pkg=""
        for path in "$(realpath "$lib")" "$lib"; do
            pkg=$(dpkg -S "$path" 2>/dev/null | sed -n '1s/:.*//p') || true
            [ -n "$pkg" ] && break
        done
        [ -n "$pkg" ] || fail "$bin links $lib, which no package owns"
        [[ "$allowed$extra" == *" $pkg "* ]] ||
            fail "$bin links $lib from $pkg, not in docker/runtime-packages.txt"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<< "$libs")
    ok
done
echo "$passed passed, 0 failed"
