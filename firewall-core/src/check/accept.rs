//! `redundant` (extended, DSL.md section 7): what does nothing because the
//! input policy accepts every connection: a `from` on an `open` (everyone may
//! connect anyway) and `log drops` (the input policy drops nothing to log).

use crate::diagnostic::{Code, Sink, SpanRange, SpannedDiagnostic};
use crate::lowering::{Once, Spans};
use crate::model::{Chain, Model, Verdict};

pub(super) fn check(model: &Model, spans: &Spans, out: &mut Sink) {
    if model.input != Verdict::Accept {
        return;
    }
    for open in model.opens.iter().filter(|o| !o.from.is_empty()) {
        let at = |i: usize| spans.nets.get(&(open.stmt, i)).copied();
        let span = match (at(0), at(open.from.len() - 1)) {
            (Some(first), Some(last)) => first.to(last),
            _ => spans.of(open.stmt),
        };
        out.push(SpannedDiagnostic::new(
            Code::Redundant,
            span,
            format!(
                "this `from` restricts nothing: with `policy input accept;` every source may connect to {} {} anyway",
                open.proto,
                ports_text(open)
            ),
            "remove the `from` list, or make the input policy `drop` (`policy input drop;`) so that only these sources may connect",
        ));
    }
    if model.log_drops {
        let span = spans
            .once(Once::LogDrops)
            .or_else(|| spans.once(Once::Policy(Chain::Input)))
            .unwrap_or_else(|| SpanRange::single(proc_macro2::Span::call_site()));
        out.push(SpannedDiagnostic::new(
            Code::Redundant,
            span,
            "`log drops` logs nothing: with `policy input accept;` the input policy drops nothing",
            "remove `log drops;`, or make the input policy `drop` (`policy input drop;`) so that there are drops to log",
        ));
    }
}

/// `port 22` / `ports 22, 80`.
fn ports_text(open: &crate::model::Open) -> String {
    let list: Vec<String> = open.ports.iter().map(ToString::to_string).collect();
    let plural = open.ports.len() > 1 || open.ports.first().is_some_and(|r| !r.is_single());
    let mut text = list.join(", ");
    if text.len() > 40 {
        if let Some(cut) = text.get(..40).and_then(|h| h.rfind(", ")) {
            text.truncate(cut);
            text.push_str(", ...");
        }
    }
    format!("{} {text}", if plural { "ports" } else { "port" })
}
