#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the dependencies, builds otagw and runs its main job as far as it
# exists today: otatool's demo encodes a wallet push SMS and an SCP80 command
# packet, plays the card (decrypts, verifies, answers with a PoR) and decodes
# the PoR again, printing every step.   SKIP_DEPS=1 skips the apt-get stage.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SKIP_DEPS:-}" ]; then
  bash scripts/install-deps.sh
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}"
exec build/bin/otatool demo
