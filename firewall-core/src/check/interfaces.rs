//! `interface`: an interface both external and trusted.

use crate::compile::{Once, Spans};
use crate::diagnostic::{Code, SpannedDiagnostic};

pub(super) fn check(model: &crate::model::Model, spans: &Spans, out: &mut Vec<SpannedDiagnostic>) {
    let (Some(trust), Some(&id)) = (&model.trust, spans.once.get(&Once::Trust)) else {
        return;
    };
    for (i, iface) in trust.iter().enumerate() {
        if model.extif.contains(iface) {
            let span = spans
                .ifaces
                .get(&(id, i))
                .copied()
                .unwrap_or_else(|| spans.of(id));
            out.push(SpannedDiagnostic::new(
                Code::Interface,
                span,
                format!(
                    "`{iface}` is both `extif` and `trust`: an external interface is never trusted"
                ),
                format!("remove `{iface}` from `trust`"),
            ));
        }
    }
}
