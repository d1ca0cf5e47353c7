//! [`ApplyError`]: why an apply failed, which step, and whether the previous rules came back.

use super::session::SshSession;
use crate::diagnostic::Diagnostics;
use crate::model::Iface;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A step of [`super::apply`], in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Saving the current rules and `ip_forward` into the backup directory.
    Backup,
    /// Starting the watchdog (the failsafe, and the guard against an
    /// interrupted load), or taking over a pending failsafe.
    ArmFailsafe,
    /// `iptables-restore` of the IPv4 rules.
    LoadIpv4,
    /// `ip6tables-restore` of the IPv6 rules.
    LoadIpv6,
    /// `nft -f` of the nftables file: both families and the NAT table in one
    /// transaction (the nftables backend).
    LoadNft,
    /// Setting `net.ipv4.ip_forward=1` (routers).
    IpForward,
    /// Reading the rules back and comparing them with what was loaded.
    Verify,
}

impl Step {
    /// A short description: "loading the IPv4 rules".
    pub const fn describe(self) -> &'static str {
        match self {
            Step::Backup => "saving the current rules",
            Step::ArmFailsafe => "starting the watchdog (failsafe, interrupted-load guard)",
            Step::LoadIpv4 => "loading the IPv4 rules (iptables-restore)",
            Step::LoadIpv6 => "loading the IPv6 rules (ip6tables-restore)",
            Step::LoadNft => "loading the rules of both families (nft -f, one transaction)",
            Step::IpForward => "enabling net.ipv4.ip_forward",
            Step::Verify => "verifying the loaded rules",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What went wrong in a step.
#[derive(Debug)]
pub enum Cause {
    /// A file or process operation failed.
    Io(io::Error),
    /// A tool exited non-zero and nothing more specific is known.
    Tool {
        /// The tool.
        tool: String,
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `iptables-restore` or `nft -f` rejected a rule: the line, the rule and
    /// the policy statement that produced it (from the printer's map of the
    /// text, [`crate::render::Printed::origin_at`]).
    Rule {
        /// The tool.
        tool: String,
        /// 1-based line of the ruleset fed to it.
        line: usize,
        /// The rule text on that line.
        rule: Option<String>,
        /// The policy statement (or derived rule) that produced it.
        statement: Option<String>,
        /// What the tool printed on stderr.
        stderr: String,
    },
    /// The kernel lacks a feature the rules need (a module not built or not loadable).
    KernelSupport {
        /// The tool.
        tool: String,
        /// The feature, in kernel-config terms.
        feature: String,
        /// The policy statement whose rule needs it, when known.
        statement: Option<String>,
        /// What the tool printed on stderr.
        stderr: String,
    },
    /// The rules read back differ from the ones loaded.
    Mismatch {
        /// `IPv4` or `IPv6` (iptables backends), `nftables` (the firewall's
        /// own nftables tables).
        family: &'static str,
        /// The first difference.
        detail: String,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Io(e) => write!(f, "{e}"),
            Cause::Tool { tool, code, stderr } => {
                match code {
                    Some(c) => write!(f, "{tool} exited with status {c}")?,
                    None => write!(f, "{tool} was killed by a signal")?,
                }
                if !stderr.trim().is_empty() {
                    write!(f, ": {}", stderr.trim())?;
                }
                Ok(())
            }
            Cause::Rule {
                tool,
                line,
                rule,
                statement,
                stderr,
            } => {
                write!(f, "{tool} rejected line {line}")?;
                if let Some(s) = statement {
                    write!(f, ", produced by the policy statement `{s}`")?;
                }
                if let Some(r) = rule {
                    write!(f, "\n  rule: {r}")?;
                }
                write!(f, "\n  {tool} said: {}", stderr.trim())
            }
            Cause::KernelSupport {
                tool,
                feature,
                statement,
                stderr,
            } => {
                write!(f, "the kernel lacks {feature}")?;
                if let Some(s) = statement {
                    write!(f, ", needed by the policy statement `{s}`")?;
                }
                write!(
                    f,
                    ": {tool} said: {}\n  help: load the module named above (modprobe) or use a kernel built with that option; a missing libxt_*.so means an incomplete iptables installation",
                    stderr.trim()
                )
            }
            Cause::Mismatch { family, detail } => write!(
                f,
                "the {family} rules read back are not the ones loaded: {detail}\n  help: another program may be changing the firewall at the same time (firewalld, docker, a second apply)"
            ),
        }
    }
}

/// Whether the previous rules were put back after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// The failure came before anything was changed.
    NothingChanged,
    /// The saved IPv4/IPv6 rules and `ip_forward` were restored.
    Restored,
    /// Restoring failed too; the backup is kept in `backup` for manual recovery.
    Failed {
        /// What went wrong.
        detail: String,
        /// The backup directory (`v4.rules`, `v6.rules`, `ip_forward`).
        backup: PathBuf,
    },
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollback::NothingChanged => f.write_str("nothing was changed"),
            Rollback::Restored => {
                f.write_str("the previous rules and ip_forward were restored: nothing changed")
            }
            Rollback::Failed { detail, backup } => write!(
                f,
                "RESTORING THE PREVIOUS RULES FAILED ({detail}); the backup is in {}: restore it with `bash {0}/rollback.sh restore {0}`",
                backup.display()
            ),
        }
    }
}

/// Why an apply failed. Every variant says what to do.
#[derive(Debug)]
pub enum ApplyError {
    /// The policy did not parse.
    Policy(Diagnostics),
    /// Changing the firewall needs root (`CAP_NET_ADMIN`).
    NotRoot {
        /// The effective uid this process has.
        euid: u32,
    },
    /// A program `apply` needs is not installed.
    ToolMissing {
        /// The program.
        tool: String,
        /// What to install.
        help: String,
    },
    /// `iptables -V` did not say `nf_tables` or `legacy`.
    UnknownBackend {
        /// What it printed.
        version: String,
    },
    /// The backend was detected from `iptables`, but the other backend holds
    /// rules: they would stay in force beside the new ones, unseen. Nothing
    /// was changed; choose with [`super::Options::backend`].
    BackendMismatch {
        /// The backend `iptables` is.
        selected: super::Backend,
        /// The backend that holds rules.
        other: super::Backend,
        /// The save tool that showed them.
        tool: String,
        /// The first rule (or `DROP` policy) it showed.
        line: String,
    },
    /// The failsafe window asked for is zero or over an hour.
    InvalidFailsafe {
        /// The window asked for.
        requested: Duration,
    },
    /// An `extif` (without a wildcard) that this host does not have: the real
    /// external interface would count as trusted. Nothing was changed.
    MissingInterface {
        /// The missing external interfaces.
        missing: Vec<Iface>,
        /// The interfaces the host has (empty: they could not be read).
        present: Vec<String>,
    },
    /// The backup could not be written where asked (full, read-only, no such
    /// directory, no permission). Nothing was changed.
    BackupLocation {
        /// The directory that could not be written.
        dir: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// This process runs in an SSH session that the policy would cut.
    SessionLockout {
        /// The session (from `SSH_CONNECTION`/`SSH_CLIENT`).
        session: SshSession,
        /// Why it would not be accepted.
        reason: String,
    },
    /// `SSH_CONNECTION` (or `SSH_CLIENT`) is set but cannot be read, so the
    /// session guard cannot tell whether the policy cuts the session. Nothing
    /// was changed; override: [`super::Options::allow_session_lockout`].
    SessionUnreadable {
        /// The variable (`SSH_CONNECTION` or `SSH_CLIENT`).
        variable: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The running kernel lacks options or modules this policy needs (see
    /// [`crate::plan::requirements`]), found before anything changed: nothing
    /// was changed. Override (a kernel whose configuration file is wrong):
    /// [`super::Options::skip_kernel_check`].
    KernelMissing {
        /// The backend whose requirements were checked.
        backend: super::Backend,
        /// What is missing: the option, its module, and what needs it.
        missing: Vec<crate::plan::requirements::Requirement>,
    },
    /// A `firewall!` constant whose compiled text differs from what this
    /// firewall-core prints from the constant's policy (a constant built by
    /// another version, or edited): its map would not describe what is
    /// loaded. Nothing was changed; rebuild.
    CompiledTextDiffers {
        /// Which text: `iptables_restore`, `ip6tables_restore` or `nft`.
        text: &'static str,
    },
    /// A step failed; `rollback` says whether the previous rules came back.
    Failed {
        /// The step.
        step: Step,
        /// What went wrong (boxed: keeps `Result<_, ApplyError>` small).
        cause: Box<Cause>,
        /// Whether the previous rules were restored.
        rollback: Rollback,
    },
    /// `confirm()` came after the failsafe deadline: the previous rules are back.
    FailsafeExpired {
        /// The backup directory (removed once the rules were restored; the
        /// watchdog's log line is in syslog, tag `firewall`).
        backup: PathBuf,
    },
    /// `confirm()` came after a later apply took this failsafe over (see
    /// [`super::Applied::took_over`]): that apply's confirmation decides now.
    FailsafeSuperseded {
        /// The backup directory the later apply took over.
        backup: PathBuf,
    },
    /// `remove()` while a failsafe is pending: confirm it or let it expire
    /// first (removing now would be undone by its revert); nothing changed.
    FailsafePending {
        /// The pending failsafe's backup directory.
        backup: PathBuf,
    },
    /// `remove()` failed part way (each family is one transaction: what
    /// the firewall owns may be partly gone); run it again.
    RemoveFailed {
        /// The shell library's message.
        detail: String,
    },
    /// Another applier (an `apply()`, the bash script, or a watchdog restoring
    /// rules) holds the lock of this network namespace (see the
    /// [`lock`](super#one-applier-at-a-time)); nothing was changed.
    Busy {
        /// The lock file (`/run/firewall/net-<inode>.lock`).
        lock: PathBuf,
        /// The holder's pid, when it wrote it and still runs.
        holder: Option<u32>,
        /// How long this apply waited ([`super::Options::lock_wait`]).
        waited: Duration,
        /// Set when the lock file could not be opened or locked at all.
        error: Option<io::Error>,
    },
}

impl ApplyError {
    /// The step that failed, for [`ApplyError::Failed`].
    pub fn step(&self) -> Option<Step> {
        match self {
            ApplyError::Failed { step, .. } => Some(*step),
            _ => None,
        }
    }

    /// The policy statement behind a rule `iptables-restore` or `nft -f`
    /// rejected (from the printer's map of the text), if known.
    pub fn statement(&self) -> Option<&str> {
        match self {
            ApplyError::Failed { cause, .. } => match &**cause {
                Cause::Rule { statement, .. } | Cause::KernelSupport { statement, .. } => {
                    statement.as_deref()
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The tool that was killed after its timeout, if that is what failed.
    pub fn timed_out(&self) -> Option<&super::ToolTimeout> {
        match self {
            ApplyError::Failed { cause, .. } => match &**cause {
                Cause::Io(e) => e.get_ref().and_then(|i| i.downcast_ref()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the previous rules were restored after this failure (or never touched).
    pub fn host_unchanged(&self) -> bool {
        !matches!(
            self,
            ApplyError::Failed {
                rollback: Rollback::Failed { .. },
                ..
            }
        )
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Policy(d) => write!(f, "the policy has mistakes:\n{d}"),
            ApplyError::NotRoot { euid } => write!(
                f,
                "applying a firewall needs root (this process runs as uid {euid})\n  help: run it with sudo, or as root inside the network namespace (ip netns exec NS ...)"
            ),
            ApplyError::ToolMissing { tool, help } => {
                write!(f, "`{tool}` is not installed or not on PATH\n  help: {help}")
            }
            ApplyError::UnknownBackend { version } => write!(
                f,
                "cannot tell the iptables backend: `iptables -V` printed `{}`\n  help: install iptables 1.8 or later (it prints `(nf_tables)` or `(legacy)`)",
                version.trim()
            ),
            ApplyError::BackendMismatch {
                selected,
                other,
                tool,
                line,
            } => write!(
                f,
                "refusing to apply: iptables here is the {selected} backend, but the {other} backend holds rules that would stay in force beside the new ones, unseen (`{tool}` shows `{}`); nothing was changed\n  help: choose the backend: Options {{ backend: Some(Backend::{}), .. }} replaces those rules (the bash script: FIREWALL_BACKEND={other}); Some(Backend::{}) applies beside them (clear them first with `{} -F` and `-X`)",
                line.trim(),
                variant_name(*other),
                variant_name(*selected),
                tool.trim_end_matches("-save"),
            ),
            ApplyError::InvalidFailsafe { requested } => write!(
                f,
                "a failsafe window of {requested:?} is not allowed\n  help: use 1 second to 1 hour"
            ),
            ApplyError::MissingInterface { missing, present } => {
                let names: Vec<&str> = missing.iter().map(Iface::as_str).collect();
                write!(
                    f,
                    "refusing to apply: the external interface{} {} {} not exist on this host, so the real external interface would be treated as trusted (everything open); this host has: {}\n  help: correct `extif` in the policy; for an interface that appears later (ppp0, a VPN), allow it with Options {{ allow_missing: vec![Iface::new(\"{}\")?], .. }} (the bash script: FIREWALL_ALLOW_MISSING={})",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    if names.len() == 1 { "does" } else { "do" },
                    if present.is_empty() { "(the interface list could not be read)".to_string() } else { present.join(", ") },
                    names.first().copied().unwrap_or("ppp0"),
                    names.join(","),
                )
            }
            ApplyError::BackupLocation { dir, error } => write!(
                f,
                "cannot write the backup of the current rules into {}: {} ({error}); nothing was changed\n  help: choose another directory with Options {{ backup_parent: Some(\"/var/tmp\".into()), .. }}, or set TMPDIR (the default location; the bash script uses TMPDIR too)",
                dir.display(),
                super::location::meaning(error),
            ),
            ApplyError::SessionLockout { session, reason } => write!(
                f,
                "refusing to apply: this process runs in the SSH session {session}, and {reason}; the next login would be locked out\n  help: make the policy accept it: over an external interface `open tcp {} from {}{};` (or `open tcp {};`), over another interface `trust` it; or, if you have another way in (console), override with Options {{ allow_session_lockout: true, .. }} (the bash script: FIREWALL_ALLOW_SESSION_LOCKOUT=1)",
                session.server_port,
                // `from` takes a network: the client alone is a /32 (/128).
                if session.client.is_ipv4() { format!("{}", session.client) } else { format!("\"{}", session.client) },
                if session.client.is_ipv4() { "/32" } else { "/128\"" },
                session.server_port
            ),
            ApplyError::SessionUnreadable {
                variable,
                value,
                why,
            } => write!(
                f,
                "refusing to apply: {variable}={value:?} is set but cannot be read ({why}), so the SSH-session guard cannot check that the next login survives the new rules; nothing was changed\n  help: correct or unset {variable}, or, if you have another way in (console), override with Options {{ allow_session_lockout: true, .. }} (the bash script: FIREWALL_ALLOW_SESSION_LOCKOUT=1)",
            ),
            ApplyError::KernelMissing { backend, missing } => {
                write!(
                    f,
                    "refusing to apply: the running kernel lacks {} the policy needs with the {backend} backend; nothing was changed",
                    if missing.len() == 1 { "an option" } else { "options" }
                )?;
                for r in missing {
                    write!(f, "\n  {r}")?;
                }
                let modules: Vec<&str> = missing.iter().map(|r| r.module).collect();
                write!(
                    f,
                    "\n  help: load the module{} (`modprobe {}{}`) or rebuild the kernel with the option{} (=y or =m); if the kernel's configuration is wrong and it has them, override with Options {{ skip_kernel_check: true, .. }}",
                    if modules.len() == 1 { "" } else { "s" },
                    if modules.len() == 1 { "" } else { "-a " },
                    modules.join(" "),
                    if modules.len() == 1 { "" } else { "s" },
                )
            }
            ApplyError::CompiledTextDiffers { text } => write!(
                f,
                "refusing to apply: the `{text}` text compiled into this program differs from what firewall-core prints from the same policy, so it is not known which statement each of its rules comes from; nothing was changed\n  help: rebuild the program (cargo build), so that the firewall! constant is compiled by the firewall-core it runs with"
            ),
            ApplyError::Failed {
                step,
                cause,
                rollback,
            } => write!(f, "{step} failed: {cause}\n  {rollback}"),
            ApplyError::FailsafeExpired { backup } => write!(
                f,
                "too late to confirm: the failsafe ({}) is no longer pending: its deadline passed and the previous rules were restored (syslog: journalctl -t firewall)\n  help: apply again and confirm within the window, or use a longer failsafe",
                backup.display()
            ),
            ApplyError::FailsafeSuperseded { backup } => write!(
                f,
                "nothing to confirm: a later apply took this failsafe ({}) over; its rules and its confirmation decide now",
                backup.display()
            ),
            ApplyError::FailsafePending { backup } => write!(
                f,
                "a failsafe is pending ({}); nothing was removed\n  help: confirm it or let it expire, then remove",
                backup.display()
            ),
            ApplyError::RemoveFailed { detail } => write!(
                f,
                "removing the firewall's rules failed: {detail}\n  help: run remove() again; other tools' rules were not touched"
            ),
            ApplyError::Busy {
                lock,
                holder,
                waited,
                error,
            } => {
                if let Some(e) = error {
                    return write!(
                        f,
                        "cannot take the applier lock {}: {e}\n  help: /run/firewall (or $TMPDIR/firewall-run) must be writable by root",
                        lock.display()
                    );
                }
                write!(f, "another apply is running in this network namespace")?;
                if let Some(pid) = holder {
                    write!(f, " (pid {pid})")?;
                }
                write!(
                    f,
                    "; waited {:.1} s for the lock {}; nothing was changed\n  help: run again once it has finished, or wait longer (Options {{ lock_wait: Some(..), .. }})",
                    waited.as_secs_f64(),
                    lock.display()
                )
            }
        }
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApplyError::Policy(d) => Some(d),
            ApplyError::BackupLocation { error, .. } => Some(error),
            ApplyError::Failed { cause, .. } => match &**cause {
                Cause::Io(e) => Some(e),
                _ => None,
            },
            ApplyError::Busy { error: Some(e), .. } => Some(e),
            _ => None,
        }
    }
}

/// The Rust name of a backend's variant, for help texts.
const fn variant_name(b: super::Backend) -> &'static str {
    match b {
        super::Backend::IptablesNft => "IptablesNft",
        super::Backend::IptablesLegacy => "IptablesLegacy",
        super::Backend::Nftables => "Nftables",
    }
}
