#!/usr/bin/env bash
# Makes the base images docker/Dockerfile's FROM lines name, debian:bookworm
# and debian:bookworm-slim, for podman on a machine that reaches Debian's
# package mirror but no container registry. Once: later runs find both in
# podman's storage (the cache) and do nothing.
#
# How: debootstrap --variant=minbase bookworm (as Debian's official images
# start), with the host's Debian apt sources (so security updates come
# from where the host gets its own), apt told to keep no caches or
# translations, dpkg with unsafe-io and no service started on install, as
# in the official images; imported as
# localhost/debian:bookworm. The slim one also leaves out documentation,
# man pages and locales (dpkg path-exclude, as the official slim image),
# imported as localhost/debian:bookworm-slim. podman resolves the short
# name debian:bookworm to localhost/debian:bookworm.
#
#   docker/podman-base.sh [--force]     --force: make them again
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=$here/containers.conf
base=localhost/debian:bookworm
slim=localhost/debian:bookworm-slim

force=0
if [ "${1:-}" = --force ]; then force=1; fi

have() { podman image exists "$base" && podman image exists "$slim"; }

# One at a time: concurrent test runs share podman's storage.
exec 9> /var/tmp/hopper-podman-base.lock
flock 9
if [ "$force" -eq 0 ] && have; then
    exit 0
fi

work=$(mktemp -d /var/tmp/hopper-base.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root=$work/root

# The host's mirror when it names one in the usual place; else
# debootstrap's default.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
echo "podman-base: debootstrap --variant=minbase bookworm ${mirror:-(default mirror)}" >&2
started=$SECONDS
debootstrap --variant=minbase bookworm "$root" ${mirror:+"$mirror"} \
    > "$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "podman-base: debootstrap failed (log above)" >&2
    exit 1
}

if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
    rm -f "$root/etc/apt/sources.list"
fi
cat > "$root/etc/apt/apt.conf.d/docker-clean" << 'EOF'
// No package caches in image layers (as Debian's official images).
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat > "$root/etc/apt/apt.conf.d/docker-no-languages" << 'EOF'
Acquire::Languages "none";
EOF
cat > "$root/etc/apt/apt.conf.d/docker-autoremove-suggests" << 'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
printf '#!/bin/sh\n# No service starts when a package is installed.\nexit 101\n' \
    > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
: > "$root/etc/machine-id"

import() { tar --numeric-owner -C "$root" -c . | podman import --quiet - "$1" > /dev/null; }
import "$base"

cat > "$root/etc/dpkg/dpkg.cfg.d/docker" << 'EOF'
# As Debian's official slim images: no documentation, man pages or locales.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
import "$slim"

echo "podman-base: $base and $slim made in $((SECONDS - started)) s" >&2
