#!/bin/bash
# Times apply() against a bare iptables-restore of the same rules and against
# the howto's one-iptables-command-per-port loop, in a private network
# namespace (the host's firewall is never touched). Needs root.
#
#   bash bench/apply.sh                # 10, 1000 and 5000 open ports
#   REPS=21 bash bench/apply.sh        # more repetitions (median is reported)
#   LOOP_MAX=1000 bash bench/apply.sh  # skip the (slow) howto loop above 1000 ports
#   BACKEND=nftables bash bench/apply.sh  # apply() with the nftables backend
#   BACKEND=iptables-legacy bash bench/apply.sh  # restore and loop with the legacy tools
#
# What is timed, per policy `extif eth0; open tcp 22, 10000, 10001, ...;`:
#   apply()  the library call, as measured inside the process (Applied::elapsed):
#            backup of both families and ip_forward, load of both, verification;
#            re-applied over the same policy, as on a real host.
#   restore  `iptables-restore -w <v4; ip6tables-restore -w <v6` of the very
#            texts apply() loads, from the same starting state (BACKEND=nftables:
#            `nft -f` of the policy's nftables file; apply() then saves and
#            verifies the firewall's own tables only; BACKEND=iptables-legacy:
#            `iptables-legacy-restore`, `ip6tables-legacy-restore`).
#   floor    BACKEND=nftables only: the two nft processes apply() cannot do
#            without, `nft list ruleset` (its backup) then `nft -e -j -f` (its
#            load, whose echo is its verification), run bare; "floor/bare" is
#            what they cost against the bare `nft -f`, the rest of apply()'s
#            ratio is its own work.
#   loop     the howto: `for p in $PORTS; do iptables -A INPUT -p tcp --dport $p
#            -j ACCEPT; done` (IPv4 only, as in the howto), from a flushed table
#            (`iptables-legacy -A` with BACKEND=iptables-legacy).
# Medians of REPS runs (apply, restore and floor alternate, so load on the
# machine affects them alike); the loop runs once.
set -euo pipefail

REPS=${REPS:-11}
BACKEND=${BACKEND:-iptables-nft}
LOOP_MAX=${LOOP_MAX:-5000}
SIZES=${SIZES:-"10 1000 5000"}
here=$(cd "$(dirname "$0")/.." && pwd)
# The tools of the bare restore and the loop: those of the backend apply() uses.
case $BACKEND in
  iptables-legacy) restore=(iptables-legacy-restore ip6tables-legacy-restore) loop=iptables-legacy ;;
  *) restore=(iptables-restore ip6tables-restore) loop=iptables ;;
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
work=$(mktemp -d)
cleanup() {
  # The applier lock and state apply() keeps for this namespace.
  ino=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null) && rm -f -- "/run/firewall/net-$ino".*
  ip netns del "$ns" 2>/dev/null || true
  rm -rf -- "$work"
}
trap cleanup EXIT
ip netns add "$ns"
inns() { ip netns exec "$ns" "$@"; }
# The policy's `extif eth0` must exist (apply() refuses a missing one).
inns ip link add eth0 type veth peer name eth0-peer

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v us="$1" 'BEGIN {printf "%.1f", us/1000}'; }

if [ "$BACKEND" = nftables ]; then
  printf '%-7s %12s %12s %7s %14s %10s %9s %11s\n' ports "apply() ms" "restore ms" ratio "howto loop ms" speedup "floor ms" "floor/bare"
else
  printf '%-7s %12s %12s %7s %14s %10s\n' ports "apply() ms" "restore ms" ratio "howto loop ms" speedup
fi
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
  inns "$bin" "$policy" --allow-session-lockout --backend "$BACKEND" >/dev/null
  : >"$work/apply.$n"
  : >"$work/restore.$n"
  : >"$work/floor.$n"
  for _ in $(seq "$REPS"); do
    inns "$bin" "$policy" --allow-session-lockout --backend "$BACKEND" >>"$work/apply.$n"
    if [ "$BACKEND" = nftables ]; then
      # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
      inns bash -c 's=${EPOCHREALTIME//[!0-9]/}
        nft -f "$1"
        e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$work/e$n/nft.rules" >>"$work/restore.$n"
      # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
      inns bash -c 's=${EPOCHREALTIME//[!0-9]/}
        nft list ruleset >/dev/null; nft -e -j -f "$1" >/dev/null
        e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$work/e$n/nft.rules" >>"$work/floor.$n"
    else
      # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
      inns bash -c 's=${EPOCHREALTIME//[!0-9]/}
        "$3" -w <"$1"; "$4" -w <"$2"
        e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$work/e$n/v4.rules" "$work/e$n/v6.rules" "${restore[@]}" >>"$work/restore.$n"
    fi
  done
  a=$(median <"$work/apply.$n")
  r=$(median <"$work/restore.$n")
  ratio=$(awk -v a="$a" -v r="$r" 'BEGIN {printf "%.2f", a/r}')
  if [ "$n" -le "$LOOP_MAX" ]; then
    ports=$(seq 10000 $((10000 + n - 2)) | tr '\n' ' ')
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    l=$(inns bash -c 'ipt=$2
      $ipt -P INPUT ACCEPT; $ipt -F; $ipt -X; $ipt -t nat -F
      s=${EPOCHREALTIME//[!0-9]/}
      for p in 22 $1; do $ipt -A INPUT -p tcp --dport "$p" -j ACCEPT; done
      e=${EPOCHREALTIME//[!0-9]/}; echo $((e - s))' _ "$ports" "$loop")
    speed=$(awk -v l="$l" -v a="$a" 'BEGIN {printf "%.0fx", l/a}')
    l=$(ms "$l")
  else
    l=skipped
    speed=-
  fi
  if [ "$BACKEND" = nftables ]; then
    f=$(median <"$work/floor.$n")
    fr=$(awk -v f="$f" -v r="$r" 'BEGIN {printf "%.2f", f/r}')
    printf '%-7s %12s %12s %7s %14s %10s %9s %11s\n' "$n" "$(ms "$a")" "$(ms "$r")" "$ratio" "$l" "$speed" "$(ms "$f")" "$fr"
  else
    printf '%-7s %12s %12s %7s %14s %10s\n' "$n" "$(ms "$a")" "$(ms "$r")" "$ratio" "$l" "$speed"
  fi
done
