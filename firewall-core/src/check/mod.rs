//! Policy-level checks (DSL.md section 3) on the lowered [`Model`]. Value checks
//! (`port-range`, `address`, interface names, `failsafe`, `redirect-self`) happen
//! while lowering, in [`crate::compile`]; what is here needs the whole policy.

mod interfaces;
mod lockout;
mod ports;
mod router;

use crate::compile::Spans;
use crate::diagnostic::{SpanRange, SpannedDiagnostic};
use crate::model::Model;

/// Runs every policy-level check. `complete` is false when some statement
/// failed to parse or lower: checks that reason about what is *missing*
/// (lockout) are then skipped, since the broken statement may be what provides it.
pub(crate) fn run(
    model: &Model,
    spans: &Spans,
    complete: bool,
    whole: SpanRange,
) -> Vec<SpannedDiagnostic> {
    let mut out = Vec::new();
    interfaces::check(model, spans, &mut out);
    ports::check(model, spans, &mut out);
    router::check(model, spans, &mut out);
    if complete {
        lockout::check(model, spans, whole, &mut out);
    }
    out
}
