#!/bin/bash
# Per-packet cost of a ruleset with many open ports, in private network
# namespaces (the host's firewall is never touched). Needs root.
#
#   bash bench/packet.sh                       # N = 10 100 1000 5000, IPv4 and IPv6
#   REPS=9 COUNT=100000 bash bench/packet.sh   # more runs, more datagrams per run
#   SIZES="10 5000" FAMILIES=4 bash bench/packet.sh
#   IPTABLES=legacy bash bench/packet.sh       # iptables-legacy-restore for (b)
#   RAW=1 bash bench/packet.sh                 # also every run's figure
#   NFT_SED='/jump input-icmpv6/d' bash bench/packet.sh
#                   # try a change of the nft printer without rebuilding: the
#                   # sed script is applied to every rendered nft.rules
#
# The policy is `extif eth0; open tcp 22; open udp P1, P2, ..., PN;` with
# P1..PN = 10000, 10002, ... (every other port: no two adjacent, so nothing
# merges into a range), rendered by `examples/render_ports.rs` with the
# project's own printers. It is loaded in a firewall namespace as
#   empty     no ruleset at all (the baseline)
#   ct        one base chain with one rule, `ct state established,related
#             accept` (what any stateful ruleset pays: conntrack, one hook)
#   nft       the nftables rendering, `nft -f` (a named plain set: the list
#             has no range; the ICMPv6 defaults behind one jump)
#   iptables  the iptables rendering, `iptables-restore` + `ip6tables-restore`
#             (multiport rules of 15 ports each, in the `ext-in` chain)
# and a sender namespace, linked to it by a veth pair (the firewall's side is
# `eth0`), sends COUNT UDP datagrams (after WARMUP untimed ones) from one
# socket to PN, the last-listed port (`examples/udp_flood.rs`), where
# `bench/udp_count.py` receives and counts them. The receiver never answers,
# so conntrack never sees a reply: every datagram is `ct state new` and walks
# the chain to its rule.
#
# Through a veth pair the firewall namespace's input path (netfilter
# included) runs inside the sender's `send()`, so the sender's time per
# datagram is the cost of one packet end to end. Two figures: the sender's
# CPU time per datagram (the main one: the time other jobs held the CPU is
# not in it) and its wall time. A run counts only if the receiver got every
# datagram. Each run uses two fresh namespaces; the three rulesets alternate
# within every repetition (in a rotating order), so load on the machine hits
# them alike. Medians of REPS runs; each ruleset's ratio is to the empty
# ruleset's median of the same size and family in the same script run, and
# "flat" is the ruleset's median at N over its median at the first size.
set -euo pipefail

REPS=${REPS:-7}
COUNT=${COUNT:-50000}
WARMUP=${WARMUP:-2000}
SIZES=${SIZES:-"10 100 1000 5000"}
FAMILIES=${FAMILIES:-"4 6"}
IPTABLES=${IPTABLES:-nft}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/packet.sh: needs root (it creates network namespaces)" >&2
  exit 1
fi
case $IPTABLES in
  nft | legacy) ;;
  *)
    echo "bench/packet.sh: IPTABLES=$IPTABLES: nft or legacy" >&2
    exit 1
    ;;
esac
bindir=${EXAMPLES_DIR:-}
if [ -z "$bindir" ]; then
  (cd "$here" && cargo build --quiet --release --example render_ports --example udp_flood)
  bindir=$(cd "$here" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/examples
fi
render=$bindir/render_ports
flood=$bindir/udp_flood
count=$here/bench/udp_count.py

prefix=fwpkt-$$
work=$(mktemp -d)
rpid=
cleanup() {
  # (no `a && b` here: under `set -e` a failing last command would end the
  # trap before the namespaces are deleted)
  if [ -n "$rpid" ]; then kill "$rpid" 2>/dev/null || true; fi
  ip netns del "$prefix-f" 2>/dev/null || true
  ip netns del "$prefix-s" 2>/dev/null || true
  rm -rf -- "$work"
}
trap cleanup EXIT

# Two fresh namespaces: $prefix-f (the firewall: eth0, 198.51.100.1,
# 2001:db8:64::1) and $prefix-s (the sender: s0, .2 and ::2), with static
# neighbour entries so that no resolution delays the first datagrams.
fresh_pair() {
  local ns
  for ns in "$prefix-f" "$prefix-s"; do
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
  done
  # `Peer netns reference is invalid` was printed once on a loaded machine:
  # the one command that names the peer namespace gets a second try.
  ip -n "$prefix-f" link add eth0 type veth peer name s0 netns "$prefix-s" ||
    { sleep 0.2 && ip -n "$prefix-f" link add eth0 type veth peer name s0 netns "$prefix-s"; }
  ip -n "$prefix-f" link set lo up
  ip -n "$prefix-s" link set lo up
  ip -n "$prefix-f" addr add 198.51.100.1/24 dev eth0
  ip -n "$prefix-f" addr add 2001:db8:64::1/64 dev eth0 nodad
  ip -n "$prefix-s" addr add 198.51.100.2/24 dev s0
  ip -n "$prefix-s" addr add 2001:db8:64::2/64 dev s0 nodad
  ip -n "$prefix-f" link set eth0 up
  ip -n "$prefix-s" link set s0 up
  local mac
  mac=$(ip -n "$prefix-f" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  ip -n "$prefix-s" neigh replace 198.51.100.1 lladdr "$mac" dev s0 nud permanent
  ip -n "$prefix-s" neigh replace 2001:db8:64::1 lladdr "$mac" dev s0 nud permanent
}

load() { # RULESET DIR
  local f=$prefix-f
  case $1 in
    empty) ;;
    ct) ip netns exec "$f" timeout 60 nft -f "$work/ct.rules" ;;
    nft) ip netns exec "$f" timeout 60 nft -f "$2/nft.rules" ;;
    iptables)
      ip netns exec "$f" timeout 60 "iptables-$IPTABLES-restore" -w <"$2/v4.rules"
      ip netns exec "$f" timeout 60 "ip6tables-$IPTABLES-restore" -w <"$2/v6.rules"
      ;;
  esac
}

# One measurement: sets $cpu and $wall (nanoseconds per datagram), or fails.
measure() { # RULESET DIR FAMILY PORT
  local ruleset=$1 dir=$2 fam=$3 port=$4 dst total out=$work/recv.out sent got i
  if [ "$fam" = 4 ]; then dst=198.51.100.1; else dst=2001:db8:64::1; fi
  total=$((COUNT + WARMUP))
  fresh_pair
  load "$ruleset" "$dir"
  : >"$out"
  ip netns exec "$prefix-f" timeout 150 python3 "$count" "$dst" "$port" "$total" >"$out" &
  rpid=$!
  for ((i = 0; i < 100; i++)); do
    grep -q ready "$out" && break
    sleep 0.05
  done
  if ! grep -q ready "$out"; then
    echo "bench/packet.sh: the receiver did not start" >&2
    return 1
  fi
  sent=$(ip netns exec "$prefix-s" timeout 120 "$flood" "$dst" "$port" "$COUNT" "$WARMUP")
  wait "$rpid"
  rpid=
  got=$(tail -n 1 "$out")
  if [ "$got" != "$total" ]; then
    echo "bench/packet.sh: $ruleset, IPv$fam, port $port: the receiver got $got of $total datagrams" >&2
    return 1
  fi
  read -r cpu wall <<<"$(awk -v s="$sent" -v n="$COUNT" 'BEGIN { split(s, t, " "); printf "%.3f %.3f", t[1] / n, t[2] / n }')"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
us() { awk -v ns="$1" 'BEGIN {printf "%.2f", ns/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

echo "# bench/packet.sh: REPS=$REPS COUNT=$COUNT WARMUP=$WARMUP IPTABLES=$IPTABLES, $(nproc) cores, $(uname -r)"
echo "# $(nft --version), $("iptables-$IPTABLES" --version); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "${NFT_SED:-}" ] || echo "# the nft rendering edited with: sed -e '$NFT_SED'"
rulesets=(empty ct nft iptables)
first=${SIZES%% *}
cat >"$work/ct.rules" <<'NFT'
table inet bench_ct {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
	}
}
NFT
for n in $SIZES; do
  dir=$work/r$n
  mkdir -p "$dir"
  last=$("$render" udp "$n" "$dir")
  if [ -n "${NFT_SED:-}" ]; then sed -i -e "$NFT_SED" "$dir/nft.rules"; fi
  echo "$last" >"$work/last.$n"
  for fam in $FAMILIES; do
    for r in "${rulesets[@]}"; do : >"$work/$r.$n.$fam.cpu" && : >"$work/$r.$n.$fam.wall"; done
    for ((rep = 0; rep < REPS; rep++)); do
      for ((k = 0; k < ${#rulesets[@]}; k++)); do
        r=${rulesets[(rep + k) % ${#rulesets[@]}]}
        measure "$r" "$dir" "$fam" "$last"
        echo "$cpu" >>"$work/$r.$n.$fam.cpu"
        echo "$wall" >>"$work/$r.$n.$fam.wall"
      done
    done
  done
done
for what in cpu wall; do
  echo
  if [ "$what" = cpu ]; then
    echo "sender CPU time per datagram to the last-listed port (us, medians of $REPS)"
  else
    echo "sender wall time per datagram to the last-listed port (us, medians of $REPS)"
  fi
  printf '%-6s %-4s %7s %7s %7s %9s %6s %5s %9s %9s %5s\n' ports fam empty ct nft nft/empty nft/ct flat iptables ipt/empty flat
  for fam in $FAMILIES; do
    for n in $SIZES; do
      e=$(median <"$work/empty.$n.$fam.$what")
      c=$(median <"$work/ct.$n.$fam.$what")
      f=$(median <"$work/nft.$n.$fam.$what")
      i=$(median <"$work/iptables.$n.$fam.$what")
      f0=$(median <"$work/nft.$first.$fam.$what")
      i0=$(median <"$work/iptables.$first.$fam.$what")
      printf '%-6s %-4s %7s %7s %7s %9s %6s %5s %9s %9s %5s\n' "$n" "v$fam" "$(us "$e")" "$(us "$c")" "$(us "$f")" \
        "$(ratio "$f" "$e")" "$(ratio "$f" "$c")" "$(ratio "$f" "$f0")" "$(us "$i")" "$(ratio "$i" "$e")" "$(ratio "$i" "$i0")"
      if [ -n "${RAW:-}" ]; then
        for r in "${rulesets[@]}"; do echo "#   $r: $(tr '\n' ' ' <"$work/$r.$n.$fam.$what")"; done
      fi
    done
  done
done
echo
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
