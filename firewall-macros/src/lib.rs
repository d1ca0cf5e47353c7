//! The `firewall!` macro. Use it through the `firewall` crate, which documents it.
//!
//! Thin by design: parse and check with `firewall-core`, turn diagnostics into
//! spanned `compile_error!`s, emit the rendered constant.
#![forbid(unsafe_code)]

use firewall_core::compile;
use firewall_core::diagnostic::SpannedDiagnostic;
use proc_macro::TokenStream;
use proc_macro2::{
    Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream as TokenStream2, TokenTree,
};
use quote::quote;

/// A firewall policy, checked and rendered at compile time; expands to a
/// constant expression of type `firewall::Firewall`. See the `firewall` crate.
#[proc_macro]
pub fn firewall(input: TokenStream) -> TokenStream {
    let input = TokenStream2::from(input);
    match compile::compile(input) {
        Ok(model) => {
            // `source` is rendered from the model, not the tokens re-printed:
            // it must parse again to the same policy (apply() does that).
            let r = firewall_core::render::render(&model);
            let (source, bash, ipv4, ipv6, nft) = (r.source, r.bash, r.ipv4, r.ipv6, r.nft);
            let explain =
                firewall_core::proof::explain(&model, &firewall_core::plan::lower(&model));
            quote! {
                ::firewall::__private::Firewall::__new(#source, #bash, #ipv4, #ipv6)
                    .__with_nft(#nft)
                    .__with_explain(#explain)
            }
            .into()
        }
        Err(diagnostics) => {
            // A note (the statement that decides a failing `assert`) is a
            // second error at its own span: stable Rust has no spanned notes.
            let errors = diagnostics.iter().flat_map(|d| {
                let note = d
                    .rendered_note()
                    .map(|(span, text)| compile_error_at(span.start, span.end, &text));
                std::iter::once(compile_error(d)).chain(note)
            });
            quote! {
                {
                    #(#errors)*
                    ::firewall::__private::Firewall::__placeholder()
                }
            }
            .into()
        }
    }
}

/// `::core::compile_error! { "msg" };` underlining `d.span.start ..= d.span.end`
/// (the first tokens carry the start span, the group the end span, as rustc
/// joins them for the error).
fn compile_error(d: &SpannedDiagnostic) -> TokenStream2 {
    compile_error_at(d.span.start, d.span.end, &d.rendered_message())
}

/// `::core::compile_error! { "text" };` underlining `start ..= end`.
fn compile_error_at(start: Span, end: Span, text: &str) -> TokenStream2 {
    let mut colon1 = Punct::new(':', Spacing::Joint);
    colon1.set_span(start);
    let mut colon2 = Punct::new(':', Spacing::Alone);
    colon2.set_span(start);
    let mut colon3 = Punct::new(':', Spacing::Joint);
    colon3.set_span(start);
    let mut colon4 = Punct::new(':', Spacing::Alone);
    colon4.set_span(start);
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(start);
    let mut msg = Literal::string(text);
    msg.set_span(end);
    let mut group = Group::new(Delimiter::Brace, TokenTree::from(msg).into());
    group.set_span(end);
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(end);
    TokenStream2::from_iter([
        TokenTree::from(colon1),
        colon2.into(),
        Ident::new("core", start).into(),
        colon3.into(),
        colon4.into(),
        Ident::new("compile_error", start).into(),
        bang.into(),
        group.into(),
        semi.into(),
    ])
}
