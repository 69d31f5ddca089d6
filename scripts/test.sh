#!/usr/bin/env bash
# `npm test`: set up what is missing, then run every vitest suite inside a fresh network namespace with only
# loopback up, so no test can reach anything but 127.0.0.0/8 and ::1 (WebRTC included).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
  exec unshare -n -- bash -c 'ip link set lo up && exec npx vitest run "$@"' vitest "$@"
else
  echo "[test] not root: running without a private network namespace (traffic still stays on loopback)" >&2
  exec npx vitest run "$@"
fi
