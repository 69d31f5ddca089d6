#!/usr/bin/env bash
# `npm test`: set up what is missing, lint (scripts/lint.sh), then run every vitest suite inside a fresh network
# namespace with only loopback up, so no test can reach anything but 127.0.0.0/8 and ::1 (WebRTC included).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# The whole suite (`npm test`, CI) is linted first; a run of chosen paths is not. TABSWARM_SKIP_LINT=1 skips it.
if [ $# -eq 0 ] && [ "${TABSWARM_SKIP_LINT:-0}" != "1" ]; then
  bash scripts/lint.sh
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# The whole suite runs tests/big (GPT-2 small across peers: minutes of both cores) after the rest, alone, so it
# neither starves the timing-sensitive suites nor is starved by them. Chosen paths run as given.
if [ $# -eq 0 ]; then
  run='npx vitest run --exclude "tests/big/**" && npx vitest run tests/big'
else
  run='npx vitest run "$@"'
fi
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
  exec unshare -n -- bash -c "ip link set lo up && $run" vitest "$@"
else
  echo "[test] not root: running without a private network namespace (traffic still stays on loopback)" >&2
  exec bash -c "$run" vitest "$@"
fi
