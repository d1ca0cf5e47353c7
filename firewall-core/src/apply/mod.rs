//! Applying a policy to this host: atomically, backed up, rolled back on any
//! failure, honouring `failsafe`.
//!
//! # What [`apply`] does
//!
//! 1. **Interfaces and lockout check.** Every `extif` without a wildcard must
//!    exist on the host ([`ApplyError::MissingInterface`]; override:
//!    [`Options::allow_missing`]). Inside an SSH session
//!    (`SSH_CONNECTION`/`SSH_CLIENT`), refuses a policy under which a new
//!    connection from that client to that port, on the interface the session
//!    arrives on, would not be accepted ([`crate::render::guard`] decides, the
//!    same steps as the bash script's guard; [`ApplyError::SessionLockout`];
//!    override: [`Options::allow_session_lockout`]). An IPv6 link-local
//!    client (`fe80::1%eth0`) arrives on the interface its zone names. A
//!    variable that is set but cannot be read is refused
//!    ([`ApplyError::SessionUnreadable`], same override): the guard is never
//!    skipped silently.
//! 2. **Preconditions.** Root ([`ApplyError::NotRoot`]); the backend:
//!    [`Options::backend`], or when `None` the shell library's
//!    `fw_detect_backend` (the one detection the bash script uses too; see
//!    [backend detection](self#backend-detection)). Its tools: for an iptables
//!    backend its save/restore tools (`iptables-nft-restore`, ... with the
//!    plain names as fallback, the library's `fw_tool` choice), for nftables
//!    `nft` ([`ApplyError::ToolMissing`]). Save, load and rollback all use
//!    that one backend.
//!    Then the kernel: the options and modules the policy needs with that
//!    backend ([`crate::plan::requirements`]) against the running kernel's
//!    configuration (`/proc/config.gz`, decompressed in this process, else
//!    `/boot/config-<release>`; `=y`,
//!    or `=m` with the module loaded or loadable): missing ones are
//!    [`ApplyError::KernelMissing`]. An unreadable configuration skips the
//!    check ([`Applied::kernel_checked`] false); override:
//!    [`Options::skip_kernel_check`].
//! 3. **Backup** into a private directory (mode 0700) under
//!    [`Options::backup_parent`] (default: the temp dir), the files named in
//!    [`crate::render::shell`]: `backend`, `state`, `ip_forward`,
//!    `rollback.sh` (the shell library, shared with the bash script,
//!    [`crate::render::bash::rollback_functions`]), and the rules: iptables
//!    backends `iptables-save -c` and `ip6tables-save -c` (`v4.rules`,
//!    `v6.rules`); nftables the firewall's own tables, `inet firewall` and
//!    `ip firewall_nat` where they exist, as `nft list table` prints them,
//!    taken from one `nft list ruleset` (`nft.rules`; nothing else of the
//!    host's nftables ruleset is saved). Each file is written whole (a
//!    temporary file, renamed). Before it: the applier lock of this network
//!    namespace (see below).
//! 4. **Watchdog** (always) and **failsafe** (the policy's `failsafe`, or
//!    [`Options::failsafe`]): a detached watchdog is armed *before* the first
//!    rule changes, started while step 3 saves the backup (it finds a rules
//!    file complete or not at all; one not yet there means nothing changed
//!    yet). It restores the backup at once if this process dies before
//!    step 7 passed, and at the failsafe deadline unless confirmed; see
//!    [`FailsafeGuard`]. A failsafe an earlier apply left pending is taken over
//!    once the backup is saved (see below).
//! 5. **Load.** iptables: IPv4 and IPv6 concurrently, each with one
//!    `iptables-restore -w 10` run fed on stdin ([`Texts::ipv4`],
//!    [`Texts::ipv6`]). nftables: one `nft -e -j -f DIR/load.nft` of
//!    [`Texts::nft`], both families and the NAT table in one transaction
//!    ([`Step::LoadNft`]): it applies completely or not at all.
//! 6. **Routing.** `net.ipv4.ip_forward=1` when the policy routes.
//! 7. **Verify.** Reads the rules back (iptables: the save tools; nftables:
//!    the load's echo, the objects the kernel reports the committed
//!    transaction created, as JSON read with `serde_json`, see
//!    `apply/nftables.rs`) and compares them per chain with what the
//!    printer printed ([`Printed::chains`]): the chains, their policies
//!    (nftables: also the base chains' hooks), and per chain the sequence of
//!    rule comments. A missing or extra table (nftables: a declared table the
//!    load did not create anew, or an own table the policy does not declare:
//!    when one existed before the load, one `nft list tables` checks that it
//!    is gone) is a mismatch. Then the watchdog is told the load is complete;
//!    without failsafe it is disarmed and the backup removed.
//!
//! If step 5, 6 or 7 fails, `rollback.sh rollback` restores the saved rules
//! (iptables: both families, removing tables that did not exist before;
//! nftables: the own tables as saved, in one transaction, deleting those that
//! did not exist), and puts `ip_forward` back; the error says which step
//! failed and whether the restore worked ([`Rollback`]). A rule the tool
//! rejects at a line (`iptables-restore`: "line N"; `nft -f`:
//! `DIR/load.nft:N:...: Error:`) is reported with the policy statement it came
//! from, taken from the printer's map of the text ([`Printed::origin_at`]),
//! not from reading comments back ([`ApplyError::statement`]).
//!
//! # Backend detection
//!
//! With [`Options::backend`] `None`, what the host already uses wins
//! (`fw_detect_backend` in `render/lib.sh`):
//!
//! 1. the firewall's own nftables tables exist: nftables;
//! 2. the iptables backend `iptables -V` names, if it holds rules (a rule, or
//!    a built-in chain with policy `DROP`); but if the *other* iptables
//!    backend holds rules, [`ApplyError::BackendMismatch`] (they would stay in
//!    force unseen);
//! 3. nftables tables other than iptables-nft's own (`ip`/`ip6` `filter`,
//!    `nat`, `mangle`, `raw`, `security`), e.g. a distribution's
//!    `/etc/nftables.conf`: nftables;
//! 4. nothing yet: the backend `iptables -V` names, or nftables where only
//!    `nft` is installed; neither installed: [`ApplyError::ToolMissing`].
//!    `iptables -V` naming no backend: [`ApplyError::UnknownBackend`].
//!
//! [`Applied::rules`] counts per family the rules a packet of that family can
//! meet: iptables the rules loaded into each family's tables; nftables the
//! rules of the own tables, a rule of the `inet` table without a family
//! match counting for both (but those of the ICMPv6 defaults' chain, which
//! only IPv6 reaches, for IPv6), the NAT table's rules for IPv4.
//!
//! Every tool it runs is bounded: killed after a timeout (60 s; `ip` 10 s, the
//! rollback program 300 s), reported as a [`ToolTimeout`] ([`ApplyError::timed_out`]).
//!
//! # Interrupted applies
//!
//! SIGTERM, SIGINT (Ctrl-C) or SIGKILL of the applying process at any point
//! leaves the old rules or the complete new ones, never a mixture (IPv4 new and
//! IPv6 old, filter new and nat old, a router without `ip_forward`): until step 7
//! passed, the watchdog reverts within about 0.2 s of the process's death (after
//! the last `iptables-restore` or `nft` it started has exited). No signal handler is
//! needed for that.
//!
//! # One applier at a time
//!
//! Exactly one applier runs at a time per network namespace: [`apply`], the
//! generated bash script and the watchdogs all take `flock(2)` on
//! `/run/firewall/net-<inode>.lock` (`<inode>` of `/proc/self/ns/net`;
//! `$TMPDIR/firewall-run/` when `/run` is not writable), from before the backup
//! until the new rules are verified or rolled back. Another apply waits for it
//! at most [`Options::lock_wait`] (default 10 s), then fails with
//! [`ApplyError::Busy`], naming the holder's pid; nothing is changed.
//!
//! # A failsafe still pending
//!
//! An apply made while an earlier apply's failsafe is still pending (applied,
//! not yet confirmed) takes that failsafe over: the earlier watchdog exits
//! without reverting, and the earlier backup, the rules from before the
//! unconfirmed apply (the last ones someone confirmed), becomes this apply's
//! backup. So if this apply fails, or has a failsafe of its own that is not
//! confirmed, those rules come back; an apply without failsafe is final.
//! [`Applied::took_over`] says it happened; confirming the earlier guard then
//! fails with [`ApplyError::FailsafeSuperseded`]. The bash script does the same.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use firewall_core::Policy;
//! let policy = Policy::parse("extif eth0; open tcp 22, 80;")?;
//! // The same as firewall_core::apply::apply(policy.model(), policy.texts(), Options::default()).
//! let mut applied = policy.apply()?;
//! println!("applied with the {} backend", applied.backend);
//! applied.confirm()?; // keeps the rules of a policy with `failsafe` (no-op without)
//! # Ok(()) }
//! ```

mod detect;
mod diagnose;
mod error;
mod failsafe;
mod interfaces;
mod iptables;
mod kernel;
mod location;
mod lock;
mod nftables;
mod pending;
mod session;
mod system;

pub use crate::plan::Backend;
pub use crate::render::{Printed, Texts};
pub use error::{ApplyError, Cause, Rollback, Step};
pub use failsafe::{FailsafeGuard, Revert};
pub use session::SshSession;
pub use system::{RunOutput, ToolTimeout};

use crate::model::{Failsafe, Iface, Model};
use crate::plan::Family;
use crate::render::bash::rollback_program;
use crate::render::shell;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use system::{Host, System};

/// Options for [`apply`].
///
/// ```
/// use firewall_core::apply::Options;
/// use std::time::Duration;
/// let o = Options { failsafe: Some(Duration::from_secs(30)), ..Options::default() };
/// assert!(!o.allow_session_lockout);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A failsafe window; overrides the policy's `failsafe` statement.
    pub failsafe: Option<Duration>,
    /// Apply even when the policy would lock out the SSH session this process runs in.
    pub allow_session_lockout: bool,
    /// The SSH session to protect; `None` reads `SSH_CONNECTION`/`SSH_CLIENT`.
    pub ssh_session: Option<SshSession>,
    /// Where the backup directory is created; `None`: [`std::env::temp_dir`].
    pub backup_parent: Option<PathBuf>,
    /// The backend; `None` detects it (see [backend
    /// detection](self#backend-detection)). Save, load and rollback all use
    /// this one.
    pub backend: Option<Backend>,
    /// External interfaces that may be missing from the host (they appear
    /// later: `ppp0`, a VPN); any other missing `extif` is refused
    /// ([`ApplyError::MissingInterface`]).
    pub allow_missing: Vec<Iface>,
    /// How long to wait for another applier of this network namespace to
    /// finish (see [one applier at a time](self#one-applier-at-a-time));
    /// `None`: 10 s. Then [`ApplyError::Busy`].
    pub lock_wait: Option<Duration>,
    /// Skip the check of the running kernel's options and modules (step 2):
    /// for a kernel whose configuration file (`/proc/config.gz`,
    /// `/boot/config-<release>`) does not match what it can do. Failures at
    /// load time are still reported ([`Cause::KernelSupport`]).
    pub skip_kernel_check: bool,
}

/// What an apply did.
///
/// With a failsafe it holds the pending [`FailsafeGuard`]: call
/// [`Applied::confirm`] once the new rules are known to work, or they are
/// replaced by the previous ones at the deadline (also if it is dropped).
/// Hence `#[must_use]`: discarding it is a warning,
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn run(p: &firewall_core::Policy) -> Result<(), firewall_core::apply::ApplyError> {
///     p.apply()?; // error: unused `Applied` that must be used
///     Ok(())
/// }
/// ```
///
/// and this is what to write instead:
///
/// ```
/// #![deny(unused_must_use)]
/// fn run(p: &firewall_core::Policy) -> Result<(), firewall_core::apply::ApplyError> {
///     let mut applied = p.apply()?;
///     // ... check that the new rules work (a new ssh login) ...
///     applied.confirm()?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
#[must_use = "with a failsafe the previous rules come back at the deadline unless you call .confirm() (a no-op without failsafe)"]
pub struct Applied {
    /// The backend used for save, load and rollback.
    pub backend: Backend,
    /// `net.ipv4.ip_forward` before.
    pub ip_forward_before: String,
    /// `net.ipv4.ip_forward` after.
    pub ip_forward_after: String,
    /// Rules loaded (IPv4, IPv6): per family the rules a packet of it can
    /// meet (see [the module docs](self#backend-detection)).
    pub rules: (usize, usize),
    /// How long the whole apply took (backup and verification included).
    pub elapsed: Duration,
    /// The pending failsafe, when one was asked for: confirm it or the previous
    /// rules come back at the deadline.
    pub failsafe: Option<FailsafeGuard>,
    /// Whether a failsafe an earlier apply left pending (not yet confirmed) was
    /// taken over: then a rollback or revert of this apply restores the rules
    /// from before that earlier apply (see [pending failsafes](self#a-failsafe-still-pending)).
    pub took_over: bool,
    /// Whether the kernel's options and modules were checked (step 2): false
    /// when its configuration could not be read, or with
    /// [`Options::skip_kernel_check`].
    pub kernel_checked: bool,
}

impl Applied {
    /// Confirms the failsafe, if any (see [`FailsafeGuard::confirm`]).
    pub fn confirm(&mut self) -> Result<(), ApplyError> {
        match self.failsafe.take() {
            Some(g) => g.confirm(),
            None => Ok(()),
        }
    }
}

/// Applies the rules rendered from `model` to this host; see the [module
/// docs](self). `texts` are what is loaded (the backend's text:
/// [`Texts::ipv4`] and [`Texts::ipv6`], or [`Texts::nft`]) with their maps:
/// a rejected line is reported as the statement it came from, and the rules
/// read back are compared with what the printer printed. The model supplies
/// the facts apply needs (router or not, `failsafe`, the SSH check).
/// `Policy::apply*` and `Firewall::apply*` call this.
pub fn apply(model: &Model, texts: &Texts, options: Options) -> Result<Applied, ApplyError> {
    run(&Host, model, texts, &options)
}

/// Takes out everything the firewall owns and nothing else (DSL.md section 6):
/// iptables backends: the hooks, the own chains (`fw-*`) of every table, and
/// the built-in filter chains' policies back to `ACCEPT`; nftables: its own
/// tables. `net.ipv4.ip_forward` is left as it is (Docker and libvirt need it).
/// Under the same applier lock as [`apply`], through the shell library's
/// `fw_remove` (the bash script's `--remove` runs the same function). Refuses
/// with [`ApplyError::FailsafePending`] while a failsafe is pending: its
/// revert would bring the rules back. Returns the backend it removed from
/// (`options.backend`, or detected).
pub fn remove(options: Options) -> Result<Backend, ApplyError> {
    remove_on(&Host, &options)
}

fn remove_on(sys: &dyn System, options: &Options) -> Result<Backend, ApplyError> {
    let euid = sys
        .euid()
        .map_err(|e| io_fail(Step::Backup, e, Rollback::NothingChanged))?;
    if euid != 0 {
        return Err(ApplyError::NotRoot { euid });
    }
    let backend = match options.backend {
        Some(b) => b,
        None => detect::detect(sys)?,
    };
    match backend {
        Backend::Nftables => {
            if sys.find(nftables::NFT).is_none() {
                return Err(missing(nftables::NFT));
            }
        }
        _ => {
            iptables::resolve(sys, backend)?;
        }
    }
    for tool in ["bash", "awk"] {
        if sys.find(tool).is_none() {
            return Err(missing(tool));
        }
    }
    let prefix = sys
        .state_prefix()
        .map_err(|e| io_fail(Step::Backup, e, Rollback::NothingChanged))?;
    let lock = lock::Lock::acquire(&prefix, options.lock_wait.unwrap_or(lock::DEFAULT_WAIT))?;
    let program = rollback_program();
    let p = prefix.to_string_lossy();
    let fail = |e: io::Error| ApplyError::RemoveFailed {
        detail: format!("could not run bash: {e}"),
    };
    // (Not `run_holding`: that sends stdout into the lock file.)
    let pending = sys
        .run("bash", &["-s", "pending", &p], Some(&program))
        .map_err(fail)?;
    let pending = pending.stdout.trim();
    if !pending.is_empty() {
        return Err(ApplyError::FailsafePending {
            backup: PathBuf::from(pending),
        });
    }
    // Holding a copy of the lock: if this process dies, the removal finishes
    // before the next applier starts.
    let out = sys
        .run_holding(
            "bash",
            &["-s", "remove", backend.name()],
            Some(&program),
            lock.file(),
        )
        .map_err(fail)?;
    if !out.success() {
        return Err(ApplyError::RemoveFailed {
            detail: format!(
                "fw_remove exited with {:?}: {}",
                out.code,
                out.stderr.trim()
            ),
        });
    }
    Ok(backend)
}

/// How the chosen backend loads.
enum Loader {
    /// `iptables-restore` of each family, with these tools.
    Iptables(iptables::Tools),
    /// One `nft -e -j -f` of the firewall's own tables.
    Nftables,
}

pub(crate) fn missing(tool: &str) -> ApplyError {
    let help = match tool {
        "setsid" => "install util-linux (it provides setsid)",
        "bash" => "install bash",
        "nft" => "install nftables (Debian/Ubuntu: apt-get install nftables; Fedora/RHEL: dnf install nftables)",
        _ => "install iptables (Debian/Ubuntu: apt-get install iptables; Fedora/RHEL: dnf install iptables-nft)",
    };
    ApplyError::ToolMissing {
        tool: tool.to_string(),
        help: help.to_string(),
    }
}

/// A private backup directory: `firewall.<pid>.<nanos>` with mode 0700.
fn make_backup_dir(parent: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut last = None;
    for attempt in 0..16u32 {
        let dir = parent.join(format!(
            "firewall.{}.{}",
            std::process::id(),
            nanos.wrapping_add(u128::from(attempt))
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("could not create a backup directory")))
}

/// What the backup saved, as `apply` needs it later.
#[derive(Default)]
struct Backup {
    /// `net.ipv4.ip_forward` before.
    ip_forward: String,
    /// iptables: `iptables-save -c` and `ip6tables-save -c`.
    iptables: [String; 2],
    /// nftables: the own tables that existed.
    nft_present: Vec<&'static str>,
}

/// Writes `path` whole: into `path.tmp`, then renamed, so that the watchdog,
/// which runs while the backup is saved, finds it complete or not at all.
fn write_whole(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn io_fail(step: Step, e: io::Error, rollback: Rollback) -> ApplyError {
    ApplyError::Failed {
        step,
        cause: Box::new(Cause::Io(e)),
        rollback,
    }
}

fn run(
    sys: &dyn System,
    model: &Model,
    texts: &Texts,
    options: &Options,
) -> Result<Applied, ApplyError> {
    let started = Instant::now();
    let window = match options.failsafe {
        Some(d) => {
            Some(Failsafe::from_duration(d).ok_or(ApplyError::InvalidFailsafe { requested: d })?)
        }
        None => model.failsafe,
    };

    // 1. The host's interfaces and the lockout check, before anything else:
    //    they need no privileges.
    let host_ifaces = interfaces::check(sys, model, &options.allow_missing)?;
    if !options.allow_session_lockout {
        let session = match &options.ssh_session {
            Some(s) => Some(s.clone()),
            None => SshSession::detect().map_err(|(variable, value)| {
                let why = if variable == "SSH_CLIENT" {
                    "expected `client-ip client-port server-port`"
                } else {
                    "expected `client-ip client-port server-ip server-port`"
                };
                ApplyError::SessionUnreadable {
                    variable,
                    value,
                    why: why.to_string(),
                }
            })?,
        };
        if let Some(session) = session {
            // A zone that names no interface of this host: not a session of it.
            if let Some(dev) = &session.arrival {
                if !host_ifaces.is_empty() && !host_ifaces.contains(dev) {
                    return Err(ApplyError::SessionUnreadable {
                        variable: "SSH_CONNECTION".to_string(),
                        value: session.to_string(),
                        why: format!("its zone names no interface of this host: {dev}"),
                    });
                }
            }
            if let Some(reason) = session::refusal(model, &session, sys, &host_ifaces) {
                return Err(ApplyError::SessionLockout { session, reason });
            }
        }
    }

    // 2. Preconditions.
    let euid = sys
        .euid()
        .map_err(|e| io_fail(Step::Backup, e, Rollback::NothingChanged))?;
    if euid != 0 {
        return Err(ApplyError::NotRoot { euid });
    }
    let backend = match options.backend {
        Some(b) => b,
        None => detect::detect(sys)?,
    };
    let loader = match backend {
        Backend::IptablesNft | Backend::IptablesLegacy => {
            Loader::Iptables(iptables::resolve(sys, backend)?)
        }
        Backend::Nftables => {
            if sys.find(nftables::NFT).is_none() {
                return Err(missing(nftables::NFT));
            }
            Loader::Nftables
        }
    };
    if sys.find("bash").is_none() {
        return Err(missing("bash"));
    }
    if sys.find("setsid").is_none() {
        return Err(missing("setsid"));
    }
    let kernel_checked = !options.skip_kernel_check && kernel::check(sys, model, backend)?;

    // 2b. One applier at a time per network namespace (lock.rs), held until
    //     the new rules are verified or rolled back.
    let prefix = sys
        .state_prefix()
        .map_err(|e| io_fail(Step::Backup, e, Rollback::NothingChanged))?;
    let lock = lock::Lock::acquire(&prefix, options.lock_wait.unwrap_or(lock::DEFAULT_WAIT))?;

    // 3.-4. Backup, and meanwhile the watchdog (pending.rs), armed before the
    //    first rule changes, with or without failsafe: it reverts if this
    //    process dies (even SIGKILL) before the new rules are verified, and
    //    at the failsafe deadline. A failsafe an earlier apply left pending is
    //    taken over once the backup is saved.
    let parent = options
        .backup_parent
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let dir = make_backup_dir(&parent).map_err(|e| {
        location::location_error(&parent, e)
            .unwrap_or_else(|e| io_fail(Step::Backup, e, Rollback::NothingChanged))
    })?;
    let write = |name: &str, text: &str| write_whole(&dir.join(name), text).map_err(Cause::Io);
    // What the watchdog reads first.
    let prelude = || -> Result<(), Cause> {
        write(shell::BACKEND, &format!("{backend}\n"))?;
        write(shell::STATE, &format!("{}\n", prefix.display()))?;
        write(shell::PROGRAM, &rollback_program())
    };
    let backup = || -> Result<Backup, Cause> {
        let mut saved = Backup::default();
        match &loader {
            Loader::Iptables(tools) => {
                // Only what the firewall owns, unless `exclusive;` replaces
                // everything: then everything comes back on a rollback.
                let [v4, v6] =
                    iptables::save_both(sys, tools, model.exclusive).map_err(Cause::Io)?;
                iptables::check_saved(&v4, &tools.save[0])?;
                iptables::check_saved(&v6, &tools.save[1])?;
                let keep = |save: &str| {
                    if model.exclusive {
                        save.to_string()
                    } else {
                        iptables::own(save)
                    }
                };
                write(shell::V4_RULES, &keep(&v4.stdout))?;
                write(shell::V6_RULES, &keep(&v6.stdout))?;
                write(shell::V4_TABLES, &iptables::table_names(&v4.stdout))?;
                write(shell::V6_TABLES, &iptables::table_names(&v6.stdout))?;
                saved.iptables = [v4.stdout, v6.stdout];
            }
            Loader::Nftables => {
                // `exclusive;`: the whole ruleset is flushed in the load's
                // transaction, and saved whole for a rollback.
                let file = if model.exclusive {
                    format!("{}{}", nftables::EXCLUSIVE_PREFIX, texts.nft.text())
                } else {
                    texts.nft.text().to_string()
                };
                write(nftables::LOAD_FILE, &file)?;
                let own = if model.exclusive {
                    nftables::save_ruleset(sys)?
                } else {
                    nftables::save(sys)?
                };
                write(shell::NFT_RULES, &own.text)?;
                saved.nft_present = own.present;
            }
        }
        if model.exclusive {
            write(shell::EXCLUSIVE, "")?;
        }
        saved.ip_forward = sys.read_ip_forward().map_err(Cause::Io)?;
        write(
            shell::IP_FORWARD,
            &format!(
                "{}
",
                saved.ip_forward
            ),
        )?;
        Ok(saved)
    };
    // A failed backup: nothing changed; an unusable location is named.
    let backup_failed = |cause: Cause| {
        let _ = std::fs::remove_dir_all(&dir);
        let cause = match cause {
            Cause::Io(e) => match location::location_error(&parent, e) {
                Ok(located) => return located,
                Err(e) => Cause::Io(e),
            },
            other => other,
        };
        ApplyError::Failed {
            step: Step::Backup,
            cause: Box::new(cause),
            rollback: Rollback::NothingChanged,
        }
    };
    prelude().map_err(backup_failed)?;
    let armed_at = Instant::now();
    let (saved, watchdog) = std::thread::scope(|s| {
        let watchdog = s.spawn(|| pending::start(sys, &dir, window));
        let saved = backup();
        let watchdog = watchdog
            .join()
            .unwrap_or_else(|_| Err(Cause::Io(io::Error::other("the watchdog thread panicked"))));
        (saved, watchdog)
    });
    let saved = match (saved, watchdog) {
        (Ok(saved), Ok(())) => saved,
        (Err(cause), watchdog) => {
            if watchdog.is_ok() {
                // It exits when it sees `armed` gone.
                pending::disarm(&dir, &prefix);
            }
            return Err(backup_failed(cause));
        }
        (Ok(_), Err(cause)) => {
            pending::disarm(&dir, &prefix);
            return Err(ApplyError::Failed {
                step: Step::ArmFailsafe,
                cause: Box::new(cause),
                rollback: Rollback::NothingChanged,
            });
        }
    };
    let took_over = match pending::take_over(sys, &dir, &prefix, lock.file()) {
        Ok(t) => t,
        Err((cause, claimed)) => {
            let rollback = if claimed {
                let r = roll_back(sys, &dir, &lock);
                pending::clear(&prefix, &dir);
                r
            } else {
                pending::disarm(&dir, &prefix);
                Rollback::NothingChanged
            };
            return Err(ApplyError::Failed {
                step: Step::ArmFailsafe,
                cause: Box::new(cause),
                rollback,
            });
        }
    };
    let guard = window.map(|w| FailsafeGuard::new(dir.clone(), w, armed_at, prefix.clone()));
    let ip_forward_before = saved.ip_forward.clone();

    // 5.-7. Load, route, verify; any failure rolls everything back.
    let change = || -> Result<(String, (usize, usize)), (Step, Cause)> {
        let echo = match &loader {
            Loader::Iptables(tools) => {
                load_iptables(sys, tools, texts, &saved.iptables, model.exclusive, &lock)?;
                None
            }
            Loader::Nftables => Some(
                nftables::load(sys, &texts.nft, &dir.join(nftables::LOAD_FILE), lock.file())
                    .map_err(|c| (Step::LoadNft, c))?,
            ),
        };
        let mut after = ip_forward_before.clone();
        if model.is_router() && after != "1" {
            sys.write_ip_forward("1")
                .map_err(|e| (Step::IpForward, Cause::Io(e)))?;
            after = "1".to_string();
        }
        let rules = match &loader {
            Loader::Iptables(tools) => verify_iptables(sys, tools, texts)?,
            Loader::Nftables => {
                nftables::verify(
                    sys,
                    &texts.nft,
                    echo.as_deref().unwrap_or_default(),
                    &saved.nft_present,
                )
                .map_err(|c| (Step::Verify, c))?;
                (
                    texts.nft.rules_of(Family::V4),
                    texts.nft.rules_of(Family::V6),
                )
            }
        };
        pending::loaded(&dir).map_err(|e| (Step::Verify, Cause::Io(e)))?;
        Ok((after, rules))
    };
    let result = change();
    match result {
        Ok((ip_forward_after, rules)) => {
            if guard.is_none() {
                pending::disarm(&dir, &prefix);
            }
            drop(lock);
            Ok(Applied {
                backend,
                ip_forward_before,
                ip_forward_after,
                rules,
                elapsed: started.elapsed(),
                failsafe: guard,
                took_over,
                kernel_checked,
            })
        }
        Err((step, cause)) => {
            let rollback = roll_back(sys, &dir, &lock);
            pending::clear(&prefix, &dir);
            drop(lock);
            Err(ApplyError::Failed {
                step,
                cause: Box::new(cause),
                rollback,
            })
        }
    }
}

/// Runs the shared `rollback.sh rollback DIR` (disarms the watchdog, restores).
/// It holds a copy of `lock` (see [`System::run_holding`]): if this process
/// dies mid-rollback, the rollback goes on, and the next applier waits for it
/// rather than being undone by it.
fn roll_back(sys: &dyn System, dir: &Path, lock: &lock::Lock) -> Rollback {
    let prog = dir.join(shell::PROGRAM);
    let (p, d) = (prog.to_string_lossy(), dir.to_string_lossy());
    match sys.run_holding("bash", &[&p, "rollback", &d], None, lock.file()) {
        Ok(out) if out.success() => {
            // A watchdog, if any, sees `armed` gone and exits by itself.
            let _ = std::fs::remove_dir_all(dir);
            Rollback::Restored
        }
        Ok(out) => Rollback::Failed {
            detail: format!(
                "rollback.sh exited with {:?}: {}",
                out.code,
                out.stderr.trim()
            ),
            backup: dir.to_path_buf(),
        },
        Err(e) => Rollback::Failed {
            detail: format!("could not run bash: {e}"),
            backup: dir.to_path_buf(),
        },
    }
}

/// Both families with `iptables-restore`, concurrently: the two families are
/// independent commits (v4 and v6 tables), and most of a load is the
/// kernel's per-table commit latency, which then overlaps with the other
/// family's parsing. A failure in either rolls back both. (Legacy: `-w`
/// serialises them on the xtables lock; nft: iptables-nft retries on a
/// concurrent commit.)
fn load_iptables(
    sys: &dyn System,
    tools: &iptables::Tools,
    texts: &Texts,
    saved: &[String; 2],
    exclusive: bool,
    lock: &lock::Lock,
) -> Result<(), (Step, Cause)> {
    let load = |i: usize, printed: &Printed, step: Step| -> Result<(), (Step, Cause)> {
        let tool = &tools.restore[i];
        let text = iptables::prepare(printed.text(), &saved[i], exclusive);
        let args: &[&str] = if exclusive {
            &["-w", system::LOCK_WAIT_SECS]
        } else {
            &["-w", system::LOCK_WAIT_SECS, "--noflush"]
        };
        let out = sys
            .run_holding(tool, args, Some(&text), lock.file())
            .map_err(|e| (step, Cause::Io(e)))?;
        if out.success() {
            Ok(())
        } else {
            let line = iptables::error_line(&out.stderr);
            Err((step, classify_at(tool, &out, Some(printed), line)))
        }
    };
    let (r4, r6) = std::thread::scope(|s| {
        let v6 = s.spawn(|| load(1, &texts.ipv6, Step::LoadIpv6));
        let r4 = load(0, &texts.ipv4, Step::LoadIpv4);
        let r6 = v6.join().unwrap_or_else(|_| {
            Err((
                Step::LoadIpv6,
                Cause::Io(io::Error::other("the IPv6 load thread panicked")),
            ))
        });
        (r4, r6)
    });
    r4?;
    r6
}

/// Reads both families back and compares them with what was printed; the
/// rule counts.
fn verify_iptables(
    sys: &dyn System,
    tools: &iptables::Tools,
    texts: &Texts,
) -> Result<(usize, usize), (Step, Cause)> {
    let [v4, v6] =
        iptables::save_both(sys, tools, false).map_err(|e| (Step::Verify, Cause::Io(e)))?;
    iptables::check_saved(&v4, &tools.save[0]).map_err(|c| (Step::Verify, c))?;
    iptables::check_saved(&v6, &tools.save[1]).map_err(|c| (Step::Verify, c))?;
    let check = |printed: &Printed, read: &str, family: &'static str| {
        iptables::verify(printed, read)
            .map_err(|detail| (Step::Verify, Cause::Mismatch { family, detail }))
    };
    Ok((
        check(&texts.ipv4, &v4.stdout, "IPv4")?,
        check(&texts.ipv6, &v6.stdout, "IPv6")?,
    ))
}

/// Turns a failed tool run into a [`Cause`]: a rejected rule at `line` of
/// `text` (mapped to its statement through the printer's map), missing
/// kernel support, or the plain failure.
pub(crate) fn classify_at(
    tool: &str,
    out: &RunOutput,
    text: Option<&Printed>,
    line: Option<usize>,
) -> Cause {
    let stderr = out.stderr.clone();
    let (text, line) = match (text, line) {
        (Some(t), Some(n)) => (t, n),
        _ => {
            if let Some(feature) = diagnose::kernel_feature(&stderr, None) {
                return Cause::KernelSupport {
                    tool: tool.to_string(),
                    feature,
                    statement: None,
                    stderr,
                };
            }
            return Cause::Tool {
                tool: tool.to_string(),
                code: out.code,
                stderr,
            };
        }
    };
    let rule = text
        .text()
        .lines()
        .nth(line.saturating_sub(1))
        .map(|r| r.trim().to_string());
    let statement = text.origin_at(line).map(ToString::to_string);
    if let Some(feature) = diagnose::kernel_feature(&stderr, rule.as_deref()) {
        return Cause::KernelSupport {
            tool: tool.to_string(),
            feature,
            statement,
            stderr,
        };
    }
    Cause::Rule {
        tool: tool.to_string(),
        line,
        statement,
        rule,
        stderr,
    }
}

#[cfg(test)]
mod tests;
