//! One throwaway network namespace, for tests that only load rules (no
//! traffic: that is `Topology` in `mod.rs`), and the CI-aware skip gate.
//! Shared by `rulesets.rs` and `generated_tools.rs` via `#[path]`.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Whether a test that needs `tools` (and root, if `root`) can run here.
/// When not, it prints why and returns false; under `CI=true` it panics
/// instead (.ci/run installs everything, so a skip there is a defect).
pub fn require(test: &str, tools: &[&str], root: bool) -> bool {
    let reason = if root && !is_root() {
        Some("not running as root".to_string())
    } else {
        tools
            .iter()
            .find(|tool| !tool_exists(tool))
            .map(|tool| format!("`{tool}` is not installed"))
    };
    match reason {
        None => true,
        Some(why) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test} cannot run in CI: {why}");
            }
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

/// [`require`] for a test that loads rules into a namespace.
pub fn kernel_available(test: &str) -> bool {
    require(
        test,
        &[
            "ip",
            "iptables-restore",
            "ip6tables-restore",
            "iptables-save",
            "ip6tables-save",
        ],
        true,
    )
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Looks `tool` up in `PATH` (plus the sbin directories) without running it:
/// no firewall tool ever runs outside a test namespace, not even `--version`.
pub fn tool_exists(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .any(|dir| dir.join(tool).is_file())
}

// ---------------------------------------------------------------- namespace

/// A network namespace that lives as long as the value.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(test: &str) -> Netns {
        let name = format!("fwns-{test}-{}", std::process::id());
        // A leftover from a killed earlier run with the same pid: remove it.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    /// Runs `cmd args...` inside the namespace with `stdin` as input.
    pub fn exec(&self, cmd: &str, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `--test`s and then loads `rules` with `iptables-restore` (or the v6 one); panics on failure.
    pub fn restore(&self, v6: bool, rules: &str) {
        let tool = if v6 {
            "ip6tables-restore"
        } else {
            "iptables-restore"
        };
        for args in [&["-w", "--test"][..], &["-w"][..]] {
            let out = self.exec(tool, args, rules);
            assert!(
                out.status.success(),
                "{tool} {args:?} failed: {}\n--- rules:\n{}",
                String::from_utf8_lossy(&out.stderr),
                numbered(rules)
            );
        }
    }

    /// What the kernel holds now, as `iptables-save` prints it.
    pub fn save(&self, v6: bool) -> String {
        let tool = if v6 {
            "ip6tables-save"
        } else {
            "iptables-save"
        };
        let out = self.exec(tool, &[], "");
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// `text` with line numbers, as iptables-restore counts them.
pub fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:4} {l}\n", i + 1))
        .collect()
}
