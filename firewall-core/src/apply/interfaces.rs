//! The host's network interfaces, checked against the policy's `extif` before
//! anything changes.
//!
//! An `extif` that does not exist (a typo, `eth0` copied onto an `ens3`
//! machine) would leave the real external interface to the "everything that is
//! not external is trusted" rule: the host would be wide open while the apply
//! reports success. So every `extif` without a wildcard must exist, unless
//! [`super::Options::allow_missing`] names it (an interface that appears later,
//! `ppp0`, a VPN). Wildcards (`ppp+`) are never required to match.
//!
//! A missing `trust` interface is allowed: the rule that trusts it matches
//! nothing until it appears, so the only effect is that nothing is trusted
//! there (the session guard still refuses a policy that would cut the current
//! SSH session over another interface).

use super::system::System;
use super::ApplyError;
use crate::model::{Iface, Model};

/// The interfaces the host has, from `/proc/self/net/dev` (which follows the
/// network namespace of this process, also after a `setns` without a remount
/// of `/sys`), else `/sys/class/net`.
pub(crate) fn read_host() -> std::io::Result<Vec<String>> {
    match std::fs::read_to_string("/proc/self/net/dev") {
        Ok(text) => Ok(parse_net_dev(&text)),
        Err(e) => {
            let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
                return Err(e);
            };
            let mut names: Vec<String> = dir
                .flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            Ok(names)
        }
    }
}

/// The interface names of a `/proc/net/dev` text (two header lines, then `  name: counters`).
pub(crate) fn parse_net_dev(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|n| !n.is_empty() && !n.contains(' ') && !n.contains('|'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The host's interfaces, after checking that every non-wildcard `extif` is
/// among them or in `allow`.
pub(crate) fn check(
    sys: &dyn System,
    model: &Model,
    allow: &[Iface],
) -> Result<Vec<String>, ApplyError> {
    // Unreadable (no /proc): an empty list, so that every named extif counts
    // as missing and the error says the list could not be read.
    let present = sys.interfaces().unwrap_or_default();
    let missing: Vec<Iface> = model
        .extif
        .iter()
        .filter(|e| !e.as_str().ends_with('+'))
        .filter(|e| !present.iter().any(|p| p == e.as_str()))
        .filter(|e| !allow.contains(e))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(present)
    } else {
        Err(ApplyError::MissingInterface { missing, present })
    }
}
