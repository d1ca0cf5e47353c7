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
//! 2. **Preconditions.** Root ([`ApplyError::NotRoot`]); the backend from
//!    `iptables -V` (`nf_tables` or `legacy`), and the save/restore tools of that
//!    backend (`iptables-nft-restore`, ...; [`ApplyError::ToolMissing`]). Save,
//!    load and rollback all use that one backend. A detected backend is refused
//!    when the other one holds rules ([`ApplyError::BackendMismatch`]; choose
//!    with [`Options::backend`]).
//!    Then the kernel: the options and modules the policy needs with that
//!    backend ([`crate::plan::requirements`]) against the running kernel's
//!    configuration (`/proc/config.gz`, else `/boot/config-<release>`; `=y`,
//!    or `=m` with the module loaded or loadable): missing ones are
//!    [`ApplyError::KernelMissing`]. An unreadable configuration skips the
//!    check ([`Applied::kernel_checked`] false); override:
//!    [`Options::skip_kernel_check`].
//! 3. **Backup.** `iptables-save -c`, `ip6tables-save -c` and `ip_forward` into a
//!    private directory (mode 0700) under [`Options::backup_parent`] (default: the
//!    temp dir), with `rollback.sh`: the rollback functions shared with the bash
//!    script ([`crate::render::bash::rollback_functions`]).
//!    Before it: the applier lock of this network namespace (see below).
//! 4. **Watchdog** (always) and **failsafe** (the policy's `failsafe`, or
//!    [`Options::failsafe`]): a detached watchdog is armed *before* the first
//!    rule changes. It restores the backup at once if this process dies before
//!    step 7 passed, and at the failsafe deadline unless confirmed; see
//!    [`FailsafeGuard`]. A failsafe an earlier apply left pending is taken over
//!    (see below).
//! 5. **Load.** IPv4 and IPv6 concurrently, each with one `iptables-restore -w 10` run fed on stdin.

//! 6. **Routing.** `net.ipv4.ip_forward=1` when the policy routes.
//! 7. **Verify.** Reads the rules back and compares, per table and chain, the
//!    chains, their policies, and the rules (by count and by comment, which names
//!    the statement each rule came from). Then the watchdog is told the load is
//!    complete; without failsafe it is disarmed and the backup removed.
//!
//! If step 5, 6 or 7 fails, `rollback.sh rollback` restores both families, removes
//! tables that did not exist before, and puts `ip_forward` back; the error says
//! which step failed and whether the restore worked ([`Rollback`]). A rule
//! `iptables-restore` rejects at "line N" is reported with the policy statement
//! in that rule's comment ([`ApplyError::statement`]).
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
//! the last `iptables-restore` it started has exited). No signal handler is
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
//! let mut applied = policy.apply()?;
//! println!("applied with the {} backend", applied.backend);
//! applied.confirm()?; // keeps the rules of a policy with `failsafe` (no-op without)
//! # Ok(()) }
//! ```

mod diagnose;
mod error;
mod failsafe;
mod interfaces;
mod kernel;
mod location;
mod lock;
mod other_backend;
mod pending;
mod session;
mod system;

pub use crate::plan::Backend;
pub use error::{ApplyError, Cause, Rollback, Step};
pub use failsafe::{FailsafeGuard, Revert};
pub use session::SshSession;
pub use system::{RunOutput, ToolTimeout};

use crate::model::{Failsafe, Iface, Model};
use crate::render::bash::rollback_program;
use crate::render::iptables::statement_at_line;
use crate::Policy;
use std::collections::BTreeMap;
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
    /// The iptables backend; `None` detects it from `iptables` (what the host's
    /// `iptables` command is). Save, load and rollback all use this one.
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
    /// Rules loaded (IPv4, IPv6).
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

/// Applies `policy` to this host; see the [module docs](self).
pub fn apply(policy: &Policy, options: Options) -> Result<Applied, ApplyError> {
    apply_rulesets(
        policy.model(),
        policy.iptables_restore(),
        policy.ip6tables_restore(),
        options,
    )
}

/// Applies rulesets rendered from `model` (or edited versions of them): the
/// model supplies the facts apply needs (router or not, `failsafe`, the SSH
/// check), `ipv4`/`ipv6` are what is loaded.
pub fn apply_rulesets(
    model: &Model,
    ipv4: &str,
    ipv6: &str,
    options: Options,
) -> Result<Applied, ApplyError> {
    run(&Host, model, ipv4, ipv6, &options)
}

/// The resolved save/restore tools of one backend.
struct Tools {
    backend: Backend,
    save: [String; 2],
    restore: [String; 2],
}

fn which_backend(sys: &dyn System) -> Result<Backend, ApplyError> {
    if sys.find("iptables").is_none() {
        return Err(missing("iptables"));
    }
    // Where `iptables` finally points (alternatives, symlinks) names the
    // backend on every distribution that ships xtables-*-multi; that saves a
    // process. Anything else: ask `iptables -V`.
    if let Some(target) = sys
        .find("iptables")
        .and_then(|p| std::fs::canonicalize(p).ok())
    {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "xtables-nft-multi" {
            return Ok(Backend::IptablesNft);
        }
        if name == "xtables-legacy-multi" {
            return Ok(Backend::IptablesLegacy);
        }
    }
    let out = sys
        .run("iptables", &["-V"], None)
        .map_err(|_| missing("iptables"))?;
    let version = format!("{}{}", out.stdout, out.stderr);
    if version.contains("nf_tables") {
        Ok(Backend::IptablesNft)
    } else if version.contains("legacy") {
        Ok(Backend::IptablesLegacy)
    } else {
        Err(ApplyError::UnknownBackend { version })
    }
}

fn missing(tool: &str) -> ApplyError {
    let help = match tool {
        "setsid" => "install util-linux (it provides setsid)",
        "bash" => "install bash",
        _ => "install iptables (Debian/Ubuntu: apt-get install iptables; Fedora/RHEL: dnf install iptables-nft)",
    };
    ApplyError::ToolMissing {
        tool: tool.to_string(),
        help: help.to_string(),
    }
}

/// The same choice as the shell's `fw_tool`: the backend-specific name first.
fn resolve(sys: &dyn System, backend: Backend) -> Result<Tools, ApplyError> {
    let pick = |base: &str, verb: &str| -> Result<String, ApplyError> {
        let variant = backend.iptables_variant().unwrap_or("nft");
        let specific = format!("{base}-{variant}-{verb}");
        if sys.find(&specific).is_some() {
            return Ok(specific);
        }
        let plain = format!("{base}-{verb}");
        if sys.find(&plain).is_some() {
            return Ok(plain);
        }
        Err(missing(&specific))
    };
    Ok(Tools {
        backend,
        save: [pick("iptables", "save")?, pick("ip6tables", "save")?],
        restore: [pick("iptables", "restore")?, pick("ip6tables", "restore")?],
    })
}

/// Runs both families' save tools concurrently (backup and verify are on the
/// critical path of every apply).
fn save_both(sys: &dyn System, tools: &Tools, counters: bool) -> io::Result<[RunOutput; 2]> {
    let args: &[&str] = if counters { &["-c"] } else { &[] };
    std::thread::scope(|s| {
        let v6 = s.spawn(|| sys.run(&tools.save[1], args, None));
        let v4 = sys.run(&tools.save[0], args, None);
        let v6 = v6
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("ip6tables-save thread panicked")));
        Ok([v4?, v6?])
    })
}

fn check_saved(out: &RunOutput, tool: &str) -> Result<(), Cause> {
    if out.success() {
        Ok(())
    } else {
        Err(classify(tool, out, None))
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
    ipv4: &str,
    ipv6: &str,
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
        None => {
            let b = which_backend(sys)?;
            other_backend::check(sys, b)?;
            b
        }
    };
    let tools = resolve(sys, backend)?;
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

    // 3. Backup.
    let parent = options
        .backup_parent
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let dir = make_backup_dir(&parent).map_err(|e| {
        location::location_error(&parent, e)
            .unwrap_or_else(|e| io_fail(Step::Backup, e, Rollback::NothingChanged))
    })?;
    let backup = || -> Result<(String, [String; 2]), Cause> {
        std::fs::write(dir.join("backend"), format!("{}\n", tools.backend)).map_err(Cause::Io)?;
        std::fs::write(dir.join("state"), format!("{}\n", prefix.display())).map_err(Cause::Io)?;
        std::fs::write(dir.join("rollback.sh"), rollback_program()).map_err(Cause::Io)?;
        let [v4, v6] = save_both(sys, &tools, true).map_err(Cause::Io)?;
        check_saved(&v4, &tools.save[0])?;
        check_saved(&v6, &tools.save[1])?;
        std::fs::write(dir.join("v4.rules"), &v4.stdout).map_err(Cause::Io)?;
        std::fs::write(dir.join("v6.rules"), &v6.stdout).map_err(Cause::Io)?;
        let fwd = sys.read_ip_forward().map_err(Cause::Io)?;
        std::fs::write(dir.join("ip_forward"), format!("{fwd}\n")).map_err(Cause::Io)?;
        Ok((fwd, [v4.stdout, v6.stdout]))
    };
    let (ip_forward_before, saved) = match backup() {
        Ok(f) => f,
        Err(cause) => {
            let _ = std::fs::remove_dir_all(&dir);
            let cause = match cause {
                Cause::Io(e) => match location::location_error(&parent, e) {
                    Ok(located) => return Err(located),
                    Err(e) => Cause::Io(e),
                },
                other => other,
            };
            return Err(ApplyError::Failed {
                step: Step::Backup,
                cause: Box::new(cause),
                rollback: Rollback::NothingChanged,
            });
        }
    };

    // 4. The watchdog (pending.rs), armed before the first rule changes, with
    //    or without failsafe: it reverts if this process dies (even SIGKILL)
    //    before the new rules are verified, and at the failsafe deadline. A
    //    failsafe an earlier apply left pending is taken over.
    let armed_at = Instant::now();
    let took_over = match pending::arm(sys, &dir, &prefix, window, lock.file()) {
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

    // 5.-7. Load, route, verify; any failure rolls everything back.
    let change = || -> Result<(String, (usize, usize)), (Step, Cause)> {
        // The two families are independent commits (v4 and v6 tables), so they
        // load concurrently: most of a load is the kernel's per-table commit
        // latency, which then overlaps with the other family's parsing. A
        // failure in either rolls back both. (Legacy: `-w` serialises them on
        // the xtables lock; nft: iptables-nft retries on a concurrent commit.)
        let load = |i: usize, text: &str, step: Step| -> Result<(), (Step, Cause)> {
            let tool = &tools.restore[i];
            let out = sys
                .run_holding(
                    tool,
                    &["-w", system::LOCK_WAIT_SECS],
                    Some(text),
                    lock.file(),
                )
                .map_err(|e| (step, Cause::Io(e)))?;
            if out.success() {
                Ok(())
            } else {
                Err((step, classify(tool, &out, Some(text))))
            }
        };
        let (load4, load6) = (
            skip_unchanged_empty_tables(ipv4, &saved[0]),
            skip_unchanged_empty_tables(ipv6, &saved[1]),
        );
        let (r4, r6) = std::thread::scope(|s| {
            let v6 = s.spawn(|| load(1, &load6, Step::LoadIpv6));
            let r4 = load(0, &load4, Step::LoadIpv4);
            let r6 = v6.join().unwrap_or_else(|_| {
                Err((
                    Step::LoadIpv6,
                    Cause::Io(io::Error::other("the IPv6 load thread panicked")),
                ))
            });
            (r4, r6)
        });
        r4?;
        r6?;
        let mut after = ip_forward_before.clone();
        if model.is_router() && after != "1" {
            sys.write_ip_forward("1")
                .map_err(|e| (Step::IpForward, Cause::Io(e)))?;
            after = "1".to_string();
        }
        let [v4, v6] = save_both(sys, &tools, false).map_err(|e| (Step::Verify, Cause::Io(e)))?;
        check_saved(&v4, &tools.save[0]).map_err(|c| (Step::Verify, c))?;
        check_saved(&v6, &tools.save[1]).map_err(|c| (Step::Verify, c))?;
        let n4 = verify(ipv4, &v4.stdout).map_err(|detail| {
            (
                Step::Verify,
                Cause::Mismatch {
                    family: "IPv4",
                    detail,
                },
            )
        })?;
        let n6 = verify(ipv6, &v6.stdout).map_err(|detail| {
            (
                Step::Verify,
                Cause::Mismatch {
                    family: "IPv6",
                    detail,
                },
            )
        })?;
        pending::loaded(&dir).map_err(|e| (Step::Verify, Cause::Io(e)))?;
        Ok((after, (n4, n6)))
    };
    let result = change();
    match result {
        Ok((ip_forward_after, rules)) => {
            if guard.is_none() {
                pending::disarm(&dir, &prefix);
            }
            drop(lock);
            Ok(Applied {
                backend: tools.backend,
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
    let prog = dir.join("rollback.sh");
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

/// Turns a failed tool run into a [`Cause`]: a rejected rule (mapped to its
/// statement), missing kernel support, or the plain failure.
fn classify(tool: &str, out: &RunOutput, text: Option<&str>) -> Cause {
    let stderr = out.stderr.clone();
    let line = error_line(&stderr);
    let rule = match (text, line) {
        (Some(t), Some(n)) => t.lines().nth(n.saturating_sub(1)).map(str::to_string),
        _ => None,
    };
    if let Some(feature) = diagnose::kernel_feature(&stderr, rule.as_deref()) {
        return Cause::KernelSupport {
            tool: tool.to_string(),
            feature,
            statement: match (text, line) {
                (Some(t), Some(n)) => statement_at_line(t, n),
                _ => None,
            },
            stderr,
        };
    }
    match (text, line) {
        (Some(t), Some(line)) => Cause::Rule {
            tool: tool.to_string(),
            line,
            statement: statement_at_line(t, line),
            rule,
            stderr,
        },
        _ => Cause::Tool {
            tool: tool.to_string(),
            code: out.code,
            stderr,
        },
    }
}

/// The line number in "Error occurred at line: 8" or "line 10 failed".
fn error_line(stderr: &str) -> Option<usize> {
    let mut rest = stderr;
    while let Some(i) = rest.find("line") {
        rest = &rest[i + 4..];
        let digits: String = rest
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
    }
    None
}

/// `text` with every table that asks for nothing (no rules, no user chains,
/// all policies ACCEPT) and already exists exactly so in `saved` turned into
/// comment lines. Loading such a table changes nothing but costs a kernel
/// commit (~10 ms: its base chains' hooks are re-registered), e.g. the empty
/// IPv6 `nat` table on every re-apply. Line numbers are kept, so "line N"
/// errors still map to the policy.
fn skip_unchanged_empty_tables<'a>(text: &'a str, saved: &str) -> std::borrow::Cow<'a, str> {
    let want = parse_tables(text);
    let have = parse_tables(saved);
    let empty_accept = |chains: &BTreeMap<String, (String, Vec<String>)>| {
        chains
            .values()
            .all(|(policy, rules)| policy == "ACCEPT" && rules.is_empty())
    };
    let skip: Vec<&String> = want
        .iter()
        .filter(|(table, chains)| {
            empty_accept(chains)
                && have
                    .get(*table)
                    .is_some_and(|h| empty_accept(h) && h.keys().eq(chains.keys()))
        })
        .map(|(t, _)| t)
        .collect();
    if skip.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            skipping = skip.iter().any(|s| s.as_str() == t.trim());
        }
        if skipping {
            out.push_str("# unchanged, not reloaded: ");
            out.push_str(line);
            if line.trim() == "COMMIT" {
                skipping = false;
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    std::borrow::Cow::Owned(out)
}

/// One table as read from `iptables-save` format: chain -> (policy, rule comments).
type Tables = BTreeMap<String, BTreeMap<String, (String, Vec<String>)>>;

fn parse_tables(text: &str) -> Tables {
    let mut tables = Tables::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            current = Some(t.trim().to_string());
            tables.entry(t.trim().to_string()).or_default();
            continue;
        }
        let Some(table) = current.as_ref().and_then(|t| tables.get_mut(t)) else {
            continue;
        };
        if let Some(chain) = line.strip_prefix(':') {
            let mut w = chain.split_whitespace();
            if let (Some(name), Some(policy)) = (w.next(), w.next()) {
                table.entry(name.to_string()).or_default().0 = policy.to_string();
            }
        } else if let Some(pos) = line.find("-A ") {
            // Saved with counters, a rule starts with "[p:b] -A".
            let mut w = line[pos + 3..].split_whitespace();
            if let Some(chain) = w.next() {
                table
                    .entry(chain.to_string())
                    .or_default()
                    .1
                    .push(comment_of(line).unwrap_or_default());
            }
        } else if line.trim() == "COMMIT" {
            current = None;
        }
    }
    tables
}

fn comment_of(rule: &str) -> Option<String> {
    let (_, rest) = rule.split_once("--comment ")?;
    if let Some(q) = rest.strip_prefix('"') {
        q.split_once('"').map(|(c, _)| c.to_string())
    } else {
        rest.split_whitespace().next().map(str::to_string)
    }
}

/// Compares what was loaded with what the kernel reports; the rule count on success.
fn verify(expected: &str, actual: &str) -> Result<usize, String> {
    let want = parse_tables(expected);
    let have = parse_tables(actual);
    let mut rules = 0;
    for (table, chains) in &want {
        let Some(got) = have.get(table) else {
            return Err(format!("table {table} is missing"));
        };
        for (chain, (policy, comments)) in chains {
            let Some((gpolicy, gcomments)) = got.get(chain) else {
                return Err(format!("chain {chain} of table {table} is missing"));
            };
            if policy != gpolicy {
                return Err(format!(
                    "chain {chain} of table {table} has policy {gpolicy}, expected {policy}"
                ));
            }
            if comments != gcomments {
                return Err(format!(
                    "chain {chain} of table {table} has {} rules, expected {} ({:?} vs {:?})",
                    gcomments.len(),
                    comments.len(),
                    gcomments.iter().take(3).collect::<Vec<_>>(),
                    comments.iter().take(3).collect::<Vec<_>>()
                ));
            }
            rules += comments.len();
        }
        if let Some(extra) = got.keys().find(|c| !chains.contains_key(*c)) {
            return Err(format!("table {table} has an unexpected chain {extra}"));
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests;
