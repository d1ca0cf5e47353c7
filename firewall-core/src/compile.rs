//! Tokens in, checked [`Model`] out: the one path shared by the `firewall!`
//! macro and [`crate::Policy::parse`]. This module only runs the stages, in
//! the order of the crate's folders:
//!
//! 1. [`crate::syntax`] parses the tokens (raw values, spans, syntax errors);
//! 2. [`crate::lowering`] validates every value into the model's types
//!    (`port-range`, `address`, `interface`, `failsafe`, `redirect-self`,
//!    statements given twice) and records where each part was written;
//! 3. [`crate::check`] runs the policy-level checks on the model;
//! 4. when those pass, [`crate::proof`] checks the `assert` statements
//!    against the plan ([`crate::plan::lower`]): the rules that are rendered.
//!
//! Every stage writes into one [`Sink`]; every diagnostic of every stage is
//! returned, in source order.

use crate::check;
use crate::diagnostic::{Code, Sink, SpanRange, SpannedDiagnostic};
use crate::lowering;
use crate::model::Model;
use crate::syntax;
use proc_macro2::{Span, TokenStream, TokenTree};
use std::str::FromStr;

/// Parses and checks a policy given as tokens (the macro's input).
pub fn compile(tokens: TokenStream) -> Result<Model, Vec<SpannedDiagnostic>> {
    // Taken apart once (iterating a shared stream would copy it), checked for
    // nesting before syn recurses into it, and put back together.
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    syntax::depth::check_trees(&trees).map_err(|d| vec![d])?;
    let whole = whole_span(&trees);
    let tokens: TokenStream = trees.into_iter().collect();
    let mut diags = Sink::default();
    let Some(parsed) = syntax::parse(tokens, &mut diags) else {
        return Err(diags.into_sorted());
    };
    let lowered = lowering::lower(&parsed, whole, &mut diags);
    check::run(
        &lowered.model,
        &lowered.spans,
        lowered.complete,
        whole,
        &mut diags,
    );
    // Proofs run on the rules of a policy that passed every check: a broken
    // one has no plan worth proving things about.
    if diags.is_empty() && !lowered.model.extif.is_empty() && !lowered.model.asserts.is_empty() {
        let plan = crate::plan::lower(&lowered.model);
        crate::proof::check(&lowered.model, &plan, &lowered.spans, &mut diags);
    }
    let diags = diags.into_sorted();
    if lowered.model.extif.is_empty() || !diags.is_empty() {
        Err(diags)
    } else {
        Ok(lowered.model)
    }
}

/// Parses and checks a policy given as text.
///
/// ```
/// let model = firewall_core::compile::compile_str("extif eth0; open tcp 22;").unwrap();
/// assert_eq!(model.extif[0].as_str(), "eth0");
/// ```
pub fn compile_str(text: &str) -> Result<Model, Vec<SpannedDiagnostic>> {
    let tokens = TokenStream::from_str(text).map_err(|e| {
        vec![SpannedDiagnostic::new(
            Code::Syntax,
            SpanRange::single(e.span()),
            format!("this is not policy text: {e}"),
            "check for an unclosed string, comment or bracket (comments are `//` and `/* */`, not `#`)",
        )]
    })?;
    syntax::whitespace::check(text, &tokens).map_err(|d| vec![d])?;
    compile(tokens)
}

/// Tests' checked model from policy text (the real parser and checks);
/// panics with every diagnostic when `text` does not compile.
#[cfg(test)]
pub(crate) fn test_model(text: &str) -> Model {
    compile_str(text).unwrap_or_else(|ds| {
        panic!(
            "test policy does not compile: {text}\n{:?}",
            ds.iter().map(|d| d.message.clone()).collect::<Vec<_>>()
        )
    })
}

fn whole_span(trees: &[TokenTree]) -> SpanRange {
    match (trees.first(), trees.last()) {
        (Some(first), Some(last)) => SpanRange {
            start: first.span(),
            end: last.span(),
        },
        _ => SpanRange::single(Span::call_site()),
    }
}
