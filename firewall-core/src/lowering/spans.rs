//! The span table: where each part of the model was written. The model itself
//! holds no spans (it is `Send + Sync` and compared by value); lowering fills
//! this table beside it, and every check reads it to point at the tokens.

use crate::diagnostic::SpanRange;
use crate::model::{Chain, StmtId};
use proc_macro2::Span;
use std::collections::HashMap;

/// Statements that may appear once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Once {
    Extif,
    Trust,
    Policy(Chain),
    Icmp,
    Masquerade,
    ForwardDrop,
    Ssh,
    Failsafe,
    LogDrops,
    Exclusive,
}

/// Where each part of the model was written: the model itself holds no spans.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    /// Whole statement, by [`StmtId`].
    pub stmt: Vec<SpanRange>,
    /// Once-only statements that were given.
    pub once: HashMap<Once, StmtId>,
    /// Port items of `open`/`block out` by (statement, index in the model's list);
    /// for `dnat`/`redirect`, index 0 is the incoming port.
    pub ports: HashMap<(StmtId, usize), SpanRange>,
    /// `from` networks by (statement, index).
    pub nets: HashMap<(StmtId, usize), SpanRange>,
    /// Interfaces of `extif`/`trust` by (statement, index).
    pub ifaces: HashMap<(StmtId, usize), SpanRange>,
}

impl Spans {
    /// The whole statement `id`.
    pub fn of(&self, id: StmtId) -> SpanRange {
        self.stmt
            .get(id.0 as usize)
            .copied()
            .unwrap_or_else(|| SpanRange::single(Span::call_site()))
    }

    /// Port item `index` of statement `id` (the statement if it is not recorded).
    pub fn port(&self, id: StmtId, index: usize) -> SpanRange {
        self.ports
            .get(&(id, index))
            .copied()
            .unwrap_or_else(|| self.of(id))
    }

    /// The once-only statement `which`, if it was given.
    pub fn once(&self, which: Once) -> Option<SpanRange> {
        self.once.get(&which).map(|id| self.of(*id))
    }
}
