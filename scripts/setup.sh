#!/usr/bin/env bash
# Installs every Debian package of the named lists that is missing. Safe to
# run again: it does nothing when all are present.
#   scripts/setup.sh [LIST...]
#     build      scripts/build-packages.txt: compile, and run the unit tests
#     dev        scripts/packages.txt: the other tests and developer tools
#     container  scripts/container-packages.txt: podman, for docker/smoke.sh
# Without a LIST: build and dev. docker/Dockerfile's build stage says build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -eq 0 ]; then
    set -- build dev
fi
pkgs=()
for list in "$@"; do
    case "$list" in
    build) file=$here/build-packages.txt ;;
    dev) file=$here/packages.txt ;;
    container) file=$here/container-packages.txt ;;
    *) echo "setup: unknown list '$list' (build, dev, container)" >&2; exit 2 ;;
    esac
    mapfile -t -O "${#pkgs[@]}" pkgs < <(grep -vE '^\s*(#|$)' "$file")
done
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "setup: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
