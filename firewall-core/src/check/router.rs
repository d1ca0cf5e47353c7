//! `router`: `forward drop;` on a policy that forwards (masquerade/dnat).

use crate::diagnostic::{Code, Sink, SpannedDiagnostic};
use crate::lowering::{Once, Spans};
use crate::model::Model;

pub(super) fn check(model: &Model, spans: &Spans, out: &mut Sink) {
    if !(model.forward_drop && model.is_router()) {
        return;
    }
    let Some(span) = spans.once(Once::ForwardDrop) else {
        return;
    };
    let what = match (model.masquerade, model.dnats.first()) {
        (true, Some(_)) => "`masquerade` and `dnat`".to_string(),
        (true, None) => "`masquerade`".to_string(),
        (false, Some(d)) => format!("`{d}`"),
        (false, None) => "routing".to_string(),
    };
    out.push(SpannedDiagnostic::new(
        Code::Router,
        span,
        format!("`forward drop` drops the traffic that {what} must forward: this policy is a router"),
        "remove `forward drop;` (a router already drops forwarded traffic from outside that no dnat asks for), or remove masquerade/dnat",
    ));
}
