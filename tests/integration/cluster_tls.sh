#!/bin/sh
# A cluster with TLS on both planes (security.ssl.internal.*): a throwaway CA and node
# certificate made with the openssl command; the JobManager's local driver starts TaskManagers
# that inherit the settings; Nexmark q5 at p=3 (RPC and remote channels all over mutual TLS)
# gives the embedded run's result; the JobManager's log shows TLS connections; a CLI without
# TLS, and one whose certificate comes from another CA, are refused with the reason, and the
# cluster keeps running. The REST API over HTTPS with client certificates
# (security.ssl.rest.*): curl with the node's certificate is served, without one or with the
# rogue CA's it is refused (401 with the reason), plain HTTP gets no answer.
# usage: cluster_tls.sh SLUICE
set -u
SLUICE=$1
. "$(dirname "$0")/cluster_lib.sh"
setup_cluster_test tls

command -v openssl > /dev/null || fail "the openssl command is missing (scripts/install-deps.sh installs it)"
C="$WORK/certs"
mkdir -p "$C"
(
    cd "$C" || exit 1
    # The address: HTTPS clients (curl) check it against the certificate.
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' > leaf.ext
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >> leaf.ext
    for ca in ca rogue-ca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $ca.key -out $ca.pem \
            -days 2 -subj /CN=$ca -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign || exit 1
    done
    for leaf in node:ca rogue:rogue-ca; do
        n=${leaf%%:*} ca=${leaf#*:}
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key -out $n.csr \
            -subj /CN=sluice-$n || exit 1
        openssl x509 -req -in $n.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -out $n.pem -days 2 \
            -extfile leaf.ext || exit 1
    done
) > "$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log"; fail "making the certificates"; }
TLS="-D security.ssl.internal.enabled=true -D security.ssl.internal.keystore=$C/node.pem
     -D security.ssl.internal.key=$C/node.key -D security.ssl.internal.truststore=$C/ca.pem"

# shellcheck disable=SC2086
REST_TLS="-D security.ssl.rest.enabled=true -D security.ssl.rest.keystore=$C/node.pem -D security.ssl.rest.key=$C/node.key
          -D security.ssl.rest.truststore=$C/ca.pem -D security.ssl.rest.authentication-enabled=true"
# shellcheck disable=SC2086
SLUICE_LOG=debug start_local_jobmanager -D resourcemanager.taskmanager-timeout=60s $TLS $REST_TLS

# shellcheck disable=SC2086
timeout 300 "$SLUICE" nexmark --query q5 --events 1000000 -p 3 --jobmanager "$JMADDR" $TLS \
    --output "$WORK/tls.csv" 2> "$WORK/submit.err" || { cat "$WORK/submit.err"; fail "q5 on the TLS cluster"; }
"$SLUICE" nexmark --query q5 --events 1000000 -p 3 --quiet -D taskmanager.numberOfTaskSlots=3 \
    --output "$WORK/local.csv" || fail "q5 on the embedded mini-cluster"
[ "$(LC_ALL=C sort "$WORK/tls.csv" | cksum)" = "$(LC_ALL=C sort "$WORK/local.csv" | cksum)" ] ||
    fail "the TLS cluster's result differs from the embedded run"
[ "$(wc -l < "$WORK/local.csv")" -gt 1 ] || fail "no rows: the comparison proves nothing"
grep -q "TLS with .* established" "$WORK/jm.err" || fail "the JobManager's log shows no TLS connection"
echo "ok q5 p=3 over TLS on both planes: $(($(wc -l < "$WORK/local.csv") - 1)) rows identical to the embedded run"

# A client without TLS, and one whose certificate another CA signed: refused, with the reason.
"$SLUICE" list --jobmanager "$JMADDR" > /dev/null 2> "$WORK/plain.err" && fail "a plain client was served"
grep -qi "tls" "$WORK/plain.err" || { cat "$WORK/plain.err"; fail "the plain client's error does not say TLS"; }
"$SLUICE" list --jobmanager "$JMADDR" -D security.ssl.internal.enabled=true \
    -D security.ssl.internal.keystore="$C/rogue.pem" -D security.ssl.internal.key="$C/rogue.key" \
    -D security.ssl.internal.truststore="$C/ca.pem" > /dev/null 2> "$WORK/rogue.err" &&
    fail "a client with an untrusted certificate was served"
[ -s "$WORK/rogue.err" ] || fail "the untrusted client's refusal says nothing"
# shellcheck disable=SC2086
"$SLUICE" list --jobmanager "$JMADDR" $TLS > "$WORK/list.out" || fail "a TLS client was refused"
grep -q " FINISHED " "$WORK/list.out" || fail "the finished job is not listed"
echo "ok plain client refused ($(head -c 120 "$WORK/plain.err")), untrusted certificate refused" \
    "($(head -c 120 "$WORK/rogue.err")), TLS client served"

# The REST API over HTTPS, client certificates required.
case $REST in https://*) ;; *) fail "the REST API is not on HTTPS: $REST" ;; esac
code=$(curl -s -o "$WORK/rest.json" -w '%{http_code}' --cacert "$C/ca.pem" --cert "$C/node.pem" --key "$C/node.key" \
    "$REST/jobs/overview")
[ "$code" = 200 ] && grep -q '"state":"FINISHED"' "$WORK/rest.json" ||
    fail "HTTPS with a trusted client certificate: $code $(cat "$WORK/rest.json")"
code=$(curl -s -o "$WORK/rest.json" -w '%{http_code}' --cacert "$C/ca.pem" "$REST/overview")
[ "$code" = 401 ] && grep -q "client certificate is required" "$WORK/rest.json" ||
    fail "HTTPS without a client certificate: $code $(cat "$WORK/rest.json")"
code=$(curl -s -o "$WORK/rest.json" -w '%{http_code}' --cacert "$C/ca.pem" --cert "$C/rogue.pem" \
    --key "$C/rogue.key" "$REST/overview")
[ "$code" = 401 ] && grep -q "client certificate refused" "$WORK/rest.json" ||
    fail "HTTPS with the rogue CA's client certificate: $code $(cat "$WORK/rest.json")"
curl -s -o /dev/null --max-time 5 "http${REST#https}/overview" && fail "plain HTTP was served on the HTTPS port"
curl -s -o /dev/null --max-time 5 "$REST/overview" && fail "the server's certificate was trusted without the CA"
echo "ok REST over HTTPS: trusted client served, no certificate and the rogue CA's refused (401:" \
    "$(head -c 100 "$WORK/rest.json")), plain HTTP and an unverified server refused"

kill "$JM"
wait "$JM"
JM=""
check_sanitizer_logs
