//! Proofs over the rule model: the packet classifier ([`Classifier`]), the
//! `assert` statements checked with it (at compile time, after the checks),
//! and [`explain`], the service matrix it computes.
//!
//! Pipeline: syntax → lowering → model → checks → plan → **proof** → render →
//! apply. This stage reads the plan (the rules every printer spells), never
//! the printers, so an assertion holds for what is installed, not for what
//! the statements seem to say.
//!
//! ```
//! use firewall_core::{plan, proof::{Class, Classifier, Proto, Verdict}, Policy};
//! let p = Policy::parse("extif eth0; open tcp 22, 80;").unwrap();
//! let plan = plan::lower(p.model());
//! let c = Classifier::new(&plan, "lan0");
//! let parts = c.classify(Class::incoming(plan::Family::V4, "eth0", Proto::Tcp));
//! let accepted: Vec<_> = parts.iter().filter(|o| o.verdict == Verdict::Accept).collect();
//! assert_eq!(accepted.len(), 1);
//! assert_eq!(accepted[0].class.dport.intervals(), &[(22, 22), (80, 80)]);
//! ```

mod assert;
mod classify;
mod explain;
mod interval;
#[cfg(test)]
mod tests;

pub(crate) use assert::check;
pub use classify::{split, Class, Classifier, DecidedBy, Outcome, Proto, Verdict};
pub use explain::explain;
pub use interval::{net_interval, IntervalSet};
