#!/bin/bash
# Times `cargo check` of a generated user crate whose `firewall!` block has N
# lines of `open tcp 22 from HOST;` (one allowed host per line), against the
# same crate with an empty `main` (the baseline: what any crate pays), so the
# difference is what the macro costs while the crate compiles. Dependencies
# are built once, up front; each timed run touches `src/main.rs` only.
# A second row per N repeats one host on every line: refused, with N-1
# `duplicate` errors (what emitting and printing diagnostics costs).
#
#   bash bench/check.sh            # N = 1000 and 10000
#   SIZES="10000" REPS=5 bash bench/check.sh
#
# The crate uses the dev profile, as a user's `cargo check` does (the proc
# macro is then an unoptimized build).
set -euo pipefail

REPS=${REPS:-3}
SIZES=${SIZES:-"1000 10000"}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/firewall-check-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/src"
cat >"$work/Cargo.toml" <<TOML
[package]
name = "check-bench"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
firewall = { path = "$here" }

[workspace]
TOML

policy() { # N [same]
  echo "use firewall::{firewall, Firewall};"
  echo "const F: Firewall = firewall! {"
  echo "    extif eth0;"
  local i
  for ((i = 0; i < $1; i++)); do
    if [ "${2:-}" = same ]; then
      echo "    open tcp 22 from 10.0.0.1;"
    else
      echo "    open tcp 22 from 10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256));"
    fi
  done
  echo "};"
  echo "fn main() { print!(\"{}\", F.bash().len()); }"
}

# Seconds of the median of REPS `cargo check` runs.
median_check() {
  local times=() t0 t1 i
  for ((i = 0; i < REPS; i++)); do
    touch "$work/src/main.rs"
    t0=$(date +%s.%N)
    # A refused policy fails the check: that is its expected outcome.
    (cd "$work" && CARGO_TARGET_DIR="$work/target" cargo check -q --offline >/dev/null 2>&1) || true
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((REPS + 1) / 2))p"
}

echo 'fn main() {}' >"$work/src/main.rs"
(cd "$work" && CARGO_TARGET_DIR="$work/target" cargo check -q) # dependencies, once
base=$(median_check)

echo "| lines of \`open tcp 22 from HOST;\` | \`cargo check\` | empty crate (baseline) | macro's share |"
echo "|---|---|---|---|"
for n in $SIZES; do
  for kind in distinct same; do
    policy "$n" "$kind" >"$work/src/main.rs"
    if [ "$kind" = same ]; then
      # Must be refused with one error per repeated line (not per pair).
      errors=$(cd "$work" && CARGO_TARGET_DIR="$work/target" cargo check --offline 2>&1 | grep -c '^error: duplicate' || true)
      label="$n, one host repeated ($errors errors)"
    else
      (cd "$work" && CARGO_TARGET_DIR="$work/target" cargo check -q --offline) # must compile
      label="$n, distinct hosts"
    fi
    t=$(median_check)
    printf '| %s | %.2f s | %.2f s | %.2f s |\n' "$label" "$t" "$base" "$(echo "$t - $base" | bc)"
  done
done
