//! The watchdog of every apply, and what happens to a failsafe still pending
//! when the next apply comes (issue 6, items 11 and 12).
//!
//! # Always armed
//!
//! Every apply, with or without `failsafe`, starts the detached watchdog
//! (`setsid -f bash rollback.sh watchdog DIR SECONDS PID`, see
//! [`crate::render::bash::rollback_functions`]) before the first rule
//! changes (while the backup is being saved: it is started concurrently),
//! and marks the load phase with the file `DIR/loading`. If the
//! applying process dies while `loading` exists (SIGKILL, SIGTERM, Ctrl-C, a
//! crash), the watchdog notices within 0.1 s, takes the applier lock (see
//! [`super::lock`]) and restores the previous rules: the host ends with the old
//! rules or, once `loading` is removed after the read-back verification, the
//! complete new ones, never a mixture of families, tables or `ip_forward`.
//! Without `failsafe` the watchdog is disarmed right after the verification
//! and the backup directory is removed.
//!
//! # A failsafe pending from an earlier apply: taken over
//!
//! `<prefix>.pending` names the backup directory of the last watchdog armed in
//! this network namespace; it is live while that directory's `armed` exists.
//! A new apply (holding the lock, after saving the current rules) takes a live
//! one over: it copies that backup (the rules from before the unconfirmed
//! apply: the last ones someone confirmed) into its own backup as `prev/`, and
//! renames the old `armed` to `superseded`, so the old watchdog exits without
//! reverting and removes its directory. From then on any rollback or revert of
//! the new apply restores `prev/`: if the new apply fails, or has a failsafe
//! that is not confirmed, the host goes back to the last confirmed rules; a new
//! apply without failsafe is final. [`super::Applied::took_over`] says it
//! happened; the old [`super::FailsafeGuard::confirm`] then fails with
//! [`super::ApplyError::FailsafeSuperseded`].

use super::lock::with_suffix;
use super::system::System;
use super::Cause;
use crate::model::Failsafe;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// `<prefix>.pending`.
fn pending_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".pending")
}

/// `<prefix>.last`: what the last watchdog or take-over did (`reverted DIR`,
/// `revert-failed DIR`, `superseded DIR`).
pub(crate) fn last_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".last")
}

/// Whether `<prefix>.last` says `what DIR`.
pub(crate) fn last_was(prefix: &Path, what: &str, dir: &Path) -> bool {
    std::fs::read_to_string(last_path(prefix))
        .is_ok_and(|s| s.trim_end() == format!("{what} {}", dir.display()))
}

/// Records `dir` as the pending watchdog (atomically: write, then rename).
fn set(prefix: &Path, dir: &Path) -> io::Result<()> {
    let tmp = with_suffix(prefix, ".pending.tmp");
    std::fs::write(&tmp, format!("{}\n", dir.display()))?;
    std::fs::rename(&tmp, pending_path(prefix))
}

/// Forgets `dir` as the pending watchdog, if it still is.
pub(crate) fn clear(prefix: &Path, dir: &Path) {
    let path = pending_path(prefix);
    if std::fs::read_to_string(&path).is_ok_and(|s| s.trim_end() == dir.to_string_lossy()) {
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether another apply's watchdog is pending (the common case, none, costs
/// no process).
fn other_pending(prefix: &Path, dir: &Path) -> bool {
    std::fs::read_to_string(pending_path(prefix)).is_ok_and(|s| {
        let old = Path::new(s.trim_end());
        !s.trim().is_empty() && old != dir && old.join("armed").exists()
    })
}

/// Arms the watchdog of `dir` for this process: `armed`, `loading`, and
/// `setsid -f bash rollback.sh watchdog DIR SECONDS PID`. `dir` must hold
/// `backend`, `state` and `rollback.sh` already; the rules may still be being
/// saved meanwhile (they are written whole, by rename, so the watchdog finds
/// a rules file complete or not at all: missing, nothing changed yet, and
/// nothing of it is restored).
pub(crate) fn start(sys: &dyn System, dir: &Path, window: Option<Failsafe>) -> Result<(), Cause> {
    std::fs::write(dir.join("armed"), b"").map_err(Cause::Io)?;
    std::fs::write(dir.join("loading"), format!("{}\n", std::process::id())).map_err(Cause::Io)?;
    let prog = dir.join(crate::render::shell::PROGRAM);
    let secs = window.map_or(0, |w| w.as_secs()).to_string();
    let pid = std::process::id().to_string();
    let (p, d) = (prog.to_string_lossy(), dir.to_string_lossy());
    let code = sys
        .run_detached("setsid", &["-f", "bash", &p, "watchdog", &d, &secs, &pid])
        .map_err(Cause::Io)?;
    if code != Some(0) {
        return Err(Cause::Tool {
            tool: "setsid".to_string(),
            code,
            stderr: String::new(),
        });
    }
    Ok(())
}

/// With the watchdog of `dir` started and the backup saved: takes a pending
/// failsafe over, and records `dir` as the pending one. `Ok(true)`: one was
/// taken over. `Err((cause, claimed))`: `claimed` says whether a pending
/// failsafe had already been taken over (then the caller must roll back,
/// which restores the taken-over backup).
///
/// The take-over (`rollback.sh takeover DIR`) runs holding a copy of `lock`
/// (see [`System::run_holding`]): if this process dies meanwhile (SIGKILL),
/// the orphaned take-over finishes before this apply's watchdog can take the
/// lock and revert, so that revert restores the taken-over backup (the last
/// confirmed rules) rather than leaving the earlier apply's rules with its
/// failsafe gone. Whether it took over is read from the result, `DIR/prev`,
/// not from the child's output.
pub(crate) fn take_over(
    sys: &dyn System,
    dir: &Path,
    prefix: &Path,
    lock: &File,
) -> Result<bool, (Cause, bool)> {
    let mut took_over = false;
    if other_pending(prefix, dir) {
        let prog = dir.join(crate::render::shell::PROGRAM);
        let (p, d) = (prog.to_string_lossy(), dir.to_string_lossy());
        // `prev` appears complete or not at all (rollback.sh renames it into place).
        let claimed = || dir.join("prev").is_dir();
        let out = sys
            .run_holding("bash", &[&p, "takeover", &d], None, lock)
            .map_err(|e| (Cause::Io(e), claimed()))?;
        if !out.success() {
            return Err((
                Cause::Tool {
                    tool: "rollback.sh takeover".to_string(),
                    code: out.code,
                    stderr: out.stderr,
                },
                claimed(),
            ));
        }
        took_over = claimed();
    }
    set(prefix, dir).map_err(|e| (Cause::Io(e), took_over))?;
    Ok(took_over)
}

/// The new rules are loaded and verified: the watchdog no longer reverts
/// when this process dies (only at a failsafe deadline).
pub(crate) fn loaded(dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(dir.join("loading")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Without failsafe, after success (or when nothing changed): the watchdog
/// exits, the backup is no longer needed.
pub(crate) fn disarm(dir: &Path, prefix: &Path) {
    let _ = std::fs::rename(dir.join("armed"), dir.join("confirmed"));
    clear(prefix, dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ApplyError, FailsafeGuard};
    use std::process::Command;
    use std::time::Instant;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn takeover(dir: &Path) -> (Option<i32>, String) {
        let out = Command::new("bash")
            .arg(dir.join("rollback.sh"))
            .arg("takeover")
            .arg(dir)
            .output()
            .expect("running bash");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// A backup directory as `apply()` writes it (without the rules of the kernel).
    fn backup(root: &Path, name: &str, prefix: &Path, backend: &str, v4: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir.join("backend"), &format!("{backend}\n"));
        write(&dir.join("state"), &format!("{}\n", prefix.display()));
        write(&dir.join("v4.rules"), v4);
        write(&dir.join("v6.rules"), "v6\n");
        write(&dir.join("ip_forward"), "0\n");
        write(
            &dir.join("rollback.sh"),
            &crate::render::bash::rollback_program(),
        );
        dir
    }

    /// The real `rollback.sh takeover` on plain files (no iptables involved).
    #[test]
    fn takeover_claims_the_pending_backup_and_the_old_guard_says_so() {
        let root = std::env::temp_dir().join(format!("fw-takeover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let prefix = root.join("net-1");
        let a = backup(&root, "a", &prefix, "iptables-nft", "before A\n");
        write(&a.join("armed"), "");
        set(&prefix, &a).unwrap();

        // Not pending any more (no `armed`) or another backend: not taken over.
        let b = backup(&root, "b", &prefix, "nftables", "before B\n");
        assert_eq!(takeover(&b).0, Some(3));
        assert!(a.join("armed").exists());
        std::fs::remove_dir_all(&b).unwrap();

        let b = backup(&root, "b", &prefix, "iptables-nft", "before B\n");
        // Its watchdog was killed (a cancelled failsafe): nothing pending.
        write(&a.join("watchdog.pid"), "99999999\n");
        assert_eq!(takeover(&b), (Some(0), String::new()));
        assert!(a.join("armed").exists() && !b.join("prev").exists());
        write(
            &a.join("watchdog.pid"),
            &format!("{}\n", std::process::id()),
        );
        let (code, out) = takeover(&b);
        assert_eq!(code, Some(0));
        assert_eq!(out.trim(), format!("took over {}", a.display()));
        assert_eq!(
            std::fs::read_to_string(b.join("prev/v4.rules")).unwrap(),
            "before A\n"
        );
        assert!(!a.join("armed").exists() && a.join("superseded").exists());
        assert!(last_was(&prefix, "superseded", &a));
        let guard = FailsafeGuard::new(
            a.clone(),
            Failsafe::from_secs(30).unwrap(),
            Instant::now(),
            prefix.clone(),
        );
        assert!(matches!(
            guard.confirm(),
            Err(ApplyError::FailsafeSuperseded { .. })
        ));

        // B pending in turn: C gets B's taken-over backup, the last confirmed rules.
        write(&b.join("armed"), "");
        set(&prefix, &b).unwrap();
        let c = backup(&root, "c", &prefix, "iptables-nft", "before C\n");
        assert_eq!(takeover(&c).0, Some(0));
        assert_eq!(
            std::fs::read_to_string(c.join("prev/v4.rules")).unwrap(),
            "before A\n"
        );
        // Nothing pending: nothing to do.
        let d = backup(&root, "d", &prefix, "iptables-nft", "before D\n");
        clear(&prefix, &b);
        assert_eq!(takeover(&d), (Some(0), String::new()));
        assert!(!d.join("prev").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
