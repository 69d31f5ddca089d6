#!/usr/bin/env bash
# `npm run bench [-- part...]`: every benchmark in one run, inside a private network namespace with only loopback
# up (the WebRTC parts), like the tests. Parts: matmul attention train swarm net (default: all); profile, compress,
# byzantine, resilience and big only when named.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
  exec unshare -n -- bash -c 'ip link set lo up && exec node bin/run-ts.mjs bench/run.ts "$@"' bench "$@"
fi
exec node bin/run-ts.mjs bench/run.ts "$@"
