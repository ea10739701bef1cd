#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest otatool_vectors_pkcs11: every OTA vector through the PKCS#11 backend
# (issue #7). Creates a SoftHSM2 token in a temporary directory of its own
# (softhsm2.conf + SOFTHSM2_CONF), then runs
#   otatool vectors --pkcs11 MODULE --token LABEL --pin PIN FILE...
# which imports each vector's keys into the token as non-extractable objects
# and runs the codecs with token keys only. Every vector must pass there,
# single-DES ones included (held as K|K objects): none may be skipped.
# Usage: vectors.sh OTATOOL VECTOR_FILE...   Exit 77 (skip) without SoftHSM2.
set -euo pipefail

otatool=$1
shift
module=${OTAGW_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ ! -r "$module" ] || ! command -v softhsm2-util >/dev/null; then
  echo "SKIP: no SoftHSM2 module at $module"
  if [ "${OTAGW_REQUIRE_P11:-}" = 1 ]; then
    echo "FAIL: OTAGW_REQUIRE_P11=1 (CI installs SoftHSM2)"
    exit 1
  fi
  exit 77
fi

dir=$(mktemp -d /tmp/otagw-p11vec-XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$dir" >"$dir/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm2.conf
softhsm2-util --init-token --free --label otagw-vectors --pin 1234 --so-pin 5678 >/dev/null

status=0
out=$("$otatool" vectors --pkcs11 "$module" --token otagw-vectors --pin 1234 "$@") || status=$?
echo "$out"
# The summary lines must be there: a run that loaded nothing is not a pass.
grep -Eq '^pkcs11: 0 skipped-by-backend' <<<"$out"
grep -Eq '^[1-9][0-9]* passed, 0 failed$' <<<"$out"
exit $status
