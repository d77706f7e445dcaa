#!/usr/bin/env bash
# hopperd's config file (--config / HOPPER_CONFIG, INI read with libinih):
# precedence flag > environment > file > default, errors naming file:line,
# and --print-config output that reads back to the same settings.
set -euo pipefail
hopperd=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
unset HOPPER_SYNC HOPPER_LISTEN HOPPER_DATA HOPPER_CONFIG HOPPER_MAX_PAYLOAD
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }

# setting NAME ARGS...: the value of NAME in hopperd ARGS --print-config.
setting() {
    local name=$1
    shift
    "$hopperd" "$@" --print-config | sed -n "s/^$name = //p" | paste -sd, -
}
# refused TEXT ARGS...: hopperd exits 2 and says TEXT.
refused() {
    local text=$1 rc=0
    shift
    "$hopperd" "$@" > out 2> err || rc=$?
    [ "$rc" -eq 2 ] || fail "hopperd $* exited $rc, wanted 2"
    grep -qF -- "$text" err || fail "hopperd $* did not say '$text': $(cat err)"
    ok
}

cat > a.ini <<'INI'
; a comment
[hopperd]
listen = tcp://127.0.0.1:7999
listen = tcp://127.0.0.1:7998
data = /var/lib/hopper
sync = none
max-payload = 2M
allow-anonymous = true
INI

# Defaults, then the file over them.
[ "$(setting sync)" = full ] || fail "default sync"; ok
[ "$(setting sync --config a.ini)" = none ] || fail "file sync"; ok
[ "$(setting max-payload --config=a.ini)" = 2097152 ] || fail "file size"; ok
[ "$(setting listen --config a.ini)" = "tcp://127.0.0.1:7999,tcp://127.0.0.1:7998" ] ||
    fail "file listeners: $(setting listen --config a.ini)"; ok
[ "$(setting allow-anonymous --config a.ini)" = true ] || fail "file bool"; ok
[ "$(HOPPER_CONFIG=a.ini setting data)" = /var/lib/hopper ] || fail "HOPPER_CONFIG"; ok
# The environment over the file, a flag over both.
[ "$(HOPPER_SYNC=full setting sync --config a.ini)" = full ] || fail "env over file"; ok
[ "$(HOPPER_LISTEN=tcp://127.0.0.1:1 setting listen --config a.ini)" = tcp://127.0.0.1:1 ] ||
    fail "env listeners over file"; ok
[ "$(HOPPER_SYNC=full setting sync --config a.ini --sync none)" = none ] ||
    fail "flag over env"; ok
[ "$(setting listen --config a.ini --listen tcp://127.0.0.1:2)" = tcp://127.0.0.1:2 ] ||
    fail "flag listeners over file"; ok

# The default listener is where libhopper and the hopper command go when
# given no URL: HOPPER_DEFAULT_URL of hopper.h, which cannot include
# hopperd's table.
header=$(dirname "$(realpath "$0")")/../../clients/c/include/hopper/hopper.h
want=$(sed -n 's/^#define HOPPER_DEFAULT_URL "\(.*\)"$/\1/p' "$header")
[ -n "$want" ] || fail "no HOPPER_DEFAULT_URL in $header"
[ "$(setting listen)" = "$want" ] ||
    fail "hopperd listens on $(setting listen) by default, hopper.h says $want"; ok

# Round trip: the printed settings, read back, print the same.
"$hopperd" --config a.ini --log-level debug --print-config > p.ini
"$hopperd" --config p.ini --print-config | diff - p.ini > /dev/null ||
    fail "print-config does not read back the same"; ok

# Errors name the file and line.
printf '[hopperd]\nsync = none\nbogus = 1\n' > b.ini
refused "b.ini:3: unknown key 'bogus'" --config b.ini
printf 'sync = none\n' > c.ini
refused "c.ini:1: settings belong in a [hopperd] section" --config c.ini
printf '[hopperd]\n\nsync = maybe\n' > d.ini
refused "d.ini:3: --sync 'maybe': must be full or none" --config d.ini
printf '[hopperd]\nthis is not a setting\n' > e.ini
refused "e.ini:2: not a [section] or key = value line" --config e.ini
printf '[hopperd]\nallow-anonymous = yes\n' > f.ini
refused "f.ini:2: allow-anonymous must be true or false" --config f.ini
printf '[hopperd]\nconfig = other.ini\n' > g.ini
refused "g.ini:2: unknown key 'config'" --config g.ini
refused "cannot read config file 'missing.ini'" --config missing.ini
refused "--config needs a value" --config

# A broker really runs on what the file says.
printf '[hopperd]\nlisten = tcp://127.0.0.1:0\ndata = %s/d\nsync = none\n' "$work" > run.ini
"$hopperd" --config run.ini > run.out 2> run.err &
pid=$!
for _ in $(seq 600); do
    grep -q "data in" run.out && break
    sleep 0.05
done
grep -q "data in $work/d (sync none)" run.out || fail "hopperd did not use run.ini: $(cat run.out run.err)"
kill -TERM "$pid"
wait "$pid" || fail "hopperd exited non-zero"
ok

# JSON logs: every line hopperd writes is one JSON object with ts, level
# and msg (read with jq); a format it does not know is refused.
refused "--log-format 'xml': must be kv or json" --log-format xml
[ "$(HOPPER_LOG_FORMAT=json setting log-format --config a.ini)" = json ] ||
    fail "HOPPER_LOG_FORMAT"; ok
"$hopperd" --config run.ini --log-format json --log-level debug \
    > json.out 2> json.err &
pid=$!
for _ in $(seq 600); do
    grep -q "data in" json.out && break
    sleep 0.05
done
grep -q "data in" json.out || fail "hopperd did not start: $(cat json.out json.err)"
kill -TERM "$pid"
wait "$pid" || fail "hopperd exited non-zero"
[ "$(wc -l < json.err)" -ge 3 ] || fail "too few log lines: $(cat json.err)"
jq -s -e 'length >= 3 and all(has("ts") and has("level") and has("msg"))' json.err > /dev/null ||
    fail "log lines are not JSON objects with ts, level, msg: $(cat json.err)"
jq -s -e 'map(select(.msg == "stopping")) | length == 1 and .[0].signal == 15' json.err > /dev/null ||
    fail "no stopping line with a numeric signal: $(cat json.err)"
ok
echo "$passed passed, 0 failed"
