//! Tokens in, checked [`Model`] out: the one path shared by the macro and [`crate::Policy::parse`].

use crate::diagnostic::SpannedDiagnostic;
use crate::model::Model;
use proc_macro2::TokenStream;

/// Parses and checks a policy given as tokens (the macro's input).
pub fn compile(tokens: TokenStream) -> Result<Model, Vec<SpannedDiagnostic>> {
    let _ = tokens;
    Err(Vec::new())
}

/// Parses and checks a policy given as text.
pub fn compile_str(text: &str) -> Result<Model, Vec<SpannedDiagnostic>> {
    let _ = text;
    Err(Vec::new())
}
