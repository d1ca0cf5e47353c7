//! The core of `firewall`: the policy model, the parser (syn-based, used by the
//! `firewall!` macro and by [`Policy::parse`] alike), the checks, the renderers
//! and [`apply`].
//!
//! Users depend on the `firewall` facade crate; this crate holds no proc-macro code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apply;
pub mod check;
pub mod compile;
pub mod diagnostic;
mod firewall;
pub mod lowering;
pub mod model;
pub mod plan;
mod policy;
pub mod proof;
pub mod render;
pub mod syntax;

pub use diagnostic::{Code, Diagnostic, Diagnostics, LineColumn};
pub use firewall::Firewall;
pub use policy::Policy;
