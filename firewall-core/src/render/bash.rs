//! The bash script: applies a policy atomically with `nft -f` (the nftables
//! backend) or `iptables-restore` (iptables-nft, iptables-legacy), backs up
//! what it replaces, rolls back on any failure and honours `failsafe`.
//!
//! The script carries both renderings (the nftables file and the two
//! iptables rulesets), so one artefact applies on any host; which one it
//! loads is chosen when it runs ([`super::preflight::BACKEND`]).
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
pub const ROLLBACK_FUNCTIONS: [&str; 29] = [
    "fw_log",
    "fw_now_us",
    "fw_alive",
    "fw_state_prefix",
    "fw_lock",
    "fw_unlock",
    "fw_pending_set",
    "fw_pending_clear",
    "fw_tool",
    "fw_nft_save",
    "fw_nft_restore",
    "fw_drop_table",
    "fw_ipt_own",
    "fw_ipt_prepare",
    "fw_restore",
    "fw_rollback",
    "fw_confirm",
    "fw_takeover",
    "fw_watchdog_done",
    "fw_watchdog",
    "fw_rules_summary",
    "fw_verify",
    "fw_nft_summary",
    "fw_nft_verify",
    "fw_held",
    "fw_detect_backend",
    "fw_remove",
    "fw_pending_dir",
    "fw_main",
];

/// The shared shell functions: restore a backup directory, roll back, confirm,
/// and the failsafe watchdog. Both the script and `apply()` run this text.
///
/// A backup directory `DIR` holds:
/// * `backend`: `iptables-nft`, `iptables-legacy` or `nftables` ([`crate::plan::Backend::name`]), the backend used for save, load and restore;
/// * `v4.rules`, `v6.rules`: what the firewall owned before the change (`fw_ipt_own` of `iptables-save` / `ip6tables-save`: its `fw-*` chains, hooks and the built-in policies; iptables backends), restored with `--noflush` so that other tools' rules stay; with `exclusive`, the whole `iptables-save -c` output;
/// * `v4.tables`, `v6.tables`: the tables that existed before the change (a restore removes one the change created, once empty);
/// * `exclusive`: present for an `exclusive;` policy: the whole ruleset was saved and is restored whole;
/// * `nft.rules`: the firewall's own nftables tables before the change, as `nft list table` prints them (empty: none existed; nftables backend; with `exclusive`, `nft list ruleset`);
/// * `ip_forward`: the previous `net.ipv4.ip_forward` value;
/// * `armed`: present while a failsafe waits for confirmation. Whoever renames it
///   first wins: `confirm` renames it to `confirmed`, the watchdog (at the
///   deadline) and `rollback` rename it to `reverting`. `rename(2)` is atomic, so
///   a confirmation at the last moment and the deadline cannot both win;
/// * `watchdog.pid`, `log`: the watchdog's pid and what it did.
///
/// Entry point: `fw_main COMMAND DIR [SECONDS]` with COMMAND one of
/// `restore`, `rollback`, `confirm`, `watchdog`; also `remove BACKEND` (take
/// out everything the firewall owns) and `pending PREFIX` (the backup
/// directory of a pending failsafe, if any).
pub fn rollback_functions() -> &'static str {
    &ROLLBACK_SH
}

/// [`rollback_functions`] as a runnable program: `bash rollback.sh COMMAND DIR [SECONDS]`.
///
/// This is the file `apply()` writes into its backup directory and runs for a
/// rollback or as the detached failsafe watchdog (`setsid -f bash rollback.sh watchdog DIR SECS`).
pub fn rollback_program() -> String {
    format!(
        "#!/bin/bash\n# Rollback and failsafe watchdog of firewall-core (generated; see render/lib.sh).\n{}fw_main \"$@\"\n",
        &*ROLLBACK_SH
    )
}

/// The shell library: the shared constants, then `lib.sh`.
static ROLLBACK_SH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}{}", super::shell::constants(), super::shell::LIBRARY));

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

/// `text` as a quoted heredoc written to `$fw_dir/FILE`, under a heading.
fn heredoc(s: &mut String, heading: &str, file: &str, base: &str, text: &str) {
    let d = delimiter(base, text);
    let nl = if text.ends_with('\n') || text.is_empty() {
        ""
    } else {
        "\n"
    };
    let _ = write!(
        s,
        "\n# ---- {heading} ----\ncat >\"$fw_dir/{file}\" <<'{d}'\n{text}{nl}{d}\n"
    );
}

/// A heredoc delimiter that does not occur as a line of `text`.
fn delimiter(base: &str, text: &str) -> String {
    let mut d = base.to_string();
    while text.lines().any(|l| l == d) {
        d.push('_');
    }
    d
}

/// The bash script that applies `model`, whose rendered texts are `ipv4` and
/// `ipv6` (`iptables-save` format, [`super::iptables`]) and `nft` (the
/// nftables file, [`super::nft`]). All three are embedded; the backend chosen
/// when the script runs loads its own.
///
/// It requires root, chooses the backend ([`super::preflight::BACKEND`]),
/// checks its tools and the host ([`super::preflight`]: every `extif` exists,
/// the SSH session it runs in survives, the other iptables backend holds no
/// rules), saves what it replaces (what the firewall owns of the IPv4/IPv6
/// rules, or its own nftables tables; everything under `exclusive;`) and
/// `ip_forward` into a private `mktemp -d` directory, arms the watchdog (the
/// failsafe, if the policy has one) before the first rule changes, loads the
/// rules (`nft -f`: one transaction; or `iptables-restore -w --noflush` /
/// `ip6tables-restore -w --noflush` of the text `fw_ipt_prepare` makes of
/// them; without `--noflush` under `exclusive;`) from quoted heredocs, sets
/// `ip_forward` for routers, reads the rules back, and restores everything it
/// saved if any step fails. `bash SCRIPT --remove` takes out everything the
/// firewall owns instead (`fw_remove`), under the same lock; exit 5 while a
/// failsafe is pending.
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
///     exclusive: false,
///     asserts: vec![],
/// };
/// let s = firewall_core::render::bash::script(
///     &model,
///     "*filter\nCOMMIT\n",
///     "*filter\nCOMMIT\n",
///     "table inet firewall {}\ndelete table inet firewall\n",
/// );
/// assert!(s.starts_with("#!/bin/bash\n"));
/// assert!(s.contains("set -euo pipefail"));
/// assert!(s.contains("<<'FIREWALL_IPV4'"));
/// assert!(s.contains("<<'FIREWALL_NFT'"));
/// ```
pub fn script(model: &Model, ipv4: &str, ipv6: &str, nft: &str) -> String {
    let mut s =
        String::with_capacity(ipv4.len() + ipv6.len() + nft.len() + ROLLBACK_SH.len() + 4096);
    s.push_str("#!/bin/bash\n");
    s.push_str("# Firewall policy, generated by firewall-core. Change the policy and regenerate\n");
    s.push_str("# rather than editing this file.\n#\n# The policy:\n");
    for line in super::policy::lines(model) {
        let _ = writeln!(s, "#   {}", comment_safe(&line));
    }
    s.push_str(&super::kernel::header(model));
    if model.exclusive {
        s.push_str(
            "#\n\
             # !!! EXCLUSIVE: this policy says `exclusive;`. Applying it REMOVES EVERY OTHER\n\
             # !!! RULE, CHAIN AND TABLE of this host first (Docker's, fail2ban's, libvirt's,\n\
             # !!! kube-proxy's, a VPN's): iptables: every table is replaced whole; nftables:\n\
             # !!! `flush ruleset` in the same transaction. Other tools stop working until\n\
             # !!! they reinstall their rules (restart them).\n",
        );
    } else {
        s.push_str(
            "#\n\
             # Shares the host: touches only what the firewall owns: iptables: the chains\n\
             # named fw-*, one jump (hook) from each built-in chain into them, appended\n\
             # after other tools' jumps, and the built-in chains' policies; nftables: its\n\
             # own tables. Other tools' rules (Docker, fail2ban, libvirt) stay as they are.\n\
             # `bash THIS-SCRIPT --remove` takes out everything the firewall owns.\n",
        );
    }
    s.push_str(
        "#\n\
         # What this script does, in order:\n\
         #   - checks it runs as root;\n",
    );
    s.push_str(super::preflight::BACKEND_HEADER);
    s.push_str("#   - checks that the tools of that backend exist;\n");
    s.push_str(super::preflight::HEADER);
    s.push_str(
        "#   - takes the applier lock of this network namespace (flock on\n\
         #      /run/firewall/net-INODE.lock, shared with firewall-core's apply()):\n\
         #      one applier at a time; waits FIREWALL_LOCK_WAIT seconds (default 10);\n\
         #   - saves what it replaces and net.ipv4.ip_forward into a private directory\n\
         #      (mktemp -d): nftables: the firewall's own tables (inet firewall,\n\
         #      ip firewall_nat; nothing else of the host's nftables ruleset is saved\n\
         #      or changed); iptables: what the firewall owns of the IPv4 and IPv6\n\
         #      rules (every rule when exclusive);\n\
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
         #   - loads the rules embedded below: nftables: the nftables file, in ONE\n\
         #      `nft -f` (one transaction: all of it or nothing); iptables: the IPv4\n\
         #      and then the IPv6 rules, each in one iptables-restore run;\n",
    );
    if model.is_router() {
        s.push_str("#   - sets net.ipv4.ip_forward=1 (this policy routes);\n");
    }
    s.push_str(
        "#   - reads the rules back and compares tables, chains, policies and rules\n\
         #      (by their comments) with the ones loaded.\n\
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
    s.push_str(&ROLLBACK_SH);
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
"#,
    );
    s.push_str(super::preflight::BACKEND);
    s.push_str(
        r#"if [ "$fw_backend" = nftables ]; then
  fw_tools=(nft)
  fw_package=nftables
else
  fw_save4=$(fw_tool 4 save "$fw_backend")
  fw_save6=$(fw_tool 6 save "$fw_backend")
  fw_restore4=$(fw_tool 4 restore "$fw_backend")
  fw_restore6=$(fw_tool 6 restore "$fw_backend")
  fw_tools=("$fw_save4" "$fw_save6" "$fw_restore4" "$fw_restore6")
  fw_package=iptables
fi
for fw_t in "${fw_tools[@]}" mktemp sed grep sort awk setsid flock readlink timeout; do
  if ! command -v "$fw_t" >/dev/null 2>&1; then
    fw_die "$fw_t is missing (Debian/Ubuntu: apt-get install $fw_package util-linux coreutils)"
  fi
done
printf 'firewall: backend %s\n' "$fw_backend"
"#,
    );
    let _ = writeln!(s, "fw_exclusive={}", u8::from(model.exclusive));
    s.push_str(
        r#"fw_prefix=$(fw_state_prefix) || fw_die "cannot create the state directory /run/firewall"
fw_lock_wait=${FIREWALL_LOCK_WAIT:-10}
case $fw_lock_wait in
'' | *[!0-9]*) fw_lock_wait=10 ;;
esac

# ---- --remove: take out everything the firewall owns, nothing else ----
if [ "${1:-}" = --remove ]; then
  if ! fw_lock "$fw_prefix" "$fw_lock_wait"; then
    printf 'firewall: another apply is running in this network namespace; nothing removed.\n' >&2
    exit 4
  fi
  fw_pending=$(fw_pending_dir "$fw_prefix")
  if [ -n "$fw_pending" ]; then
    printf 'firewall: a failsafe is pending (%s): confirm it or let it expire first; nothing removed.\n' "$fw_pending" >&2
    exit 5
  fi
  if ! fw_remove "$fw_backend"; then
    fw_die "removing the firewall's rules failed (see above)"
  fi
  if [ "$fw_backend" != nftables ]; then
    printf 'firewall: removed (chains fw-*, their hooks; built-in policies ACCEPT); other rules untouched.\n'
  else
    printf 'firewall: removed (tables %s); other rules untouched.\n' "$fw_nft_tables"
  fi
  exit 0
fi
"#,
    );
    s.push_str(&super::preflight::bash(model));
    s.push_str(
        r#"
# ---- Lock: one applier at a time per network namespace ----
# flock(2) on /run/firewall/net-INODE.lock, shared with firewall-core's apply()
# and the watchdogs; waits FIREWALL_LOCK_WAIT seconds (default 10), then exit 4.
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
fw_save_rules() {
  if [ "$fw_exclusive" = 1 ]; then
    # Everything is replaced: everything is saved.
    : >"$fw_dir/exclusive"
    if [ "$fw_backend" = nftables ]; then
      timeout 60 nft list ruleset >"$fw_dir/nft.rules"
    else
      timeout 60 "$fw_save4" -c >"$fw_dir/v4.rules" &&
        timeout 60 "$fw_save6" -c >"$fw_dir/v6.rules"
    fi
  elif [ "$fw_backend" = nftables ]; then
    fw_nft_save >"$fw_dir/nft.rules"
  else
    # What the firewall owns, nothing else (fw_ipt_own), and which tables
    # exist (a restore removes a table the change created, once empty).
    fw_now4=$(timeout 60 "$fw_save4") && fw_now6=$(timeout 60 "$fw_save6") &&
      printf '%s\n' "$fw_now4" | fw_ipt_own >"$fw_dir/v4.rules" &&
      printf '%s\n' "$fw_now6" | fw_ipt_own >"$fw_dir/v6.rules" &&
      printf '%s\n' "$fw_now4" | sed -n 's/^\*//p' >"$fw_dir/v4.tables" &&
      printf '%s\n' "$fw_now6" | sed -n 's/^\*//p' >"$fw_dir/v6.tables"
  fi
}
if ! { printf '%s\n' "$fw_backend" >"$fw_dir/backend" &&
  fw_save_rules &&
  printf '%s\n' "$fw_prefix" >"$fw_dir/state" &&
  cat /proc/sys/net/ipv4/ip_forward >"$fw_dir/ip_forward"; }; then
  fw_die "cannot save the current rules into $fw_parent (see the error above: a full or read-only file system?); nothing was changed
  help: choose another directory: TMPDIR=/var/tmp bash $0"
fi
{
  printf '#!/bin/bash\n'
  declare -p "#,
    );
    s.push_str(&super::shell::CONSTANT_NAMES.join(" "));
    s.push_str("\n  declare -f ");
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

    s.push_str(
        "\n# ---- The rules, both renderings of the policy (the backend chosen above\n\
         # loads its own; nothing else is read) ----\n",
    );
    heredoc(
        &mut s,
        "nftables file, for the nftables backend (`nft -f`: one transaction)",
        "new.nft",
        "FIREWALL_NFT",
        nft,
    );
    heredoc(
        &mut s,
        "IPv4 rules, for the iptables backends (one atomic iptables-restore per table)",
        "new4.rules",
        "FIREWALL_IPV4",
        ipv4,
    );
    heredoc(
        &mut s,
        "IPv6 rules, for the iptables backends",
        "new6.rules",
        "FIREWALL_IPV6",
        ipv6,
    );
    s.push_str(
        r#"
# ---- Load ----
# Not exclusive: --noflush, only the firewall's own chains (declaring one
# empties it), hooks not yet there, own chains no longer used deleted
# (fw_ipt_prepare). Exclusive: every table replaced, `flush ruleset`.
if [ "$fw_backend" = nftables ]; then
  if [ "$fw_exclusive" = 1 ]; then
    { printf 'flush ruleset; '; cat -- "$fw_dir/new.nft"; } | timeout 60 nft -f -
  else
    timeout 60 nft -f "$fw_dir/new.nft"
  fi
else
  fw_mode=own
  fw_noflush=(--noflush)
  if [ "$fw_exclusive" = 1 ]; then
    fw_mode=exclusive
    fw_noflush=()
  fi
  timeout 60 "$fw_save4" | fw_ipt_prepare "$fw_mode" "$fw_dir/new4.rules" >"$fw_dir/load4.rules"
  timeout 60 "$fw_restore4" -w 10 "${fw_noflush[@]}" <"$fw_dir/load4.rules"
  timeout 60 "$fw_save6" | fw_ipt_prepare "$fw_mode" "$fw_dir/new6.rules" >"$fw_dir/load6.rules"
  timeout 60 "$fw_restore6" -w 10 "${fw_noflush[@]}" <"$fw_dir/load6.rules"
fi
"#,
    );

    if model.is_router() {
        s.push_str(
            "\n# ---- Routing: masquerade/dnat need forwarding ----\nprintf '1\\n' >/proc/sys/net/ipv4/ip_forward\n",
        );
    }

    s.push_str(
        r#"
# ---- Verify: the rules read back are the ones loaded (tables, chains, policies, rules) ----
if [ "$fw_backend" = nftables ]; then
  fw_nft_verify "$fw_dir/new.nft" || fw_die "the nftables tables read back differ from the ones loaded (another program changing the firewall?)"
else
  fw_verify "$fw_save4" "$fw_dir/new4.rules" || fw_die "the IPv4 rules read back differ from the ones loaded (another program changing the firewall?)"
  fw_verify "$fw_save6" "$fw_dir/new6.rules" || fw_die "the IPv6 rules read back differ from the ones loaded (another program changing the firewall?)"
fi
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
        let m = model();
        let s = script(&m, V4, "*filter\nCOMMIT\n", &crate::render::nft::nft(&m));
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
            .arg(format!("{}\nfw_log \"$1\" 'a message'", &*ROLLBACK_SH))
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

    /// fw_nft_summary of the rendered file and of `nft list table` output
    /// (the same tables as nft 1.0.6 prints them: sets expanded over several
    /// lines, `meta nfproto` left out in an `ip` table, other spellings) agree,
    /// and a lost rule or changed policy shows.
    #[test]
    fn nft_summary_reads_the_file_and_the_listing_alike() {
        let file = "# Generated\ntable inet firewall {}\ndelete table inet firewall\ntable ip firewall_nat {}\ndelete table ip firewall_nat\n\
            table inet firewall {\n\tset ext-in_0_dport {\n\t\ttype inet_service\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { 22, 80 }\n\t}\n\
            \tchain ext-in {\n\t\ttcp dport @ext-in_0_dport accept comment \"open tcp 22, 80\"\n\t}\n\
            \tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiifname \"lo\" accept comment \"loopback\"\n\t\tiifname \"eth0\" goto ext-in comment \"extif eth0\"\n\t}\n}\n\
            table ip firewall_nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta nfproto ipv4 oifname \"eth0\" masquerade comment \"masquerade\"\n\t}\n}\n";
        let listing = "table inet firewall {\n\tset ext-in_0_dport {\n\t\ttype inet_service\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { 22,\n\t\t\t     80 }\n\t}\n\n\
            \tchain ext-in {\n\t\ttcp dport @ext-in_0_dport accept comment \"open tcp 22, 80\"\n\t}\n\n\
            \tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiifname \"lo\" accept comment \"loopback\"\n\t\tiifname \"eth0\" goto ext-in comment \"extif eth0\"\n\t}\n}\n\
            table ip firewall_nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"eth0\" masquerade comment \"masquerade\"\n\t}\n}\n";
        let summary = |text: &str| {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "{}\nfw_nft_summary <<'EOF'\n{text}EOF",
                    &*ROLLBACK_SH
                ))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let want = summary(file);
        assert_eq!(
            want,
            "inet firewall table\ninet firewall ext-in chain\ninet firewall ext-in rule 000001 open tcp 22, 80\n\
             inet firewall input chain\ninet firewall input policy drop\ninet firewall input rule 000001 loopback\n\
             inet firewall input rule 000002 extif eth0\nip firewall_nat table\nip firewall_nat postrouting chain\n\
             ip firewall_nat postrouting policy accept\nip firewall_nat postrouting rule 000001 masquerade\n"
        );
        assert_eq!(summary(listing), want);
        assert_ne!(
            summary(&listing.replace("policy drop", "policy accept")),
            want
        );
        assert_ne!(
            summary(&listing.replace("\t\tiifname \"lo\" accept comment \"loopback\"\n", "")),
            want
        );
        // A policy's whole rendering: every rule line is counted.
        let m = model();
        let text = crate::render::nft::nft(&m);
        let rules = text
            .lines()
            .filter(|l| l.starts_with("\t\t") && l.contains(" comment \""))
            .count();
        assert_eq!(summary(&text).matches(" rule ").count(), rules);
    }

    /// The script copies exactly ROLLBACK_FUNCTIONS into rollback.sh: every
    /// function lib.sh defines must be listed (in order), or the watchdog
    /// would miss it.
    #[test]
    fn rollback_functions_lists_every_library_function() {
        let defined: Vec<&str> = crate::render::shell::LIBRARY
            .lines()
            .filter_map(|l| l.strip_suffix("() {"))
            .collect();
        assert_eq!(defined, ROLLBACK_FUNCTIONS);
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
            // The real texts: both backends' paths and rules are in the script.
            let s = crate::render::render(&m).bash;
            assert!(s.contains("nft -f \"$fw_dir/new.nft\""));
            assert!(s.contains("\"$fw_restore4\" -w 10"));
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
