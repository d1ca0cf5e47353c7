//! `interface`: an interface both external and trusted, by name or because an
//! `extif` wildcard (`"eth+"`) matches it. External interfaces are matched
//! first, so a trusted interface that an `extif` wildcard matches is treated as
//! external: its administrator is locked out (DSL.md section 7).

use crate::diagnostic::{Code, Sink, SpannedDiagnostic};
use crate::lowering::{Once, Spans};
use crate::model::Iface;
use std::collections::{HashMap, HashSet};

/// The prefix of an iptables wildcard (`eth+` -> `eth`).
fn wildcard_prefix(i: &Iface) -> Option<&str> {
    i.as_str().strip_suffix('+')
}

pub(super) fn check(model: &crate::model::Model, spans: &Spans, out: &mut Sink) {
    let (Some(trust), Some(&id)) = (&model.trust, spans.once.get(&Once::Trust)) else {
        return;
    };
    // Wildcards by prefix: a name is looked up by each of its (at most 15)
    // prefixes, not compared with every wildcard.
    let wildcards: HashMap<&str, &Iface> = model
        .extif
        .iter()
        .filter_map(|i| wildcard_prefix(i).map(|p| (p, i)))
        .collect();
    let external: HashSet<&Iface> = model.extif.iter().collect();
    for (i, iface) in trust.iter().enumerate() {
        let span = spans
            .ifaces
            .get(&(id, i))
            .copied()
            .unwrap_or_else(|| spans.of(id));
        if external.contains(iface) {
            out.push(SpannedDiagnostic::new(
                Code::Interface,
                span,
                format!(
                    "`{iface}` is both `extif` and `trust`: an external interface is never trusted"
                ),
                format!("remove `{iface}` from `trust`"),
            ));
            continue;
        }
        // What the trusted name matches: itself, or every name with its prefix.
        let name = wildcard_prefix(iface).unwrap_or(iface.as_str());
        let by = (0..=name.len())
            .filter(|&n| name.is_char_boundary(n))
            .find_map(|n| wildcards.get(&name[..n]));
        if let Some(w) = by {
            let shown = w.written();
            let what = if wildcard_prefix(iface).is_some() {
                format!("every interface `{iface}` matches")
            } else {
                format!("`{iface}`")
            };
            out.push(SpannedDiagnostic::new(
                Code::Interface,
                span,
                format!(
                    "the `extif` wildcard {shown} also matches {what}: external interfaces are matched first, so it would be treated as external, not trusted"
                ),
                format!(
                    "name the external interfaces one by one in `extif` instead of {shown} (e.g. `extif {};`), or remove `{iface}` from `trust`",
                    example_extif(w, iface)
                ),
            ));
        }
    }
}

/// An `extif` example without the wildcard: the wildcard's `0` interface, or
/// another one when that is the trusted one (`eth0` for the bare `"+"`, whose
/// own `0` interface, `"0"`, is no name anyone has).
fn example_extif(wildcard: &Iface, trusted: &Iface) -> String {
    let prefix = wildcard_prefix(wildcard)
        .filter(|p| !p.is_empty())
        .unwrap_or("eth");
    let candidate = (0..10)
        .map(|n| format!("{prefix}{n}"))
        .find(|c| c != trusted.as_str())
        .unwrap_or_else(|| format!("{prefix}0"));
    Iface::new(&candidate)
        .map(|i| i.written())
        .unwrap_or(candidate)
}
