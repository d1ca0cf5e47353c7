//! The backend when none is chosen ([`super::Options::backend`] `None`): the
//! shell library's `fw_detect_backend`, the one detection `apply()` and the
//! bash script share (see its comment in `render/lib.sh` for the four steps),
//! run as `bash -c '<constants><library>fw_detect_backend'`. Its outcomes
//! (one tab-separated line and an exit status) become [`ApplyError`]s here.

use super::system::System;
use super::{missing, ApplyError, Backend, Cause, Rollback, Step};
use crate::render::shell;

/// The backend this host uses, as `fw_detect_backend` decides.
pub(crate) fn detect(sys: &dyn System) -> Result<Backend, ApplyError> {
    if sys.find("bash").is_none() {
        return Err(missing("bash"));
    }
    let script = format!(
        "{}{}\nfw_detect_backend\n",
        shell::constants(),
        shell::LIBRARY
    );
    let out = sys
        .run("bash", &["-c", &script], None)
        .map_err(|e| ApplyError::Failed {
            step: Step::Backup,
            cause: Box::new(Cause::Io(e)),
            rollback: Rollback::NothingChanged,
        })?;
    outcome(out.code, &out.stdout).ok_or_else(|| ApplyError::Failed {
        step: Step::Backup,
        cause: Box::new(Cause::Tool {
            tool: "fw_detect_backend (bash)".to_string(),
            code: out.code,
            stderr: format!("{}{}", out.stdout, out.stderr),
        }),
        rollback: Rollback::NothingChanged,
    })?
}

/// What an exit status and output line of `fw_detect_backend` mean; `None`
/// for anything it does not print.
fn outcome(code: Option<i32>, stdout: &str) -> Option<Result<Backend, ApplyError>> {
    let line = stdout.lines().next().unwrap_or("");
    let fields: Vec<&str> = line.split('\t').collect();
    Some(match (code?, fields.as_slice()) {
        (0, [name]) => Ok(Backend::from_name(name.trim())?),
        (3, ["mismatch", selected, other, tool, line @ ..]) => Err(ApplyError::BackendMismatch {
            selected: Backend::from_name(selected)?,
            other: Backend::from_name(other)?,
            tool: tool.to_string(),
            line: line.join("\t"),
        }),
        (4, ["unknown", version @ ..]) => Err(ApplyError::UnknownBackend {
            version: version.join("\t"),
        }),
        (5, ["missing", tool]) => Err(missing(tool)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_mapped() {
        assert!(matches!(
            outcome(Some(0), "nftables\n"),
            Some(Ok(Backend::Nftables))
        ));
        assert!(matches!(
            outcome(Some(0), "iptables-legacy\n"),
            Some(Ok(Backend::IptablesLegacy))
        ));
        match outcome(
            Some(3),
            "mismatch\tiptables-nft\tiptables-legacy\tiptables-legacy-save\t-A INPUT -j DROP\n",
        ) {
            Some(Err(ApplyError::BackendMismatch {
                selected,
                other,
                tool,
                line,
            })) => {
                assert_eq!(
                    (selected, other),
                    (Backend::IptablesNft, Backend::IptablesLegacy)
                );
                assert_eq!(tool, "iptables-legacy-save");
                assert_eq!(line, "-A INPUT -j DROP");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome(Some(4), "unknown\tiptables v1.4.21\n"),
            Some(Err(ApplyError::UnknownBackend { version })) if version == "iptables v1.4.21"
        ));
        assert!(matches!(
            outcome(Some(5), "missing\tiptables\n"),
            Some(Err(ApplyError::ToolMissing { tool, .. })) if tool == "iptables"
        ));
        for (code, out) in [
            (Some(0), "nft\n"),
            (Some(1), ""),
            (None, "nftables\n"),
            (Some(3), "mismatch\tx\n"),
        ] {
            assert!(outcome(code, out).is_none(), "{code:?} {out}");
        }
    }

    /// The real library on a PATH of fake tools: each outcome, end to end.
    #[test]
    fn the_library_detects_on_fake_hosts() {
        let root = std::env::temp_dir().join(format!("fw-detect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tool = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let script = format!(
            "{}{}\nfw_detect_backend\n",
            shell::constants(),
            shell::LIBRARY
        );
        let run = |path: &str| {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(&script)
                .env("PATH", path)
                .output()
                .expect("bash");
            outcome(out.status.code(), &String::from_utf8_lossy(&out.stdout))
        };
        // Only the basics (timeout, grep, ...) from the system, after ours.
        let path = format!("{}:/usr/bin:/bin", bin.display());
        // /usr/sbin is not on this PATH: the system's iptables and nft are not seen.
        // Nothing installed.
        assert!(matches!(
            run(&path),
            Some(Err(ApplyError::ToolMissing { .. }))
        ));
        // Only nft, no tables: nftables.
        tool("nft", "exit 0");
        assert!(matches!(run(&path), Some(Ok(Backend::Nftables))));
        // nft with the firewall's own table: nftables, whatever iptables is.
        tool("nft", "echo 'table inet firewall'");
        tool("iptables", "echo 'iptables v1.8.9 (legacy)'");
        assert!(matches!(run(&path), Some(Ok(Backend::Nftables))));
        // iptables-nft's own tables only, nothing loaded: iptables -V decides.
        tool("nft", "echo 'table ip filter'");
        tool("iptables", "echo 'iptables v1.8.9 (nf_tables)'");
        assert!(matches!(run(&path), Some(Ok(Backend::IptablesNft))));
        // A native table: nftables.
        tool("nft", "printf 'table ip filter\\ntable inet distro\\n'");
        assert!(matches!(run(&path), Some(Ok(Backend::Nftables))));
        // Legacy rules while iptables is nft: mismatch.
        tool("nft", "exit 0");
        tool("iptables-legacy-save", "echo '-A INPUT -j DROP'");
        assert!(matches!(
            run(&path),
            Some(Err(ApplyError::BackendMismatch { .. }))
        ));
        // A DROP policy counts too; empty ACCEPT tables (with counters) do not.
        tool("iptables-legacy-save", "echo ':INPUT DROP [0:0]'");
        assert!(matches!(
            run(&path),
            Some(Err(ApplyError::BackendMismatch { .. }))
        ));
        tool(
            "iptables-legacy-save",
            "printf '*filter\\n:INPUT ACCEPT [0:0]\\n:OUTPUT ACCEPT [5:300]\\nCOMMIT\\n'",
        );
        assert!(matches!(run(&path), Some(Ok(Backend::IptablesNft))));
        // Rules in iptables-nft itself: iptables-nft (even beside a native table).
        tool("nft", "printf 'table ip filter\\ntable inet distro\\n'");
        tool("iptables-nft-save", "echo '-A INPUT -j ACCEPT'");
        assert!(matches!(run(&path), Some(Ok(Backend::IptablesNft))));
        std::fs::remove_file(bin.join("iptables-nft-save")).unwrap();
        tool("nft", "exit 0");
        std::fs::remove_file(bin.join("iptables-legacy-save")).unwrap();
        tool("iptables", "echo 'iptables v1.4.21'");
        assert!(matches!(
            run(&path),
            Some(Err(ApplyError::UnknownBackend { .. }))
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
