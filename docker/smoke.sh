#!/usr/bin/env bash
# Builds the image, starts it with a named volume on a free loopback port,
# enqueues, claims and acks through the published port with the hopper
# CLI inside the image, restarts the container, checks the data survived,
# and removes everything it made. Without a Docker engine it says so and
# exits 0 (there is nothing to test).
#   docker/smoke.sh [IMAGE_TAG]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v docker > /dev/null 2>&1 || ! docker info > /dev/null 2>&1; then
    echo "docker/smoke.sh: no Docker engine here ('docker info' failed); skipped"
    exit 0
fi
tag=${1:-hopper:smoke}
name=hopper-smoke-$$
volume=hopper-smoke-$$
claim=$(mktemp)
metrics=$(mktemp)
cleanup() {
    rm -f "$claim" "$metrics"
    docker rm -f "$name" > /dev/null 2>&1 || true
    docker volume rm "$volume" > /dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "docker/smoke.sh: FAIL: $*" >&2; docker logs "$name" >&2 || true; exit 1; }

docker build -f "$top/docker/Dockerfile" --target runtime -t "$tag" "$top"
start() {
    docker run -d --name "$name" -e HOPPER_ALLOW_ANONYMOUS=1 \
        -p 127.0.0.1::7450 -p 127.0.0.1::7451 \
        -v "$volume:/var/lib/hopper" "$tag" > /dev/null
    port=$(docker port "$name" 7450/tcp | sed -n '1s/.*://p')
    url=tcp://127.0.0.1:$port
    http=http://127.0.0.1:$(docker port "$name" 7451/tcp | sed -n '1s/.*://p')
    for _ in $(seq 50); do
        [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" = healthy ] && return
        sleep 1
    done
    fail "container did not become healthy"
}
# The CLI from the image, on the host network, talking to the published port.
hopper() { docker run --rm --network host --entrypoint hopper "$tag" --url "$url" "$@"; }

start
id=$(hopper enqueue smoke 'survives a restart') || fail "enqueue"
hopper enqueue smoke 'claimed and acked' > /dev/null || fail "second enqueue"
hopper --json claim smoke --max 1 > "$claim" || fail "claim"
claimed=$(jq -r '.id' "$claim")
token=$(jq -r '.token' "$claim")
[ "$claimed" = "$id" ] || fail "claimed $claimed, wanted $id"
hopper ack "$claimed" "$token" > /dev/null || fail "ack"
curl -sf "$http/readyz" > /dev/null || fail "/readyz"
curl -sf "$http/metrics" > "$metrics" || fail "/metrics"
grep -qx 'hopper_lane_acked_total{scope="default",lane="smoke"} 1' "$metrics" ||
    fail "/metrics does not show the ack"

docker restart "$name" > /dev/null
start_wait=0
for _ in $(seq 50); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" = healthy ] && start_wait=1 && break
    sleep 1
done
[ "$start_wait" -eq 1 ] || fail "not healthy after restart"
hopper --json get "$id" | jq -e '.state == "delivered"' > /dev/null ||
    fail "the acked message did not survive the restart"
hopper --json stats smoke | jq -e '.pending == 1' > /dev/null ||
    fail "the pending message did not survive the restart"
docker stop "$name" > /dev/null
echo "docker/smoke.sh: ok (enqueue, claim, ack, restart, data kept)"
