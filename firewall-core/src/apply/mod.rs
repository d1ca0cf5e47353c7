//! Applying a policy to this host (STUB: being written).
use crate::{Diagnostics, Policy};
use std::fmt;

/// Options for [`apply`].
#[derive(Debug, Clone, Default)]
pub struct Options {}

/// What an apply did.
#[derive(Debug)]
pub struct Applied {}

/// Why an apply failed.
#[derive(Debug)]
pub enum ApplyError {
    /// The policy did not parse.
    Policy(Diagnostics),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Policy(d) => write!(f, "the policy has mistakes:\n{d}"),
        }
    }
}

impl std::error::Error for ApplyError {}

/// Applies `policy`.
pub fn apply(_policy: &Policy, _options: Options) -> Result<Applied, ApplyError> {
    Ok(Applied {})
}
