#!/usr/bin/env bash
# Runs a command after setup, with XDG_RUNTIME_DIR set (silences a harmless Dawn warning).
# The Vulkan ICD itself is chosen in-process by src/gpu/node-gpu.ts before Dawn starts.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
exec "$@"
