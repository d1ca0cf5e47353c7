//! # firewall: policy-as-code for Linux firewalls
//!
//! Write a host's or gateway's firewall as a `firewall! { ... }` block. The macro
//! parses and checks it while your crate compiles (a policy that would lock you
//! out of SSH, or lists a port twice, does not compile) and renders everything
//! needed to run it.
//!
//! ```
//! use firewall::{firewall, Firewall};
//!
//! const GATEWAY: Firewall = firewall! {
//!     extif eth0;
//!     open tcp 22, 80;
//!     icmp accept;
//!     masquerade;
//!     dnat 221 -> 192.168.125.22:22;
//! };
//!
//! assert!(GATEWAY.bash().starts_with("#!/bin/bash"));
//! assert!(GATEWAY.iptables_restore().contains("MASQUERADE"));
//! ```
//!
//! The same grammar is read at run time by [`Policy::parse`].
#![forbid(unsafe_code)]

pub use firewall_core::apply::{Applied, ApplyError};
pub use firewall_core::model;
pub use firewall_core::{Code, Diagnostic, Diagnostics, Firewall, LineColumn, Policy};
pub use firewall_macros::firewall;

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Used by the code `firewall!` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use firewall_core::Firewall;
}
