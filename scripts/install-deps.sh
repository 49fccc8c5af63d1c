#!/bin/sh
# Installs every Debian package that building, demoing and testing Sluice needs.
# The one place dependencies come from: Debian 12's archive through apt-get, nothing else.
# Safe to run repeatedly: it only calls apt-get when a package is missing.
set -eu

PACKAGES="build-essential cmake pkg-config clang libclang-rt-14-dev
libuv1-dev libyaml-dev libcmocka-dev librocksdb-dev libjansson-dev
libzstd-dev liblz4-dev libssl-dev openssl libsqlite3-dev sqlite3
protobuf-c-compiler libprotobuf-c-dev libmicrohttpd-dev libgnutls28-dev
libhiredis-dev redis-server libcurl4-openssl-dev iperf3
slurm-wlm munge curl jq"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
