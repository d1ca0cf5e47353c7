//! The applier lock: exactly one applier at a time per network namespace.
//!
//! What it protects is one network namespace's netfilter state (and
//! `ip_forward`), so it is keyed by the namespace: `flock(2)` on
//! `/run/firewall/net-<inode>.lock`, `<inode>` from `readlink
//! /proc/self/ns/net` (`net:[4026531840]`). `/run/firewall` is created with
//! mode 0700; when `/run` is not writable, `$TMPDIR/firewall-run` (default
//! `/tmp`) is used instead. The same file is locked by [`super::apply`], by the
//! generated bash script (`flock -w`) and by the watchdog before it reverts, so
//! none of them can interleave with another. The holder writes its pid into
//! the file; a waiter reports it ([`ApplyError::Busy`]).
//!
//! `apply()` holds the lock from before the backup until the new rules are
//! verified (or rolled back). The `iptables-restore` and `nft -f` processes
//! it starts hold it too (they inherit the locked file, `iptables-restore` as
//! its stdout, `nft -e -j -f FILE` as its stdin): if the applying
//! process dies mid-load, the watchdog cannot revert before the last of them
//! has finished, so a late commit cannot land on top of the restored rules.

use super::error::ApplyError;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`Lock::acquire`] waits by default ([`super::Options::lock_wait`]).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The state prefix of this process's network namespace:
/// `/run/firewall/net-<inode>` (see the [module docs](self)). The lock is
/// `<prefix>.lock`, the pending watchdog `<prefix>.pending`.
pub(crate) fn state_prefix() -> io::Result<PathBuf> {
    let link = std::fs::read_link("/proc/self/ns/net")?;
    let inode: String = link
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if inode.is_empty() {
        return Err(io::Error::other(format!(
            "cannot read the network namespace from /proc/self/ns/net ({})",
            link.display()
        )));
    }
    let name = format!("net-{inode}");
    let run = Path::new("/run/firewall");
    if private_dir(run).is_ok() {
        return Ok(run.join(name));
    }
    let tmp = std::env::temp_dir().join("firewall-run");
    private_dir(&tmp)?;
    Ok(tmp.join(name))
}

/// Creates `dir` with mode 0700 (if missing) and checks that it can be written.
fn private_dir(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().readonly() {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    // A read-only file system says so only on a write.
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    File::create(&probe)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The held lock; released when dropped (and by the kernel when the process dies).
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
}

impl Lock {
    /// Takes `<prefix>.lock`, waiting at most `wait`.
    pub(crate) fn acquire(prefix: &Path, wait: Duration) -> Result<Lock, ApplyError> {
        let path = lock_path(prefix);
        let busy = |e: io::Error| ApplyError::Busy {
            lock: path.clone(),
            holder: None,
            waited: Duration::ZERO,
            error: Some(e),
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(busy)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(busy(e)),
            }
            if started.elapsed() >= wait {
                return Err(ApplyError::Busy {
                    holder: holder(&path),
                    lock: path,
                    waited: started.elapsed(),
                    error: None,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Who holds it, for a waiter's message; best effort.
        let _ = file.set_len(0);
        let _ = (&file).write_all(format!("{}\n", std::process::id()).as_bytes());
        Ok(Lock { file })
    }

    /// The locked file: a child given a copy of it holds the lock until it exits.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

/// `<prefix>.lock`.
pub(crate) fn lock_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".lock")
}

/// `prefix` with `suffix` appended to its file name.
pub(crate) fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The pid written into the lock file, if that process still runs.
fn holder(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    super::failsafe::alive(pid).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_locker_waits_then_gets_busy_naming_the_holder() {
        let dir = std::env::temp_dir().join(format!("fw-lock-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let prefix = dir.join("net-1");
        let first = Lock::acquire(&prefix, Duration::ZERO).unwrap();
        let started = Instant::now();
        let e = Lock::acquire(&prefix, Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        match &e {
            ApplyError::Busy { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("another apply"), "{e}");
        drop(first);
        let again = Lock::acquire(&prefix, Duration::from_millis(200));
        assert!(again.is_ok());
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
