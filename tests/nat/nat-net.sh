#!/usr/bin/env bash
# Two NATed peers and a public segment, in network namespaces held by the test's own processes (no `ip netns`
# names, no /run/netns: nothing outlives the holders, and the veths die with their namespaces).
#   nat-net.sh PID_A PID_RA PID_B PID_RB PID_P
# Each PID is a process (`unshare -n sleep`) holding an empty network namespace:
#   A  10.99.1.2 --- RA 10.99.1.1 | 198.51.100.11 ---+
#                                                     br0 198.51.100.2  (P: signaling, coordinator, coturn)
#   B  10.99.2.2 --- RB 10.99.2.1 | 198.51.100.12 ---+
# RA and RB masquerade with random ports (nftables): symmetric-like NATs, so only a TURN relay gets A and B talking.
# Recipe: shared/notes/nat-namespaces.md. Run as root, from a namespace of its own (npm test's `unshare -n`).
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 PID_A PID_RA PID_B PID_RB PID_P" >&2; exit 2; }
declare -A NS=([A]=$1 [RA]=$2 [B]=$3 [RB]=$4 [P]=$5)
nsx() { local ns=$1; shift; nsenter -t "${NS[$ns]}" -n -- "$@"; }

for n in A RA B RB P; do nsx "$n" ip link set lo up; done
nsx P ip link add br0 type bridge
nsx P ip addr add 198.51.100.2/24 dev br0
nsx P ip link set br0 up
i=0
for n in A B; do
  i=$((i + 1))
  # peer <-> its router (private side)
  ip link add "v$n" type veth peer name "vR$n"
  ip link set "v$n" netns "${NS[$n]}"
  ip link set "vR$n" netns "${NS[R$n]}"
  # router <-> the public bridge
  ip link add "wR$n" type veth peer name "wP$n"
  ip link set "wR$n" netns "${NS[R$n]}"
  ip link set "wP$n" netns "${NS[P]}"
  nsx "$n" ip addr add "10.99.$i.2/24" dev "v$n"
  nsx "$n" ip link set "v$n" up
  nsx "$n" ip route add default via "10.99.$i.1"
  nsx "R$n" ip addr add "10.99.$i.1/24" dev "vR$n"
  nsx "R$n" ip link set "vR$n" up
  nsx "R$n" ip addr add "198.51.100.1$i/24" dev "wR$n"
  nsx "R$n" ip link set "wR$n" up
  nsx P ip link set "wP$n" master br0
  nsx P ip link set "wP$n" up
  nsx "R$n" sysctl -qw net.ipv4.ip_forward=1
  nsx "R$n" nft add table ip nat
  nsx "R$n" nft "add chain ip nat post { type nat hook postrouting priority 100; }"
  nsx "R$n" nft add rule ip nat post oifname "wR$n" masquerade random
done
