//! The failsafe: the howto's `iptables -P INPUT DROP; sleep 10; iptables -P INPUT ACCEPT`,
//! done so that it also works when the applying process dies.
//!
//! # Design
//!
//! Before the first rule changes, `apply` writes the backup (previous IPv4/IPv6
//! rules, `ip_forward`) into a private directory together with `rollback.sh`
//! (the shell functions of [`crate::render::bash::rollback_functions`], the same
//! ones the generated bash script embeds), creates the file `armed`, and starts
//! `setsid -f bash rollback.sh watchdog DIR SECONDS`. That watchdog runs in its own
//! session, is not a child of the applying process, and ignores SIGHUP: killing
//! the applying process (SIGKILL included), its process group or its terminal
//! does not stop it. At the deadline it renames `armed` to `reverting` and
//! restores the backup. [`FailsafeGuard::confirm`] renames `armed` to
//! `confirmed` instead; `rename(2)` is atomic, so exactly one of them wins. The
//! watchdog polls ten times a second and exits as soon as it is confirmed.
//!
//! Dropping the guard without confirming leaves the watchdog running: the
//! previous rules come back at the deadline, which is the point. So
//! [`super::Applied`] and this guard are `#[must_use]`: keep the value and
//! call [`confirm`](FailsafeGuard::confirm) (or [`super::Applied::confirm`])
//! once you know the new rules work.
//!
//! The backup directory is removed once it is no longer needed: after a
//! confirmation, and after a successful revert (the watchdog logs it to syslog
//! via `logger -t firewall`). Only a revert that failed keeps it, with a `log`
//! and a `revert-failed` marker, for manual recovery (`bash DIR/rollback.sh
//! restore DIR`, see the README); [`FailsafeGuard::wait_for_revert`] tells the
//! two outcomes apart ([`Revert`]).
//!
//! Limits: the watchdog is an ordinary process: a reboot, or killing it by its
//! pid (`watchdog.pid`), cancels the failsafe (after a reboot the boot-time
//! rules apply anyway; a later apply does not take a failsafe over whose
//! watchdog is gone). Killing the applying process *and* its watchdog during
//! a load (e.g. SIGKILL to the whole cgroup) leaves whatever was loaded; the
//! backup directory then stays for a manual `rollback.sh restore`. It needs
//! `bash` and `setsid` (util-linux).

use super::error::ApplyError;
use crate::model::Failsafe;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A pending failsafe: the new rules stay only if [`confirm`](FailsafeGuard::confirm)
/// is called before the deadline.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use firewall_core::Policy;
/// use std::time::Duration;
/// let policy = Policy::parse("extif eth0; open tcp 22;")?;
/// let mut applied = policy.apply_with_failsafe(Duration::from_secs(30))?;
/// // ... check that a new SSH login still works ...
/// applied.confirm()?; // without this, the previous rules are back in 30 s
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "the previous rules come back at the deadline unless you call .confirm() on it"]
pub struct FailsafeGuard {
    dir: PathBuf,
    window: Failsafe,
    deadline: Instant,
    /// The per-namespace state prefix (`/run/firewall/net-<inode>`).
    prefix: PathBuf,
}

impl FailsafeGuard {
    pub(crate) fn new(
        dir: PathBuf,
        window: Failsafe,
        armed_at: Instant,
        prefix: PathBuf,
    ) -> FailsafeGuard {
        FailsafeGuard {
            dir,
            window,
            deadline: armed_at + window.as_duration(),
            prefix,
        }
    }

    /// The window.
    pub fn window(&self) -> Failsafe {
        self.window
    }

    /// When the previous rules come back unless confirmed.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The backup directory the watchdog holds.
    pub fn backup_dir(&self) -> &Path {
        &self.dir
    }

    /// A shell command that confirms from elsewhere (another terminal, a script).
    pub fn confirm_command(&self) -> String {
        let prog = self.dir.join(crate::render::shell::PROGRAM);
        let dir = self.dir.to_string_lossy();
        format!(
            "bash {} confirm {}",
            shell_escape::unix::escape(prog.to_string_lossy()),
            shell_escape::unix::escape(Cow::Borrowed(&*dir))
        )
    }

    /// The watchdog's pid, once it has started (waits up to 2 s for it to write it).
    pub fn watchdog_pid(&self) -> Option<u32> {
        let file = self.dir.join("watchdog.pid");
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(pid) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Some(pid);
            }
            if Instant::now() >= until || !self.dir.exists() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keeps the new rules: disarms the watchdog and waits (at most 3 s) for it to exit.
    ///
    /// Fails with [`ApplyError::FailsafeExpired`] when the deadline has passed and
    /// the previous rules are back, and with [`ApplyError::FailsafeSuperseded`]
    /// when a later apply took this failsafe over.
    pub fn confirm(self) -> Result<(), ApplyError> {
        let pid = self.watchdog_pid();
        match std::fs::rename(self.dir.join("armed"), self.dir.join("confirmed")) {
            Ok(()) => {
                if let Some(pid) = pid {
                    wait_gone(pid, Duration::from_secs(3));
                }
                // The watchdog removes it; this is for a watchdog that was killed.
                let _ = std::fs::remove_dir_all(&self.dir);
                Ok(())
            }
            Err(_) if super::pending::last_was(&self.prefix, "superseded", &self.dir) => {
                Err(ApplyError::FailsafeSuperseded {
                    backup: self.dir.clone(),
                })
            }
            Err(_) => Err(ApplyError::FailsafeExpired {
                backup: self.dir.clone(),
            }),
        }
    }

    /// Waits (at most until the deadline plus `grace`) for the watchdog to
    /// revert: [`Revert::Restored`] once the previous rules are back,
    /// [`Revert::Failed`] when the watchdog tried and restoring them failed
    /// (the backup is kept for a manual restore), [`Revert::NotYet`] when
    /// neither happened in time (still pending, confirmed, or taken over by a
    /// later apply).
    pub fn wait_for_revert(&self, grace: Duration) -> Revert {
        let until = self.deadline + grace;
        loop {
            if self.dir.join("revert-failed").exists()
                || super::pending::last_was(&self.prefix, "revert-failed", &self.dir)
            {
                return Revert::Failed {
                    backup: self.dir.clone(),
                };
            }
            if super::pending::last_was(&self.prefix, "reverted", &self.dir) {
                return Revert::Restored;
            }
            if Instant::now() >= until {
                return Revert::NotYet;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What the watchdog did at the failsafe deadline, as seen by
/// [`FailsafeGuard::wait_for_revert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    /// The previous rules (and `ip_forward`) are back; the backup is removed.
    Restored,
    /// The watchdog tried to restore the previous rules and failed: what is
    /// in force is unknown. The backup is kept for a manual
    /// `bash BACKUP/rollback.sh restore BACKUP` (its `log` says what failed).
    Failed {
        /// The backup directory.
        backup: PathBuf,
    },
    /// Not reverted by the deadline plus the grace: still pending, confirmed,
    /// or taken over by a later apply.
    NotYet,
}

/// Whether process `pid` is still running (a zombie counts as gone).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

fn wait_gone(pid: u32, timeout: Duration) {
    let until = Instant::now() + timeout;
    while alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// Fake save/restore tools (and `nft`, `logger`) first in `PATH`, so that
    /// the real watchdog runs on plain files and never touches this host's
    /// rules; `restore_ok` decides whether restoring works.
    fn fake_tools(bin: &Path, restore_ok: bool) -> String {
        std::fs::create_dir_all(bin).unwrap();
        let restore = if restore_ok {
            "#!/bin/sh\ncat >/dev/null\nexit 0\n"
        } else {
            "#!/bin/sh\ncat >/dev/null\necho 'iptables-restore: line 1 failed' >&2\nexit 1\n"
        };
        // What a save shows: the backup's tables, other rules.
        let save = "#!/bin/sh\nprintf '*filter\\n-A INPUT -j DROP\\nCOMMIT\\n'\n";
        let mut tools = vec![
            ("nft".to_string(), "#!/bin/sh\nexit 1\n"),
            ("logger".to_string(), "#!/bin/sh\nexit 0\n"),
        ];
        for base in ["iptables", "ip6tables"] {
            for backend in ["-legacy", ""] {
                tools.push((format!("{base}{backend}-save"), save));
                tools.push((format!("{base}{backend}-restore"), restore));
            }
        }
        for (name, text) in tools {
            let path = bin.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// A backup directory as `apply()` writes it, armed; no `ip_forward` file
    /// (so the watchdog leaves the host's `ip_forward` alone).
    fn armed_backup(root: &Path, prefix: &Path) -> PathBuf {
        let dir = root.join("backup");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("backend"), "iptables-legacy\n").unwrap();
        std::fs::write(dir.join("state"), format!("{}\n", prefix.display())).unwrap();
        std::fs::write(
            dir.join("v4.rules"),
            "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("v6.rules"),
            "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("rollback.sh"),
            crate::render::bash::rollback_program(),
        )
        .unwrap();
        std::fs::write(dir.join("armed"), "").unwrap();
        dir
    }

    /// The real watchdog (1 s failsafe) reverts; `wait_for_revert` reports a
    /// successful restore as `Restored` and a failed one as `Failed`, keeping
    /// the backup. (It used to say `true` for both.)
    #[test]
    fn wait_for_revert_tells_a_failed_revert_from_a_restore() {
        for restore_ok in [true, false] {
            let root =
                std::env::temp_dir().join(format!("fw-revert-{}-{restore_ok}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            let prefix = root.join("net-1");
            let path = fake_tools(&root.join("bin"), restore_ok);
            let dir = armed_backup(&root, &prefix);
            let window = Failsafe::from_secs(1).unwrap();
            let guard = FailsafeGuard::new(dir.clone(), window, Instant::now(), prefix.clone());
            let mut watchdog = Command::new("timeout")
                .args(["60", "bash"])
                .arg(dir.join("rollback.sh"))
                .arg("watchdog")
                .arg(&dir)
                .args(["1", "0"])
                .env("PATH", &path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("running bash");
            let seen = guard.wait_for_revert(Duration::from_secs(20));
            let _ = watchdog.wait();
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            if restore_ok {
                assert_eq!(seen, Revert::Restored);
                assert!(
                    !dir.exists(),
                    "the backup of a successful revert is removed"
                );
            } else {
                assert_eq!(
                    seen,
                    Revert::Failed {
                        backup: dir.clone()
                    },
                    "{log}"
                );
                assert!(dir.join("v4.rules").exists(), "the backup is kept");
                assert!(log.contains("FAILED"), "{log}");
            }
            // A guard still pending (nothing reverted): NotYet at deadline + grace.
            if !restore_ok {
                let other = root.join("other");
                std::fs::create_dir_all(&other).unwrap();
                let g = FailsafeGuard::new(other, window, Instant::now(), prefix.clone());
                assert_eq!(
                    g.wait_for_revert(Duration::from_millis(100)),
                    Revert::NotYet
                );
            }
            let _ = std::fs::remove_dir_all(&root);
        }
    }
}
