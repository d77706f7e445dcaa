#!/usr/bin/env bash
# The container, built and run for real: builds docker/Dockerfile with
# Docker where a Docker engine answers, otherwise with podman (the base
# image from docker/podman-base.sh, settings from docker/containers.conf),
# then checks against the running container that
#   - the health check passes, and hopperd runs as the hopper user (10001);
#   - /metrics answers and shows what the CLI did;
#   - messages enqueued with the host's CLI (one claimed and acked, one
#     left pending) survive a stop and a start on the named volume;
#   - a stop (SIGTERM) ends it within the grace period, exit 0, with the
#     drain logged;
#   - the example producer and worker of docker/compose.yml, run from the
#     image's examples stage as separate containers on the host network,
#     move messages through it;
#   - a bind-mounted data directory is refused until it belongs to uid
#     10001, and works after the documented `chown 10001:10001 DIR`.
# It prints the image size and the build and start times (never asserted),
# and removes every container, volume and image it made, also on failure.
# It keeps two caches: the base images (docker/podman-base.sh) and
# localhost/hopper-cache:{toolchain,runtime-base}, the stages that install
# packages, so that a second run downloads nothing.
#
# Everything runs on the host network, on free loopback ports.
#
#   docker/smoke.sh [HOPPER_CLI]   the host's hopper command; without it,
#                                  the image's own, in a container
# HOPPER_ENGINE=docker|podman picks the engine. HOPPER_SKIP_CONTAINER=1
# skips it all, loudly, with exit code 77 (for quick local runs).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
host_cli=${1:-}

# summary TEXT: printed, and added to $HOPPER_SMOKE_SUMMARY when set
# (scripts/test.sh repeats it at its end).
summary() {
    echo "$1"
    if [ -n "${HOPPER_SMOKE_SUMMARY:-}" ]; then echo "$1" >> "$HOPPER_SMOKE_SUMMARY"; fi
}

if [ "${HOPPER_SKIP_CONTAINER:-}" = 1 ]; then
    summary "\
########################################################################
# CONTAINER TEST SKIPPED: HOPPER_SKIP_CONTAINER=1 is set, so the image #
# was neither built nor run (docker/smoke.sh). Unset it to test it.    #
########################################################################"
    exit 77
fi

# As the tests in tests/integration: a count, and the line ctest's readers know.
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }
say() { echo "smoke: $*"; }

# ---- the engine ------------------------------------------------------------
engine=${HOPPER_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker > /dev/null 2>&1 && docker info > /dev/null 2>&1; then
        engine=docker
    elif command -v podman > /dev/null 2>&1; then
        engine=podman
    else
        fail "no Docker engine ('docker info' failed) and no podman:" \
            "install podman (scripts/setup.sh container), or set" \
            "HOPPER_SKIP_CONTAINER=1 to skip this test"
    fi
fi
build_flags=()
if [ "$engine" = podman ]; then
    export CONTAINERS_CONF=$top/docker/containers.conf
    # --format docker keeps the HEALTHCHECK (OCI images have none).
    build_flags=(--format docker --network=host)
fi
ctr() { "$engine" "$@"; }

run_id=$(date +%s)-$$
image=localhost/hopper-smoke:$run_id
name=hopper-smoke-$run_id
volume=hopper-smoke-$run_id
work=$(mktemp -d)
containers=("$name" "$name-bind" "$name-producer" "$name-worker")
cleanup() {
    for c in "${containers[@]}"; do
        ctr rm -f -v "$c" > /dev/null 2>&1 || true
    done
    ctr volume rm -f "$volume" > /dev/null 2>&1 || true
    # Removing an image also removes its untagged parents, down to the
    # cache tags, so nothing of this run's build is left behind.
    for i in "$image-examples" "$image" "$image-build"; do
        ctr rmi "$i" > /dev/null 2>&1 || true
    done
    # A failed build leaves the steps it committed ("--> ID" in podman's
    # log) as untagged images. Only those still untagged go: an ID can
    # also name a cache stage, which rmi would delete, tags and all.
    local id dangling
    dangling=" $(ctr images -a -q --no-trunc --filter dangling=true 2> /dev/null |
        tr '\n' ' ' || true) "
    for id in $(sed -n 's/^--> \([0-9a-f]\{6,\}\)$/\1/p' \
        "$work/build.log" 2> /dev/null); do
        if [[ $dangling == *" sha256:$id"* ]]; then
            ctr rmi "$id" > /dev/null 2>&1 || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A run killed outright (ctest's timeout kills) cannot clean up after
# itself: the next run removes what is named for a process that is gone.
stale() {
    local pid
    pid=$(sed -n 's/.*hopper-smoke[-:][0-9]*-\([0-9]*\).*/\1/p' <<< "$1")
    [ -n "$pid" ] && ! kill -0 "$pid" 2> /dev/null
}
reap() {
    local n
    for n in $(ctr ps -a --format '{{.Names}}'); do
        stale "$n" || continue
        say "removing container $n, left by an earlier run"
        ctr rm -f -v "$n" > /dev/null 2>&1 || true
    done
    for n in $(ctr volume ls --format '{{.Name}}'); do
        stale "$n" || continue
        say "removing volume $n, left by an earlier run"
        ctr volume rm -f "$n" > /dev/null 2>&1 || true
    done
    for n in $(ctr images --format '{{.Repository}}:{{.Tag}}'); do
        stale "$n" || continue
        say "removing image $n, left by an earlier run"
        ctr rmi "$n" > /dev/null 2>&1 || true
    done
}
reap

# ---- build -----------------------------------------------------------------
# seconds A B: B - A, from $EPOCHREALTIME values, to 0.1 s.
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
build() {
    local t=$EPOCHREALTIME
    ctr build "${build_flags[@]}" -f "$top/docker/Dockerfile" "$@" "$top" \
        >> "$work/build.log" 2>&1 ||
        fail "$engine build $* failed: $(tail -n 40 "$work/build.log")"
    say "build $*: $(seconds "$t" "$EPOCHREALTIME") s"
}
# cache_stage STAGE: build STAGE and keep it as localhost/hopper-cache:STAGE,
# so its layers outlive this run's images; drop the one it replaces.
cache_stage() {
    local tag=localhost/hopper-cache:$1 old new
    old=$(ctr image inspect -f '{{.Id}}' "$tag" 2> /dev/null || true)
    build --target "$1" -t "$tag"
    new=$(ctr image inspect -f '{{.Id}}' "$tag")
    if [ "$old" = "$new" ]; then
        cached+=("$1 stage")
    elif [ -n "$old" ]; then
        ctr rmi "$old" > /dev/null 2>&1 || true
    fi
}

say "building docker/Dockerfile with $engine"
cached=()
t0=$EPOCHREALTIME
if [ "$engine" = podman ]; then
    if podman image exists localhost/debian:bookworm &&
        podman image exists localhost/debian:bookworm-slim; then
        cached+=("base images")
    fi
    "$top/docker/podman-base.sh" || fail "docker/podman-base.sh failed"
fi
t_base=$EPOCHREALTIME
{
    # One run at a time moves the cache tags.
    flock 9
    cache_stage toolchain
    cache_stage runtime-base
} 9> /var/tmp/hopper-smoke-cache.lock
build --target examples -t "$image-examples"
build --target runtime -t "$image"
build --target build -t "$image-build"
t_built=$EPOCHREALTIME
size=$(ctr image inspect -f '{{.Size}}' "$image")
figures="image $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')"
figures+="; build $(seconds "$t0" "$t_built") s"
if [ ${#cached[@]} -gt 0 ]; then
    list=$(printf '%s, ' "${cached[@]}")
    figures+=" (cached: ${list%, })"
else
    figures+=" (nothing cached)"
fi
if [ "$engine" = podman ] && [[ " ${cached[*]} " != *" base images "* ]]; then
    figures+=", of which making the base images $(seconds "$t0" "$t_base") s"
fi
ok

# ---- ports and helpers -----------------------------------------------------
# free_port VAR: sets VAR to a loopback port nothing listens on and this
# run has not handed out, below the kernel's ephemeral range, so no other
# test's port-0 listener takes it meanwhile.
taken=" "
free_port() {
    local lo p
    lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range)
    for _ in $(seq 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        [[ "$taken" == *" $p "* ]] && continue
        if ! (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null; then
            taken+="$p "
            printf -v "$1" '%s' "$p"
            return
        fi
    done
    fail "no free loopback port"
}

# start NAME PORT HTTP_PORT MOUNT: the broker on the host network, listening
# on loopback only; its CLI (the health check) told where through HOPPER_URL.
start() {
    ctr run -d --name "$1" --network host -v "$4:/var/lib/hopper" \
        -e "HOPPER_LISTEN=tcp://127.0.0.1:$2" -e "HOPPER_URL=tcp://127.0.0.1:$2" \
        -e "HOPPER_HTTP=127.0.0.1:$3" "$image" > "$work/run.out" 2>&1 ||
        fail "$engine run $1: $(cat "$work/run.out")"
}
# healthy NAME: wait (up to 120 s) until the image's HEALTHCHECK passes.
# Docker runs it on its schedule; podman without systemd runs it when asked.
healthy() {
    local deadline=$((SECONDS + 120)) status
    while [ "$SECONDS" -lt "$deadline" ]; do
        if [ "$engine" = podman ]; then
            podman healthcheck run "$1" > /dev/null 2>&1 && return 0
        else
            status=$(docker inspect -f '{{.State.Health.Status}}' "$1")
            [ "$status" = healthy ] && return 0
        fi
        [ "$(ctr inspect -f '{{.State.Running}}' "$1")" = true ] ||
            fail "$1 exited: $(ctr logs "$1" 2>&1 | tail -n 20)"
        sleep 0.2
    done
    fail "$1 not healthy after 120 s: $(ctr logs "$1" 2>&1 | tail -n 20)"
}
# stop NAME: SIGTERM (the image's STOPSIGNAL), then SIGKILL after 10 s of
# grace, the default of docker stop and podman stop. Exit code 0 means
# hopperd ended by itself: a SIGKILL would make it 137.
stop() {
    ctr stop -t 10 "$1" > /dev/null 2>&1 || fail "$engine stop $1 failed"
    local rc
    rc=$(ctr inspect -f '{{.State.ExitCode}}' "$1")
    [ "$rc" = 0 ] || fail "$1 exited $rc on SIGTERM: $(ctr logs "$1" 2>&1 | tail -n 20)"
}
cli() {
    if [ -n "$host_cli" ]; then
        "$host_cli" --url "tcp://127.0.0.1:$port" "$@"
    else
        ctr run --rm --network host --no-healthcheck --entrypoint hopper "$image" \
            --url "tcp://127.0.0.1:$port" "$@"
    fi
}

# ---- the broker on a named volume ------------------------------------------
port="" http="" bport="" bhttp=""
free_port port
free_port http
ctr volume create "$volume" > /dev/null
t_run=$EPOCHREALTIME
start "$name" "$port" "$http" "$volume"
healthy "$name"
figures+="; start to healthy $(seconds "$t_run" "$EPOCHREALTIME") s"
ok

pid=$(ctr inspect -f '{{.State.Pid}}' "$name")
uid=$(awk '$1 == "Uid:" { print $2 }' "/proc/$pid/status")
[ "$uid" = 10001 ] || fail "hopperd runs as uid $uid, not 10001"
user=$(ctr exec "$name" id -un)
[ "$user" = hopper ] || fail "the container's user is $user, not hopper"
ok

# FIFO: the first enqueued is the one claimed.
acked=$(cli enqueue smoke 'claimed and acked') || fail "enqueue"
kept=$(cli enqueue smoke 'survives a restart') || fail "second enqueue"
cli --json claim smoke --max 1 > "$work/claim" || fail "claim"
[ "$(jq -r .id "$work/claim")" = "$acked" ] ||
    fail "claimed $(jq -r .id "$work/claim"), wanted $acked"
cli ack "$acked" "$(jq -r .token "$work/claim")" > /dev/null || fail "ack"
ok

curl -sf "http://127.0.0.1:$http/readyz" > /dev/null || fail "/readyz"
curl -sf "http://127.0.0.1:$http/metrics" > "$work/metrics" || fail "/metrics"
for series in 'hopper_lane_enqueued_total{scope="default",lane="smoke"} 2' \
    'hopper_lane_acked_total{scope="default",lane="smoke"} 1'; do
    grep -qxF "$series" "$work/metrics" || fail "/metrics lacks '$series'"
done
ok

# A long-poll parked for 30 s must not hold the stop past its grace: hopperd
# answers it (nothing to claim) and exits.
cli claim idle --wait 30000 > "$work/parked" 2>&1 &
parked=$!
deadline=$((SECONDS + 60))
# (The scrape goes to a file: grep -q quitting early would SIGPIPE curl.)
until curl -sf "http://127.0.0.1:$http/metrics" > "$work/metrics" &&
    grep -qx 'hopper_parked_claims 1' "$work/metrics"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the long-poll claim never parked"
    sleep 0.1
done
t_stop=$EPOCHREALTIME
stop "$name"
figures+="; stop $(seconds "$t_stop" "$EPOCHREALTIME") s"
rc=0
wait "$parked" || rc=$?
[ "$rc" -eq 0 ] || fail "the parked claim was not answered at stop: $(cat "$work/parked")"
ctr logs "$name" > "$work/logs" 2>&1
grep -q 'msg="stopping" signal=15' "$work/logs" ||
    fail "no 'stopping signal=15' logged: $(tail -n 20 "$work/logs")"
grep -q 'msg="stopped"' "$work/logs" ||
    fail "no 'stopped' logged: $(tail -n 20 "$work/logs")"
ok

t_run=$EPOCHREALTIME
ctr start "$name" > /dev/null 2>&1 || fail "$engine start $name failed"
healthy "$name"
figures+="; restart to healthy $(seconds "$t_run" "$EPOCHREALTIME") s"
cli --json get "$acked" | jq -e '.state == "delivered"' > /dev/null ||
    fail "the acked message did not survive the restart"
cli --json get "$kept" > "$work/kept" || fail "get $kept"
jq -e '.state == "pending" and .payload == "survives a restart"' "$work/kept" \
    > /dev/null || fail "the pending message did not survive: $(cat "$work/kept")"
ok

# ---- compose's example producer and worker -----------------------------------
# docker/compose.yml runs them in loops on a compose network; here each
# runs once, as its own container on the host network.
say "compose's producer and worker: separate containers on the host network"
url=tcp://127.0.0.1:$port
ctr run --name "$name-producer" --network host --entrypoint producer \
    "$image-examples" "$url" examples 5 > "$work/producer" 2>&1 ||
    fail "producer: $(cat "$work/producer")"
ctr run --name "$name-worker" --network host --entrypoint worker \
    "$image-examples" "$url" examples 100 > "$work/worker" 2>&1 ||
    fail "worker: $(cat "$work/worker")"
cli --json stats examples > "$work/stats" || fail "stats examples"
jq -e '.delivered == 5 and .pending == 0 and .claimed == 0 and .dead == 0' \
    "$work/stats" > /dev/null ||
    fail "examples is not 5 delivered: $(cat "$work/stats") $(cat "$work/worker")"
ok

stop "$name"

# ---- a bind-mounted data directory ------------------------------------------
# As made by root it is not the hopper user's: hopperd must refuse it.
mkdir "$work/data"
free_port bport
free_port bhttp
rc=0
timeout 120 "$engine" run --name "$name-bind" --network host \
    -v "$work/data:/var/lib/hopper" \
    -e "HOPPER_LISTEN=tcp://127.0.0.1:$bport" -e "HOPPER_HTTP=127.0.0.1:$bhttp" \
    "$image" > "$work/bind.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "hopperd started on a data dir it cannot write"
grep -qi 'permission denied' "$work/bind.out" ||
    fail "hopperd did not say why it stopped: $(cat "$work/bind.out")"
ctr rm -v "$name-bind" > /dev/null 2>&1 || fail "$engine rm $name-bind failed"
# The documented step (docs/operations.md).
chown 10001:10001 "$work/data"
start "$name-bind" "$bport" "$bhttp" "$work/data"
healthy "$name-bind"
port=$bport
cli enqueue smoke 'on a bind mount' > /dev/null || fail "enqueue on the bind mount"
stop "$name-bind"
[ "$(stat -c %u "$work/data/data.mdb")" = 10001 ] ||
    fail "data.mdb on the bind mount is not uid 10001's"
ok

summary "container ($engine): $figures"
echo "$passed passed, 0 failed"
