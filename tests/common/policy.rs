//! Policies for the kernel tests: parsed from text (a policy that does not
//! parse fails the test, showing the text) and loaded into a [`Topology`]
//! with one of the two rule loaders ([`Loader`]).

use super::gate::{self, Need};
use super::Topology;
use firewall::Policy;
use std::fmt;

/// `text` parsed; panics with the text and the diagnostics if it does not parse.
pub fn parse(text: &str) -> Policy {
    match Policy::parse(text) {
        Ok(p) => p,
        Err(d) => panic!("the policy does not parse:\n{text}\n{d}"),
    }
}

/// How a test puts a policy's rules into the firewall namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// `iptables-restore -w` of `iptables_restore()` and `ip6tables-restore -w`
    /// of `ip6tables_restore()`.
    IptablesRestore,
    /// `nft -c -f` and then `nft -f` of `nft()`; afterwards the namespace
    /// holds the firewall's own tables and nothing else.
    Nft,
}

impl Loader {
    /// Both, in the order the tests run them.
    pub const ALL: [Loader; 2] = [Loader::IptablesRestore, Loader::Nft];

    /// `iptables-restore` or `nft`: names the loader in assertion messages.
    pub fn name(self) -> &'static str {
        match self {
            Loader::IptablesRestore => "iptables-restore",
            Loader::Nft => "nft",
        }
    }

    /// Whether a kernel test with this loader can run here (the one gate:
    /// [`gate::require`]; under `CI=true` a missing piece panics).
    pub fn available(self, test: &str) -> bool {
        match self {
            Loader::IptablesRestore => gate::require(test, &[Need::Kernel]),
            Loader::Nft => gate::require(test, &[Need::Kernel, gate::NFT]),
        }
    }
}

impl fmt::Display for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The tables `policy.nft()` declares (`inet firewall`, and `ip
/// firewall_nat` if it has NAT rules), in order.
pub fn nft_tables(policy: &Policy) -> Vec<&'static str> {
    let mut tables = vec!["inet firewall"];
    if policy.nft().contains("\ntable ip firewall_nat {\n") {
        tables.push("ip firewall_nat");
    }
    tables
}

impl Topology {
    /// Loads `policy`'s rules (both families) into the firewall namespace
    /// with `loader`; `Err` with the tool's output if it refuses (or, for
    /// nft, if other tables than the firewall's own are there afterwards).
    pub fn try_load_policy(&self, policy: &Policy, loader: Loader) -> Result<(), String> {
        match loader {
            Loader::IptablesRestore => {
                self.try_load_rules(policy.iptables_restore(), policy.ip6tables_restore())
            }
            Loader::Nft => self.try_load_nft(policy.nft(), &nft_tables(policy)),
        }
    }

    /// [`Topology::try_load_policy`], panicking (naming the loader) on failure.
    #[track_caller]
    pub fn load_policy(&self, policy: &Policy, loader: Loader) {
        if let Err(e) = self.try_load_policy(policy, loader) {
            panic!("loading the policy with {loader} failed: {e}");
        }
    }
}

/// A topology running `policy` (both families, loaded with `loader`) with
/// forwarding switched on in the firewall, as the bash script of a router
/// does (and as an administrator may do by hand on any host).
pub fn forwarding_topology(test: &str, policy: &Policy, loader: Loader) -> Topology {
    let t = Topology::new(test);
    t.load_policy(policy, loader);
    t.set_ip_forward(true);
    t.set_ipv6_forwarding(true);
    t
}

/// Writes a kernel test once and runs it with both rule loaders:
///
/// ```ignore
/// both_loaders! {
///     /// Docs of the test.
///     fn some_outcome(loader, test) {
///         if !loader.available(test) { return; }
///         let t = Topology::new(test);
///         t.load_policy(&parse("extif eth0;"), loader);
///         // ... name `loader` in every assertion message
///     }
/// }
/// ```
///
/// defines `fn some_outcome(loader: Loader, test: &str)` and a module
/// `some_outcome` with the tests `iptables_restore` and `nft`, which call it
/// with [`Loader::IptablesRestore`] / [`Loader::Nft`] and their full test
/// names (`some_outcome::nft`). Separate tests: they run in parallel and a
/// failure names its loader.
#[macro_export]
macro_rules! both_loaders {
    ($($(#[$attr:meta])* fn $name:ident($loader:ident, $test:ident) $body:block)*) => {
        $(
            $(#[$attr])*
            fn $name($loader: $crate::common::Loader, $test: &str) $body

            /// The test above, once per rule loader.
            mod $name {
                #[test]
                fn iptables_restore() {
                    super::$name(
                        $crate::common::Loader::IptablesRestore,
                        concat!(stringify!($name), "::iptables_restore"),
                    )
                }

                #[test]
                fn nft() {
                    super::$name(
                        $crate::common::Loader::Nft,
                        concat!(stringify!($name), "::nft"),
                    )
                }
            }
        )*
    };
}
