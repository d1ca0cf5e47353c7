//! The bash script: applies a policy atomically with `iptables-restore`,
//! backs up what it replaces, rolls back on any failure and honours `failsafe`.
//!
//! The rollback and failsafe-watchdog logic lives in ONE place, [`rollback_functions`]:
//! the script embeds those functions, and [`crate::apply`] writes the very same
//! text to a file ([`rollback_program`]) and runs it, so the script and `apply()`
//! cannot disagree about how the previous rules come back.
//!
//! ```
//! let script = firewall_core::render::bash::rollback_program();
//! assert!(script.starts_with("#!/bin/bash"));
//! assert!(script.contains("fw_watchdog()"));
//! ```

use crate::model::Model;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The names of the shell functions in [`rollback_functions`], in definition order.
///
/// The script copies exactly these (with `declare -f`) into the backup
/// directory as `rollback.sh`, so the detached watchdog runs the same code.
pub const ROLLBACK_FUNCTIONS: [&str; 19] = [
    "fw_log",
    "fw_now_us",
    "fw_alive",
    "fw_state_prefix",
    "fw_lock",
    "fw_unlock",
    "fw_pending_set",
    "fw_pending_clear",
    "fw_tool",
    "fw_drop_table",
    "fw_restore",
    "fw_rollback",
    "fw_confirm",
    "fw_takeover",
    "fw_watchdog_done",
    "fw_watchdog",
    "fw_rules_summary",
    "fw_verify",
    "fw_main",
];

/// The shared shell functions: restore a backup directory, roll back, confirm,
/// and the failsafe watchdog. Both the script and `apply()` run this text.
///
/// A backup directory `DIR` holds:
/// * `backend`: `nft` or `legacy`, the iptables backend used for save, load and restore;
/// * `v4.rules`, `v6.rules`: `iptables-save -c` / `ip6tables-save -c` output before the change;
/// * `ip_forward`: the previous `net.ipv4.ip_forward` value;
/// * `armed`: present while a failsafe waits for confirmation. Whoever renames it
///   first wins: `confirm` renames it to `confirmed`, the watchdog (at the
///   deadline) and `rollback` rename it to `reverting`. `rename(2)` is atomic, so
///   a confirmation at the last moment and the deadline cannot both win;
/// * `watchdog.pid`, `log`: the watchdog's pid and what it did.
///
/// Entry point: `fw_main COMMAND DIR [SECONDS]` with COMMAND one of
/// `restore`, `rollback`, `confirm`, `watchdog`.
pub fn rollback_functions() -> &'static str {
    ROLLBACK_SH
}

/// [`rollback_functions`] as a runnable program: `bash rollback.sh COMMAND DIR [SECONDS]`.
///
/// This is the file `apply()` writes into its backup directory and runs for a
/// rollback or as the detached failsafe watchdog (`setsid -f bash rollback.sh watchdog DIR SECS`).
pub fn rollback_program() -> String {
    format!(
        "#!/bin/bash\n# Rollback and failsafe watchdog of firewall-core (generated; see render/bash.rs).\n{ROLLBACK_SH}fw_main \"$@\"\n"
    )
}

const ROLLBACK_SH: &str = r#"# fw_log DIR MESSAGE: note what happened in DIR/log and in syslog (when logger
# exists; bounded: a hung syslog must not stall a rollback or a watchdog).
fw_log() {
  printf '%s firewall: %s\n' "$(date '+%F %T')" "$2" >>"$1/log" 2>/dev/null || true
  if command -v logger >/dev/null 2>&1; then
    timeout 5 logger -t firewall -- "$2" </dev/null >/dev/null 2>&1 || true
  fi
}

# fw_now_us: microseconds since the epoch (EPOCHREALTIME needs bash 5; its
# decimal separator follows the locale, so keep the digits only).
fw_now_us() {
  local t=${EPOCHREALTIME:-}
  if [ -n "$t" ]; then
    printf '%s\n' "${t//[!0-9]/}"
  else
    date '+%s%6N'
  fi
}

# fw_alive PID: whether process PID runs (a zombie counts as gone).
fw_alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  case ${stat%% *} in
  Z | X) return 1 ;;
  esac
  return 0
}

# fw_state_prefix: the per-network-namespace state of the appliers,
# /run/firewall/net-INODE (INODE of /proc/self/ns/net); the temp dir when
# /run is not writable. PREFIX.lock is the applier lock, PREFIX.pending names
# the backup directory of the pending watchdog, PREFIX.last what the last
# watchdog or take-over did ("reverted DIR", "revert-failed DIR",
# "superseded DIR").
fw_state_prefix() {
  local ns dir=/run/firewall
  ns=$(readlink /proc/self/ns/net) || return 1
  ns=${ns//[!0-9]/}
  if ! { { mkdir -m 0700 "$dir" 2>/dev/null || [ -d "$dir" ]; } && [ -w "$dir" ]; }; then
    dir=${TMPDIR:-/tmp}/firewall-run
    mkdir -m 0700 "$dir" 2>/dev/null || [ -d "$dir" ] || return 1
  fi
  printf '%s/net-%s\n' "$dir" "$ns"
}

# fw_lock PREFIX SECONDS: take the applier lock (flock(2) on PREFIX.lock),
# waiting at most SECONDS; writes this process's pid into it. The descriptor
# is fw_lock_fd; the lock is held until it (and every copy a child inherited)
# is closed, also when this process dies. Returns 1 on timeout, 2 if the
# lock file cannot be opened.
fw_lock() {
  { exec {fw_lock_fd}>>"$1.lock"; } 2>/dev/null || return 2
  if flock -w "$2" "$fw_lock_fd"; then
    printf '%s\n' "$$" >"$1.lock" 2>/dev/null || true
    return 0
  fi
  exec {fw_lock_fd}>&-
  return 1
}

# fw_unlock: release the lock fw_lock took.
fw_unlock() {
  exec {fw_lock_fd}>&-
}

# fw_pending_set PREFIX DIR: DIR is the backup of the watchdog now pending.
fw_pending_set() {
  printf '%s\n' "$2" >"$1.pending.tmp" && mv -f -- "$1.pending.tmp" "$1.pending"
}

# fw_pending_clear PREFIX DIR: forget DIR as the pending one (if it still is).
fw_pending_clear() {
  if [ "$(cat "$1.pending" 2>/dev/null)" = "$2" ]; then
    rm -f -- "$1.pending"
  fi
  return 0
}

# fw_tool FAMILY VERB BACKEND: the save/restore tool of one backend. The
# backend-specific name (iptables-nft-restore) is preferred so that save, load
# and rollback cannot end up on different backends; plain names are the fallback.
fw_tool() {
  local base=iptables
  if [ "$1" = 6 ]; then
    base=ip6tables
  fi
  if command -v "$base-$3-$2" >/dev/null 2>&1; then
    printf '%s\n' "$base-$3-$2"
  else
    printf '%s\n' "$base-$2"
  fi
}

# fw_drop_table FAMILY TABLE BACKEND SAVE RESTORE: remove a table the change
# created. Restoring a backup does not delete tables missing from it, so
# without this a rollback would leave e.g. an empty nat table behind.
fw_drop_table() {
  local family=ip
  if [ "$1" = 6 ]; then
    family=ip6
  fi
  if [ "$3" = nft ] && command -v nft >/dev/null 2>&1; then
    if timeout 60 nft delete table "$family" "$2"; then
      return 0
    fi
  fi
  # Legacy tables cannot be deleted: leave the table empty, built-in chains ACCEPT.
  {
    printf '*%s\n' "$2"
    timeout 60 "$4" -t "$2" | sed -n 's/^:\([A-Z]*\) \(ACCEPT\|DROP\) .*/:\1 ACCEPT [0:0]/p'
    printf 'COMMIT\n'
  } | timeout 60 "$5" -w 10
}

# fw_restore DIR: put back everything saved in DIR (rules of both families,
# counters included, and ip_forward). Tries every step even if one fails. A
# family whose restore failed but whose rules already equal the backup
# (compared without counters: e.g. the failed change never reached it) is
# unchanged, not a failure. Every tool is bounded (timeout, -w).
# DIR/prev, when present, is the backup of a pending failsafe this apply took
# over (the last confirmed rules): it is restored instead.
fw_restore() {
  local dir=$1 src=$1 backend fam save restore now table want have failed=0 famfail strip
  strip='/^#/d; s/^\[[0-9]*:[0-9]*\] //; s/ \[[0-9]*:[0-9]*\]$/ [0:0]/'
  if [ -d "$dir/prev" ]; then
    src=$dir/prev
  fi
  backend=$(cat "$dir/backend") || return 1
  for fam in 4 6; do
    if [ ! -e "$src/v$fam.rules" ]; then
      continue
    fi
    famfail=0
    save=$(fw_tool "$fam" save "$backend")
    restore=$(fw_tool "$fam" restore "$backend")
    if now=$(timeout 60 "$save"); then
      for table in $(printf '%s\n' "$now" | sed -n 's/^\*//p'); do
        if ! grep -qxF "*$table" "$src/v$fam.rules"; then
          fw_drop_table "$fam" "$table" "$backend" "$save" "$restore" || famfail=1
        fi
      done
    else
      famfail=1
    fi
    timeout 60 "$restore" -w 10 -c <"$src/v$fam.rules" || famfail=1
    if [ "$famfail" = 1 ]; then
      if now=$(timeout 60 "$save") &&
        [ "$(printf '%s\n' "$now" | sed -e "$strip")" = "$(sed -e "$strip" "$src/v$fam.rules")" ]; then
        fw_log "$dir" "IPv$fam: a restore step failed, but the rules equal the backup: unchanged"
        printf 'firewall: IPv%s: a restore step failed, but the rules already equal the saved ones: unchanged.\n' "$fam" >&2
      else
        failed=1
      fi
    fi
  done
  if [ -e "$src/ip_forward" ]; then
    want=$(cat "$src/ip_forward")
    have=$(cat /proc/sys/net/ipv4/ip_forward)
    if [ "$want" != "$have" ]; then
      printf '%s\n' "$want" >/proc/sys/net/ipv4/ip_forward || failed=1
    fi
  fi
  return "$failed"
}

# fw_rollback DIR: undo a change that failed or was refused (the caller holds
# the lock). Claims the backup first (renames `armed`); a backup that is no
# longer pending (confirmed, or taken over by a later apply) is left alone.
fw_rollback() {
  if ! mv "$1/armed" "$1/reverting" 2>/dev/null; then
    printf 'firewall: the backup in %s is no longer pending (confirmed, or taken over by a later apply): nothing restored\n' "$1" >&2
    return 0
  fi
  if fw_restore "$1"; then
    fw_log "$1" "previous rules restored"
  else
    fw_log "$1" "restoring the previous rules FAILED; the backup is in $1"
    return 1
  fi
}

# fw_confirm DIR: keep the new rules; the watchdog sees it and exits. The
# backup is no longer needed: it is removed.
fw_confirm() {
  if mv "$1/armed" "$1/confirmed" 2>/dev/null; then
    fw_log "$1" "new rules confirmed"
    rm -rf -- "$1"
    printf 'firewall: confirmed, the new rules stay.\n'
  else
    printf 'firewall: too late: this failsafe is no longer pending (its deadline passed and the previous rules were restored, or a later apply took it over).\n' >&2
    return 1
  fi
}

# fw_takeover DIR: the caller holds the lock and has saved the current rules
# into DIR. If another apply's failsafe is still pending (PREFIX.pending names
# a backup whose `armed` exists and whose watchdog runs), claim it: its backup (the last rules someone
# confirmed) becomes DIR/prev, which any rollback or revert of DIR restores,
# and its watchdog exits without reverting; DIR becomes the pending one.
# Prints "took over OLD" when it did (apply() decides from DIR/prev instead:
# it runs this with the lock file as stdout).
# Returns 3 if the pending failsafe uses another iptables backend.
fw_takeover() {
  local dir=$1 prefix old src f
  prefix=$(cat "$dir/state") || return 1
  old=$(cat "$prefix.pending" 2>/dev/null) || return 0
  if [ -z "$old" ] || [ "$old" = "$dir" ] || [ ! -e "$old/armed" ]; then
    return 0
  fi
  # A watchdog that was killed (how an administrator cancels a failsafe) left
  # nothing pending: its rules stay, and the rules saved now are the base.
  if [ -e "$old/watchdog.pid" ] && ! fw_alive "$(cat "$old/watchdog.pid" 2>/dev/null)"; then
    return 0
  fi
  if [ "$(cat "$old/backend" 2>/dev/null)" != "$(cat "$dir/backend")" ]; then
    printf 'firewall: a failsafe of another iptables backend is pending (%s); confirm it or let it expire first\n' "$old" >&2
    return 3
  fi
  src=$old
  if [ -d "$old/prev" ]; then
    src=$old/prev
  fi
  rm -rf -- "$dir/prev.tmp"
  mkdir -m 0700 "$dir/prev.tmp" || return 1
  for f in v4.rules v6.rules ip_forward; do
    if [ -e "$src/$f" ] && ! cp -- "$src/$f" "$dir/prev.tmp/$f"; then
      rm -rf -- "$dir/prev.tmp"
      return 1
    fi
  done
  # DIR/prev appears complete or not at all; from here a revert of DIR
  # restores the old backup, which is what the old watchdog would restore too.
  mv -T -- "$dir/prev.tmp" "$dir/prev" || return 1
  if ! mv -- "$old/armed" "$old/superseded" 2>/dev/null; then
    # Confirmed a moment ago: the rules just saved are the confirmed ones.
    mv -T -- "$dir/prev" "$dir/prev.discard" && rm -rf -- "$dir/prev.discard"
    return 0
  fi
  printf 'superseded %s\n' "$old" >"$prefix.last" 2>/dev/null || true
  # DIR is the pending one now, before the lock is released: an apply that
  # comes next (e.g. after the caller died right here) takes DIR over in turn
  # instead of being undone by DIR's watchdog.
  fw_pending_set "$prefix" "$dir" || true
  fw_log "$dir" "took over the pending failsafe of $old (its backup, the last confirmed rules, is restored if this apply is not kept)"
  printf 'took over %s\n' "$old"
}

# fw_watchdog_done DIR: the watchdog's end when it did not revert: a backup
# that was confirmed or taken over is no longer needed; one being rolled back
# belongs to whoever rolls back.
fw_watchdog_done() {
  if [ -e "$1/confirmed" ] || [ -e "$1/superseded" ]; then
    rm -rf -- "$1"
  else
    rm -f -- "$1/watchdog.pid" 2>/dev/null
  fi
  return 0
}

# fw_watchdog DIR SECONDS [PID]: reverts DIR unless disarmed. Runs detached
# (setsid), so it outlives the applying process PID, its terminal and a
# SIGKILL of either. It reverts at once when PID dies while DIR/loading exists
# (an interrupted load: the old rules, never a mixture), and at the deadline
# when SECONDS > 0 (the failsafe). SECONDS = 0: no failsafe; the applier
# disarms it once the new rules are verified. Before reverting it takes the
# applier lock (a dead applier's lock is released by the kernel once its last
# child exits); an apply holding the lock may take this backup over instead.
fw_watchdog() {
  local dir=$1 secs=$2 pid=${3:-0} deadline prefix why='' ok=0
  trap '' HUP INT
  printf '%s\n' "$$" >"$dir/watchdog.pid" 2>/dev/null
  prefix=$(cat "$dir/state" 2>/dev/null) || prefix=
  deadline=$(($(fw_now_us) + secs * 1000000))
  while [ -e "$dir/armed" ]; do
    if [ "$pid" != 0 ] && ! fw_alive "$pid"; then
      # Dead, so `loading` can no longer change: it tells whether the load finished.
      if [ -e "$dir/loading" ]; then
        why="the applying process $pid died before the new rules were verified"
        break
      fi
      if [ "$secs" = 0 ]; then
        # Loaded and verified, no failsafe: the applier died before disarming.
        # (A stale PREFIX.pending is harmless: it is live only while `armed` exists.)
        mv "$dir/armed" "$dir/confirmed" 2>/dev/null || true
        break
      fi
      pid=0
    fi
    if [ "$secs" != 0 ] && [ ! -e "$dir/loading" ] && [ "$(fw_now_us)" -ge "$deadline" ]; then
      why="not confirmed within $secs s"
      break
    fi
    sleep 0.1
  done
  if [ -z "$why" ]; then
    fw_watchdog_done "$dir"
    return 0
  fi
  if [ -n "$prefix" ]; then
    # Wait as long as it takes: the holder is an apply (which may take this
    # backup over) or the last child of a dead one, both bounded.
    while true; do
      fw_lock "$prefix" 1
      case $? in
      0) break ;;
      2)
        prefix=
        break
        ;;
      esac
      if [ ! -e "$dir/armed" ]; then
        fw_watchdog_done "$dir"
        return 0
      fi
    done
  fi
  if mv "$dir/armed" "$dir/reverting" 2>/dev/null; then
    if fw_restore "$dir"; then
      fw_log "$dir" "$why: previous rules restored"
      ok=1
    else
      fw_log "$dir" "$why: restoring the previous rules FAILED; the backup is in $dir"
    fi
    if [ "$ok" = 1 ]; then
      why=reverted
    else
      why=revert-failed
      # Kept for a manual `rollback.sh restore DIR`; the marker says why.
      : >"$dir/revert-failed"
      rm -f -- "$dir/watchdog.pid"
    fi
    if [ -n "$prefix" ]; then
      fw_pending_clear "$prefix" "$dir"
      printf '%s %s\n' "$why" "$dir" >"$prefix.last" 2>/dev/null || true
    fi
    if [ "$ok" = 1 ]; then
      rm -rf -- "$dir"
    fi
  else
    fw_watchdog_done "$dir"
  fi
  if [ -n "$prefix" ]; then
    fw_unlock
  fi
}

# fw_rules_summary TABLES: of iptables-save text on stdin, for the tables
# named in TABLES (space-separated), one line per chain (its policy) and per
# rule (its chain, position and comment, which names the policy statement).
# Two rulesets with equal summaries have the same chains, policies and rules
# in the same order (the comparison apply() makes).
fw_rules_summary() {
  local line table='' chain rest comment
  local -A count=()
  while IFS= read -r line; do
    case $line in
    \**)
      table=${line#\*}
      case " $1 " in
      *" $table "*) ;;
      *) table= ;;
      esac
      ;;
    :*)
      if [ -n "$table" ]; then
        rest=${line#:}
        chain=${rest%% *}
        rest=${rest#* }
        printf '%s %s policy %s\n' "$table" "$chain" "${rest%% *}"
      fi
      ;;
    '-A '* | '['*'] -A '*)
      if [ -n "$table" ]; then
        rest=${line#*-A }
        chain=${rest%% *}
        comment=
        case $line in
        *'--comment '*)
          comment=${line#*--comment }
          if [ "${comment:0:1}" = '"' ]; then
            comment=${comment#\"}
            comment=${comment%%\"*}
          else
            comment=${comment%% *}
          fi
          ;;
        esac
        count[$table/$chain]=$((${count[$table/$chain]:-0} + 1))
        printf '%s %s rule %06d %s\n' "$table" "$chain" "${count[$table/$chain]}" "$comment"
      fi
      ;;
    esac
  done
}

# fw_verify SAVE FILE: whether the rules SAVE (iptables-save or
# ip6tables-save) reads back match the ones loaded from FILE, table by table.
fw_verify() {
  local tables want have
  tables=$(sed -n 's/^\*//p' "$2" | tr '\n' ' ')
  want=$(fw_rules_summary "$tables" <"$2" | LC_ALL=C sort)
  have=$(timeout 60 "$1" | fw_rules_summary "$tables" | LC_ALL=C sort) || return 1
  if [ "$want" != "$have" ]; then
    printf 'firewall: the rules read back with %s differ from the ones loaded:\n' "$1" >&2
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$have") | head -n 6 >&2 || true
    return 1
  fi
}

# fw_main COMMAND DIR [SECONDS [PID]]
fw_main() {
  case "${1:-}" in
  restore) fw_restore "$2" ;;
  rollback)
    # apply()'s rollback: the backup is no longer needed once restored (also
    # when apply() itself died meanwhile).
    fw_rollback "$2" && rm -rf -- "$2"
    ;;
  confirm) fw_confirm "$2" ;;
  takeover) fw_takeover "$2" ;;
  watchdog) fw_watchdog "$2" "$3" "${4:-0}" ;;
  *)
    printf 'usage: rollback.sh restore|rollback|confirm|takeover|watchdog DIR [SECONDS [PID]]\n' >&2
    return 2
    ;;
  esac
}
"#;

/// Quotes a value for the shell. Every value reaching the script is a
/// validated model value already (a number, `30s`); this is the backstop.
fn q(s: &str) -> String {
    shell_escape::unix::escape(Cow::Borrowed(s)).into_owned()
}

/// A comment line: model values are validated (no newlines can occur), this is
/// the backstop that keeps any text inside the comment.
fn comment_safe(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// A heredoc delimiter that does not occur as a line of `text`.
fn delimiter(base: &str, text: &str) -> String {
    let mut d = base.to_string();
    while text.lines().any(|l| l == d) {
        d.push('_');
    }
    d
}

/// The bash script that applies `model` (whose rendered rulesets are `ipv4`
/// and `ipv6`, in `iptables-save` format).
///
/// It requires root, checks its tools and the host ([`super::preflight`]: every
/// `extif` exists, the SSH session it runs in survives, the other iptables
/// backend holds no rules), saves the current IPv4/IPv6 rules and
/// `ip_forward` into a private `mktemp -d` directory, arms the failsafe watchdog
/// (if the policy has `failsafe`) before the first rule changes, loads both
/// families with `iptables-restore -w` / `ip6tables-restore -w` from quoted
/// heredocs, sets `ip_forward` for routers, and restores everything it saved if
/// any step fails.
///
/// ```
/// use firewall_core::model::*;
/// let model = Model {
///     extif: vec![Iface::new("eth0").unwrap()],
///     trust: None,
///     input: Verdict::Drop,
///     forward: None,
///     output: Verdict::Accept,
///     opens: vec![],
///     icmp_accept: false,
///     masquerade: false,
///     dnats: vec![],
///     redirects: vec![],
///     forward_drop: false,
///     block_out: vec![],
///     ssh: None,
///     failsafe: None,
///     log_drops: false,
/// };
/// let s = firewall_core::render::bash::script(&model, "*filter\nCOMMIT\n", "*filter\nCOMMIT\n");
/// assert!(s.starts_with("#!/bin/bash\n"));
/// assert!(s.contains("set -euo pipefail"));
/// assert!(s.contains("<<'FIREWALL_IPV4'"));
/// ```
pub fn script(model: &Model, ipv4: &str, ipv6: &str) -> String {
    let mut s = String::with_capacity(ipv4.len() + ipv6.len() + ROLLBACK_SH.len() + 4096);
    s.push_str("#!/bin/bash\n");
    s.push_str("# Firewall policy, generated by firewall-core. Change the policy and regenerate\n");
    s.push_str("# rather than editing this file.\n#\n# The policy:\n");
    for line in super::policy::lines(model) {
        let _ = writeln!(s, "#   {}", comment_safe(&line));
    }
    s.push_str(&super::kernel::header(model));
    s.push_str(
        "#\n\
         # What this script does, in order:\n\
         #   - checks it runs as root and that the iptables tools exist;\n",
    );
    s.push_str(super::preflight::HEADER);
    s.push_str(
        "#   - takes the applier lock of this network namespace (flock on\n\
         #      /run/firewall/net-INODE.lock, shared with firewall-core's apply()):\n\
         #      one applier at a time; waits FIREWALL_LOCK_WAIT seconds (default 10);\n\
         #   - saves the current IPv4 and IPv6 rules and net.ipv4.ip_forward into a\n\
         #      private directory (mktemp -d);\n\
         #   - arms a detached watchdog (it survives this script, even SIGKILL, and its\n\
         #      terminal) that restores the saved rules at once if this script dies\n\
         #      before the new rules are verified;\n",
    );
    if model.failsafe.is_some() {
        s.push_str(
            "#      the same watchdog is the failsafe: it restores the saved rules at the\n\
             #      deadline unless confirmed;\n",
        );
    }
    s.push_str(
        "#   - takes over a failsafe an earlier apply left pending: if this apply is\n\
         #      not kept, the rules from before that one (the last confirmed) come back;\n\
         #   - loads the IPv4 and then the IPv6 rules, each in one iptables-restore run;\n",
    );
    if model.is_router() {
        s.push_str("#   - sets net.ipv4.ip_forward=1 (this policy routes);\n");
    }
    s.push_str(
        "#   - reads the rules back and compares chains, policies and rules (by their\n\
         #      comments) with the ones loaded.\n\
         # If any step fails, everything saved is restored (tables this script created\n\
         # are removed), so the host is left as it was.\n\
         #\n\
         # Exit status: 0 applied (confirmed at the prompt, if asked; without a\n\
         # terminal a failsafe is still pending when it exits); 1 failed, the previous\n\
         # rules are in place; 2 failed and restoring the previous rules failed too;\n\
         # 3 not confirmed at the prompt: the previous rules are back; 4 another apply\n\
         # holds the lock: nothing changed; 130 interrupted, the previous rules restored.\n\
         set -euo pipefail\n\n",
    );

    s.push_str(
        "# ---- Rollback and failsafe functions (shared with firewall-core's apply()) ----\n\n",
    );
    s.push_str(ROLLBACK_SH);
    s.push('\n');

    s.push_str(
        r#"fw_die() {
  printf 'firewall: %s\n' "$*" >&2
  exit 1
}

# ---- Preconditions ----
if [ "$(id -u)" -ne 0 ]; then
  fw_die "must run as root (try: sudo bash $0)"
fi
if ! command -v iptables >/dev/null 2>&1; then
  fw_die "iptables is not installed (Debian/Ubuntu: apt-get install iptables)"
fi
# Save, load and rollback must use one backend: rules loaded through
# iptables-legacy are invisible to iptables-nft and the other way round.
"#,
    );
    s.push_str(super::preflight::BACKEND);
    s.push_str(
        r#"fw_save4=$(fw_tool 4 save "$fw_backend")
fw_save6=$(fw_tool 6 save "$fw_backend")
fw_restore4=$(fw_tool 4 restore "$fw_backend")
fw_restore6=$(fw_tool 6 restore "$fw_backend")
for fw_t in "$fw_save4" "$fw_save6" "$fw_restore4" "$fw_restore6" mktemp sed grep sort setsid flock readlink timeout; do
  if ! command -v "$fw_t" >/dev/null 2>&1; then
    fw_die "$fw_t is missing (Debian/Ubuntu: apt-get install iptables util-linux coreutils)"
  fi
done
"#,
    );
    s.push_str(&super::preflight::bash(model));
    s.push_str(
        r#"
# ---- Lock: one applier at a time per network namespace ----
# flock(2) on /run/firewall/net-INODE.lock, shared with firewall-core's apply()
# and the watchdogs; waits FIREWALL_LOCK_WAIT seconds (default 10), then exit 4.
fw_prefix=$(fw_state_prefix) || fw_die "cannot create the state directory /run/firewall"
fw_lock_wait=${FIREWALL_LOCK_WAIT:-10}
case $fw_lock_wait in
'' | *[!0-9]*) fw_lock_wait=10 ;;
esac
if ! fw_lock "$fw_prefix" "$fw_lock_wait"; then
  printf 'firewall: another apply is running in this network namespace (pid %s holds %s); nothing changed.\nfirewall: run this again once it has finished (or wait longer: FIREWALL_LOCK_WAIT=SECONDS).\n' "$(head -n 1 "$fw_prefix.lock" 2>/dev/null)" "$fw_prefix.lock" >&2
  exit 4
fi

# ---- Backup ----
fw_parent=${TMPDIR:-/tmp}
if ! fw_dir=$(mktemp -d "$fw_parent/firewall.XXXXXXXX"); then
  fw_die "cannot create a backup directory in $fw_parent (full, read-only or not writable?); nothing was changed
  help: choose another directory: TMPDIR=/var/tmp bash $0"
fi
# Nothing changed yet: a failure here only removes the half-written backup.
trap 'rm -rf -- "$fw_dir"' EXIT
if ! { printf '%s\n' "$fw_backend" >"$fw_dir/backend" &&
  timeout 60 "$fw_save4" -c >"$fw_dir/v4.rules" &&
  timeout 60 "$fw_save6" -c >"$fw_dir/v6.rules" &&
  printf '%s\n' "$fw_prefix" >"$fw_dir/state" &&
  cat /proc/sys/net/ipv4/ip_forward >"$fw_dir/ip_forward"; }; then
  fw_die "cannot save the current rules into $fw_parent (see the error above: a full or read-only file system?); nothing was changed
  help: choose another directory: TMPDIR=/var/tmp bash $0"
fi
{
  printf '#!/bin/bash\n'
  declare -f "#,
    );
    s.push_str(&ROLLBACK_FUNCTIONS.join(" "));
    let secs = model.failsafe.map_or(0, |f| f.as_secs());
    let qsecs = q(&secs.to_string());
    let _ = write!(
        s,
        r#"
  printf '%s\n' 'fw_main "$@"'
}} >"$fw_dir/rollback.sh"

# From here on, any failure (or Ctrl-C, SIGTERM) restores the backup.
: >"$fw_dir/armed"
fw_applying=1
fw_on_exit() {{
  local status=$?
  if [ "$fw_applying" = 1 ]; then
    printf 'firewall: applying failed (exit status %s); restoring the previous rules\n' "$status" >&2
    # In its own session, holding the lock (fw_lock_fd is inherited): a
    # SIGKILL of this script, or a second Ctrl-C, cannot stop it halfway.
    if setsid -w bash "$fw_dir/rollback.sh" rollback "$fw_dir"; then
      printf 'firewall: previous rules and ip_forward restored; nothing changed.\n' >&2
      fw_pending_clear "$fw_prefix" "$fw_dir"
      rm -rf -- "$fw_dir"
      if [ "$status" = 130 ]; then
        exit 130
      fi
      exit 1
    else
      printf 'firewall: ROLLBACK FAILED; the saved rules are in %s; retry with: bash %s/rollback.sh restore %s\n' "$fw_dir" "$fw_dir" "$fw_dir" >&2
      exit 2
    fi
  fi
}}
trap fw_on_exit EXIT
trap 'exit 130' INT TERM

# ---- Watchdog ----
# Armed before the first rule changes, in its own session (setsid -f), so
# that killing this script (even SIGKILL) or losing the terminal does not stop
# it: if this script dies before the new rules are verified (DIR/loading), it
# restores the previous rules at once{failsafe_note}.
printf '%s\n' "$$" >"$fw_dir/loading"
setsid -f bash "$fw_dir/rollback.sh" watchdog "$fw_dir" {qsecs} "$$" </dev/null >/dev/null 2>&1 {{fw_lock_fd}}>&-
# A failsafe still pending from an earlier apply is taken over: its backup (the
# last confirmed rules) is what a rollback or revert of this apply restores.
if ! fw_took_over=$(fw_takeover "$fw_dir"); then
  fw_die "cannot take over the pending failsafe (see above)"
fi
if [ -n "$fw_took_over" ]; then
  printf 'firewall: %s: an earlier apply was not confirmed yet; if this one is not kept, the rules from before it come back.\n' "$fw_took_over"
fi
fw_pending_set "$fw_prefix" "$fw_dir"
"#,
        failsafe_note = match model.failsafe {
            Some(f) => format!(", and at the failsafe deadline ({f}) unless confirmed"),
            None => String::new(),
        }
    );

    let d4 = delimiter("FIREWALL_IPV4", ipv4);
    let d6 = delimiter("FIREWALL_IPV6", ipv6);
    let _ = write!(
        s,
        "\n# ---- IPv4 rules (one atomic iptables-restore per table) ----\ncat >\"$fw_dir/new4.rules\" <<'{d4}'\n{}{}{d4}\n",
        ipv4,
        if ipv4.ends_with('\n') || ipv4.is_empty() { "" } else { "\n" }
    );
    let _ = write!(
        s,
        "\n# ---- IPv6 rules ----\ncat >\"$fw_dir/new6.rules\" <<'{d6}'\n{}{}{d6}\n",
        ipv6,
        if ipv6.ends_with('\n') || ipv6.is_empty() {
            ""
        } else {
            "\n"
        }
    );
    s.push_str(
        "\n# ---- Load ----\ntimeout 60 \"$fw_restore4\" -w 10 <\"$fw_dir/new4.rules\"\ntimeout 60 \"$fw_restore6\" -w 10 <\"$fw_dir/new6.rules\"\n",
    );

    if model.is_router() {
        s.push_str(
            "\n# ---- Routing: masquerade/dnat need forwarding ----\nprintf '1\\n' >/proc/sys/net/ipv4/ip_forward\n",
        );
    }

    s.push_str(
        r#"
# ---- Verify: the rules read back are the ones loaded (chains, policies, rules) ----
fw_verify "$fw_save4" "$fw_dir/new4.rules" || fw_die "the IPv4 rules read back differ from the ones loaded (another program changing the firewall?)"
fw_verify "$fw_save6" "$fw_dir/new6.rules" || fw_die "the IPv6 rules read back differ from the ones loaded (another program changing the firewall?)"
rm -f -- "$fw_dir/loading"
fw_applying=0
"#,
    );
    match model.failsafe {
        None => s.push_str(
            r#"# No failsafe: disarm the watchdog; the backup is no longer needed.
mv -- "$fw_dir/armed" "$fw_dir/confirmed"
fw_pending_clear "$fw_prefix" "$fw_dir"
rm -rf -- "$fw_dir"
fw_unlock
printf 'firewall: policy applied.\n'
"#,
        ),
        Some(f) => {
            let qf = q(&f.to_string());
            let _ = write!(
                s,
                r#"# Other appliers may run now (a later apply takes this failsafe over).
fw_unlock
# fw_revert_now: not confirmed: restore the previous rules now rather than at
# the deadline (unless the watchdog or a later apply got there first).
fw_revert_now() {{
  if fw_lock "$fw_prefix" "$fw_lock_wait"; then
    if [ -e "$fw_dir/armed" ]; then
      # In its own session, holding the lock, like the rollback in fw_on_exit.
      setsid -w bash "$fw_dir/rollback.sh" rollback "$fw_dir" </dev/null || exit 2
      fw_pending_clear "$fw_prefix" "$fw_dir"
      rm -rf -- "$fw_dir"
    fi
    fw_unlock
  fi
}}
# Ctrl-C (or SIGTERM) from here to the answer is a "no": the previous rules
# now, exit 130.
trap 'trap - INT TERM; printf "\nfirewall: interrupted; restoring the previous rules now.\n" >&2; fw_revert_now; exit 130' INT TERM
fw_confirm_cmd="bash $(printf '%q' "$fw_dir/rollback.sh") confirm $(printf '%q' "$fw_dir")"
printf 'firewall: policy applied. Unless confirmed within %s, the previous rules come back.\n' {qf}
printf 'firewall: to keep the new rules, run:  %s\n' "$fw_confirm_cmd"
if [ -t 0 ]; then
  # A session the new rules cut cannot answer: the watchdog then restores the old rules.
  printf 'Keep the new rules? Type y within %s s: ' {qsecs}
  fw_answer=
  read -r -t {qsecs} fw_answer || true
  case $fw_answer in
  y | Y | yes | Yes | YES)
    if fw_confirm "$fw_dir"; then
      exit 0
    fi
    exit 3
    ;;
  esac
  printf 'firewall: not confirmed; restoring the previous rules now.\n'
  fw_revert_now
  # 3: not confirmed; these rules are gone (restored here or by the watchdog,
  # or replaced by a later apply that took the failsafe over).
  exit 3
fi
"#
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    /// The test policy, through the real parser.
    fn model() -> Model {
        crate::compile::compile_str("extif eth0; open tcp 22, 80; icmp accept; masquerade; dnat 221 -> 192.168.125.22:22; failsafe 30s;")
            .unwrap_or_else(|d| panic!("test policy: {d:?}"))
    }

    const V4: &str = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m multiport --dports 22,80 -m comment --comment \"open tcp 22, 80\" -j ACCEPT\nCOMMIT\n";

    #[test]
    fn header_summarises_policy() {
        let s = script(&model(), V4, "*filter\nCOMMIT\n");
        assert!(s.contains("#   open tcp 22, 80;"));
        assert!(s.contains("221 -> 192.168.125.22:22;"));
        assert!(s.contains("#   failsafe 30s;"));
        assert!(s.contains("ip_forward"));
        assert!(s.contains("setsid -f bash"));
    }

    /// `fw_log` with a `logger` that hangs (a stuck syslog socket) returns
    /// within its bound and still writes DIR/log.
    #[test]
    fn fw_log_does_not_hang_on_a_stuck_logger() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("fw-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let fake = bin.join("logger");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let started = std::time::Instant::now();
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{ROLLBACK_SH}\nfw_log \"$1\" 'a message'"))
            .arg("fw_log")
            .arg(&root)
            .env("PATH", path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(root.join("log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&root);
        let status = status.expect("fw_log still running after 20 s: logger is not bounded");
        assert!(status.success(), "{status:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(15));
        assert!(log.contains("a message"), "{log}");
    }

    #[test]
    fn delimiter_avoids_collisions() {
        assert_eq!(delimiter("X", "a\nX\nX_\n"), "X__");
    }

    /// shellcheck and bash -n, when present (the kernel tests insist on them in CI).
    #[test]
    fn shellcheck_clean() {
        let mut m = model();
        for failsafe in [None, Failsafe::from_secs(30)] {
            m.failsafe = failsafe;
            let s = script(&m, V4, "*filter\nCOMMIT\n");
            for (tool, args) in [
                ("bash", vec!["-n"]),
                ("shellcheck", vec!["-s", "bash", "-"]),
            ] {
                let child = std::process::Command::new(tool)
                    .args(&args)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn();
                let Ok(mut child) = child else {
                    assert!(std::env::var_os("CI").is_none(), "{tool} missing in CI");
                    continue;
                };
                use std::io::Write;
                child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{tool}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let prog = rollback_program();
        let out = std::process::Command::new("shellcheck")
            .args(["-s", "bash", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        if let Ok(mut c) = out {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(prog.as_bytes()).unwrap();
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        }
    }
}
