//! Rules in the other iptables backend.
//!
//! The kernel runs the rules of both backends: x_tables (`iptables-legacy`) and
//! nf_tables (`iptables-nft`) hooks both see every packet. A host whose
//! `iptables` is one backend while its rules were loaded through the other
//! would get a "successful" apply that leaves those old rules in force, unseen
//! by the tools of the chosen backend. So, when the backend is detected (not
//! chosen with [`super::Options::backend`]), the other backend's save tools
//! must show no rules: no `-A` line and no built-in chain with policy `DROP`.

use super::system::System;
use super::{ApplyError, Backend};

/// The first line of an `iptables-save` text that means "this holds rules".
pub(crate) fn rule_line(saved: &str) -> Option<&str> {
    saved.lines().find(|l| {
        l.starts_with("-A ") || (l.starts_with(':') && l.split_whitespace().nth(1) == Some("DROP"))
    })
}

/// Refuses when the other backend than `selected` holds rules.
pub(crate) fn check(sys: &dyn System, selected: Backend) -> Result<(), ApplyError> {
    let other = match selected {
        Backend::IptablesNft => Backend::IptablesLegacy,
        Backend::IptablesLegacy => Backend::IptablesNft,
        // The nftables backend owns its own tables (see `super`); what
        // iptables holds beside them is the administrator's.
        Backend::Nftables => return Ok(()),
    };
    let variant = other.iptables_variant().unwrap_or("legacy");
    let tools: Vec<String> = ["iptables", "ip6tables"]
        .iter()
        .map(|b| format!("{b}-{variant}-save"))
        .filter(|t| sys.find(t).is_some())
        .collect();
    // Both families at once: this is on the path of every apply.
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = tools
            .iter()
            .map(|t| s.spawn(move || sys.run(t, &[], None)))
            .collect();
        handles.into_iter().map(|h| h.join().ok()).collect()
    });
    for (tool, out) in tools.iter().zip(outputs) {
        // A tool that cannot run or fails (no kernel support for that
        // backend) shows no rules.
        let Some(Ok(out)) = out else { continue };
        if !out.success() {
            continue;
        }
        if let Some(line) = rule_line(&out.stdout) {
            return Err(ApplyError::BackendMismatch {
                selected,
                other,
                tool: tool.clone(),
                line: line.to_string(),
            });
        }
    }
    Ok(())
}
