#!/bin/bash
# Times apply() against a bare load of the same rules and against the howto's
# one-iptables-command-per-port loop, in a private network namespace (the
# host's firewall is never touched). Needs root.
#
#   bash bench/apply.sh                          # 10, 1000 and 5000 open ports
#   REPS=21 bash bench/apply.sh                  # more repetitions (median is reported)
#   LOOP_MAX=1000 bash bench/apply.sh            # skip the (slow) howto loop above 1000 ports
#   BACKEND=iptables-legacy bash bench/apply.sh  # the backend apply() and the bare load use
#
# BACKEND is one of
#   (unset)          apply() detects the backend, as it does on a host (here:
#                    iptables-nft); the bare load is `iptables-restore`
#   iptables-nft     the same, chosen explicitly (`--backend iptables-nft`)
#   iptables-legacy  apply() with `--backend iptables-legacy`; the bare load is
#                    `iptables-legacy-restore`, the loop `iptables-legacy -A`
#   nftables         the bare load is `nft -f` of the policy's nftables file;
#                    apply() with `--backend nftables` is timed when
#                    examples/apply_policy accepts that backend (until then
#                    its columns say `-`); the loop is the howto's, with
#                    `iptables` (in a namespace of its own)
#
# What is timed, per policy `extif eth0; open tcp 22, 10000, 10001, ...;`:
#   apply()  the library call, as measured inside the process (Applied::elapsed):
#            backup, load, verification (for iptables: both families and
#            ip_forward); re-applied over the same policy, as on a real host.
#   bare     the very texts apply() loads, from the same starting state:
#            `iptables-restore -w <v4; ip6tables-restore -w <v6` (the
#            backend's restore tools), or `nft -f nft.rules`.
#   loop     the howto: `for p in $PORTS; do iptables -A INPUT -p tcp --dport $p
#            -j ACCEPT; done` (IPv4 only, as in the howto), from a flushed table.
# Medians of REPS runs (apply and the bare load alternate, so load on the
# machine affects both alike); the loop runs once.
set -euo pipefail

REPS=${REPS:-11}
LOOP_MAX=${LOOP_MAX:-5000}
SIZES=${SIZES:-"10 1000 5000"}
BACKEND=${BACKEND:-}
here=$(cd "$(dirname "$0")/.." && pwd)

backend_args=()
case $BACKEND in
  "") variant=nft ;;
  iptables-nft | iptables-legacy)
    variant=${BACKEND#iptables-}
    backend_args=(--backend "$BACKEND")
    ;;
  nftables)
    variant=nft
    backend_args=(--backend nftables)
    ;;
  *)
    echo "bench/apply.sh: BACKEND=$BACKEND: iptables-nft, iptables-legacy or nftables" >&2
    exit 1
    ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/apply.sh: needs root (it creates a network namespace)" >&2
  exit 1
fi
bin=${APPLY_POLICY_BIN:-}
if [ -z "$bin" ]; then
  (cd "$here" && cargo build --quiet --release --example apply_policy)
  bin=$(cd "$here" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/examples/apply_policy
fi

ns=fwbench-$$
# The howto's loop: in the same namespace for an iptables backend (as before),
# in one of its own for nftables (iptables rules beside the nftables tables
# would make the next apply() refuse a mixed host).
loop_ns=$ns
[ "$BACKEND" = nftables ] && loop_ns=$ns-loop
work=$(mktemp -d)
cleanup() {
  local n ino
  for n in "$ns" "$ns-loop"; do
    # The applier lock and state apply() keeps for this namespace.
    ino=$(stat -L -c %i "/run/netns/$n" 2>/dev/null) && rm -f -- "/run/firewall/net-$ino".*
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf -- "$work"
}
trap cleanup EXIT
ip netns add "$ns"
[ "$loop_ns" = "$ns" ] || ip netns add "$loop_ns"
# The policy's external interface must exist (apply() refuses a missing one).
ip -n "$ns" link add eth0 type veth peer name eth0-peer
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth0-peer up
inns() { ip netns exec "$ns" "$@"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v us="$1" 'BEGIN {printf "%.1f", us/1000}'; }

# apply() once, printing its duration in microseconds; fails if apply() does.
apply_once() { # POLICY
  inns timeout 120 "$bin" "$1" --allow-session-lockout "${backend_args[@]}"
}

# The bare load of the same texts, printing microseconds.
bare_once() { # EMIT-DIR
  if [ "$BACKEND" = nftables ]; then
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    inns timeout 120 bash -c 's=${EPOCHREALTIME//[!0-9]/}
      nft -f "$1"
      e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$1/nft.rules"
  else
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    inns timeout 120 bash -c 's=${EPOCHREALTIME//[!0-9]/}
      "iptables-$3-restore" -w <"$1"; "ip6tables-$3-restore" -w <"$2"
      e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$1/v4.rules" "$1/v6.rules" "$variant"
  fi
}

bare_name=restore
[ "$BACKEND" = nftables ] && bare_name="nft -f"
echo "# bench/apply.sh: BACKEND=${BACKEND:-detected} REPS=$REPS, $(nproc) cores, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %12s %12s %7s %14s %10s\n' ports "apply() ms" "$bare_name ms" ratio "howto loop ms" speedup
for n in $SIZES; do
  policy=$work/p$n.policy
  {
    printf 'extif eth0;\nopen tcp 22'
    if [ "$n" -gt 1 ]; then
      seq 10000 $((10000 + n - 2)) | sed 's/^/, /' | tr -d '\n'
    fi
    printf ';\n'
  } >"$policy"
  mkdir -p "$work/e$n"
  "$bin" "$policy" --emit "$work/e$n"
  # Warm-up (and the starting state of every run: this policy loaded).
  # apply() with a backend this build of apply_policy does not know yet
  # (nftables) leaves its columns empty; the bare load then sets the state.
  with_apply=1
  if ! apply_once "$policy" >/dev/null 2>"$work/apply.err"; then
    if [ "$BACKEND" = nftables ]; then
      with_apply=
      [ -n "${noted:-}" ] || echo "# apply() with nftables: not available in this build ($(head -n 1 "$work/apply.err"))"
      noted=1
      bare_once "$work/e$n" >/dev/null
    else
      cat "$work/apply.err" >&2
      exit 1
    fi
  fi
  : >"$work/apply.$n"
  : >"$work/bare.$n"
  for _ in $(seq "$REPS"); do
    if [ -n "$with_apply" ]; then
      apply_once "$policy" >>"$work/apply.$n"
    fi
    bare_once "$work/e$n" >>"$work/bare.$n"
  done
  r=$(median <"$work/bare.$n")
  if [ -n "$with_apply" ]; then
    a=$(median <"$work/apply.$n")
    ratio=$(awk -v a="$a" -v r="$r" 'BEGIN {printf "%.2f", a/r}')
    am=$(ms "$a")
  else
    a=
    ratio=-
    am=-
  fi
  if [ "$n" -le "$LOOP_MAX" ]; then
    ports=$(seq 10000 $((10000 + n - 2)) | tr '\n' ' ')
    loop_tool=iptables
    [ "$BACKEND" = iptables-legacy ] && loop_tool=iptables-legacy
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    l=$(ip netns exec "$loop_ns" timeout 600 bash -c 'ipt=$2
      $ipt -P INPUT ACCEPT; $ipt -F; $ipt -X; $ipt -t nat -F
      s=${EPOCHREALTIME//[!0-9]/}
      for p in 22 $1; do $ipt -A INPUT -p tcp --dport "$p" -j ACCEPT; done
      e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$ports" "$loop_tool")
    if [ -n "$a" ]; then
      speed=$(awk -v l="$l" -v a="$a" 'BEGIN {printf "%.0fx", l/a}')
    else
      speed=$(awk -v l="$l" -v r="$r" 'BEGIN {printf "(%.0fx bare)", l/r}')
    fi
    l=$(ms "$l")
  else
    l=skipped
    speed=-
  fi
  printf '%-7s %12s %12s %7s %14s %10s\n' "$n" "$am" "$(ms "$r")" "$ratio" "$l" "$speed"
done
