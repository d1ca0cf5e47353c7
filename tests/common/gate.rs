//! The one skip gate of the kernel tests.
//!
//! A test that needs something this machine may lack (root and working
//! `ip netns`, a tool, python3, a readable kernel configuration) asks
//! [`require`] (or its shorthand [`kernel_tests_available`]) first. If a piece
//! is missing it prints `SKIPPED <test>: ...` and returns `false`, so the test
//! returns early — except under `CI=true`, where it panics: `.ci/run`
//! installs everything, so a skipped test there is a defect. Every other
//! skip in the tests goes through [`skip`], the one place that decides.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One thing a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Root, working `ip netns`, and the tools every namespace test uses
    /// (iproute2, iptables, nc, ping, timeout, bash).
    Kernel,
    /// A program on `PATH` (or in the sbin directories): its name and the
    /// Debian package that has it.
    Tool(&'static str, &'static str),
}

/// `nft` (for the nftables loader and backend).
pub const NFT: Need = Need::Tool("nft", "nftables");

/// `python3` (for datagrams the other tools cannot send).
pub const PYTHON3: Need = Need::Tool("python3", "python3");

/// The tools behind [`Need::Kernel`].
const KERNEL_TOOLS: [(&str, &str); 10] = [
    ("id", "coreutils"),
    ("ip", "iproute2"),
    ("iptables-restore", "iptables"),
    ("ip6tables-restore", "iptables"),
    ("iptables-save", "iptables"),
    ("ip6tables-save", "iptables"),
    ("nc", "netcat-openbsd"),
    ("ping", "iputils-ping"),
    ("timeout", "coreutils"),
    ("bash", "bash"),
];

/// Whether everything in `needs` is here; if not, [`skip`]s `test` (which
/// panics under `CI=true`).
pub fn require(test: &str, needs: &[Need]) -> bool {
    match needs.iter().find_map(|n| missing(*n)) {
        None => true,
        Some(why) => skip(test, &why),
    }
}

/// [`require`] of [`Need::Kernel`]: whether namespace tests can run here.
pub fn kernel_tests_available(test: &str) -> bool {
    require(test, &[Need::Kernel])
}

/// Skips `test` because it needs `why` (a phrase: "root", "`nft` (Debian
/// package nftables)"): prints it and returns `false`, or under `CI=true`
/// panics. Every skip in the tests goes through here.
pub fn skip(test: &str, why: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let line = decide(test, why, ci);
    // Straight to stderr: libtest would hide eprintln! of a passing test.
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// What [`skip`] decides, with the environment given: panics if `ci`, else
/// returns the line to print (separate so the self-test can check both ways
/// without printing a skip).
pub fn decide(test: &str, why: &str, ci: bool) -> String {
    if ci {
        panic!("{test} cannot run in CI: it needs {why}");
    }
    format!("SKIPPED {test}: needs {why}")
}

/// Why `need` is not met here, or `None` if it is.
pub fn missing(need: Need) -> Option<String> {
    match need {
        Need::Kernel => {
            static KERNEL: OnceLock<Option<String>> = OnceLock::new();
            KERNEL.get_or_init(missing_kernel).clone()
        }
        Need::Tool(tool, package) => find_in_path(tool)
            .is_none()
            .then(|| format!("`{tool}` (Debian package {package})")),
    }
}

fn missing_kernel() -> Option<String> {
    let tools: Vec<String> = KERNEL_TOOLS
        .iter()
        .filter_map(|(t, p)| missing(Need::Tool(t, p)))
        .collect();
    if !tools.is_empty() {
        return Some(format!("these tools on PATH: {}", tools.join(", ")));
    }
    if !is_root() {
        return Some("root (run the tests as root)".into());
    }
    // `ip netns` itself: create and delete a probe namespace (the guard).
    match super::netns::Netns::try_new("probe") {
        Ok(probe) => {
            drop(probe);
            None
        }
        Err(e) => Some(format!("`ip netns add` to work ({e})")),
    }
}

/// Whether this process runs as root (`id -u`, bounded; `false` if it
/// cannot be run).
pub fn is_root() -> bool {
    super::command::try_run(&["id", "-u"], None, 10)
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Where `tool` is on `PATH` or in the sbin directories (root's tools may be
/// there even when `PATH` lacks them), found without running it: no
/// firewall tool ever runs outside a test namespace, not even `--version`.
pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
