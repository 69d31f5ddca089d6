#!/usr/bin/env bash
# `npm run lint`: the type check (tsc --noEmit over tsconfig.json: src, tests, bench, ...), ESLint (typescript-eslint,
# import style), the import boundaries between folders (dependency-cruiser, .dependency-cruiser.cjs) and formatting
# (Prettier --check). Runs all four, so one report shows every problem; fails if any failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
status=0
# Vitest strips types without checking them, and nothing else would check a bench that no test imports.
echo "[lint] tsc --noEmit" >&2
npx tsc --noEmit -p . || status=1
echo "[lint] eslint" >&2
npx eslint --max-warnings 0 . || status=1
echo "[lint] import boundaries (dependency-cruiser)" >&2
npx depcruise --config .dependency-cruiser.cjs --output-type err src signaling-server bench bin tests || status=1
echo "[lint] prettier --check" >&2
npx prettier --check --log-level warn '**/*.{ts,js,mjs,cjs}' || status=1
[ "$status" -eq 0 ] && echo "[lint] clean" >&2
exit "$status"
