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
pub const ROLLBACK_FUNCTIONS: [&str; 9] = [
    "fw_log",
    "fw_now_us",
    "fw_tool",
    "fw_drop_table",
    "fw_restore",
    "fw_rollback",
    "fw_confirm",
    "fw_watchdog",
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

const ROLLBACK_SH: &str = r#"# fw_log DIR MESSAGE: note what happened in DIR/log and in syslog (when logger exists).
fw_log() {
  printf '%s firewall: %s\n' "$(date '+%F %T')" "$2" >>"$1/log" 2>/dev/null || true
  if command -v logger >/dev/null 2>&1; then
    logger -t firewall -- "$2" 2>/dev/null || true
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
fw_restore() {
  local dir=$1 backend fam save restore now table want have failed=0 famfail strip
  strip='/^#/d; s/^\[[0-9]*:[0-9]*\] //; s/ \[[0-9]*:[0-9]*\]$/ [0:0]/'
  backend=$(cat "$dir/backend") || return 1
  for fam in 4 6; do
    if [ ! -e "$dir/v$fam.rules" ]; then
      continue
    fi
    famfail=0
    save=$(fw_tool "$fam" save "$backend")
    restore=$(fw_tool "$fam" restore "$backend")
    if now=$(timeout 60 "$save"); then
      for table in $(printf '%s\n' "$now" | sed -n 's/^\*//p'); do
        if ! grep -qxF "*$table" "$dir/v$fam.rules"; then
          fw_drop_table "$fam" "$table" "$backend" "$save" "$restore" || famfail=1
        fi
      done
    else
      famfail=1
    fi
    timeout 60 "$restore" -w 10 -c <"$dir/v$fam.rules" || famfail=1
    if [ "$famfail" = 1 ]; then
      if now=$(timeout 60 "$save") &&
        [ "$(printf '%s\n' "$now" | sed -e "$strip")" = "$(sed -e "$strip" "$dir/v$fam.rules")" ]; then
        fw_log "$dir" "IPv$fam: a restore step failed, but the rules equal the backup: unchanged"
        printf 'firewall: IPv%s: a restore step failed, but the rules already equal the saved ones: unchanged.\n' "$fam" >&2
      else
        failed=1
      fi
    fi
  done
  if [ -e "$dir/ip_forward" ]; then
    want=$(cat "$dir/ip_forward")
    have=$(cat /proc/sys/net/ipv4/ip_forward)
    if [ "$want" != "$have" ]; then
      printf '%s\n' "$want" >/proc/sys/net/ipv4/ip_forward || failed=1
    fi
  fi
  return "$failed"
}

# fw_rollback DIR: undo a change that failed or was refused. Disarms the
# watchdog first; if the watchdog already claimed the backup, it restores.
fw_rollback() {
  if [ -e "$1/armed" ] && ! mv "$1/armed" "$1/reverting" 2>/dev/null; then
    return 0
  fi
  if fw_restore "$1"; then
    fw_log "$1" "previous rules restored"
  else
    fw_log "$1" "restoring the previous rules FAILED; the backup is in $1"
    return 1
  fi
}

# fw_confirm DIR: keep the new rules; the watchdog sees it and exits.
fw_confirm() {
  if mv "$1/armed" "$1/confirmed" 2>/dev/null; then
    fw_log "$1" "new rules confirmed"
    printf 'firewall: confirmed, the new rules stay.\n'
  else
    printf 'firewall: too late, the failsafe already restored the previous rules (see %s/log).\n' "$1" >&2
    return 1
  fi
}

# fw_watchdog DIR SECONDS: the failsafe. Runs detached (setsid), so it
# outlives the applying process, its terminal and a SIGKILL of either.
fw_watchdog() {
  local dir=$1 deadline
  trap '' HUP INT
  printf '%s\n' "$$" >"$dir/watchdog.pid"
  deadline=$(($(fw_now_us) + $2 * 1000000))
  while [ "$(fw_now_us)" -lt "$deadline" ]; do
    if [ ! -e "$dir/armed" ]; then
      break
    fi
    sleep 0.1
  done
  if mv "$dir/armed" "$dir/reverting" 2>/dev/null; then
    if fw_restore "$dir"; then
      fw_log "$dir" "not confirmed within $2 s: previous rules restored"
    else
      fw_log "$dir" "not confirmed within $2 s: restoring the previous rules FAILED; the backup is in $dir"
    fi
    : >"$dir/reverted"
  elif [ -e "$dir/confirmed" ]; then
    # Confirmed: the backup is no longer needed.
    rm -rf -- "$dir"
    return 0
  fi
  rm -f -- "$dir/watchdog.pid"
}

# fw_main COMMAND DIR [SECONDS]
fw_main() {
  case "${1:-}" in
  restore) fw_restore "$2" ;;
  rollback) fw_rollback "$2" ;;
  confirm) fw_confirm "$2" ;;
  watchdog) fw_watchdog "$2" "$3" ;;
  *)
    printf 'usage: rollback.sh restore|rollback|confirm|watchdog DIR [SECONDS]\n' >&2
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
    s.push_str(
        "#\n\
         # What this script does, in order:\n\
         #   - checks it runs as root and that the iptables tools exist;\n",
    );
    s.push_str(super::preflight::HEADER);
    s.push_str(
        "#   - saves the current IPv4 and IPv6 rules and net.ipv4.ip_forward into a\n\
         #      private directory (mktemp -d);\n",
    );
    if model.failsafe.is_some() {
        s.push_str(
            "#   - arms a detached failsafe watchdog that restores the saved rules at the\n\
             #      deadline unless confirmed (it survives this script and its terminal);\n",
        );
    }
    s.push_str("#   - loads the IPv4 and then the IPv6 rules, each in one iptables-restore run;\n");
    if model.is_router() {
        s.push_str("#   - sets net.ipv4.ip_forward=1 (this policy routes);\n");
    }
    s.push_str(
        "# If any step fails, everything saved is restored (tables this script created\n\
         # are removed), so the host is left as it was.\n\
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
for fw_t in "$fw_save4" "$fw_save6" "$fw_restore4" "$fw_restore6" mktemp sed grep timeout"#,
    );
    if model.failsafe.is_some() {
        s.push_str(" setsid");
    }
    s.push_str(
        r#"; do
  if ! command -v "$fw_t" >/dev/null 2>&1; then
    fw_die "$fw_t is missing (Debian/Ubuntu: apt-get install iptables util-linux)"
  fi
done
"#,
    );
    s.push_str(&super::preflight::bash(model));
    s.push_str(
        r#"
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
  cat /proc/sys/net/ipv4/ip_forward >"$fw_dir/ip_forward"; }; then
  fw_die "cannot save the current rules into $fw_parent (see the error above: a full or read-only file system?); nothing was changed
  help: choose another directory: TMPDIR=/var/tmp bash $0"
fi
{
  printf '#!/bin/bash\n'
  declare -f "#,
    );
    s.push_str(&ROLLBACK_FUNCTIONS.join(" "));
    s.push_str(
        r#"
  printf '%s\n' 'fw_main "$@"'
} >"$fw_dir/rollback.sh"

# From here on, any failure (or Ctrl-C) restores the backup.
fw_applying=1
fw_on_exit() {
  local status=$?
  if [ "$fw_applying" = 1 ]; then
    printf 'firewall: applying failed (exit status %s); restoring the previous rules\n' "$status" >&2
    if fw_rollback "$fw_dir"; then
      printf 'firewall: previous rules and ip_forward restored; nothing changed.\n' >&2
      rm -rf -- "$fw_dir"
    else
      printf 'firewall: ROLLBACK FAILED; the saved rules are in %s; retry with: bash %s/rollback.sh restore %s\n' "$fw_dir" "$fw_dir" "$fw_dir" >&2
    fi
  fi
}
trap fw_on_exit EXIT
trap 'exit 130' INT TERM
"#,
    );

    if let Some(f) = model.failsafe {
        let qsecs = q(&f.as_secs().to_string());
        let _ = write!(
            s,
            r#"
# ---- Failsafe ({f}) ----
# Armed before the first rule changes. The watchdog runs in its own session
# (setsid -f), so killing this script or losing the terminal does not stop it.
: >"$fw_dir/armed"
setsid -f bash "$fw_dir/rollback.sh" watchdog "$fw_dir" {qsecs} </dev/null >/dev/null 2>&1
"#
        );
    }

    let d4 = delimiter("FIREWALL_IPV4", ipv4);
    let d6 = delimiter("FIREWALL_IPV6", ipv6);
    let _ = write!(
        s,
        "\n# ---- IPv4 rules (one atomic iptables-restore per table) ----\ntimeout 60 \"$fw_restore4\" -w 10 <<'{d4}'\n{}{}{d4}\n",
        ipv4,
        if ipv4.ends_with('\n') || ipv4.is_empty() { "" } else { "\n" }
    );
    let _ = write!(
        s,
        "\n# ---- IPv6 rules ----\ntimeout 60 \"$fw_restore6\" -w 10 <<'{d6}'\n{}{}{d6}\n",
        ipv6,
        if ipv6.ends_with('\n') || ipv6.is_empty() {
            ""
        } else {
            "\n"
        }
    );

    if model.is_router() {
        s.push_str(
            "\n# ---- Routing: masquerade/dnat need forwarding ----\nprintf '1\\n' >/proc/sys/net/ipv4/ip_forward\n",
        );
    }

    s.push_str("\nfw_applying=0\n");
    match model.failsafe {
        None => s.push_str("rm -rf -- \"$fw_dir\"\nprintf 'firewall: policy applied.\\n'\n"),
        Some(f) => {
            let qsecs = q(&f.as_secs().to_string());
            let qf = q(&f.to_string());
            let _ = write!(
                s,
                r#"fw_confirm_cmd="bash $(printf '%q' "$fw_dir/rollback.sh") confirm $(printf '%q' "$fw_dir")"
printf 'firewall: policy applied. Unless confirmed within %s, the previous rules come back.\n' {qf}
printf 'firewall: to keep the new rules, run:  %s\n' "$fw_confirm_cmd"
if [ -t 0 ]; then
  # A session the new rules cut cannot answer: the watchdog then restores the old rules.
  printf 'Keep the new rules? Type yes within %s s: ' {qsecs}
  fw_answer=
  read -r -t {qsecs} fw_answer || true
  if [ "$fw_answer" = yes ]; then
    fw_confirm "$fw_dir"
  else
    printf 'firewall: not confirmed; restoring the previous rules now.\n'
    fw_rollback "$fw_dir"
  fi
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
