#!/usr/bin/env bash
# Idempotent setup of the system parts tabswarm needs. Seconds when everything is present.
#  - Debian chromium (headless browser tests, demo tabs), libvulkan1 + mesa-vulkan-drivers (Vulkan loader, runtime libs)
#  - coturn + nftables (the NAT traversal test: a TURN relay and NAT routers in network namespaces)
#  - Mesa 25 lavapipe from bookworm-backports, unpacked into .cache/lavapipe (no system package is changed):
#    Dawn refuses bookworm's own Mesa 22 lavapipe.
#  - node_modules (npm ci / npm install)
# The archive URI is taken from this machine's own apt sources: no host name is written here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
lvp_dir="$root/.cache/lavapipe"
icd="$lvp_dir/lvp_icd.json"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s libvulkan1 >/dev/null 2>&1 || need_apt+=(libvulkan1)
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
# NAT tests (tests/nat): a TURN server and nftables masquerade inside network namespaces the test creates.
command -v turnserver >/dev/null 2>&1 || need_apt+=(coturn)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

if [ ! -f "$icd" ]; then
  echo "[setup] fetching Mesa lavapipe from bookworm-backports into $lvp_dir" >&2
  # First deb URI of the machine's Debian main archive (deb822 or one-line format), not the security one.
  uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    u=$(awk '/^URIs:/{for(i=2;i<=NF;i++) print $i}' "$f" | grep -v security | head -n1 || true)
    [ -n "$u" ] && { uri="$u"; break; }
  done
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      u=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^(http|https|ftp|file):/) {print $i; exit}}' "$f" | head -n1 || true)
      [ -n "$u" ] && { uri="$u"; break; }
    done
  fi
  [ -n "$uri" ] || { echo "[setup] no Debian archive URI found in the apt sources" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  echo "deb $uri bookworm-backports main" > "$tmp/sources.list"
  aptopts=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/nonexistent
           -o Dir::State::Lists="$tmp/lists" -o Dir::Cache::Archives="$tmp/archives" -o APT::Get::List-Cleanup=0)
  apt-get "${aptopts[@]}" update -qq >&2
  ver=$(apt-cache "${aptopts[@]}" madison mesa-vulkan-drivers | awk -F'|' '/bookworm-backports/{gsub(/ /,"",$2); print $2; exit}')
  [ -n "$ver" ] || { echo "[setup] mesa-vulkan-drivers not found in bookworm-backports" >&2; exit 1; }
  (cd "$tmp" && apt-get "${aptopts[@]}" download "mesa-vulkan-drivers=$ver" >&2)
  mkdir -p "$lvp_dir"
  dpkg-deb -x "$tmp"/mesa-vulkan-drivers_*.deb "$lvp_dir/root"
  lib=$(find "$lvp_dir/root" -name libvulkan_lvp.so | head -n1)
  [ -n "$lib" ] || { echo "[setup] libvulkan_lvp.so missing from the package" >&2; exit 1; }
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.4.305"}}\n' "$lib" > "$icd.tmp"
  mv "$icd.tmp" "$icd"
  echo "[setup] lavapipe $ver ready: $icd" >&2
fi

if [ ! -d node_modules/webgpu ] || [ ! -d node_modules/vitest ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing npm packages" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
fi
