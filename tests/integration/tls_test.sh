#!/usr/bin/env bash
# TLS end to end: a throw-away CA, server and client certificates made with
# the openssl command, hopperd on tls+tcp://127.0.0.1:0, and the hopper CLI
# proving that the right CA connects, a wrong CA, a wrong name or plain TCP
# do not, that --tls-client-ca refuses clients without a certificate from
# that CA (or with one its CRL revokes), that the HTTP API over TLS
# (--api-tls) does the same for curl, and that hopperd will not start with
# TLS half set up.
#
# mbedTLS 2.28 (NNG's TLS) cannot match IP addresses in certificates, so the
# server certificate names DNS:hopper.test and clients dial 127.0.0.1 with
# --tls-server-name hopper.test.
set -euo pipefail
hopperd=$(realpath "$1") # absolute: the test works inside its temp dir
hopper=$(realpath "$2")
. "$(dirname "$0")/lib_hopperd.sh"
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }

# ---- certificates: EC P-256 keys, valid for a day ---------------------------
cd "$work"
cat > openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:hopper.test
[server_ip]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:hopper.test, IP:127.0.0.1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
serial=1
ossl() { openssl "$@" 2> "$work/openssl.err" || fail "openssl $1: $(cat "$work/openssl.err")"; }
new_ca() { # NAME CN
    ossl req -config openssl.cnf -x509 -newkey ec \
        -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj "/CN=$2" -extensions ca -keyout "$1.key" -out "$1.crt"
}
new_cert() { # NAME CN CA PROFILE
    ossl req -config openssl.cnf -new -newkey ec \
        -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
    serial=$((serial + 1))
    ossl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" \
        -set_serial "$serial" -days 1 -extfile openssl.cnf -extensions "$4" \
        -out "$1.crt"
    chmod 600 "$1.key"
}
new_ca ca "Hopper Test CA"
new_ca other "Some Other CA"
new_cert server hopper.test ca server
new_cert server_ip hopper.test ca server_ip
new_cert client worker-1 ca client
new_cert stranger worker-2 other client
cat server.crt server.key > server.pem
chmod 600 server.pem

# ---- helpers ----------------------------------------------------------------

# start_broker DATA ARGS...: starts hopperd on tls+tcp://127.0.0.1:0 and
# sets pid and url from the "listening on" line.
start_broker() {
    local data=$1
    shift
    local rc=0
    hopperd_start "$work/hopperd.out" "$work/hopperd.err" \
        --data "$work/$data" --listen tls+tcp://127.0.0.1:0 \
        --log-level warn "$@" || rc=$?
    pid=$hopperd_pid url=$hopperd_url
    [ "$rc" -eq 0 ] || fail "hopperd did not start: $(cat "$work/hopperd.err")"
}

stop_broker() {
    local rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || fail "hopperd exited $rc: $(cat "$work/hopperd.err")"
}

# run CODE TEXT -- hopper args...: runs the CLI against $url, checks the
# exit code and, when TEXT is not empty, that stdout+stderr contain it.
# Calls meant to fail get a short timeout: a failed handshake is only seen
# by the client as no connection.
run() {
    local code=$1 text=$2 timeout=5000
    shift 3
    [ "$code" -eq 0 ] || timeout=1500
    local rc=0
    "$hopper" --url "$url" --timeout "$timeout" "$@" \
        > "$work/out" 2> "$work/err" || rc=$?
    [ "$rc" -eq "$code" ] ||
        fail "hopper $* exited $rc, wanted $code: $(cat "$work/out" "$work/err")"
    if [ -n "$text" ]; then
        grep -qF -- "$text" "$work/out" "$work/err" ||
            fail "hopper $* did not print '$text': $(cat "$work/out" "$work/err")"
    fi
    ok
}

# refuse TEXT ARGS...: hopperd must exit 1 before listening, saying TEXT.
refuse() {
    local text=$1
    shift
    local rc=0
    "$hopperd" --data "$work/refused" --log-level error "$@" \
        > "$work/refused.out" 2> "$work/refused.err" || rc=$?
    [ "$rc" -eq 1 ] || fail "hopperd $* exited $rc, wanted 1: $(cat "$work/refused.err")"
    grep -qF -- "$text" "$work/refused.err" ||
        fail "hopperd $* did not say '$text': $(cat "$work/refused.err")"
    if grep -q "listening on" "$work/refused.out"; then fail "hopperd $* listened"; fi
    ok
}

trust=(--tls-ca ca.crt --tls-server-name hopper.test)

# ---- hopperd refuses TLS half set up ----------------------------------------
tls=(--listen tls+tcp://127.0.0.1:0)
refuse "needs a certificate and its key: give --tls-cert and --tls-key" "${tls[@]}"
refuse "--tls-cert and --tls-key go together" "${tls[@]}" --tls-cert server.crt
refuse "TLS key 'client.key' does not match certificate 'server.crt'" \
    "${tls[@]}" --tls-cert server.crt --tls-key client.key
refuse "holds no PEM certificate" "${tls[@]}" --tls-cert server.key --tls-key server.key
refuse "cannot read TLS certificate 'missing.crt'" \
    "${tls[@]}" --tls-cert missing.crt --tls-key server.key
cp server.key loose.key
chmod 644 loose.key
refuse "chmod 600" "${tls[@]}" --tls-cert server.crt --tls-key loose.key
refuse "no listener is tls+tcp://" --listen tcp://127.0.0.1:0 \
    --tls-cert server.crt --tls-key server.key
refuse "cannot read TLS client CA 'missing.crt'" "${tls[@]}" \
    --tls-cert server.crt --tls-key server.key --tls-client-ca missing.crt

# ---- server certificate only ------------------------------------------------
start_broker data1 --tls-cert server.crt --tls-key server.key
[[ $url =~ ^tls\+tcp://127\.0\.0\.1:[0-9]+$ && $url != *:0 ]] ||
    fail "bound URL not reported: '$url'"
ok

run 0 "at $url" -- "${trust[@]}" ping
run 0 "" -- "${trust[@]}" enqueue jobs over-tls
id=$(cat "$work/out")
[ -n "$id" ] || fail "enqueue printed no id"
run 0 "$id" -- "${trust[@]}" claim jobs
grep -q "over-tls" "$work/out" || fail "claim did not return the payload"
ok
# The wrong CA: the client cannot verify the broker, and says why.
run 8 "UNAVAILABLE UNREACHABLE: cannot reach broker at '$url': TLS handshake failed: the broker's certificate is not trusted (unable to get local issuer certificate" \
    -- --tls-ca other.crt --tls-server-name hopper.test ping
# The right CA but a name the certificate does not carry, or the IP
# address from the URL when the certificate has no IP address in it.
run 8 "(hostname mismatch" -- --tls-ca ca.crt --tls-server-name other.test ping
run 8 "(IP address mismatch" -- --tls-ca ca.crt ping
# Both protocol versions are served.
for v in -tls1_2 -tls1_3; do
    openssl s_client "$v" -connect "${url#tls+tcp://}" -CAfile ca.crt \
        -verify_hostname hopper.test -verify_return_error < /dev/null \
        > "$work/s_client" 2>&1 || fail "s_client $v: $(cat "$work/s_client")"
    grep -q "Verify return code: 0 (ok)" "$work/s_client" ||
        fail "s_client $v did not verify: $(cat "$work/s_client")"
    ok
done
# No CA at all is a usage mistake the client reports before dialling.
run 3 "BAD_TLS_CONFIG" -- ping
# Plain TCP to the TLS port gets nowhere.
url_tls=$url
url=tcp://${url_tls#tls+tcp://}
run 8 "UNREACHABLE" -- ping
url=$url_tls
# ... and none of that disturbed the listener.
run 0 "at $url" -- "${trust[@]}" ping
stop_broker
ok

# ---- a certificate with an IP address in it verifies against the URL's
# address, with no server name given ------------------------------------------
start_broker data3 --tls-cert server_ip.crt --tls-key server_ip.key
run 0 "at $url" -- --tls-ca ca.crt ping
stop_broker
ok

# ---- an expired certificate: hopperd starts (the operator may be renewing
# it) but says so loudly -----------------------------------------------------
mkdir old
printf '[ca]\ndefault_ca = c\n[c]\ndatabase = old/index\nnew_certs_dir = old\nserial = old/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' > old/ca.cnf
touch old/index
echo 10 > old/serial
ossl req -config openssl.cnf -new -newkey ec \
    -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=hopper.test \
    -keyout old/server.key -out old/server.csr
ossl ca -batch -config old/ca.cnf -cert ca.crt -keyfile ca.key -notext \
    -startdate 20200101000000Z -enddate 20200102000000Z \
    -in old/server.csr -out old/server.crt
chmod 600 old/server.key
start_broker data4 --tls-cert old/server.crt --tls-key old/server.key
grep -q 'TLS certificate expired.*old/server.crt' "$work/hopperd.err" ||
    fail "no warning for an expired certificate: $(cat "$work/hopperd.err")"
run 8 "certificate has expired" -- "${trust[@]}" ping
stop_broker
ok

# ---- client certificates required (settings from the environment, cert
# and key in one file) --------------------------------------------------------
HOPPER_TLS_CERT=server.pem HOPPER_TLS_KEY=server.pem \
    HOPPER_TLS_CLIENT_CA=ca.crt start_broker data2
run 8 "TLS handshake failed" -- "${trust[@]}" ping
run 8 "TLS handshake failed" -- "${trust[@]}" --tls-cert stranger.crt --tls-key stranger.key ping
mine=(--tls-cert client.crt --tls-key client.key)
run 0 "at $url" -- "${trust[@]}" "${mine[@]}" ping
run 0 "" -- "${trust[@]}" "${mine[@]}" enqueue jobs mutual
id=$(cat "$work/out")
run 0 "$id" -- "${trust[@]}" "${mine[@]}" claim jobs
stop_broker
ok

# ---- the HTTP API over TLS (--api-tls) ----------------------------------------
# api_ping ok|fails URL CURL-ARGS...: an empty JSON Ping with curl, which
# dials hopper.test (the certificate's name) at 127.0.0.1. ok: 200 and the
# broker's version; fails: curl gets no answer at all.
api_ping() {
    local want=$1 api=$2 port rc=0
    shift 2
    port=${api##*:}
    curl -sS --max-time 20 --resolve "hopper.test:$port:127.0.0.1" "$@" \
        -o "$work/api.out" -w '%{http_code}' \
        -H 'Content-Type: application/json' -d '{}' \
        "${api%%://*}://hopper.test:$port/hopper.v1.Broker/Ping" \
        > "$work/api.status" 2> "$work/api.err" || rc=$?
    if [ "$want" = ok ]; then
        [ "$rc" -eq 0 ] && [ "$(cat "$work/api.status")" = 200 ] &&
            grep -q '"version"' "$work/api.out" ||
            fail "curl $* to $api: exit $rc, $(cat "$work/api.status" "$work/api.err" "$work/api.out")"
    else
        [ "$rc" -ne 0 ] ||
            fail "curl $* to $api was answered: $(cat "$work/api.status" "$work/api.out")"
    fi
    ok
}
api_url() { sed -n 's/.* api on \(https:[^ ]*\).*/\1/p' "$work/hopperd.out"; }
start_broker data5 --tls-cert server.crt --tls-key server.key \
    --api-tls 127.0.0.1:0
api=$(api_url)
[[ $api =~ ^https://127\.0\.0\.1:[0-9]+$ && $api != *:0 ]] ||
    fail "bound API URL not reported: '$api'"
ok
api_ping ok "$api" --cacert ca.crt
api_ping fails "$api" --cacert other.crt
api_ping fails "http://${api#https://}"
api_ping ok "$api" --cacert ca.crt
stop_broker
# With --tls-client-ca the API, too, wants a certificate from that CA.
start_broker data6 --tls-cert server.crt --tls-key server.key \
    --tls-client-ca ca.crt --api-tls 127.0.0.1:0
api=$(api_url)
api_ping ok "$api" --cacert ca.crt --cert client.crt --key client.key
api_ping fails "$api" --cacert ca.crt
api_ping fails "$api" --cacert ca.crt --cert stranger.crt --key stranger.key
stop_broker
ok

# ---- a CRL after the CA in the client CA file revokes a certificate -------
mkdir crl
printf '[ca]\ndefault_ca = c\n[c]\ndatabase = crl/index\ncrlnumber = crl/number\ndefault_md = sha256\ndefault_crl_days = 1\n' > crl/ca.cnf
touch crl/index
echo 01 > crl/number
ossl ca -config crl/ca.cnf -cert ca.crt -keyfile ca.key -revoke client.crt
ossl ca -config crl/ca.cnf -cert ca.crt -keyfile ca.key -gencrl -out crl/ca.crl
cat ca.crt crl/ca.crl > ca+crl.pem
new_cert client2 worker-3 ca client
start_broker data2 --tls-cert server.crt --tls-key server.key \
    --tls-client-ca ca+crl.pem
run 8 "TLS handshake failed" -- "${trust[@]}" "${mine[@]}" ping
run 0 "at $url" -- "${trust[@]}" --tls-cert client2.crt --tls-key client2.key ping
stop_broker
ok

echo "$passed passed, 0 failed"
