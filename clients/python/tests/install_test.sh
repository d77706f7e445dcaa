#!/usr/bin/env bash
# pip install clients/python, offline (the in-tree build backend needs
# nothing from PyPI), into a temp dir; then the installed package pings a
# real hopperd and round-trips a message.
#   install_test.sh PYTHON CLIENTS_PYTHON_DIR HOPPERD
set -euo pipefail
python=$1
src=$2
hopperd=$3
top=$(cd "$src/../.." && pwd)
# shellcheck source=tests/integration/lib_hopperd.sh
. "$top/tests/integration/lib_hopperd.sh"
test_begin
find "$src" | sort > "$work/before"
PYTHONDONTWRITEBYTECODE=1 "$python" -m pip install --no-index --no-deps --no-build-isolation \
    --disable-pip-version-check --target "$work/site" "$src" \
    > "$work/pip.log" 2>&1 || fail "pip install failed: $(cat "$work/pip.log")"
[ -f "$work/site/hopper/v1/broker_pb2.py" ] ||
    fail "the install holds no generated hopper/v1/broker_pb2.py"
ok
find "$src" | sort > "$work/after"
cmp -s "$work/before" "$work/after" ||
    fail "pip left files in $src: $(diff "$work/before" "$work/after")"
ok
hopperd_start "$work/out" "$work/err" --listen tcp://127.0.0.1:0 \
    --data "$work/data" --log-level warn ||
    fail "hopperd did not start: $(cat "$work/err")"
PYTHONPATH=$work/site PYTHONDONTWRITEBYTECODE=1 "$python" - "$hopperd_url" << 'PY' ||
import sys
import hopper
c = hopper.Client(sys.argv[1])
assert c.ping().version
e = c.enqueue("emails", b"hello")
m = c.claim("emails")[0]
assert m.id == e.id and m.payload == b"hello"
c.ack(m.id, m.claim_token)
PY
    fail "the installed package did not work"
ok
hopperd_stop || fail "hopperd did not stop cleanly"
echo "$passed passed, 0 failed"
