#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian 12 package that otagw's build, tests, fuzzers and
# benchmarks need. Idempotent and non-interactive; run as root (or via sudo).
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake pkg-config git ca-certificates clang-format clang-tidy
  clang libfuzzer-14-dev libclang-rt-14-dev
  # crypto / TLS, storage, event loop, JSON
  libssl-dev openssl zlib1g-dev libsqlite3-dev sqlite3 libev-dev libjansson-dev
  # GSM helpers and memory contexts
  libosmocore-dev libtalloc-dev
  # HTTP(S) + WebSocket on the libev loop
  libwebsockets-dev libwebsockets-evlib-ev
  # SMPP codec for the simulator's SMSC side; Kannel bearerbox as the SMPP peer
  libsmpp34-dev kannel kannel-dev
  # HSM (PKCS#11) for the key store and its tests
  softhsm2 libp11-dev libp11-kit-dev opensc-pkcs11
  # unit tests
  libcmocka-dev
  # outside judges and helpers used by integration tests
  python3 tshark procps
  # integration tests compute key check values independently of our C code
  python3-cryptography
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The brief asks for 'apt-get update' first; it is cheap and keeps candidates fresh.
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#PKGS[@]} packages already installed"
fi
