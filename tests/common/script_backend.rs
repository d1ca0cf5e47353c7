//! The backends in the kernel tests of `apply()` and the bash script: which
//! ones every such test runs with ([`BACKENDS`], written once with
//! [`both_backends!`](crate::both_backends)), the firewall namespace's rules
//! as a backend sees them ([`state`]), and a starting state per backend
//! ([`populate`]; for nftables with a foreign table, which nothing may
//! touch).
//!
//! A backend is named as `FIREWALL_BACKEND`, `apply::Backend::from_name`
//! and the inner tests' `FW_*_BACKEND` variables name it: `iptables-nft`,
//! `nftables` (`iptables-legacy` only where a test says so).

use super::gate::{self, Need};
use super::{describe, Ns, Topology};
use std::thread;
use std::time::Duration;

/// The backends every apply() and script kernel test runs with.
pub const BACKENDS: [&str; 2] = ["iptables-nft", "nftables"];

/// Writes a kernel test of `apply()` or the bash script once and runs it
/// with both backends ([`BACKENDS`]):
///
/// ```ignore
/// both_backends! {
///     /// Docs of the test.
///     fn some_outcome(backend, test) {
///         let t = Topology::new(test);
///         script_backend::populate(&t, backend);
///         // ... apply() with FW_*_BACKEND=backend, the script with
///         // FIREWALL_BACKEND=backend; name `backend` in assertion messages
///     }
/// }
/// ```
///
/// defines `fn some_outcome(backend: &'static str, test: &str)` and a module
/// `some_outcome` with the tests `iptables_nft` and `nftables`, which ask the
/// one gate ([`available`]) and then call it with the backend and their full
/// test name (`some_outcome::nftables`). Separate tests: they run in
/// parallel and a failure names its backend.
#[macro_export]
macro_rules! both_backends {
    ($($(#[$attr:meta])* fn $name:ident($backend:ident, $test:ident) $body:block)*) => {
        $(
            $(#[$attr])*
            fn $name($backend: &'static str, $test: &str) $body

            /// The test above, once per backend.
            mod $name {
                #[test]
                fn iptables_nft() {
                    let test = concat!(stringify!($name), "::iptables_nft");
                    if $crate::common::script_backend::available(test, "iptables-nft") {
                        super::$name("iptables-nft", test)
                    }
                }

                #[test]
                fn nftables() {
                    let test = concat!(stringify!($name), "::nftables");
                    if $crate::common::script_backend::available(test, "nftables") {
                        super::$name("nftables", test)
                    }
                }
            }
        )*
    };
}

/// Whether a kernel test with `backend` can run here: the one gate
/// ([`gate::require`]: namespaces and the iptables tools, and `nft` for
/// nftables); under `CI=true` a missing piece panics.
pub fn available(test: &str, backend: &str) -> bool {
    if backend == "nftables" {
        gate::require(test, &[Need::Kernel, gate::NFT])
    } else {
        gate::require(test, &[Need::Kernel])
    }
}

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

/// Loads `text` with the one nftables loader ([`super::netns::Netns::try_nft_f`])
/// in the firewall namespace; panics if it fails.
#[track_caller]
pub fn nft_load(t: &Topology, text: &str) {
    if let Err(e) = t.netns(Ns::Firewall).try_nft_f(text) {
        panic!("{e}");
    }
}

/// The iptables starting state of [`populate`]: TCP port 9 dropped (IPv4
/// and IPv6), IPv6 forwarding dropped.
pub const PREVIOUS_V4: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 9 -j DROP\nCOMMIT\n";

/// The IPv6 half of [`PREVIOUS_V4`].
pub const PREVIOUS_V6: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 9 -j DROP\nCOMMIT\n";

/// The starting state for `backend`, `ip_forward` off: iptables:
/// [`PREVIOUS_V4`] and [`PREVIOUS_V6`]; nftables: [`populate_nft`].
pub fn populate(t: &Topology, backend: &str) {
    populate_with(t, backend, PREVIOUS_V4, PREVIOUS_V6);
}

/// [`populate`] with other iptables rulesets (`v4`, `v6`) for the iptables
/// backends.
pub fn populate_with(t: &Topology, backend: &str, v4: &str, v6: &str) {
    if backend == "nftables" {
        populate_nft(t);
    } else {
        t.load_rules(v4, v6);
        t.set_ip_forward(false);
    }
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
/// firewall_nat`) in an [`nft_ruleset`] (or [`state`]) text, nothing else:
/// the one reader of the own tables.
pub fn own_tables(ruleset: &str) -> String {
    let mut own = String::new();
    let mut inside = false;
    for line in ruleset.lines() {
        if line == "table inet firewall {" || line == "table ip firewall_nat {" {
            inside = true;
        }
        if inside {
            own.push_str(line);
            own.push('\n');
        }
        if line == "}" {
            inside = false;
        }
    }
    own
}
