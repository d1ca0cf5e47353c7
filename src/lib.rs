#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use firewall_core::apply;
pub use firewall_core::apply::{Applied, ApplyError};
pub use firewall_core::model;
/// The kernel options and modules a policy needs ([`Policy::kernel_requirements`]).
pub use firewall_core::plan::requirements as kernel;
pub use firewall_core::{Code, Diagnostic, Diagnostics, Firewall, LineColumn, Policy};
pub use firewall_macros::firewall;

/// Used by the code `firewall!` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use firewall_core::Firewall;
}
