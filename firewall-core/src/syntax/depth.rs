//! Nesting depth, checked before syn sees the tokens: syn walks groups
//! recursively, and 10,000 nested brackets overflow the stack (an abort, not a
//! panic). The policy language has no brackets at all, so a small limit only
//! ever refuses text that is not a policy.

use crate::diagnostic::{Code, SpanRange, SpannedDiagnostic};
use proc_macro2::{TokenStream, TokenTree};

/// Deepest nesting of `()`, `[]` and `{}` accepted before parsing.
pub const MAX_DEPTH: usize = 16;

/// Walks `tokens` without recursion; an error at the first bracket that opens
/// a group deeper than [`MAX_DEPTH`].
pub fn check(tokens: &TokenStream) -> Result<(), SpannedDiagnostic> {
    check_trees(&tokens.clone().into_iter().collect::<Vec<_>>())
}

/// [`check`] on top-level token trees already in hand (what `compile` has:
/// iterating a shared `TokenStream` copies it).
pub fn check_trees(trees: &[TokenTree]) -> Result<(), SpannedDiagnostic> {
    for tree in trees {
        let TokenTree::Group(g) = tree else { continue };
        let mut stack = vec![g.stream().into_iter()];
        while let Some(top) = stack.last_mut() {
            match top.next() {
                Some(TokenTree::Group(g)) => {
                    if stack.len() + 1 >= MAX_DEPTH {
                        return Err(SpannedDiagnostic::new(
                            Code::Syntax,
                            SpanRange::single(g.span_open()),
                            format!("brackets nested more than {MAX_DEPTH} deep: this is not a policy"),
                            "a policy has no brackets: write its statements one after another, e.g. `extif eth0; open tcp 22;`",
                        ));
                    }
                    stack.push(g.stream().into_iter());
                }
                Some(_) => {}
                None => {
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn nested(n: usize) -> String {
        format!(
            "extif eth0; open tcp 22; {}{}",
            "(".repeat(n),
            ")".repeat(n)
        )
    }

    #[test]
    fn deep_nesting_is_refused_before_syn_recurses() {
        let text = nested(100_000);
        let tokens = TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let d = check(&tokens).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(d.code, Code::Syntax);
        assert_eq!(d.located().start.column, 26 + MAX_DEPTH - 1);
        // The whole path returns the error (it aborted the process before).
        let ds = crate::compile::compile_str(&text)
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(ds.len(), 1);
        assert!(ds[0].message.contains("nested"), "{}", ds[0].message);
    }

    #[test]
    fn shallow_groups_pass_to_the_parser() {
        let tokens =
            TokenStream::from_str(&nested(MAX_DEPTH - 1)).unwrap_or_else(|e| panic!("{e}"));
        assert!(check(&tokens).is_ok());
        let tokens = TokenStream::from_str(&nested(MAX_DEPTH)).unwrap_or_else(|e| panic!("{e}"));
        assert!(check(&tokens).is_err());
    }
}
