//! The bash script's backends in the kernel tests: which ones every
//! script-based test runs with, the firewall namespace's rules as a backend
//! sees them, and a starting state per backend (with a foreign nftables table
//! for the nftables backend, which nothing may touch).

use super::{describe, Ns, Topology};
use std::thread;
use std::time::Duration;

/// The backends every script-based kernel test runs with (`FIREWALL_BACKEND`
/// values); iptables-legacy only where a test says so.
pub const BACKENDS: [&str; 2] = ["iptables-nft", "nftables"];

/// A table that is not the firewall's: `table inet other` with a base chain
/// (policy accept) and one rule (dropping TCP port 7). No apply, rollback or
/// failsafe revert of the nftables backend may change it.
pub const FOREIGN_TABLE: &str = "table inet other {
\tchain input {
\t\ttype filter hook input priority filter + 10; policy accept;
\t\ttcp dport 7 drop comment \"foreign\"
\t}
}
";

/// The firewall's own tables before a change, as an earlier (hand-made)
/// ruleset: everything accepted but TCP port 9 (IPv4 and IPv6).
pub const PREVIOUS_OWN_TABLES: &str = "table inet firewall {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 9 drop comment \"before\"
\t}
}
";

/// Whether the tools of `backend` are here (nftables: `nft`); under `CI=true`
/// a missing one panics instead of skipping.
pub fn available(test: &str, backend: &str) -> bool {
    if backend != "nftables" {
        return true;
    }
    let found = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !found {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "{test}: `nft` (Debian package nftables) is needed in CI"
        );
        eprintln!("SKIPPED {test} with nftables: `nft` is not installed");
    }
    found
}

/// `nft -s list ruleset` of the firewall namespace: every nftables table,
/// the firewall's own and foreign ones, without counters, as listed (in the
/// order the tables were created). Retried: a listing can fail transiently
/// while a commit is under way.
pub fn nft_ruleset_as_listed(t: &Topology) -> String {
    let args = ["timeout", "10", "nft", "-s", "list", "ruleset"];
    let mut out = t.exec(Ns::Firewall, &args);
    for _ in 0..2 {
        if out.status.success() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
        out = t.exec(Ns::Firewall, &args);
    }
    assert!(
        out.status.success(),
        "{}",
        describe("nft list ruleset", &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`nft_ruleset_as_listed`] with the tables in name order: a restore
/// recreates the firewall's own tables, which lists them after the others.
pub fn nft_ruleset(t: &Topology) -> String {
    let listed = nft_ruleset_as_listed(t);
    let mut tables: Vec<String> = Vec::new();
    for line in listed.lines() {
        if line.starts_with("table ") || tables.is_empty() {
            tables.push(String::new());
        }
        if let Some(last) = tables.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    tables.sort();
    tables.concat()
}

/// The firewall namespace's rules as `backend` sees them: the iptables
/// rulesets of both families ([`Topology::ruleset`]) and, for nftables, the
/// whole nftables ruleset ([`nft_ruleset`]) after them.
pub fn state(t: &Topology, backend: &str) -> String {
    let mut s = t.ruleset(Ns::Firewall);
    if backend == "nftables" {
        s.push_str("--- nft ---\n");
        s.push_str(&nft_ruleset(t));
    }
    s
}

/// Loads `text` with `nft -f` in the firewall namespace; panics if it fails.
pub fn nft_load(t: &Topology, text: &str) {
    let out = t.exec_with_stdin(Ns::Firewall, &["timeout", "30", "nft", "-f", "-"], text);
    assert!(
        out.status.success(),
        "{}\n--- input ---\n{text}",
        describe("nft -f", &out)
    );
}

/// The nftables starting state: the firewall's own tables replaced by
/// [`PREVIOUS_OWN_TABLES`] (no NAT table), [`FOREIGN_TABLE`] beside them
/// (created afresh), `ip_forward` off.
pub fn populate_nft(t: &Topology) {
    let mut text = String::new();
    for table in ["inet firewall", "ip firewall_nat", "inet other"] {
        text.push_str(&format!("table {table} {{}}\ndelete table {table}\n"));
    }
    text.push_str(PREVIOUS_OWN_TABLES);
    text.push_str(FOREIGN_TABLE);
    nft_load(t, &text);
    t.set_ip_forward(false);
}

/// The firewall's own tables (`table inet firewall`, `table ip
/// firewall_nat`) in an [`nft_ruleset`] text, nothing else.
pub fn own_tables(ruleset: &str) -> String {
    ruleset
        .split_inclusive("\n}\n")
        .filter(|t| {
            t.starts_with("table inet firewall {") || t.starts_with("table ip firewall_nat {")
        })
        .collect()
}
